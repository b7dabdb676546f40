//! Table-plane offsets: where the goal and target objects' keypoints lie
//! on the table, relative to the hand, in metres — by geometry, not learned
//! (`config.json` `model.table_plane`, `vla train --table-plane`).
//!
//! Why: the keypoints say *where in the image* the named objects are, and
//! the TCP input says *where in the base frame* the hand is; turning the
//! first into the second's frame was left to the network, which learned it
//! from demonstrations in which the hand is nearly always right above the
//! object once it gets close. On the policy's own rollouts, with the hand
//! 3 cm or more off, the estimate of "object − hand" then had the wrong
//! sign along x in four frames out of five (`policies/default/README.md`,
//! session 7–8 probes). A calibrated camera makes that step exact: the ray
//! through a keypoint's expected pixel meets the horizontal plane at the
//! objects' usual height at the object's position (up to the keypoint's
//! error and the object's height), and subtracting the TCP's position is
//! arithmetic.
//!
//! How: keypoint `(x, y)` in the map's [−1, 1] coordinates → pixel of the
//! camera → ray in the arm's base frame → intersection with `z =
//! plane_z_m` (the mean height of the goal objects' centres in the
//! training data) → minus the TCP's `(x, y)` (from the model's normalised
//! TCP input and the statistics that normalised it) → 2 values per
//! keypoint, in units of [`crate::data::AUX_UNIT_M`], clamped to ±1 m. They
//! extend the relation token's input, so a warm start from a policy
//! without them (its relation weights grown with zero columns) computes
//! exactly what it did. Everything is made of tensor ops: the action and
//! auxiliary losses also train the keypoints through it.

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::crop::CropCamera;

/// Values the offsets add to the relation token's input: goal object x y,
/// target object x y.
pub const TABLE_PLANE_DIM: usize = 4;

/// Least downward slope of a ray (its base-frame z component, for a camera
/// direction of unit depth): flatter rays, towards or above the horizon,
/// are clamped to it so that the intersection stays finite.
const MIN_RAY_DOWN: f64 = 0.05;

/// Largest offset passed on, in [`crate::data::AUX_UNIT_M`] units (1 m).
const MAX_OFFSET: f64 = 10.0;

/// What the model needs to compute the offsets (`config.json`
/// `model.table_plane`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TablePlaneConfig {
    /// The calibrated camera whose frames the policy reads, in the TCP
    /// chain's base frame (for the simulator: the scene's camera).
    pub camera: CropCamera,
    /// Height of the plane the keypoints are projected onto, base frame,
    /// metres.
    pub plane_z_m: f64,
    /// The TCP input's normalisation (`config.json` `tcp.mean_m`), to
    /// recover metres from the normalised input.
    pub tcp_mean_m: [f64; 3],
    /// Its standard deviations (`tcp.std_m`).
    pub tcp_std_m: [f64; 3],
}

impl TablePlaneConfig {
    /// Checks the camera, and that the plane lies below it and every value
    /// is finite (standard deviations positive).
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.camera.validate().map_err(|e| e.to_string())?;
        let finite = std::iter::once(self.plane_z_m)
            .chain(self.tcp_mean_m)
            .chain(self.tcp_std_m)
            .all(f64::is_finite);
        if !finite || self.tcp_std_m.iter().any(|&s| s <= 0.0) {
            return Err(format!(
                "table_plane: values must be finite and TCP standard deviations positive: {self:?}"
            ));
        }
        if self.plane_z_m >= self.camera.base_from_camera_xyz_m[2] {
            return Err(format!(
                "table_plane: plane at z = {} m is not below the camera (z = {} m)",
                self.plane_z_m, self.camera.base_from_camera_xyz_m[2]
            ));
        }
        Ok(())
    }
}

/// [`TablePlaneConfig`] as constant tensors.
#[derive(Debug, Clone)]
pub(crate) struct TablePlane {
    /// `(2, 3)`: map coordinates `(x, y)` → ray direction in the base frame.
    ray_from_xy: Tensor,
    /// `(1, 3)`: the ray direction at map coordinates (0, 0).
    ray_at_origin: Tensor,
    origin_m: [f64; 3],
    plane_z_m: f64,
    /// `(1, 2)` each: TCP x y mean and standard deviation.
    tcp_mean_xy: Tensor,
    tcp_std_xy: Tensor,
}

impl TablePlane {
    pub(crate) fn new(cfg: &TablePlaneConfig, dev: &Device) -> Result<Self> {
        let c = &cfg.camera;
        let pose = c.base_from_camera();
        let r = pose.rotation.to_rotation_matrix();
        let (w, h) = (f64::from(c.width_px), f64::from(c.height_px));
        // Map x ∈ [−1, 1] spans the frame: u = ((x + 1)·W − 1) / 2 (pixel
        // centres at integers); the camera ray is ((u − cx)/fx, (v − cy)/fy, 1).
        let (ax, bx) = (w / (2.0 * c.fx_px), ((w - 1.0) / 2.0 - c.cx_px) / c.fx_px);
        let (ay, by) = (h / (2.0 * c.fy_px), ((h - 1.0) / 2.0 - c.cy_px) / c.fy_px);
        let col = |j: usize| nalgebra::Vector3::new(r[(0, j)], r[(1, j)], r[(2, j)]);
        let row_x = col(0) * ax;
        let row_y = col(1) * ay;
        let at_origin = col(0) * bx + col(1) * by + col(2);
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let t = pose.translation.vector;
        Ok(Self {
            ray_from_xy: Tensor::from_vec(
                f(&[row_x.x, row_x.y, row_x.z, row_y.x, row_y.y, row_y.z]),
                (2, 3),
                dev,
            )?,
            ray_at_origin: Tensor::from_vec(
                f(&[at_origin.x, at_origin.y, at_origin.z]),
                (1, 3),
                dev,
            )?,
            origin_m: [t.x, t.y, t.z],
            plane_z_m: cfg.plane_z_m,
            tcp_mean_xy: Tensor::from_vec(f(&cfg.tcp_mean_m[..2]), (1, 2), dev)?,
            tcp_std_xy: Tensor::from_vec(f(&cfg.tcp_std_m[..2]), (1, 2), dev)?,
        })
    }

    /// Where map point `xy` `(B, 2)` meets the plane, minus the TCP's x y,
    /// from the normalised TCP input `tcp_norm` `(B, 3)`: `(B, 2)` in units
    /// of [`crate::data::AUX_UNIT_M`].
    pub(crate) fn offsets(&self, xy: &Tensor, tcp_norm: &Tensor) -> Result<Tensor> {
        let ray = xy
            .matmul(&self.ray_from_xy)?
            .broadcast_add(&self.ray_at_origin)?;
        let down = ray.narrow(1, 2, 1)?.clamp(-1e9, -MIN_RAY_DOWN)?;
        // Distance along the ray (per unit of `ray`) to the plane.
        let s = (down.recip()? * (self.plane_z_m - self.origin_m[2]))?;
        let origin_xy = Tensor::from_vec(
            vec![self.origin_m[0] as f32, self.origin_m[1] as f32],
            (1, 2),
            xy.device(),
        )?;
        let on_plane = ray
            .narrow(1, 0, 2)?
            .broadcast_mul(&s)?
            .broadcast_add(&origin_xy)?;
        let tcp_xy = tcp_norm
            .narrow(1, 0, 2)?
            .broadcast_mul(&self.tcp_std_xy)?
            .broadcast_add(&self.tcp_mean_xy)?;
        ((on_plane - tcp_xy)? / crate::data::AUX_UNIT_M)?.clamp(-MAX_OFFSET, MAX_OFFSET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};

    fn camera() -> CropCamera {
        let eye = Vector3::new(1.05, 0.0, 0.55);
        let forward = (Vector3::new(0.47, 0.0, 0.05) - eye).normalize();
        let right = forward.cross(&Vector3::z()).normalize();
        let down = forward.cross(&right);
        let rotation =
            Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[right, down, forward]));
        let pose = Isometry3::from_parts(
            Translation3::from(eye),
            UnitQuaternion::from_rotation_matrix(&rotation),
        );
        CropCamera::new(&pose, 128, 128, 123.0, 123.0, 63.5, 63.5)
    }

    fn config() -> TablePlaneConfig {
        TablePlaneConfig {
            camera: camera(),
            plane_z_m: 0.03,
            tcp_mean_m: [0.5, 0.0, 0.15],
            tcp_std_m: [0.08, 0.12, 0.1],
        }
    }

    #[test]
    fn a_projected_point_comes_back_at_its_offset_from_the_tcp() {
        let cfg = config();
        cfg.validate().unwrap();
        let plane = TablePlane::new(&cfg, &Device::Cpu).unwrap();
        let size_px = 128usize;
        for (p, tcp) in [
            ([0.45, 0.10, 0.03], [0.50, 0.05, 0.20]),
            ([0.62, -0.18, 0.03], [0.40, -0.02, 0.08]),
            ([0.35, 0.0, 0.03], [0.35, 0.0, 0.12]),
        ] {
            let [u, v] = cfg.camera.project_to_model(p, size_px).unwrap();
            // Pixel centres at integers → map coordinates in [−1, 1].
            let to_map = |px: f32| (2.0 * px + 1.0) / size_px as f32 - 1.0;
            let xy = Tensor::new(&[[to_map(u), to_map(v)]], &Device::Cpu).unwrap();
            let tcp_norm: Vec<f32> = (0..3)
                .map(|i| ((tcp[i] - cfg.tcp_mean_m[i]) / cfg.tcp_std_m[i]) as f32)
                .collect();
            let tcp_norm =
                Tensor::new(&[[tcp_norm[0], tcp_norm[1], tcp_norm[2]]], &Device::Cpu).unwrap();
            let got = plane
                .offsets(&xy, &tcp_norm)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for axis in 0..2 {
                let want = (p[axis] - tcp[axis]) / crate::data::AUX_UNIT_M;
                assert!(
                    (f64::from(got[0][axis]) - want).abs() < 1e-3,
                    "{p:?} − {tcp:?}: got {got:?}"
                );
            }
        }
    }

    #[test]
    fn rays_towards_the_horizon_stay_finite_and_bounded() {
        let cfg = config();
        let plane = TablePlane::new(&cfg, &Device::Cpu).unwrap();
        // Far above the image's top edge: the ray points up.
        let xy = Tensor::new(&[[0.0f32, -40.0], [1.0, -1.0]], &Device::Cpu).unwrap();
        let tcp = Tensor::zeros((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let got = plane.offsets(&xy, &tcp).unwrap().to_vec2::<f32>().unwrap();
        assert!(got
            .iter()
            .flatten()
            .all(|v| v.is_finite() && v.abs() <= MAX_OFFSET as f32));
    }

    #[test]
    fn a_plane_above_the_camera_or_a_zero_deviation_is_refused() {
        let good = config();
        let above = TablePlaneConfig {
            plane_z_m: 0.9,
            ..good
        };
        assert!(above.validate().unwrap_err().contains("below the camera"));
        let flat = TablePlaneConfig {
            tcp_std_m: [0.08, 0.0, 0.1],
            ..good
        };
        assert!(flat.validate().unwrap_err().contains("standard deviations"));
    }
}

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
//!
//! Fine offsets (`fine_scale_m`, `vla train --table-plane-fine-m`, session
//! 40): the same 4 offsets again as `tanh(offset_m / fine_scale_m)`, at the
//! very end of the relation token's input. Why: in units of 10 cm a 1 cm
//! offset moves its input by 0.1, and the network (a linear projection into
//! the relation token) does not tell "1 cm off" from "aligned": with its
//! keypoints pinned at their true pixels the shipped policy still lowers
//! stacked objects 1.0–1.5 cm off the target's centre and never makes the
//! sub-centimetre move the expert makes there. With a 1 cm scale the last
//! centimetre spans most of the input's range.
//!
//! Held offsets (`held_fine`, `vla train --table-plane-held`, session 41):
//! the goal object's keypoint once more, projected onto the horizontal
//! plane *at the TCP's own height* instead of the resting plane, as
//! `tanh(offset_m / fine_scale_m)`, 2 values after the fine ones. Why: a
//! held object's centre sits about at the TCP's height, 5–15 cm above the
//! resting plane, and on this camera (~41° down) a point 1 cm above the
//! plane it is projected onto lands ~1.2 cm further along the camera's
//! depth axis, so the goal's fine offsets saturate from the lift to the
//! release. The placement's error is *target − held object*, and the
//! object sits 0.5–0.8 cm (RMS) off the fingers' centre after a grasp
//! (session 31): on the TCP's plane the goal keypoint measures that grasp
//! offset. When the object is not in the hand the values are wrong by the
//! parallax of its height under the TCP; the network reads the gripper
//! state beside them.

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use crate::crop::CropCamera;

/// Values the offsets add to the relation token's input: goal object x y,
/// target object x y.
pub const TABLE_PLANE_DIM: usize = 4;

/// Values the fine offsets add after everything else in the relation
/// token's input: `tanh` of the same 4 offsets at `fine_scale_m`.
pub const FINE_DIM: usize = 4;

/// Values the held offsets add after the fine ones: goal object x y on
/// the TCP's plane.
pub const HELD_DIM: usize = 2;

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
    /// Scale of the fine offsets, metres (`None`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_scale_m: Option<f64>,
    /// Height of the plane the fine offsets project onto, base frame,
    /// metres: where objects resting on the table have their centres (the
    /// 10th percentile of the goal objects' centre heights in the training
    /// data; `plane_z_m`, their mean, is pulled up by lifted objects, and a
    /// plane 3 cm too high puts a resting object ~3 cm off along the
    /// camera's depth axis). Set exactly when `fine_scale_m` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_plane_z_m: Option<f64>,
    /// The held offsets (module docs): the goal keypoint on the TCP's own
    /// plane, at `fine_scale_m`. Needs the fine offsets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held_fine: bool,
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
        match (self.fine_scale_m, self.fine_plane_z_m) {
            (None, None) => {}
            (Some(scale), Some(z)) => {
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(format!(
                        "table_plane: fine_scale_m must be a positive number of metres, not {scale}"
                    ));
                }
                if !(z.is_finite() && z < self.camera.base_from_camera_xyz_m[2]) {
                    return Err(format!(
                        "table_plane: fine_plane_z_m = {z} m is not a height below the camera"
                    ));
                }
            }
            _ => {
                return Err(
                    "table_plane: fine_scale_m and fine_plane_z_m come together (both or neither)"
                        .into(),
                )
            }
        }
        if self.held_fine && self.fine_scale_m.is_none() {
            return Err(
                "table_plane: held_fine needs the fine offsets (fine_scale_m, fine_plane_z_m)"
                    .into(),
            );
        }
        if self.plane_z_m >= self.camera.base_from_camera_xyz_m[2] {
            return Err(format!(
                "table_plane: plane at z = {} m is not below the camera (z = {} m)",
                self.plane_z_m, self.camera.base_from_camera_xyz_m[2]
            ));
        }
        Ok(())
    }

    /// Values the fine offsets add to the relation token's input (0 or
    /// [`FINE_DIM`]).
    pub fn fine_width(&self) -> usize {
        if self.fine_scale_m.is_some() {
            FINE_DIM
        } else {
            0
        }
    }

    /// Values the held offsets add after the fine ones (0 or [`HELD_DIM`]).
    pub fn held_width(&self) -> usize {
        if self.held_fine {
            HELD_DIM
        } else {
            0
        }
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
    /// TCP z mean and standard deviation, metres.
    tcp_z_mean_std_m: (f64, f64),
    /// Fine offsets: (scale, plane height), metres.
    fine: Option<(f64, f64)>,
    /// Held offsets on (with the fine scale).
    held: bool,
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
            tcp_z_mean_std_m: (cfg.tcp_mean_m[2], cfg.tcp_std_m[2]),
            fine: cfg.fine_scale_m.zip(cfg.fine_plane_z_m),
            held: cfg.held_fine,
        })
    }

    /// Where map point `xy` `(B, 2)` meets the plane, minus the TCP's x y,
    /// from the normalised TCP input `tcp_norm` `(B, 3)`: `(B, 2)` in units
    /// of [`crate::data::AUX_UNIT_M`].
    pub(crate) fn offsets(&self, xy: &Tensor, tcp_norm: &Tensor) -> Result<Tensor> {
        (self.minus_tcp_m(xy, tcp_norm, self.plane_z_m)? / crate::data::AUX_UNIT_M)?
            .clamp(-MAX_OFFSET, MAX_OFFSET)
    }

    /// The fine offsets of map point `xy`: where it meets the plane at
    /// `fine_plane_z_m`, minus the TCP's x y, as `tanh(offset_m /
    /// fine_scale_m)`, `(B, 2)`; `None` without them.
    pub(crate) fn fine(&self, xy: &Tensor, tcp_norm: &Tensor) -> Result<Option<Tensor>> {
        match self.fine {
            Some((scale_m, plane_z_m)) => Ok(Some(
                (self.minus_tcp_m(xy, tcp_norm, plane_z_m)? / scale_m)?.tanh()?,
            )),
            None => Ok(None),
        }
    }

    /// The held offsets of map point `xy` (the goal's): where it meets the
    /// horizontal plane through the TCP, minus the TCP's x y, as
    /// `tanh(offset_m / fine_scale_m)`, `(B, 2)`; `None` without them.
    pub(crate) fn held(&self, xy: &Tensor, tcp_norm: &Tensor) -> Result<Option<Tensor>> {
        let (Some((scale_m, _)), true) = (self.fine, self.held) else {
            return Ok(None);
        };
        let ray = xy
            .matmul(&self.ray_from_xy)?
            .broadcast_add(&self.ray_at_origin)?;
        let down = ray.narrow(1, 2, 1)?.clamp(-1e9, -MIN_RAY_DOWN)?;
        // The TCP's height, base frame, metres, (B, 1); the plane through it
        // must lie below the camera for the ray to meet it in front.
        let (mean_z, std_z) = self.tcp_z_mean_std_m;
        let tcp_z = tcp_norm.narrow(1, 2, 1)?.affine(std_z, mean_z)?;
        let below = (tcp_z - self.origin_m[2])?.clamp(-1e9, -1e-3)?;
        let s = (down.recip()? * below)?;
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
        Ok(Some(((on_plane - tcp_xy)? / scale_m)?.tanh()?))
    }

    /// Where map point `xy` `(B, 2)` meets the plane `z = plane_z_m`, minus
    /// the TCP's x y from the normalised TCP input: `(B, 2)`, metres.
    fn minus_tcp_m(&self, xy: &Tensor, tcp_norm: &Tensor, plane_z_m: f64) -> Result<Tensor> {
        let ray = xy
            .matmul(&self.ray_from_xy)?
            .broadcast_add(&self.ray_at_origin)?;
        let down = ray.narrow(1, 2, 1)?.clamp(-1e9, -MIN_RAY_DOWN)?;
        // Distance along the ray (per unit of `ray`) to the plane.
        let s = (down.recip()? * (plane_z_m - self.origin_m[2]))?;
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
        on_plane - tcp_xy
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
            fine_scale_m: None,
            fine_plane_z_m: None,
            held_fine: false,
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
    fn the_held_offsets_measure_a_point_at_the_tcps_height() {
        let cfg = TablePlaneConfig {
            fine_scale_m: Some(0.02),
            fine_plane_z_m: Some(0.02),
            held_fine: true,
            ..config()
        };
        cfg.validate().unwrap();
        assert_eq!(cfg.held_width(), HELD_DIM);
        let plane = TablePlane::new(&cfg, &Device::Cpu).unwrap();
        let size_px = 128usize;
        // A held object's centre 0.3–1.5 cm off the TCP at carry and release
        // heights; the resting plane's fine offsets would be ~10 cm off here.
        for (p, tcp) in [
            ([0.505, 0.012, 0.20], [0.50, 0.005, 0.20]),
            ([0.40, -0.10, 0.08], [0.41, -0.095, 0.08]),
            ([0.58, 0.15, 0.12], [0.583, 0.14, 0.12]),
        ] {
            let [u, v] = cfg.camera.project_to_model(p, size_px).unwrap();
            let to_map = |px: f32| (2.0 * px + 1.0) / size_px as f32 - 1.0;
            let xy = Tensor::new(&[[to_map(u), to_map(v)]], &Device::Cpu).unwrap();
            let tcp_norm: Vec<f32> = (0..3)
                .map(|i| ((tcp[i] - cfg.tcp_mean_m[i]) / cfg.tcp_std_m[i]) as f32)
                .collect();
            let tcp_norm = Tensor::from_vec(tcp_norm, (1, 3), &Device::Cpu).unwrap();
            let held = plane
                .held(&xy, &tcp_norm)
                .unwrap()
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let fine = plane
                .fine(&xy, &tcp_norm)
                .unwrap()
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for axis in 0..2 {
                let want = ((p[axis] - tcp[axis]) / 0.02).tanh();
                assert!(
                    (f64::from(held[0][axis]) - want).abs() < 2e-3,
                    "{p:?} − {tcp:?}: got {held:?}, want {want}"
                );
            }
            // On the resting plane the lifted point is far off along x.
            assert!(fine[0][0].abs() > 0.99, "{fine:?}");
        }
        // Off without the flag; the flag without the fine offsets is refused.
        let fine_only = TablePlaneConfig {
            held_fine: false,
            ..cfg
        };
        assert_eq!(fine_only.held_width(), 0);
        let xy = Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let tcp = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let plane = TablePlane::new(&fine_only, &Device::Cpu).unwrap();
        assert!(plane.held(&xy, &tcp).unwrap().is_none());
        let alone = TablePlaneConfig {
            held_fine: true,
            ..config()
        };
        assert!(alone.validate().unwrap_err().contains("held_fine"));
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
    fn the_fine_offsets_are_tanh_of_the_offsets_on_their_own_plane_over_the_scale() {
        let cfg = TablePlaneConfig {
            fine_scale_m: Some(0.01),
            fine_plane_z_m: Some(0.02),
            ..config()
        };
        cfg.validate().unwrap();
        assert_eq!(cfg.fine_width(), FINE_DIM);
        assert_eq!(config().fine_width(), 0);
        let plane = TablePlane::new(&cfg, &Device::Cpu).unwrap();
        // The same points through the coarse offsets of a plane at 0.02 m.
        let at_fine_height = TablePlane::new(
            &TablePlaneConfig {
                plane_z_m: 0.02,
                ..config()
            },
            &Device::Cpu,
        )
        .unwrap();
        let xy = Tensor::from_vec(vec![0.1f32, 0.3, -0.4, 0.2], (2, 2), &Device::Cpu).unwrap();
        let tcp = Tensor::from_vec(
            vec![0.2f32, -0.5, 0.1, 1.0, 0.3, -0.2],
            (2, 3),
            &Device::Cpu,
        )
        .unwrap();
        let flat = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let fine = flat(plane.fine(&xy, &tcp).unwrap().unwrap());
        let coarse = flat(at_fine_height.offsets(&xy, &tcp).unwrap());
        for (f, c) in fine.iter().zip(&coarse) {
            // Coarse: units of 10 cm; fine: tanh of centimetres.
            let expected = (f64::from(*c) * 10.0).tanh();
            assert!(
                (f64::from(*f) - expected).abs() < 1e-4,
                "{fine:?} {coarse:?}"
            );
        }
        assert!(TablePlane::new(&config(), &Device::Cpu)
            .unwrap()
            .fine(&xy, &tcp)
            .unwrap()
            .is_none());
        for bad in [0.0, -0.01, f64::NAN, f64::INFINITY] {
            let cfg = TablePlaneConfig {
                fine_scale_m: Some(bad),
                fine_plane_z_m: Some(0.02),
                ..config()
            };
            assert!(cfg.validate().unwrap_err().contains("fine_scale_m"));
        }
        let half = TablePlaneConfig {
            fine_scale_m: Some(0.01),
            ..config()
        };
        assert!(half.validate().unwrap_err().contains("both or neither"));
        let above = TablePlaneConfig {
            fine_scale_m: Some(0.01),
            fine_plane_z_m: Some(0.9),
            ..config()
        };
        assert!(above.validate().unwrap_err().contains("below the camera"));
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

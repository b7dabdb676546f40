//! The hand crop: a square window of the camera frame centred on where the
//! tool centre point projects, as a second image input (`config.json`
//! `crop`, network shape in [`crate::model::CropNetConfig`]).
//!
//! Why: the policy's error in "object relative to the hand" was ≈ 2.3 cm
//! RMS, about the size of the corrections a grasp needs, and after the
//! first approach steps it stopped correcting sideways at all
//! (`policies/default/README.md`). In a window that follows the hand, the
//! offset the next action must remove is where the object sits relative to
//! the window's centre, the same pixels for every arm pose: a
//! translation-equivariant cue the network does not have to assemble from
//! two absolute image positions.
//!
//! Where the hand is in the image comes from forward kinematics of the
//! measured joints (the [`crate::tcp`] chain) and the camera's pose in the
//! arm's base frame plus its pinhole intrinsics, stored in the checkpoint.
//! In the simulator that is the scene's camera; next to a real arm it is
//! the hand–eye calibration of the camera the policy was trained for.

use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion};
use serde::{Deserialize, Serialize};

use crate::error::{Result, VlaPolicyError};

/// A calibrated pinhole camera in the arm's base frame (ROS optical
/// convention: z forward, x right, y down; no distortion).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropCamera {
    /// Translation of `base_from_camera` (the optical frame in the TCP
    /// chain's base link), metres.
    pub base_from_camera_xyz_m: [f64; 3],
    /// Rotation of `base_from_camera`, unit quaternion `[x, y, z, w]`.
    pub base_from_camera_xyzw: [f64; 4],
    /// Width of the frames the camera delivers, pixels.
    pub width_px: u32,
    /// Their height, pixels.
    pub height_px: u32,
    /// Focal length along u, pixels.
    pub fx_px: f64,
    /// Focal length along v, pixels.
    pub fy_px: f64,
    /// Principal point u, pixels (pixel centres at integers).
    pub cx_px: f64,
    /// Principal point v, pixels.
    pub cy_px: f64,
}

impl CropCamera {
    /// A camera from its pose in the base frame and `sensor_msgs/CameraInfo`-style intrinsics.
    pub fn new(
        base_from_camera: &Isometry3<f64>,
        width_px: u32,
        height_px: u32,
        fx_px: f64,
        fy_px: f64,
        cx_px: f64,
        cy_px: f64,
    ) -> Self {
        let t = base_from_camera.translation.vector;
        let q = base_from_camera.rotation.quaternion();
        Self {
            base_from_camera_xyz_m: [t.x, t.y, t.z],
            base_from_camera_xyzw: [q.i, q.j, q.k, q.w],
            width_px,
            height_px,
            fx_px,
            fy_px,
            cx_px,
            cy_px,
        }
    }

    /// Checks that every value is finite, the sizes and focal lengths
    /// positive and the quaternion of unit length.
    pub fn validate(&self) -> Result<()> {
        let finite = self
            .base_from_camera_xyz_m
            .iter()
            .chain(&self.base_from_camera_xyzw)
            .chain(&[self.fx_px, self.fy_px, self.cx_px, self.cy_px])
            .all(|v| v.is_finite());
        let q_norm = self
            .base_from_camera_xyzw
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        if !finite
            || (q_norm - 1.0).abs() > 1e-3
            || self.fx_px <= 0.0
            || self.fy_px <= 0.0
            || self.width_px == 0
            || self.height_px == 0
        {
            return Err(VlaPolicyError::Config(format!(
                "crop camera {self:?}: values must be finite, sizes and focal lengths \
                 positive, the quaternion of unit length"
            )));
        }
        Ok(())
    }

    /// `base_from_camera`.
    pub fn base_from_camera(&self) -> Isometry3<f64> {
        let [x, y, z] = self.base_from_camera_xyz_m;
        let [qx, qy, qz, qw] = self.base_from_camera_xyzw;
        Isometry3::from_parts(
            Translation3::new(x, y, z),
            UnitQuaternion::from_quaternion(Quaternion::new(qw, qx, qy, qz)),
        )
    }

    /// Where a point of the base frame appears in a `size_px` square copy of
    /// the frame (the resize the policy applies), pixel centres at integers;
    /// `None` behind the camera or for non-finite input.
    pub fn project_to_model(&self, p_in_base_m: [f64; 3], size_px: usize) -> Option<[f32; 2]> {
        let [x, y, z] = p_in_base_m;
        let p = self
            .base_from_camera()
            .inverse_transform_point(&Point3::new(x, y, z));
        if !(p.z > 1e-6 && p.z.is_finite()) {
            return None;
        }
        let u = self.fx_px * p.x / p.z + self.cx_px;
        let v = self.fy_px * p.y / p.z + self.cy_px;
        let s = size_px as f64;
        let u_model = (u + 0.5) * s / f64::from(self.width_px) - 0.5;
        let v_model = (v + 0.5) * s / f64::from(self.height_px) - 0.5;
        (u_model.is_finite() && v_model.is_finite()).then_some([u_model as f32, v_model as f32])
    }
}

/// What `config.json` records about the crop's input: the camera it is
/// computed for (the network's shape is in `model.crop`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropSpec {
    /// The camera whose frames the policy reads.
    pub camera: CropCamera,
}

impl CropSpec {
    /// Checks the camera.
    pub fn validate(&self) -> Result<()> {
        self.camera.validate()
    }

    /// The crop's top-left pixel in a `size_px` model image for the TCP at
    /// `base_from_tcp_m`: the window of `side_px` centred on the TCP's
    /// projection, which is first clamped into the image (a hand outside the
    /// view gives the border window, not an error). `None` when the TCP is
    /// behind the camera.
    pub fn origin_px(
        &self,
        base_from_tcp_m: [f64; 3],
        size_px: usize,
        side_px: usize,
    ) -> Option<[i32; 2]> {
        let [u, v] = self.camera.project_to_model(base_from_tcp_m, size_px)?;
        Some(origin_for_centre([u, v], size_px, side_px))
    }
}

/// Top-left pixel of a `side_px` window centred on `(u, v)` (clamped into
/// the `size_px` image): the centre lands within half a pixel of
/// `(side_px / 2, side_px / 2)` of the window.
pub fn origin_for_centre(centre_px: [f32; 2], size_px: usize, side_px: usize) -> [i32; 2] {
    let max = size_px.saturating_sub(1) as f32;
    let half = (side_px / 2) as i32;
    let at = |c: f32| c.clamp(0.0, max).round() as i32 - half;
    [at(centre_px[0]), at(centre_px[1])]
}

/// Copies the `side × side` window at `origin` of a `size × size` RGB8 image
/// into `out` (`side · side · 3` bytes), replicating edge pixels where the
/// window leaves the image.
pub fn extract_rgb8(rgb: &[u8], size: usize, origin: [i32; 2], side: usize, out: &mut [u8]) {
    let last = size.saturating_sub(1) as i32;
    for row in 0..side {
        let y = (origin[1] + row as i32).clamp(0, last) as usize;
        for col in 0..side {
            let x = (origin[0] + col as i32).clamp(0, last) as usize;
            let src = (y * size + x) * 3;
            let dst = (row * side + col) * 3;
            out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix3, Rotation3, Vector3};

    /// A camera 1 m above the base origin looking straight down, 100 px square.
    fn down_camera() -> CropCamera {
        // Optical z = −base z, x = base x... choose right = −y, down = −x.
        let forward = Vector3::new(0.0, 0.0, -1.0);
        let right = Vector3::new(0.0, -1.0, 0.0);
        let down = forward.cross(&right);
        let r = Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[right, down, forward]));
        let pose = Isometry3::from_parts(
            Translation3::new(0.0, 0.0, 1.0),
            UnitQuaternion::from_rotation_matrix(&r),
        );
        CropCamera::new(&pose, 100, 100, 50.0, 50.0, 49.5, 49.5)
    }

    #[test]
    fn the_point_on_the_optical_axis_projects_to_the_principal_point() {
        let cam = down_camera();
        cam.validate().unwrap();
        let [u, v] = cam.project_to_model([0.0, 0.0, 0.0], 100).unwrap();
        assert!(
            (u - 49.5).abs() < 1e-4 && (v - 49.5).abs() < 1e-4,
            "{u} {v}"
        );
        // 0.1 m along base −y (image right) at 1 m depth: 5 px right.
        let [u, v] = cam.project_to_model([0.0, -0.1, 0.0], 100).unwrap();
        assert!(
            (u - 54.5).abs() < 1e-4 && (v - 49.5).abs() < 1e-4,
            "{u} {v}"
        );
        // Into a 50 px copy: half the pixels, same place in the frame.
        let [u, _] = cam.project_to_model([0.0, -0.1, 0.0], 50).unwrap();
        assert!((u - 27.0).abs() < 1e-4, "{u}");
        // Behind the camera: nothing.
        assert!(cam.project_to_model([0.0, 0.0, 2.0], 100).is_none());
    }

    #[test]
    fn a_bad_camera_is_rejected() {
        let mut cam = down_camera();
        cam.fx_px = f64::NAN;
        assert!(cam.validate().is_err());
        let mut cam = down_camera();
        cam.base_from_camera_xyzw = [0.0, 0.0, 0.0, 2.0];
        assert!(cam.validate().is_err());
    }

    #[test]
    fn the_window_is_centred_and_clamped() {
        assert_eq!(origin_for_centre([64.0, 64.0], 128, 32), [48, 48]);
        assert_eq!(origin_for_centre([10.4, 100.6], 128, 32), [-6, 85]);
        // A hand far outside the image gives the border window.
        assert_eq!(origin_for_centre([-500.0, 900.0], 128, 32), [-16, 111]);
    }

    #[test]
    fn extraction_copies_the_window_and_replicates_edges() {
        let size = 4;
        let rgb: Vec<u8> = (0..size * size).flat_map(|i| [i as u8, 0, 0]).collect();
        let mut out = vec![0u8; 3 * 3 * 3];
        extract_rgb8(&rgb, size, [1, 1], 3, &mut out);
        let reds: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![5, 6, 7, 9, 10, 11, 13, 14, 15]);
        extract_rgb8(&rgb, size, [-1, -1], 3, &mut out);
        let reds: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 0, 1, 0, 0, 1, 4, 4, 5]);
    }
}

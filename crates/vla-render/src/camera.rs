//! A pinhole camera in the ROS optical convention (z forward, x right, y
//! down), with the intrinsics of `sensor_msgs/CameraInfo`.
//!
//! Pixel coordinates follow OpenCV/ROS: the centre of pixel `(col, row)` is
//! at `(u, v) = (col, row)`, so a centred principal point is
//! `((width - 1) / 2, (height - 1) / 2)`.

use nalgebra::{Isometry3, Matrix3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};
use vla_core::observation::MAX_IMAGE_SIDE_PX;

use crate::RenderError;

/// A pinhole camera: pose, image size and intrinsics (no distortion).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Pose of the optical frame (z forward, x right, y down) in the world.
    pub world_from_camera: Isometry3<f64>,
    /// Image width.
    pub width_px: u32,
    /// Image height.
    pub height_px: u32,
    /// Focal length along u, in pixels.
    pub fx_px: f64,
    /// Focal length along v, in pixels.
    pub fy_px: f64,
    /// Principal point u.
    pub cx_px: f64,
    /// Principal point v.
    pub cy_px: f64,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with `up` pointing up in the
    /// image, square pixels, a centred principal point and the given vertical
    /// field of view.
    ///
    /// Degenerate input (`eye == target`, `up` parallel to the view direction,
    /// a field of view outside `(0, π)`, non-finite values) gives a camera with
    /// a non-finite pose or focal length, which [`Camera::validate`] and
    /// `Renderer::render` reject with [`RenderError::InvalidCamera`].
    pub fn look_at(
        eye: Point3<f64>,
        target: Point3<f64>,
        up: Vector3<f64>,
        vertical_fov_rad: f64,
        width_px: u32,
        height_px: u32,
    ) -> Camera {
        let forward = (target - eye).normalize();
        let right = forward.cross(&up).normalize();
        let down = forward.cross(&right);
        let rotation =
            Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[right, down, forward]));
        let valid_fov = vertical_fov_rad > 0.0 && vertical_fov_rad < std::f64::consts::PI;
        let f_px = if valid_fov {
            0.5 * f64::from(height_px) / (0.5 * vertical_fov_rad).tan()
        } else {
            f64::NAN
        };
        Camera {
            world_from_camera: Isometry3::from_parts(
                Translation3::from(eye.coords),
                UnitQuaternion::from_rotation_matrix(&rotation),
            ),
            width_px,
            height_px,
            fx_px: f_px,
            fy_px: f_px,
            cx_px: 0.5 * (f64::from(width_px) - 1.0),
            cy_px: 0.5 * (f64::from(height_px) - 1.0),
        }
    }

    /// The intrinsic matrix K, row-major (`sensor_msgs/CameraInfo.k`).
    pub fn intrinsics_k(&self) -> [f64; 9] {
        [
            self.fx_px, 0.0, self.cx_px, 0.0, self.fy_px, self.cy_px, 0.0, 0.0, 1.0,
        ]
    }

    /// Pixel coordinates `(u, v)` and z-depth (metres along the optical axis)
    /// of a world point, or `None` when the point is not in front of the camera
    /// or falls outside the image (`u` in `[-0.5, width - 0.5)`, same for `v`).
    pub fn project(&self, p_in_world: &Point3<f64>) -> Option<(f64, f64, f64)> {
        let p_in_camera = self.world_from_camera.inverse_transform_point(p_in_world);
        let z = p_in_camera.z;
        if !(z > 0.0 && z.is_finite()) {
            return None;
        }
        let u = self.fx_px * p_in_camera.x / z + self.cx_px;
        let v = self.fy_px * p_in_camera.y / z + self.cy_px;
        let inside = u >= -0.5
            && u < f64::from(self.width_px) - 0.5
            && v >= -0.5
            && v < f64::from(self.height_px) - 0.5;
        inside.then_some((u, v, z))
    }

    /// Checks image size, intrinsics and pose.
    pub fn validate(&self) -> Result<(), RenderError> {
        let bad = |m: String| Err(RenderError::InvalidCamera(m));
        if self.width_px == 0
            || self.height_px == 0
            || self.width_px > MAX_IMAGE_SIDE_PX
            || self.height_px > MAX_IMAGE_SIDE_PX
        {
            return bad(format!(
                "image size {}x{} must be 1..={MAX_IMAGE_SIDE_PX} on each side",
                self.width_px, self.height_px
            ));
        }
        if !(self.fx_px.is_finite()
            && self.fy_px.is_finite()
            && self.fx_px > 0.0
            && self.fy_px > 0.0)
        {
            return bad(format!(
                "focal lengths fx={} fy={} must be finite and positive",
                self.fx_px, self.fy_px
            ));
        }
        if !(self.cx_px.is_finite() && self.cy_px.is_finite()) {
            return bad(format!(
                "principal point ({}, {}) is not finite",
                self.cx_px, self.cy_px
            ));
        }
        let t = &self.world_from_camera.translation.vector;
        let q = self.world_from_camera.rotation.quaternion();
        if !(t.iter().all(|v| v.is_finite()) && q.coords.iter().all(|v| v.is_finite())) {
            return bad("pose is not finite".into());
        }
        if (q.norm() - 1.0).abs() > 1e-6 {
            return bad(format!(
                "rotation quaternion is not unit (norm {})",
                q.norm()
            ));
        }
        Ok(())
    }
}

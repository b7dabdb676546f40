//! Scene lighting: one directional sun (with optional shadows) plus a uniform
//! ambient term. Intensities multiply the linear-space albedo.

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

use crate::RenderError;

/// A sun and an ambient term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lighting {
    /// Direction the sunlight travels, in the world (need not be unit length;
    /// pointing down, -z, means the sun is overhead).
    pub sun_direction_in_world: Vector3<f64>,
    /// Sun radiance factor: a surface facing the sun gets `ambient + sun_intensity`.
    pub sun_intensity: f32,
    /// Light reaching every surface, shadowed or not.
    pub ambient: f32,
    /// Whether the sun casts shadows.
    pub shadows: bool,
}

impl Default for Lighting {
    /// A high sun from behind-left of a camera placed on the -x side of the
    /// table, so shadows fall forward-right of objects and stay visible.
    fn default() -> Self {
        Self {
            sun_direction_in_world: Vector3::new(0.45, -0.3, -1.0),
            sun_intensity: 0.8,
            ambient: 0.3,
            shadows: true,
        }
    }
}

impl Lighting {
    /// Checks that the sun direction is finite and non-zero and the
    /// intensities finite and non-negative.
    pub fn validate(&self) -> Result<(), RenderError> {
        let d = &self.sun_direction_in_world;
        if !(d.iter().all(|v| v.is_finite()) && d.norm() > 1e-9) {
            return Err(RenderError::InvalidLighting(format!(
                "sun direction {:?} must be finite and non-zero",
                d.as_slice()
            )));
        }
        for (name, v) in [
            ("sun_intensity", self.sun_intensity),
            ("ambient", self.ambient),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(RenderError::InvalidLighting(format!(
                    "{name} = {v} must be finite and non-negative"
                )));
            }
        }
        Ok(())
    }
}

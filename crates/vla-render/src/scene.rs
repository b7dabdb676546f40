//! What is drawn: shapes, primitives (a posed, coloured shape) and their checks.
//!
//! Every shape is described in its own frame `shape`, centred on the origin
//! (the centre of its bounding box), so `world_from_shape` of a primitive is
//! the same pose a physics engine reports for the matching collider.

use nalgebra::Isometry3;
use serde::{Deserialize, Serialize};

use crate::RenderError;

/// A shape in its own frame; sizes in metres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// A box spanning `-half_extents_m..=half_extents_m` on each axis.
    Box {
        /// Half the side lengths along x, y, z.
        half_extents_m: [f64; 3],
    },
    /// A sphere centred on the origin.
    Sphere {
        /// Radius.
        radius_m: f64,
    },
    /// A closed cylinder whose axis is the local z axis, spanning
    /// `z = -half_height_m..=half_height_m`.
    Cylinder {
        /// Radius.
        radius_m: f64,
        /// Half the height along z.
        half_height_m: f64,
    },
    /// An open-top receptacle: a thin shell of revolution about local z with a
    /// flat floor of radius `0.55 * radius_m` at `z = -height_m / 2` and a
    /// wall curving out (a quarter ellipse) to the rim of radius `radius_m` at
    /// `z = +height_m / 2`. The shell has no thickness; inside and outside
    /// are both drawn.
    Bowl {
        /// Rim radius (the outer radius of the bowl).
        radius_m: f64,
        /// Height from floor to rim.
        height_m: f64,
    },
    /// A finite rectangle in the local xy plane, normal +z, spanning
    /// `-half_extents_m..=half_extents_m` in x and y. Drawn from both sides.
    /// Used for the table top; the renderer's plane texture applies to it.
    Plane {
        /// Half the side lengths along x and y.
        half_extents_m: [f64; 2],
    },
}

impl Shape {
    /// Scale factors from the unit mesh of this shape's kind to this shape.
    pub(crate) fn mesh_scale(&self) -> [f64; 3] {
        match *self {
            Shape::Box { half_extents_m } => half_extents_m,
            Shape::Sphere { radius_m } => [radius_m; 3],
            Shape::Cylinder {
                radius_m,
                half_height_m,
            } => [radius_m, radius_m, half_height_m],
            Shape::Bowl { radius_m, height_m } => [radius_m, radius_m, 0.5 * height_m],
            Shape::Plane { half_extents_m } => [half_extents_m[0], half_extents_m[1], 1.0],
        }
    }

    /// Checks that every size is finite and positive.
    pub fn validate(&self) -> Result<(), String> {
        let sizes: &[f64] = match self {
            Shape::Box { half_extents_m } => half_extents_m,
            Shape::Sphere { radius_m } => std::slice::from_ref(radius_m),
            Shape::Cylinder {
                radius_m,
                half_height_m,
            } => &[*radius_m, *half_height_m],
            Shape::Bowl { radius_m, height_m } => &[*radius_m, *height_m],
            Shape::Plane { half_extents_m } => half_extents_m,
        };
        if sizes.iter().all(|s| s.is_finite() && *s > 0.0) {
            Ok(())
        } else {
            Err(format!("sizes must be finite and positive: {self:?}"))
        }
    }
}

/// One thing to draw: a shape, where it is, its colour, and whether it casts
/// a shadow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Primitive {
    /// Pose of the shape frame in the world.
    pub world_from_shape: Isometry3<f64>,
    /// The shape.
    pub shape: Shape,
    /// Albedo, sRGB, each channel in 0..=1.
    pub rgb: [f32; 3],
    /// Whether the primitive is drawn into the sun's shadow map. Every
    /// primitive receives shadows; leave this `false` for the table, which
    /// only has the floor below it: a caster widens the shadow map's extent
    /// and so coarsens every shadow.
    pub casts_shadow: bool,
}

impl Primitive {
    /// Checks pose, sizes and colour.
    pub fn validate(&self) -> Result<(), String> {
        self.shape.validate()?;
        let t = &self.world_from_shape.translation.vector;
        let q = self.world_from_shape.rotation.quaternion();
        if !(t.iter().all(|v| v.is_finite()) && q.coords.iter().all(|v| v.is_finite())) {
            return Err("pose is not finite".into());
        }
        if (q.norm() - 1.0).abs() > 1e-6 {
            return Err(format!(
                "rotation quaternion is not unit (norm {})",
                q.norm()
            ));
        }
        if !self.rgb.iter().all(|c| (0.0..=1.0).contains(c)) {
            return Err(format!("rgb {:?} outside 0..=1", self.rgb));
        }
        Ok(())
    }
}

pub(crate) fn validate_all(primitives: &[Primitive]) -> Result<(), RenderError> {
    for (index, p) in primitives.iter().enumerate() {
        p.validate()
            .map_err(|reason| RenderError::InvalidPrimitive { index, reason })?;
    }
    Ok(())
}

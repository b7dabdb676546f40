//! Primitive shapes (box, cylinder, sphere) as rerun archetypes.
//!
//! Callers convert their own geometry (URDF visuals, simulator objects) into
//! [`VizShape`]; this keeps the visualiser independent of the kinematics and
//! simulator crates.

use nalgebra::Isometry3;
use rerun::RecordingStream;

use crate::VizError;

/// A primitive solid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VizGeometry {
    /// A box with the given full side lengths, metres.
    Box {
        /// Side lengths along x, y, z.
        size_m: [f64; 3],
    },
    /// A cylinder along local z, centred on the origin.
    Cylinder {
        /// Radius, metres.
        radius_m: f64,
        /// Length along z, metres.
        length_m: f64,
    },
    /// A sphere.
    Sphere {
        /// Radius, metres.
        radius_m: f64,
    },
}

/// A shape placed in its entity's frame, with a colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VizShape {
    /// Pose of the shape in its entity's frame.
    pub entity_from_shape: Isometry3<f64>,
    /// The solid.
    pub geometry: VizGeometry,
    /// Colour, 0..1 RGBA.
    pub rgba: [f32; 4],
}

fn color(rgba: [f32; 4]) -> rerun::Color {
    let c = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    rerun::Color::from_unmultiplied_rgba(c(rgba[0]), c(rgba[1]), c(rgba[2]), c(rgba[3]))
}

/// Logs one shape at `entity` (statically when `is_static`).
pub(crate) fn log_shape(
    rec: &RecordingStream,
    entity: &str,
    shape: &VizShape,
    is_static: bool,
) -> Result<(), VizError> {
    let t = shape.entity_from_shape.translation.vector;
    let centre = [t.x as f32, t.y as f32, t.z as f32];
    let q = shape.entity_from_shape.rotation.into_inner();
    let quat = rerun::Quaternion::from_xyzw([q.i as f32, q.j as f32, q.k as f32, q.w as f32]);
    let colour = color(shape.rgba);
    let fill = rerun::FillMode::Solid;
    match shape.geometry {
        VizGeometry::Box { size_m } => {
            let half = [
                0.5 * size_m[0] as f32,
                0.5 * size_m[1] as f32,
                0.5 * size_m[2] as f32,
            ];
            let arch = rerun::Boxes3D::from_centers_and_half_sizes([centre], [half])
                .with_quaternions([quat])
                .with_colors([colour])
                .with_fill_mode(fill);
            log(rec, entity, &arch, is_static)
        }
        VizGeometry::Cylinder { radius_m, length_m } => {
            let arch =
                rerun::Cylinders3D::from_lengths_and_radii([length_m as f32], [radius_m as f32])
                    .with_centers([centre])
                    .with_quaternions([quat])
                    .with_colors([colour])
                    .with_fill_mode(fill);
            log(rec, entity, &arch, is_static)
        }
        VizGeometry::Sphere { radius_m } => {
            let arch = rerun::Ellipsoids3D::from_centers_and_radii([centre], [radius_m as f32])
                .with_colors([colour])
                .with_fill_mode(fill);
            log(rec, entity, &arch, is_static)
        }
    }
}

fn log(
    rec: &RecordingStream,
    entity: &str,
    arch: &impl rerun::AsComponents,
    is_static: bool,
) -> Result<(), VizError> {
    if is_static {
        rec.log_static(entity, arch)?;
    } else {
        rec.log(entity, arch)?;
    }
    Ok(())
}

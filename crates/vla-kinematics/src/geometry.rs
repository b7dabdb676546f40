//! Primitive geometry of links (boxes, cylinders, spheres) read from URDF
//! `<visual>` and `<collision>` elements, with colours resolved from inline
//! or named materials.

use std::collections::HashMap;

use nalgebra::Isometry3;

use crate::model::pose_from_urdf;

/// Colour of a visual whose URDF gives none (light grey, opaque).
pub const DEFAULT_RGBA: [f32; 4] = [0.7, 0.7, 0.7, 1.0];

/// A primitive shape, centred on its frame's origin (URDF conventions:
/// a cylinder's axis is the frame's z axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// A box with these side lengths along x, y, z.
    Box {
        /// Side lengths, metres.
        size_m: [f64; 3],
    },
    /// A cylinder along z.
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

/// One visual element of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visual {
    /// Pose of the shape in the link's frame.
    pub link_from_visual: Isometry3<f64>,
    /// The shape.
    pub geometry: Geometry,
    /// Colour, red green blue alpha in 0..=1.
    pub rgba: [f32; 4],
}

/// One collision element of a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Collision {
    /// Pose of the shape in the link's frame.
    pub link_from_collision: Isometry3<f64>,
    /// The shape.
    pub geometry: Geometry,
}

/// Named colours defined at the top level of a URDF.
pub(crate) fn named_materials(robot: &urdf_rs::Robot) -> HashMap<&str, [f32; 4]> {
    robot
        .materials
        .iter()
        .filter_map(|m| {
            m.color
                .as_ref()
                .map(|c| (m.name.as_str(), rgba_from(&c.rgba.0)))
        })
        .collect()
}

/// A link's visuals and collision shapes; unsupported ones (meshes,
/// degenerate sizes) are described in `skipped_geometry` instead.
pub(crate) fn link_geometry(
    link: &urdf_rs::Link,
    materials: &HashMap<&str, [f32; 4]>,
    skipped_geometry: &mut Vec<String>,
) -> (Vec<Visual>, Vec<Collision>) {
    let mut visuals = Vec::new();
    for visual in &link.visual {
        let rgba = visual
            .material
            .as_ref()
            .and_then(|m| {
                m.color
                    .as_ref()
                    .map(|c| rgba_from(&c.rgba.0))
                    .or_else(|| materials.get(m.name.as_str()).copied())
            })
            .unwrap_or(DEFAULT_RGBA);
        let link_from_shape = pose_from_urdf(&visual.origin);
        match convert_geometry(&visual.geometry) {
            Ok(parts) => {
                visuals.extend(parts.into_iter().map(|(shape_from_part, geometry)| Visual {
                    link_from_visual: link_from_shape * shape_from_part,
                    geometry,
                    rgba,
                }))
            }
            Err(what) => skipped_geometry.push(format!("{}: visual {what}", link.name)),
        }
    }
    let mut collisions = Vec::new();
    for collision in &link.collision {
        let link_from_shape = pose_from_urdf(&collision.origin);
        match convert_geometry(&collision.geometry) {
            Ok(parts) => {
                collisions.extend(
                    parts
                        .into_iter()
                        .map(|(shape_from_part, geometry)| Collision {
                            link_from_collision: link_from_shape * shape_from_part,
                            geometry,
                        }),
                )
            }
            Err(what) => skipped_geometry.push(format!("{}: collision {what}", link.name)),
        }
    }
    (visuals, collisions)
}

fn convert_geometry(
    geometry: &urdf_rs::Geometry,
) -> Result<Vec<(Isometry3<f64>, Geometry)>, String> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    match geometry {
        urdf_rs::Geometry::Box { size } if size.0.iter().all(|&s| positive(s)) => Ok(vec![(
            Isometry3::identity(),
            Geometry::Box { size_m: size.0 },
        )]),
        urdf_rs::Geometry::Cylinder { radius, length }
            if positive(*radius) && positive(*length) =>
        {
            Ok(vec![(
                Isometry3::identity(),
                Geometry::Cylinder {
                    radius_m: *radius,
                    length_m: *length,
                },
            )])
        }
        urdf_rs::Geometry::Sphere { radius } if positive(*radius) => Ok(vec![(
            Isometry3::identity(),
            Geometry::Sphere { radius_m: *radius },
        )]),
        // A capsule is exactly a cylinder with a sphere on each end.
        urdf_rs::Geometry::Capsule { radius, length } if positive(*radius) && positive(*length) => {
            let cap = |z: f64| Isometry3::translation(0.0, 0.0, z);
            Ok(vec![
                (
                    Isometry3::identity(),
                    Geometry::Cylinder {
                        radius_m: *radius,
                        length_m: *length,
                    },
                ),
                (cap(0.5 * length), Geometry::Sphere { radius_m: *radius }),
                (cap(-0.5 * length), Geometry::Sphere { radius_m: *radius }),
            ])
        }
        urdf_rs::Geometry::Mesh { filename, .. } => Err(format!("mesh {filename:?}")),
        other => Err(format!("degenerate {other:?}")),
    }
}

fn rgba_from(rgba: &[f64; 4]) -> [f32; 4] {
    // Narrowing to f32 is intended: colours need no more precision.
    rgba.map(|c| c.clamp(0.0, 1.0) as f32)
}

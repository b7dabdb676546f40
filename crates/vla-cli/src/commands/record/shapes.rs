//! Simulator and URDF geometry as [`VizShape`]s, so that `vla-viz` depends
//! on neither crate.

use nalgebra::Isometry3;
use vla_kinematics::Geometry as UrdfGeometry;
use vla_sim::scene::Geometry as SimGeometry;
use vla_viz::{VizGeometry, VizShape};

/// An object's entity name, e.g. `red_cube`.
pub(super) fn object_name(o: &vla_sim::world::SimObject) -> String {
    o.object.to_string().replace(' ', "_")
}

pub(super) fn urdf_geometry(g: &UrdfGeometry) -> VizGeometry {
    match *g {
        UrdfGeometry::Box { size_m } => VizGeometry::Box { size_m },
        UrdfGeometry::Cylinder { radius_m, length_m } => {
            VizGeometry::Cylinder { radius_m, length_m }
        }
        UrdfGeometry::Sphere { radius_m } => VizGeometry::Sphere { radius_m },
    }
}

/// An object's shape in its body frame (receptacles have their origin at
/// the centre of the base; they are drawn as their outer cylinder, see-through).
pub(super) fn sim_shape(g: &SimGeometry, rgb: [f32; 3]) -> VizShape {
    let solid = [rgb[0], rgb[1], rgb[2], 1.0];
    let (entity_from_shape, geometry, rgba) = match *g {
        SimGeometry::Box { half_extents_m } => (
            Isometry3::identity(),
            VizGeometry::Box {
                size_m: half_extents_m.map(|h| 2.0 * h),
            },
            solid,
        ),
        SimGeometry::Cylinder {
            radius_m,
            half_height_m,
        } => (
            Isometry3::identity(),
            VizGeometry::Cylinder {
                radius_m,
                length_m: 2.0 * half_height_m,
            },
            solid,
        ),
        SimGeometry::Sphere { radius_m } => (
            Isometry3::identity(),
            VizGeometry::Sphere { radius_m },
            solid,
        ),
        SimGeometry::Bowl { radius_m, height_m } | SimGeometry::Plate { radius_m, height_m } => (
            Isometry3::translation(0.0, 0.0, height_m / 2.0),
            VizGeometry::Cylinder {
                radius_m,
                length_m: height_m,
            },
            [rgb[0], rgb[1], rgb[2], 0.6],
        ),
    };
    VizShape {
        entity_from_shape,
        geometry,
        rgba,
    }
}

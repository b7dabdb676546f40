//! A fixed tabletop scene like the simulator's default one, for benches,
//! examples and tests: a table, a 7-DoF-like arm of boxes and cylinders with a
//! parallel gripper, four objects and two bowls, and a third-person camera.
//!
//! World frame: z up, table top at z = 0, robot base at the origin, the
//! workspace in front of it along +x.

use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};

use crate::{Camera, Primitive, Shape};

fn at(x: f64, y: f64, z: f64) -> Isometry3<f64> {
    Isometry3::from_parts(Translation3::new(x, y, z), UnitQuaternion::identity())
}

/// A primitive spanning the segment `from`..`to` (its local z along the segment).
fn link(from: [f64; 3], to: [f64; 3], radius_m: f64, boxy: bool, rgb: [f32; 3]) -> Primitive {
    let (a, b) = (Vector3::from(from), Vector3::from(to));
    let axis = b - a;
    let rotation = UnitQuaternion::rotation_between(&Vector3::z(), &axis)
        .unwrap_or_else(UnitQuaternion::identity);
    let half_height_m = 0.5 * axis.norm();
    let mid = 0.5 * (a + b);
    Primitive {
        world_from_shape: Isometry3::from_parts(Translation3::from(mid), rotation),
        shape: if boxy {
            Shape::Box {
                half_extents_m: [radius_m, radius_m, half_height_m],
            }
        } else {
            Shape::Cylinder {
                radius_m,
                half_height_m,
            }
        },
        rgb,
        casts_shadow: true,
    }
}

fn object(pose: Isometry3<f64>, shape: Shape, rgb: [f32; 3]) -> Primitive {
    Primitive {
        world_from_shape: pose,
        shape,
        rgb,
        casts_shadow: true,
    }
}

/// The primitives of the demo scene: table, 10 arm and gripper parts, 4
/// objects, 2 bowls (17 in all).
pub fn tabletop_primitives() -> Vec<Primitive> {
    let arm = [0.85, 0.86, 0.88];
    let joint = [0.25, 0.27, 0.30];
    let finger = [0.15, 0.15, 0.17];
    let (shoulder, elbow, wrist, palm) = (
        [0.0, 0.0, 0.30],
        [0.22, 0.06, 0.52],
        [0.48, 0.08, 0.36],
        [0.50, 0.08, 0.22],
    );
    vec![
        Primitive {
            world_from_shape: at(0.35, 0.0, 0.0),
            shape: Shape::Plane {
                half_extents_m: [0.55, 0.75],
            },
            rgb: [0.62, 0.48, 0.34],
            casts_shadow: false,
        },
        link([0.0, 0.0, 0.0], [0.0, 0.0, 0.12], 0.08, false, joint),
        link([0.0, 0.0, 0.12], shoulder, 0.055, false, arm),
        link([0.0, -0.06, 0.30], [0.0, 0.07, 0.30], 0.06, false, joint),
        link(shoulder, elbow, 0.045, true, arm),
        link([0.22, -0.0, 0.52], [0.22, 0.12, 0.52], 0.05, false, joint),
        link(elbow, wrist, 0.04, true, arm),
        link(wrist, [0.49, 0.08, 0.27], 0.035, false, joint),
        object(
            at(palm[0], palm[1], palm[2] + 0.04),
            Shape::Box {
                half_extents_m: [0.025, 0.06, 0.012],
            },
            joint,
        ),
        object(
            at(palm[0], palm[1] - 0.045, palm[2] - 0.015),
            Shape::Box {
                half_extents_m: [0.012, 0.008, 0.045],
            },
            finger,
        ),
        object(
            at(palm[0], palm[1] + 0.045, palm[2] - 0.015),
            Shape::Box {
                half_extents_m: [0.012, 0.008, 0.045],
            },
            finger,
        ),
        object(
            Isometry3::from_parts(
                Translation3::new(0.42, -0.16, 0.025),
                UnitQuaternion::from_euler_angles(0.0, 0.0, 0.4),
            ),
            Shape::Box {
                half_extents_m: [0.025; 3],
            },
            [0.85, 0.12, 0.10],
        ),
        object(
            at(0.62, 0.14, 0.025),
            Shape::Box {
                half_extents_m: [0.025; 3],
            },
            [0.12, 0.30, 0.85],
        ),
        object(
            at(0.32, 0.22, 0.04),
            Shape::Cylinder {
                radius_m: 0.025,
                half_height_m: 0.04,
            },
            [0.15, 0.70, 0.25],
        ),
        object(
            at(0.55, -0.02, 0.03),
            Shape::Sphere { radius_m: 0.03 },
            [0.95, 0.80, 0.10],
        ),
        object(
            at(0.70, -0.22, 0.025),
            Shape::Bowl {
                radius_m: 0.08,
                height_m: 0.05,
            },
            [0.20, 0.65, 0.30],
        ),
        object(
            at(0.30, -0.36, 0.025),
            Shape::Bowl {
                radius_m: 0.07,
                height_m: 0.045,
            },
            [0.90, 0.90, 0.88],
        ),
    ]
}

/// The third-person demo camera: in front of and above the table, facing the
/// robot, 55° vertical field of view.
pub fn tabletop_camera(width_px: u32, height_px: u32) -> Camera {
    Camera::look_at(
        Point3::new(1.25, 0.30, 0.75),
        Point3::new(0.38, 0.0, 0.08),
        Vector3::z(),
        55f64.to_radians(),
        width_px,
        height_px,
    )
}

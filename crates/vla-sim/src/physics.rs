//! Rigid-body physics with rapier3d: the floor, the table, receptacles fixed to it,
//! dynamic objects, and kinematic bodies that follow the robot's links.
//!
//! Our code uses nalgebra `Isometry3<f64>` (world frame, z up); rapier 0.36
//! works in `f32` with glam types. The conversion happens only in this module.

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion, Vector3};
use rapier3d::prelude::*;

use crate::scene::{Geometry, SceneConfig};

/// Wall segments of a bowl's collider.
const BOWL_SEGMENTS: usize = 16;
/// Wall and floor thickness of bowls, metres.
const BOWL_WALL_M: f64 = 0.006;

/// A primitive collider shape in a body's frame (cylinders along local z).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColliderShape {
    /// Box with half extents.
    Box {
        /// Half sizes.
        half_extents_m: [f64; 3],
    },
    /// Cylinder along local z.
    Cylinder {
        /// Radius.
        radius_m: f64,
        /// Half height.
        half_height_m: f64,
    },
    /// Ball.
    Sphere {
        /// Radius.
        radius_m: f64,
    },
}

/// Converts a pose to rapier's.
pub fn to_pose(iso: &Isometry3<f64>) -> Pose {
    let t = iso.translation.vector;
    let q = iso.rotation.quaternion();
    Pose::from_parts(
        Vector::new(t.x as f32, t.y as f32, t.z as f32),
        Rotation::from_xyzw(q.i as f32, q.j as f32, q.k as f32, q.w as f32).normalize(),
    )
}

/// Converts rapier's pose to ours.
pub fn from_pose(pose: &Pose) -> Isometry3<f64> {
    let t = pose.translation;
    let r = pose.rotation;
    Isometry3::from_parts(
        Translation3::new(t.x as f64, t.y as f64, t.z as f64),
        UnitQuaternion::from_quaternion(Quaternion::new(
            r.w as f64, r.x as f64, r.y as f64, r.z as f64,
        )),
    )
}

fn shared_shape(shape: ColliderShape) -> SharedShape {
    match shape {
        ColliderShape::Box { half_extents_m: h } => {
            SharedShape::cuboid(h[0] as f32, h[1] as f32, h[2] as f32)
        }
        ColliderShape::Cylinder {
            radius_m,
            half_height_m,
        } => SharedShape::cylinder(half_height_m as f32, radius_m as f32),
        ColliderShape::Sphere { radius_m } => SharedShape::ball(radius_m as f32),
    }
}

/// rapier cylinders run along local y; ours along z.
fn shape_frame(shape: ColliderShape) -> Isometry3<f64> {
    match shape {
        ColliderShape::Cylinder { .. } => {
            Isometry3::rotation(Vector3::x() * std::f64::consts::FRAC_PI_2)
        }
        _ => Isometry3::identity(),
    }
}

/// The colliders of a catalogue geometry, in the object's frame (origin at
/// its centre for dynamic objects, at the centre of its base for receptacles).
pub fn geometry_colliders(g: &Geometry) -> Vec<(Isometry3<f64>, ColliderShape)> {
    match *g {
        Geometry::Box { half_extents_m } => {
            vec![(Isometry3::identity(), ColliderShape::Box { half_extents_m })]
        }
        Geometry::Cylinder {
            radius_m,
            half_height_m,
        } => vec![(
            Isometry3::identity(),
            ColliderShape::Cylinder {
                radius_m,
                half_height_m,
            },
        )],
        Geometry::Sphere { radius_m } => {
            vec![(Isometry3::identity(), ColliderShape::Sphere { radius_m })]
        }
        Geometry::Plate { radius_m, height_m } => vec![(
            Isometry3::translation(0.0, 0.0, height_m / 2.0),
            ColliderShape::Cylinder {
                radius_m,
                half_height_m: height_m / 2.0,
            },
        )],
        Geometry::Bowl { radius_m, height_m } => {
            let mut v = vec![(
                Isometry3::translation(0.0, 0.0, BOWL_WALL_M / 2.0),
                ColliderShape::Cylinder {
                    radius_m,
                    half_height_m: BOWL_WALL_M / 2.0,
                },
            )];
            let seg_half_len =
                radius_m * (std::f64::consts::PI / BOWL_SEGMENTS as f64).tan() + BOWL_WALL_M;
            for k in 0..BOWL_SEGMENTS {
                let a = k as f64 * std::f64::consts::TAU / BOWL_SEGMENTS as f64;
                let rc = radius_m - BOWL_WALL_M / 2.0;
                v.push((
                    Isometry3::new(
                        Vector3::new(rc * a.cos(), rc * a.sin(), height_m / 2.0),
                        Vector3::z() * a,
                    ),
                    ColliderShape::Box {
                        half_extents_m: [BOWL_WALL_M / 2.0, seg_half_len, height_m / 2.0],
                    },
                ));
            }
            v
        }
    }
}

/// The physics world.
pub struct Physics {
    world: PhysicsWorld,
    friction: f32,
}

impl std::fmt::Debug for Physics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Physics")
            .field("bodies", &self.world.bodies.len())
            .field("colliders", &self.world.colliders.len())
            .finish()
    }
}

impl Physics {
    /// A world with gravity, the scene's time step and the table.
    pub fn new(scene: &SceneConfig) -> Self {
        let mut world = PhysicsWorld::new();
        world.gravity = Vector::new(0.0, 0.0, -scene.physics.gravity_m_s2 as f32);
        let dt = scene.policy_dt_secs() / scene.physics.substeps as f64;
        world.integration_parameters.dt = dt as f32;
        world.integration_parameters.num_solver_iterations = scene.physics.solver_iterations;
        let friction = scene.table.friction as f32;
        let t = &scene.table;
        let table_from_world = Isometry3::translation(
            t.centre_xy_m[0],
            t.centre_xy_m[1],
            t.height_m - t.thickness_m / 2.0,
        );
        let body = world.insert_body(RigidBodyBuilder::fixed().pose(to_pose(&table_from_world)));
        let collider = ColliderBuilder::cuboid(
            (t.size_xy_m[0] / 2.0) as f32,
            (t.size_xy_m[1] / 2.0) as f32,
            (t.thickness_m / 2.0) as f32,
        )
        .friction(friction);
        world.insert_collider(collider, Some(body));
        // The floor (world z = 0): an object pushed off the table lands
        // there instead of falling for the rest of the episode.
        let floor = world.insert_body(RigidBodyBuilder::fixed());
        world.insert_collider(
            ColliderBuilder::new(SharedShape::halfspace(Vector::Z)).friction(friction),
            Some(floor),
        );
        Self { world, friction }
    }

    fn attach(
        &mut self,
        body: RigidBodyHandle,
        colliders: &[(Isometry3<f64>, ColliderShape)],
        mass_kg: Option<f64>,
    ) {
        let n = colliders.len().max(1) as f64;
        for (body_from_shape, shape) in colliders {
            let pose = body_from_shape * shape_frame(*shape);
            let mut builder = ColliderBuilder::new(shared_shape(*shape))
                .position(to_pose(&pose))
                .friction(self.friction)
                .restitution(0.0);
            if let Some(m) = mass_kg {
                builder = builder.mass((m / n) as f32);
            }
            self.world.insert_collider(builder, Some(body));
        }
    }

    /// Adds a dynamic object with its centre at `world_from_object`.
    pub fn add_dynamic(
        &mut self,
        world_from_object: &Isometry3<f64>,
        colliders: &[(Isometry3<f64>, ColliderShape)],
        mass_kg: f64,
        angular_damping: f64,
    ) -> RigidBodyHandle {
        let body = self.world.insert_body(
            RigidBodyBuilder::dynamic()
                .pose(to_pose(world_from_object))
                .angular_damping(angular_damping as f32)
                .linear_damping(0.1),
        );
        self.attach(body, colliders, Some(mass_kg));
        body
    }

    /// Adds a body fixed to the world.
    pub fn add_fixed(
        &mut self,
        world_from_body: &Isometry3<f64>,
        colliders: &[(Isometry3<f64>, ColliderShape)],
    ) -> RigidBodyHandle {
        let body = self
            .world
            .insert_body(RigidBodyBuilder::fixed().pose(to_pose(world_from_body)));
        self.attach(body, colliders, None);
        body
    }

    /// Adds a kinematic body (moved with [`Self::set_kinematic_target`]).
    pub fn add_kinematic(
        &mut self,
        world_from_body: &Isometry3<f64>,
        colliders: &[(Isometry3<f64>, ColliderShape)],
    ) -> RigidBodyHandle {
        let body = self.world.insert_body(
            RigidBodyBuilder::kinematic_position_based().pose(to_pose(world_from_body)),
        );
        self.attach(body, colliders, None);
        body
    }

    /// Where a kinematic body must be at the end of the next step.
    pub fn set_kinematic_target(
        &mut self,
        body: RigidBodyHandle,
        world_from_body: &Isometry3<f64>,
    ) {
        if let Some(b) = self.world.bodies.get_mut(body) {
            b.set_next_kinematic_position(to_pose(world_from_body));
        }
    }

    /// Makes a body kinematic (grasped) or dynamic again (released, with the
    /// given linear velocity).
    pub fn set_kinematic(
        &mut self,
        body: RigidBodyHandle,
        kinematic: bool,
        linvel_m_s: Vector3<f64>,
    ) {
        if let Some(b) = self.world.bodies.get_mut(body) {
            if kinematic {
                b.set_body_type(RigidBodyType::KinematicPositionBased, true);
            } else {
                b.set_body_type(RigidBodyType::Dynamic, true);
                b.set_linvel(
                    Vector::new(
                        linvel_m_s.x as f32,
                        linvel_m_s.y as f32,
                        linvel_m_s.z as f32,
                    ),
                    true,
                );
                b.set_angvel(Vector::ZERO, true);
            }
        }
    }

    /// Wakes every sleeping body whose origin is within `radius_m` of
    /// `p_in_world`: rapier does not wake a sleeping body when a kinematic
    /// body (the hand) moves into it.
    pub fn wake_near(&mut self, p_in_world: &Vector3<f64>, radius_m: f64) {
        let p = Vector::new(
            p_in_world.x as f32,
            p_in_world.y as f32,
            p_in_world.z as f32,
        );
        let r2 = (radius_m * radius_m) as f32;
        let handles: Vec<RigidBodyHandle> = self
            .world
            .bodies
            .iter()
            .filter(|(_, b)| {
                b.is_dynamic() && b.is_sleeping() && (b.translation() - p).length_squared() < r2
            })
            .map(|(h, _)| h)
            .collect();
        for h in handles {
            self.world.wake_up(h, true);
        }
    }

    /// Advances one physics step.
    pub fn step(&mut self) {
        self.world.step();
    }

    /// Physics time step, seconds.
    pub fn dt_secs(&self) -> f64 {
        self.world.integration_parameters.dt as f64
    }

    /// `world_from_body` of a body (identity for an unknown handle).
    pub fn pose(&self, body: RigidBodyHandle) -> Isometry3<f64> {
        self.world
            .bodies
            .get(body)
            .map(|b| from_pose(b.position()))
            .unwrap_or_else(Isometry3::identity)
    }

    /// Linear velocity of a body, m/s.
    pub fn linvel(&self, body: RigidBodyHandle) -> Vector3<f64> {
        self.world
            .bodies
            .get(body)
            .map(|b| {
                let v = b.linvel();
                Vector3::new(v.x as f64, v.y as f64, v.z as f64)
            })
            .unwrap_or_else(Vector3::zeros)
    }

    /// Angular speed of a body, rad/s.
    pub fn angular_speed(&self, body: RigidBodyHandle) -> f64 {
        self.world
            .bodies
            .get(body)
            .map(|b| b.angvel().length() as f64)
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pose_conversion_round_trips_within_f32() {
        let iso = Isometry3::new(Vector3::new(0.4, -0.2, 0.77), Vector3::new(0.3, -1.1, 2.0));
        let back = from_pose(&to_pose(&iso));
        assert!((back.translation.vector - iso.translation.vector).norm() < 1e-6);
        assert!(back.rotation.angle_to(&iso.rotation) < 1e-6);
    }

    #[test]
    fn bowl_colliders_ring_the_rim() {
        let g = Geometry::Bowl {
            radius_m: 0.075,
            height_m: 0.045,
        };
        let c = geometry_colliders(&g);
        assert_eq!(c.len(), 1 + BOWL_SEGMENTS);
        for (pose, _) in &c[1..] {
            let r = pose.translation.vector.xy().norm();
            assert!((r - (0.075 - BOWL_WALL_M / 2.0)).abs() < 1e-12);
        }
    }
}

//! The world: physics, the arm and the objects, advanced one policy step at a
//! time, plus the grasp model.
//!
//! Grasp model (not friction-based): while the gripper is commanded closed
//! and nothing is held, an object is *grasped* as soon as the jaws enclose
//! it: its centre lies between the finger pads (within the pad width along
//! the hand's x, within 3 cm of the TCP along the approach axis z, within
//! 1.5 cm of the TCP along the finger axis y) and the fingers have closed to
//! within 4 mm of its half-width along y, but not more than 3 mm past it
//! (jaws that were already closed enclose nothing). The grasped object then becomes a
//! kinematic body rigidly attached to the TCP and the fingers stop at its
//! width. Opening the gripper (< 0.5) releases it as a dynamic body with the
//! TCP's velocity. Everything else (falling, resting, stacking, pushing by
//! the hand and fingers, objects knocking each other) is rapier's contact
//! physics.

use nalgebra::{Isometry3, Vector3};
use rapier3d::prelude::RigidBodyHandle;
use vla_core::{Action, JointState};

use crate::arm::Arm;
use crate::goal::ObjectRef;
use crate::layout::Placement;
use crate::physics::{geometry_colliders, Physics};
use crate::scene::{Geometry, SceneConfig};
use crate::SimError;

/// Jaw closure slack at which an enclosed object counts as grasped, metres.
pub const GRASP_SLACK_M: f64 = 0.004;
/// The fingers may already be this far inside an object's half-width (the
/// jaws closing during one substep); closed jaws enclose nothing, metres.
pub const GRASP_MAX_PENETRATION_M: f64 = 0.003;
/// Largest offset of a graspable object's centre from the TCP along the finger axis, metres.
pub const GRASP_MAX_OFFSET_Y_M: f64 = 0.015;
/// Largest offset along the approach axis, metres.
pub const GRASP_MAX_OFFSET_Z_M: f64 = 0.03;
/// Angular damping of balls (stands in for rolling resistance), 1/s.
const SPHERE_ANGULAR_DAMPING: f64 = 3.0;
/// Time objects settle after being placed, seconds.
const INITIAL_SETTLE_SECS: f64 = 0.3;

/// An object in the world.
#[derive(Debug, Clone)]
pub struct SimObject {
    /// Its name.
    pub object: ObjectRef,
    /// Its geometry.
    pub geometry: Geometry,
    /// Its colour.
    pub rgb: [f32; 3],
    /// Its rigid body.
    pub body: RigidBodyHandle,
    /// Pose after the initial settling (origin at the centre for dynamic
    /// objects, at the centre of the base for receptacles).
    pub start_pose: Isometry3<f64>,
}

/// The held object.
#[derive(Debug, Clone, Copy)]
struct Held {
    index: usize,
    tcp_from_object: Isometry3<f64>,
    half_width_m: f64,
}

/// The simulated world.
#[derive(Debug)]
pub struct World {
    scene: SceneConfig,
    physics: Physics,
    arm: Arm,
    objects: Vec<SimObject>,
    held: Option<Held>,
    time_secs: f64,
    steps: usize,
}

/// Half-width of `g` (posed by `world_from_object`) along the world
/// direction `axis` (unit).
fn half_width_along(g: &Geometry, world_from_object: &Isometry3<f64>, axis: &Vector3<f64>) -> f64 {
    let a = world_from_object.rotation.inverse() * axis;
    match *g {
        Geometry::Box { half_extents_m: h } => {
            h[0] * a.x.abs() + h[1] * a.y.abs() + h[2] * a.z.abs()
        }
        Geometry::Cylinder {
            radius_m,
            half_height_m,
        } => radius_m * a.x.hypot(a.y) + half_height_m * a.z.abs(),
        Geometry::Sphere { radius_m } => radius_m,
        Geometry::Bowl { radius_m, .. } | Geometry::Plate { radius_m, .. } => radius_m,
    }
}

impl World {
    /// Builds the world: table, receptacles and objects at `placements`, the
    /// arm at home; lets the objects settle.
    pub fn new(scene: &SceneConfig, placements: &[Placement]) -> Result<Self, SimError> {
        let mut physics = Physics::new(scene);
        let arm = Arm::new(scene, &mut physics)?;
        let table_z = scene.table.height_m;
        let mut objects = Vec::with_capacity(placements.len());
        for p in placements {
            let shape = scene
                .shape(&p.object.shape)
                .ok_or_else(|| SimError::Goal(format!("unknown shape {:?}", p.object.shape)))?;
            let rgb = *scene
                .colors
                .get(&p.object.color)
                .ok_or_else(|| SimError::Goal(format!("unknown colour {:?}", p.object.color)))?;
            let geometry = shape.geometry()?;
            let colliders = geometry_colliders(&geometry);
            let body = if geometry.is_receptacle() {
                let pose = Isometry3::new(
                    Vector3::new(p.xy_m[0], p.xy_m[1], table_z),
                    Vector3::z() * p.yaw_rad,
                );
                physics.add_fixed(&pose, &colliders)
            } else {
                let pose = Isometry3::new(
                    Vector3::new(
                        p.xy_m[0],
                        p.xy_m[1],
                        table_z + geometry.height_m() / 2.0 + 0.001,
                    ),
                    Vector3::z() * p.yaw_rad,
                );
                let damping = if matches!(geometry, Geometry::Sphere { .. }) {
                    SPHERE_ANGULAR_DAMPING
                } else {
                    0.0
                };
                physics.add_dynamic(&pose, &colliders, shape.mass_kg(), damping)
            };
            objects.push(SimObject {
                object: p.object.clone(),
                geometry,
                rgb,
                body,
                start_pose: Isometry3::identity(),
            });
        }
        let mut world = Self {
            scene: scene.clone(),
            physics,
            arm,
            objects,
            held: None,
            time_secs: 0.0,
            steps: 0,
        };
        let n = (INITIAL_SETTLE_SECS / world.physics.dt_secs()).ceil() as usize;
        for _ in 0..n {
            world.physics.step();
        }
        for o in &mut world.objects {
            o.start_pose = world.physics.pose(o.body);
        }
        Ok(world)
    }

    /// Advances one policy step: the action goes through the arm's
    /// controller, then the physics runs its substeps.
    pub fn step(&mut self, action: &Action) -> Result<(), SimError> {
        action.check_finite()?;
        let dt_policy = self.scene.policy_dt_secs();
        self.arm.begin_step(action, dt_policy)?;
        let n = self.scene.physics.substeps;
        let dt = self.physics.dt_secs();
        for k in 1..=n {
            self.physics_substep(|arm, min_finger, physics| {
                arm.substep(k, n, dt, min_finger, physics)
            })?;
        }
        self.time_secs += dt_policy;
        self.steps += 1;
        Ok(())
    }

    /// Advances one physics substep ([`Self::physics_dt_secs`]) with the arm
    /// following joint position targets from outside (e.g. a ROS 2 joint
    /// command topic) instead of actions: see [`Arm::track_substep`]. The
    /// gripper closes when `close_gripper`. Does not count as a policy step.
    pub fn track_substep(
        &mut self,
        targets_rad: &[f64],
        close_gripper: bool,
    ) -> Result<(), SimError> {
        let dt = self.physics.dt_secs();
        self.physics_substep(|arm, min_finger, physics| {
            arm.track_substep(targets_rad, close_gripper, dt, min_finger, physics)
        })?;
        self.time_secs += dt;
        Ok(())
    }

    /// Seconds of one physics substep.
    pub fn physics_dt_secs(&self) -> f64 {
        self.physics.dt_secs()
    }

    /// One physics substep after `move_arm` placed the arm: carries or
    /// releases the held object, steps the physics, checks for a grasp.
    fn physics_substep(
        &mut self,
        move_arm: impl FnOnce(&mut Arm, f64, &mut Physics) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        let dt = self.physics.dt_secs();
        {
            let before = self.arm.world_from_tcp()?;
            let min_finger = self.held.map(|h| h.half_width_m).unwrap_or(0.0);
            move_arm(&mut self.arm, min_finger, &mut self.physics)?;
            let tcp = self.arm.world_from_tcp()?;
            if let Some(h) = self.held {
                if self.arm.closing() {
                    let body = self.objects[h.index].body;
                    self.physics
                        .set_kinematic_target(body, &(tcp * h.tcp_from_object));
                } else {
                    let v = (tcp.translation.vector - before.translation.vector) / dt;
                    self.physics
                        .set_kinematic(self.objects[h.index].body, false, v);
                    self.held = None;
                }
            }
            self.physics.wake_near(&tcp.translation.vector, 0.2);
            self.physics.step();
            if self.held.is_none() && self.arm.closing() {
                self.try_grasp(&tcp);
            }
        }
        Ok(())
    }

    /// Checks the grasp condition for every movable object.
    fn try_grasp(&mut self, world_from_tcp: &Isometry3<f64>) {
        let y_axis = world_from_tcp.rotation * Vector3::y();
        let finger = self.arm.finger_m();
        for (index, o) in self.objects.iter().enumerate() {
            if o.geometry.is_receptacle() {
                continue;
            }
            let pose = self.physics.pose(o.body);
            let p = world_from_tcp.inverse() * pose * nalgebra::Point3::origin();
            let half_y = half_width_along(&o.geometry, &pose, &y_axis);
            let pad_half_x = half_width_along(
                &o.geometry,
                &pose,
                &(world_from_tcp.rotation * Vector3::x()),
            )
            .max(0.012);
            if p.x.abs() <= pad_half_x
                && p.y.abs() <= GRASP_MAX_OFFSET_Y_M
                && p.z.abs() <= GRASP_MAX_OFFSET_Z_M
                && finger <= half_y + GRASP_SLACK_M
                && finger >= half_y - GRASP_MAX_PENETRATION_M
            {
                self.physics.set_kinematic(o.body, true, Vector3::zeros());
                self.held = Some(Held {
                    index,
                    tcp_from_object: world_from_tcp.inverse() * pose,
                    half_width_m: half_y,
                });
                return;
            }
        }
    }

    /// The scene.
    pub fn scene(&self) -> &SceneConfig {
        &self.scene
    }

    /// The objects, in placement order.
    pub fn objects(&self) -> &[SimObject] {
        &self.objects
    }

    /// Index of the named object.
    pub fn index_of(&self, r: &ObjectRef) -> Option<usize> {
        self.objects.iter().position(|o| &o.object == r)
    }

    /// Current pose of object `i`.
    pub fn pose(&self, i: usize) -> Isometry3<f64> {
        self.objects
            .get(i)
            .map(|o| self.physics.pose(o.body))
            .unwrap_or_else(Isometry3::identity)
    }

    /// Current linear speed of object `i`, m/s.
    pub fn speed_m_s(&self, i: usize) -> f64 {
        self.objects
            .get(i)
            .map(|o| self.physics.linvel(o.body).norm())
            .unwrap_or(0.0)
    }

    /// Current angular speed of object `i`, rad/s.
    pub fn angular_speed_rad_s(&self, i: usize) -> f64 {
        self.objects
            .get(i)
            .map(|o| self.physics.angular_speed(o.body))
            .unwrap_or(0.0)
    }

    /// Index of the held object.
    pub fn held(&self) -> Option<usize> {
        self.held.map(|h| h.index)
    }

    /// `world_from_tcp` now.
    pub fn world_from_tcp(&self) -> Result<Isometry3<f64>, SimError> {
        self.arm.world_from_tcp()
    }

    /// The arm.
    pub fn arm(&self) -> &Arm {
        &self.arm
    }

    /// The measured joint state.
    pub fn joint_state(&self) -> Result<JointState, SimError> {
        self.arm.joint_state(self.time_secs)
    }

    /// Simulated time, seconds.
    pub fn time_secs(&self) -> f64 {
        self.time_secs
    }

    /// Policy steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Height of the table top, metres.
    pub fn table_z_m(&self) -> f64 {
        self.scene.table.height_m
    }
}

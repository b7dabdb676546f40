//! The simulated arm: a URDF chain driven exactly like a real arm. Each
//! policy step the action goes through the kinematics layer's
//! `Controller::step` (EE delta → IK → limited joint command); the joint
//! target is then reached by linear interpolation over the physics substeps
//! (a perfect position-controlled arm). The gripper's fingers move at a fixed
//! speed towards open (gripper < 0.5) or closed. The hand and finger links
//! are kinematic bodies that follow forward kinematics, so they push objects.

use std::collections::HashMap;

use nalgebra::Isometry3;
use rapier3d::prelude::RigidBodyHandle;
use vla_core::{Action, JointState};
use vla_kinematics::{
    Chain, Controller, ControllerConfig, Geometry as UrdfGeometry, RobotModel, StepResult,
};

use crate::physics::{ColliderShape, Physics};
use crate::scene::SceneConfig;
use crate::SimError;

/// A link that collides: its kinematic body and the link's name.
#[derive(Debug, Clone)]
struct LinkBody {
    link: String,
    body: RigidBodyHandle,
}

/// A link visual posed in the world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PosedVisual {
    /// Pose of the visual's frame.
    pub world_from_visual: Isometry3<f64>,
    /// Its geometry (cylinders along the frame's z).
    pub geometry: UrdfGeometry,
    /// Its colour.
    pub rgba: [f32; 4],
}

/// The arm, its gripper and their kinematic bodies.
pub struct Arm {
    chain: Chain,
    model: RobotModel,
    controller: Controller,
    world_from_base: Isometry3<f64>,
    positions_rad: Vec<f64>,
    step_start_rad: Vec<f64>,
    step_goal_rad: Vec<f64>,
    finger_joints: Vec<String>,
    /// Finger joints that are not URDF mimics (mimics follow their leader).
    driven_finger_joints: Vec<String>,
    finger_open_m: f64,
    finger_speed_m_s: f64,
    finger_m: f64,
    finger_target_m: f64,
    links: Vec<LinkBody>,
    last_step: Option<StepResult>,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("positions_rad", &self.positions_rad)
            .field("finger_m", &self.finger_m)
            .finish()
    }
}

/// Converts a URDF visual's geometry to a collider shape.
fn visual_shape(g: &UrdfGeometry) -> Option<ColliderShape> {
    match *g {
        UrdfGeometry::Box { size_m } => Some(ColliderShape::Box {
            half_extents_m: [size_m[0] / 2.0, size_m[1] / 2.0, size_m[2] / 2.0],
        }),
        UrdfGeometry::Cylinder { radius_m, length_m } => Some(ColliderShape::Cylinder {
            radius_m,
            half_height_m: length_m / 2.0,
        }),
        UrdfGeometry::Sphere { radius_m } => Some(ColliderShape::Sphere { radius_m }),
    }
}

impl Arm {
    /// Loads the scene's robot, puts it at its home pose and adds its
    /// collision links to `physics`.
    pub fn new(scene: &SceneConfig, physics: &mut Physics) -> Result<Self, SimError> {
        let r = &scene.robot;
        let urdf = scene.urdf_path();
        let err = |e: &dyn std::fmt::Display| SimError::Robot(format!("{}: {e}", urdf.display()));
        let chain = Chain::from_urdf_file(&urdf, Some(&r.base_link), Some(&r.tip_link))
            .map_err(|e| err(&e))?;
        let model = RobotModel::from_urdf_file(&urdf).map_err(|e| err(&e))?;
        if r.home_positions_rad.len() != chain.dof() {
            return Err(SimError::Robot(format!(
                "home_positions_rad has {} values, the chain {} → {} has {} joints",
                r.home_positions_rad.len(),
                r.base_link,
                r.tip_link,
                chain.dof()
            )));
        }
        // A mimic joint refuses a value of its own: probe which fingers are driven.
        let driven_finger_joints: Vec<String> = r
            .finger_joints
            .iter()
            .filter(|f| {
                let probe: HashMap<String, f64> = [((*f).clone(), 0.0)].into_iter().collect();
                model.link_poses(&probe).is_ok()
            })
            .cloned()
            .collect();
        if driven_finger_joints.is_empty() {
            return Err(SimError::Robot(format!(
                "none of the finger joints {:?} can be driven",
                r.finger_joints
            )));
        }
        let config = ControllerConfig::default_for(&chain);
        let controller = Controller::new(chain.clone(), config).map_err(|e| err(&e))?;
        let mut arm = Self {
            chain,
            model,
            controller,
            world_from_base: r.world_from_base(),
            positions_rad: r.home_positions_rad.clone(),
            step_start_rad: r.home_positions_rad.clone(),
            step_goal_rad: r.home_positions_rad.clone(),
            finger_joints: r.finger_joints.clone(),
            driven_finger_joints,
            finger_open_m: r.finger_open_m,
            finger_speed_m_s: r.finger_speed_m_s,
            finger_m: r.finger_open_m,
            finger_target_m: r.finger_open_m,
            links: Vec::new(),
            last_step: None,
        };
        let poses = arm.world_from_links()?;
        for link in &r.collision_links {
            let colliders: Vec<(Isometry3<f64>, ColliderShape)> = arm
                .model
                .link_visuals(link)
                .iter()
                .filter_map(|v| visual_shape(&v.geometry).map(|s| (v.link_from_visual, s)))
                .collect();
            if colliders.is_empty() {
                return Err(SimError::Robot(format!(
                    "collision link {link:?} has no primitive visuals"
                )));
            }
            let pose = poses
                .get(link)
                .ok_or_else(|| SimError::Robot(format!("no link {link:?} in the URDF")))?;
            let body = physics.add_kinematic(pose, &colliders);
            arm.links.push(LinkBody {
                link: link.clone(),
                body,
            });
        }
        Ok(arm)
    }

    /// `world_from_link` of every link at the current joint positions.
    pub fn world_from_links(&self) -> Result<HashMap<String, Isometry3<f64>>, SimError> {
        let mut joints: HashMap<String, f64> = self
            .chain
            .joint_names()
            .iter()
            .cloned()
            .zip(self.positions_rad.iter().copied())
            .collect();
        for f in &self.driven_finger_joints {
            joints.insert(f.clone(), self.finger_m);
        }
        let root_from_links = self
            .model
            .link_poses(&joints)
            .map_err(|e| SimError::Robot(e.to_string()))?;
        Ok(root_from_links
            .into_iter()
            .map(|(name, pose)| (name, self.world_from_base * pose))
            .collect())
    }

    /// `world_from_tcp` at the current joint positions.
    pub fn world_from_tcp(&self) -> Result<Isometry3<f64>, SimError> {
        let base_from_tcp = self
            .chain
            .fk(&self.positions_rad)
            .map_err(|e| SimError::Robot(e.to_string()))?;
        Ok(self.world_from_base * base_from_tcp)
    }

    /// The arm's kinematic chain (base to TCP).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The whole robot description (every link and its geometry).
    pub fn model(&self) -> &RobotModel {
        &self.model
    }

    /// `world_from_base` of the arm.
    pub fn world_from_base(&self) -> Isometry3<f64> {
        self.world_from_base
    }

    /// Arm joint positions, radians.
    pub fn positions_rad(&self) -> &[f64] {
        &self.positions_rad
    }

    /// Opening of each finger, metres (0 = closed).
    pub fn finger_m(&self) -> f64 {
        self.finger_m
    }

    /// Opening of each finger when fully open, metres.
    pub fn finger_open_m(&self) -> f64 {
        self.finger_open_m
    }

    /// The measured joint state: arm joints then finger joints.
    pub fn joint_state(&self, stamp_secs: f64) -> Result<JointState, SimError> {
        let mut names: Vec<String> = self.chain.joint_names().to_vec();
        let mut q = self.positions_rad.clone();
        for f in &self.finger_joints {
            names.push(f.clone());
            q.push(self.finger_m);
        }
        Ok(JointState::new(names, q, stamp_secs)?)
    }

    /// The controller's answer to the last action.
    pub fn last_step(&self) -> Option<&StepResult> {
        self.last_step.as_ref()
    }

    /// Starts a policy step: the action goes through the controller; the
    /// joint command becomes the target of the coming substeps; the gripper
    /// target is open below 0.5 and closed from 0.5.
    pub fn begin_step(&mut self, action: &Action, dt_secs: f64) -> Result<(), SimError> {
        let result = self.controller.step(&self.positions_rad, action, dt_secs);
        if result.command.len() != self.positions_rad.len()
            || result.command.iter().any(|q| !q.is_finite())
        {
            return Err(SimError::Robot(format!(
                "controller returned an invalid command {:?}",
                result.command
            )));
        }
        self.step_start_rad = self.positions_rad.clone();
        self.step_goal_rad = result.command.clone();
        self.last_step = Some(result);
        self.finger_target_m = if action.gripper >= 0.5 {
            0.0
        } else {
            self.finger_open_m
        };
        Ok(())
    }

    /// Moves joints to substep `k` of `n` (1-based) and the fingers by one
    /// substep of `dt_secs`, never closing them below `min_finger_m` (the
    /// width of a held object); then sets the link bodies' kinematic targets.
    pub fn substep(
        &mut self,
        k: usize,
        n: usize,
        dt_secs: f64,
        min_finger_m: f64,
        physics: &mut Physics,
    ) -> Result<(), SimError> {
        let s = k as f64 / n.max(1) as f64;
        for ((q, a), b) in self
            .positions_rad
            .iter_mut()
            .zip(&self.step_start_rad)
            .zip(&self.step_goal_rad)
        {
            *q = a + (b - a) * s;
        }
        self.finish_substep(dt_secs, min_finger_m, physics)
    }

    /// One physics substep of `dt_secs` following joint position targets
    /// from outside (a position-controlled arm driven by a joint command
    /// topic, as under ros2_control): each joint moves toward its target,
    /// clamped into its position limits, at most its URDF velocity limit ×
    /// `dt_secs`; the gripper closes when `close_gripper`. The targets are
    /// checked (length, finite) and the arm does not move when they are bad.
    pub fn track_substep(
        &mut self,
        targets_rad: &[f64],
        close_gripper: bool,
        dt_secs: f64,
        min_finger_m: f64,
        physics: &mut Physics,
    ) -> Result<(), SimError> {
        if targets_rad.len() != self.positions_rad.len() {
            return Err(SimError::Robot(format!(
                "joint command has {} positions, the arm has {} joints",
                targets_rad.len(),
                self.positions_rad.len()
            )));
        }
        if let Some(bad) = targets_rad.iter().find(|q| !q.is_finite()) {
            return Err(SimError::Robot(format!(
                "joint command position {bad} is not finite"
            )));
        }
        let velocity = &self.controller.config().velocity_limits_rad_s;
        for ((q, target), (limits, v_max)) in self
            .positions_rad
            .iter_mut()
            .zip(targets_rad)
            .zip(self.chain.limits().iter().zip(velocity))
        {
            let max_move = v_max * dt_secs;
            *q += (limits.clamp(*target) - *q).clamp(-max_move, max_move);
        }
        self.step_start_rad.clone_from(&self.positions_rad);
        self.step_goal_rad.clone_from(&self.positions_rad);
        self.finger_target_m = if close_gripper {
            0.0
        } else {
            self.finger_open_m
        };
        self.finish_substep(dt_secs, min_finger_m, physics)
    }

    /// Moves the fingers by one substep and sets the link bodies' targets.
    fn finish_substep(
        &mut self,
        dt_secs: f64,
        min_finger_m: f64,
        physics: &mut Physics,
    ) -> Result<(), SimError> {
        let max_move = self.finger_speed_m_s * dt_secs;
        let target = self
            .finger_target_m
            .max(min_finger_m)
            .min(self.finger_open_m);
        let delta = (target - self.finger_m).clamp(-max_move, max_move);
        self.finger_m = (self.finger_m + delta).clamp(0.0, self.finger_open_m);
        let poses = self.world_from_links()?;
        for lb in &self.links {
            if let Some(p) = poses.get(&lb.link) {
                physics.set_kinematic_target(lb.body, p);
            }
        }
        Ok(())
    }

    /// Whether the gripper is commanded closed.
    pub fn closing(&self) -> bool {
        self.finger_target_m < self.finger_open_m / 2.0
    }

    /// The robot's link visuals posed in the world, for rendering.
    pub fn visuals(&self) -> Result<Vec<PosedVisual>, SimError> {
        let poses = self.world_from_links()?;
        let mut names: Vec<&String> = poses.keys().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let world_from_link = poses[name];
            for v in self.model.link_visuals(name) {
                out.push(PosedVisual {
                    world_from_visual: world_from_link * v.link_from_visual,
                    geometry: v.geometry,
                    rgba: v.rgba,
                });
            }
        }
        Ok(out)
    }
}

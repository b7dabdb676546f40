//! The simulator as a stand-in for a real arm under ros2_control: it follows
//! joint position commands (by joint name, as a forward position or joint
//! trajectory controller receives them), and reports joint states and
//! camera frames. Nothing here decides what to do; a controller outside
//! (e.g. `vla run` over ROS 2, or `vla-runtime` in-process) sends the commands.

use vla_core::JointState;
use vla_render::{Camera, DomainRandomization, RenderOutput};

use crate::episode::build_world;
use crate::goal::ObjectRef;
use crate::render::{SimCamera, WristCamera};
use crate::scene::SceneConfig;
use crate::suite::Task;
use crate::world::World;
use crate::SimError;

/// A world whose arm follows joint commands, with its camera.
#[derive(Debug)]
pub struct CommandedSim {
    world: World,
    camera: SimCamera,
    wrist: Option<WristCamera>,
    arm_joints: Vec<String>,
    finger_joints: Vec<String>,
    targets_rad: Vec<f64>,
    close_gripper: bool,
}

impl CommandedSim {
    /// The world of `task` (its objects and distractors from `pool`), the
    /// arm at home holding still, the camera without randomisation.
    pub fn new(scene: &SceneConfig, task: &Task, pool: &[ObjectRef]) -> Result<Self, SimError> {
        let world = build_world(scene, task, pool)?;
        let camera = SimCamera::new(scene, DomainRandomization::default(), task.layout_seed)?;
        let wrist = WristCamera::new(scene, DomainRandomization::default(), task.layout_seed)?;
        let arm_joints = world.arm().chain().joint_names().to_vec();
        let targets_rad = world.arm().positions_rad().to_vec();
        Ok(Self {
            world,
            camera,
            wrist,
            arm_joints,
            finger_joints: scene.robot.finger_joints.clone(),
            targets_rad,
            close_gripper: false,
        })
    }

    /// Takes a joint position command. Every arm joint must be named; the
    /// gripper closes when the first named finger joint is commanded below
    /// half its opening. Other names are an error. A bad command changes nothing.
    pub fn command(&mut self, names: &[String], positions_rad: &[f64]) -> Result<(), SimError> {
        if names.len() != positions_rad.len() {
            return Err(SimError::Robot(format!(
                "joint command has {} names and {} positions",
                names.len(),
                positions_rad.len()
            )));
        }
        if let Some(unknown) = names
            .iter()
            .find(|n| !self.arm_joints.contains(n) && !self.finger_joints.contains(n))
        {
            return Err(SimError::Robot(format!(
                "joint command names {unknown:?}, not a joint of the arm ({}) or gripper ({})",
                self.arm_joints.join(", "),
                self.finger_joints.join(", ")
            )));
        }
        let position = |joint: &str| {
            names
                .iter()
                .position(|n| n == joint)
                .map(|i| positions_rad[i])
        };
        let mut targets = Vec::with_capacity(self.arm_joints.len());
        for joint in &self.arm_joints {
            let q = position(joint).ok_or_else(|| {
                SimError::Robot(format!("joint command lacks arm joint {joint:?}"))
            })?;
            if !q.is_finite() {
                return Err(SimError::Robot(format!(
                    "joint command for {joint:?} is {q}"
                )));
            }
            targets.push(q);
        }
        let finger = self.finger_joints.iter().find_map(|f| position(f));
        if let Some(f) = finger {
            if !f.is_finite() {
                return Err(SimError::Robot(format!("gripper command is {f}")));
            }
            self.close_gripper = f < self.world.arm().finger_open_m() / 2.0;
        }
        self.targets_rad = targets;
        Ok(())
    }

    /// Advances one physics substep toward the last command.
    pub fn step(&mut self) -> Result<(), SimError> {
        self.world
            .track_substep(&self.targets_rad, self.close_gripper)
    }

    /// Seconds of one physics substep.
    pub fn dt_secs(&self) -> f64 {
        self.world.physics_dt_secs()
    }

    /// The camera image now (RGB and depth).
    pub fn render(&mut self) -> Result<RenderOutput, SimError> {
        self.camera.render(&self.world)
    }

    /// The wrist camera's image now and the camera that took it, when the
    /// scene has a wrist camera (`[wrist_camera]`).
    pub fn render_wrist(&mut self) -> Result<Option<(RenderOutput, Camera)>, SimError> {
        match self.wrist.as_mut() {
            Some(w) => w.render(&self.world).map(Some),
            None => Ok(None),
        }
    }

    /// The camera (intrinsics, pose).
    pub fn camera(&self) -> &Camera {
        self.camera.camera()
    }

    /// Measured joints: the arm's, then the fingers', stamped with simulated time.
    pub fn joint_state(&self) -> Result<JointState, SimError> {
        self.world.joint_state()
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The joint targets being followed.
    pub fn targets_rad(&self) -> &[f64] {
        &self.targets_rad
    }

    /// Whether the gripper is commanded closed.
    pub fn gripper_closed(&self) -> bool {
        self.close_gripper
    }
}

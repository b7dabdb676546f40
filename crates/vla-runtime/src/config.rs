//! Settings of the loop ([`RuntimeConfig`]) and the arm it drives
//! ([`ArmSetup`]: chain, controller settings, gripper, the robot's joints).

use vla_kinematics::{Chain, ControllerConfig, RobotModel, WorkspaceBox};

use crate::RuntimeError;

/// Default age after which a joint state or camera frame is stale, seconds.
pub const DEFAULT_STALE_TIMEOUT_SECS: f64 = 0.3;

/// Timing and input settings of the loop.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// A joint state or frame older than this (by arrival time) holds the arm, seconds.
    pub stale_timeout_secs: f64,
    /// Time between policy steps, seconds (the policy rate's inverse).
    pub policy_period_secs: f64,
    /// Time between ticks, seconds (the command rate's inverse); only used
    /// to check settings, each tick measures its own `dt` from `now_secs`.
    pub command_period_secs: f64,
    /// Frames are resized to this (width, height) RGB8 on arrival (the
    /// policy's input size); `None` keeps them as they come (as RGB8).
    pub policy_image_size_px: Option<(u32, u32)>,
    /// Frames of any other (width, height) are rejected; `None` accepts any size.
    pub expected_frame_size_px: Option<(u32, u32)>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            stale_timeout_secs: DEFAULT_STALE_TIMEOUT_SECS,
            policy_period_secs: 0.1,
            command_period_secs: 0.01,
            policy_image_size_px: None,
            expected_frame_size_px: None,
        }
    }
}

impl RuntimeConfig {
    /// Errors if a period or timeout is not a positive finite number, or a
    /// tick is longer than a policy period.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        for (name, v) in [
            ("stale_timeout_secs", self.stale_timeout_secs),
            ("policy_period_secs", self.policy_period_secs),
            ("command_period_secs", self.command_period_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(RuntimeError::Config(format!(
                    "{name} must be positive, got {v}"
                )));
            }
        }
        if self.command_period_secs > self.policy_period_secs {
            return Err(RuntimeError::Config(format!(
                "the command period ({} s) must not be longer than the policy period ({} s)",
                self.command_period_secs, self.policy_period_secs
            )));
        }
        for size in [self.policy_image_size_px, self.expected_frame_size_px]
            .into_iter()
            .flatten()
        {
            if size.0 == 0 || size.1 == 0 {
                return Err(RuntimeError::Config(format!(
                    "image size {}x{} must be positive",
                    size.0, size.1
                )));
            }
        }
        Ok(())
    }
}

/// The gripper joints and where they are open and closed. A policy's
/// gripper value `g` (0 open … 1 closed, clamped) commands
/// `open + g · (closed − open)` to each.
#[derive(Debug, Clone, PartialEq)]
pub struct GripperConfig {
    /// Joint names, commanded after the arm's joints.
    pub joint_names: Vec<String>,
    /// Positions when open, radians (metres).
    pub open_positions: Vec<f64>,
    /// Positions when closed, radians (metres).
    pub closed_positions: Vec<f64>,
}

impl GripperConfig {
    /// Positions for gripper value `g` (clamped into 0…1; NaN counts as open).
    pub fn positions(&self, g: f64) -> Vec<f64> {
        let g = if g.is_nan() { 0.0 } else { g.clamp(0.0, 1.0) };
        self.open_positions
            .iter()
            .zip(&self.closed_positions)
            .map(|(o, c)| o + g * (c - o))
            .collect()
    }
}

/// Safety limits a user sets on top of the URDF's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyLimits {
    /// Fraction (0, 1] of the URDF velocity limits (and acceleration limits) used.
    pub velocity_scale: f64,
    /// Box (base frame) the tip's target is clipped into.
    pub workspace: Option<WorkspaceBox>,
}

impl Default for SafetyLimits {
    fn default() -> Self {
        Self {
            velocity_scale: 1.0,
            workspace: None,
        }
    }
}

/// The arm the runtime drives.
#[derive(Debug, Clone)]
pub struct ArmSetup {
    /// The serial chain base → tip whose joints the policy moves.
    pub chain: Chain,
    /// Settings of the controller step.
    pub controller: ControllerConfig,
    /// The gripper, if commanded.
    pub gripper: Option<GripperConfig>,
    /// Every movable joint of the robot: a joint state naming anything else is rejected.
    pub known_joint_names: Vec<String>,
}

impl ArmSetup {
    /// Builds the arm from URDF text.
    ///
    /// * `base_link`, `tip_link`: the chain (URDF root / the default tip rule when `None`);
    /// * `joint_names`: the chain's joints as the user expects them; empty
    ///   accepts the chain's, otherwise they must match it exactly;
    /// * `gripper_joints`: open at their upper limit, closed at their lower
    ///   limit; empty means no gripper command;
    /// * `limits`: the user's safety limits.
    pub fn from_urdf_str(
        urdf_xml: &str,
        base_link: Option<&str>,
        tip_link: Option<&str>,
        joint_names: &[String],
        gripper_joints: &[String],
        limits: SafetyLimits,
    ) -> Result<Self, RuntimeError> {
        let model = RobotModel::from_urdf_str(urdf_xml)?;
        let chain = Chain::from_model(&model, base_link, tip_link)?;
        if !joint_names.is_empty() && joint_names != chain.joint_names() {
            return Err(RuntimeError::Config(format!(
                "joint_names {:?} do not match the chain {} → {} of the URDF, whose joints are {:?}",
                joint_names,
                chain.base_link(),
                chain.tip_link(),
                chain.joint_names()
            )));
        }
        let gripper = if gripper_joints.is_empty() {
            None
        } else {
            let mut open_positions = Vec::new();
            let mut closed_positions = Vec::new();
            for name in gripper_joints {
                let l = model.joint_limits(name)?;
                if !l.is_bounded() {
                    return Err(RuntimeError::Config(format!(
                        "gripper joint {name:?} has no position limits in the URDF"
                    )));
                }
                open_positions.push(l.upper_rad);
                closed_positions.push(l.lower_rad);
            }
            Some(GripperConfig {
                joint_names: gripper_joints.to_vec(),
                open_positions,
                closed_positions,
            })
        };
        let mut controller = ControllerConfig::default_for(&chain);
        let s = limits.velocity_scale;
        if !(s.is_finite() && s > 0.0 && s <= 1.0) {
            return Err(RuntimeError::Config(format!(
                "velocity_scale must be in (0, 1], got {s}"
            )));
        }
        for v in controller
            .velocity_limits_rad_s
            .iter_mut()
            .chain(controller.acceleration_limits_rad_s2.iter_mut())
        {
            *v *= s;
        }
        controller.workspace = limits.workspace;
        controller.validate(&chain)?;
        Ok(Self {
            chain,
            controller,
            gripper,
            known_joint_names: model.movable_joint_names(),
        })
    }

    /// Names of the commanded joints: the chain's, then the gripper's.
    pub fn command_joint_names(&self) -> Vec<String> {
        let mut names = self.chain.joint_names().to_vec();
        if let Some(g) = &self.gripper {
            names.extend(g.joint_names.iter().cloned());
        }
        names
    }
}

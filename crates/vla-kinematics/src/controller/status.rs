//! What a step reports: its status, the command, the target and the
//! condition number.

use std::fmt;

use nalgebra::Isometry3;
use serde::{Deserialize, Serialize};
use vla_core::JointCommand;

use crate::chain::Chain;

/// What happened in a step. Serialised as `"ok"`, `"scaled"`, …,
/// `{"rejected_input": "why"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The requested motion, in full.
    Ok,
    /// Slowed down to respect velocity or acceleration limits.
    Scaled,
    /// The target was clipped into the workspace box.
    Clipped,
    /// Slowed down approaching a singularity.
    NearSingularity,
    /// Holding: the motion would go on into a singularity.
    HaltedSingularity,
    /// Holding: no joint positions reach the target closely enough.
    IkFailed,
    /// Holding the last safe command: the input was unusable, for this reason.
    RejectedInput(String),
}

impl StepStatus {
    /// Whether the arm is held (no motion commanded) by this status.
    pub fn is_hold(&self) -> bool {
        matches!(
            self,
            Self::HaltedSingularity | Self::IkFailed | Self::RejectedInput(_)
        )
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => write!(f, "ok"),
            Self::Scaled => write!(f, "scaled to joint limits"),
            Self::Clipped => write!(f, "clipped to workspace"),
            Self::NearSingularity => write!(f, "slowed near singularity"),
            Self::HaltedSingularity => write!(f, "halted at singularity"),
            Self::IkFailed => write!(f, "IK failed, holding"),
            Self::RejectedInput(why) => write!(f, "rejected input, holding: {why}"),
        }
    }
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Joint positions to command, radians (metres), in the chain's joint order.
    /// Empty only when input was rejected and no safe command was known.
    pub command: Vec<f64>,
    /// Joint velocities over the step, rad/s (m/s).
    pub velocities_rad_s: Vec<f64>,
    /// What happened.
    pub status: StepStatus,
    /// The tip pose asked of IK (after workspace clipping); for a rejected
    /// step, the pose of the held command (identity if there is none).
    pub base_from_target: Isometry3<f64>,
    /// Jacobian condition number at the step's start (NaN if not computed).
    pub condition_number: f64,
    /// Fraction of the requested joint step that was commanded (0 when holding).
    pub scale: f64,
}

impl StepResult {
    /// The command as a [`JointCommand`] for `chain`'s joints at `stamp_secs`.
    pub fn to_joint_command(&self, chain: &Chain, stamp_secs: f64) -> JointCommand {
        JointCommand {
            names: chain.joint_names().to_vec(),
            positions_rad: self.command.clone(),
            velocities_rad_s: self.velocities_rad_s.clone(),
            stamp_secs,
        }
    }

    /// This result as the `last` argument of the next [`controller_step`](super::controller_step).
    pub fn as_last(&self) -> LastCommand<'_> {
        LastCommand {
            positions_rad: &self.command,
            velocities_rad_s: &self.velocities_rad_s,
        }
    }
}

/// The previous step's command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastCommand<'a> {
    /// Commanded positions.
    pub positions_rad: &'a [f64],
    /// Commanded velocities.
    pub velocities_rad_s: &'a [f64],
}

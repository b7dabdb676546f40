//! The interface every learned policy implements, so that the simulator and
//! the robot runtime can drive any of them: reset with an instruction, then
//! one camera frame and joint state in, 8 action tokens and the decoded
//! action out.

use std::error::Error as StdError;

use thiserror::Error;

use crate::{Action, ActionTokens, Instruction, JointState, RgbFrame};

/// A policy's failure, carrying the implementation's own error as its source.
#[derive(Debug, Error)]
#[error("policy: {message}")]
pub struct PolicyError {
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl PolicyError {
    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// Wraps an implementation's error; its message becomes this error's.
    pub fn from_source(err: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

/// What a policy answers for one observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyStep {
    /// The 8 tokens it emitted (terminate, 6 deltas, gripper).
    pub tokens: ActionTokens,
    /// Those tokens decoded into a continuous action.
    pub action: Action,
}

/// A closed-loop policy: pixels, joint state and text in, action tokens out.
pub trait Policy {
    /// A short name for logs and reports.
    fn name(&self) -> &str;

    /// Starts a new episode with this instruction (clears any history).
    fn reset(&mut self, instruction: &Instruction) -> Result<(), PolicyError>;

    /// The next action for the current camera frame and joint state.
    fn act(&mut self, frame: &RgbFrame, joints: &JointState) -> Result<PolicyStep, PolicyError>;

    /// The size `(width, height)` of the wrist-camera frames this policy
    /// reads, for policies with a second, hand-mounted camera; `None` (the
    /// default) for those that read the scene camera only. The simulator
    /// renders the wrist camera, and the runtime waits for its frames, only
    /// for policies that answer `Some`.
    fn wrist_frame_size_px(&self) -> Option<(u32, u32)> {
        None
    }

    /// [`Policy::act`] with the wrist camera's frame too. The default
    /// ignores `wrist` (policies without a wrist input); a policy that
    /// reads one overrides it and fails on `None`.
    fn act_with_wrist(
        &mut self,
        frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        joints: &JointState,
    ) -> Result<PolicyStep, PolicyError> {
        let _ = wrist;
        self.act(frame, joints)
    }
}

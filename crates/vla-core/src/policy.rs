//! The interface every learned policy implements, so that the simulator, the
//! runtime and the ROS node can drive any of them.
//!
//! A policy is told its task once ([`Policy::set_instruction`], where the text
//! is encoded) and then called once per control step with the latest camera
//! frame ([`Policy::step`]), answering with the 8 action tokens and the action
//! they decode to.

use crate::{Action, ActionTokens, Instruction, RgbFrame};

/// Error of a policy call; each policy crate has its own concrete error type.
pub type PolicyError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a policy answers for one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyOutput {
    /// The 8 token ids it emitted.
    pub tokens: ActionTokens,
    /// The action those tokens decode to.
    pub action: Action,
}

/// A vision-language-action policy.
pub trait Policy: Send {
    /// Sets the task (replacing any previous one) and clears per-episode
    /// state such as frame history.
    fn set_instruction(&mut self, instruction: &Instruction) -> Result<(), PolicyError>;

    /// Clears per-episode state (frame history) but keeps the instruction.
    fn reset(&mut self);

    /// One step: the latest camera frame in, tokens and action out. The frame
    /// may have any size and encoding; the policy resizes as it needs.
    fn step(&mut self, frame: &RgbFrame) -> Result<PolicyOutput, PolicyError>;
}

//! The error type of `vla-runtime`.

use thiserror::Error;

/// Why an input was rejected or the runtime could not be built.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// A camera frame that cannot be used.
    #[error("rejected camera frame: {0}")]
    Frame(String),
    /// A joint state that cannot be used.
    #[error("rejected joint state: {0}")]
    JointState(String),
    /// A task string that cannot be used.
    #[error("rejected task: {0}")]
    Task(String),
    /// The policy failed.
    #[error("policy: {0}")]
    Policy(#[from] vla_core::PolicyError),
    /// The robot description or chain cannot be used.
    #[error("robot: {0}")]
    Robot(#[from] vla_kinematics::KinError),
    /// A setting out of range.
    #[error("invalid runtime configuration: {0}")]
    Config(String),
}

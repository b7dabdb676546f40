//! The controller loop that `vla run` executes, independent of the transport.
//!
//! A [`Runtime`] owns a [`vla_core::Policy`] and the kinematics layer's
//! [`vla_kinematics::Controller`]. The transport (ROS 2 topics in `vla-ros`,
//! or the in-process simulator in tests) feeds it camera frames, joint
//! states, task strings and stop requests, and calls [`Runtime::tick`] at the
//! command rate; each tick answers at most one [`vla_core::JointCommand`],
//! the action tokens of a policy step if one ran, and the [`Status`].
//!
//! Time is an input: every call takes `now_secs` (any monotonic clock), so
//! the safety rules are unit-tested without sleeping.
//!
//! Safety rules, in the order a tick applies them:
//! 1. no command before the first valid joint state;
//! 2. no command before the first task (the arm is left alone until asked);
//! 3. hold (a fixed command at the joint positions measured when the hold
//!    began) while stopped, after the policy said terminate, with no task, or
//!    when the latest joint state or camera frame is older than
//!    [`RuntimeConfig::stale_timeout_secs`]; resume when fresh again;
//! 4. otherwise one policy step per policy period through
//!    [`vla_kinematics::Controller::step`] (limits, workspace, singularity,
//!    IK), its target interpolated to the command rate by
//!    [`vla_kinematics::Interpolator`], exactly as the simulator drives its arm.
//!
//! Malformed inputs (frames of the wrong size or encoding, joint states with
//! missing or unknown names or NaN, tasks over the size limit) are rejected
//! by [`input`] with a reason that lands in [`Status::last_error`]; they never
//! panic and never stop the loop.

pub mod config;
pub mod error;
pub mod input;
pub mod runtime;
pub mod status;

pub use config::{ArmSetup, GripperConfig, RuntimeConfig};
pub use error::RuntimeError;
pub use input::ImageIn;
pub use runtime::{Runtime, TickOutput};
pub use status::{RunState, Status};

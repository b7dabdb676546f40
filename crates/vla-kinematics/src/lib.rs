//! Kinematics of URDF arms and the safe controller step.
//!
//! * [`RobotModel`]: the whole URDF tree, primitive geometry, pose of every link.
//! * [`Chain`]: a serial chain base → tip; forward kinematics, geometric Jacobian.
//! * [`IkSolver`]: damped least squares inverse kinematics for small, warm-started steps.
//! * [`controller_step`] / [`Controller`]: end-effector delta action → joint
//!   command within position, velocity and acceleration limits, with workspace
//!   clipping, singularity slow-down and rejection of non-finite input.
//! * [`Interpolator`]: policy-rate targets → controller-rate positions.
//!
//! Units: metres, radians, seconds. Transforms are named `a_from_b`.

pub mod chain;
pub mod controller;
pub mod error;
pub mod ik;
pub mod interpolate;
pub mod limits;
pub mod model;

pub use chain::Chain;
pub use controller::{
    controller_step, Controller, ControllerConfig, DeltaFrame, LastCommand, StepResult, StepStatus,
    WorkspaceBox,
};
pub use error::KinError;
pub use ik::{IkConfig, IkMode, IkSolution, IkSolver};
pub use interpolate::Interpolator;
pub use limits::JointLimits;
pub use model::{Collision, Geometry, JointKind, RobotModel, Visual};

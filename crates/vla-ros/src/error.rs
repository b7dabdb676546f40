//! The error type of `vla-ros`.

use thiserror::Error;

/// Why a node could not start or had to stop.
#[derive(Debug, Error)]
pub enum RosError {
    /// ROS 2 (rcl, the middleware) failed.
    #[error("ROS 2: {0}")]
    Ros(String),
    /// A ROS parameter has the wrong type or value.
    #[error("parameter {name}: {message}")]
    Param {
        /// The parameter.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The controller loop could not be set up.
    #[error(transparent)]
    Runtime(#[from] vla_runtime::RuntimeError),
    /// The policy could not be loaded.
    #[error("policy {dir}: {message}")]
    Policy {
        /// Its directory.
        dir: String,
        /// Why.
        message: String,
    },
    /// The simulator failed.
    #[error(transparent)]
    Sim(#[from] vla_sim::SimError),
    /// The rerun recording failed.
    #[error("rerun recording: {0}")]
    Viz(#[from] vla_viz::VizError),
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

#[cfg(feature = "ros2")]
impl From<r2r::Error> for RosError {
    fn from(e: r2r::Error) -> Self {
        Self::Ros(e.to_string())
    }
}

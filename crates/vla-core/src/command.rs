//! What the arm receives: target joint positions (and velocities) for named joints.

use serde::{Deserialize, Serialize};

/// A joint-space command for one controller tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointCommand {
    /// Joint names, in the order of the vectors below.
    pub names: Vec<String>,
    /// Target positions, radians (metres for prismatic joints).
    pub positions_rad: Vec<f64>,
    /// Target velocities, rad/s (m/s for prismatic joints).
    pub velocities_rad_s: Vec<f64>,
    /// Time this command is meant for, seconds since the start of the run.
    pub stamp_secs: f64,
}

impl JointCommand {
    /// A command that holds the given positions with zero velocity.
    pub fn hold(names: Vec<String>, positions_rad: Vec<f64>, stamp_secs: f64) -> Self {
        let velocities_rad_s = vec![0.0; positions_rad.len()];
        Self {
            names,
            positions_rad,
            velocities_rad_s,
            stamp_secs,
        }
    }
}

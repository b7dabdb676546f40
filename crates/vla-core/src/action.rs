//! The policy's action: an end-effector delta, a gripper command and a
//! terminate flag (RT-2's action space), and its 8-token discrete form.

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Continuous action dimensions: Δx Δy Δz Δroll Δpitch Δyaw gripper.
pub const ACTION_DIMS: usize = 7;

/// Tokens per control step: terminate, then the 7 continuous dimensions.
pub const TOKENS_PER_STEP: usize = 8;

/// Names of the continuous dimensions, in token order after `terminate`.
pub const DIM_NAMES: [&str; ACTION_DIMS] = [
    "dx_m",
    "dy_m",
    "dz_m",
    "droll_rad",
    "dpitch_rad",
    "dyaw_rad",
    "gripper",
];

/// One step of the policy's output.
///
/// * `translation_m`: end-effector displacement for this step, metres, in the
///   controller's translation frame (the arm's base frame by default).
/// * `rotation_rad`: Δroll, Δpitch, Δyaw for this step, radians, applied as
///   `Rz(yaw) * Ry(pitch) * Rx(roll)` in the controller's rotation frame.
/// * `gripper`: how closed the gripper should be, 0 = open, 1 = closed.
/// * `terminate`: the policy considers the task done.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// End-effector translation for this step, metres.
    pub translation_m: [f64; 3],
    /// End-effector rotation for this step (roll, pitch, yaw), radians.
    pub rotation_rad: [f64; 3],
    /// Gripper closure, 0 = open, 1 = closed.
    pub gripper: f64,
    /// The episode is over.
    pub terminate: bool,
}

impl Action {
    /// Builds an action from its parts.
    pub fn new(
        translation_m: [f64; 3],
        rotation_rad: [f64; 3],
        gripper: f64,
        terminate: bool,
    ) -> Self {
        Self {
            translation_m,
            rotation_rad,
            gripper,
            terminate,
        }
    }

    /// An action that asks for no motion and keeps the gripper as given.
    pub fn hold(gripper: f64) -> Self {
        Self::new([0.0; 3], [0.0; 3], gripper, false)
    }

    /// The 7 continuous dimensions in token order.
    pub fn to_continuous(&self) -> [f64; ACTION_DIMS] {
        let [x, y, z] = self.translation_m;
        let [r, p, yaw] = self.rotation_rad;
        [x, y, z, r, p, yaw, self.gripper]
    }

    /// Builds an action from the 7 continuous dimensions in token order.
    pub fn from_continuous(v: [f64; ACTION_DIMS], terminate: bool) -> Self {
        Self::new([v[0], v[1], v[2]], [v[3], v[4], v[5]], v[6], terminate)
    }

    /// Errors if any dimension is NaN or infinite.
    pub fn check_finite(&self) -> Result<(), CoreError> {
        for (name, v) in DIM_NAMES.iter().zip(self.to_continuous()) {
            if !v.is_finite() {
                return Err(CoreError::NonFinite {
                    what: format!("action {name}"),
                    value: v,
                });
            }
        }
        Ok(())
    }
}

/// The 8 token ids of one step: terminate, Δx Δy Δz Δroll Δpitch Δyaw, gripper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ActionTokens(pub [u32; TOKENS_PER_STEP]);

impl ActionTokens {
    /// The token ids.
    pub fn ids(&self) -> &[u32; TOKENS_PER_STEP] {
        &self.0
    }
}

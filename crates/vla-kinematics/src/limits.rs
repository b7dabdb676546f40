//! Joint limits of a chain's degrees of freedom.

use serde::{Deserialize, Serialize};

/// By default a joint may reach its velocity limit in 1/3 s: the acceleration
/// limit is this factor times the velocity limit (per second). URDF has no
/// acceleration field; the controller's configuration can override it. For
/// the Panda this gives 6.5–7.8 rad/s², below every figure of Franka's
/// published table (7.5–20 rad/s²).
pub const DEFAULT_ACCELERATION_PER_VELOCITY: f64 = 3.0;

/// Limits of one degree of freedom. Radians for revolute joints, metres for
/// prismatic ones (the names say `rad` for the common case).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JointLimits {
    /// Lowest position; `-inf` for a continuous joint.
    pub lower_rad: f64,
    /// Highest position; `+inf` for a continuous joint.
    pub upper_rad: f64,
    /// Largest speed, from the URDF; `+inf` when the URDF gives none (0 or absent).
    pub velocity_rad_s: f64,
    /// Largest effort (N·m or N), from the URDF; 0 when absent.
    pub effort: f64,
    /// Largest acceleration. URDF has none: [`DEFAULT_ACCELERATION_PER_VELOCITY`]
    /// times the velocity limit unless the controller configuration sets it.
    pub acceleration_rad_s2: f64,
}

impl JointLimits {
    /// Whether `q` lies within `[lower, upper]`.
    pub fn contains(&self, q: f64) -> bool {
        q >= self.lower_rad && q <= self.upper_rad
    }

    /// `q` clamped into `[lower, upper]`.
    pub fn clamp(&self, q: f64) -> f64 {
        q.max(self.lower_rad).min(self.upper_rad)
    }

    /// Middle of the range; 0 for a continuous joint.
    pub fn mid(&self) -> f64 {
        if self.lower_rad.is_finite() && self.upper_rad.is_finite() {
            0.5 * (self.lower_rad + self.upper_rad)
        } else {
            0.0
        }
    }

    /// Whether the joint has finite position limits.
    pub fn is_bounded(&self) -> bool {
        self.lower_rad.is_finite() && self.upper_rad.is_finite()
    }
}

//! Settings of the controller step: delta frames, workspace box, velocity and
//! acceleration limits, singularity thresholds, IK tolerances.

use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::ik::IkConfig;
use crate::KinError;

/// Speed assumed for a joint whose URDF gives no velocity limit, rad/s (m/s).
pub const FALLBACK_VELOCITY_RAD_S: f64 = 1.0;

/// MoveIt Servo's default `lower_singularity_threshold`.
pub const DEFAULT_LOWER_SINGULARITY_THRESHOLD: f64 = 17.0;

/// MoveIt Servo's default `hard_stop_singularity_threshold`.
pub const DEFAULT_HARD_STOP_SINGULARITY_THRESHOLD: f64 = 30.0;

/// The frame an action's delta is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeltaFrame {
    /// The chain's base frame.
    #[default]
    Base,
    /// The tip (tool) frame at the start of the step.
    Tool,
}

/// An axis-aligned box in the base frame that the tip's target must stay in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceBox {
    /// Lowest x, y, z, metres.
    pub min_m: [f64; 3],
    /// Highest x, y, z, metres.
    pub max_m: [f64; 3],
}

impl WorkspaceBox {
    /// Clamps a point into the box; returns whether it moved.
    pub fn clip(&self, p_in_base: &mut [f64; 3]) -> bool {
        let mut clipped = false;
        for (k, v) in p_in_base.iter_mut().enumerate() {
            let c = v.max(self.min_m[k]).min(self.max_m[k]);
            if c != *v {
                *v = c;
                clipped = true;
            }
        }
        clipped
    }
}

/// Settings of the controller step. Build with [`ControllerConfig::default_for`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerConfig {
    /// Frame of the action's translation.
    pub translation_frame: DeltaFrame,
    /// Frame of the action's rotation.
    pub rotation_frame: DeltaFrame,
    /// Box the tip's target is clipped into (`None`: no clipping).
    pub workspace: Option<WorkspaceBox>,
    /// Velocity limit per joint, rad/s (m/s).
    pub velocity_limits_rad_s: Vec<f64>,
    /// Acceleration limit per joint, rad/s² (m/s²).
    pub acceleration_limits_rad_s2: Vec<f64>,
    /// Condition number above which motion toward a singularity slows down.
    pub lower_singularity_threshold: f64,
    /// Condition number at which motion toward a singularity stops.
    pub hard_stop_singularity_threshold: f64,
    /// Largest distance (any joint) between last command and measured joints
    /// for the step to continue from the last command.
    pub max_tracking_error_rad: f64,
    /// Longest accepted time step, seconds; longer means stale input.
    pub max_dt_secs: f64,
    /// Settings of the per-step IK.
    pub ik: IkConfig,
    /// Largest accepted IK position residual, metres.
    pub ik_accept_position_m: f64,
    /// Largest accepted IK rotation residual, radians.
    pub ik_accept_rotation_rad: f64,
}

impl ControllerConfig {
    /// Defaults for a chain: deltas in the base frame, no workspace box, the
    /// URDF's velocity limits ([`FALLBACK_VELOCITY_RAD_S`] where it has none),
    /// the chain's acceleration limits, MoveIt Servo's singularity thresholds.
    pub fn default_for(chain: &Chain) -> Self {
        let velocity_limits_rad_s: Vec<f64> = chain
            .limits()
            .iter()
            .map(|l| {
                if l.velocity_rad_s.is_finite() {
                    l.velocity_rad_s
                } else {
                    FALLBACK_VELOCITY_RAD_S
                }
            })
            .collect();
        let acceleration_limits_rad_s2 = chain
            .limits()
            .iter()
            .zip(&velocity_limits_rad_s)
            .map(|(l, v)| {
                if l.acceleration_rad_s2.is_finite() {
                    l.acceleration_rad_s2
                } else {
                    crate::limits::DEFAULT_ACCELERATION_PER_VELOCITY * v
                }
            })
            .collect();
        Self {
            translation_frame: DeltaFrame::Base,
            rotation_frame: DeltaFrame::Base,
            workspace: None,
            velocity_limits_rad_s,
            acceleration_limits_rad_s2,
            lower_singularity_threshold: DEFAULT_LOWER_SINGULARITY_THRESHOLD,
            hard_stop_singularity_threshold: DEFAULT_HARD_STOP_SINGULARITY_THRESHOLD,
            max_tracking_error_rad: 0.05,
            max_dt_secs: 1.0,
            ik: IkConfig {
                max_iterations: 50,
                ..IkConfig::default()
            },
            ik_accept_position_m: 1e-4,
            ik_accept_rotation_rad: 1e-3,
        }
    }

    /// Errors if a setting is out of range or a vector's length is not the chain's dof.
    pub fn validate(&self, chain: &Chain) -> Result<(), KinError> {
        let bad = |m: String| Err(KinError::InvalidConfig(m));
        for (name, v) in [
            ("velocity_limits_rad_s", &self.velocity_limits_rad_s),
            (
                "acceleration_limits_rad_s2",
                &self.acceleration_limits_rad_s2,
            ),
        ] {
            if v.len() != chain.dof() {
                return Err(KinError::DofMismatch {
                    what: name.into(),
                    expected: chain.dof(),
                    actual: v.len(),
                });
            }
            if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return bad(format!(
                    "{name} contains {x}; each must be positive and finite"
                ));
            }
        }
        let (lower, hard) = (
            self.lower_singularity_threshold,
            self.hard_stop_singularity_threshold,
        );
        if !(lower.is_finite() && hard.is_finite() && 1.0 <= lower && lower < hard) {
            return bad(format!(
                "singularity thresholds must satisfy 1 <= lower ({lower}) < hard stop ({hard})"
            ));
        }
        for (name, v) in [
            ("max_tracking_error_rad", self.max_tracking_error_rad),
            ("max_dt_secs", self.max_dt_secs),
            ("ik_accept_position_m", self.ik_accept_position_m),
            ("ik_accept_rotation_rad", self.ik_accept_rotation_rad),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} = {v} must be positive"));
            }
        }
        if let Some(b) = &self.workspace {
            if (0..3).any(|k| {
                !(b.min_m[k].is_finite() && b.max_m[k].is_finite() && b.min_m[k] <= b.max_m[k])
            }) {
                return bad(format!("workspace box {b:?} needs finite min <= max"));
            }
        }
        self.ik.validate()
    }
}

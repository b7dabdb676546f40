//! The controller step: one end-effector delta action → one joint command
//! that respects the arm's limits.
//!
//! [`controller_step`] is a pure function of (chain, configuration, measured
//! joints, last command, action, time step); [`Controller`] keeps the last
//! command between calls. One step:
//!
//! 1. **Reject bad input.** A NaN or infinite value anywhere (measured joints,
//!    action, last command, `dt_secs`), a wrong vector length or a time step
//!    outside `(0, max_dt_secs]` gives [`StepStatus::RejectedInput`] with the
//!    reason, and the command holds the last safe command (or the measured
//!    joints clamped into the limits when there is none; an empty command when
//!    there is neither — send nothing then).
//! 2. **Start point.** The last command when it is within
//!    `max_tracking_error_rad` of the measured joints, else the measured joints
//!    (clamped into the limits).
//! 3. **Target.** The action's translation is applied in `translation_frame`
//!    (default: the base frame), its rotation `Rz(yaw)·Ry(pitch)·Rx(roll)` in
//!    `rotation_frame` (default: the base frame; `tool` rotates about the tip's
//!    own axes), both about the tip point. The target position is clipped into
//!    the workspace box ([`StepStatus::Clipped`]).
//! 4. **IK** from the start point ([`IkSolver`]); a residual above
//!    `ik_accept_position_m` / `ik_accept_rotation_rad` holds the start point
//!    ([`StepStatus::IkFailed`]).
//! 5. **Singularity.** The Jacobian's condition number (σmax/σmin, position
//!    rows only for chains that use position-only IK) is computed at the start
//!    point and at the IK solution. When the step moves toward a singularity
//!    (the number grows), the step is scaled by `1 − (c − lower)/(hard − lower)`
//!    above `lower_singularity_threshold` ([`StepStatus::NearSingularity`]) and
//!    the arm holds when the start point or the step's end reaches
//!    `hard_stop_singularity_threshold` ([`StepStatus::HaltedSingularity`]), as
//!    MoveIt Servo does (17 and 30 by default; checking the step's end too is
//!    more conservative). Moving away from a singularity is never slowed.
//! 6. **Limits.** The joint step is scaled as a whole (keeping the tip on its
//!    path) so that no joint exceeds its velocity limit, its acceleration limit
//!    relative to the last command's velocity, or the speed from which it can
//!    still brake before its position limit ([`StepStatus::Scaled`]). When no
//!    common scale satisfies the acceleration limits (e.g. the last velocity
//!    was large and opposite), each joint's velocity is clamped on its own.
//!    Finally positions are clamped into the limits. The command therefore
//!    never leaves the position limits and never moves faster than the
//!    velocity limits from the start point.

use std::fmt;

use nalgebra::{DMatrix, Isometry3, Matrix6xX, Translation3, UnitQuaternion};
use serde::{Deserialize, Serialize};
use vla_core::{Action, JointCommand};

use crate::chain::Chain;
use crate::ik::{IkConfig, IkSolver};
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

/// What happened in a step. Serialised as `"ok"`, `"scaled"`, …,
/// `{"rejected_input": "why"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// The requested motion, in full.
    Ok,
    /// Slowed down to respect velocity or acceleration limits.
    Scaled,
    /// The target was clipped into the workspace box.
    Clipped,
    /// Slowed down approaching a singularity.
    NearSingularity,
    /// Holding: the motion would go on into a singularity.
    HaltedSingularity,
    /// Holding: no joint positions reach the target closely enough.
    IkFailed,
    /// Holding the last safe command: the input was unusable, for this reason.
    RejectedInput(String),
}

impl StepStatus {
    /// Whether the arm is held (no motion commanded) by this status.
    pub fn is_hold(&self) -> bool {
        matches!(
            self,
            Self::HaltedSingularity | Self::IkFailed | Self::RejectedInput(_)
        )
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => write!(f, "ok"),
            Self::Scaled => write!(f, "scaled to joint limits"),
            Self::Clipped => write!(f, "clipped to workspace"),
            Self::NearSingularity => write!(f, "slowed near singularity"),
            Self::HaltedSingularity => write!(f, "halted at singularity"),
            Self::IkFailed => write!(f, "IK failed, holding"),
            Self::RejectedInput(why) => write!(f, "rejected input, holding: {why}"),
        }
    }
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Joint positions to command, radians (metres), in the chain's joint order.
    /// Empty only when input was rejected and no safe command was known.
    pub command: Vec<f64>,
    /// Joint velocities over the step, rad/s (m/s).
    pub velocities_rad_s: Vec<f64>,
    /// What happened.
    pub status: StepStatus,
    /// The tip pose asked of IK (after workspace clipping); for a rejected
    /// step, the pose of the held command (identity if there is none).
    pub base_from_target: Isometry3<f64>,
    /// Jacobian condition number at the step's start (NaN if not computed).
    pub condition_number: f64,
    /// Fraction of the requested joint step that was commanded (0 when holding).
    pub scale: f64,
}

impl StepResult {
    /// The command as a [`JointCommand`] for `chain`'s joints at `stamp_secs`.
    pub fn to_joint_command(&self, chain: &Chain, stamp_secs: f64) -> JointCommand {
        JointCommand {
            names: chain.joint_names().to_vec(),
            positions_rad: self.command.clone(),
            velocities_rad_s: self.velocities_rad_s.clone(),
            stamp_secs,
        }
    }

    /// This result as the `last` argument of the next [`controller_step`].
    pub fn as_last(&self) -> LastCommand<'_> {
        LastCommand {
            positions_rad: &self.command,
            velocities_rad_s: &self.velocities_rad_s,
        }
    }
}

/// The previous step's command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastCommand<'a> {
    /// Commanded positions.
    pub positions_rad: &'a [f64],
    /// Commanded velocities.
    pub velocities_rad_s: &'a [f64],
}

fn finite_reason(what: &str, values: &[f64], names: &[String]) -> Option<String> {
    values
        .iter()
        .zip(names)
        .find(|(v, _)| !v.is_finite())
        .map(|(v, name)| format!("{what} of joint {name:?} is {v}"))
}

/// Condition number σmax/σmin of the Jacobian's task rows (`inf` at a singularity).
pub fn condition_number(jac: &Matrix6xX<f64>, position_only: bool) -> f64 {
    let rows = if position_only { 3 } else { 6 };
    let task = DMatrix::from_fn(rows, jac.ncols(), |r, c| jac[(r, c)]);
    let sv = task.singular_values();
    let max = sv.iter().fold(0.0_f64, |m, s| m.max(*s));
    let min = sv.iter().fold(f64::INFINITY, |m, s| m.min(*s));
    if min > 0.0 {
        max / min
    } else {
        f64::INFINITY
    }
}

/// One controller step (see the module documentation).
pub fn controller_step(
    chain: &Chain,
    config: &ControllerConfig,
    q_measured: &[f64],
    last: Option<LastCommand<'_>>,
    action: &Action,
    dt_secs: f64,
) -> StepResult {
    let n = chain.dof();
    let names = chain.joint_names();
    let last_ok = last.filter(|l| {
        l.positions_rad.len() == n
            && l.velocities_rad_s.len() == n
            && l.positions_rad
                .iter()
                .chain(l.velocities_rad_s)
                .all(|v| v.is_finite())
            && chain.within_limits(l.positions_rad)
    });
    let measured_ok = q_measured.len() == n && q_measured.iter().all(|v| v.is_finite());
    // An invalid IK configuration is reported below; until then use the defaults.
    let solver = IkSolver::new(config.ik.clone()).unwrap_or_default();
    let position_only = solver.position_only(chain);
    let mut measured = q_measured.to_vec();
    chain.clamp_to_limits(&mut measured);

    let hold =
        |positions: Vec<f64>, status: StepStatus, base_from_target: Option<Isometry3<f64>>| {
            let mut jac = Matrix6xX::zeros(n);
            let (base_from_tip, condition) = match chain.fk_with_jacobian(&positions, &mut jac) {
                Ok(pose) => (
                    pose,
                    condition_number(&jac, IkSolver::default().position_only(chain)),
                ),
                Err(_) => (Isometry3::identity(), f64::NAN),
            };
            StepResult {
                velocities_rad_s: vec![0.0; positions.len()],
                command: positions,
                status,
                base_from_target: base_from_target.unwrap_or(base_from_tip),
                condition_number: condition,
                scale: 0.0,
            }
        };
    let safe_hold = || match (last_ok, measured_ok) {
        (Some(l), _) => l.positions_rad.to_vec(),
        (None, true) => measured.clone(),
        (None, false) => Vec::new(),
    };
    let reject = |why: String| hold(safe_hold(), StepStatus::RejectedInput(why), None);

    if let Err(e) = config.validate(chain) {
        return reject(e.to_string());
    }
    if q_measured.len() != n {
        return reject(format!(
            "measured joints: {} values for {n} joints",
            q_measured.len()
        ));
    }
    if let Some(why) = finite_reason("measured position", q_measured, names) {
        return reject(why);
    }
    if let Err(e) = action.check_finite() {
        return reject(e.to_string());
    }
    if !(dt_secs.is_finite() && dt_secs > 0.0 && dt_secs <= config.max_dt_secs) {
        return reject(format!(
            "time step {dt_secs} s is outside (0, {}] s",
            config.max_dt_secs
        ));
    }
    if let Some(l) = last {
        if last_ok.is_none() {
            return reject(format!(
                "last command is unusable ({} positions, {} velocities for {n} joints, \
                 non-finite or outside the limits)",
                l.positions_rad.len(),
                l.velocities_rad_s.len()
            ));
        }
    }

    // 2. Start point.
    let (q_start, v_last) = match last_ok {
        Some(l) => {
            let tracking = l
                .positions_rad
                .iter()
                .zip(&measured)
                .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
            let start = if tracking <= config.max_tracking_error_rad {
                l.positions_rad.to_vec()
            } else {
                measured.clone()
            };
            (start, l.velocities_rad_s.to_vec())
        }
        None => (measured.clone(), vec![0.0; n]),
    };

    // 3. Target.
    let mut jac = Matrix6xX::zeros(n);
    let Ok(base_from_tip) = chain.fk_with_jacobian(&q_start, &mut jac) else {
        return reject("start joints could not be evaluated".into());
    };
    let cond_start = condition_number(&jac, position_only);
    let [tx, ty, tz] = action.translation_m;
    let [roll, pitch, yaw] = action.rotation_rad;
    let translation = nalgebra::Vector3::new(tx, ty, tz);
    let rotation = UnitQuaternion::from_euler_angles(roll, pitch, yaw);
    let p_tip = base_from_tip.translation.vector;
    let p_target = p_tip
        + match config.translation_frame {
            DeltaFrame::Base => translation,
            DeltaFrame::Tool => base_from_tip.rotation * translation,
        };
    let r_target = match config.rotation_frame {
        DeltaFrame::Base => rotation * base_from_tip.rotation,
        DeltaFrame::Tool => base_from_tip.rotation * rotation,
    };
    let mut p = [p_target.x, p_target.y, p_target.z];
    let clipped = config.workspace.as_ref().is_some_and(|b| b.clip(&mut p));
    let base_from_target = Isometry3::from_parts(Translation3::new(p[0], p[1], p[2]), r_target);

    // 4. IK.
    let solution = match solver.solve(chain, &base_from_target, &q_start) {
        Ok(s) => s,
        Err(e) => return reject(e.to_string()),
    };
    let mut held = hold(
        q_start.clone(),
        StepStatus::IkFailed,
        Some(base_from_target),
    );
    held.condition_number = cond_start;
    if solution.position_error_m > config.ik_accept_position_m
        || (!position_only && solution.rotation_error_rad > config.ik_accept_rotation_rad)
    {
        return held;
    }

    // 5. Singularity.
    let cond_next = match chain.fk_with_jacobian(&solution.joints, &mut jac) {
        Ok(_) => condition_number(&jac, position_only),
        Err(_) => f64::INFINITY,
    };
    let (lower, hard) = (
        config.lower_singularity_threshold,
        config.hard_stop_singularity_threshold,
    );
    // NaN counts as approaching (conservative).
    let approaching = cond_next >= cond_start || cond_next.is_nan() || cond_start.is_nan();
    let mut singularity_scale: f64 = 1.0;
    if approaching {
        if cond_start >= hard || cond_next >= hard {
            held.status = StepStatus::HaltedSingularity;
            return held;
        }
        if cond_start > lower {
            singularity_scale = 1.0 - (cond_start - lower) / (hard - lower);
        }
    }

    // 6. Limits.
    let limits = chain.limits();
    let v_wanted: Vec<f64> = solution
        .joints
        .iter()
        .zip(&q_start)
        .map(|(a, b)| (a - b) / dt_secs)
        .collect();
    let mut v_cap = vec![0.0; n];
    let mut scale = singularity_scale;
    for i in 0..n {
        let a_max = config.acceleration_limits_rad_s2[i];
        let room = if v_wanted[i] >= 0.0 {
            limits[i].upper_rad - q_start[i]
        } else {
            q_start[i] - limits[i].lower_rad
        };
        v_cap[i] = config.velocity_limits_rad_s[i].min((2.0 * a_max * room.max(0.0)).sqrt());
        if v_wanted[i].abs() > v_cap[i] {
            scale = scale.min(v_cap[i] / v_wanted[i].abs());
        }
    }
    // Acceleration: s must keep |s·v_i − v_last_i| ≤ a_i·dt for every joint.
    let (mut lo, mut hi) = (0.0_f64, scale);
    for i in 0..n {
        let dv = config.acceleration_limits_rad_s2[i] * dt_secs;
        if v_wanted[i] == 0.0 {
            if v_last[i].abs() > dv {
                lo = f64::INFINITY;
            }
        } else {
            let (a, b) = (
                (v_last[i] - dv) / v_wanted[i],
                (v_last[i] + dv) / v_wanted[i],
            );
            lo = lo.max(a.min(b));
            hi = hi.min(a.max(b));
        }
    }
    let mut velocities = vec![0.0; n];
    if lo <= hi {
        scale = hi;
        for i in 0..n {
            velocities[i] = scale * v_wanted[i];
        }
    } else {
        for i in 0..n {
            let dv = config.acceleration_limits_rad_s2[i] * dt_secs;
            velocities[i] = (scale * v_wanted[i])
                .max(v_last[i] - dv)
                .min(v_last[i] + dv)
                .max(-v_cap[i])
                .min(v_cap[i]);
        }
    }
    let mut command = vec![0.0; n];
    for i in 0..n {
        command[i] = limits[i].clamp(q_start[i] + velocities[i] * dt_secs);
        velocities[i] = (command[i] - q_start[i]) / dt_secs;
    }

    let scaled = scale < 1.0 - 1e-9 || lo > hi;
    let status = if singularity_scale < 1.0 {
        StepStatus::NearSingularity
    } else if clipped {
        StepStatus::Clipped
    } else if scaled {
        StepStatus::Scaled
    } else {
        StepStatus::Ok
    };
    StepResult {
        command,
        velocities_rad_s: velocities,
        status,
        base_from_target,
        condition_number: cond_start,
        scale,
    }
}

/// The controller step with its memory: the last command.
#[derive(Debug, Clone)]
pub struct Controller {
    chain: Chain,
    config: ControllerConfig,
    last_positions_rad: Vec<f64>,
    last_velocities_rad_s: Vec<f64>,
}

impl Controller {
    /// A controller for `chain`; the configuration's acceleration limits are
    /// written into the chain's limits.
    pub fn new(mut chain: Chain, config: ControllerConfig) -> Result<Self, KinError> {
        config.validate(&chain)?;
        chain.set_acceleration_limits(&config.acceleration_limits_rad_s2)?;
        Ok(Self {
            chain,
            config,
            last_positions_rad: Vec::new(),
            last_velocities_rad_s: Vec::new(),
        })
    }

    /// One step from the measured joints; remembers the command it returns.
    pub fn step(&mut self, q_measured: &[f64], action: &Action, dt_secs: f64) -> StepResult {
        let last = (!self.last_positions_rad.is_empty()).then_some(LastCommand {
            positions_rad: &self.last_positions_rad,
            velocities_rad_s: &self.last_velocities_rad_s,
        });
        let result = controller_step(&self.chain, &self.config, q_measured, last, action, dt_secs);
        if !result.command.is_empty() {
            self.last_positions_rad.clone_from(&result.command);
            self.last_velocities_rad_s
                .clone_from(&result.velocities_rad_s);
        }
        result
    }

    /// Forgets the last command (e.g. after the arm was moved by hand).
    pub fn reset(&mut self) {
        self.last_positions_rad.clear();
        self.last_velocities_rad_s.clear();
    }

    /// The last command, if any.
    pub fn last_command(&self) -> Option<&[f64]> {
        (!self.last_positions_rad.is_empty()).then_some(self.last_positions_rad.as_slice())
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The configuration.
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }
}

//! Inverse kinematics for the small, warm-started steps a policy asks for:
//! damped least squares with joint-limit clamping and, for redundant arms, a
//! null-space term that pulls the joints toward mid-range.
//!
//! Each iteration computes the pose error `e` (position, then rotation as a
//! rotation vector, both in the base frame) and the Jacobian `J`, and steps
//! `dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e + (I − J⁺J) z` where `λ² = damping² + ½|e|²`
//! (large far from the target, vanishing near it, so the last iterations
//! converge like Gauss-Newton) and `z` pulls joints toward the middle of their
//! range (at most `nullspace_gain` times the task step, so it fades as the
//! task converges and never keeps the solver from converging). A joint at a limit whose step would push it further out is locked
//! (its column removed) and the step solved again; the step is scaled so no
//! joint moves more than `max_step_rad`, and the result clamped into the
//! limits. The solver never returns joints outside their limits: it returns
//! the best iterate seen, with its residual errors.

use nalgebra::{Isometry3, Matrix6, Matrix6xX, Vector3, Vector6};
use serde::{Deserialize, Serialize};

use crate::chain::Chain;
use crate::KinError;

/// Which part of the pose the solver matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IkMode {
    /// Position and orientation for chains with 6 or more joints, position
    /// only for shorter ones.
    #[default]
    Auto,
    /// Position and orientation.
    Full,
    /// Position only; the orientation is left free.
    PositionOnly,
}

/// Settings of the solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IkConfig {
    /// Iterations before giving up.
    pub max_iterations: usize,
    /// Converged when the tip is this close to the target, metres.
    pub position_tolerance_m: f64,
    /// ... and its orientation this close, radians (ignored in position-only mode).
    pub rotation_tolerance_rad: f64,
    /// Which part of the pose to match.
    pub mode: IkMode,
    /// Smallest damping λ of the least-squares step.
    pub damping: f64,
    /// Largest change of any joint in one iteration, radians (metres).
    pub max_step_rad: f64,
    /// Pull toward mid-range in the null space of redundant arms, as the
    /// largest joint change it may add relative to the task step's (0 disables it).
    pub nullspace_gain: f64,
}

impl Default for IkConfig {
    fn default() -> Self {
        Self {
            max_iterations: 100,
            position_tolerance_m: 1e-6,
            rotation_tolerance_rad: 1e-5,
            mode: IkMode::Auto,
            damping: 0.01,
            max_step_rad: 0.2,
            nullspace_gain: 0.5,
        }
    }
}

impl IkConfig {
    /// Errors if a setting is out of range.
    pub fn validate(&self) -> Result<(), KinError> {
        let positive = [
            ("position_tolerance_m", self.position_tolerance_m),
            ("rotation_tolerance_rad", self.rotation_tolerance_rad),
            ("damping", self.damping),
            ("max_step_rad", self.max_step_rad),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(KinError::InvalidConfig(format!(
                    "ik {name} = {v} must be positive"
                )));
            }
        }
        if !(self.nullspace_gain.is_finite() && self.nullspace_gain >= 0.0) {
            return Err(KinError::InvalidConfig(format!(
                "ik nullspace_gain = {} must be non-negative",
                self.nullspace_gain
            )));
        }
        Ok(())
    }
}

/// What the solver found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IkSolution {
    /// Joint positions, within the limits.
    pub joints: Vec<f64>,
    /// Whether the errors are within the tolerances.
    pub converged: bool,
    /// Distance from the tip to the target, metres.
    pub position_error_m: f64,
    /// Angle between the tip's orientation and the target's, radians
    /// (reported in position-only mode too, but not minimised there).
    pub rotation_error_rad: f64,
    /// Iterations (steps) taken.
    pub iterations: usize,
}

/// Damped least squares IK solver.
#[derive(Debug, Clone, Default)]
pub struct IkSolver {
    config: IkConfig,
}

/// Damping² of the null-space projector (tiny: it only guards against a singular J Jᵀ).
const NULLSPACE_DAMPING_SQ: f64 = 1e-9;

/// Iterations without improvement of the best error before giving up.
const STALL_ITERATIONS: usize = 25;

/// Pose error (position, then rotation vector), base frame.
pub(crate) fn pose_error(
    base_from_target: &Isometry3<f64>,
    base_from_tip: &Isometry3<f64>,
) -> (Vector3<f64>, Vector3<f64>) {
    let e_p = base_from_target.translation.vector - base_from_tip.translation.vector;
    let e_r = (base_from_target.rotation * base_from_tip.rotation.inverse()).scaled_axis();
    (e_p, e_r)
}

impl IkSolver {
    /// A solver with these settings.
    pub fn new(config: IkConfig) -> Result<Self, KinError> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &IkConfig {
        &self.config
    }

    /// Whether this solver matches position only for `chain`.
    pub fn position_only(&self, chain: &Chain) -> bool {
        match self.config.mode {
            IkMode::Auto => chain.dof() < 6,
            IkMode::Full => false,
            IkMode::PositionOnly => true,
        }
    }

    /// Joint positions that put `chain`'s tip at `base_from_target`, starting
    /// from `seed` (clamped into the limits first). Errors only for bad input
    /// (wrong length, non-finite values); an unreachable target gives
    /// `converged: false` and the closest joints found.
    pub fn solve(
        &self,
        chain: &Chain,
        base_from_target: &Isometry3<f64>,
        seed: &[f64],
    ) -> Result<IkSolution, KinError> {
        chain.check_positions(seed)?;
        let target_values = base_from_target
            .translation
            .vector
            .iter()
            .chain(base_from_target.rotation.coords.iter());
        for &v in target_values {
            if !v.is_finite() {
                return Err(KinError::NonFinite {
                    what: "IK target pose".into(),
                    value: v,
                });
            }
        }
        let cfg = &self.config;
        let n = chain.dof();
        let position_only = self.position_only(chain);
        let task_dims = if position_only { 3 } else { 6 };
        let limits = chain.limits();

        let mut q = seed.to_vec();
        chain.clamp_to_limits(&mut q);
        let mut jac = Matrix6xX::zeros(n);
        let mut dq = vec![0.0; n];
        let mut z = vec![0.0; n];
        let mut locked = vec![false; n];
        let mut best = IkSolution {
            joints: q.clone(),
            converged: false,
            position_error_m: f64::INFINITY,
            rotation_error_rad: f64::INFINITY,
            iterations: 0,
        };
        let mut best_score = f64::INFINITY;
        let mut since_best = 0;

        for iteration in 0..=cfg.max_iterations {
            let base_from_tip = chain.fk_with_jacobian(&q, &mut jac)?;
            let (e_p, mut e_r) = pose_error(base_from_target, &base_from_tip);
            let (pos_err, rot_err) = (e_p.norm(), e_r.norm());
            let converged = pos_err <= cfg.position_tolerance_m
                && (position_only || rot_err <= cfg.rotation_tolerance_rad);
            // Rotation counts 0.1 m per radian when ranking iterates.
            let score = pos_err + if position_only { 0.0 } else { 0.1 * rot_err };
            if converged || score < best_score {
                best_score = score;
                since_best = 0;
                best.joints.copy_from_slice(&q);
                best.position_error_m = pos_err;
                best.rotation_error_rad = rot_err;
                best.converged = converged;
            } else {
                since_best += 1;
            }
            best.iterations = iteration;
            if converged || iteration == cfg.max_iterations || since_best >= STALL_ITERATIONS {
                break;
            }
            if position_only {
                e_r = Vector3::zeros();
                jac.fixed_rows_mut::<3>(3).fill(0.0);
            }
            let e = Vector6::new(e_p.x, e_p.y, e_p.z, e_r.x, e_r.y, e_r.z);
            let lambda_sq = cfg.damping * cfg.damping + 0.5 * e.norm_squared();

            locked.fill(false);
            for _ in 0..=n {
                let active = locked.iter().filter(|l| !**l).count();
                let mut a = Matrix6::<f64>::zeros();
                for r in 0..6 {
                    for c in r..6 {
                        let v = jac.row(r).dot(&jac.row(c));
                        a[(r, c)] = v;
                        a[(c, r)] = v;
                    }
                    a[(r, r)] += lambda_sq;
                }
                let Some(chol) = a.cholesky() else {
                    dq.fill(0.0);
                    break;
                };
                let y = chol.solve(&e);
                for (i, d) in dq.iter_mut().enumerate() {
                    *d = jac.column(i).dot(&y);
                }
                if active > task_dims && cfg.nullspace_gain > 0.0 {
                    // Pull toward mid-range, weighted by 1/half-range², projected
                    // into the null space and capped at `nullspace_gain` times
                    // the task step, so it fades as the task converges.
                    let mut jz = Vector6::zeros();
                    for (i, zi) in z.iter_mut().enumerate() {
                        let l = &limits[i];
                        *zi = if locked[i] || !l.is_bounded() {
                            0.0
                        } else {
                            let half_range = 0.5 * (l.upper_rad - l.lower_rad);
                            (l.mid() - q[i]) / (half_range * half_range).max(1e-6)
                        };
                        jz += jac.column(i) * *zi;
                    }
                    // Project with (almost) no damping: the damped inverse
                    // would leak the pull into poorly conditioned task directions.
                    let mut a0 = a;
                    for r in 0..6 {
                        a0[(r, r)] += NULLSPACE_DAMPING_SQ - lambda_sq;
                    }
                    let w = match a0.cholesky() {
                        Some(c) => c.solve(&jz),
                        None => chol.solve(&jz),
                    };
                    let task_step = dq.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
                    let mut null_step = 0.0_f64;
                    for (i, zi) in z.iter_mut().enumerate() {
                        *zi -= jac.column(i).dot(&w);
                        null_step = null_step.max(zi.abs());
                    }
                    if null_step > 0.0 {
                        let k = (cfg.nullspace_gain * task_step / null_step).min(1.0);
                        for (d, zi) in dq.iter_mut().zip(&z) {
                            *d += k * zi;
                        }
                    }
                }
                let mut newly_locked = false;
                for i in 0..n {
                    let l = &limits[i];
                    if !locked[i]
                        && ((q[i] >= l.upper_rad && dq[i] > 0.0)
                            || (q[i] <= l.lower_rad && dq[i] < 0.0))
                    {
                        locked[i] = true;
                        newly_locked = true;
                        jac.column_mut(i).fill(0.0);
                    }
                }
                if !newly_locked {
                    break;
                }
            }
            for (i, d) in dq.iter_mut().enumerate() {
                if locked[i] {
                    *d = 0.0;
                }
            }
            let largest = dq.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
            let scale = if largest > cfg.max_step_rad {
                cfg.max_step_rad / largest
            } else {
                1.0
            };
            for (i, qi) in q.iter_mut().enumerate() {
                *qi = limits[i].clamp(*qi + scale * dq[i]);
            }
        }
        Ok(best)
    }
}

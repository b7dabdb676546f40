//! Upsampling policy-rate joint targets (a few Hz) to controller rate
//! (100–500 Hz) without jumps.
//!
//! Each new target starts a straight-line segment in joint space from the
//! *current interpolated position* (not from the previous target), so the
//! position never jumps, even when a target arrives before the last segment
//! ended. The segment lasts the policy period, or longer if a joint would
//! otherwise exceed its velocity limit; every sample therefore moves each
//! joint at most `velocity limit × dt`.

use crate::KinError;

/// Linear, velocity-limited interpolation between joint targets.
#[derive(Debug, Clone)]
pub struct Interpolator {
    start: Vec<f64>,
    target: Vec<f64>,
    current: Vec<f64>,
    velocities: Vec<f64>,
    max_velocity_rad_s: Vec<f64>,
    duration_secs: f64,
    elapsed_secs: f64,
}

fn check(values: &[f64], expected: usize, what: &str) -> Result<(), KinError> {
    if values.len() != expected {
        return Err(KinError::DofMismatch {
            what: what.into(),
            expected,
            actual: values.len(),
        });
    }
    match values.iter().find(|v| !v.is_finite()) {
        Some(&value) => Err(KinError::NonFinite {
            what: what.into(),
            value,
        }),
        None => Ok(()),
    }
}

impl Interpolator {
    /// Starts at rest at `initial_positions_rad`.
    pub fn new(
        initial_positions_rad: &[f64],
        max_velocity_rad_s: &[f64],
    ) -> Result<Self, KinError> {
        let n = initial_positions_rad.len();
        check(initial_positions_rad, n, "initial positions")?;
        check(max_velocity_rad_s, n, "velocity limits")?;
        if let Some(&v) = max_velocity_rad_s.iter().find(|v| **v <= 0.0) {
            return Err(KinError::InvalidConfig(format!(
                "velocity limit {v} must be positive"
            )));
        }
        Ok(Self {
            start: initial_positions_rad.to_vec(),
            target: initial_positions_rad.to_vec(),
            current: initial_positions_rad.to_vec(),
            velocities: vec![0.0; n],
            max_velocity_rad_s: max_velocity_rad_s.to_vec(),
            duration_secs: 0.0,
            elapsed_secs: 0.0,
        })
    }

    /// Starts a segment from the current position to `target_rad`, lasting
    /// `period_secs` or longer if the velocity limits require. Returns the
    /// segment's duration, seconds.
    pub fn set_target(&mut self, target_rad: &[f64], period_secs: f64) -> Result<f64, KinError> {
        check(target_rad, self.current.len(), "target positions")?;
        if !(period_secs.is_finite() && period_secs > 0.0) {
            return Err(KinError::InvalidConfig(format!(
                "period {period_secs} s must be positive"
            )));
        }
        let slowest = target_rad
            .iter()
            .zip(&self.current)
            .zip(&self.max_velocity_rad_s)
            .fold(0.0_f64, |m, ((t, c), v)| m.max((t - c).abs() / v));
        self.duration_secs = period_secs.max(slowest);
        self.elapsed_secs = 0.0;
        self.start.clone_from(&self.current);
        self.target.copy_from_slice(target_rad);
        for ((v, t), s) in self
            .velocities
            .iter_mut()
            .zip(&self.target)
            .zip(&self.start)
        {
            *v = (t - s) / self.duration_secs;
        }
        Ok(self.duration_secs)
    }

    /// Advances by `dt_secs` and returns the new positions.
    pub fn step(&mut self, dt_secs: f64) -> Result<&[f64], KinError> {
        if !(dt_secs.is_finite() && dt_secs >= 0.0) {
            return Err(KinError::InvalidConfig(format!(
                "time step {dt_secs} s must be >= 0"
            )));
        }
        self.elapsed_secs += dt_secs;
        if self.elapsed_secs >= self.duration_secs {
            self.current.clone_from(&self.target);
            self.velocities.fill(0.0);
        } else {
            let f = self.elapsed_secs / self.duration_secs;
            for ((c, s), t) in self.current.iter_mut().zip(&self.start).zip(&self.target) {
                *c = s + f * (t - s);
            }
        }
        Ok(&self.current)
    }

    /// Current positions.
    pub fn positions(&self) -> &[f64] {
        &self.current
    }

    /// Current velocities (0 once the target is reached).
    pub fn velocities(&self) -> &[f64] {
        &self.velocities
    }

    /// Whether the current segment is finished.
    pub fn done(&self) -> bool {
        self.elapsed_secs >= self.duration_secs
    }
}

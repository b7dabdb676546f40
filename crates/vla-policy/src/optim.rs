//! AdamW with global-norm gradient clipping, and its learning-rate schedule
//! (linear warm-up, then cosine decay to a floor).
//!
//! Written here rather than taken from candle-nn so that the moment
//! estimates can be saved and restored: a resumed run continues exactly
//! where it stopped. Weight decay applies to matrices and embeddings
//! (rank ≥ 2), not to biases and norm scales.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::VarMap;

use crate::error::{Result, VlaPolicyError};

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β₁.
    pub beta1: f64,
    /// β₂.
    pub beta2: f64,
    /// ε.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Largest global gradient norm; larger gradients are scaled down.
    pub grad_clip: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.05,
            grad_clip: 1.0,
        }
    }
}

/// The optimiser and its state.
pub struct AdamW {
    cfg: AdamWConfig,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates done so far.
    pub t: usize,
}

impl AdamW {
    /// Optimises every variable of `varmap` (sorted by name).
    pub fn new(varmap: &VarMap, cfg: AdamWConfig) -> Result<Self> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| VlaPolicyError::Config("variable map lock poisoned".into()))?;
        let mut vars: Vec<(String, Var)> =
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = m.clone();
        Ok(Self {
            cfg,
            vars,
            m,
            v,
            t: 0,
        })
    }

    /// One update with learning rate `lr`; returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let mut sq = 0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        let norm = sq.sqrt();
        let scale = if norm > self.cfg.grad_clip && norm.is_finite() {
            self.cfg.grad_clip / norm
        } else {
            1.0
        };
        if !norm.is_finite() {
            return Err(VlaPolicyError::Data(format!(
                "gradient norm is {norm}; training diverged (try a lower learning rate)"
            )));
        }
        self.t += 1;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = (g * scale)?;
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.cfg.eps)?)?;
            let decay = if var.rank() >= 2 {
                1.0 - lr * self.cfg.weight_decay
            } else {
                1.0
            };
            let next = ((var.as_tensor() * decay)? - (update * lr)?)?;
            var.set(&next)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }

    /// Saves the moment estimates (`m.NAME`, `v.NAME`) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
        }
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Restores moments saved by [`Self::save`] after `t` updates.
    pub fn load(&mut self, path: &Path, t: usize) -> Result<()> {
        let map = candle_core::safetensors::load(path, self.m[0].device()).map_err(|e| {
            VlaPolicyError::CorruptCheckpoint {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{prefix}.{name}");
                let t = map.get(&key).ok_or_else(|| VlaPolicyError::MissingTensor {
                    path: path.to_path_buf(),
                    name: key.clone(),
                })?;
                if t.dims() != var.dims() {
                    return Err(VlaPolicyError::TensorShape {
                        name: key,
                        expected: var.dims().to_vec(),
                        actual: t.dims().to_vec(),
                    });
                }
                *slot = t.clone();
            }
        }
        self.t = t;
        Ok(())
    }
}

/// Learning rate at `step` (0-based): linear warm-up over `warmup` steps to
/// `peak`, then cosine decay to `peak * floor_ratio` at `total`.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64, floor_ratio: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    let floor = peak * floor_ratio;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let peak = 1e-3;
        assert!((lr_at(0, 100, 10, peak, 0.1) - 1e-4).abs() < 1e-12);
        assert!((lr_at(9, 100, 10, peak, 0.1) - peak).abs() < 1e-12);
        assert!((lr_at(10, 100, 10, peak, 0.1) - peak).abs() < 1e-12);
        assert!(lr_at(55, 100, 10, peak, 0.1) < peak);
        assert!((lr_at(100, 100, 10, peak, 0.1) - 1e-4).abs() < 1e-12);
        let mut prev = f64::MAX;
        for s in 10..=100 {
            let lr = lr_at(s, 100, 10, peak, 0.1);
            assert!(lr <= prev + 1e-15);
            prev = lr;
        }
    }
}

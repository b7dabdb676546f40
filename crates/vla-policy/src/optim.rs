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
        // Separate storage: the moments are replaced, never written in
        // place, but keep them independent all the same.
        let v = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            cfg,
            vars,
            m,
            v,
            t: 0,
        })
    }

    /// One update with learning rate `lr`; returns the gradient norm before clipping.
    ///
    /// f32 variables on the CPU are updated by [`fused_update`], one pass
    /// per variable on two threads, with the same f32 operations in the same
    /// order as the tensor expressions of [`Self::update_tensor`] (which
    /// other devices use): the same bits, without a dozen temporary tensors
    /// per variable on the training loop's one serial stretch (session 27).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let present: Vec<(usize, &Tensor)> = self
            .vars
            .iter()
            .enumerate()
            .filter_map(|(i, (_, var))| grads.get(var.as_tensor()).map(|g| (i, g)))
            .collect();
        // Each variable's f32 sum of squares, added up in f64 in variable
        // order whatever thread computed it.
        let sums =
            crate::parallel::in_two(&present, |(_, g)| g.sqr()?.sum_all()?.to_scalar::<f32>())?;
        let sq: f64 = sums.into_iter().map(f64::from).sum();
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
        let k = Coefficients {
            scale,
            b1,
            b2,
            bc1: 1.0 - b1.powi(self.t as i32),
            bc2: 1.0 - b2.powi(self.t as i32),
            eps: self.cfg.eps,
            lr,
        };
        let jobs: Vec<(usize, &Tensor, f64)> = present
            .iter()
            .map(|&(i, g)| {
                let decay = if self.vars[i].1.rank() >= 2 {
                    1.0 - lr * self.cfg.weight_decay
                } else {
                    1.0
                };
                (i, g, decay)
            })
            .collect();
        let (vars, m, v) = (&self.vars, &self.m, &self.v);
        let updated = crate::parallel::in_two(&jobs, |&(i, g, decay)| {
            let p = vars[i].1.as_tensor();
            match fused_update(p, g, &m[i], &v[i], &k, decay)? {
                Some(next) => Ok(next),
                None => Self::update_tensor(p, g, &m[i], &v[i], &k, decay),
            }
        })?;
        for ((i, _, _), (next, m, v)) in jobs.iter().zip(updated) {
            self.vars[*i].1.set(&next)?;
            self.m[*i] = m;
            self.v[*i] = v;
        }
        Ok(norm)
    }

    /// The update of one variable as tensor expressions: the next value and
    /// moments.
    fn update_tensor(
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        k: &Coefficients,
        decay: f64,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let g = (g * k.scale)?;
        let m = ((m * k.b1)? + (&g * (1.0 - k.b1))?)?;
        let v = ((v * k.b2)? + (g.sqr()? * (1.0 - k.b2))?)?;
        let update = ((&m / k.bc1)? / ((&v / k.bc2)?.sqrt()? + k.eps)?)?;
        let next = ((p * decay)? - (update * k.lr)?)?;
        Ok((next, m, v))
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

/// The scalars of one update.
struct Coefficients {
    /// Gradient clipping factor (1 without clipping).
    scale: f64,
    b1: f64,
    b2: f64,
    /// Bias corrections `1 − βᵗ`.
    bc1: f64,
    bc2: f64,
    eps: f64,
    lr: f64,
}

/// The contiguous f32 elements of a CPU tensor, or `None`.
fn cpu_f32(t: &Tensor) -> Option<(candle_core::StorageRef<'_>, usize, usize)> {
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets()?;
    match &*storage {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(_)) => Some((storage, start, end)),
        _ => None,
    }
}

/// The slice a [`cpu_f32`] guard covers.
fn slice<'a>(guard: &'a (candle_core::StorageRef<'_>, usize, usize)) -> Option<&'a [f32]> {
    let (storage, start, end) = guard;
    match &**storage {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(d)) => d.get(*start..*end),
        _ => None,
    }
}

/// [`AdamW::update_tensor`] in one pass over f32 CPU slices, element by
/// element with the f32 operations candle's affine, add, sqr, sqrt and
/// div perform there (`x · a + b` with `a`, `b` cast from f64), so the
/// result is the same bits. `None` for other devices, dtypes or layouts.
fn fused_update(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    k: &Coefficients,
    decay: f64,
) -> candle_core::Result<Option<(Tensor, Tensor, Tensor)>> {
    let n = p.elem_count();
    if [g, m, v].iter().any(|t| t.dims() != p.dims()) {
        candle_core::bail!("optimiser state of the wrong shape");
    }
    let (Some(ps), Some(gs), Some(ms), Some(vs)) = (cpu_f32(p), cpu_f32(g), cpu_f32(m), cpu_f32(v))
    else {
        return Ok(None);
    };
    let (Some(pd), Some(gd), Some(md), Some(vd)) = (slice(&ps), slice(&gs), slice(&ms), slice(&vs))
    else {
        return Ok(None);
    };
    if [pd.len(), gd.len(), md.len(), vd.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Ok(None);
    }
    // The scalars as candle's affine casts them.
    let scale = k.scale as f32;
    let (b1, c1) = (k.b1 as f32, (1.0 - k.b1) as f32);
    let (b2, c2) = (k.b2 as f32, (1.0 - k.b2) as f32);
    let (ibc1, ibc2) = ((1.0 / k.bc1) as f32, (1.0 / k.bc2) as f32);
    let (eps, lr, decay) = (k.eps as f32, k.lr as f32, decay as f32);
    let (mut next, mut m_out, mut v_out) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for i in 0..n {
        let g = gd[i] * scale + 0.0;
        let m = (md[i] * b1 + 0.0) + (g * c1 + 0.0);
        let v = (vd[i] * b2 + 0.0) + ((g * g) * c2 + 0.0);
        let update = (m * ibc1 + 0.0) / ((v * ibc2 + 0.0).sqrt() * 1.0 + eps);
        next.push((pd[i] * decay + 0.0) - (update * lr + 0.0));
        m_out.push(m);
        v_out.push(v);
    }
    let dev = p.device();
    Ok(Some((
        Tensor::from_vec(next, p.shape(), dev)?,
        Tensor::from_vec(m_out, p.shape(), dev)?,
        Tensor::from_vec(v_out, p.shape(), dev)?,
    )))
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
    use candle_core::Device;

    #[test]
    fn the_fused_update_is_the_tensor_update_bit_for_bit() {
        let dev = Device::Cpu;
        let shape = (37, 53);
        let p = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
        // Some exact zeros in the gradient and the moments, as early steps have.
        let g = Tensor::randn(0f32, 3.0, shape, &dev)
            .unwrap()
            .relu()
            .unwrap();
        let m = Tensor::randn(0f32, 0.1, shape, &dev).unwrap();
        let v = Tensor::randn(0f32, 0.1, shape, &dev)
            .unwrap()
            .sqr()
            .unwrap();
        for (t, scale, decay) in [(1, 1.0, 1.0), (7, 0.37, 1.0 - 3e-4 * 0.05), (900, 1.0, 0.9)] {
            let k = Coefficients {
                scale,
                b1: 0.9,
                b2: 0.95,
                bc1: 1.0 - 0.9f64.powi(t),
                bc2: 1.0 - 0.95f64.powi(t),
                eps: 1e-8,
                lr: 3e-4,
            };
            let fused = fused_update(&p, &g, &m, &v, &k, decay).unwrap().unwrap();
            let tensor = AdamW::update_tensor(&p, &g, &m, &v, &k, decay).unwrap();
            for (a, b) in [
                (&fused.0, &tensor.0),
                (&fused.1, &tensor.1),
                (&fused.2, &tensor.2),
            ] {
                let a: Vec<u32> = a
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                let b: Vec<u32> = b
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|x| x.to_bits())
                    .collect();
                assert_eq!(a, b, "step {t}");
            }
            // And it moved the parameters.
            assert_ne!(
                fused.0.to_vec2::<f32>().unwrap(),
                p.to_vec2::<f32>().unwrap()
            );
        }
    }

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

//! Seeded weight initialisation.
//!
//! candle's CPU device cannot be seeded, so a `VarMap` initialises from an
//! unseeded generator. [`SeededVars`] is a `VarBuilder` backend that draws
//! every new variable from a ChaCha generator (in the order the model asks
//! for them, which is fixed) and stores it in a `VarMap`, so that a training
//! run is reproducible from its seed.

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A `VarBuilder` backend creating seeded variables in a `VarMap`.
pub struct SeededVars {
    varmap: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededVars {
    /// A builder whose variables land in `varmap`.
    pub fn builder(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
        let backend = Self {
            varmap: varmap.clone(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        };
        VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
    }
}

fn lock_err<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("lock poisoned".into())
}

/// Standard normal sample (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn sample(init: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let (uniform, a, b) = match init {
        Init::Const(c) => return vec![c as f32; n],
        Init::Uniform { lo, up } => (true, lo, up),
        Init::Randn { mean, stdev } => (false, mean, stdev),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => (true, -(3f64.sqrt()) * std, 3f64.sqrt() * std),
                NormalOrUniform::Normal => (false, 0.0, std),
            }
        }
    };
    (0..n)
        .map(|_| {
            if uniform {
                rng.gen_range(a..b) as f32
            } else {
                (a + b * normal(rng)) as f32
            }
        })
        .collect()
}

impl SimpleBackend for SeededVars {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.varmap.data().lock().map_err(lock_err)?;
        if let Some(v) = data.get(name) {
            if v.shape() != &s {
                candle_core::bail!(
                    "variable {name} exists with shape {:?}, asked {s:?}",
                    v.dims()
                );
            }
            return Ok(v.as_tensor().clone());
        }
        let values = sample(h, &s, &mut *self.rng.lock().map_err(lock_err)?);
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        data.insert(name.to_string(), var.clone());
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        let data = self.varmap.data().lock().map_err(lock_err)?;
        match data.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("no variable {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

//! Differentiable building blocks written with basic tensor ops.
//!
//! candle-nn 0.11's fused `LayerNorm`, `RmsNorm` and `softmax_last_dim` do
//! not propagate gradients (candle issues 2168, 2977, 3011), so layer norm
//! and softmax are spelled out here from `mean`, `sqr`, `exp` and friends,
//! whose backward passes candle implements. When nothing in a call tracks
//! gradients (an inference model built from plain tensors, see
//! [`crate::checkpoint::load_for_inference`]), the fused kernels are used
//! instead: same result to float rounding, fewer ops. Linear layers flatten
//! their input to 2-D so that every matmul is one plain GEMM.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};

/// `y = x·Wᵀ + b` over the last dimension of an input of any rank.
#[derive(Debug, Clone)]
pub struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
}

impl Linear {
    /// A `d_in → d_out` layer; weights uniform in ±1/√d_in (PyTorch's default).
    pub fn new(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (d_in as f64).sqrt();
        let weight = vb.get_with_hints(
            (d_out, d_in),
            "weight",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        let bias = vb.get_with_hints(d_out, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }

    /// A `d_in → d_out` layer starting at zero (weights and bias): a branch
    /// added to a warm-started network's output changes nothing at first.
    pub fn zeros(d_in: usize, d_out: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((d_out, d_in), "weight", Init::Const(0.0))?;
        let bias = vb.get_with_hints(d_out, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (&d_in, lead) = dims
            .split_last()
            .ok_or_else(|| candle_core::Error::Msg("linear on a scalar".into()))?;
        let rows: usize = lead.iter().product();
        let y = x.reshape((rows, d_in))?.matmul(&self.weight.t()?)?;
        let y = crate::broadcast::add(&y, &self.bias)?;
        let mut out = lead.to_vec();
        out.push(self.weight.dim(0)?);
        y.reshape(out)
    }
}

/// Layer normalisation over the last dimension, differentiable.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) eps: f64,
}

impl LayerNorm {
    /// Scale 1, shift 0, ε = 1e-5.
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(dim, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(dim, "bias", Init::Const(0.0))?,
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !x.track_op() && !self.weight.track_op() {
            return candle_nn::ops::layer_norm(
                &x.contiguous()?,
                &self.weight,
                &self.bias,
                self.eps as f32,
            );
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        crate::broadcast::add(&crate::broadcast::mul(&normed, &self.weight)?, &self.bias)
    }
}

/// Softmax over the last dimension, differentiable (the max is subtracted
/// for stability and treated as a constant, which leaves the result exact).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        return candle_nn::ops::softmax_last_dim(&x.contiguous()?);
    }
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Log-softmax over the last dimension, differentiable.
pub fn log_softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Multi-head attention with separate query and key/value inputs.
#[derive(Debug, Clone)]
pub struct Attention {
    pub(crate) q: Linear,
    pub(crate) kv: Linear,
    pub(crate) out: Linear,
    pub(crate) heads: usize,
}

/// Keys and values of one attention layer, projected once and reused.
#[derive(Debug, Clone)]
pub struct KeyValues {
    /// `(B, H, Tk, D/H)`.
    pub(crate) k: Tensor,
    /// `(B, H, Tk, D/H)`.
    pub(crate) v: Tensor,
}

impl Attention {
    /// `heads` heads over width `dim`.
    pub fn new(dim: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            q: Linear::new(dim, dim, vb.pp("q"))?,
            kv: Linear::new(dim, 2 * dim, vb.pp("kv"))?,
            out: Linear::new(dim, dim, vb.pp("out"))?,
            heads,
        })
    }

    /// `(B, T, D)` → `(B, H, T, D/H)`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        x.reshape((b, t, self.heads, d / self.heads))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Projects a key/value source `(B, Tk, D)`.
    pub fn key_values(&self, source: &Tensor) -> Result<KeyValues> {
        let kv = self.kv.forward(source)?;
        let d = kv.dim(D::Minus1)? / 2;
        Ok(KeyValues {
            k: self.split_heads(&kv.narrow(D::Minus1, 0, d)?)?,
            v: self.split_heads(&kv.narrow(D::Minus1, d, d)?)?,
        })
    }

    /// Attends from `x (B, Tq, D)` to `kv`; `bias` (broadcastable to
    /// `(B, H, Tq, Tk)`) is added to the scores (0 or a large negative).
    pub fn forward(&self, x: &Tensor, kv: &KeyValues, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, tq, d) = x.dims3()?;
        let q = self.split_heads(&self.q.forward(x)?)?;
        let scale = 1.0 / ((d / self.heads) as f64).sqrt();
        let mut scores = (q.matmul(&kv.k.t()?)? * scale)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let p = softmax_last(&scores)?;
        let y = p.matmul(&kv.v)?.transpose(1, 2)?.reshape((b, tq, d))?;
        self.out.forward(&y)
    }
}

/// Two-layer perceptron with ReLU (GELU's tanh costs a third of CPU training time in candle).
#[derive(Debug, Clone)]
pub struct Mlp {
    pub(crate) fc1: Linear,
    pub(crate) fc2: Linear,
}

impl Mlp {
    /// `dim → hidden → dim`.
    pub fn new(dim: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: Linear::new(dim, hidden, vb.pp("fc1"))?,
            fc2: Linear::new(hidden, dim, vb.pp("fc2"))?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.relu()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    #[test]
    fn softmax_matches_candle_and_has_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 3.0, (4, 7), &dev).unwrap()).unwrap();
        let ours = softmax_last(x.as_tensor()).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(x.as_tensor()).unwrap();
        let diff = (&ours - &theirs).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
        // d/dx of sum(softmax * w) is non-zero for non-constant w.
        let w = Tensor::arange(0f32, 7.0, &dev).unwrap();
        let loss = ours.broadcast_mul(&w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(&x).unwrap().abs().unwrap().sum_all().unwrap();
        assert!(g.to_scalar::<f32>().unwrap() > 1e-3);
    }

    #[test]
    fn layer_norm_normalises_and_has_gradients() {
        let dev = Device::Cpu;
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let ln = LayerNorm::new(16, vb).unwrap();
        let x = Tensor::randn(2f32, 5.0, (3, 16), &dev).unwrap();
        let y = ln.forward(&x).unwrap();
        let mean = y.mean(D::Minus1).unwrap().abs().unwrap().max_all().unwrap();
        assert!(mean.to_scalar::<f32>().unwrap() < 1e-4);
        let w = Tensor::randn(0f32, 1.0, (3, 16), &dev).unwrap();
        let loss = (y * w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for var in varmap.all_vars() {
            let g = grads.get(var.as_tensor()).unwrap();
            let g = g
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(g > 1e-4, "layer norm parameter has no gradient");
        }
    }

    #[test]
    fn log_softmax_is_log_of_softmax() {
        let x = Tensor::randn(0f32, 4.0, (2, 9), &Device::Cpu).unwrap();
        let a = log_softmax_last(&x).unwrap().exp().unwrap();
        let b = softmax_last(&x).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-6);
    }
}

//! How the instruction reaches the image stem: the vector FiLM and the
//! keypoint head are conditioned on.
//!
//! * Mean pooling (`ModelConfig::instruction_queries == 0`, every checkpoint
//!   before session 8): the mean of the real MiniLM tokens. It mixes the
//!   words of both objects of "put the red sphere in the green bowl", so the
//!   stem is told "red, sphere, green, bowl" and has to guess which is which.
//! * Attention pooling (`instruction_queries = Q > 0`): the mean, followed
//!   by `Q` learned queries' weighted means of the tokens (each a softmax
//!   over the instruction's tokens, scores from a small key projection,
//!   padding masked). One query can learn to read the goal object's phrase,
//!   another the target's, from MiniLM's contextual token outputs. The
//!   mean comes first so that a warm start from a mean-pooled policy can
//!   keep its FiLM weights for those inputs and start the new ones at zero
//!   ([`crate::checkpoint::warm_start`]): the grown network then computes
//!   exactly what the old one did.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::nn::{softmax_last, Linear};

/// Width of the attention pooling's keys and queries.
const KEY_DIM: usize = 64;

/// Instruction tokens `(B, L, H)` + mask → one conditioning vector per example.
#[derive(Debug, Clone)]
pub(crate) enum InstructionPool {
    /// Mean of the real tokens: width `H`.
    Mean { hidden: usize },
    /// The mean, then `queries (Q, KEY_DIM)` against `keys(tokens)`: width `(1 + Q)·H`.
    Attention {
        hidden: usize,
        keys: Linear,
        queries: Tensor,
    },
}

impl InstructionPool {
    /// Mean pooling for `queries == 0`, otherwise attention pooling with
    /// variables `keys.*` and `queries` under `vb`.
    pub fn new(hidden: usize, queries: usize, vb: VarBuilder) -> Result<Self> {
        if queries == 0 {
            return Ok(Self::Mean { hidden });
        }
        Ok(Self::Attention {
            hidden,
            keys: Linear::new(hidden, KEY_DIM, vb.pp("keys"))?,
            queries: vb.get_with_hints(
                (queries, KEY_DIM),
                "queries",
                Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            )?,
        })
    }

    /// Length of the pooled vector.
    pub fn width(&self) -> usize {
        match self {
            Self::Mean { hidden } => *hidden,
            Self::Attention {
                hidden, queries, ..
            } => hidden * (1 + queries.dim(0).unwrap_or(0)),
        }
    }

    /// Tokens `(B, L, H)` and mask `(B, L)` (1 = real token) → `(B, width)`.
    pub fn forward(&self, text: &Tensor, text_mask: &Tensor) -> Result<Tensor> {
        let mask = text_mask.to_dtype(DType::F32)?;
        let count = mask.sum_keepdim(1)?.clamp(1.0, f64::MAX)?;
        let mean = text
            .broadcast_mul(&mask.unsqueeze(2)?)?
            .sum(1)?
            .broadcast_div(&count)?;
        match self {
            Self::Mean { .. } => Ok(mean),
            Self::Attention { keys, queries, .. } => {
                let (b, _, h) = text.dims3()?;
                let q = queries.dim(0)?;
                let k = keys.forward(text)?; // (B, L, KEY_DIM)
                let scores = queries
                    .unsqueeze(0)?
                    .broadcast_matmul(&k.transpose(1, 2)?.contiguous()?)?; // (B, Q, L)
                let scores = (scores / (KEY_DIM as f64).sqrt())?;
                let bias = ((mask - 1.0)? * 1e9)?.unsqueeze(1)?; // 0 real, −1e9 padding
                let weights = softmax_last(&scores.broadcast_add(&bias)?)?;
                let pooled = weights.matmul(&text.contiguous()?)?.reshape((b, q * h))?;
                Tensor::cat(&[&mean, &pooled], 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::VarMap;

    #[test]
    fn mean_pooling_ignores_padding() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let pool =
            InstructionPool::new(2, 0, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        let text = Tensor::new(&[[[1f32, 2.], [3., 4.], [100., 100.]]], &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0]], &dev).unwrap();
        let out: Vec<Vec<f32>> = pool.forward(&text, &mask).unwrap().to_vec2().unwrap();
        assert_eq!(out, vec![vec![2.0, 3.0]]);
    }

    #[test]
    fn attention_pooling_never_reads_padding_and_follows_the_mean() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let pool =
            InstructionPool::new(2, 3, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        assert_eq!(pool.width(), 8);
        // The padded token is huge: any weight on it would show.
        let text = Tensor::new(&[[[1f32, 2.], [3., 4.], [1e6, 1e6]]], &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0]], &dev).unwrap();
        let out: Vec<Vec<f32>> = pool.forward(&text, &mask).unwrap().to_vec2().unwrap();
        assert_eq!(out[0].len(), 8);
        assert_eq!(&out[0][..2], &[2.0, 3.0], "the mean comes first");
        for pair in out[0][2..].chunks(2) {
            // A convex combination of (1, 2) and (3, 4).
            assert!((1.0..=3.0).contains(&pair[0]), "{pair:?}");
            assert!((pair[1] - pair[0] - 1.0).abs() < 1e-4, "{pair:?}");
        }
    }
}

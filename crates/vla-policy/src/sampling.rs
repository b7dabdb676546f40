//! How each training step draws its batch from the training samples:
//! uniformly (every sample equally likely), or in proportion to per-sample
//! weights — e.g. `vla train --data-weight` drawing a DAgger round's
//! rollouts more often than the demonstrations, whose states the policy
//! already handles. Draws are with replacement, from the step's own seeded
//! generator, so a run stays deterministic; the uniform sampler consumes
//! the generator exactly as training always has (same batches, same model).

use rand::Rng;

use crate::error::{Result, VlaPolicyError};

/// Draws sample indices for batches.
#[derive(Debug, Clone)]
pub enum BatchSampler<'a> {
    /// Every training sample equally likely.
    Uniform(&'a [usize]),
    /// In proportion to the weights.
    Weighted {
        /// The training samples' indices.
        idx: &'a [usize],
        /// Running sums of their weights (same length, last = total).
        cumulative: Vec<f64>,
    },
}

impl<'a> BatchSampler<'a> {
    /// A sampler over `train_idx` (indices into a data set of `samples`
    /// samples). `weights`, when given, has one finite, non-negative entry
    /// per sample of the data set; all equal means uniform.
    pub fn new(train_idx: &'a [usize], weights: Option<&[f32]>, samples: usize) -> Result<Self> {
        if train_idx.is_empty() {
            return Err(VlaPolicyError::Data(
                "no training samples to draw from".into(),
            ));
        }
        let Some(w) = weights else {
            return Ok(Self::Uniform(train_idx));
        };
        if w.len() != samples {
            return Err(VlaPolicyError::Config(format!(
                "{} sample weights for a data set of {samples} samples",
                w.len()
            )));
        }
        if let Some((i, v)) = w
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite() || **v < 0.0)
        {
            return Err(VlaPolicyError::Config(format!(
                "sample weight {i} is {v}: weights must be finite and ≥ 0"
            )));
        }
        let first = w[train_idx[0]];
        if train_idx.iter().all(|&i| w[i] == first) && first > 0.0 {
            return Ok(Self::Uniform(train_idx));
        }
        let mut total = 0.0f64;
        let cumulative: Vec<f64> = train_idx
            .iter()
            .map(|&i| {
                total += f64::from(w[i]);
                total
            })
            .collect();
        if total <= 0.0 {
            return Err(VlaPolicyError::Config(
                "every training sample has weight 0".into(),
            ));
        }
        Ok(Self::Weighted {
            idx: train_idx,
            cumulative,
        })
    }

    /// One sample index.
    pub fn draw(&self, rng: &mut impl Rng) -> usize {
        match self {
            Self::Uniform(idx) => idx[rng.gen_range(0..idx.len())],
            Self::Weighted { idx, cumulative } => {
                let total = cumulative.last().copied().unwrap_or(0.0);
                let u = rng.gen::<f64>() * total;
                // The first running sum above `u`: zero-weight samples
                // (equal sums) are never chosen.
                let k = cumulative.partition_point(|&c| c <= u);
                idx[k.min(idx.len() - 1)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn uniform_draws_as_training_always_did() {
        let idx: Vec<usize> = (0..50).map(|i| i * 2).collect();
        let s = BatchSampler::new(&idx, None, 100).unwrap();
        let equal = vec![2.5f32; 100];
        let s_equal = BatchSampler::new(&idx, Some(&equal), 100).unwrap();
        let (mut a, mut b, mut c) = (
            ChaCha8Rng::seed_from_u64(7),
            ChaCha8Rng::seed_from_u64(7),
            ChaCha8Rng::seed_from_u64(7),
        );
        for _ in 0..200 {
            let old = idx[c.gen_range(0..idx.len())];
            assert_eq!(s.draw(&mut a), old);
            assert_eq!(s_equal.draw(&mut b), old);
        }
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        // Samples 0..10 weight 1, 10..20 weight 3, 20..30 weight 0.
        let idx: Vec<usize> = (0..30).collect();
        let w: Vec<f32> = (0..30)
            .map(|i| match i / 10 {
                0 => 1.0,
                1 => 3.0,
                _ => 0.0,
            })
            .collect();
        let s = BatchSampler::new(&idx, Some(&w), 30).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut counts = [0usize; 3];
        let n = 40_000;
        for _ in 0..n {
            counts[s.draw(&mut rng) / 10] += 1;
        }
        assert_eq!(counts[2], 0, "zero-weight samples are never drawn");
        let share = counts[1] as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.02, "weight-3 share {share}");
    }

    #[test]
    fn bad_weights_are_refused() {
        let idx = [0usize, 1, 2];
        for (w, what) in [
            (vec![1.0f32, 1.0], "2 sample weights"),
            (vec![1.0, f32::NAN, 1.0], "finite"),
            (vec![1.0, -1.0, 1.0], "finite and ≥ 0"),
            (vec![0.0, 0.0, 0.0], "weight 0"),
        ] {
            let err = BatchSampler::new(&idx, Some(&w), 3)
                .unwrap_err()
                .to_string();
            assert!(err.contains(what), "{err}");
        }
        assert!(BatchSampler::new(&[], None, 3).is_err());
    }
}

//! The action tokenizer: continuous actions ↔ 8 discrete tokens per step.
//!
//! RT-2 discretises each continuous action dimension into 256 uniform bins
//! and writes the bin indices as tokens. Here:
//!
//! * each of the 7 continuous dimensions is clipped to `[low, high]` and
//!   mapped to bin `floor((v - low) / (high - low) * 256)`, capped at 255;
//!   detokenizing returns the bin centre, so the round trip is within half a
//!   bin of the clipped value;
//! * the terminate flag uses bins 0 (continue) and 1 (terminate) only;
//! * bounds are either fixed ([`ActionBounds::default_uniform`]) or the 1st
//!   and 99th percentile of a data set (OpenVLA's quantile normalisation,
//!   [`ActionBounds::from_quantiles`]); they are stored with the policy;
//! * token ids occupy `first_token_id .. first_token_id + 256` of the model's
//!   vocabulary. Decoding an id outside the range valid at its position is an
//!   error, never a clamp.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionTokens, ACTION_DIMS, TOKENS_PER_STEP};
use crate::CoreError;

/// Bins per dimension, as in RT-2.
pub const NUM_BINS: u32 = 256;

/// Bins used by the terminate token: 0 = continue, 1 = terminate.
pub const TERMINATE_BINS: u32 = 2;

/// How the bounds were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// Fixed bounds chosen for the robot.
    Uniform,
    /// Bounds are the given percentiles of a data set's actions.
    Quantile {
        /// Lower percentile, as a fraction (0.01 for the 1st percentile).
        lower: f64,
        /// Upper percentile, as a fraction (0.99 for the 99th percentile).
        upper: f64,
    },
}

/// Per-dimension clipping bounds, in token order (Δx Δy Δz Δroll Δpitch Δyaw gripper).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionBounds {
    /// Lower bound of each dimension.
    pub low: [f64; ACTION_DIMS],
    /// Upper bound of each dimension.
    pub high: [f64; ACTION_DIMS],
    /// Where the bounds came from.
    pub normalization: Normalization,
}

/// Default per-step translation limit, metres.
pub const DEFAULT_MAX_STEP_M: f64 = 0.03;
/// Default per-step rotation limit, radians.
pub const DEFAULT_MAX_STEP_RAD: f64 = 0.15;

impl ActionBounds {
    /// ±3 cm and ±0.15 rad per step, gripper in [0, 1].
    pub fn default_uniform() -> Self {
        let t = DEFAULT_MAX_STEP_M;
        let r = DEFAULT_MAX_STEP_RAD;
        Self {
            low: [-t, -t, -t, -r, -r, -r, 0.0],
            high: [t, t, t, r, r, r, 1.0],
            normalization: Normalization::Uniform,
        }
    }

    /// Bounds from the `lower` and `upper` quantiles (fractions) of each
    /// dimension over `actions`, with linear interpolation between order
    /// statistics. A dimension whose quantiles coincide is widened by 1e-6 on
    /// each side so that it still bins.
    pub fn from_quantiles(actions: &[Action], lower: f64, upper: f64) -> Result<Self, CoreError> {
        if actions.is_empty() {
            return Err(CoreError::EmptyDataset);
        }
        let mut low = [0.0; ACTION_DIMS];
        let mut high = [0.0; ACTION_DIMS];
        let mut column = Vec::with_capacity(actions.len());
        for dim in 0..ACTION_DIMS {
            column.clear();
            for a in actions {
                a.check_finite()?;
                column.push(a.to_continuous()[dim]);
            }
            column.sort_by(f64::total_cmp);
            let mut lo = quantile_sorted(&column, lower);
            let mut hi = quantile_sorted(&column, upper);
            if hi - lo < 1e-9 {
                lo -= 1e-6;
                hi += 1e-6;
            }
            low[dim] = lo;
            high[dim] = hi;
        }
        let bounds = Self {
            low,
            high,
            normalization: Normalization::Quantile { lower, upper },
        };
        bounds.validate()?;
        Ok(bounds)
    }

    /// Widens every dimension narrower than `min_width[dim]` to that width,
    /// symmetrically about its centre. Quantile bounds of a dimension the
    /// data barely uses (an expert that holds its orientation) are otherwise
    /// so narrow that their 256 bins only encode noise.
    pub fn with_min_width(mut self, min_width: [f64; ACTION_DIMS]) -> Self {
        for (dim, &w) in min_width.iter().enumerate() {
            if self.high[dim] - self.low[dim] < w {
                let centre = 0.5 * (self.low[dim] + self.high[dim]);
                self.low[dim] = centre - 0.5 * w;
                self.high[dim] = centre + 0.5 * w;
            }
        }
        self
    }

    /// Errors unless every bound is finite and `low < high`.
    pub fn validate(&self) -> Result<(), CoreError> {
        for dim in 0..ACTION_DIMS {
            let (low, high) = (self.low[dim], self.high[dim]);
            if !(low.is_finite() && high.is_finite() && low < high) {
                return Err(CoreError::InvalidBounds { dim, low, high });
            }
        }
        Ok(())
    }
}

/// Quantile `q` (fraction) of an ascending slice, interpolating linearly.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let frac = pos - i as f64;
    sorted[i] + (sorted[j] - sorted[i]) * frac
}

/// Turns actions into token ids and back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ActionTokenizer {
    /// Clipping bounds of the continuous dimensions.
    pub bounds: ActionBounds,
    /// Id of bin 0 in the model vocabulary.
    pub first_token_id: u32,
}

impl Default for ActionTokenizer {
    fn default() -> Self {
        Self {
            bounds: ActionBounds::default_uniform(),
            first_token_id: 0,
        }
    }
}

impl ActionTokenizer {
    /// A tokenizer with the given bounds, its bins starting at `first_token_id`.
    pub fn new(bounds: ActionBounds, first_token_id: u32) -> Result<Self, CoreError> {
        bounds.validate()?;
        Ok(Self {
            bounds,
            first_token_id,
        })
    }

    /// Token ids valid at `position` (0 = terminate, 1..=7 the continuous dims).
    pub fn valid_range(&self, position: usize) -> RangeInclusive<u32> {
        let bins = if position == 0 {
            TERMINATE_BINS
        } else {
            NUM_BINS
        };
        self.first_token_id..=self.first_token_id + bins - 1
    }

    /// Width of one bin of continuous dimension `dim`.
    pub fn bin_width(&self, dim: usize) -> f64 {
        (self.bounds.high[dim] - self.bounds.low[dim]) / NUM_BINS as f64
    }

    /// Half a bin of dimension `dim`: the worst-case round-trip error.
    pub fn half_bin_width(&self, dim: usize) -> f64 {
        0.5 * self.bin_width(dim)
    }

    /// Bin index (0..256) of `value` in dimension `dim`, after clipping.
    /// `value` must be finite.
    pub fn bin_of(&self, dim: usize, value: f64) -> u32 {
        let (low, high) = (self.bounds.low[dim], self.bounds.high[dim]);
        let unit = (value.clamp(low, high) - low) / (high - low);
        ((unit * NUM_BINS as f64).floor() as u32).min(NUM_BINS - 1)
    }

    /// Centre of bin `bin` of dimension `dim`.
    pub fn value_of(&self, dim: usize, bin: u32) -> f64 {
        self.bounds.low[dim] + (bin as f64 + 0.5) * self.bin_width(dim)
    }

    /// Tokenizes one action; NaN or infinite inputs are an error.
    pub fn tokenize(&self, action: &Action) -> Result<ActionTokens, CoreError> {
        action.check_finite()?;
        let mut ids = [0u32; TOKENS_PER_STEP];
        ids[0] = self.first_token_id + u32::from(action.terminate);
        for (dim, v) in action.to_continuous().into_iter().enumerate() {
            ids[dim + 1] = self.first_token_id + self.bin_of(dim, v);
        }
        Ok(ActionTokens(ids))
    }

    /// Bin index of token `token` at `position`, or an error if the id is not
    /// valid there.
    pub fn bin_at(&self, position: usize, token: u32) -> Result<u32, CoreError> {
        let range = self.valid_range(position);
        if position >= TOKENS_PER_STEP || !range.contains(&token) {
            return Err(CoreError::TokenOutOfRange {
                position,
                token,
                min: *range.start(),
                max: *range.end(),
            });
        }
        Ok(token - self.first_token_id)
    }

    /// Decodes 8 token ids into an action (bin centres).
    pub fn detokenize(&self, tokens: &ActionTokens) -> Result<Action, CoreError> {
        let terminate = self.bin_at(0, tokens.0[0])? == 1;
        let mut v = [0.0; ACTION_DIMS];
        for (dim, slot) in v.iter_mut().enumerate() {
            let bin = self.bin_at(dim + 1, tokens.0[dim + 1])?;
            *slot = self.value_of(dim, bin);
        }
        Ok(Action::from_continuous(v, terminate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_action() -> impl Strategy<Value = Action> {
        (proptest::array::uniform7(-0.5f64..0.5), any::<bool>())
            .prop_map(|(v, t)| Action::from_continuous(v, t))
    }

    #[test]
    fn min_width_widens_only_narrow_dimensions_about_their_centre() {
        let mut b = ActionBounds::default_uniform();
        b.low[3] = 0.001;
        b.high[3] = 0.003;
        let w = b.with_min_width([0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 1.0]);
        assert_eq!(w.low[0], b.low[0]);
        assert_eq!(w.high[0], b.high[0]);
        assert!((w.low[3] - (0.002 - 0.05)).abs() < 1e-12);
        assert!((w.high[3] - (0.002 + 0.05)).abs() < 1e-12);
        assert_eq!((w.low[6], w.high[6]), (0.0, 1.0));
        assert!(w.validate().is_ok());
    }

    fn clip(tok: &ActionTokenizer, dim: usize, v: f64) -> f64 {
        v.clamp(tok.bounds.low[dim], tok.bounds.high[dim])
    }

    proptest! {
        #[test]
        fn round_trip_within_half_a_bin(a in arb_action(), offset in 0u32..50_000) {
            let tok = ActionTokenizer { first_token_id: offset, ..Default::default() };
            let back = tok.detokenize(&tok.tokenize(&a).unwrap()).unwrap();
            prop_assert_eq!(back.terminate, a.terminate);
            let (x, y) = (a.to_continuous(), back.to_continuous());
            for dim in 0..ACTION_DIMS {
                let err = (y[dim] - clip(&tok, dim, x[dim])).abs();
                prop_assert!(err <= tok.half_bin_width(dim) + 1e-12, "dim {} err {}", dim, err);
            }
        }

        #[test]
        fn binning_is_monotone(dim in 0usize..ACTION_DIMS, a in -0.5f64..0.5, b in -0.5f64..0.5) {
            let tok = ActionTokenizer::default();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(tok.bin_of(dim, lo) <= tok.bin_of(dim, hi));
        }

        #[test]
        fn tokens_always_in_valid_range(a in arb_action()) {
            let tok = ActionTokenizer { first_token_id: 1000, ..Default::default() };
            let t = tok.tokenize(&a).unwrap();
            for (pos, id) in t.0.iter().enumerate() {
                prop_assert!(tok.valid_range(pos).contains(id));
            }
        }
    }

    #[test]
    fn bin_edges() {
        let tok = ActionTokenizer::default();
        let (lo, hi) = (tok.bounds.low[0], tok.bounds.high[0]);
        let w = tok.bin_width(0);
        assert_eq!(tok.bin_of(0, lo), 0);
        assert_eq!(tok.bin_of(0, lo - 1.0), 0, "below range clips to bin 0");
        assert_eq!(tok.bin_of(0, hi), 255, "upper bound lands in the last bin");
        assert_eq!(tok.bin_of(0, hi + 1.0), 255);
        assert_eq!(tok.bin_of(0, lo + w * 0.999), 0);
        assert_eq!(tok.bin_of(0, lo + w * 1.001), 1);
        assert_eq!(
            tok.bin_of(0, 0.0),
            128,
            "zero sits at the lower edge of bin 128"
        );
        assert!((tok.value_of(0, 0) - (lo + 0.5 * w)).abs() < 1e-15);
        assert!((tok.value_of(0, 255) - (hi - 0.5 * w)).abs() < 1e-15);
    }

    #[test]
    fn out_of_range_tokens_are_errors() {
        let tok = ActionTokenizer {
            first_token_id: 100,
            ..Default::default()
        };
        let good = tok.tokenize(&Action::hold(0.0)).unwrap();
        let mut bad = good;
        bad.0[3] = 99;
        assert!(matches!(
            tok.detokenize(&bad),
            Err(CoreError::TokenOutOfRange {
                position: 3,
                token: 99,
                ..
            })
        ));
        bad = good;
        bad.0[7] = 356;
        assert!(tok.detokenize(&bad).is_err());
        bad = good;
        bad.0[0] = 102;
        assert!(tok.detokenize(&bad).is_err(), "terminate only has two bins");
    }

    #[test]
    fn nan_actions_are_rejected() {
        let tok = ActionTokenizer::default();
        let a = Action::new([f64::NAN, 0.0, 0.0], [0.0; 3], 0.0, false);
        assert!(matches!(tok.tokenize(&a), Err(CoreError::NonFinite { .. })));
    }

    #[test]
    fn quantile_bounds_ignore_outliers() {
        let mut actions: Vec<Action> = (0..=100)
            .map(|i| {
                let v = i as f64 / 100.0 * 0.02 - 0.01; // -0.01 ..= 0.01
                Action::new([v, 0.0, 0.0], [0.0; 3], 1.0, false)
            })
            .collect();
        actions.push(Action::new([5.0, 0.0, 0.0], [0.0; 3], 1.0, false));
        let b = ActionBounds::from_quantiles(&actions, 0.01, 0.99).unwrap();
        assert!(
            b.high[0] < 0.011,
            "outlier must not set the bound: {}",
            b.high[0]
        );
        assert!(b.low[0] > -0.0101 && b.low[0] < -0.0097, "{}", b.low[0]);
        // Constant dims are widened, not degenerate.
        assert!(b.low[1] < b.high[1]);
        assert!(b.validate().is_ok());
        assert_eq!(
            b.normalization,
            Normalization::Quantile {
                lower: 0.01,
                upper: 0.99
            }
        );
        assert_eq!(
            ActionBounds::from_quantiles(&[], 0.01, 0.99),
            Err(CoreError::EmptyDataset)
        );
    }

    #[test]
    fn invalid_bounds_rejected() {
        let mut b = ActionBounds::default_uniform();
        b.low[2] = b.high[2];
        assert!(ActionTokenizer::new(b, 0).is_err());
    }

    #[test]
    fn tokenizer_serialises() {
        let tok = ActionTokenizer::default();
        let json = serde_json::to_string(&tok).unwrap();
        let back: ActionTokenizer = serde_json::from_str(&json).unwrap();
        assert_eq!(tok, back);
    }
}

//! How a bin is chosen from each position's distribution over the 256 bins.
//!
//! RT-2 decodes greedily: the most likely token at every position. For the
//! six end-effector deltas that is a poor estimate when the distribution is
//! a spike plus a spread — demonstrations hold still on most steps (Δx is
//! exactly 0 on 60 % of the expert's steps), so bin 128 collects a spike,
//! while the moves the policy must make near an object are spread over many
//! neighbouring bins, each of them less likely than the spike. Greedy
//! decoding then answers "hold still" and the arm stops short of the
//! object. The bins are ordinal, so the median of the distribution is a
//! sound point estimate (it minimises the expected absolute error) and
//! follows the spread. Terminate and gripper are categorical and stay
//! greedy. Measured on the bundled policy: `policies/default/README.md`.

use serde::{Deserialize, Serialize};

/// The rule that turns one position's logits into a bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoding {
    /// The most likely bin at every position (RT-2).
    #[default]
    Greedy,
    /// The median bin for the six end-effector deltas (positions 1–6), the
    /// most likely bin for terminate and gripper.
    Median,
}

impl Decoding {
    /// All rules, for help texts and parsers.
    pub const ALL: [Decoding; 2] = [Decoding::Greedy, Decoding::Median];

    /// The rule's name in `config.json` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Decoding::Greedy => "greedy",
            Decoding::Median => "median",
        }
    }

    /// The bin for token position `pos` from its logits over the valid bins
    /// only (`logits.len()` is the number of valid bins; masked-out bins
    /// must not be passed). Non-finite logits never yield an out-of-range bin.
    pub fn choose(self, pos: usize, logits: &[f32]) -> usize {
        match self {
            Decoding::Median if (1..=6).contains(&pos) => median_bin(logits),
            _ => argmax(logits),
        }
    }
}

impl std::str::FromStr for Decoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decoding::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("unknown decoding {s:?}: use greedy or median"))
    }
}

/// Index of the largest logit (the first on ties; 0 for an empty or all-NaN slice).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || logits[best].is_nan() && !l.is_nan() {
            best = i;
        }
    }
    best
}

/// The first bin at which the softmax distribution's cumulative mass reaches
/// one half; the greedy bin when the logits are not finite.
pub fn median_bin(logits: &[f32]) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return argmax(logits);
    }
    let weights: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    if !total.is_finite() || total <= 0.0 {
        return argmax(logits);
    }
    let mut cum = 0.0f32;
    for (i, w) in weights.iter().enumerate() {
        cum += w;
        if cum >= 0.5 * total {
            return i;
        }
    }
    logits.len().saturating_sub(1)
}

/// Adds the softmax of `logits` to `acc` (a uniform distribution when the
/// logits are not finite, so that one broken ensemble member cannot poison
/// the sum with NaN): the accumulation behind an ensemble's mean
/// distribution ([`crate::ensemble`]).
pub fn add_softmax(logits: &[f32], acc: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let total: f32 = w.iter().sum();
    if !max.is_finite() || !total.is_finite() || total <= 0.0 {
        let u = 1.0 / logits.len().max(1) as f32;
        acc.iter_mut().for_each(|a| *a += u);
        return;
    }
    for (a, wi) in acc.iter_mut().zip(w) {
        *a += wi / total;
    }
}

/// Log-probabilities of a summed distribution, for [`Decoding::choose`]
/// (the sum's scale is a constant shift, irrelevant to both rules; a floor
/// keeps every value finite).
pub fn log_of_sum(sum: &[f32]) -> Vec<f32> {
    sum.iter().map(|p| p.max(1e-30).ln()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits_of(probs: &[f32]) -> Vec<f32> {
        probs.iter().map(|p| p.max(1e-12).ln()).collect()
    }

    #[test]
    fn median_follows_the_spread_where_greedy_takes_the_spike() {
        // 25 % on "hold still" (bin 2), 75 % spread over bins 5..=11.
        let mut p = vec![0.0f32; 16];
        p[2] = 0.25;
        p[5..=11].fill(0.75 / 7.0);
        let l = logits_of(&p);
        assert_eq!(Decoding::Greedy.choose(1, &l), 2);
        let m = Decoding::Median.choose(1, &l);
        assert_eq!(
            m, 7,
            "cumulative mass 0.25, 0.36, 0.46, 0.57 passes ½ at bin 7"
        );
    }

    #[test]
    fn terminate_and_gripper_stay_greedy() {
        let l = logits_of(&[0.4, 0.3, 0.3]);
        for pos in [0, 7] {
            assert_eq!(Decoding::Median.choose(pos, &l), 0);
        }
        assert_eq!(Decoding::Median.choose(3, &l), 1);
    }

    #[test]
    fn never_out_of_range_even_for_non_finite_logits() {
        for l in [
            vec![f32::NAN; 5],
            vec![f32::NEG_INFINITY; 5],
            vec![f32::INFINITY, 0.0, f32::INFINITY],
            vec![f32::NAN, 1.0, 3.0],
            vec![],
        ] {
            for d in Decoding::ALL {
                for pos in 0..8 {
                    let b = d.choose(pos, &l);
                    assert!(b < l.len().max(1), "{d:?} pos {pos} gave {b} for {l:?}");
                }
            }
        }
        assert_eq!(argmax(&[f32::NAN, 1.0, 3.0]), 2);
    }

    #[test]
    fn names_round_trip() {
        for d in Decoding::ALL {
            assert_eq!(d.as_str().parse::<Decoding>().unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
        assert!("beam".parse::<Decoding>().is_err());
    }
}

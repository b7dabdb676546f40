//! The previous step's executed action as an input (session 36,
//! `ModelConfig::prev_action_input`, `vla train --prev-action`).
//!
//! A memoryless policy near a goal cannot tell "just lifted, keep rising"
//! from "over the spot, lower": session 35 found the default policy
//! alternating up and down by a full step until the step limit in a tenth
//! of its train-split failures, its answer flipping with the height each
//! step reaches. The previous action says which way it was going. The seven
//! values (translation over [`TRANSLATION_SCALE_M`], rotation over
//! [`ROTATION_SCALE_RAD`], gripper as −1 open / +1 closed) follow the TCP
//! position in the state vector and feed the same encoder token, so a
//! warm start from a policy without them pads the TCP projection with zero
//! columns and starts from exactly its actions. Training reads the
//! recorded `executed` action of the episode's previous step (DAgger: what
//! was actually sent, the policy's or the expert's); a policy remembers the
//! action it decoded last and forgets it with a new instruction. The first
//! step of an episode, and sources without executed actions, read zeros.
//!
//! Two guards against the copycat problem (a policy that learns to repeat
//! its last command because demonstrations are smooth; session 36's
//! policy trained with all seven values descended with no sideways
//! correction and kept its gripper closed), session 37:
//! `ModelConfig::prev_action_parts` (`vla train --prev-action-parts`)
//! reads only some of the values ([`PrevActionParts`]: without the
//! gripper, only the vertical move the limit cycle needs, or that only
//! while the gripper was closed, so the approach stays memoryless), and
//! `TrainOptions::prev_action_dropout` (`--prev-action-dropout P`) zeroes
//! a training sample's whole previous action with probability P, so the
//! network must also act from the frame alone ([`drop_rows`]).

use serde::{Deserialize, Serialize};
use vla_core::Action;

/// Values the previous action adds to the state vector.
pub const PREV_ACTION_DIM: usize = 7;
/// Translation that maps to ±1, metres (the tokenizer's bounds are ±3 cm).
pub const TRANSLATION_SCALE_M: f64 = 0.03;
/// Rotation that maps to ±1, radians (the tokenizer's bounds are ±0.15 rad).
pub const ROTATION_SCALE_RAD: f64 = 0.15;

/// Which of the previous action's values a policy reads; the others are
/// fed as 0 (`ModelConfig::prev_action_parts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrevActionParts {
    /// All seven: translation, rotation, gripper (session 36).
    #[default]
    All,
    /// The six motion values; the gripper's reads 0.
    Motion,
    /// Only the vertical translation Δz, what tells lifting from lowering.
    Vertical,
    /// Δz only while the previous gripper command was closed (the limit
    /// cycle happens holding the object); with the gripper open, nothing,
    /// so the approach and the grasp decide from the frame alone (session
    /// 36's policy, reading everything, closed wherever a descent ended,
    /// as the demonstrations always do).
    VerticalClosed,
}

impl PrevActionParts {
    /// Every choice, for help texts and parsers.
    pub const ALL: [PrevActionParts; 4] = [
        Self::All,
        Self::Motion,
        Self::Vertical,
        Self::VerticalClosed,
    ];

    /// The name in `config.json` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Motion => "motion",
            Self::Vertical => "vertical",
            Self::VerticalClosed => "vertical_closed",
        }
    }

    /// Whether every value is read (the default, not written to config.json).
    pub fn is_all(&self) -> bool {
        *self == Self::All
    }

    /// Whether value `i` of [`features`] is read after an action whose
    /// gripper command was `closed`.
    pub fn reads(self, i: usize, closed: bool) -> bool {
        match self {
            Self::All => i < PREV_ACTION_DIM,
            Self::Motion => i < 6,
            Self::Vertical => i == 2,
            Self::VerticalClosed => i == 2 && closed,
        }
    }
}

impl std::str::FromStr for PrevActionParts {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown previous-action parts {s:?}: use all, motion, vertical or vertical_closed")
            })
    }
}

/// The input values for the previous action, zeros when there is none.
/// Non-finite components read 0 and the rest are clamped to ±2, so a
/// corrupt record cannot blow up the token. Values `parts` does not read
/// are 0.
pub fn features(previous: Option<&Action>, parts: PrevActionParts) -> [f32; PREV_ACTION_DIM] {
    let Some(a) = previous else {
        return [0.0; PREV_ACTION_DIM];
    };
    let clean = |v: f64| {
        if v.is_finite() {
            v.clamp(-2.0, 2.0) as f32
        } else {
            0.0
        }
    };
    let mut out = [0.0; PREV_ACTION_DIM];
    for i in 0..3 {
        out[i] = clean(a.translation_m[i] / TRANSLATION_SCALE_M);
        out[3 + i] = clean(a.rotation_rad[i] / ROTATION_SCALE_RAD);
    }
    out[6] = clean(2.0 * a.gripper - 1.0);
    let closed = a.gripper >= 0.5;
    for (i, v) in out.iter_mut().enumerate() {
        if !parts.reads(i, closed) {
            *v = 0.0;
        }
    }
    out
}

/// Previous-action dropout (training augmentation): in `state` (`b` rows
/// of equal width, the previous action in each row's last
/// [`PREV_ACTION_DIM`] values) each row's previous action is zeroed — read
/// as "no previous action", like an episode's first step — with
/// probability `p`. Draws nothing when `p` is 0, so the caller's random
/// stream is untouched; draws one number per row otherwise.
pub fn drop_rows(state: &mut [f32], b: usize, p: f32, rng: &mut impl rand::Rng) {
    if p <= 0.0 || b == 0 {
        return;
    }
    let width = state.len() / b;
    if width < PREV_ACTION_DIM {
        return;
    }
    for row in state.chunks_exact_mut(width) {
        if rng.gen::<f32>() < p {
            row[width - PREV_ACTION_DIM..].fill(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_guards() {
        use PrevActionParts::{All, Motion, Vertical, VerticalClosed};
        assert_eq!(features(None, All), [0.0; PREV_ACTION_DIM]);
        let a = Action::new([0.03, -0.015, 0.015], [0.15, 0.0, -0.075], 1.0, false);
        let all = [1.0, -0.5, 0.5, 1.0, 0.0, -0.5, 1.0];
        assert_eq!(features(Some(&a), All), all);
        assert_eq!(
            features(Some(&a), Motion),
            [1.0, -0.5, 0.5, 1.0, 0.0, -0.5, 0.0]
        );
        assert_eq!(
            features(Some(&a), Vertical),
            [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            features(Some(&a), VerticalClosed),
            [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
        );
        let open = Action::new([0.03, -0.015, 0.015], [0.15, 0.0, -0.075], 0.0, false);
        assert_eq!(
            features(Some(&open), VerticalClosed),
            [0.0; PREV_ACTION_DIM]
        );
        assert_eq!(features(Some(&open), Vertical)[2], 0.5);
        let bad = Action::new([f64::NAN, 10.0, 0.0], [0.0; 3], 0.0, false);
        assert_eq!(
            features(Some(&bad), All),
            [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0]
        );
        for p in PrevActionParts::ALL {
            assert_eq!(p.as_str().parse::<PrevActionParts>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        assert!("gripper".parse::<PrevActionParts>().is_err());
    }

    #[test]
    fn dropout_zeroes_whole_previous_actions_only() {
        use rand::{Rng, SeedableRng};
        let (b, width) = (400, 3 + PREV_ACTION_DIM);
        let original: Vec<f32> = (0..b * width).map(|i| 1.0 + i as f32).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut state = original.clone();
        drop_rows(&mut state, b, 0.0, &mut rng);
        assert_eq!(state, original);
        // p = 0 drew nothing.
        let mut fresh = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        assert_eq!(rng.gen::<u64>(), fresh.gen::<u64>());
        drop_rows(&mut state, b, 0.5, &mut rng);
        let mut dropped = 0;
        for (row, orig) in state.chunks_exact(width).zip(original.chunks_exact(width)) {
            // The TCP part is never touched; the previous action is all or nothing.
            assert_eq!(row[..3], orig[..3]);
            let tail = &row[3..];
            if tail.iter().all(|v| *v == 0.0) {
                dropped += 1;
            } else {
                assert_eq!(tail, &orig[3..]);
            }
        }
        assert!((140..=260).contains(&dropped), "{dropped} of {b} dropped");
    }
}

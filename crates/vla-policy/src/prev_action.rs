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

use vla_core::Action;

/// Values the previous action adds to the state vector.
pub const PREV_ACTION_DIM: usize = 7;
/// Translation that maps to ±1, metres (the tokenizer's bounds are ±3 cm).
pub const TRANSLATION_SCALE_M: f64 = 0.03;
/// Rotation that maps to ±1, radians (the tokenizer's bounds are ±0.15 rad).
pub const ROTATION_SCALE_RAD: f64 = 0.15;

/// The input values for the previous action, zeros when there is none.
/// Non-finite components read 0 and the rest are clamped to ±2, so a
/// corrupt record cannot blow up the token.
pub fn features(previous: Option<&Action>) -> [f32; PREV_ACTION_DIM] {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_guards() {
        assert_eq!(features(None), [0.0; PREV_ACTION_DIM]);
        let a = Action::new([0.03, -0.015, 0.0], [0.15, 0.0, -0.075], 1.0, false);
        assert_eq!(features(Some(&a)), [1.0, -0.5, 0.0, 1.0, 0.0, -0.5, 1.0]);
        let bad = Action::new([f64::NAN, 10.0, 0.0], [0.0; 3], 0.0, false);
        assert_eq!(features(Some(&bad)), [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
    }
}

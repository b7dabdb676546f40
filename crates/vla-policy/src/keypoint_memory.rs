//! Keypoint memory: an inference-time filter that remembers where the
//! target object's keypoint was while the hand was away from it.
//!
//! Why: the spatial-softmax keypoints are re-estimated on every frame, and
//! on the policy's own frames a keypoint drifts toward the hand when the
//! hand comes near (policies/default/README.md, session 15: "it follows
//! the hand"). For the target object of `stack`, `put_in` and
//! `move_next_to` that is the moment precision matters: the held object
//! hides the target's top just when the policy aligns the two, and the
//! relation token's "target − hand" offset shrinks toward zero with the
//! drift. The target does not move while the hand is away, so the estimate
//! from those frames stays valid: this filter averages the keypoint over
//! the episode's frames where it is at least `min_hand_dist` (keypoint map
//! units, the map spans [−1, 1]) from the hand's keypoint, and feeds that
//! average to the keypoint and relation tokens on every frame instead of
//! the current estimate. Until such a frame has been seen the current
//! estimate passes through unchanged. A tracking filter over a detector's
//! output, the network is untouched; `config.json` `keypoint_memory`
//! turns it on, `Policy::reset` (a new instruction) forgets.
//!
//! With `max_dev` set the filter is a gate instead (session 43): each
//! frame's own estimate passes unless it lies more than `max_dev` from the
//! memory, and only frames within the gate update the memory. The
//! per-frame estimate is the more precise one (session 31: replacing it
//! by the mean lost stacks); the gate only catches the frames where the
//! keypoint jumped onto something else, which `keypoint_probe` counts
//! (session 42: 10 % of the target's frames once the hand is over it,
//! 2 % before).

use serde::{Deserialize, Serialize};

/// `config.json` → `keypoint_memory`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KeypointMemorySpec {
    /// The remembered keypoint (1: the target object).
    pub keypoint: usize,
    /// The hand's keypoint (2: the TCP).
    pub hand_keypoint: usize,
    /// Frames where the remembered keypoint is nearer the hand's than this
    /// (keypoint map units: 1.0 is half the image) do not update the memory.
    pub min_hand_dist: f32,
    /// The gate (map units): a frame's estimate farther than this from
    /// the memory is replaced by the memory, a nearer one passes unchanged
    /// and updates it. Absent: the memory replaces every frame's estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dev: Option<f32>,
}

impl KeypointMemorySpec {
    /// Checks the spec against a model with `keypoints` keypoints.
    pub fn validate(&self, keypoints: usize) -> std::result::Result<(), String> {
        if self.keypoint >= keypoints || self.hand_keypoint >= keypoints {
            return Err(format!(
                "keypoint_memory names keypoints {} and {}, the model has {keypoints}",
                self.keypoint, self.hand_keypoint
            ));
        }
        if self.keypoint == self.hand_keypoint {
            return Err("keypoint_memory: the remembered keypoint is the hand's".into());
        }
        if !(self.min_hand_dist.is_finite() && self.min_hand_dist >= 0.0) {
            return Err(format!(
                "keypoint_memory: min_hand_dist {} must be finite and ≥ 0",
                self.min_hand_dist
            ));
        }
        if let Some(d) = self.max_dev {
            if !(d.is_finite() && d > 0.0) {
                return Err(format!(
                    "keypoint_memory: max_dev {d} must be finite and > 0"
                ));
            }
        }
        Ok(())
    }
}

/// The filter's state over one episode.
#[derive(Debug, Clone)]
pub struct KeypointMemory {
    spec: KeypointMemorySpec,
    sum: [f64; 2],
    frames: usize,
}

impl KeypointMemory {
    /// An empty memory.
    pub fn new(spec: KeypointMemorySpec) -> Self {
        Self {
            spec,
            sum: [0.0; 2],
            frames: 0,
        }
    }

    /// Forgets the episode (a new instruction).
    pub fn reset(&mut self) {
        self.sum = [0.0; 2];
        self.frames = 0;
    }

    /// Frames that have updated the memory since the last reset.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Feeds one frame's keypoints (`xy[k] = (x, y)`, map units) and
    /// replaces the remembered keypoint with the memory's estimate.
    /// Non-finite positions neither update nor replace anything.
    pub fn apply(&mut self, xy: &mut [[f32; 2]]) {
        let (k, h) = (self.spec.keypoint, self.spec.hand_keypoint);
        let (Some(&p), Some(&hand)) = (xy.get(k), xy.get(h)) else {
            return;
        };
        if !(p.iter().chain(&hand).all(|v| v.is_finite())) {
            return;
        }
        let dist = (p[0] - hand[0]).hypot(p[1] - hand[1]);
        let mean = (self.frames > 0).then(|| {
            let n = self.frames as f64;
            [(self.sum[0] / n) as f32, (self.sum[1] / n) as f32]
        });
        let within = match (self.spec.max_dev, mean) {
            (Some(max_dev), Some(m)) => (p[0] - m[0]).hypot(p[1] - m[1]) <= max_dev,
            _ => true,
        };
        if dist >= self.spec.min_hand_dist && within {
            self.sum[0] += f64::from(p[0]);
            self.sum[1] += f64::from(p[1]);
            self.frames += 1;
        }
        match (self.spec.max_dev, mean) {
            // Gate: the frame's own estimate unless it jumped away.
            (Some(_), Some(m)) if !within => xy[k] = m,
            (Some(_), _) => {}
            // Memory: the mean of the remembered frames, this one included.
            (None, _) if self.frames > 0 => {
                let n = self.frames as f64;
                xy[k] = [(self.sum[0] / n) as f32, (self.sum[1] / n) as f32];
            }
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min_hand_dist: f32) -> KeypointMemorySpec {
        KeypointMemorySpec {
            keypoint: 1,
            hand_keypoint: 2,
            min_hand_dist,
            max_dev: None,
        }
    }

    #[test]
    fn the_gate_passes_near_estimates_and_replaces_jumps() {
        let mut m = KeypointMemory::new(KeypointMemorySpec {
            max_dev: Some(0.1),
            ..spec(0.2)
        });
        let mut a = [[0.0, 0.0], [0.5, 0.5], [-0.5, -0.5]];
        m.apply(&mut a);
        assert_eq!(a[1], [0.5, 0.5], "the first estimate passes");
        let mut b = [[0.0, 0.0], [0.54, 0.5], [-0.5, -0.5]];
        m.apply(&mut b);
        assert_eq!(
            b[1],
            [0.54, 0.5],
            "within the gate: the frame's own estimate"
        );
        assert_eq!(m.frames(), 2);
        // Jumped onto the hand: replaced by the memory, which it does not update.
        let mut c = [[0.0, 0.0], [0.1, 0.1], [0.1, 0.1]];
        m.apply(&mut c);
        assert!((c[1][0] - 0.52).abs() < 1e-6 && (c[1][1] - 0.5).abs() < 1e-6);
        assert_eq!(m.frames(), 2);
        // Near the hand but within the gate: passes, does not update.
        let mut d = [[0.0, 0.0], [0.5, 0.45], [0.45, 0.4]];
        m.apply(&mut d);
        assert_eq!(d[1], [0.5, 0.45]);
        assert_eq!(m.frames(), 2);
    }

    #[test]
    fn averages_far_frames_and_holds_them_while_the_hand_is_near() {
        let mut m = KeypointMemory::new(spec(0.2));
        let mut a = [[0.0, 0.0], [0.5, 0.5], [-0.5, -0.5]];
        m.apply(&mut a);
        assert_eq!(a[1], [0.5, 0.5]);
        let mut b = [[0.0, 0.0], [0.3, 0.5], [-0.5, -0.5]];
        m.apply(&mut b);
        assert_eq!(b[1], [0.4, 0.5], "mean of the two far frames");
        // The hand next to the keypoint, which drifted onto it: the memory holds.
        let mut c = [[0.0, 0.0], [0.05, 0.05], [0.0, 0.0]];
        m.apply(&mut c);
        assert_eq!(c[1], [0.4, 0.5]);
        assert_eq!(m.frames(), 2);
        assert_eq!(c[0], [0.0, 0.0], "other keypoints pass through");
        m.reset();
        let mut d = [[0.0, 0.0], [0.05, 0.05], [0.0, 0.0]];
        m.apply(&mut d);
        assert_eq!(
            d[1],
            [0.05, 0.05],
            "nothing remembered: the estimate passes"
        );
    }

    #[test]
    fn non_finite_positions_change_nothing() {
        let mut m = KeypointMemory::new(spec(0.0));
        let mut a = [[0.0, 0.0], [0.5, 0.5], [-0.5, -0.5]];
        m.apply(&mut a);
        let mut b = [[0.0, 0.0], [f32::NAN, 0.5], [-0.5, -0.5]];
        m.apply(&mut b);
        assert!(b[1][0].is_nan());
        assert_eq!(m.frames(), 1);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(spec(0.2).validate(16).is_ok());
        assert!(spec(0.2).validate(2).unwrap_err().contains("model has 2"));
        assert!(spec(f32::NAN).validate(16).is_err());
        let gate = |d| KeypointMemorySpec {
            max_dev: Some(d),
            ..spec(0.2)
        };
        assert!(gate(0.1).validate(16).is_ok());
        assert!(gate(0.0).validate(16).unwrap_err().contains("max_dev"));
        assert!(gate(f32::INFINITY).validate(16).is_err());
        let same = KeypointMemorySpec {
            hand_keypoint: 1,
            ..spec(0.2)
        };
        assert!(same.validate(16).is_err());
    }
}

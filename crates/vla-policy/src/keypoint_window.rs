//! Keypoint window: an inference-time local soft-argmax for the camera
//! keypoints (`config.json` → `keypoint_window`).
//!
//! Why: a spatial-softmax keypoint is the softmax-weighted mean of the cell
//! centres over the whole map. When the map has two modes — two objects of
//! the named colour, or the target half hidden by the hand while another
//! object of its colour is in view — that mean lands between them, on
//! neither (session 44's `keypoint_probe`). With a window, each listed
//! keypoint's mean is taken over the cells within `cells` cells (Chebyshev
//! distance) of its most likely cell only: the stronger mode's position. A
//! map with one mode is hardly changed. Training always uses the whole map;
//! the network is untouched.

use serde::{Deserialize, Serialize};

/// `config.json` → `keypoint_window`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeypointWindow {
    /// Half-width of the window in keypoint-map cells (1: 3 × 3 cells).
    pub cells: usize,
    /// The keypoints it applies to (0: the goal object, 1: the target);
    /// the others keep the whole-map mean.
    pub keypoints: Vec<usize>,
}

impl KeypointWindow {
    /// Checks the window against a model with `keypoints` keypoints on a
    /// `side × side` map.
    pub fn validate(&self, keypoints: usize, side: usize) -> std::result::Result<(), String> {
        if self.cells == 0 || self.cells >= side {
            return Err(format!(
                "keypoint_window: cells {} must be at least 1 and below the keypoint map's side \
                 ({side})",
                self.cells
            ));
        }
        if self.keypoints.is_empty() {
            return Err("keypoint_window: keypoints is empty".into());
        }
        if let Some(k) = self.keypoints.iter().find(|&&k| k >= keypoints) {
            return Err(format!(
                "keypoint_window names keypoint {k}, the model has {keypoints}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_what_is_wrong() {
        let ok = KeypointWindow {
            cells: 2,
            keypoints: vec![0],
        };
        assert!(ok.validate(3, 32).is_ok());
        let zero = KeypointWindow {
            cells: 0,
            ..ok.clone()
        };
        assert!(zero.validate(3, 32).unwrap_err().contains("cells 0"));
        let wide = KeypointWindow {
            cells: 32,
            ..ok.clone()
        };
        assert!(wide.validate(3, 32).unwrap_err().contains("side (32)"));
        let missing = KeypointWindow {
            keypoints: vec![0, 5],
            ..ok.clone()
        };
        assert!(missing.validate(3, 32).unwrap_err().contains("keypoint 5"));
        let empty = KeypointWindow {
            keypoints: vec![],
            ..ok
        };
        assert!(empty.validate(3, 32).unwrap_err().contains("empty"));
    }
}

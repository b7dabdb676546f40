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
//! map with one mode is hardly changed. Training uses the whole map unless
//! told to read the windowed keypoints too (`vla train
//! --keypoint-window-in-training`, `TrainOptions::keypoint_window_in_training`;
//! the shipped policy's last round was, session 44).

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

/// `CELLS:K[,K…]`, e.g. `2:0` (a 5 × 5-cell window on the goal keypoint),
/// as `vla train --keypoint-window` and `vla eval --keypoint-window` take it.
impl std::str::FromStr for KeypointWindow {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || format!("keypoint window {s:?}: expected CELLS:K[,K...], e.g. 2:0");
        let (cells, keypoints) = s.split_once(':').ok_or_else(bad)?;
        let cells = cells.trim().parse().map_err(|_| bad())?;
        let keypoints = keypoints
            .split(',')
            .map(|k| k.trim().parse().map_err(|_| bad()))
            .collect::<std::result::Result<Vec<usize>, String>>()?;
        Ok(Self { cells, keypoints })
    }
}

impl std::fmt::Display for KeypointWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keypoints: Vec<String> = self.keypoints.iter().map(ToString::to_string).collect();
        write!(f, "{}:{}", self.cells, keypoints.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_form_round_trips_and_bad_forms_are_refused() {
        let w: KeypointWindow = "2:0,1".parse().unwrap();
        assert_eq!(
            w,
            KeypointWindow {
                cells: 2,
                keypoints: vec![0, 1]
            }
        );
        assert_eq!(w.to_string(), "2:0,1");
        for bad in ["2", "x:0", "2:", "2:a", ""] {
            let err = bad.parse::<KeypointWindow>().unwrap_err();
            assert!(err.contains("CELLS:K"), "{bad}: {err}");
        }
    }

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

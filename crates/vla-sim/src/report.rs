//! Success statistics over many episodes: overall and per task family.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::episode::EpisodeOutcome;

/// Successes out of episodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes whose goal was met.
    pub successes: usize,
    /// `successes / episodes` (0 when there were none).
    pub success_rate: f64,
}

impl Tally {
    fn add(&mut self, success: bool) {
        self.episodes += 1;
        self.successes += usize::from(success);
        self.success_rate = self.successes as f64 / self.episodes as f64;
    }
}

/// Overall and per-family success.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuccessReport {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes whose goal was met.
    pub successes: usize,
    /// `successes / episodes`.
    pub success_rate: f64,
    /// Per task family (snake_case names).
    pub per_family: BTreeMap<String, Tally>,
    /// Mean policy steps per episode.
    pub mean_steps: f64,
}

impl SuccessReport {
    /// Tallies outcomes.
    pub fn from_outcomes<'a>(outcomes: impl IntoIterator<Item = &'a EpisodeOutcome>) -> Self {
        let mut total = Tally::default();
        let mut per_family: BTreeMap<String, Tally> = BTreeMap::new();
        let mut steps = 0usize;
        for o in outcomes {
            total.add(o.success);
            steps += o.steps;
            per_family
                .entry(o.task.goal.family().as_str().to_string())
                .or_default()
                .add(o.success);
        }
        Self {
            episodes: total.episodes,
            successes: total.successes,
            success_rate: total.success_rate,
            per_family,
            mean_steps: if total.episodes > 0 {
                steps as f64 / total.episodes as f64
            } else {
                0.0
            },
        }
    }
}

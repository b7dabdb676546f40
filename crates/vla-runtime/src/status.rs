//! What the loop reports after every tick: its state, the task, the step,
//! the controller's status, the last error, the last tokens. Serialised as
//! JSON on the `/vla/status` topic.

use serde::Serialize;
use vla_kinematics::StepStatus;

/// What the loop is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// No valid joint state yet: nothing is commanded.
    WaitingForJointState,
    /// No task yet: nothing is commanded.
    Idle,
    /// Policy steps are moving the arm.
    Running,
    /// Holding still; `hold_reason` says why (stale input, no task, policy error).
    Holding,
    /// Holding still after a stop request, until the next task.
    Stopped,
    /// Holding still: the policy said the task is done.
    Done,
}

/// The loop's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// What the loop is doing.
    pub state: RunState,
    /// Why it holds, when holding.
    pub hold_reason: Option<String>,
    /// The current task.
    pub task: Option<String>,
    /// Policy steps taken for the current task.
    pub step: u64,
    /// The kinematics layer's status of the last policy step.
    pub controller_status: Option<StepStatus>,
    /// The last rejected input or failure, with its reason.
    pub last_error: Option<String>,
    /// Inputs rejected since the start.
    pub rejected_inputs: u64,
    /// The 8 tokens of the last policy step.
    pub last_tokens: Option<[u32; 8]>,
    /// Wall time the policy took to take the current task (text encoding), seconds.
    pub policy_reset_secs: Option<f64>,
    /// Wall time of the last policy step, seconds.
    pub policy_step_secs: Option<f64>,
}

impl Status {
    /// A status before any input.
    pub fn initial() -> Self {
        Self {
            state: RunState::WaitingForJointState,
            hold_reason: None,
            task: None,
            step: 0,
            controller_status: None,
            last_error: None,
            rejected_inputs: 0,
            last_tokens: None,
            policy_reset_secs: None,
            policy_step_secs: None,
        }
    }

    /// The status as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data to a string cannot fail; keep a fallback anyway.
        serde_json::to_string(self)
            .unwrap_or_else(|e| format!("{{\"error\":\"status not serialisable: {e}\"}}"))
    }
}

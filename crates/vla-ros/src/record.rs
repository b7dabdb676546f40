//! Rerun recording of `vla run` (`--rrd FILE`, `--spawn`, `--connect ADDR`):
//! per policy step, the camera frame the policy saw (and its wrist-camera
//! frame, for policies that read one), the instruction, the 8
//! action tokens and the action they decode to, the chain's joints measured
//! vs commanded with their limits, and the controller status; plus a status
//! line whenever the loop's state (running, holding and why, stopped, done)
//! changes between steps.
//!
//! The tokio loop only copies a small snapshot (the policy-sized frame, a
//! few vectors) and hands it to a [`VizWorker`] without blocking; the rerun
//! calls run on the worker's logging thread. When that thread falls more
//! than [`QUEUE_CAPACITY_BYTES`] behind, steps are dropped and counted.
//!
//! Timelines: `step` counts policy steps since the node started (it keeps
//! increasing across tasks, unlike the status's per-task `step`), `sim_time`
//! holds the node's clock (seconds since start).

use vla_core::tokenizer::ActionTokenizer;
use vla_core::{Action, ActionTokens, RgbFrame};
use vla_kinematics::StepStatus;
use vla_runtime::{RunState, Runtime, Status};
use vla_viz::{StatusLevel, Viz, VizError, VizSink, VizWorker, WorkerReport};

use crate::RosError;

/// Bytes of snapshots that may wait for the logging thread before new ones
/// are dropped (a snapshot is some 50 kB with a 128×128 frame: about 1300 steps).
pub const QUEUE_CAPACITY_BYTES: usize = 64 << 20;

/// What the logging thread receives.
enum Message {
    /// Once: the chain's joint names, for the plot legends.
    Start { joint_names: Vec<String> },
    /// A policy step.
    Step(Box<StepSnapshot>),
    /// The loop's state changed between policy steps.
    State {
        step: i64,
        time_secs: f64,
        line: String,
        level: StatusLevel,
    },
}

struct StepSnapshot {
    step: i64,
    time_secs: f64,
    task: Option<String>,
    frame: Option<RgbFrame>,
    wrist: Option<RgbFrame>,
    tokens: ActionTokens,
    action: Option<Action>,
    /// Measured, commanded, lower and upper limit, per chain joint.
    joints: Option<[Vec<f64>; 4]>,
    status_line: String,
    level: StatusLevel,
}

impl StepSnapshot {
    fn approx_size_bytes(&self) -> usize {
        let frame = [&self.frame, &self.wrist]
            .iter()
            .map(|f| f.as_ref().map_or(0, |f| f.data().len()))
            .sum::<usize>();
        let joints = self
            .joints
            .as_ref()
            .map_or(0, |j| j.iter().map(|v| 8 * v.len()).sum());
        std::mem::size_of::<Self>() + frame + joints + self.status_line.len()
    }
}

/// The logging thread's state: the last instruction logged.
#[derive(Default)]
struct LoggingThread {
    instruction: Option<String>,
}

impl LoggingThread {
    fn handle(&mut self, viz: &mut Viz, msg: Message) -> Result<(), VizError> {
        match msg {
            Message::Start { joint_names } => viz.log_series_names(&joint_names),
            Message::State {
                step,
                time_secs,
                line,
                level,
            } => {
                viz.set_time(step, time_secs);
                viz.log_status(&line, level, f64::NAN)
            }
            Message::Step(s) => {
                viz.set_time(s.step, s.time_secs);
                let task = s.task.unwrap_or_default();
                if self.instruction.as_deref() != Some(task.as_str()) {
                    viz.log_instruction(&task)?;
                    self.instruction = Some(task);
                }
                if let Some(frame) = &s.frame {
                    viz.log_camera_images(frame, None)?;
                }
                if let Some(wrist) = &s.wrist {
                    viz.log_wrist_image(wrist)?;
                }
                if let Some(action) = &s.action {
                    viz.log_action(&s.tokens, action)?;
                }
                if let Some([measured, commanded, lower, upper]) = &s.joints {
                    viz.log_joints(measured, commanded, lower, upper)?;
                }
                viz.log_status(&s.status_line, s.level, f64::NAN)
            }
        }
    }
}

/// Records the controller's policy steps to rerun.
pub struct ControllerRecorder {
    worker: VizWorker<Message>,
    tokenizer: ActionTokenizer,
    steps: i64,
    last_state: Option<(RunState, Option<String>)>,
}

fn level_of(status: &Status) -> StatusLevel {
    match (&status.state, &status.controller_status) {
        (RunState::Running, None | Some(StepStatus::Ok)) => StatusLevel::Info,
        (RunState::Running, Some(s)) if !s.is_hold() => StatusLevel::Warn,
        (RunState::Running, Some(_)) => StatusLevel::Error,
        (RunState::Done | RunState::Idle, _) => StatusLevel::Info,
        _ => StatusLevel::Warn,
    }
}

fn state_line(status: &Status) -> String {
    let state = serde_json::to_string(&status.state).unwrap_or_default();
    let state = state.trim_matches('"');
    match &status.hold_reason {
        Some(reason) => format!("{state}: {reason}"),
        None => state.to_string(),
    }
}

impl ControllerRecorder {
    /// A recorder writing to `sink`, or `None` for [`VizSink::None`].
    /// `tokenizer` decodes the tokens as the policy does.
    pub fn new(
        sink: &VizSink,
        tokenizer: ActionTokenizer,
        joint_names: &[String],
    ) -> Result<Option<Self>, RosError> {
        if *sink == VizSink::None {
            return Ok(None);
        }
        let viz = Viz::new("vla run", sink)?;
        let mut thread = LoggingThread::default();
        let mut worker = VizWorker::spawn(viz, QUEUE_CAPACITY_BYTES, move |viz, msg| {
            thread.handle(viz, msg)
        })?;
        worker.send(Message::Start {
            joint_names: joint_names.to_vec(),
        });
        Ok(Some(Self {
            worker,
            tokenizer,
            steps: 0,
            last_state: None,
        }))
    }

    /// Called after every tick at `now_secs`: queues a snapshot when the tick
    /// took a policy step (`tokens`), a status line when the state changed.
    /// `commanded_rad` is the command sent (chain joints first). Never blocks.
    pub fn after_tick(
        &mut self,
        runtime: &Runtime,
        tokens: Option<&ActionTokens>,
        commanded_rad: Option<&[f64]>,
        now_secs: f64,
    ) {
        let status = runtime.status();
        let state = (status.state, status.hold_reason.clone());
        let changed = self.last_state.as_ref() != Some(&state);
        self.last_state = Some(state);
        let Some(tokens) = tokens else {
            if changed {
                self.worker.send(Message::State {
                    step: self.steps,
                    time_secs: now_secs,
                    line: state_line(status),
                    level: level_of(status),
                });
            }
            return;
        };
        self.steps += 1;
        let dof = runtime.arm().chain.dof();
        let limits = runtime.arm().chain.limits();
        let joints = match (runtime.measured_rad(), commanded_rad) {
            (Some(measured), Some(commanded)) if commanded.len() >= dof => Some([
                measured.to_vec(),
                commanded[..dof].to_vec(),
                limits.iter().map(|l| l.lower_rad).collect(),
                limits.iter().map(|l| l.upper_rad).collect(),
            ]),
            _ => None,
        };
        let controller = status
            .controller_status
            .as_ref()
            .map_or_else(|| "-".to_string(), ToString::to_string);
        let snapshot = StepSnapshot {
            step: self.steps,
            time_secs: now_secs,
            task: status.task.clone(),
            frame: runtime.policy_frame().cloned(),
            wrist: runtime.policy_wrist_frame().cloned(),
            tokens: *tokens,
            // The tokens came from the policy, so they decode; if not, the
            // step is logged without the decoded action.
            action: self.tokenizer.detokenize(tokens).ok(),
            joints,
            status_line: format!(
                "{} (step {} of the task, controller: {controller})",
                state_line(status),
                status.step
            ),
            level: level_of(status),
        };
        let size = snapshot.approx_size_bytes();
        // A full queue drops the step; the worker counts it.
        self.worker
            .try_send_step(Message::Step(Box::new(snapshot)), size);
    }

    /// Waits for the logging thread to log what is queued and flush; the
    /// first logging error is returned instead.
    pub fn finish(self) -> Result<WorkerReport, RosError> {
        Ok(self.worker.finish()?)
    }
}

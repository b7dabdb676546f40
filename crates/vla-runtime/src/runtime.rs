//! [`Runtime`]: the loop itself. Inputs arrive through `on_*` calls, each
//! stamped with the caller's clock; [`Runtime::tick`], called at the
//! command rate, decides between holding and moving and answers the joint
//! command (see the crate docs for the rules).

use std::time::Instant;

use vla_core::{ActionTokens, Instruction, JointCommand, JointState, Policy, RgbFrame};
use vla_kinematics::{Controller, Interpolator};

use crate::config::{ArmSetup, RuntimeConfig};
use crate::input::{chain_positions, frame_from_image, parse_task, ImageIn};
use crate::status::{RunState, Status};
use crate::RuntimeError;

/// What one tick answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TickOutput {
    /// The joint command to send now (`None`: send nothing).
    pub command: Option<JointCommand>,
    /// The tokens of the policy step taken in this tick, if one was.
    pub tokens: Option<ActionTokens>,
}

/// The latest valid joint state: the message, the chain's positions, its arrival time.
#[derive(Debug, Clone)]
struct Measured {
    state: JointState,
    chain_rad: Vec<f64>,
    received_secs: f64,
}

/// Motion in progress: the interpolated command and the policy schedule.
#[derive(Debug, Clone)]
struct Motion {
    interpolator: Interpolator,
    next_policy_secs: f64,
    last_tick_secs: f64,
}

/// The controller loop over one policy and one arm.
pub struct Runtime {
    policy: Box<dyn Policy>,
    controller: Controller,
    arm: ArmSetup,
    config: RuntimeConfig,
    command_names: Vec<String>,
    frame: Option<(RgbFrame, f64)>,
    /// The last wrist-camera frame and its arrival, for policies that read one.
    wrist: Option<(RgbFrame, f64)>,
    measured: Option<Measured>,
    task: Option<Instruction>,
    /// A task was taken once: from then on every tick commands (move or hold).
    started: bool,
    stopped: bool,
    done: bool,
    gripper_value: f64,
    hold_rad: Option<Vec<f64>>,
    motion: Option<Motion>,
    /// After a failed policy step, the next try waits a policy period.
    policy_retry_secs: f64,
    status: Status,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("policy", &self.policy.name())
            .field("status", &self.status)
            .finish()
    }
}

impl Runtime {
    /// A loop driving `arm` with `policy`.
    pub fn new(
        policy: Box<dyn Policy>,
        arm: ArmSetup,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        config.validate()?;
        if config.policy_period_secs > arm.controller.max_dt_secs {
            return Err(RuntimeError::Config(format!(
                "the policy period ({} s) is longer than the controller accepts ({} s)",
                config.policy_period_secs, arm.controller.max_dt_secs
            )));
        }
        let controller = Controller::new(arm.chain.clone(), arm.controller.clone())?;
        let command_names = arm.command_joint_names();
        Ok(Self {
            policy,
            controller,
            arm,
            config,
            command_names,
            frame: None,
            wrist: None,
            measured: None,
            task: None,
            started: false,
            stopped: false,
            done: false,
            gripper_value: 0.0,
            hold_rad: None,
            motion: None,
            policy_retry_secs: f64::NEG_INFINITY,
            status: Status::initial(),
        })
    }

    /// The latest status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Names of the commanded joints (the chain's, then the gripper's).
    pub fn command_joint_names(&self) -> &[String] {
        &self.command_names
    }

    /// The arm.
    pub fn arm(&self) -> &ArmSetup {
        &self.arm
    }

    /// The settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The last accepted camera frame, as given to the policy (resized to
    /// its input size), if one arrived.
    pub fn policy_frame(&self) -> Option<&RgbFrame> {
        self.frame.as_ref().map(|(frame, _)| frame)
    }

    /// The last accepted wrist-camera frame, as given to the policy (resized
    /// to its wrist input size), if the policy reads one and one arrived.
    pub fn policy_wrist_frame(&self) -> Option<&RgbFrame> {
        self.wrist.as_ref().map(|(frame, _)| frame)
    }

    /// Whether the policy reads a wrist camera (and the arm holds until its
    /// frames arrive, [`Self::on_wrist_image`]).
    pub fn wants_wrist(&self) -> bool {
        self.policy.wrist_frame_size_px().is_some()
    }

    /// A wrist-camera image arrived at `now_secs` (policies with a wrist
    /// input; others ignore it). A bad one is rejected (the last good frame
    /// stays, and ages). It is resized to the size the policy was trained at.
    pub fn on_wrist_image(
        &mut self,
        image: &ImageIn<'_>,
        now_secs: f64,
    ) -> Result<(), RuntimeError> {
        let Some(size) = self.policy.wrist_frame_size_px() else {
            return Ok(());
        };
        match frame_from_image(image, None, Some(size)) {
            Ok(frame) => {
                self.wrist = Some((frame, now_secs));
                Ok(())
            }
            Err(e) => Err(self.reject(e)),
        }
    }

    /// The chain's positions in the last accepted joint state, if one arrived.
    pub fn measured_rad(&self) -> Option<&[f64]> {
        self.measured.as_ref().map(|m| m.chain_rad.as_slice())
    }

    fn reject(&mut self, err: RuntimeError) -> RuntimeError {
        self.status.last_error = Some(err.to_string());
        self.status.rejected_inputs += 1;
        err
    }

    /// A camera image arrived at `now_secs`. A bad one is rejected (the last
    /// good frame stays, and ages).
    pub fn on_image(&mut self, image: &ImageIn<'_>, now_secs: f64) -> Result<(), RuntimeError> {
        match frame_from_image(
            image,
            self.config.expected_frame_size_px,
            self.config.policy_image_size_px,
        ) {
            Ok(frame) => {
                self.frame = Some((frame, now_secs));
                Ok(())
            }
            Err(e) => Err(self.reject(e)),
        }
    }

    /// A joint state arrived at `now_secs` (`stamp_secs`: the sender's stamp,
    /// kept for the policy; staleness uses the arrival time). A bad one is
    /// rejected (the last good one stays, and ages).
    pub fn on_joint_state(
        &mut self,
        names: &[String],
        positions_rad: &[f64],
        stamp_secs: f64,
        now_secs: f64,
    ) -> Result<(), RuntimeError> {
        match chain_positions(
            names,
            positions_rad,
            stamp_secs,
            self.arm.chain.joint_names(),
            &self.arm.known_joint_names,
        ) {
            Ok((state, chain_rad)) => {
                self.measured = Some(Measured {
                    state,
                    chain_rad,
                    received_secs: now_secs,
                });
                Ok(())
            }
            Err(e) => Err(self.reject(e)),
        }
    }

    /// A task string arrived: a new task replaces the current one (the
    /// policy is reset), an empty one stops (hold), one over the size limit
    /// is rejected and the current task goes on.
    pub fn on_task(&mut self, text: &str, now_secs: f64) -> Result<(), RuntimeError> {
        let instruction = match parse_task(text) {
            Ok(i) => i,
            Err(e) => return Err(self.reject(e)),
        };
        self.stopped = false;
        self.done = false;
        self.status.step = 0;
        self.status.controller_status = None;
        let Some(instruction) = instruction else {
            self.task = None;
            self.status.task = None;
            return Ok(());
        };
        self.task = None;
        self.status.task = None;
        let started = Instant::now();
        if let Err(e) = self.policy.reset(&instruction) {
            let err = RuntimeError::Policy(e);
            self.status.last_error = Some(err.to_string());
            return Err(err);
        }
        self.status.policy_reset_secs = Some(started.elapsed().as_secs_f64());
        self.status.task = Some(instruction.as_str().to_string());
        self.task = Some(instruction);
        self.policy_retry_secs = f64::NEG_INFINITY;
        self.started = true;
        if let Some(m) = self.motion.as_mut() {
            m.next_policy_secs = now_secs;
        }
        Ok(())
    }

    /// Stop: hold still until the next task.
    pub fn on_stop(&mut self) {
        self.stopped = true;
        self.task = None;
        self.status.task = None;
    }

    /// Holds: the command is fixed at the joints measured when the hold began.
    fn hold(
        &mut self,
        measured_rad: Vec<f64>,
        now_secs: f64,
        state: RunState,
        reason: String,
        tokens: Option<ActionTokens>,
    ) -> TickOutput {
        if self.hold_rad.is_none() {
            self.hold_rad = Some(measured_rad);
            self.motion = None;
            // Resume from the measured joints, not from a stale last command.
            self.controller.reset();
        }
        self.status.state = state;
        self.status.hold_reason = Some(reason);
        let positions = self.hold_rad.clone().unwrap_or_default();
        TickOutput {
            command: Some(self.command(positions, None, now_secs)),
            tokens,
        }
    }

    /// Appends the gripper to arm positions (and velocities, zero if none).
    fn command(
        &self,
        mut positions_rad: Vec<f64>,
        velocities_rad_s: Option<&[f64]>,
        now_secs: f64,
    ) -> JointCommand {
        let mut velocities = velocities_rad_s
            .map(<[f64]>::to_vec)
            .unwrap_or_else(|| vec![0.0; positions_rad.len()]);
        if let Some(g) = &self.arm.gripper {
            positions_rad.extend(g.positions(self.gripper_value));
            velocities.extend(std::iter::repeat_n(0.0, g.joint_names.len()));
        }
        JointCommand {
            names: self.command_names.clone(),
            positions_rad,
            velocities_rad_s: velocities,
            stamp_secs: now_secs,
        }
    }

    /// Why the arm must hold now, if it must.
    fn hold_reason(&self, measured_secs: f64, now_secs: f64) -> Option<(RunState, String)> {
        let timeout = self.config.stale_timeout_secs;
        let ms = |age: f64| (age * 1e3).round();
        if self.stopped {
            return Some((RunState::Stopped, "stop requested".into()));
        }
        if self.done {
            return Some((RunState::Done, "the policy said the task is done".into()));
        }
        if self.task.is_none() {
            return Some((RunState::Holding, "no task".into()));
        }
        let retry_in = self.policy_retry_secs - now_secs;
        if retry_in > 0.5 * self.config.command_period_secs {
            return Some((
                RunState::Holding,
                format!("policy failed, retrying in {} ms", ms(retry_in)),
            ));
        }
        let joint_age = now_secs - measured_secs;
        if joint_age > timeout {
            return Some((
                RunState::Holding,
                format!(
                    "joint state is stale ({} ms old, limit {} ms)",
                    ms(joint_age),
                    ms(timeout)
                ),
            ));
        }
        if self.wants_wrist() {
            match &self.wrist {
                None => return Some((RunState::Holding, "no wrist camera frame yet".into())),
                Some((_, received)) if now_secs - received > timeout => {
                    return Some((
                        RunState::Holding,
                        format!(
                            "wrist camera frame is stale ({} ms old, limit {} ms)",
                            ms(now_secs - received),
                            ms(timeout)
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        match &self.frame {
            None => Some((RunState::Holding, "no camera frame yet".into())),
            Some((_, received)) if now_secs - received > timeout => Some((
                RunState::Holding,
                format!(
                    "camera frame is stale ({} ms old, limit {} ms)",
                    ms(now_secs - received),
                    ms(timeout)
                ),
            )),
            Some(_) => None,
        }
    }

    /// One tick at `now_secs`: the command to send (if any), the tokens of a
    /// policy step taken now (if any). Never panics on any input sequence.
    pub fn tick(&mut self, now_secs: f64) -> TickOutput {
        let nothing = TickOutput {
            command: None,
            tokens: None,
        };
        let Some(measured) = &self.measured else {
            self.status.state = RunState::WaitingForJointState;
            return nothing;
        };
        if !self.started {
            self.status.state = RunState::Idle;
            return nothing;
        }
        let measured_rad = measured.chain_rad.clone();
        if let Some((state, reason)) = self.hold_reason(measured.received_secs, now_secs) {
            return self.hold(measured_rad, now_secs, state, reason, None);
        }
        let mut motion = match self.motion.take() {
            Some(m) => m,
            None => {
                let limits = &self.controller.config().velocity_limits_rad_s;
                match Interpolator::new(&measured_rad, limits) {
                    Ok(interpolator) => Motion {
                        interpolator,
                        next_policy_secs: now_secs.max(self.policy_retry_secs),
                        last_tick_secs: now_secs,
                    },
                    Err(e) => {
                        let reason = format!("cannot start motion: {e}");
                        self.status.last_error = Some(reason.clone());
                        return self.hold(measured_rad, now_secs, RunState::Holding, reason, None);
                    }
                }
            }
        };
        self.hold_rad = None;
        let mut tokens = None;
        // A tick within half a command period of the due time takes the
        // step, so clock jitter and rounding never push it a whole tick late.
        if now_secs + 0.5 * self.config.command_period_secs >= motion.next_policy_secs {
            let period = self.config.policy_period_secs;
            motion.next_policy_secs += period;
            if motion.next_policy_secs <= now_secs {
                motion.next_policy_secs = now_secs + period;
            }
            let (frame, state) = match (&self.frame, &self.measured) {
                (Some((f, _)), Some(m)) => (f, &m.state),
                _ => {
                    self.motion = Some(motion);
                    return nothing;
                }
            };
            let started = Instant::now();
            let wrist = self.wrist.as_ref().map(|(f, _)| f);
            let step = match self.policy.act_with_wrist(frame, wrist, state) {
                Ok(step) => step,
                Err(e) => {
                    self.policy_retry_secs = now_secs + period;
                    let reason = format!("policy failed: {e}");
                    self.status.last_error = Some(reason.clone());
                    return self.hold(measured_rad, now_secs, RunState::Holding, reason, None);
                }
            };
            self.status.policy_step_secs = Some(started.elapsed().as_secs_f64());
            self.status.step += 1;
            self.status.last_tokens = Some(step.tokens.0);
            tokens = Some(step.tokens);
            if step.action.terminate {
                self.done = true;
                return self.hold(
                    measured_rad,
                    now_secs,
                    RunState::Done,
                    "the policy said the task is done".into(),
                    tokens,
                );
            }
            let result = self.controller.step(&measured_rad, &step.action, period);
            self.status.controller_status = Some(result.status.clone());
            self.gripper_value = step.action.gripper;
            if result.command.len() == measured_rad.len() {
                if let Err(e) = motion.interpolator.set_target(&result.command, period) {
                    let reason = format!("bad controller target: {e}");
                    self.status.last_error = Some(reason.clone());
                    return self.hold(measured_rad, now_secs, RunState::Holding, reason, tokens);
                }
            }
        }
        let dt_secs = (now_secs - motion.last_tick_secs).max(0.0);
        motion.last_tick_secs = now_secs;
        let positions = match motion.interpolator.step(dt_secs) {
            Ok(p) => p.to_vec(),
            Err(e) => {
                let reason = format!("interpolation failed: {e}");
                self.status.last_error = Some(reason.clone());
                return self.hold(measured_rad, now_secs, RunState::Holding, reason, tokens);
            }
        };
        let velocities = motion.interpolator.velocities().to_vec();
        self.motion = Some(motion);
        self.status.state = RunState::Running;
        self.status.hold_reason = None;
        TickOutput {
            command: Some(self.command(positions, Some(&velocities), now_secs)),
            tokens,
        }
    }
}

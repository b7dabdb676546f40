//! `vla run`: the controller node. It only moves messages: every decision
//! (hold, move, reject) is `vla_runtime::Runtime`'s. Messages are handled as
//! they arrive; ticks run at the command rate, and right after a task or a
//! stop so that both take effect without waiting for the next tick.
//!
//! Topics (defaults in [`crate::topics`], each renamable by a parameter):
//! camera `sensor_msgs/Image` (sensor-data QoS), `/joint_states`
//! (sensor-data QoS, which also matches reliable publishers), `/vla/task`
//! `std_msgs/String`, `/vla/stop` `std_msgs/Empty` (or `std_msgs/Bool` with
//! `stop_type:=bool`, stopping on `true`) in; the joint command,
//! `/vla/status` (`std_msgs/String`, one JSON object: [`vla_runtime::Status`])
//! and `/vla/action_tokens` (`std_msgs/Int32MultiArray`, 8 ids per step) out.
//!
//! Given a [`VizSink`] other than none, every policy step is also recorded
//! to rerun, off the loop, by [`crate::record::ControllerRecorder`].

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use r2r::sensor_msgs::msg::{Image, JointState};
use r2r::std_msgs::msg::{Bool, Empty, Float64MultiArray, Int32MultiArray, String as StringMsg};
use r2r::trajectory_msgs::msg::JointTrajectory;
use r2r::{Publisher, QosProfile};
use vla_kinematics::WorkspaceBox;
use vla_policy::VlaPolicy;
use vla_runtime::config::SafetyLimits;
use vla_runtime::{ArmSetup, Runtime, RuntimeConfig};
use vla_viz::VizSink;

use crate::convert;
use crate::params::Params;
use crate::record::ControllerRecorder;
use crate::topics::{self, CommandInterface};
use crate::RosError;

/// Every parameter of `vla run`, with its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSettings {
    /// `policy`: directory written by `vla train`.
    pub policy_dir: PathBuf,
    /// `decoding`: `greedy` or `median` overrides the policy's
    /// `config.json`; empty (the default) keeps it.
    pub decoding: Option<vla_policy::Decoding>,
    /// `urdf`: URDF file, used when `robot_description` is empty.
    pub urdf_path: PathBuf,
    /// `robot_description`: the URDF text itself (as robot_state_publisher takes it).
    pub robot_description: String,
    /// `base_link`, `tip_link`: the chain the policy moves.
    pub base_link: String,
    /// See `base_link`.
    pub tip_link: String,
    /// `joint_names`: the chain's joints as expected (empty: from the URDF).
    pub joint_names: Vec<String>,
    /// `gripper_joints`: commanded after the arm (open at the upper limit).
    pub gripper_joints: Vec<String>,
    /// `policy_rate_hz`.
    pub policy_rate_hz: f64,
    /// `command_rate_hz`.
    pub command_rate_hz: f64,
    /// `command_interface`: `joint_trajectory` or `forward_position`.
    pub command_interface: CommandInterface,
    /// `controller`: the ros2_control controller's name.
    pub controller: String,
    /// `command_topic`: overrides the topic derived from `controller`.
    pub command_topic: String,
    /// `camera_topic`.
    pub camera_topic: String,
    /// `wrist_camera_topic`: read only by policies with a wrist camera input.
    pub wrist_topic: String,
    /// `joint_states_topic`.
    pub joint_states_topic: String,
    /// `task_topic`.
    pub task_topic: String,
    /// `stop_topic`.
    pub stop_topic: String,
    /// `stop_type`: `empty` or `bool`.
    pub stop_bool: bool,
    /// `status_topic`.
    pub status_topic: String,
    /// `action_tokens_topic`.
    pub tokens_topic: String,
    /// `stale_timeout_secs`.
    pub stale_timeout_secs: f64,
    /// `velocity_scale`: fraction of the URDF velocity limits.
    pub velocity_scale: f64,
    /// `workspace_min_m`, `workspace_max_m`: tip box in the base frame (empty: none).
    pub workspace: Option<WorkspaceBox>,
    /// `image_width_px`, `image_height_px`: reject other sizes (0: any).
    pub expected_frame_size_px: Option<(u32, u32)>,
}

fn xyz(name: &str, v: &[f64]) -> Result<[f64; 3], RosError> {
    <[f64; 3]>::try_from(v).map_err(|_| RosError::Param {
        name: name.into(),
        message: format!("needs 3 values (x, y, z), got {}", v.len()),
    })
}

impl ControllerSettings {
    /// Reads the parameters, with the defaults documented in crates/vla-ros/README.md.
    pub fn read(p: &Params) -> Result<Self, RosError> {
        let interface_name = p.string("command_interface", "joint_trajectory")?;
        let command_interface =
            CommandInterface::parse(&interface_name).ok_or_else(|| RosError::Param {
                name: "command_interface".into(),
                message: format!("{interface_name:?} is not joint_trajectory or forward_position"),
            })?;
        let stop_type = p.string("stop_type", "empty")?;
        let stop_bool = match stop_type.as_str() {
            "empty" => false,
            "bool" => true,
            other => {
                return Err(RosError::Param {
                    name: "stop_type".into(),
                    message: format!("{other:?} is not empty or bool"),
                })
            }
        };
        let wmin = p.f64s("workspace_min_m", &[])?;
        let wmax = p.f64s("workspace_max_m", &[])?;
        let workspace = match (wmin.is_empty(), wmax.is_empty()) {
            (true, true) => None,
            _ => Some(WorkspaceBox {
                min_m: xyz("workspace_min_m", &wmin)?,
                max_m: xyz("workspace_max_m", &wmax)?,
            }),
        };
        let (w, h) = (p.u32("image_width_px", 0)?, p.u32("image_height_px", 0)?);
        let rate = |name: &str, default: f64| -> Result<f64, RosError> {
            let v = p.f64(name, default)?;
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(RosError::Param {
                    name: name.into(),
                    message: format!("must be positive, got {v}"),
                })
            }
        };
        Ok(Self {
            policy_dir: p.string("policy", "policies/default")?.into(),
            decoding: match p.string("decoding", "")?.as_str() {
                "" => None,
                name => Some(name.parse().map_err(|message| RosError::Param {
                    name: "decoding".into(),
                    message,
                })?),
            },
            urdf_path: p.string("urdf", "urdf/panda.urdf")?.into(),
            robot_description: p.string("robot_description", "")?,
            base_link: p.string("base_link", "panda_link0")?,
            tip_link: p.string("tip_link", "panda_hand_tcp")?,
            joint_names: p.strings("joint_names", &[])?,
            gripper_joints: p.strings("gripper_joints", &["panda_finger_joint1"])?,
            policy_rate_hz: rate("policy_rate_hz", 10.0)?,
            command_rate_hz: rate("command_rate_hz", 100.0)?,
            command_interface,
            controller: p.string("controller", command_interface.default_controller())?,
            command_topic: p.string("command_topic", "")?,
            camera_topic: p.string("camera_topic", topics::CAMERA_IMAGE)?,
            wrist_topic: p.string("wrist_camera_topic", topics::WRIST_IMAGE)?,
            joint_states_topic: p.string("joint_states_topic", topics::JOINT_STATES)?,
            task_topic: p.string("task_topic", topics::TASK)?,
            stop_topic: p.string("stop_topic", topics::STOP)?,
            stop_bool,
            status_topic: p.string("status_topic", topics::STATUS)?,
            tokens_topic: p.string("action_tokens_topic", topics::ACTION_TOKENS)?,
            stale_timeout_secs: rate("stale_timeout_secs", 0.3)?,
            velocity_scale: p.f64("velocity_scale", 1.0)?,
            workspace,
            expected_frame_size_px: (w > 0 && h > 0).then_some((w, h)),
        })
    }

    /// The joint command topic.
    pub fn command_topic(&self) -> String {
        if self.command_topic.is_empty() {
            self.command_interface.topic(&self.controller)
        } else {
            self.command_topic.clone()
        }
    }
}

/// A relative path as given if it exists from the working directory, else
/// relative to `root` (the checkout), so the defaults work from anywhere.
pub fn resolve(path: &Path, root: Option<&Path>) -> PathBuf {
    match root {
        Some(r) if path.is_relative() && !path.exists() => r.join(path),
        _ => path.to_path_buf(),
    }
}

/// Log lines for repeated events at most once per second each.
struct Throttle {
    last: Vec<(String, Instant)>,
}

impl Throttle {
    fn log(&mut self, key: &str, line: &str) {
        let now = Instant::now();
        match self.last.iter_mut().find(|(k, _)| k == key) {
            Some((_, t)) if now.duration_since(*t) < Duration::from_secs(1) => return,
            Some((_, t)) => *t = now,
            None => self.last.push((key.to_string(), now)),
        }
        eprintln!("[{}] {line}", topics::CONTROLLER_NODE);
    }
}

enum CommandPublisher {
    Trajectory(Publisher<JointTrajectory>),
    Forward(Publisher<Float64MultiArray>),
}

/// The node's state between messages.
struct ControllerNode {
    runtime: Runtime,
    command: CommandPublisher,
    status: Publisher<StringMsg>,
    tokens: Publisher<Int32MultiArray>,
    command_period_secs: f64,
    start: Instant,
    last_status: String,
    last_status_at: Instant,
    throttle: Throttle,
    recorder: Option<ControllerRecorder>,
}

impl ControllerNode {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn tick(&mut self) {
        let now = self.now();
        let out = self.runtime.tick(now);
        if let Some(rec) = self.recorder.as_mut() {
            let commanded = out.command.as_ref().map(|c| c.positions_rad.as_slice());
            rec.after_tick(&self.runtime, out.tokens.as_ref(), commanded, now);
        }
        if let Some(cmd) = &out.command {
            let sent = match &self.command {
                CommandPublisher::Trajectory(p) => {
                    p.publish(&convert::trajectory(cmd, self.command_period_secs))
                }
                CommandPublisher::Forward(p) => p.publish(&convert::forward(cmd)),
            };
            if let Err(e) = sent {
                self.throttle
                    .log("publish", &format!("cannot publish the command: {e}"));
            }
        }
        if let Some(tokens) = &out.tokens {
            if let Err(e) = self.tokens.publish(&convert::tokens_msg(tokens)) {
                self.throttle
                    .log("publish", &format!("cannot publish tokens: {e}"));
            }
        }
        let json = self.runtime.status().to_json();
        if json != self.last_status || self.last_status_at.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = self.status.publish(&StringMsg { data: json.clone() }) {
                self.throttle
                    .log("publish", &format!("cannot publish status: {e}"));
            }
            self.last_status = json;
            self.last_status_at = Instant::now();
        }
    }

    fn log_rejection(&mut self, key: &str, result: Result<(), vla_runtime::RuntimeError>) {
        if let Err(e) = result {
            self.throttle.log(key, &e.to_string());
        }
    }
}

type StopStream = Pin<Box<dyn Stream<Item = ()> + Send>>;

/// Runs `vla run` until Ctrl-C. `root`: the checkout, for relative default
/// paths; `viz`: where to record the policy steps to rerun (or nowhere).
pub fn run(root: Option<&Path>, viz: &VizSink) -> Result<(), RosError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, topics::CONTROLLER_NODE, "")?;
    let params = Params::from_node(&node);
    let s = ControllerSettings::read(&params)?;

    let policy_dir = resolve(&s.policy_dir, root);
    let mut policy = VlaPolicy::load(&policy_dir).map_err(|e| RosError::Policy {
        dir: policy_dir.display().to_string(),
        message: e.to_string(),
    })?;
    if let Some(decoding) = s.decoding {
        policy.set_decoding(decoding);
    }
    let side = u32::try_from(policy.config().model.image_size_px).unwrap_or(u32::MAX);
    let tokenizer = policy.config().tokenizer;
    let urdf = if s.robot_description.is_empty() {
        let path = resolve(&s.urdf_path, root);
        std::fs::read_to_string(&path).map_err(|e| RosError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?
    } else {
        s.robot_description.clone()
    };
    let arm = ArmSetup::from_urdf_str(
        &urdf,
        Some(&s.base_link),
        Some(&s.tip_link),
        &s.joint_names,
        &s.gripper_joints,
        SafetyLimits {
            velocity_scale: s.velocity_scale,
            workspace: s.workspace,
        },
    )?;
    let config = RuntimeConfig {
        stale_timeout_secs: s.stale_timeout_secs,
        policy_period_secs: 1.0 / s.policy_rate_hz,
        command_period_secs: 1.0 / s.command_rate_hz,
        policy_image_size_px: Some((side, side)),
        expected_frame_size_px: s.expected_frame_size_px,
    };
    let runtime = Runtime::new(Box::new(policy), arm, config)?;
    let recorder = ControllerRecorder::new(viz, tokenizer, runtime.arm().chain.joint_names())?;

    let command_topic = s.command_topic();
    let command = match s.command_interface {
        CommandInterface::JointTrajectory => CommandPublisher::Trajectory(
            node.create_publisher(&command_topic, QosProfile::default())?,
        ),
        CommandInterface::ForwardPosition => {
            CommandPublisher::Forward(node.create_publisher(&command_topic, QosProfile::default())?)
        }
    };
    let status = node.create_publisher::<StringMsg>(&s.status_topic, QosProfile::default())?;
    let tokens =
        node.create_publisher::<Int32MultiArray>(&s.tokens_topic, QosProfile::default())?;
    let mut images = node.subscribe::<Image>(&s.camera_topic, QosProfile::sensor_data())?;
    let mut wrist_images = node.subscribe::<Image>(&s.wrist_topic, QosProfile::sensor_data())?;
    let mut joints =
        node.subscribe::<JointState>(&s.joint_states_topic, QosProfile::sensor_data())?;
    let mut tasks = node.subscribe::<StringMsg>(&s.task_topic, QosProfile::default())?;
    let mut stops: StopStream = if s.stop_bool {
        Box::pin(
            node.subscribe::<Bool>(&s.stop_topic, QosProfile::default())?
                .filter_map(|b| async move { b.data.then_some(()) }),
        )
    } else {
        Box::pin(
            node.subscribe::<Empty>(&s.stop_topic, QosProfile::default())?
                .map(|_| ()),
        )
    };
    params.write_back(&node);
    let (param_service, _param_events) = node.make_parameter_handler()?;

    eprintln!(
        "[{}] policy {} ({side}x{side} input), chain {} → {} ({} joints{}), commands on {} at {} Hz, policy at {} Hz; waiting for {} and {}",
        topics::CONTROLLER_NODE,
        policy_dir.display(),
        s.base_link,
        s.tip_link,
        runtime.arm().chain.dof(),
        if s.gripper_joints.is_empty() { String::new() } else { format!(" + gripper {}", s.gripper_joints.join(", ")) },
        command_topic,
        s.command_rate_hz,
        s.policy_rate_hz,
        s.joint_states_topic,
        s.camera_topic,
    );

    if runtime.wants_wrist() {
        eprintln!(
            "[{}] the policy reads a wrist camera: waiting for {} too",
            topics::CONTROLLER_NODE,
            s.wrist_topic
        );
    }

    let mut state = ControllerNode {
        runtime,
        command,
        status,
        tokens,
        command_period_secs: 1.0 / s.command_rate_hz,
        start: Instant::now(),
        last_status: String::new(),
        last_status_at: Instant::now(),
        throttle: Throttle { last: Vec::new() },
        recorder,
    };

    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RosError::Ros(format!("cannot start the async runtime: {e}")))?;
    let running = Arc::new(AtomicBool::new(true));
    let node = Arc::new(Mutex::new(node));
    let spinner = {
        let running = running.clone();
        let node = node.clone();
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                match node.lock() {
                    Ok(mut n) => n.spin_once(Duration::from_millis(2)),
                    Err(_) => break,
                }
            }
        })
    };
    executor.block_on(async {
        tokio::spawn(param_service);
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(state.command_period_secs));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let shutdown = tokio::signal::ctrl_c();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(msg) = tasks.next() => {
                    let now = state.now();
                    let r = state.runtime.on_task(&msg.data, now);
                    match &r {
                        Ok(()) => eprintln!("[{}] task: {:?}", topics::CONTROLLER_NODE, msg.data),
                        Err(e) => eprintln!("[{}] {e}", topics::CONTROLLER_NODE),
                    }
                    state.tick();
                }
                Some(()) = stops.next() => {
                    state.runtime.on_stop();
                    eprintln!("[{}] stop", topics::CONTROLLER_NODE);
                    state.tick();
                }
                _ = ticker.tick() => state.tick(),
                Some(msg) = joints.next() => {
                    let now = state.now();
                    let r = state.runtime.on_joint_state(
                        &msg.name,
                        &msg.position,
                        convert::stamp_secs(&msg.header.stamp),
                        now,
                    );
                    state.log_rejection("joint_state", r);
                }
                Some(msg) = images.next() => {
                    let now = state.now();
                    let r = state.runtime.on_image(&convert::image_in(&msg), now);
                    state.log_rejection("image", r);
                }
                Some(msg) = wrist_images.next() => {
                    let now = state.now();
                    let r = state.runtime.on_wrist_image(&convert::image_in(&msg), now);
                    state.log_rejection("wrist image", r);
                }
            }
        }
    });
    running.store(false, Ordering::Relaxed);
    spinner
        .join()
        .map_err(|_| RosError::Ros("the spinning thread panicked".into()))?;
    if let Some(rec) = state.recorder.take() {
        let report = rec.finish()?;
        eprintln!(
            "[{}] rerun: {} policy steps recorded, {} dropped (logging thread busy {:.3} s)",
            topics::CONTROLLER_NODE,
            report.steps_logged,
            report.steps_dropped,
            report.busy.as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use r2r::ParameterValue;

    use super::*;

    fn settings(decoding: Option<&str>) -> Result<ControllerSettings, RosError> {
        let mut given = HashMap::new();
        if let Some(d) = decoding {
            given.insert("decoding".to_string(), ParameterValue::String(d.into()));
        }
        ControllerSettings::read(&Params::from_values(given))
    }

    #[test]
    fn the_decoding_parameter_overrides_the_policy_or_is_refused() {
        assert_eq!(settings(None).unwrap().decoding, None);
        assert_eq!(settings(Some("")).unwrap().decoding, None);
        assert_eq!(
            settings(Some("greedy")).unwrap().decoding,
            Some(vla_policy::Decoding::Greedy)
        );
        let err = settings(Some("beam")).unwrap_err().to_string();
        assert!(err.contains("decoding") && err.contains("beam"), "{err}");
    }
}

//! `vla sim-node`: the simulator as a ROS 2 node (`vla_sim`), standing in
//! for a real arm and its ros2_control drivers. It runs the physics in real
//! time, publishes `/joint_states` every physics step, a camera image
//! (`sensor_msgs/Image`, rgb8, sensor-data QoS) and its `CameraInfo` at the
//! camera rate, and follows joint commands from both a JointTrajectoryController
//! topic (`trajectory_msgs/JointTrajectory`, the last point by name) and a
//! forward position controller topic (`std_msgs/Float64MultiArray`, in the
//! order of the `joints` parameter). Bad commands are logged and ignored.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use r2r::sensor_msgs::msg::{CameraInfo, Image, JointState};
use r2r::std_msgs::msg::{Float64MultiArray, Int32MultiArray, String as StringMsg};
use r2r::trajectory_msgs::msg::JointTrajectory;
use r2r::QosProfile;
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{Action, ActionTokens, TOKENS_PER_STEP};
use vla_render::DomainRandomization;
use vla_sim::episode::task_for_goal;
use vla_sim::language::parse_instruction;
use vla_sim::{CommandedSim, EpisodeStart, StepObserver, StepView, TaskSuite};

use crate::convert;
use crate::params::Params;
use crate::topics::{self, CommandInterface};
use crate::RosError;

/// Every parameter of `vla sim-node`, with its effective value.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSettings {
    /// `suite`: the task suite whose scene is simulated.
    pub suite: String,
    /// `scene_task`: the task whose objects are laid out (the controller's
    /// task comes separately, on `/vla/task`).
    pub scene_task: String,
    /// `seed`: layout seed.
    pub seed: u64,
    /// `distractors`: extra objects.
    pub distractors: usize,
    /// `camera_rate_hz`.
    pub camera_rate_hz: f64,
    /// `trajectory_controller`: listens on `/<name>/joint_trajectory`.
    pub trajectory_controller: String,
    /// `forward_controller`: listens on `/<name>/commands`.
    pub forward_controller: String,
    /// `joints`: order of the forward controller's values (empty: arm + first finger).
    pub forward_joints: Vec<String>,
    /// `camera_topic`, `camera_info_topic`, `joint_states_topic`.
    pub camera_topic: String,
    /// See `camera_topic`.
    pub camera_info_topic: String,
    /// See `camera_topic`.
    pub joint_states_topic: String,
    /// `camera_frame_id`.
    pub camera_frame_id: String,
    /// `wrist_camera_topic`, `wrist_camera_info_topic`: the scene's wrist
    /// camera, published with the scene camera when the scene has one.
    pub wrist_topic: String,
    /// See `wrist_topic`.
    pub wrist_info_topic: String,
    /// `wrist_camera_frame_id`.
    pub wrist_frame_id: String,
}

/// The task whose objects `vla sim-node` lays out by default.
pub const DEFAULT_SCENE_TASK: &str = "put the red cube in the green bowl";

impl SimSettings {
    /// Reads the parameters.
    pub fn read(p: &Params) -> Result<Self, RosError> {
        let camera_rate_hz = p.f64("camera_rate_hz", 10.0)?;
        if !(camera_rate_hz.is_finite() && camera_rate_hz > 0.0) {
            return Err(RosError::Param {
                name: "camera_rate_hz".into(),
                message: format!("must be positive, got {camera_rate_hz}"),
            });
        }
        Ok(Self {
            suite: p.string("suite", "default")?,
            scene_task: p.string("scene_task", DEFAULT_SCENE_TASK)?,
            seed: p.u32("seed", 0)?.into(),
            distractors: p.u32("distractors", 1)? as usize,
            camera_rate_hz,
            trajectory_controller: p
                .string("trajectory_controller", topics::TRAJECTORY_CONTROLLER)?,
            forward_controller: p.string("forward_controller", topics::FORWARD_CONTROLLER)?,
            forward_joints: p.strings("joints", &[])?,
            camera_topic: p.string("camera_topic", topics::CAMERA_IMAGE)?,
            camera_info_topic: p.string("camera_info_topic", topics::CAMERA_INFO)?,
            joint_states_topic: p.string("joint_states_topic", topics::JOINT_STATES)?,
            camera_frame_id: p.string("camera_frame_id", "camera_optical_frame")?,
            wrist_topic: p.string("wrist_camera_topic", topics::WRIST_IMAGE)?,
            wrist_info_topic: p.string("wrist_camera_info_topic", topics::WRIST_INFO)?,
            wrist_frame_id: p.string("wrist_camera_frame_id", "wrist_camera_optical_frame")?,
        })
    }
}

/// Runs `vla sim-node` until Ctrl-C. `root`: the checkout holding `sim/`.
/// `observer` (e.g. a rerun recorder) sees every camera frame with the
/// world, the task and the tokens last heard on `/vla/task` and
/// `/vla/action_tokens` (decoded with the default tokenizer bounds).
pub fn run(root: &Path, mut observer: Option<&mut dyn StepObserver>) -> Result<(), RosError> {
    let ctx = r2r::Context::create()?;
    let mut node = r2r::Node::create(ctx, topics::SIM_NODE, "")?;
    let params = Params::from_node(&node);
    let s = SimSettings::read(&params)?;

    let suite = TaskSuite::load(&s.suite, root)?;
    let goal = parse_instruction(&s.scene_task, &suite.scene)?;
    let task = task_for_goal(goal, &s.scene_task, s.distractors, s.seed);
    let mut sim = CommandedSim::new(&suite.scene, &task, &suite.distractor_pool(None))?;
    let forward_joints = if s.forward_joints.is_empty() {
        let mut j = sim.world().arm().chain().joint_names().to_vec();
        j.extend(suite.scene.robot.finger_joints.first().cloned());
        j
    } else {
        s.forward_joints.clone()
    };

    let image_pub = node.create_publisher::<Image>(&s.camera_topic, QosProfile::sensor_data())?;
    let info_pub =
        node.create_publisher::<CameraInfo>(&s.camera_info_topic, QosProfile::sensor_data())?;
    let wrist_pubs = match &suite.scene.wrist_camera {
        Some(_) => Some((
            node.create_publisher::<Image>(&s.wrist_topic, QosProfile::sensor_data())?,
            node.create_publisher::<CameraInfo>(&s.wrist_info_topic, QosProfile::sensor_data())?,
        )),
        None => None,
    };
    let joints_pub =
        node.create_publisher::<JointState>(&s.joint_states_topic, QosProfile::default())?;
    let trajectory_topic = CommandInterface::JointTrajectory.topic(&s.trajectory_controller);
    let forward_topic = CommandInterface::ForwardPosition.topic(&s.forward_controller);
    let mut trajectories =
        node.subscribe::<JointTrajectory>(&trajectory_topic, QosProfile::default())?;
    let mut forwards =
        node.subscribe::<Float64MultiArray>(&forward_topic, QosProfile::default())?;
    let mut heard_tasks = node.subscribe::<StringMsg>(topics::TASK, QosProfile::default())?;
    let mut heard_tokens =
        node.subscribe::<Int32MultiArray>(topics::ACTION_TOKENS, QosProfile::default())?;
    params.write_back(&node);
    let (param_service, _param_events) = node.make_parameter_handler()?;
    let tokenizer = ActionTokenizer::default();
    let mut shown_task = String::new();
    let mut shown_tokens = tokenizer
        .tokenize(&Action::hold(0.0))
        .map_err(|e| RosError::Ros(e.to_string()))?;

    eprintln!(
        "[{}] {:?} (seed {}), physics {} Hz, camera {} Hz on {}; following {} and {} ({})",
        topics::SIM_NODE,
        s.scene_task,
        s.seed,
        (1.0 / sim.dt_secs()).round(),
        s.camera_rate_hz,
        s.camera_topic,
        trajectory_topic,
        forward_topic,
        forward_joints.join(", ")
    );

    if let Some(obs) = observer.as_deref_mut() {
        // One episode for the node's whole life; the camera renders
        // without randomisation (see `CommandedSim::new`).
        obs.on_episode_start(&EpisodeStart {
            world: sim.world(),
            scene: &suite.scene,
            instruction: &shown_task,
            randomization: DomainRandomization::default(),
            seed: task.layout_seed,
        });
    }

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
    let dt = sim.dt_secs();
    let camera_period = 1.0 / s.camera_rate_hz;
    let result: Result<(), RosError> = executor.block_on(async {
        tokio::spawn(param_service);
        let start = Instant::now();
        let mut steps: u64 = 0;
        let mut frames: usize = 0;
        let mut next_frame_secs = 0.0;
        let mut last_error_log: Option<Instant> = None;
        let mut log_bad = |what: String| {
            if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                eprintln!("[{}] ignored {what}", topics::SIM_NODE);
                last_error_log = Some(Instant::now());
            }
        };
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(dt));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let shutdown = tokio::signal::ctrl_c();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                Some(msg) = trajectories.next() => {
                    let r = convert::from_trajectory(&msg)
                        .and_then(|(n, q)| sim.command(&n, &q).map_err(|e| e.to_string()));
                    if let Err(e) = r {
                        log_bad(format!("joint trajectory: {e}"));
                    }
                }
                Some(msg) = heard_tasks.next() => shown_task = msg.data,
                Some(msg) = heard_tokens.next() => {
                    let ids: Option<Vec<u32>> = msg.data.iter().map(|&t| u32::try_from(t).ok()).collect();
                    if let Some(ids) = ids.and_then(|v| <[u32; TOKENS_PER_STEP]>::try_from(v).ok()) {
                        shown_tokens = ActionTokens(ids);
                    }
                }
                Some(msg) = forwards.next() => {
                    let r = convert::from_forward(&msg, &forward_joints)
                        .and_then(|(n, q)| sim.command(&n, &q).map_err(|e| e.to_string()));
                    if let Err(e) = r {
                        log_bad(format!("forward command: {e}"));
                    }
                }
                _ = ticker.tick() => {
                    // Real time: as many physics steps as the wall clock
                    // asks, at most 5 per tick (slower than real time then).
                    let due = (start.elapsed().as_secs_f64() / dt) as u64;
                    let mut n = 0;
                    while steps < due && n < 5 {
                        sim.step()?;
                        steps += 1;
                        n += 1;
                    }
                    let now_secs = steps as f64 * dt;
                    let stamp = convert::wall_time();
                    let js = sim.joint_state()?;
                    joints_pub.publish(&convert::joint_state_msg(&js, stamp.clone()))?;
                    if now_secs + 1e-9 >= next_frame_secs {
                        next_frame_secs += camera_period;
                        let out = sim.render()?;
                        image_pub.publish(&convert::image_msg(&out.rgb, stamp.clone(), &s.camera_frame_id))?;
                        info_pub.publish(&convert::camera_info(sim.camera(), stamp.clone(), &s.camera_frame_id))?;
                        let wrist = match &wrist_pubs {
                            Some((image, info)) => match sim.render_wrist()? {
                                Some((w, cam)) => {
                                    image.publish(&convert::image_msg(&w.rgb, stamp.clone(), &s.wrist_frame_id))?;
                                    info.publish(&convert::camera_info(&cam, stamp.clone(), &s.wrist_frame_id))?;
                                    Some(w.rgb)
                                }
                                None => None,
                            },
                            None => None,
                        };
                        if let Some(obs) = observer.as_deref_mut() {
                            let action = tokenizer
                                .detokenize(&shown_tokens)
                                .unwrap_or_else(|_| Action::hold(0.0));
                            obs.on_step(&StepView {
                                step: frames,
                                world: sim.world(),
                                instruction: &shown_task,
                                frame: Some(&out.rgb),
                                depth_m: Some(out.depth_m.as_slice()),
                                camera: Some(sim.camera()),
                                wrist_frame: wrist.as_ref(),
                                tokens: shown_tokens,
                                action,
                            });
                        }
                        frames += 1;
                    }
                }
            }
        }
        Ok(())
    });
    running.store(false, Ordering::Relaxed);
    spinner
        .join()
        .map_err(|_| RosError::Ros("the spinning thread panicked".into()))?;
    result
}

//! Glue between the simulator's episode loop and the rerun visualiser:
//! a [`StepObserver`] that records what the policy saw, said and did.
//!
//! The control thread only copies a small snapshot per step (poses, joints,
//! tokens, status, and the camera frame when the loop rendered one) and
//! hands it to a [`VizWorker`] without ever blocking; the rerun calls run on
//! the logging thread. When the driver needs no camera (the scripted
//! expert), the loop renders nothing: the logging thread keeps the scene's
//! shapes (taken once per episode) and the poses of the previous snapshot,
//! and renders the image the camera saw at the start of the step, exactly
//! as the loop would have.
//!
//! The messages and the logging thread's side are in `record/logging.rs`;
//! the conversion from simulator and URDF geometry to `VizShape`s is in
//! `record/shapes.rs`, so that `vla-viz` depends on neither crate.

mod logging;
mod shapes;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use vla_kinematics::StepStatus;
use vla_sim::render::SceneShapes;
use vla_sim::{EpisodeStart, StepObserver, StepView};
use vla_viz::{StatusLevel, Viz, VizError, VizSink, VizWorker};

use logging::{robot_message, EpisodeMessage, LoggingThread, Message, StepImage, StepMessage};
use shapes::{object_name, sim_shape};

use crate::cli::VizArgs;

/// Bytes of step snapshots that may wait for the logging thread before new
/// ones are dropped: a snapshot is about 5 kB when the logging thread
/// renders the frame (some 12 000 steps fit), about 120 kB with a frame and
/// depth image the loop rendered (some 500 steps).
pub const QUEUE_CAPACITY_BYTES: usize = 64 << 20;

/// What logging cost, from [`SimRecorder::finish`].
#[derive(Debug, Clone)]
pub struct RecorderReport {
    /// Control-thread time spent in the observer (taking snapshots and
    /// queueing them): the overhead logging adds to the loop.
    pub control: Duration,
    /// Time the logging thread was busy (rendering frames for the recording
    /// when the loop did not, and the rerun calls).
    pub logging_thread_busy: Duration,
    /// Time spent after the loop waiting for the logging thread to drain.
    pub drain: Duration,
    /// Steps recorded.
    pub steps_logged: u64,
    /// Steps dropped because the logging thread was too far behind.
    pub steps_dropped: u64,
}

/// Tells the user (on stderr) when the recording misses steps.
pub fn warn_dropped(steps_dropped: u64) {
    if steps_dropped > 0 {
        eprintln!(
            "warning: the rerun recording misses {steps_dropped} steps: the logging thread \
             fell more than {} MiB of snapshots behind the loop",
            QUEUE_CAPACITY_BYTES >> 20
        );
    }
}

/// Records simulated episodes with rerun and measures what logging costs.
pub struct SimRecorder {
    worker: VizWorker<Message>,
    robot_logged: bool,
    episode: u64,
    /// Steps and simulated time of the episodes before this one, so the
    /// `step` and `sim_time` timelines keep increasing across episodes.
    step_offset: i64,
    time_offset_secs: f64,
    last_step: i64,
    last_time_secs: f64,
    /// Control-thread time spent in the observer.
    control: Duration,
    error: Option<VizError>,
}

impl SimRecorder {
    /// A recorder for the `--rrd/--spawn/--connect` flags, or `None` when
    /// none is given.
    pub fn from_args(args: &VizArgs, recording_name: &str) -> Result<Option<Self>> {
        let sink = VizSink::from_flags(args.rrd.clone(), args.spawn, args.connect.clone());
        if sink == VizSink::None {
            return Ok(None);
        }
        let viz = Viz::new(recording_name, &sink).context("opening the rerun recording")?;
        let mut thread = LoggingThread::default();
        let worker = VizWorker::spawn(viz, QUEUE_CAPACITY_BYTES, move |viz, msg| {
            thread.handle(viz, msg)
        })
        .context("starting the rerun logging thread")?;
        Ok(Some(Self {
            worker,
            robot_logged: false,
            episode: 0,
            step_offset: 0,
            time_offset_secs: 0.0,
            last_step: -1,
            last_time_secs: 0.0,
            control: Duration::ZERO,
            error: None,
        }))
    }

    /// Waits for the logging thread to finish and flush; reports the costs,
    /// or the first logging error.
    pub fn finish(mut self) -> Result<RecorderReport> {
        if let Some(err) = self.error.take() {
            return Err(err).context("rerun logging failed");
        }
        let report = self.worker.finish().context("rerun logging failed")?;
        Ok(RecorderReport {
            control: self.control,
            logging_thread_busy: report.busy,
            drain: report.drain,
            steps_logged: report.steps_logged,
            steps_dropped: report.steps_dropped,
        })
    }

    fn start_episode(&mut self, start: &EpisodeStart<'_>) -> Result<(), VizError> {
        let world = start.world;
        if !self.robot_logged {
            self.worker
                .send(Message::Robot(Box::new(robot_message(world))));
            self.robot_logged = true;
        }
        self.step_offset = self.last_step + 1;
        self.time_offset_secs = self.last_time_secs;
        self.episode += 1;
        let objects = world
            .objects()
            .iter()
            .map(|o| (object_name(o), vec![sim_shape(&o.geometry, o.rgb)]))
            .collect();
        self.worker.send(Message::Episode(Box::new(EpisodeMessage {
            episode: self.episode,
            step: self.step_offset,
            time_secs: self.time_offset_secs + world.time_secs(),
            instruction: start.instruction.to_string(),
            objects,
            scene: Box::new(start.scene.clone()),
            randomization: start.randomization,
            seed: start.seed,
            shapes: Box::new(SceneShapes::new(world)),
            world_from_links: world
                .arm()
                .world_from_links()
                .map_err(|e| VizError::Prepare(e.to_string()))?,
            world_from_objects: (0..world.objects().len()).map(|i| world.pose(i)).collect(),
        })));
        Ok(())
    }

    fn snapshot(&mut self, view: &StepView<'_>) -> Result<StepMessage, VizError> {
        let world = view.world;
        let arm = world.arm();
        let step = self.step_offset + view.step as i64;
        let time_secs = self.time_offset_secs + world.time_secs();
        self.last_step = step;
        self.last_time_secs = time_secs;
        let image = match (view.frame, view.camera) {
            (Some(frame), Some(camera)) => StepImage::Rendered {
                frame: frame.clone(),
                depth_m: view.depth_m.map(<[f32]>::to_vec),
                world_from_camera: camera.world_from_camera,
                k_row_major: camera.intrinsics_k(),
            },
            _ => StepImage::RenderOnLoggingThread,
        };
        let wrist = view.wrist_frame.cloned();
        let links = arm
            .world_from_links()
            .map_err(|e| VizError::Prepare(e.to_string()))?;
        let objects = (0..world.objects().len()).map(|i| world.pose(i)).collect();
        let mut ee = None;
        let mut joints = None;
        let mut status = None;
        if let Some(last) = arm.last_step() {
            let world_from_target = arm.world_from_base() * last.base_from_target;
            if let Ok(world_from_tcp) = world.world_from_tcp() {
                ee = Some((world_from_target, world_from_tcp));
            }
            let limits = arm.chain().limits();
            joints = Some([
                arm.positions_rad().to_vec(),
                last.command.clone(),
                limits.iter().map(|l| l.lower_rad).collect(),
                limits.iter().map(|l| l.upper_rad).collect(),
            ]);
            let level = match last.status {
                StepStatus::Ok => StatusLevel::Info,
                StepStatus::Scaled | StepStatus::Clipped | StepStatus::NearSingularity => {
                    StatusLevel::Warn
                }
                _ => StatusLevel::Error,
            };
            status = Some((last.status.clone(), level, last.condition_number));
        }
        Ok(StepMessage {
            step,
            time_secs,
            image,
            wrist,
            tokens: view.tokens,
            action: view.action,
            links,
            objects,
            ee,
            joints,
            status,
        })
    }
}

impl StepObserver for SimRecorder {
    /// Frames are rendered on the logging thread instead, when the driver
    /// does not need them.
    fn wants_frames(&self) -> bool {
        false
    }

    fn on_episode_start(&mut self, start: &EpisodeStart<'_>) {
        let t0 = Instant::now();
        if self.error.is_none() {
            if let Err(err) = self.start_episode(start) {
                self.error = Some(err);
            }
        }
        self.control += t0.elapsed();
    }

    fn on_step(&mut self, view: &StepView<'_>) {
        let t0 = Instant::now();
        if self.error.is_none() {
            match self.snapshot(view) {
                // A full queue drops the step; the worker counts it.
                Ok(msg) => {
                    let size = msg.approx_size_bytes();
                    self.worker
                        .try_send_step(Message::Step(Box::new(msg)), size);
                }
                Err(err) => self.error = Some(err),
            }
        }
        self.control += t0.elapsed();
    }
}

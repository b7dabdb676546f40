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
//! The conversion from simulator and URDF geometry to [`VizShape`] lives here
//! so that `vla-viz` depends on neither crate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nalgebra::Isometry3;
use vla_core::{Action, ActionTokens, RgbFrame};
use vla_kinematics::{Geometry as UrdfGeometry, StepStatus};
use vla_render::DomainRandomization;
use vla_sim::render::{SceneShapes, SimCamera};
use vla_sim::scene::{Geometry as SimGeometry, SceneConfig};
use vla_sim::world::World;
use vla_sim::{EpisodeStart, StepObserver, StepView};
use vla_viz::{StatusLevel, Viz, VizError, VizGeometry, VizShape, VizSink, VizWorker};

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

/// One message to the logging thread.
enum Message {
    Robot(Box<RobotMessage>),
    Episode(Box<EpisodeMessage>),
    Step(Box<StepMessage>),
}

/// Logged once per recording.
struct RobotMessage {
    joint_names: Vec<String>,
    links: Vec<(String, Vec<VizShape>)>,
    table: VizShape,
}

/// Logged at the start of each episode.
struct EpisodeMessage {
    episode: u64,
    step: i64,
    time_secs: f64,
    instruction: String,
    objects: Vec<(String, Vec<VizShape>)>,
    /// For rendering frames on the logging thread: the same camera the loop
    /// would build.
    scene: Box<SceneConfig>,
    randomization: DomainRandomization,
    seed: u64,
    /// The shapes to render and the poses at the start of the episode.
    shapes: Box<SceneShapes>,
    world_from_links: HashMap<String, Isometry3<f64>>,
    world_from_objects: Vec<Isometry3<f64>>,
}

/// The camera image of a step.
enum StepImage {
    /// The frame the loop rendered (what the driver saw).
    Rendered {
        frame: RgbFrame,
        depth_m: Option<Vec<f32>>,
        world_from_camera: Isometry3<f64>,
        k_row_major: [f64; 9],
    },
    /// None: the logging thread renders the scene at the start of the step
    /// (the poses of the previous snapshot).
    RenderOnLoggingThread,
}

/// Everything logged per step.
struct StepMessage {
    step: i64,
    time_secs: f64,
    image: StepImage,
    tokens: ActionTokens,
    action: Action,
    links: HashMap<String, Isometry3<f64>>,
    objects: Vec<Isometry3<f64>>,
    /// `world_from_target`, `world_from_tcp`.
    ee: Option<(Isometry3<f64>, Isometry3<f64>)>,
    /// Measured and commanded positions, lower and upper limits.
    joints: Option<[Vec<f64>; 4]>,
    status: Option<(StepStatus, StatusLevel, f64)>,
}

impl StepMessage {
    /// Roughly the heap and inline bytes the snapshot holds.
    fn approx_size_bytes(&self) -> usize {
        use std::mem::size_of;
        let image = match &self.image {
            StepImage::Rendered { frame, depth_m, .. } => {
                frame.data().len() + depth_m.as_ref().map_or(0, |d| d.len() * size_of::<f32>())
            }
            StepImage::RenderOnLoggingThread => 0,
        };
        let links: usize = self
            .links
            .keys()
            .map(|name| name.len() + size_of::<(String, Isometry3<f64>)>())
            .sum();
        let joints = self
            .joints
            .as_ref()
            .map_or(0, |j| j.iter().map(|v| v.len() * size_of::<f64>()).sum());
        size_of::<Self>()
            + image
            + links
            + self.objects.len() * size_of::<Isometry3<f64>>()
            + joints
    }
}

/// State of the logging thread besides the [`Viz`].
#[derive(Default)]
struct LoggingThread {
    camera: Option<SimCamera>,
    shapes: Option<SceneShapes>,
    object_names: Vec<String>,
    /// Poses at the start of the coming step.
    world_from_links: HashMap<String, Isometry3<f64>>,
    world_from_objects: Vec<Isometry3<f64>>,
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

impl LoggingThread {
    fn handle(&mut self, viz: &mut Viz, msg: Message) -> Result<(), VizError> {
        match msg {
            Message::Robot(m) => {
                viz.log_series_names(&m.joint_names)?;
                for (link, shapes) in &m.links {
                    viz.log_static_shapes(&format!("world/robot/{link}"), shapes)?;
                }
                viz.log_static_shapes("world/table", &[m.table])?;
            }
            Message::Episode(m) => {
                viz.set_time(m.step, m.time_secs);
                viz.begin_episode(m.episode, &m.objects)?;
                viz.log_instruction(&m.instruction)?;
                self.object_names = m.objects.into_iter().map(|(name, _)| name).collect();
                self.camera = Some(
                    SimCamera::new(&m.scene, m.randomization, m.seed)
                        .map_err(|e| VizError::Prepare(e.to_string()))?,
                );
                self.shapes = Some(*m.shapes);
                self.world_from_links = m.world_from_links;
                self.world_from_objects = m.world_from_objects;
            }
            Message::Step(m) => self.log_step(viz, *m)?,
        }
        Ok(())
    }

    fn log_step(&mut self, viz: &mut Viz, m: StepMessage) -> Result<(), VizError> {
        viz.set_time(m.step, m.time_secs);
        match m.image {
            StepImage::Rendered {
                frame,
                depth_m,
                world_from_camera,
                k_row_major,
            } => viz.log_camera(&world_from_camera, &k_row_major, &frame, depth_m.as_deref())?,
            StepImage::RenderOnLoggingThread => {
                if let (Some(camera), Some(shapes)) = (self.camera.as_mut(), self.shapes.as_ref()) {
                    let prims = shapes.primitives(&self.world_from_links, &self.world_from_objects);
                    let out = camera
                        .render_primitives(prims)
                        .map_err(|e| VizError::Prepare(e.to_string()))?;
                    let c = camera.camera();
                    viz.log_camera(
                        &c.world_from_camera,
                        &c.intrinsics_k(),
                        &out.rgb,
                        Some(&out.depth_m),
                    )?;
                }
            }
        }
        viz.log_action(&m.tokens, &m.action)?;
        let links: Vec<(String, Isometry3<f64>)> = m
            .links
            .iter()
            .map(|(name, pose)| (name.clone(), *pose))
            .collect();
        viz.log_poses("world/robot", &links)?;
        let objects: Vec<(String, Isometry3<f64>)> = self
            .object_names
            .iter()
            .cloned()
            .zip(m.objects.iter().copied())
            .collect();
        viz.log_poses("world/objects", &objects)?;
        // The next step's image shows the scene as it is now.
        self.world_from_links = m.links;
        self.world_from_objects = m.objects;
        if let Some((world_from_target, world_from_tcp)) = m.ee {
            viz.log_ee(&world_from_target, &world_from_tcp)?;
        }
        if let Some([measured, commanded, lower, upper]) = m.joints {
            viz.log_joints(&measured, &commanded, &lower, &upper)?;
        }
        if let Some((status, level, condition_number)) = m.status {
            viz.log_status(&status.to_string(), level, condition_number)?;
        }
        Ok(())
    }
}

/// The static robot geometry and the table.
fn robot_message(world: &World) -> RobotMessage {
    let arm = world.arm();
    let model = arm.model();
    let links = model
        .link_names()
        .iter()
        .map(|link| {
            let shapes = model
                .link_visuals(link)
                .iter()
                .map(|v| VizShape {
                    entity_from_shape: v.link_from_visual,
                    geometry: urdf_geometry(&v.geometry),
                    rgba: v.rgba,
                })
                .collect();
            (link.to_string(), shapes)
        })
        .collect();
    let t = &world.scene().table;
    RobotMessage {
        joint_names: arm.chain().joint_names().to_vec(),
        links,
        table: VizShape {
            entity_from_shape: Isometry3::translation(
                t.centre_xy_m[0],
                t.centre_xy_m[1],
                t.height_m - t.thickness_m / 2.0,
            ),
            geometry: VizGeometry::Box {
                size_m: [t.size_xy_m[0], t.size_xy_m[1], t.thickness_m],
            },
            rgba: [t.rgb[0], t.rgb[1], t.rgb[2], 1.0],
        },
    }
}

/// An object's entity name, e.g. `red_cube`.
fn object_name(o: &vla_sim::world::SimObject) -> String {
    o.object.to_string().replace(' ', "_")
}

fn urdf_geometry(g: &UrdfGeometry) -> VizGeometry {
    match *g {
        UrdfGeometry::Box { size_m } => VizGeometry::Box { size_m },
        UrdfGeometry::Cylinder { radius_m, length_m } => {
            VizGeometry::Cylinder { radius_m, length_m }
        }
        UrdfGeometry::Sphere { radius_m } => VizGeometry::Sphere { radius_m },
    }
}

/// An object's shape in its body frame (receptacles have their origin at
/// the centre of the base; they are drawn as their outer cylinder, see-through).
fn sim_shape(g: &SimGeometry, rgb: [f32; 3]) -> VizShape {
    let solid = [rgb[0], rgb[1], rgb[2], 1.0];
    let (entity_from_shape, geometry, rgba) = match *g {
        SimGeometry::Box { half_extents_m } => (
            Isometry3::identity(),
            VizGeometry::Box {
                size_m: half_extents_m.map(|h| 2.0 * h),
            },
            solid,
        ),
        SimGeometry::Cylinder {
            radius_m,
            half_height_m,
        } => (
            Isometry3::identity(),
            VizGeometry::Cylinder {
                radius_m,
                length_m: 2.0 * half_height_m,
            },
            solid,
        ),
        SimGeometry::Sphere { radius_m } => (
            Isometry3::identity(),
            VizGeometry::Sphere { radius_m },
            solid,
        ),
        SimGeometry::Bowl { radius_m, height_m } | SimGeometry::Plate { radius_m, height_m } => (
            Isometry3::translation(0.0, 0.0, height_m / 2.0),
            VizGeometry::Cylinder {
                radius_m,
                length_m: height_m,
            },
            [rgb[0], rgb[1], rgb[2], 0.6],
        ),
    };
    VizShape {
        entity_from_shape,
        geometry,
        rgba,
    }
}

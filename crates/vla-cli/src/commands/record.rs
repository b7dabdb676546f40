//! Glue between the simulator's episode loop and the rerun visualiser:
//! a [`StepObserver`] that logs what the policy saw, said and did.
//!
//! The conversion from simulator and URDF geometry to [`VizShape`] lives here
//! so that `vla-viz` depends on neither crate.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nalgebra::Isometry3;
use vla_kinematics::{Geometry as UrdfGeometry, StepStatus};
use vla_sim::scene::Geometry as SimGeometry;
use vla_sim::{StepObserver, StepView};
use vla_viz::{StatusLevel, Viz, VizError, VizGeometry, VizShape, VizSink};

use crate::cli::VizArgs;

/// Records simulated episodes with rerun and measures what logging costs.
pub struct SimRecorder {
    viz: Viz,
    robot_logged: bool,
    episode: u64,
    new_episode: bool,
    /// Steps and simulated time of the episodes before this one, so the
    /// `step` and `sim_time` timelines keep increasing across episodes.
    step_offset: i64,
    time_offset_secs: f64,
    last_step: i64,
    last_time_secs: f64,
    /// Wall time spent inside logging calls.
    pub logging: Duration,
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
        Ok(Some(Self {
            viz,
            robot_logged: false,
            episode: 0,
            new_episode: true,
            step_offset: 0,
            time_offset_secs: 0.0,
            last_step: 0,
            last_time_secs: 0.0,
            logging: Duration::ZERO,
            error: None,
        }))
    }

    /// Call before each episode.
    pub fn begin_episode(&mut self) {
        if self.episode > 0 {
            self.step_offset = self.last_step + 1;
            self.time_offset_secs = self.last_time_secs;
        }
        self.episode += 1;
        self.new_episode = true;
    }

    /// Flushes and reports the first logging error, if any.
    pub fn finish(mut self) -> Result<Duration> {
        if let Some(err) = self.error.take() {
            return Err(err).context("rerun logging failed");
        }
        self.viz.flush().context("flushing the rerun recording")?;
        Ok(self.logging)
    }

    fn log_step(&mut self, view: &StepView<'_>) -> Result<(), VizError> {
        let world = view.world;
        let arm = world.arm();
        if !self.robot_logged {
            self.viz.log_series_names(arm.chain().joint_names())?;
            let model = arm.model();
            for link in model.link_names() {
                let shapes: Vec<VizShape> = model
                    .link_visuals(link)
                    .iter()
                    .map(|v| VizShape {
                        entity_from_shape: v.link_from_visual,
                        geometry: urdf_geometry(&v.geometry),
                        rgba: v.rgba,
                    })
                    .collect();
                self.viz
                    .log_static_shapes(&format!("world/robot/{link}"), &shapes)?;
            }
            let t = &world.scene().table;
            self.viz.log_static_shapes(
                "world/table",
                &[VizShape {
                    entity_from_shape: Isometry3::translation(
                        t.centre_xy_m[0],
                        t.centre_xy_m[1],
                        t.height_m - t.thickness_m / 2.0,
                    ),
                    geometry: VizGeometry::Box {
                        size_m: [t.size_xy_m[0], t.size_xy_m[1], t.thickness_m],
                    },
                    rgba: [t.rgb[0], t.rgb[1], t.rgb[2], 1.0],
                }],
            )?;
            self.robot_logged = true;
        }
        let step = self.step_offset + view.step as i64;
        let time_secs = self.time_offset_secs + world.time_secs();
        self.last_step = step;
        self.last_time_secs = time_secs;
        self.viz.set_time(step, time_secs);
        let objects: Vec<(String, Isometry3<f64>)> = world
            .objects()
            .iter()
            .enumerate()
            .map(|(i, o)| (o.object.to_string().replace(' ', "_"), world.pose(i)))
            .collect();
        if self.new_episode {
            self.viz.begin_episode(self.episode)?;
            self.viz.log_instruction(view.instruction)?;
            for ((name, _), o) in objects.iter().zip(world.objects()) {
                let shape = sim_shape(&o.geometry, o.rgb);
                self.viz
                    .log_shapes(&format!("world/objects/{name}"), &[shape])?;
            }
            self.new_episode = false;
        }
        if let (Some(frame), Some(camera)) = (view.frame, view.camera) {
            self.viz.log_camera(
                &camera.world_from_camera,
                &camera.intrinsics_k(),
                frame,
                view.depth_m,
            )?;
        }
        self.viz.log_action(&view.tokens, &view.action)?;
        let links: Vec<(String, Isometry3<f64>)> = arm
            .world_from_links()
            .map_err(|e| VizError::Flush(e.to_string()))?
            .into_iter()
            .collect();
        self.viz.log_poses("world/robot", &links)?;
        self.viz.log_poses("world/objects", &objects)?;
        let limits = arm.chain().limits();
        let lower: Vec<f64> = limits.iter().map(|l| l.lower_rad).collect();
        let upper: Vec<f64> = limits.iter().map(|l| l.upper_rad).collect();
        if let Some(last) = arm.last_step() {
            let world_from_target = arm.world_from_base() * last.base_from_target;
            if let Ok(world_from_tcp) = world.world_from_tcp() {
                self.viz.log_ee(&world_from_target, &world_from_tcp)?;
            }
            self.viz
                .log_joints(arm.positions_rad(), &last.command, &lower, &upper)?;
            let level = match last.status {
                StepStatus::Ok => StatusLevel::Info,
                StepStatus::Scaled | StepStatus::Clipped | StepStatus::NearSingularity => {
                    StatusLevel::Warn
                }
                _ => StatusLevel::Error,
            };
            self.viz
                .log_status(&last.status.to_string(), level, last.condition_number)?;
        }
        Ok(())
    }
}

impl StepObserver for SimRecorder {
    fn on_step(&mut self, view: &StepView<'_>) {
        if self.error.is_some() {
            return;
        }
        let start = Instant::now();
        if let Err(err) = self.log_step(view) {
            self.error = Some(err);
        }
        self.logging += start.elapsed();
    }
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

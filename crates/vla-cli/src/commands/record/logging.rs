//! The messages the recorder's control side sends to the logging thread,
//! and what the logging thread does with them: rerun calls through [`Viz`],
//! and rendering the camera frame when the loop rendered none.

use std::collections::HashMap;

use nalgebra::Isometry3;
use vla_core::{Action, ActionTokens, RgbFrame};
use vla_kinematics::StepStatus;
use vla_render::DomainRandomization;
use vla_sim::render::{SceneShapes, SimCamera};
use vla_sim::scene::SceneConfig;
use vla_sim::world::World;
use vla_viz::{StatusLevel, Viz, VizError, VizGeometry, VizShape};

use super::shapes::urdf_geometry;

/// One message to the logging thread.
pub(super) enum Message {
    Robot(Box<RobotMessage>),
    Episode(Box<EpisodeMessage>),
    Step(Box<StepMessage>),
}

/// Logged once per recording.
pub(super) struct RobotMessage {
    pub(super) joint_names: Vec<String>,
    pub(super) links: Vec<(String, Vec<VizShape>)>,
    pub(super) table: VizShape,
}

/// Logged at the start of each episode.
pub(super) struct EpisodeMessage {
    pub(super) episode: u64,
    pub(super) step: i64,
    pub(super) time_secs: f64,
    pub(super) instruction: String,
    pub(super) objects: Vec<(String, Vec<VizShape>)>,
    /// For rendering frames on the logging thread: the same camera the loop
    /// would build.
    pub(super) scene: Box<SceneConfig>,
    pub(super) randomization: DomainRandomization,
    pub(super) seed: u64,
    /// The shapes to render and the poses at the start of the episode.
    pub(super) shapes: Box<SceneShapes>,
    pub(super) world_from_links: HashMap<String, Isometry3<f64>>,
    pub(super) world_from_objects: Vec<Isometry3<f64>>,
}

/// The camera image of a step.
pub(super) enum StepImage {
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
pub(super) struct StepMessage {
    pub(super) step: i64,
    pub(super) time_secs: f64,
    pub(super) image: StepImage,
    /// The wrist camera's frame, when the loop rendered one.
    pub(super) wrist: Option<RgbFrame>,
    pub(super) tokens: ActionTokens,
    pub(super) action: Action,
    pub(super) links: HashMap<String, Isometry3<f64>>,
    pub(super) objects: Vec<Isometry3<f64>>,
    /// `world_from_target`, `world_from_tcp`.
    pub(super) ee: Option<(Isometry3<f64>, Isometry3<f64>)>,
    /// Measured and commanded positions, lower and upper limits.
    pub(super) joints: Option<[Vec<f64>; 4]>,
    pub(super) status: Option<(StepStatus, StatusLevel, f64)>,
}

impl StepMessage {
    /// Roughly the heap and inline bytes the snapshot holds.
    pub(super) fn approx_size_bytes(&self) -> usize {
        use std::mem::size_of;
        let image = match &self.image {
            StepImage::Rendered { frame, depth_m, .. } => {
                frame.data().len() + depth_m.as_ref().map_or(0, |d| d.len() * size_of::<f32>())
            }
            StepImage::RenderOnLoggingThread => 0,
        } + self.wrist.as_ref().map_or(0, |f| f.data().len());
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
pub(super) struct LoggingThread {
    pub(super) camera: Option<SimCamera>,
    pub(super) shapes: Option<SceneShapes>,
    pub(super) object_names: Vec<String>,
    /// Poses at the start of the coming step.
    pub(super) world_from_links: HashMap<String, Isometry3<f64>>,
    pub(super) world_from_objects: Vec<Isometry3<f64>>,
}

impl LoggingThread {
    pub(super) fn handle(&mut self, viz: &mut Viz, msg: Message) -> Result<(), VizError> {
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
        if let Some(wrist) = &m.wrist {
            viz.log_wrist_image(wrist)?;
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
pub(super) fn robot_message(world: &World) -> RobotMessage {
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

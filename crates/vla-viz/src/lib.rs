//! Rerun logging for the VLA controller: see what the policy saw, said and did.
//!
//! [`Viz`] wraps a rerun `RecordingStream` (or nothing, when visualisation is
//! off, so callers never branch). It knows the project's entity layout:
//!
//! | entity | what |
//! | --- | --- |
//! | `world/camera` | camera pose + pinhole; `image` (RGB) and `depth` below it |
//! | `instruction` | the task text, logged when it changes |
//! | `action/tokens` | the 8 action token ids of each step |
//! | `action/decoded` | the decoded action (Δx … gripper, terminate) |
//! | `world/robot/<link>` | each URDF link: pose (transform) + primitive geometry |
//! | `world/ee/target`, `world/ee/target_path/<n>`, `world/ee/actual_path/<n>` | end-effector target (axes); target and reached paths as line strips, in chunks |
//! | `world/objects/<name>` | simulated objects: pose + geometry |
//! | `joints/measured`, `joints/commanded`, `joints/lower`, `joints/upper` | one series per joint |
//! | `status` | the kinematics status as a text log (warnings for scaled, clipped, singular, halted) |
//!
//! Timelines: `step` (policy step), `sim_time` (simulated seconds) and the
//! wall clock (`log_time`, added by rerun to every row).
//!
//! A `Viz` call serialises and queues to rerun's batcher thread (it never
//! waits for disk or network), but that still costs the caller tens of
//! microseconds per call. A control loop therefore hands a snapshot to a
//! [`VizWorker`], which owns the `Viz` on a logging thread and never blocks
//! the sender.
//!
//! Every recording carries a viewer layout (a blueprint, `blueprint.rs`).
//!
//! To keep the recording small and the logging thread light, transforms are
//! only logged when they changed, and the end-effector paths are logged in
//! chunks of at most [`PATH_CHUNK_POINTS`] points, so a step re-sends at most
//! one chunk, however long the episode.

mod blueprint;
mod error;
mod geometry;
mod sink;
mod worker;

pub use error::VizError;
pub use geometry::{VizGeometry, VizShape};
pub use sink::VizSink;
pub use worker::{VizWorker, WorkerReport};

use std::collections::HashMap;

use nalgebra::Isometry3;
use rerun::RecordingStream;
use vla_core::action::DIM_NAMES;
use vla_core::{Action, ActionTokens, RgbFrame};

/// Application id of every recording.
pub const APP_ID: &str = "vla";

/// Names of the 8 token positions, in order.
pub const TOKEN_NAMES: [&str; 8] = [
    "terminate",
    "dx",
    "dy",
    "dz",
    "droll",
    "dpitch",
    "dyaw",
    "gripper",
];

/// Points per logged piece of an end-effector path: each piece is its own
/// entity (`world/ee/target_path/<n>`), re-sent while it grows, so a step
/// costs at most this many points whatever the episode length.
pub const PATH_CHUNK_POINTS: usize = 64;

/// Severity of a controller status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusLevel {
    /// Normal operation.
    Info,
    /// Motion was changed for safety (scaled, clipped, near singularity).
    Warn,
    /// Motion was stopped (halted, IK failure, rejected input).
    Error,
}

/// A rerun recording, or nothing when visualisation is off.
pub struct Viz {
    rec: Option<RecordingStream>,
    ee_target_path: PathChunks,
    ee_actual_path: PathChunks,
    /// The last transform logged per entity, to skip unchanged ones.
    last_poses: HashMap<String, Isometry3<f64>>,
    /// Object names of the current episode.
    objects: Vec<String>,
}

/// A growing polyline kept as numbered chunks of at most
/// [`PATH_CHUNK_POINTS`] points; consecutive chunks share their end point.
#[derive(Debug, Default)]
struct PathChunks {
    /// Index of the chunk being filled.
    index: usize,
    points: Vec<[f32; 3]>,
}

impl PathChunks {
    fn clear(&mut self) {
        self.index = 0;
        self.points.clear();
    }

    /// Adds a point; returns the chunk to (re-)log: its index and points.
    fn push(&mut self, p: [f32; 3]) -> (usize, &[[f32; 3]]) {
        if self.points.len() >= PATH_CHUNK_POINTS {
            let last = self.points[self.points.len() - 1];
            self.points.clear();
            self.points.push(last);
            self.index += 1;
        }
        self.points.push(p);
        (self.index, &self.points)
    }
}

impl Viz {
    /// No visualisation: every call returns at once.
    pub fn disabled() -> Self {
        Self {
            rec: None,
            ee_target_path: PathChunks::default(),
            ee_actual_path: PathChunks::default(),
            last_poses: HashMap::new(),
            objects: Vec::new(),
        }
    }

    /// Opens a recording going to `sink`.
    pub fn new(recording_name: &str, sink: &VizSink) -> Result<Self, VizError> {
        let rec = sink.open(recording_name)?;
        let mut viz = Self::disabled();
        viz.rec = rec;
        if let Some(rec) = &viz.rec {
            blueprint::send(rec)?;
            rec.log_static("world", &rerun::ViewCoordinates::RIGHT_HAND_Z_UP())?;
        }
        Ok(viz)
    }

    /// Whether anything is recorded.
    pub fn is_enabled(&self) -> bool {
        self.rec.is_some()
    }

    /// The underlying stream, for callers that log more.
    pub fn stream(&self) -> Option<&RecordingStream> {
        self.rec.as_ref()
    }

    /// Sets the time of the rows logged next: policy step and simulated seconds.
    pub fn set_time(&self, step: i64, sim_time_secs: f64) {
        if let Some(rec) = &self.rec {
            rec.set_time_sequence("step", step);
            rec.set_duration_secs("sim_time", sim_time_secs);
        }
    }

    /// Starts a new episode: clears the end-effector paths.
    ///
    /// `objects` are the episode's objects (`world/objects/<name>`) with
    /// their shapes. Objects of the previous episode that are not among them,
    /// and its end-effector path chunks after the first, are cleared. Nothing
    /// that is logged again at this time is cleared: the viewer would let
    /// the clear win over data of the same time step.
    pub fn begin_episode(
        &mut self,
        episode: u64,
        objects: &[(String, Vec<VizShape>)],
    ) -> Result<(), VizError> {
        let stale_chunks = self.ee_target_path.index.max(self.ee_actual_path.index);
        self.ee_target_path.clear();
        self.ee_actual_path.clear();
        // Every pose is logged again once per episode.
        self.last_poses.clear();
        let previous = std::mem::take(&mut self.objects);
        self.objects = objects.iter().map(|(name, _)| name.clone()).collect();
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log(
            "episode",
            &rerun::TextLog::new(format!("episode {episode}"))
                .with_level(rerun::TextLogLevel::INFO),
        )?;
        for name in previous.iter().filter(|n| !self.objects.contains(n)) {
            rec.log(format!("world/objects/{name}"), &rerun::Clear::recursive())?;
        }
        for i in 1..=stale_chunks {
            for path in ["target_path", "actual_path"] {
                rec.log(format!("world/ee/{path}/{i}"), &rerun::Clear::recursive())?;
            }
        }
        for (name, shapes) in objects {
            self.log_shapes(&format!("world/objects/{name}"), shapes)?;
        }
        Ok(())
    }

    /// The task text (log it when it changes).
    pub fn log_instruction(&self, text: &str) -> Result<(), VizError> {
        if let Some(rec) = &self.rec {
            rec.log("instruction", &rerun::TextDocument::new(text))?;
        }
        Ok(())
    }

    /// The camera: pose in the world, intrinsics (row-major K), RGB and
    /// optional depth (metres, row-major, non-finite = no return).
    /// [`Viz::log_camera_model`] followed by [`Viz::log_camera_images`].
    pub fn log_camera(
        &mut self,
        world_from_camera: &Isometry3<f64>,
        k_row_major: &[f64; 9],
        frame: &RgbFrame,
        depth_m: Option<&[f32]>,
    ) -> Result<(), VizError> {
        self.log_camera_model(
            world_from_camera,
            k_row_major,
            [frame.width_px(), frame.height_px()],
        )?;
        self.log_camera_images(frame, depth_m)
    }

    /// The camera's pose in the world and its pinhole (row-major K, image
    /// size in pixels); the pose is only logged when it changed.
    pub fn log_camera_model(
        &mut self,
        world_from_camera: &Isometry3<f64>,
        k_row_major: &[f64; 9],
        size_px: [u32; 2],
    ) -> Result<(), VizError> {
        if self.rec.is_none() || self.last_poses.get("world/camera") == Some(world_from_camera) {
            return Ok(());
        }
        self.last_poses
            .insert("world/camera".to_string(), *world_from_camera);
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log("world/camera", &transform(world_from_camera))?;
        rec.log(
            "world/camera",
            &rerun::Pinhole::from_focal_length_and_resolution(
                [k_row_major[0] as f32, k_row_major[4] as f32],
                [size_px[0] as f32, size_px[1] as f32],
            )
            .with_principal_point([k_row_major[2] as f32, k_row_major[5] as f32])
            .with_camera_xyz(rerun::components::ViewCoordinates::RDF),
        )?;
        Ok(())
    }

    /// What the wrist camera saw (policies with a wrist camera input), at
    /// `wrist/image`.
    pub fn log_wrist_image(&self, frame: &RgbFrame) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        let rgb = frame.to_rgb8();
        rec.log(
            "wrist/image",
            &rerun::Image::from_rgb24(rgb.data().to_vec(), [frame.width_px(), frame.height_px()]),
        )?;
        Ok(())
    }

    /// What the camera saw: RGB and optional depth (metres, row-major,
    /// non-finite = no return), below the camera entity.
    pub fn log_camera_images(
        &self,
        frame: &RgbFrame,
        depth_m: Option<&[f32]>,
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        let (w, h) = (frame.width_px(), frame.height_px());
        let rgb = if frame.encoding() == vla_core::PixelEncoding::Rgb8 {
            frame.data().to_vec()
        } else {
            frame.to_rgb8().data().to_vec()
        };
        rec.log("world/camera/image", &rerun::Image::from_rgb24(rgb, [w, h]))?;
        if let Some(depth) = depth_m {
            let expected = w as usize * h as usize;
            if depth.len() != expected {
                return Err(VizError::DepthSize {
                    expected,
                    actual: depth.len(),
                });
            }
            let bytes: Vec<u8> = depth
                .iter()
                .flat_map(|d| if d.is_finite() { *d } else { 0.0 }.to_le_bytes())
                .collect();
            rec.log(
                "world/camera/depth",
                &rerun::DepthImage::from_data_type_and_bytes(
                    bytes,
                    [w, h],
                    rerun::datatypes::ChannelDatatype::F32,
                )
                .with_meter(1.0),
            )?;
        }
        Ok(())
    }

    /// The 8 token ids of a step and the action they decode to.
    pub fn log_action(&self, tokens: &ActionTokens, action: &Action) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log(
            "action/tokens",
            &rerun::Scalars::new(tokens.ids().iter().map(|&t| t as f64)),
        )?;
        let mut decoded: Vec<f64> = action.to_continuous().to_vec();
        decoded.push(if action.terminate { 1.0 } else { 0.0 });
        rec.log("action/decoded", &rerun::Scalars::new(decoded))?;
        Ok(())
    }

    /// Names the series of the action and joint plots; call once per recording.
    pub fn log_series_names(&self, joint_names: &[String]) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log_static(
            "action/tokens",
            &rerun::SeriesLines::new().with_names(TOKEN_NAMES),
        )?;
        let mut decoded: Vec<&str> = DIM_NAMES.to_vec();
        decoded.push("terminate");
        rec.log_static(
            "action/decoded",
            &rerun::SeriesLines::new().with_names(decoded),
        )?;
        for series in ["measured", "commanded", "lower", "upper"] {
            rec.log_static(
                format!("joints/{series}"),
                &rerun::SeriesLines::new()
                    .with_names(joint_names.iter().map(|n| format!("{n} {series}"))),
            )?;
        }
        Ok(())
    }

    /// Joint positions: measured and commanded, with their limits.
    pub fn log_joints(
        &self,
        measured_rad: &[f64],
        commanded_rad: &[f64],
        lower_rad: &[f64],
        upper_rad: &[f64],
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log(
            "joints/measured",
            &rerun::Scalars::new(measured_rad.to_vec()),
        )?;
        rec.log(
            "joints/commanded",
            &rerun::Scalars::new(commanded_rad.to_vec()),
        )?;
        // Infinite limits (continuous joints) are not plotted.
        let finite = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .map(|x| if x.is_finite() { *x } else { 0.0 })
                .collect()
        };
        rec.log("joints/lower", &rerun::Scalars::new(finite(lower_rad)))?;
        rec.log("joints/upper", &rerun::Scalars::new(finite(upper_rad)))?;
        Ok(())
    }

    /// The controller's status of this step, with the Jacobian condition number.
    pub fn log_status(
        &self,
        status: &str,
        level: StatusLevel,
        condition_number: f64,
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        let level = match level {
            StatusLevel::Info => rerun::TextLogLevel::INFO,
            StatusLevel::Warn => rerun::TextLogLevel::WARN,
            StatusLevel::Error => rerun::TextLogLevel::ERROR,
        };
        rec.log("status", &rerun::TextLog::new(status).with_level(level))?;
        if condition_number.is_finite() {
            rec.log(
                "status/condition_number",
                &rerun::Scalars::single(condition_number),
            )?;
        }
        Ok(())
    }

    /// Geometry that does not move relative to its entity (robot link
    /// visuals, object shapes): log once per recording.
    pub fn log_static_shapes(&self, entity: &str, shapes: &[VizShape]) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        for (i, shape) in shapes.iter().enumerate() {
            geometry::log_shape(rec, &format!("{entity}/geom_{i}"), shape, true)?;
        }
        Ok(())
    }

    /// Geometry that belongs to the current time onwards (e.g. objects of
    /// one episode, see [`Viz::begin_episode`]).
    pub fn log_shapes(&self, entity: &str, shapes: &[VizShape]) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        for (i, shape) in shapes.iter().enumerate() {
            geometry::log_shape(rec, &format!("{entity}/geom_{i}"), shape, false)?;
        }
        Ok(())
    }

    /// Poses of named frames below `parent` (e.g. `world/robot`, links by
    /// name, `parent_from_frame` each). A pose equal to the one last logged
    /// for the same entity is skipped (the viewer keeps showing it).
    pub fn log_poses(
        &mut self,
        parent: &str,
        poses: &[(String, Isometry3<f64>)],
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        for (name, parent_from_frame) in poses {
            let entity = format!("{parent}/{name}");
            if self.last_poses.get(&entity) == Some(parent_from_frame) {
                continue;
            }
            rec.log(entity.as_str(), &transform(parent_from_frame))?;
            self.last_poses.insert(entity, *parent_from_frame);
        }
        Ok(())
    }

    /// End-effector target and actual pose (world frame); both paths grow
    /// through the episode, logged in chunks (see [`PATH_CHUNK_POINTS`]).
    pub fn log_ee(
        &mut self,
        world_from_target: &Isometry3<f64>,
        world_from_ee: &Isometry3<f64>,
    ) -> Result<(), VizError> {
        if self.rec.is_none() {
            return Ok(());
        }
        let p = |iso: &Isometry3<f64>| {
            let t = iso.translation.vector;
            [t.x as f32, t.y as f32, t.z as f32]
        };
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log("world/ee/target", &transform(world_from_target))?;
        rec.log("world/ee/target", &rerun::TransformAxes3D::new(0.05))?;
        let (i, points) = self.ee_target_path.push(p(world_from_target));
        rec.log(
            format!("world/ee/target_path/{i}"),
            &rerun::LineStrips3D::new([points.iter().copied()])
                .with_colors([rerun::Color::from_rgb(255, 160, 0)]),
        )?;
        let (i, points) = self.ee_actual_path.push(p(world_from_ee));
        rec.log(
            format!("world/ee/actual_path/{i}"),
            &rerun::LineStrips3D::new([points.iter().copied()])
                .with_colors([rerun::Color::from_rgb(0, 200, 255)]),
        )?;
        Ok(())
    }

    /// Waits until everything logged so far reached the sink.
    pub fn flush(&self) -> Result<(), VizError> {
        if let Some(rec) = &self.rec {
            rec.flush_blocking()
                .map_err(|e| VizError::Flush(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for Viz {
    fn drop(&mut self) {
        // Best effort: a recording that cannot be flushed at exit has already
        // reported its sink error through the logging calls.
        let _ = self.flush();
    }
}

/// A rerun transform from an isometry (`parent_from_child`).
fn transform(parent_from_child: &Isometry3<f64>) -> rerun::Transform3D {
    let t = parent_from_child.translation.vector;
    let q = parent_from_child.rotation.into_inner();
    rerun::Transform3D::from_translation_rotation(
        [t.x as f32, t.y as f32, t.z as f32],
        rerun::Quaternion::from_xyzw([q.i as f32, q.j as f32, q.k as f32, q.w as f32]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_chunks_are_bounded_and_continuous() {
        let mut path = PathChunks::default();
        let n = 3 * PATH_CHUNK_POINTS;
        let mut chunks: Vec<(usize, Vec<[f32; 3]>)> = Vec::new();
        for i in 0..n {
            let (index, points) = path.push([i as f32, 0.0, 0.0]);
            assert!(points.len() <= PATH_CHUNK_POINTS);
            // The newest point is always in the chunk re-sent this step.
            assert_eq!(points.last(), Some(&[i as f32, 0.0, 0.0]));
            match chunks.last_mut() {
                Some((last, pts)) if *last == index => *pts = points.to_vec(),
                _ => chunks.push((index, points.to_vec())),
            }
        }
        // Chunk indices count up from 0; each chunk starts where the
        // previous one ended, so the strips join into the whole path.
        let mut joined: Vec<[f32; 3]> = Vec::new();
        for (k, (index, pts)) in chunks.iter().enumerate() {
            assert_eq!(*index, k);
            if k > 0 {
                assert_eq!(joined.last(), pts.first());
                joined.extend_from_slice(&pts[1..]);
            } else {
                joined.extend_from_slice(pts);
            }
        }
        let expected: Vec<[f32; 3]> = (0..n).map(|i| [i as f32, 0.0, 0.0]).collect();
        assert_eq!(joined, expected);
        path.clear();
        assert_eq!(path.push([9.0; 3]), (0, &[[9.0f32; 3]][..]));
    }
}

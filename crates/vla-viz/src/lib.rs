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
//! | `world/ee/target`, `world/ee/actual` | end-effector target and reached pose; paths as line strips |
//! | `world/objects/<name>` | simulated objects: pose + geometry |
//! | `joints/measured`, `joints/commanded`, `joints/lower`, `joints/upper` | one series per joint |
//! | `status` | the kinematics status as a text log (warnings for scaled, clipped, singular, halted) |
//!
//! Timelines: `step` (policy step), `sim_time` (simulated seconds) and the
//! wall clock (`log_time`, added by rerun to every row). Logging goes through
//! rerun's batcher thread: a `log` call serialises and queues, it never waits
//! for disk or network.

mod error;
mod geometry;
mod sink;

pub use error::VizError;
pub use geometry::{VizGeometry, VizShape};
pub use sink::VizSink;

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
    ee_target_path: Vec<[f32; 3]>,
    ee_actual_path: Vec<[f32; 3]>,
}

impl Viz {
    /// No visualisation: every call returns at once.
    pub fn disabled() -> Self {
        Self {
            rec: None,
            ee_target_path: Vec::new(),
            ee_actual_path: Vec::new(),
        }
    }

    /// Opens a recording going to `sink`.
    pub fn new(recording_name: &str, sink: &VizSink) -> Result<Self, VizError> {
        let rec = sink.open(recording_name)?;
        let mut viz = Self::disabled();
        viz.rec = rec;
        if let Some(rec) = &viz.rec {
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
    pub fn begin_episode(&mut self, episode: u64) -> Result<(), VizError> {
        self.ee_target_path.clear();
        self.ee_actual_path.clear();
        if let Some(rec) = &self.rec {
            // Objects and paths of the previous episode disappear from here on.
            rec.log("world/objects", &rerun::Clear::recursive())?;
            rec.log("world/ee", &rerun::Clear::recursive())?;
            rec.log(
                "episode",
                &rerun::TextLog::new(format!("episode {episode}"))
                    .with_level(rerun::TextLogLevel::INFO),
            )?;
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
    pub fn log_camera(
        &self,
        world_from_camera: &Isometry3<f64>,
        k_row_major: &[f64; 9],
        frame: &RgbFrame,
        depth_m: Option<&[f32]>,
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        let (w, h) = (frame.width_px(), frame.height_px());
        rec.log("world/camera", &transform(world_from_camera))?;
        rec.log(
            "world/camera",
            &rerun::Pinhole::from_focal_length_and_resolution(
                [k_row_major[0] as f32, k_row_major[4] as f32],
                [w as f32, h as f32],
            )
            .with_principal_point([k_row_major[2] as f32, k_row_major[5] as f32])
            .with_camera_xyz(rerun::components::ViewCoordinates::RDF),
        )?;
        let rgb = frame.to_rgb8();
        rec.log(
            "world/camera/image",
            &rerun::Image::from_rgb24(rgb.data().to_vec(), [w, h]),
        )?;
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

    /// Geometry that belongs to the current time onwards (objects of one
    /// episode; cleared by [`Viz::begin_episode`]).
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
    /// name, `parent_from_frame` each).
    pub fn log_poses(
        &self,
        parent: &str,
        poses: &[(String, Isometry3<f64>)],
    ) -> Result<(), VizError> {
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        for (name, parent_from_frame) in poses {
            rec.log(format!("{parent}/{name}"), &transform(parent_from_frame))?;
        }
        Ok(())
    }

    /// End-effector target and actual pose (world frame); both paths grow
    /// through the episode.
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
        self.ee_target_path.push(p(world_from_target));
        self.ee_actual_path.push(p(world_from_ee));
        let Some(rec) = &self.rec else {
            return Ok(());
        };
        rec.log("world/ee/target", &transform(world_from_target))?;
        rec.log("world/ee/target", &rerun::TransformAxes3D::new(0.05))?;
        rec.log(
            "world/ee/target_path",
            &rerun::LineStrips3D::new([self.ee_target_path.clone()])
                .with_colors([rerun::Color::from_rgb(255, 160, 0)]),
        )?;
        rec.log(
            "world/ee/actual_path",
            &rerun::LineStrips3D::new([self.ee_actual_path.clone()])
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

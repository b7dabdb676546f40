//! The on-disk demonstration format written by `vla collect` (documented in
//! sim/README.md, "Datasets"):
//!
//! ```text
//! OUT/dataset.json            what, how, image size, intrinsics, tokenizer
//! OUT/episodes.jsonl          one line per episode: instruction, goal, outcome
//! OUT/episodes/000000/frames.rgb   steps × height × width × 3 bytes (rgb8)
//! OUT/episodes/000000/depth.f32    steps × height × width f32 LE metres (optional)
//! OUT/episodes/000000/wrist.rgb    steps × wrist height × wrist width × 3 bytes (optional)
//! OUT/episodes/000000/steps.jsonl  one StepRecord per line
//! ```

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vla_core::tokenizer::ActionTokenizer;

use crate::episode::{Episode, EpisodeOutcome};
use crate::SimError;

/// Format name in `dataset.json`.
pub const FORMAT: &str = "vla-sim-demonstrations";
/// Format version.
pub const VERSION: u32 = 1;

/// Contents of `dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// Suite name.
    pub suite: String,
    /// Scene name.
    pub scene: String,
    /// Split the tasks were drawn from.
    pub split: String,
    /// Image width, pixels.
    pub width_px: u32,
    /// Image height, pixels.
    pub height_px: u32,
    /// Always "rgb8".
    pub encoding: String,
    /// Whether episodes have `depth.f32`.
    pub depth: bool,
    /// Camera intrinsics, row-major 3×3 (ROS optical frame).
    pub camera_k: [f64; 9],
    /// Policy steps per second.
    pub policy_rate_hz: f64,
    /// The tokenizer the tokens were made with.
    pub tokenizer: ActionTokenizer,
    /// Joint names, in the order of `joints` in the step records.
    pub joint_names: Vec<String>,
    /// Expert noise injection used.
    pub noise: crate::expert::NoiseConfig,
    /// Episodes written (filled in at the end).
    pub episodes: usize,
    /// Total steps (frames) written.
    pub steps: usize,
    /// For DAgger data (`vla collect --dagger`): which policy acted and how
    /// often the expert acted instead; absent for expert demonstrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dagger: Option<DaggerInfo>,
    /// For decoy approaches (`vla collect --decoy-approach STEPS`): the most
    /// steps a decoy drove; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoy_max_steps: Option<usize>,
    /// For decoy approaches: the step at which the decoys started driving
    /// (`--decoy-start`); absent when 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoy_start_step: Option<usize>,
    /// The wrist camera (`vla collect --wrist-camera`): every episode then
    /// has `wrist.rgb`; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrist_camera: Option<WristCameraMeta>,
    /// How far the experts pushed (`vla collect --push-distance-m`),
    /// metres; absent: [`crate::expert::DEFAULT_PUSH_DISTANCE_M`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_distance_m: Option<f64>,
}

/// The wrist camera of a dataset (`dataset.json` → `wrist_camera`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WristCameraMeta {
    /// Image width, pixels.
    pub width_px: u32,
    /// Image height, pixels.
    pub height_px: u32,
    /// Intrinsics, row-major 3×3 (ROS optical frame).
    pub camera_k: [f64; 9],
    /// Pose of the optical frame in the TCP frame: translation, metres.
    pub tcp_from_camera_xyz_m: [f64; 3],
    /// Its rotation, quaternion x y z w.
    pub tcp_from_camera_xyzw: [f64; 4],
}

impl WristCameraMeta {
    /// The entry for a scene's wrist camera.
    pub fn of(config: &crate::scene::WristCameraConfig) -> Self {
        let camera = crate::render::wrist_camera_in_tcp(config);
        let t = camera.world_from_camera.translation.vector;
        let q = camera.world_from_camera.rotation.quaternion();
        Self {
            width_px: camera.width_px,
            height_px: camera.height_px,
            camera_k: camera.intrinsics_k(),
            tcp_from_camera_xyz_m: [t.x, t.y, t.z],
            tcp_from_camera_xyzw: [q.i, q.j, q.k, q.w],
        }
    }
}

/// Provenance of DAgger data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaggerInfo {
    /// The `--dagger` argument: the policy that acted.
    pub policy: String,
    /// Probability per step that the expert's action was executed instead.
    pub expert_prob: f64,
    /// The policy's decoding rule (`greedy` or `median`).
    pub decoding: String,
    /// Whether the policy took over only after the expert's lift
    /// (`vla collect --after-lift`).
    #[serde(default)]
    pub after_lift: bool,
    /// The labelling expert's `--lower-near-spot-m` (absent: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_near_spot_m: Option<f64>,
}

/// One line of `episodes.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeIndex {
    /// Episode number.
    pub index: usize,
    /// Folder, relative to the dataset root.
    pub dir: String,
    /// Seed of the episode.
    pub seed: u64,
    /// Steps (= frames).
    pub steps: usize,
    /// Outcome.
    pub outcome: EpisodeOutcome,
}

/// Writes a dataset folder.
#[derive(Debug)]
pub struct DatasetWriter {
    root: PathBuf,
    meta: DatasetMeta,
    index: BufWriter<File>,
}

fn create(path: &Path) -> Result<BufWriter<File>, SimError> {
    Ok(BufWriter::new(
        File::create(path).map_err(|e| SimError::io(path, e))?,
    ))
}

impl DatasetWriter {
    /// Creates `root` (which must not hold a dataset already).
    pub fn create(root: &Path, meta: DatasetMeta) -> Result<Self, SimError> {
        let meta_path = root.join("dataset.json");
        if meta_path.exists() {
            return Err(SimError::invalid(
                "output",
                format!("{} already holds a dataset", root.display()),
            ));
        }
        fs::create_dir_all(root.join("episodes"))
            .map_err(|e| SimError::io(root.join("episodes"), e))?;
        let index = create(&root.join("episodes.jsonl"))?;
        let writer = Self {
            root: root.to_path_buf(),
            meta,
            index,
        };
        writer.write_meta()?;
        Ok(writer)
    }

    fn write_meta(&self) -> Result<(), SimError> {
        let path = self.root.join("dataset.json");
        let text = serde_json::to_string_pretty(&self.meta)?;
        fs::write(&path, text + "\n").map_err(|e| SimError::io(&path, e))
    }

    /// Writes one recorded episode; returns the bytes of image data written.
    pub fn write_episode(&mut self, episode: &Episode, seed: u64) -> Result<usize, SimError> {
        let index = self.meta.episodes;
        let dir_name = format!("episodes/{index:06}");
        let dir = self.root.join(&dir_name);
        fs::create_dir_all(&dir).map_err(|e| SimError::io(&dir, e))?;
        if episode.frames.len() != episode.records.len() {
            return Err(SimError::invalid(
                "episode",
                format!(
                    "{} frames for {} steps (was it rendered and recorded?)",
                    episode.frames.len(),
                    episode.records.len()
                ),
            ));
        }
        let mut bytes = 0;
        let frames_path = dir.join("frames.rgb");
        let mut f = create(&frames_path)?;
        for frame in &episode.frames {
            if frame.width_px() != self.meta.width_px || frame.height_px() != self.meta.height_px {
                return Err(SimError::invalid(
                    "episode",
                    "frame size differs from dataset.json",
                ));
            }
            let rgb = frame.to_rgb8();
            f.write_all(rgb.data())
                .map_err(|e| SimError::io(&frames_path, e))?;
            bytes += rgb.data().len();
        }
        f.flush().map_err(|e| SimError::io(&frames_path, e))?;
        if let Some(w) = &self.meta.wrist_camera {
            if episode.wrist_frames.len() != episode.records.len() {
                return Err(SimError::invalid(
                    "episode",
                    format!(
                        "{} wrist frames for {} steps (was the wrist camera rendered?)",
                        episode.wrist_frames.len(),
                        episode.records.len()
                    ),
                ));
            }
            let wrist_path = dir.join("wrist.rgb");
            let mut f = create(&wrist_path)?;
            for frame in &episode.wrist_frames {
                if frame.width_px() != w.width_px || frame.height_px() != w.height_px {
                    return Err(SimError::invalid(
                        "episode",
                        "wrist frame size differs from dataset.json",
                    ));
                }
                let rgb = frame.to_rgb8();
                f.write_all(rgb.data())
                    .map_err(|e| SimError::io(&wrist_path, e))?;
                bytes += rgb.data().len();
            }
            f.flush().map_err(|e| SimError::io(&wrist_path, e))?;
        }
        if self.meta.depth {
            let depth_path = dir.join("depth.f32");
            let mut f = create(&depth_path)?;
            for d in &episode.depth_m {
                for v in d {
                    f.write_all(&v.to_le_bytes())
                        .map_err(|e| SimError::io(&depth_path, e))?;
                }
            }
            f.flush().map_err(|e| SimError::io(&depth_path, e))?;
        }
        let steps_path = dir.join("steps.jsonl");
        let mut f = create(&steps_path)?;
        for r in &episode.records {
            serde_json::to_writer(&mut f, r)?;
            f.write_all(b"\n")
                .map_err(|e| SimError::io(&steps_path, e))?;
        }
        f.flush().map_err(|e| SimError::io(&steps_path, e))?;
        let line = EpisodeIndex {
            index,
            dir: dir_name,
            seed,
            steps: episode.records.len(),
            outcome: episode.outcome.clone(),
        };
        serde_json::to_writer(&mut self.index, &line)?;
        let idx_path = self.root.join("episodes.jsonl");
        self.index
            .write_all(b"\n")
            .map_err(|e| SimError::io(&idx_path, e))?;
        self.meta.episodes += 1;
        self.meta.steps += episode.records.len();
        Ok(bytes)
    }

    /// Flushes the index and rewrites `dataset.json` with the final counts.
    pub fn finish(mut self) -> Result<DatasetMeta, SimError> {
        let idx_path = self.root.join("episodes.jsonl");
        self.index.flush().map_err(|e| SimError::io(&idx_path, e))?;
        self.write_meta()?;
        Ok(self.meta)
    }
}

//! Reader of the demonstrations `vla collect` writes (format
//! `vla-sim-demonstrations` version 1, documented in sim/README.md):
//!
//! ```text
//! DIR/dataset.json                 format, version, width_px, height_px, encoding, ...
//! DIR/episodes.jsonl               per episode: index, dir, steps, outcome.task.instruction, ...
//! DIR/episodes/000000/frames.rgb   steps × height × width × 3 bytes
//! DIR/episodes/000000/steps.jsonl  per step: action {translation_m, rotation_rad, gripper, terminate}, ...
//! ```
//!
//! Only the fields training needs are parsed (with their own small serde
//! types, so this crate does not depend on the simulator). The label is
//! `action`, the expert's clean answer, not `executed` (which carries the
//! injected noise when collecting with `--noise`).

use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vla_core::{Action, Instruction, PixelEncoding, RgbFrame};

use crate::data::{Dataset, DemoSource, Sample, AUX_DIM, AUX_UNIT_M};
use crate::error::{io_err, Result, VlaPolicyError};
use crate::image::to_model_rgb8;

/// Format tag of `dataset.json`.
pub const FORMAT: &str = "vla-sim-demonstrations";
/// Format version read here.
pub const VERSION: u32 = 1;
/// Marker file of this format.
pub const META: &str = "dataset.json";

#[derive(Deserialize)]
struct Meta {
    format: String,
    version: u32,
    width_px: u32,
    height_px: u32,
    encoding: String,
}

#[derive(Deserialize)]
struct TaskLine {
    instruction: String,
}

#[derive(Deserialize)]
struct OutcomeLine {
    task: TaskLine,
}

#[derive(Deserialize)]
struct EpisodeLine {
    index: usize,
    dir: String,
    outcome: OutcomeLine,
}

#[derive(Deserialize)]
struct JointsLine {
    names: Vec<String>,
    positions_rad: Vec<f64>,
}

#[derive(Deserialize)]
struct StepLine {
    action: Action,
    joints: JointsLine,
    tcp_xyz_m: [f64; 3],
    #[serde(default)]
    object_xyz_m: Option<[f64; 3]>,
    #[serde(default)]
    target_xyz_m: Option<[f64; 3]>,
    #[serde(default)]
    object_px: Option<[f64; 2]>,
    #[serde(default)]
    target_px: Option<[f64; 2]>,
    #[serde(default)]
    tcp_px: Option<[f64; 2]>,
}

/// Largest |object − gripper| per axis kept as an auxiliary target, in units
/// of [`AUX_UNIT_M`] (1 m: beyond the arm's reach).
const AUX_MAX_UNITS: f32 = 10.0;

impl StepLine {
    /// Object and target positions relative to the gripper, in [`AUX_UNIT_M`].
    fn aux(&self) -> ([f32; AUX_DIM], [f32; AUX_DIM]) {
        let (mut aux, mut mask) = ([0f32; AUX_DIM], [0f32; AUX_DIM]);
        for (k, p) in [self.object_xyz_m, self.target_xyz_m].iter().enumerate() {
            if let Some(p) = p {
                for axis in 0..3 {
                    let v = ((p[axis] - self.tcp_xyz_m[axis]) / AUX_UNIT_M) as f32;
                    // An object knocked off the table falls without end
                    // (DAgger rollouts do that): past 1 m it is no target.
                    if v.is_finite() && v.abs() <= AUX_MAX_UNITS {
                        aux[3 * k + axis] = v;
                        mask[3 * k + axis] = 1.0;
                    }
                }
            }
        }
        (aux, mask)
    }
}

fn json_err(path: &Path, line: usize, e: serde_json::Error) -> VlaPolicyError {
    VlaPolicyError::Json {
        path: path.to_path_buf(),
        message: format!("line {line}: {e}"),
    }
}

/// Lines of a JSON-lines file, parsed.
fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>> {
    let file = fs::File::open(path).map_err(io_err(path))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(path))?;
        if !line.trim().is_empty() {
            out.push(serde_json::from_str(&line).map_err(|e| json_err(path, i + 1, e))?);
        }
    }
    Ok(out)
}

/// A `vla collect` output folder.
#[derive(Debug, Clone)]
pub struct SimDataset(pub PathBuf);

impl DemoSource for SimDataset {
    fn load(&self, size_px: usize) -> Result<Dataset> {
        let meta_path = self.0.join(META);
        let text = fs::read_to_string(&meta_path).map_err(io_err(&meta_path))?;
        let meta: Meta = serde_json::from_str(&text).map_err(|e| json_err(&meta_path, 1, e))?;
        if meta.format != FORMAT || meta.version != VERSION {
            return Err(VlaPolicyError::Data(format!(
                "{}: format {} version {}, this build reads {FORMAT} version {VERSION}",
                meta_path.display(),
                meta.format,
                meta.version
            )));
        }
        if meta.encoding != "rgb8" {
            return Err(VlaPolicyError::Data(format!(
                "{}: encoding {}, expected rgb8",
                meta_path.display(),
                meta.encoding
            )));
        }
        let frame_bytes = meta.width_px as usize * meta.height_px as usize * 3;
        let episodes: Vec<EpisodeLine> = read_lines(&self.0.join("episodes.jsonl"))?;
        let mut samples = Vec::new();
        let mut state_names: Option<Vec<String>> = None;
        for ep in episodes {
            let dir = self.0.join(&ep.dir);
            let steps: Vec<StepLine> = read_lines(&dir.join("steps.jsonl"))?;
            let frames_path = dir.join("frames.rgb");
            let bytes = fs::read(&frames_path).map_err(io_err(&frames_path))?;
            if frame_bytes == 0 || bytes.len() != frame_bytes * steps.len() {
                return Err(VlaPolicyError::Data(format!(
                    "{}: {} bytes, expected {} steps × {}×{}×3",
                    frames_path.display(),
                    bytes.len(),
                    steps.len(),
                    meta.width_px,
                    meta.height_px
                )));
            }
            let instruction = Instruction::new(&ep.outcome.task.instruction)?;
            for (step, px) in steps.iter().zip(bytes.chunks_exact(frame_bytes)) {
                step.action.check_finite()?;
                let names = state_names.get_or_insert_with(|| step.joints.names.clone());
                if *names != step.joints.names || step.joints.positions_rad.len() != names.len() {
                    return Err(VlaPolicyError::Data(format!(
                        "{}: joint names or count differ between steps",
                        dir.display()
                    )));
                }
                let frame = RgbFrame::new(
                    meta.width_px,
                    meta.height_px,
                    PixelEncoding::Rgb8,
                    px.to_vec(),
                )?;
                let (aux, aux_mask) = step.aux();
                // Pixel positions scale with the resize to the model's size.
                let (su, sv) = (
                    size_px as f64 / f64::from(meta.width_px),
                    size_px as f64 / f64::from(meta.height_px),
                );
                let to_model =
                    |p: Option<[f64; 2]>| p.map(|[u, v]| [(u * su) as f32, (v * sv) as f32]);
                samples.push(Sample {
                    keypoint_px: [
                        to_model(step.object_px),
                        to_model(step.target_px),
                        to_model(step.tcp_px),
                    ],
                    aux,
                    aux_mask,
                    episode: ep.index,
                    rgb: to_model_rgb8(&frame, size_px)?,
                    instruction: instruction.clone(),
                    action: step.action,
                    state: step
                        .joints
                        .positions_rad
                        .iter()
                        .map(|&q| q as f32)
                        .collect(),
                });
            }
        }
        let data = Dataset {
            size_px,
            state_names: state_names.unwrap_or_default(),
            samples,
        };
        data.validate()?;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aux_targets_are_positions_relative_to_the_gripper() {
        let line: StepLine = serde_json::from_str(
            r#"{"action":{"translation_m":[0,0,0],"rotation_rad":[0,0,0],"gripper":0,"terminate":false},
                "joints":{"names":["a"],"positions_rad":[0.0]},
                "tcp_xyz_m":[0.5,0.0,1.0],"object_xyz_m":[0.6,-0.2,0.8]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let (aux, mask) = line.aux();
        let want = [1.0, -2.0, -2.0];
        for axis in 0..3 {
            assert!((aux[axis] - want[axis]).abs() < 1e-5, "{aux:?}");
        }
        assert_eq!(mask, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0], "no target object");
        // An object fallen off the table is no target.
        let fallen = StepLine {
            object_xyz_m: Some([0.6, -0.2, -40.0]),
            ..line
        };
        let (_, mask) = fallen.aux();
        assert_eq!(mask, [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}

//! Reader of the demonstrations `vla collect` writes (format
//! `vla-sim-demonstrations` version 1, documented in sim/README.md):
//!
//! ```text
//! DIR/dataset.json                 format, version, width_px, height_px, encoding, ...
//! DIR/episodes.jsonl               per episode: index, dir, steps, outcome.task.instruction, ...
//! DIR/episodes/000000/frames.rgb   steps × height × width × 3 bytes
//! DIR/episodes/000000/steps.jsonl  per step: action {translation_m, rotation_rad, gripper, terminate}, ...
//! DIR/episodes/000000/wrist.rgb    steps × wrist height × wrist width × 3 bytes (with dataset.json wrist_camera)
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

use crate::data::{Dataset, DemoSource, Sample, WristView, AUX_DIM, AUX_UNIT_M};
use crate::error::{io_err, Result, VlaPolicyError};
use crate::image::to_model_rgb8;
use crate::pixels::{map_file, MappedFile, Pixels};

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
    #[serde(default)]
    wrist_camera: Option<WristMeta>,
}

#[derive(Deserialize)]
struct WristMeta {
    width_px: u32,
    height_px: u32,
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
    /// What was sent to the arm (absent in files from before it).
    #[serde(default)]
    executed: Option<Action>,
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
    #[serde(default)]
    wrist_object_px: Option<[f64; 2]>,
    #[serde(default)]
    wrist_target_px: Option<[f64; 2]>,
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

/// One episode's `frames.rgb`: mapped (frames at the model's size) or read.
enum Frames {
    Mapped(std::sync::Arc<MappedFile>),
    Read(Vec<u8>),
}

impl Frames {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Mapped(file) => file.bytes(),
            Self::Read(bytes) => bytes,
        }
    }
}

/// A `vla collect` output folder.
#[derive(Debug, Clone)]
pub struct SimDataset(pub PathBuf);

/// One episode's joint names (`None`: no steps) and samples.
type EpisodeSamples = (Option<Vec<String>>, Vec<Sample>);

/// Most threads [`DemoSource::load`] reads one folder with.
const LOAD_THREADS_MAX: usize = 4;

impl SimDataset {
    /// One episode's samples and the names of its joints.
    fn load_episode(
        &self,
        ep: &EpisodeLine,
        meta: &Meta,
        size_px: usize,
    ) -> Result<EpisodeSamples> {
        let frame_bytes = meta.width_px as usize * meta.height_px as usize * 3;
        let dir = self.0.join(&ep.dir);
        let steps: Vec<StepLine> = read_lines(&dir.join("steps.jsonl"))?;
        let frames_path = dir.join("frames.rgb");
        // Frames already at the model's size are viewed in the mapped file
        // (crate::pixels); others are read and resized.
        let in_place = meta.width_px as usize == size_px && meta.height_px as usize == size_px;
        let frames = if in_place && !steps.is_empty() {
            Frames::Mapped(map_file(&frames_path)?)
        } else {
            Frames::Read(fs::read(&frames_path).map_err(io_err(&frames_path))?)
        };
        let bytes = frames.bytes();
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
        // The wrist frames, resized to squares of the camera's width.
        let wrist = match &meta.wrist_camera {
            Some(w) => {
                let bytes_per = w.width_px as usize * w.height_px as usize * 3;
                let path = dir.join("wrist.rgb");
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                if bytes_per == 0 || bytes.len() != bytes_per * steps.len() {
                    return Err(VlaPolicyError::Data(format!(
                        "{}: {} bytes, expected {} steps × {}×{}×3",
                        path.display(),
                        bytes.len(),
                        steps.len(),
                        w.width_px,
                        w.height_px
                    )));
                }
                Some((w, bytes, bytes_per))
            }
            None => None,
        };
        let instruction = Instruction::new(&ep.outcome.task.instruction)?;
        let mut names: Option<Vec<String>> = None;
        let mut samples = Vec::with_capacity(steps.len());
        for (k, (step, px)) in steps
            .iter()
            .zip(bytes.chunks_exact(frame_bytes))
            .enumerate()
        {
            step.action.check_finite()?;
            let names = names.get_or_insert_with(|| step.joints.names.clone());
            if *names != step.joints.names || step.joints.positions_rad.len() != names.len() {
                return Err(VlaPolicyError::Data(format!(
                    "{}: joint names or count differ between steps",
                    dir.display()
                )));
            }
            let rgb: Pixels = match &frames {
                Frames::Mapped(file) => Pixels::mapped(file, k * frame_bytes, frame_bytes)
                    .ok_or_else(|| {
                        VlaPolicyError::Data(format!("{}: frame {k}", frames_path.display()))
                    })?,
                Frames::Read(_) => {
                    let frame = RgbFrame::new(
                        meta.width_px,
                        meta.height_px,
                        PixelEncoding::Rgb8,
                        px.to_vec(),
                    )?;
                    to_model_rgb8(&frame, size_px)?.into()
                }
            };
            let (aux, aux_mask) = step.aux();
            // Pixel positions scale with the resize to the model's size.
            let (su, sv) = (
                size_px as f64 / f64::from(meta.width_px),
                size_px as f64 / f64::from(meta.height_px),
            );
            let to_model = |p: Option<[f64; 2]>| p.map(|[u, v]| [(u * su) as f32, (v * sv) as f32]);
            let wrist = match &wrist {
                Some((w, bytes, per)) => {
                    let side = w.width_px as usize;
                    let frame = RgbFrame::new(
                        w.width_px,
                        w.height_px,
                        PixelEncoding::Rgb8,
                        bytes[k * per..(k + 1) * per].to_vec(),
                    )?;
                    let (su, sv) = (
                        side as f64 / f64::from(w.width_px),
                        side as f64 / f64::from(w.height_px),
                    );
                    let scale =
                        |p: Option<[f64; 2]>| p.map(|[u, v]| [(u * su) as f32, (v * sv) as f32]);
                    Some(Box::new(WristView {
                        side_px: side,
                        rgb: to_model_rgb8(&frame, side)?,
                        keypoint_px: [scale(step.wrist_object_px), scale(step.wrist_target_px)],
                    }))
                }
                None => None,
            };
            samples.push(Sample {
                wrist,
                keypoint_px: [
                    to_model(step.object_px),
                    to_model(step.target_px),
                    to_model(step.tcp_px),
                ],
                aux,
                aux_mask,
                episode: ep.index,
                rgb,
                instruction: instruction.clone(),
                action: step.action,
                // The episode's previous step as it was executed (the first
                // recorded step of an --after-lift rollout has none recorded).
                prev_action: k
                    .checked_sub(1)
                    .and_then(|j| steps[j].executed)
                    .filter(|a| a.check_finite().is_ok()),
                state: step
                    .joints
                    .positions_rad
                    .iter()
                    .map(|&q| q as f32)
                    .collect(),
            });
        }
        Ok((names, samples))
    }
}

impl DemoSource for SimDataset {
    fn load(&self, size_px: usize) -> Result<Dataset> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.load_with_threads(size_px, threads.min(LOAD_THREADS_MAX))
    }
}

impl SimDataset {
    /// [`DemoSource::load`] on `threads` threads (at least one): each
    /// reads a contiguous run of episodes and the runs are joined in order,
    /// so the data set does not depend on the number.
    pub fn load_with_threads(&self, size_px: usize, threads: usize) -> Result<Dataset> {
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
        let episodes: Vec<EpisodeLine> = read_lines(&self.0.join("episodes.jsonl"))?;
        let threads = threads.clamp(1, episodes.len().max(1));
        let per = episodes.len().div_ceil(threads).max(1);
        let parts: Vec<Result<Vec<EpisodeSamples>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = episodes
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(|| {
                        chunk
                            .iter()
                            .map(|ep| self.load_episode(ep, &meta, size_px))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(VlaPolicyError::Data("a loading thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut samples = Vec::new();
        let mut state_names: Option<Vec<String>> = None;
        for part in parts {
            for (names, episode) in part? {
                let Some(names) = names else { continue };
                let known = state_names.get_or_insert_with(|| names.clone());
                if *known != names {
                    return Err(VlaPolicyError::Data(format!(
                        "{}: joint names differ between episodes",
                        self.0.display()
                    )));
                }
                samples.extend(episode);
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

    /// A folder in the `vla collect` format: `episodes` episodes of
    /// `1 + index % 3` steps (one of none), 4×4 frames.
    fn write_folder(dir: &Path, episodes: usize) {
        fs::write(
            dir.join(META),
            r#"{"format":"vla-sim-demonstrations","version":1,"width_px":4,"height_px":4,"encoding":"rgb8"}"#,
        )
        .unwrap();
        let mut index = String::new();
        for e in 0..episodes {
            let steps = if e == 2 { 0 } else { 1 + e % 3 };
            let sub = format!("episodes/{e:06}");
            fs::create_dir_all(dir.join(&sub)).unwrap();
            index.push_str(&format!(
                "{{\"index\":{e},\"dir\":\"{sub}\",\"outcome\":{{\"task\":{{\"instruction\":\"pick up the red cube\"}}}}}}\n"
            ));
            let mut lines = String::new();
            let mut frames = Vec::new();
            for k in 0..steps {
                let v = (e * 10 + k) as f64 * 1e-3;
                // Odd episodes record what was executed (z = v, closed), even
                // ones are in the format from before it.
                let executed = if e % 2 == 1 {
                    format!(",\"executed\":{{\"translation_m\":[0,0,{v}],\"rotation_rad\":[0,0,0],\"gripper\":1,\"terminate\":false}}")
                } else {
                    String::new()
                };
                lines.push_str(&format!(
                    "{{\"action\":{{\"translation_m\":[{v},0,0],\"rotation_rad\":[0,0,0],\"gripper\":0,\"terminate\":false}}{executed},\"joints\":{{\"names\":[\"a\",\"b\"],\"positions_rad\":[{v},1]}},\"tcp_xyz_m\":[0,0,{v}],\"object_px\":[1,{v}]}}\n"
                ));
                frames.extend(std::iter::repeat_n((e * 10 + k) as u8, 4 * 4 * 3));
            }
            fs::write(dir.join(&sub).join("steps.jsonl"), lines).unwrap();
            fs::write(dir.join(&sub).join("frames.rgb"), frames).unwrap();
        }
        fs::write(dir.join("episodes.jsonl"), index).unwrap();
    }

    #[test]
    fn threads_read_the_same_data_set_in_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 7);
        let folder = SimDataset(dir.path().to_path_buf());
        let one = folder.load_with_threads(4, 1).unwrap();
        assert_eq!(one.samples.len(), 1 + 2 + 1 + 2 + 3 + 1);
        assert_eq!(one.state_names, ["a", "b"]);
        for threads in [2, 3, 7, 20] {
            let many = folder.load_with_threads(4, threads).unwrap();
            assert_eq!(many.state_names, one.state_names);
            assert_eq!(many.samples.len(), one.samples.len(), "{threads} threads");
            for (a, b) in one.samples.iter().zip(&many.samples) {
                assert_eq!(a.episode, b.episode);
                assert_eq!(a.rgb, b.rgb);
                assert_eq!(a.action, b.action);
                assert_eq!(a.state, b.state);
                assert_eq!(a.keypoint_px, b.keypoint_px);
            }
        }
        // A broken episode is an error whichever thread reads it.
        fs::write(dir.path().join("episodes/000005/frames.rgb"), [0u8; 5]).unwrap();
        for threads in [1, 3] {
            let err = folder
                .load_with_threads(4, threads)
                .unwrap_err()
                .to_string();
            assert!(err.contains("000005"), "{err}");
        }
    }

    #[test]
    fn frames_at_the_model_size_are_mapped_others_are_resized_copies() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 4);
        let folder = SimDataset(dir.path().to_path_buf());
        let (mapped, resized) = (folder.load(4).unwrap(), folder.load(2).unwrap());
        assert_eq!(mapped.samples.len(), 1 + 2 + 1);
        assert_eq!(resized.samples.len(), mapped.samples.len());
        // Episode e's step k is filled with e * 10 + k (episode 2 has none).
        let want = [(0usize, 0usize), (1, 0), (1, 1), (3, 0)];
        for ((m, r), (e, k)) in mapped.samples.iter().zip(&resized.samples).zip(want) {
            assert!(m.rgb.is_mapped() && !r.rgb.is_mapped());
            assert_eq!(m.rgb, vec![(e * 10 + k) as u8; 4 * 4 * 3]);
            assert_eq!(r.rgb, vec![(e * 10 + k) as u8; 2 * 2 * 3]);
        }
    }

    #[test]
    fn wrist_frames_and_their_object_pixels_load_with_each_step() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 2);
        // Declare a 2×2 wrist camera and give each step a frame and the
        // goal object's pixel in it.
        fs::write(
            dir.path().join(META),
            r#"{"format":"vla-sim-demonstrations","version":1,"width_px":4,"height_px":4,"encoding":"rgb8","wrist_camera":{"width_px":2,"height_px":2}}"#,
        )
        .unwrap();
        let folder = SimDataset(dir.path().to_path_buf());
        let err = folder.load_with_threads(4, 1).unwrap_err().to_string();
        assert!(err.contains("wrist.rgb"), "{err}");
        for (e, steps) in [(0usize, 1usize), (1, 2)] {
            let sub = dir.path().join(format!("episodes/{e:06}"));
            let wrist: Vec<u8> = (0..steps * 2 * 2 * 3)
                .map(|i| (e * 100 + i) as u8)
                .collect();
            fs::write(sub.join("wrist.rgb"), wrist).unwrap();
            let lines = fs::read_to_string(sub.join("steps.jsonl")).unwrap();
            let lines: String = lines
                .lines()
                .map(|l| format!("{},\"wrist_object_px\":[0.5,1.0]}}\n", &l[..l.len() - 1]))
                .collect();
            fs::write(sub.join("steps.jsonl"), lines).unwrap();
        }
        let data = folder.load_with_threads(4, 2).unwrap();
        assert_eq!(data.samples.len(), 3);
        let w = data.samples[2].wrist.as_ref().unwrap();
        assert_eq!(w.side_px, 2);
        assert_eq!(w.rgb, (112..124).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!(w.keypoint_px, [Some([0.5, 1.0]), None]);
        // A short wrist file is an error naming it.
        fs::write(dir.path().join("episodes/000001/wrist.rgb"), [0u8; 5]).unwrap();
        let err = folder.load_with_threads(4, 1).unwrap_err().to_string();
        assert!(err.contains("000001") && err.contains("wrist.rgb"), "{err}");
    }

    #[test]
    fn each_sample_carries_the_action_executed_on_the_step_before() {
        let dir = tempfile::tempdir().unwrap();
        write_folder(dir.path(), 6);
        let data = SimDataset(dir.path().to_path_buf()).load(4).unwrap();
        let prev_z = |episode: usize| -> Vec<Option<f64>> {
            data.samples
                .iter()
                .filter(|s| s.episode == episode)
                .map(|s| s.prev_action.map(|a| a.translation_m[2]))
                .collect()
        };
        // Episode 5 (3 steps, executed recorded): nothing before the first step.
        assert_eq!(prev_z(5), [None, Some(0.050), Some(0.051)]);
        assert!(data
            .samples
            .iter()
            .filter(|s| s.episode == 5)
            .skip(1)
            .all(|s| s.prev_action.unwrap().gripper == 1.0));
        // Episode 4 (2 steps, an older file without `executed`): none.
        assert_eq!(prev_z(4), [None, None]);
    }

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

//! Demonstration data as the trainer sees it, and where it comes from.
//!
//! A [`Dataset`] is a list of [`Sample`]s (one frame, its instruction, the
//! expert's action, the episode it belongs to), with frames already resized
//! to the model's input size so that training never resizes. Sources
//! implement [`DemoSource`]: a folder in the raw-frames format of
//! [`crate::sim_data`] (what `vla collect` writes), a folder in the plain
//! raw-frames format of [`demo_dir`], and a generated toy task
//! ([`synthetic`]) used by tests and smoke runs. [`load_dir`] picks the
//! format of a folder.

use vla_core::{Action, Instruction};

use crate::error::{Result, VlaPolicyError};
use crate::pixels::Pixels;

/// One training example.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Episode index (train/validation splits are by episode).
    pub episode: usize,
    /// RGB8 pixels, `size × size × 3`, row-major (owned, or viewed in a
    /// mapped `frames.rgb`, see [`crate::pixels`]).
    pub rgb: Pixels,
    /// The task text.
    pub instruction: Instruction,
    /// The expert's action for this frame.
    pub action: Action,
    /// The action executed on the step before this frame in the same
    /// episode, where the source recorded it ([`crate::prev_action`]).
    pub prev_action: Option<Action>,
    /// Measured joint positions when the frame was taken, in the order of
    /// [`Dataset::state_names`] (empty when the source has none).
    pub state: Vec<f32>,
    /// Auxiliary training target (privileged simulator state, never a model
    /// input): the goal object's and the target object's position relative
    /// to the gripper, world axes, in units of [`AUX_UNIT_M`].
    pub aux: [f32; AUX_DIM],
    /// 1 where `aux` is known, 0 where not (no target object, or a source
    /// without positions).
    pub aux_mask: [f32; AUX_DIM],
    /// Pixel `(u, v)` in `rgb` (at `size_px`), where known, of the goal
    /// object, the target object and the gripper's TCP: training targets of
    /// the first [`KEYPOINT_TARGETS`] spatial-softmax keypoints.
    pub keypoint_px: [Option<[f32; 2]>; KEYPOINT_TARGETS],
    /// The wrist camera's view, for sources that recorded one.
    pub wrist: Option<Box<WristView>>,
}

/// One step's wrist-camera frame ([`Sample::wrist`]).
#[derive(Debug, Clone, PartialEq)]
pub struct WristView {
    /// Side of the square frame, pixels (resized from the camera's).
    pub side_px: usize,
    /// RGB8 pixels, `side × side × 3`, row-major.
    pub rgb: Vec<u8>,
    /// Pixel `(u, v)` (at `side_px`), where in view, of the goal object and
    /// the target object: training targets of the wrist branch's first two
    /// keypoints.
    pub keypoint_px: [Option<[f32; 2]>; 2],
}

/// Keypoints with a training target: goal object, target object, TCP.
pub const KEYPOINT_TARGETS: usize = 3;

/// Values in [`Sample::aux`]: object − gripper (x, y, z), target − gripper (x, y, z).
pub const AUX_DIM: usize = 6;

/// Length unit of [`Sample::aux`], metres (10 cm keeps the values near 1).
pub const AUX_UNIT_M: f64 = 0.1;

/// Samples that share one image size.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Side of every image, pixels.
    pub size_px: usize,
    /// Names of the joints in every sample's `state` (empty: no joint states).
    pub state_names: Vec<String>,
    /// The samples, grouped by episode.
    pub samples: Vec<Sample>,
}

impl Dataset {
    /// Checks the image sizes; errors if empty.
    pub fn validate(&self) -> Result<()> {
        if self.samples.is_empty() {
            return Err(VlaPolicyError::Data("no samples".into()));
        }
        let want = self.size_px * self.size_px * 3;
        for (i, s) in self.samples.iter().enumerate() {
            if s.rgb.len() != want {
                return Err(VlaPolicyError::Data(format!(
                    "sample {i}: {} bytes of pixels, expected {want}",
                    s.rgb.len()
                )));
            }
            s.action.check_finite()?;
            if s.state.len() != self.state_names.len() || s.state.iter().any(|v| !v.is_finite()) {
                return Err(VlaPolicyError::Data(format!(
                    "sample {i}: {} joint positions (finite?), expected {}",
                    s.state.len(),
                    self.state_names.len()
                )));
            }
        }
        Ok(())
    }

    /// Number of distinct episodes.
    pub fn episodes(&self) -> usize {
        let mut ids: Vec<usize> = self.samples.iter().map(|s| s.episode).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// Anything that can produce a data set at a given image size.
pub trait DemoSource {
    /// Loads every sample, frames resized to `size_px`.
    fn load(&self, size_px: usize) -> Result<Dataset>;
}

/// Loads the demonstrations in `dir`, frames resized to `size_px`: a
/// `vla collect` folder (it has `dataset.json`, see [`crate::sim_data`]) or
/// the plain format of [`demo_dir`].
pub fn load_dir(dir: &std::path::Path, size_px: usize) -> Result<Dataset> {
    if dir.join(crate::sim_data::META).is_file() {
        crate::sim_data::SimDataset(dir.to_path_buf()).load(size_px)
    } else {
        demo_dir::DemoDir(dir.to_path_buf()).load(size_px)
    }
}

/// Loads several folders ([`load_dir`] each) into one data set; episode
/// numbers are renumbered so that they stay distinct. All folders must
/// record the same joints (or none).
pub fn load_dirs(dirs: &[std::path::PathBuf], size_px: usize) -> Result<Dataset> {
    Ok(load_dirs_counted(dirs, size_px)?.0)
}

/// [`load_dirs`], also returning how many samples each folder gave (in
/// order: folder `i`'s samples follow folder `i - 1`'s).
pub fn load_dirs_counted(
    dirs: &[std::path::PathBuf],
    size_px: usize,
) -> Result<(Dataset, Vec<usize>)> {
    let mut counts = Vec::with_capacity(dirs.len());
    let mut all = Dataset {
        size_px,
        ..Dataset::default()
    };
    for (i, dir) in dirs.iter().enumerate() {
        let part = load_dir(dir, size_px)?;
        if i == 0 {
            all.state_names = part.state_names.clone();
        } else if part.state_names != all.state_names {
            return Err(VlaPolicyError::Data(format!(
                "{} records joints {:?}, {} records {:?}",
                dir.display(),
                part.state_names,
                dirs[0].display(),
                all.state_names
            )));
        }
        let offset = all.samples.iter().map(|s| s.episode + 1).max().unwrap_or(0);
        counts.push(part.samples.len());
        all.samples.extend(part.samples.into_iter().map(|mut s| {
            s.episode += offset;
            s
        }));
    }
    Ok((all, counts))
}

pub mod demo_dir {
    //! A plain on-disk format for demonstrations, readable without any
    //! image codec:
    //!
    //! ```text
    //! DIR/episodes.jsonl          one JSON object per line, one line per episode:
    //!   {"instruction": "put the red cube in the green bowl",
    //!    "width_px": 128, "height_px": 128,
    //!    "frames": "frames/000000.rgb",
    //!    "actions": [[dx_m, dy_m, dz_m, droll_rad, dpitch_rad, dyaw_rad, gripper, terminate], ...]}
    //! DIR/frames/000000.rgb       the episode's frames, RGB8, row-major, top row first,
    //!                             concatenated: len(actions) × height × width × 3 bytes
    //! ```
    //!
    //! `terminate` is 0 or 1. Frame `i` is what the camera saw when the
    //! expert chose `actions[i]`.

    use std::fs;
    use std::io::{BufRead, Write};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Serialize};
    use vla_core::{Action, Instruction, PixelEncoding, RgbFrame};

    use super::{Dataset, DemoSource, Sample};
    use crate::error::{io_err, Result, VlaPolicyError};
    use crate::image::to_model_rgb8;

    /// Index file name.
    pub const INDEX: &str = "episodes.jsonl";

    /// One line of the index.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct EpisodeRecord {
        /// Task text.
        pub instruction: String,
        /// Frame width, pixels.
        pub width_px: u32,
        /// Frame height, pixels.
        pub height_px: u32,
        /// Frames file, relative to the folder.
        pub frames: String,
        /// One action per frame: 7 continuous values then terminate (0/1).
        pub actions: Vec<[f64; 8]>,
    }

    /// A folder in this format.
    #[derive(Debug, Clone)]
    pub struct DemoDir(pub PathBuf);

    impl DemoSource for DemoDir {
        fn load(&self, size_px: usize) -> Result<Dataset> {
            let index = self.0.join(INDEX);
            let file = fs::File::open(&index).map_err(io_err(&index))?;
            let mut samples = Vec::new();
            for (episode, line) in std::io::BufReader::new(file).lines().enumerate() {
                let line = line.map_err(io_err(&index))?;
                if line.trim().is_empty() {
                    continue;
                }
                let rec: EpisodeRecord =
                    serde_json::from_str(&line).map_err(|e| VlaPolicyError::Json {
                        path: index.clone(),
                        message: format!("line {}: {e}", episode + 1),
                    })?;
                let instruction = Instruction::new(&rec.instruction)?;
                let frames_path = self.0.join(&rec.frames);
                let bytes = fs::read(&frames_path).map_err(io_err(&frames_path))?;
                let frame_bytes = rec.width_px as usize * rec.height_px as usize * 3;
                if frame_bytes == 0 || bytes.len() != frame_bytes * rec.actions.len() {
                    return Err(VlaPolicyError::Data(format!(
                        "{}: {} bytes, expected {} actions × {}×{}×3",
                        frames_path.display(),
                        bytes.len(),
                        rec.actions.len(),
                        rec.width_px,
                        rec.height_px
                    )));
                }
                // Recorded demonstrations executed their actions: each
                // step's is the next one's previous action.
                let mut prev_action = None;
                for (a, px) in rec.actions.iter().zip(bytes.chunks_exact(frame_bytes)) {
                    let frame = RgbFrame::new(
                        rec.width_px,
                        rec.height_px,
                        PixelEncoding::Rgb8,
                        px.to_vec(),
                    )?;
                    let v = [a[0], a[1], a[2], a[3], a[4], a[5], a[6]];
                    let action = Action::from_continuous(v, a[7] >= 0.5);
                    action.check_finite()?;
                    samples.push(Sample {
                        prev_action: prev_action.replace(action),
                        episode,
                        rgb: to_model_rgb8(&frame, size_px)?.into(),
                        instruction: instruction.clone(),
                        action,
                        state: Vec::new(),
                        aux: [0.0; crate::data::AUX_DIM],
                        aux_mask: [0.0; crate::data::AUX_DIM],
                        keypoint_px: [None; crate::data::KEYPOINT_TARGETS],
                        wrist: None,
                    });
                }
            }
            let data = Dataset {
                size_px,
                state_names: Vec::new(),
                samples,
            };
            data.validate()?;
            Ok(data)
        }
    }

    /// Writes `data` to `dir` in this format (frames at `data.size_px`).
    pub fn write(dir: &Path, data: &Dataset) -> Result<()> {
        let frames_dir = dir.join("frames");
        fs::create_dir_all(&frames_dir).map_err(io_err(&frames_dir))?;
        let index = dir.join(INDEX);
        let mut out = fs::File::create(&index).map_err(io_err(&index))?;
        let mut start = 0;
        while start < data.samples.len() {
            let ep = data.samples[start].episode;
            let end = data.samples[start..]
                .iter()
                .position(|s| s.episode != ep)
                .map_or(data.samples.len(), |n| start + n);
            let group = &data.samples[start..end];
            let rel = format!("frames/{ep:06}.rgb");
            let bytes: Vec<u8> = group.iter().flat_map(|s| s.rgb.iter().copied()).collect();
            let path = dir.join(&rel);
            fs::write(&path, bytes).map_err(io_err(&path))?;
            let rec = EpisodeRecord {
                instruction: group[0].instruction.as_str().to_string(),
                width_px: data.size_px as u32,
                height_px: data.size_px as u32,
                frames: rel,
                actions: group
                    .iter()
                    .map(|s| {
                        let c = s.action.to_continuous();
                        [
                            c[0],
                            c[1],
                            c[2],
                            c[3],
                            c[4],
                            c[5],
                            c[6],
                            f64::from(u8::from(s.action.terminate)),
                        ]
                    })
                    .collect(),
            };
            let line = serde_json::to_string(&rec).map_err(|e| VlaPolicyError::Json {
                path: index.clone(),
                message: e.to_string(),
            })?;
            writeln!(out, "{line}").map_err(io_err(&index))?;
            start = end;
        }
        Ok(())
    }
}

pub mod synthetic {
    //! A generated toy task that needs both vision and language: two
    //! coloured squares on a grey table; the instruction names one colour and
    //! the expert moves toward that square (Δx, Δy from its pixel offset to
    //! the image centre), closes the gripper when it is centred and
    //! terminates one step later. The squares' pixels are the keypoint
    //! targets (named square first).

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use vla_core::{Action, Instruction};

    use super::{Dataset, DemoSource, Sample};
    use crate::error::Result;

    const COLOURS: [(&str, [u8; 3]); 3] = [
        ("red", [220, 30, 30]),
        ("green", [30, 200, 40]),
        ("blue", [40, 60, 220]),
    ];
    const PHRASES: [&str; 2] = ["move to the {} square", "go to the {} block"];

    /// The toy task's parameters.
    #[derive(Debug, Clone, Copy)]
    pub struct Synthetic {
        /// Episodes to generate.
        pub episodes: usize,
        /// Steps per episode.
        pub steps: usize,
        /// Random seed.
        pub seed: u64,
    }

    impl DemoSource for Synthetic {
        fn load(&self, size_px: usize) -> Result<Dataset> {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            let mut samples = Vec::new();
            let s = size_px as f64;
            let half = (size_px / 8).max(1) as i64;
            for episode in 0..self.episodes {
                let target = rng.gen_range(0..COLOURS.len());
                let other = (target + rng.gen_range(1..COLOURS.len())) % COLOURS.len();
                let phrase = PHRASES[rng.gen_range(0..PHRASES.len())];
                let instruction = Instruction::new(&phrase.replace("{}", COLOURS[target].0))?;
                let mut pos = [rng.gen_range(0.15..0.85) * s, rng.gen_range(0.15..0.85) * s];
                let mut distractor = [rng.gen_range(0.1..0.9) * s, rng.gen_range(0.1..0.9) * s];
                // The toy expert's actions are executed as they are.
                let mut prev_action = None;
                for _ in 0..self.steps {
                    let mut rgb = vec![128u8; size_px * size_px * 3];
                    for (centre, colour) in
                        [(distractor, COLOURS[other].1), (pos, COLOURS[target].1)]
                    {
                        paint_square(&mut rgb, size_px, centre, half, colour);
                    }
                    // Offset of the target from the image centre, metres at 1 px = 1 mm.
                    let off = [(pos[0] - s / 2.0) * 1e-3, (pos[1] - s / 2.0) * 1e-3];
                    let step = [(-off[0]).clamp(-0.01, 0.01), (-off[1]).clamp(-0.01, 0.01)];
                    let centred = off[0].abs() < 2e-3 && off[1].abs() < 2e-3;
                    let action = Action::new(
                        [step[0], step[1], 0.0],
                        [0.0; 3],
                        if centred { 1.0 } else { 0.0 },
                        false,
                    );
                    samples.push(Sample {
                        prev_action: prev_action.replace(action),
                        episode,
                        rgb: rgb.into(),
                        instruction: instruction.clone(),
                        action,
                        state: Vec::new(),
                        aux: [0.0; crate::data::AUX_DIM],
                        aux_mask: [0.0; crate::data::AUX_DIM],
                        // The named square is the goal object, the other one
                        // the keypoint-1 target (pixel centres at integers).
                        keypoint_px: [
                            Some([(pos[0] - 0.5) as f32, (pos[1] - 0.5) as f32]),
                            Some([(distractor[0] - 0.5) as f32, (distractor[1] - 0.5) as f32]),
                            None,
                        ],
                        wrist: None,
                    });
                    // The camera moves with the arm: the scene shifts against the action.
                    for p in [&mut pos, &mut distractor] {
                        p[0] += step[0] * 1e3;
                        p[1] += step[1] * 1e3;
                    }
                }
                if let Some(last) = samples.last_mut() {
                    last.action.terminate = true;
                }
            }
            Ok(Dataset {
                size_px,
                state_names: Vec::new(),
                samples,
            })
        }
    }

    fn paint_square(rgb: &mut [u8], size: usize, centre: [f64; 2], half: i64, colour: [u8; 3]) {
        let (cx, cy) = (centre[0].round() as i64, centre[1].round() as i64);
        for y in (cy - half).max(0)..(cy + half).min(size as i64) {
            for x in (cx - half).max(0)..(cx + half).min(size as i64) {
                let p = (y as usize * size + x as usize) * 3;
                rgb[p..p + 3].copy_from_slice(&colour);
            }
        }
    }
}

//! Behaviour cloning: teacher-forced cross-entropy over the 8 action tokens.
//!
//! [`train`] splits the data by episode into training and validation sets,
//! computes OpenVLA-style quantile bounds (1st/99th percentile) from the
//! training actions, encodes each distinct instruction once with MiniLM, and
//! runs AdamW with warm-up and cosine decay on augmented batches. Every
//! `val_every` steps it measures validation loss and token accuracy; every
//! `checkpoint_every` steps and at the end it writes the policy folder
//! (`config.json`, `model.safetensors`) plus the optimiser state
//! (`optimizer.safetensors`, `train_state.json`). Running again with the same
//! output folder resumes from the saved step. Batches are drawn from a
//! generator seeded by `(seed, step)`, so a resumed run draws the same
//! batches an uninterrupted one would.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use vla_core::tokenizer::{ActionBounds, ActionTokenizer};
use vla_core::{Action, Instruction, TOKENS_PER_STEP};

use crate::checkpoint::{self, PolicyConfig, StateSpec, TrainingInfo};
use crate::data::{Dataset, AUX_DIM, KEYPOINT_TARGETS};
use crate::decoding::Decoding;
use crate::error::{io_err, Result, VlaPolicyError};
use crate::image::{write_chw, Augment};
use crate::model::{ModelConfig, VlaModel};
use crate::optim::{lr_at, AdamW, AdamWConfig};
use crate::text::{TextEncoder, TEXT_HIDDEN};

/// Optimiser state file in the output folder.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Training progress file in the output folder.
pub const STATE_FILE: &str = "train_state.json";

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Total optimiser steps.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Random seed (initialisation, split, batches, augmentation).
    pub seed: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps.
    pub warmup_steps: usize,
    /// Final learning rate as a fraction of the peak.
    pub final_lr_ratio: f64,
    /// AdamW settings.
    pub adamw: AdamWConfig,
    /// Measure validation every this many steps (0 = only at the end).
    pub val_every: usize,
    /// Save a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: usize,
    /// Fraction of episodes held out for validation.
    pub val_fraction: f64,
    /// Score at most this many of the held-out frames per validation pass,
    /// evenly spaced through them (0 = all). The held-out episodes stay out
    /// of training either way, and validation draws no random numbers, so
    /// this changes the time and the reported figures, never the weights.
    pub val_max_frames: usize,
    /// Run validation passes at all (false: none, not even at the end; the
    /// weights are the same either way, only the time and the reported
    /// validation figures change).
    pub validate: bool,
    /// Augmentation, or none.
    pub augment: Option<Augment>,
    /// Network shape (ignored when resuming: the saved one is used).
    pub model: ModelConfig,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Stop (with a checkpoint) after this step, as if interrupted; a later
    /// run with the same options continues from there.
    pub stop_at: Option<usize>,
    /// Feed the measured joint positions to the model when the data has them.
    pub use_state: bool,
    /// Weight of the auxiliary loss (object positions relative to the
    /// gripper, for models with `aux_outputs > 0` and data that has them).
    pub aux_weight: f64,
    /// Weight of the keypoint loss: cross-entropy of the first keypoints'
    /// distributions over the map against the cells where the goal object,
    /// the target object and the TCP are (data from `vla collect` has their
    /// pixels).
    pub keypoint_weight: f64,
    /// How many of those keypoints are supervised, in that order (at most
    /// [`KEYPOINT_TARGETS`]; 2 = objects only, as before the TCP was recorded).
    pub keypoint_targets: usize,
    /// Bilinear targets over the four cells around each pixel (sub-cell
    /// precision); `false`: one-hot on the pixel's cell.
    pub keypoint_bilinear: bool,
    /// Decoding rule written into the policy's `config.json`.
    pub decoding: Decoding,
    /// Inference-time keypoint window written into the policy's
    /// `config.json` ([`crate::keypoint_window`]; training ignores it).
    pub keypoint_window: Option<crate::keypoint_window::KeypointWindow>,
    /// Also apply `keypoint_window` to the keypoints the network reads in
    /// training (the keypoint loss still sees the whole map's logits).
    pub keypoint_window_in_training: bool,
    /// Warm start (fresh runs only): a policy folder whose action tokenizer
    /// and joint-state normalisation are reused (the joint input is dropped
    /// when `use_state` is false) and whose tensors are copied wherever
    /// name and shape match; the rest starts fresh.
    pub init_from: Option<std::path::PathBuf>,
    /// Standard deviation, in bins, of Gaussian soft targets for the six
    /// end-effector deltas (positions 1–6; the bins are ordinal, so a
    /// neighbour of the label is nearly as right as the label); 0 trains
    /// on one-hot targets. Terminate and gripper stay one-hot.
    pub label_sigma_bins: f64,
    /// Feed the TCP position (forward kinematics of the data's joint
    /// states through this chain, [`crate::tcp`]) as one more encoder token;
    /// the URDF is copied into the policy folder. A warm start from a
    /// policy with the input keeps it when this is `None`.
    pub tcp: Option<crate::tcp::TcpSource>,
    /// Read only these of the data's joints (e.g. the arm without the
    /// fingers, whose position gives away the last gripper command); `None`:
    /// all of them (or the initial policy's, on a warm start).
    pub state_joints: Option<Vec<String>>,
    /// The camera of the hand crop ([`crate::crop`]), required when
    /// `model.crop` is set (a fresh run or a warm start; a resumed run keeps
    /// its checkpoint's). The crop needs the TCP input (`tcp`).
    pub crop_camera: Option<crate::crop::CropCamera>,
    /// Training-time jitter of the crop's centre, ± pixels per axis (the
    /// hand–eye calibration of a real camera is never exact); with
    /// [`Self::wrist`], the random shift of the wrist frame.
    pub crop_jitter_px: i32,
    /// The `model.crop` branch reads the wrist camera's frames (the data's
    /// `wrist.rgb`, [`crate::data::WristView`]) instead of a window of the
    /// scene camera's; no `crop_camera` then. Every sample needs a wrist
    /// frame of the branch's `side_px`.
    pub wrist: bool,
    /// Add table-plane offsets ([`crate::table_plane`]) computed for this
    /// camera (in the TCP chain's base frame; needs `tcp` or a warm start
    /// with the TCP input). A warm start from a policy with them keeps
    /// them when this is `None`; `model.table_plane` is filled in by
    /// training.
    pub table_plane_camera: Option<crate::crop::CropCamera>,
    /// Add the fine table-plane offsets at this scale, metres
    /// ([`crate::table_plane`]; needs the table-plane offsets). A warm
    /// start keeps the initial policy's scale when this is `None`.
    pub table_plane_fine_m: Option<f64>,
    /// Add the held offsets ([`crate::table_plane`]: the goal keypoint on
    /// the TCP's plane; needs the fine offsets). A warm start keeps them.
    pub table_plane_held: bool,
    /// Train only the camera stem and its keypoint head, on the keypoint
    /// loss (no transformer, no action tokens, no validation): a
    /// localisation pre-training stage that a later run continues with
    /// [`Self::init_from`]. The log's `train_loss` is then the keypoint loss.
    pub perception_only: bool,
    /// Threads per step ([`crate::parallel`]): each computes the gradient
    /// of an equal share of the batch and the step uses their mean; the
    /// validation passes split their chunks the same way. 1 reproduces
    /// single-threaded runs bit for bit; more changes the floating-point
    /// summation, not what is learned.
    pub workers: usize,
    /// Relative sampling weight of every sample of the data set (one per
    /// sample, in its order), e.g. to draw DAgger rollouts more often than
    /// demonstrations ([`crate::sampling`]); `None`: every training sample
    /// equally likely. Validation is not weighted.
    pub sample_weights: Option<Vec<f32>>,
    /// Instruction-token dropout of the augmentation: each MiniLM token
    /// but the first (`[CLS]`) of a training sample is masked out with
    /// this probability, so the policy cannot hang a task on one word of
    /// the phrasings it was trained on ([`drop_text_tokens`]). 0 = off;
    /// validation batches and runs without augmentation never drop.
    pub text_dropout: f32,
    /// Words [`Self::text_dropout`] never masks (lower case; every word
    /// piece of such a word is kept), e.g. the scene's colours and shapes,
    /// so that dropout never hides which object is meant.
    pub text_dropout_keep: Vec<String>,
    /// Previous-action dropout of the augmentation (models with
    /// `prev_action_input`): each training sample's previous action is
    /// zeroed with this probability ([`crate::prev_action::drop_rows`]).
    /// 0 = off; validation batches and runs without augmentation never drop.
    pub prev_action_dropout: f32,
    /// Standard deviation, pixels, of the noise added to each training
    /// sample's first-frame keypoints (models with `first_keypoints`,
    /// [`crate::first_keypoints`]), drawn once per sample when the state
    /// rows are built, from the run's seed.
    pub first_keypoint_noise_px: f32,
}

/// Mixed into the run's seed for the first-frame keypoints' noise, so that
/// its draws are a stream of their own.
const FIRST_KEYPOINT_SEED: u64 = 0x6b70_6669_7273_7430;

/// Smallest width of the action bounds per dimension (Δx Δy Δz in m, Δroll
/// Δpitch Δyaw in rad, gripper): see [`ActionBounds::with_min_width`].
pub const MIN_BOUND_WIDTH: [f64; 7] = [0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 1.0];

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            steps: 3000,
            batch: 64,
            seed: 0,
            lr: 1e-3,
            warmup_steps: 100,
            final_lr_ratio: 0.05,
            adamw: AdamWConfig::default(),
            val_every: 250,
            checkpoint_every: 500,
            val_fraction: 0.1,
            val_max_frames: 0,
            validate: true,
            augment: Some(Augment::default()),
            model: ModelConfig::default(),
            progress: true,
            stop_at: None,
            use_state: true,
            aux_weight: 1.0,
            keypoint_weight: 1.0,
            keypoint_targets: KEYPOINT_TARGETS,
            keypoint_bilinear: true,
            decoding: Decoding::Median,
            keypoint_window: None,
            keypoint_window_in_training: false,
            init_from: None,
            label_sigma_bins: 0.0,
            tcp: None,
            state_joints: None,
            crop_camera: None,
            crop_jitter_px: 2,
            wrist: false,
            table_plane_camera: None,
            table_plane_fine_m: None,
            table_plane_held: false,
            perception_only: false,
            workers: 1,
            sample_weights: None,
            text_dropout: 0.0,
            text_dropout_keep: Vec::new(),
            prev_action_dropout: 0.0,
            first_keypoint_noise_px: 1.0,
        }
    }
}

/// Saved between runs so that training can resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    step: usize,
    seed: u64,
    batch: usize,
}

/// One line of the training log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogEntry {
    /// Step after which this was measured.
    pub step: usize,
    /// Training loss (action-token cross-entropy) of that step's batch.
    pub train_loss: f64,
    /// Auxiliary loss of that batch (mean squared error of the object
    /// positions relative to the gripper, in units of 10 cm), if trained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_aux_loss: Option<f64>,
    /// Keypoint loss of that batch (nats over the map's cells), if trained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_keypoint_loss: Option<f64>,
    /// Keypoint loss of the hand crop's keypoints, if it has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_crop_keypoint_loss: Option<f64>,
    /// Validation loss, when measured at this step.
    pub val_loss: Option<f64>,
    /// Validation token accuracy, when measured at this step.
    pub val_token_accuracy: Option<f64>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Step the run started from (non-zero when resumed).
    pub start_step: usize,
    /// Step it ended at.
    pub end_step: usize,
    /// Per-step log.
    pub log: Vec<LogEntry>,
    /// Training samples per second over the run.
    pub samples_per_sec: f64,
    /// Training / validation frames.
    pub train_samples: usize,
    /// Validation frames (held out of training).
    pub val_samples: usize,
    /// Of those, the frames each validation pass scores
    /// ([`TrainOptions::val_max_frames`]).
    pub val_scored: usize,
    /// Final validation loss and token accuracy, if a validation set exists.
    pub final_val: Option<(f64, f64)>,
    /// With [`TrainOptions::init_from`]: tensors copied, and tensors left at
    /// their fresh initialisation.
    pub warm_start: Option<(Vec<String>, Vec<String>)>,
}

/// Instruction token outputs of MiniLM, cached per distinct instruction.
struct TextCache {
    rows: HashMap<Instruction, Vec<f32>>,
    /// Per instruction and token: never dropped by the text dropout (the
    /// first token, and the pieces of words in the keep list).
    protected: HashMap<Instruction, Vec<bool>>,
}

/// One instruction's token rows and which tokens the text dropout must keep.
type Encoded = (Vec<f32>, Vec<bool>);

impl TextCache {
    /// Encodes every distinct instruction of `data`, on `threads` threads
    /// (each instruction alone, as before, so the values do not depend on
    /// the thread count).
    fn build(
        data: &Dataset,
        text: &TextEncoder,
        max_tokens: usize,
        keep_words: &[String],
        threads: usize,
    ) -> Result<Self> {
        let mut seen = std::collections::HashSet::new();
        let distinct: Vec<&Instruction> = data
            .samples
            .iter()
            .map(|s| &s.instruction)
            .filter(|i| seen.insert(*i))
            .collect();
        let encode_one = |i: &Instruction| -> Result<Encoded> {
            let enc = text.encode(i.as_str())?;
            let l = enc.tokens.dim(0)?.min(max_tokens);
            let v = enc
                .tokens
                .narrow(0, 0, l)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut keep: Vec<bool> = text
                .token_words(i.as_str())?
                .into_iter()
                .take(l)
                .map(|w| w.is_some_and(|w| keep_words.contains(&w)))
                .collect();
            keep.resize(l, false);
            if let Some(first) = keep.first_mut() {
                *first = true;
            }
            Ok((v, keep))
        };
        let chunk = distinct.len().div_ceil(threads.max(1)).max(1);
        let encoded: Vec<Result<Vec<Encoded>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = distinct
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(|i| encode_one(i)).collect()))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(VlaPolicyError::Data(
                            "a text-encoding thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        let mut rows = HashMap::new();
        let mut protected = HashMap::new();
        for (part, enc) in distinct.chunks(chunk).zip(encoded) {
            for (i, (v, keep)) in part.iter().zip(enc?) {
                rows.insert((*i).clone(), v);
                protected.insert((*i).clone(), keep);
            }
        }
        Ok(Self { rows, protected })
    }

    fn get(&self, i: &Instruction) -> Result<&[f32]> {
        self.rows
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| VlaPolicyError::Data(format!("instruction {i:?} was not encoded")))
    }

    fn protected(&self, i: &Instruction) -> Result<&[bool]> {
        self.protected
            .get(i)
            .map(Vec::as_slice)
            .ok_or_else(|| VlaPolicyError::Data(format!("instruction {i:?} was not encoded")))
    }
}

/// A batch ready for the model.
pub struct Batch {
    /// `(B, 3, S, S)` images.
    pub images: Tensor,
    /// `(B, L, 384)` instruction tokens, zero-padded.
    pub text: Tensor,
    /// `(B, L)` 1 for real tokens, 0 for padding.
    pub text_mask: Tensor,
    /// `(B, 8)` target bins.
    pub bins: Tensor,
    /// `(B, state_dim)` normalised joint positions, for models that read them.
    pub state: Option<Tensor>,
    /// `(B, AUX_DIM)` auxiliary targets and `(B, AUX_DIM)` their mask.
    pub aux: Tensor,
    /// 1 where `aux` is known.
    pub aux_mask: Tensor,
    /// `(B, KEYPOINT_TARGETS, 4)` u32: the bilinear keypoint-map cells of
    /// the goal object, the target object and the TCP in the (augmented) image.
    pub keypoint_cells: Tensor,
    /// `(B, KEYPOINT_TARGETS, 4)`: their weights (summing to 1 where the
    /// pixel is known, 0 where not).
    pub keypoint_weights: Tensor,
    /// `(B, 3, c, c)` hand crops, for models with a crop branch.
    pub crops: Option<Tensor>,
    /// `(B, 2, 4)` u32: bilinear crop-keypoint cells of the goal and the
    /// target object inside the crop.
    pub crop_keypoint_cells: Option<Tensor>,
    /// `(B, 2, 4)`: their weights.
    pub crop_keypoint_weights: Option<Tensor>,
    /// `(B, 2)`: how far augmentation moved each image's content, pixels
    /// (x right, y down); zero without augmentation.
    pub shift_px: Tensor,
}

/// Objects whose pixels the crop's keypoints learn (goal, target).
const CROP_KEYPOINT_TARGETS: usize = 2;

/// The training data with everything derived from it once: target bins,
/// encoded instructions and normalised joint states.
struct Prepared<'a> {
    data: &'a Dataset,
    model: &'a ModelConfig,
    bins: &'a [[u32; TOKENS_PER_STEP]],
    cache: &'a TextCache,
    states: Option<&'a [Vec<f32>]>,
    keypoint_targets: usize,
    keypoint_bilinear: bool,
    /// Per sample: the hand crop's top-left pixel (models with a crop).
    crop_origins: Option<&'a [[i32; 2]]>,
    crop_jitter_px: i32,
    /// The crop branch reads the samples' wrist frames.
    wrist: bool,
    /// [`TrainOptions::text_dropout`].
    text_dropout: f32,
    /// [`TrainOptions::prev_action_dropout`] (0 unless the model reads it).
    prev_action_dropout: f32,
}

/// Masks out instruction tokens at random: in `mask` (1 = real token),
/// every real token whose `protected` flag (same layout) is false is set
/// to 0 with probability `p`. Draws nothing when `p` is 0, so the caller's
/// random stream is untouched.
pub fn drop_text_tokens(mask: &mut [f32], protected: &[bool], p: f32, rng: &mut impl Rng) {
    if p <= 0.0 {
        return;
    }
    for (m, keep) in mask.iter_mut().zip(protected) {
        if *m > 0.0 && !keep && rng.gen::<f32>() < p {
            *m = 0.0;
        }
    }
}

/// Assembles a batch from sample indices.
fn make_batch(
    p: &Prepared<'_>,
    idx: &[usize],
    aug: Option<(&Augment, &mut ChaCha8Rng)>,
    device: &Device,
) -> Result<Batch> {
    let (data, bins, cache, states) = (p.data, p.bins, p.cache, p.states);
    let s = data.size_px;
    let b = idx.len();
    let mut images = vec![0f32; b * 3 * s * s];
    let mut aug = aug;
    let per = KEYPOINT_TARGETS * 4;
    let (mut cells, mut weights) = (vec![0u32; per * b], vec![0f32; per * b]);
    let crop_net = p
        .model
        .crop
        .as_ref()
        .filter(|_| p.crop_origins.is_some() || p.wrist);
    let c = crop_net.map_or(0, |n| n.side_px);
    let mut crops = vec![0f32; b * 3 * c * c];
    let mut window = vec![0u8; c * c * 3];
    let crop_per = CROP_KEYPOINT_TARGETS * 4;
    let (mut crop_cells, mut crop_weights) = (vec![0u32; crop_per * b], vec![0f32; crop_per * b]);
    let mut shift_px = vec![0f32; 2 * b];
    for (k, &i) in idx.iter().enumerate() {
        let out = &mut images[k * 3 * s * s..(k + 1) * 3 * s * s];
        let a = aug.as_mut().map(|(a, rng)| (*a, &mut **rng));
        let (dx, dy) = write_chw(&data.samples[i].rgb, s, a, out);
        shift_px[2 * k] = -(dx as f32);
        shift_px[2 * k + 1] = -(dy as f32);
        if let (Some(net), Some(view), true) = (crop_net, &data.samples[i].wrist, p.wrist) {
            // The wrist frame, shifted and colour-jittered anew; its
            // keypoints move with the shift.
            let mut wrist_aug = aug.as_mut().map(|(a, rng)| {
                (
                    Augment {
                        shift_px: p.crop_jitter_px.max(0),
                        ..**a
                    },
                    &mut **rng,
                )
            });
            let out = &mut crops[k * 3 * c * c..(k + 1) * 3 * c * c];
            let (wx, wy) = write_chw(
                &view.rgb,
                c,
                wrist_aug.as_mut().map(|(a, r)| (&*a, &mut **r)),
                out,
            );
            for (j, px) in view.keypoint_px.iter().enumerate() {
                let Some([u, v]) = px else { continue };
                if let Some(targets) = net.keypoint_bilinear(u - wx as f32, v - wy as f32) {
                    for (q, (cell, w)) in targets.into_iter().enumerate() {
                        crop_cells[k * crop_per + j * 4 + q] = cell;
                        crop_weights[k * crop_per + j * 4 + q] = w;
                    }
                }
            }
        } else if let (Some(net), Some(origins)) = (crop_net, p.crop_origins) {
            // The crop comes from the unshifted frame around the projected
            // TCP, jittered; colour jitter is drawn anew.
            let mut origin = origins[i];
            let mut crop_aug = match aug.as_mut() {
                Some((a, rng)) => {
                    let j = p.crop_jitter_px.max(0);
                    origin[0] += rng.gen_range(-j..=j);
                    origin[1] += rng.gen_range(-j..=j);
                    Some((Augment { shift_px: 0, ..**a }, &mut **rng))
                }
                None => None,
            };
            crate::crop::extract_rgb8(&data.samples[i].rgb, s, origin, c, &mut window);
            let out = &mut crops[k * 3 * c * c..(k + 1) * 3 * c * c];
            write_chw(
                &window,
                c,
                crop_aug.as_mut().map(|(a, r)| (&*a, &mut **r)),
                out,
            );
            for (j, px) in data.samples[i]
                .keypoint_px
                .iter()
                .take(CROP_KEYPOINT_TARGETS)
                .enumerate()
            {
                let Some([u, v]) = px else { continue };
                let (u, v) = (u - origin[0] as f32, v - origin[1] as f32);
                if let Some(targets) = net.keypoint_bilinear(u, v) {
                    for (q, (cell, w)) in targets.into_iter().enumerate() {
                        crop_cells[k * crop_per + j * 4 + q] = cell;
                        crop_weights[k * crop_per + j * 4 + q] = w;
                    }
                }
            }
        }
        // The shift moves the content by (−dx, −dy).
        for (j, px) in data.samples[i]
            .keypoint_px
            .iter()
            .enumerate()
            .take(p.keypoint_targets)
        {
            let (u, v) = match px {
                Some([u, v]) => (u - dx as f32, v - dy as f32),
                None => continue,
            };
            let targets = if p.keypoint_bilinear {
                p.model.keypoint_bilinear(u, v)
            } else {
                let one_hot = |c| [(c, 1.0), (c, 0.0), (c, 0.0), (c, 0.0)];
                p.model.keypoint_cell(u, v).map(one_hot)
            };
            if let Some(targets) = targets {
                for (c, (cell, w)) in targets.into_iter().enumerate() {
                    cells[k * per + j * 4 + c] = cell;
                    weights[k * per + j * 4 + c] = w;
                }
            }
        }
    }
    let rows = idx
        .iter()
        .map(|&i| cache.get(&data.samples[i].instruction))
        .collect::<Result<Vec<_>>>()?;
    let l = rows
        .iter()
        .map(|r| r.len() / TEXT_HIDDEN)
        .max()
        .unwrap_or(1);
    let mut text = vec![0f32; b * l * TEXT_HIDDEN];
    let mut mask = vec![0f32; b * l];
    for (k, r) in rows.iter().enumerate() {
        text[k * l * TEXT_HIDDEN..k * l * TEXT_HIDDEN + r.len()].copy_from_slice(r);
        for m in &mut mask[k * l..k * l + r.len() / TEXT_HIDDEN] {
            *m = 1.0;
        }
    }
    // After every image draw, so that without dropout the batches are
    // exactly those of runs before the option existed.
    if let Some((_, rng)) = aug.as_mut().filter(|_| p.text_dropout > 0.0) {
        let mut protected = vec![true; b * l];
        for (k, &i) in idx.iter().enumerate() {
            let keep = cache.protected(&data.samples[i].instruction)?;
            protected[k * l..k * l + keep.len()].copy_from_slice(keep);
        }
        drop_text_tokens(&mut mask, &protected, p.text_dropout, rng);
    }
    let target: Vec<u32> = idx.iter().flat_map(|&i| bins[i]).collect();
    let state = match states {
        Some(states) => {
            let dim = states.first().map_or(0, Vec::len);
            let mut v: Vec<f32> = idx
                .iter()
                .flat_map(|&i| states[i].iter().copied())
                .collect();
            // After the text dropout's draws, so that without it the
            // batches are exactly those of runs before the option existed.
            if let Some((_, rng)) = aug.as_mut().filter(|_| p.prev_action_dropout > 0.0) {
                crate::prev_action::drop_rows(&mut v, b, p.prev_action_dropout, rng);
            }
            Some(Tensor::from_vec(v, (b, dim), device)?)
        }
        None => None,
    };
    let aux: Vec<f32> = idx.iter().flat_map(|&i| data.samples[i].aux).collect();
    let aux_mask: Vec<f32> = idx.iter().flat_map(|&i| data.samples[i].aux_mask).collect();
    let (crops, crop_keypoint_cells, crop_keypoint_weights) = if crop_net.is_some() {
        (
            Some(Tensor::from_vec(crops, (b, 3, c, c), device)?),
            Some(Tensor::from_vec(
                crop_cells,
                (b, CROP_KEYPOINT_TARGETS, 4),
                device,
            )?),
            Some(Tensor::from_vec(
                crop_weights,
                (b, CROP_KEYPOINT_TARGETS, 4),
                device,
            )?),
        )
    } else {
        (None, None, None)
    };
    Ok(Batch {
        crops,
        crop_keypoint_cells,
        crop_keypoint_weights,
        keypoint_cells: Tensor::from_vec(cells, (b, KEYPOINT_TARGETS, 4), device)?,
        keypoint_weights: Tensor::from_vec(weights, (b, KEYPOINT_TARGETS, 4), device)?,
        aux: Tensor::from_vec(aux, (b, AUX_DIM), device)?,
        aux_mask: Tensor::from_vec(aux_mask, (b, AUX_DIM), device)?,
        state,
        images: Tensor::from_vec(images, (b, 3, s, s), device)?,
        text: Tensor::from_vec(text, (b, l, TEXT_HIDDEN), device)?,
        text_mask: Tensor::from_vec(mask, (b, l), device)?,
        bins: Tensor::from_vec(target, (b, TOKENS_PER_STEP), device)?,
        shift_px: Tensor::from_vec(shift_px, (b, 2), device)?,
    })
}

/// Row `t`: a Gaussian of standard deviation `sigma_bins` centred on bin
/// `t`, normalised over the `num_bins` bins.
fn gaussian_table(num_bins: usize, sigma_bins: f64) -> Vec<f32> {
    let mut table = vec![0f32; num_bins * num_bins];
    for (t, row) in table.chunks_mut(num_bins).enumerate() {
        for (i, w) in row.iter_mut().enumerate() {
            let z = (i as f64 - t as f64) / sigma_bins;
            *w = (-0.5 * z * z).exp() as f32;
        }
        let total: f32 = row.iter().sum();
        row.iter_mut().for_each(|w| *w /= total);
    }
    table
}

/// Soft targets `(B, 8, num_bins)` for the samples `idx`: Gaussian rows of
/// `table` for the six end-effector deltas, one-hot for terminate and gripper.
fn soft_targets(
    table: &[f32],
    idx: &[usize],
    bins: &[[u32; TOKENS_PER_STEP]],
    num_bins: usize,
    device: &Device,
) -> Result<Tensor> {
    let mut out = vec![0f32; idx.len() * TOKENS_PER_STEP * num_bins];
    for (k, &i) in idx.iter().enumerate() {
        for (pos, &bin) in bins[i].iter().enumerate() {
            let row = &mut out[(k * TOKENS_PER_STEP + pos) * num_bins..][..num_bins];
            let bin = (bin as usize).min(num_bins - 1);
            if (1..=6).contains(&pos) {
                row.copy_from_slice(&table[bin * num_bins..(bin + 1) * num_bins]);
            } else {
                row[bin] = 1.0;
            }
        }
    }
    Ok(Tensor::from_vec(
        out,
        (idx.len(), TOKENS_PER_STEP, num_bins),
        device,
    )?)
}

/// Mean loss and token accuracy of `model` over `idx`, in chunks of `batch`.
/// `workers` threads take every `workers`-th chunk; the sums are taken in
/// chunk order, so the result does not depend on `workers`.
fn evaluate(
    model: &VlaModel,
    p: &Prepared<'_>,
    idx: &[usize],
    batch: usize,
    workers: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    let chunks: Vec<&[usize]> = idx.chunks(batch.max(1)).collect();
    let workers = workers.clamp(1, chunks.len().max(1));
    let per_worker = crate::parallel::run_parts(workers, |w| {
        chunks
            .iter()
            .skip(w)
            .step_by(workers)
            .map(|chunk| {
                let b = make_batch(p, chunk, None, device)?;
                let memory = b.encode(model)?;
                let (loss, acc) = model.loss(&memory, &b.bins)?;
                Ok((loss.to_scalar::<f32>()?, acc.to_scalar::<f32>()?))
            })
            .collect::<Result<Vec<_>>>()
    });
    let per_worker = per_worker.into_iter().collect::<Result<Vec<_>>>()?;
    let (mut loss_sum, mut acc_sum) = (0f64, 0f64);
    for (c, chunk) in chunks.iter().enumerate() {
        let (loss, acc) = per_worker[c % workers][c / workers];
        let n = chunk.len() as f64;
        loss_sum += f64::from(loss) * n;
        acc_sum += f64::from(acc) * n;
    }
    let n = idx.len().max(1) as f64;
    Ok((loss_sum / n, acc_sum / n))
}

/// At most `max` of `idx` (all for 0), evenly spaced: element
/// `⌊k · len / max⌋` for k = 0, 1, ….
fn evenly_spaced(idx: &[usize], max: usize) -> Vec<usize> {
    if max == 0 || idx.len() <= max {
        return idx.to_vec();
    }
    (0..max).map(|k| idx[k * idx.len() / max]).collect()
}

/// Splits sample indices by episode: every `1/val_fraction`-th episode (in a
/// seeded order) goes to validation, at least one if there are two or more.
fn split(data: &Dataset, val_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut episodes: Vec<usize> = data.samples.iter().map(|s| s.episode).collect();
    episodes.sort_unstable();
    episodes.dedup();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0000_0000_0001);
    for i in (1..episodes.len()).rev() {
        episodes.swap(i, rng.gen_range(0..=i));
    }
    let n_val = if episodes.len() >= 2 {
        ((episodes.len() as f64 * val_fraction).round() as usize).clamp(1, episodes.len() - 1)
    } else {
        0
    };
    let val: std::collections::HashSet<usize> = episodes[..n_val].iter().copied().collect();
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for (i, s) in data.samples.iter().enumerate() {
        if val.contains(&s.episode) {
            va.push(i);
        } else {
            tr.push(i);
        }
    }
    (tr, va)
}

/// Trains (or resumes training of) a policy into `out`.
pub fn train(
    data: &Dataset,
    text: &TextEncoder,
    out: &Path,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    data.validate()?;
    if opts.batch == 0 || opts.steps == 0 {
        return Err(VlaPolicyError::Data(
            "steps and batch must be positive".into(),
        ));
    }
    if !(0.0..1.0).contains(&opts.text_dropout) {
        return Err(VlaPolicyError::Config(format!(
            "text dropout must be in [0, 1), got {}",
            opts.text_dropout
        )));
    }
    if !(0.0..1.0).contains(&opts.prev_action_dropout) {
        return Err(VlaPolicyError::Config(format!(
            "previous-action dropout must be in [0, 1), got {}",
            opts.prev_action_dropout
        )));
    }
    if !(opts.first_keypoint_noise_px.is_finite() && opts.first_keypoint_noise_px >= 0.0) {
        return Err(VlaPolicyError::Config(format!(
            "first-frame keypoint noise must be a finite number of pixels ≥ 0, got {}",
            opts.first_keypoint_noise_px
        )));
    }
    let device = Device::Cpu;
    let (train_idx, val_idx) = split(data, opts.val_fraction, opts.seed);
    let val_scored = evenly_spaced(&val_idx, opts.val_max_frames);
    let state_path = out.join(STATE_FILE);
    let resumed: Option<TrainState> = if state_path.is_file() {
        let text = std::fs::read_to_string(&state_path).map_err(io_err(&state_path))?;
        Some(
            serde_json::from_str(&text).map_err(|e| VlaPolicyError::Json {
                path: state_path.clone(),
                message: e.to_string(),
            })?,
        )
    } else {
        None
    };
    let mut warm = None;
    let (mut cfg, varmap, mut model, start_step) = match &resumed {
        Some(state) => {
            let (cfg, varmap, model) = checkpoint::load(out, &device)?;
            if state.seed != opts.seed || state.batch != opts.batch {
                return Err(VlaPolicyError::Config(format!(
                    "{} was trained with seed {} and batch {}; resume with the same values \
                     or choose a new --out",
                    out.display(),
                    state.seed,
                    state.batch
                )));
            }
            (cfg, varmap, model, state.step)
        }
        None if opts.init_from.is_some() => {
            let init = opts.init_from.as_deref().unwrap_or(out);
            let init_cfg = PolicyConfig::read(init)?;
            let mut model_cfg = opts.model.clone();
            // Keep the initial policy's joint input unless told to drop it.
            let state = match &opts.state_joints {
                Some(names) if opts.use_state => Some(state_spec(data, &train_idx, names)?),
                _ => init_cfg.state.filter(|_| opts.use_state),
            };
            model_cfg.state_dim = state.as_ref().map_or(0, |s| s.joint_names.len());
            let tcp = match (&opts.tcp, init_cfg.tcp) {
                (Some(src), _) => Some(new_tcp_spec(src, data, &train_idx, out)?),
                (None, Some(spec)) => {
                    crate::tcp::install_urdf(&init.join(&spec.urdf), out)?;
                    Some(crate::tcp::TcpSpec {
                        urdf: crate::tcp::TCP_URDF_FILE.into(),
                        ..spec
                    })
                }
                (None, None) => None,
            };
            model_cfg.tcp_input = tcp.is_some();
            // A policy that reads its previous action keeps reading it.
            model_cfg.prev_action_input |= init_cfg.model.prev_action_input;
            // ... and the parts it reads, unless this run names others.
            if model_cfg.prev_action_parts.is_all() {
                model_cfg.prev_action_parts = init_cfg.model.prev_action_parts;
            }
            // ... and so does one that reads the first frame's keypoints.
            model_cfg.first_keypoints |= init_cfg.model.first_keypoints;
            model_cfg.table_plane = table_plane_config(
                opts,
                init_cfg.model.table_plane,
                tcp.as_ref(),
                data,
                &train_idx,
                out,
            )?;
            let mut cfg = PolicyConfig::new(model_cfg, init_cfg.tokenizer);
            cfg.state = state;
            cfg.tcp = tcp;
            cfg.crop = crop_spec(opts)?;
            cfg.wrist = wrist_spec(opts, data)?;
            cfg.validate()?;
            let (varmap, model) = checkpoint::fresh_model(&cfg.model, opts.seed, &device)?;
            warm = Some(checkpoint::warm_start(&varmap, init, &device)?);
            (cfg, varmap, model, 0)
        }
        None => {
            let actions: Vec<Action> = train_idx.iter().map(|&i| data.samples[i].action).collect();
            let bounds =
                ActionBounds::from_quantiles(&actions, 0.01, 0.99)?.with_min_width(MIN_BOUND_WIDTH);
            let tokenizer = ActionTokenizer::new(bounds, 0)?;
            let mut model_cfg = opts.model.clone();
            let state = if opts.use_state && !data.state_names.is_empty() {
                let names = opts.state_joints.as_ref().unwrap_or(&data.state_names);
                Some(state_spec(data, &train_idx, names)?)
            } else {
                None
            };
            model_cfg.state_dim = state.as_ref().map_or(0, |s| s.joint_names.len());
            let tcp = match &opts.tcp {
                Some(src) => Some(new_tcp_spec(src, data, &train_idx, out)?),
                None => None,
            };
            model_cfg.tcp_input = tcp.is_some();
            model_cfg.table_plane =
                table_plane_config(opts, None, tcp.as_ref(), data, &train_idx, out)?;
            let mut cfg = PolicyConfig::new(model_cfg, tokenizer);
            cfg.state = state;
            cfg.tcp = tcp;
            cfg.crop = crop_spec(opts)?;
            cfg.wrist = wrist_spec(opts, data)?;
            cfg.validate()?;
            let (varmap, model) = checkpoint::fresh_model(&cfg.model, opts.seed, &device)?;
            (cfg, varmap, model, 0)
        }
    };
    if let (Some(_), Some(net)) = (&cfg.wrist, &cfg.model.crop) {
        check_wrist_frames(data, net.side_px)?;
    }
    if data.size_px != cfg.model.image_size_px {
        return Err(VlaPolicyError::Config(format!(
            "data set images are {} px, the model takes {} px",
            data.size_px, cfg.model.image_size_px
        )));
    }
    let mut states: Option<Vec<Vec<f32>>> = match &cfg.state {
        Some(spec) => {
            let cols = state_columns(data, &spec.joint_names)?;
            Some(
                data.samples
                    .iter()
                    .map(|s| spec.normalise(&pick(&s.state, &cols)))
                    .collect(),
            )
        }
        None => None,
    };
    let mut crop_origins = None;
    if let Some(spec) = &cfg.tcp {
        // The TCP position follows the joint values in each state row.
        let input = crate::tcp::TcpInput::load(out, spec)?;
        let rows = crate::tcp::rows_from_states(
            input.chain(),
            &data.state_names,
            data.samples.iter().map(|s| s.state.as_slice()),
        )?;
        if let (Some(net), Some(crop)) = (&cfg.model.crop, &cfg.crop) {
            crop_origins = Some(
                rows.iter()
                    .map(|raw| {
                        crop.origin_px(*raw, cfg.model.image_size_px, net.side_px)
                            .ok_or_else(|| {
                                VlaPolicyError::Data(format!(
                                    "hand crop: a TCP at {raw:?} m is behind the camera"
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        let all = states.get_or_insert_with(|| vec![Vec::new(); data.samples.len()]);
        for (row, raw) in all.iter_mut().zip(rows) {
            row.extend(input.normalise(&raw));
        }
        // The previous action follows the TCP position (validated: it needs the TCP input).
        if cfg.model.prev_action_input {
            for (row, s) in all.iter_mut().zip(&data.samples) {
                row.extend(crate::prev_action::features(
                    s.prev_action.as_ref(),
                    cfg.model.prev_action_parts,
                ));
            }
        }
        // The first frame's keypoints end the row (validated: they need the TCP input).
        if cfg.model.first_keypoints {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed ^ FIRST_KEYPOINT_SEED);
            let mut first_of: std::collections::HashMap<usize, usize> = Default::default();
            for (i, s) in data.samples.iter().enumerate() {
                first_of.entry(s.episode).or_insert(i);
            }
            for (row, s) in all.iter_mut().zip(&data.samples) {
                let first = &data.samples[first_of[&s.episode]];
                row.extend(crate::first_keypoints::training_features(
                    [first.keypoint_px[0], first.keypoint_px[1]],
                    cfg.model.image_size_px,
                    opts.first_keypoint_noise_px,
                    &mut rng,
                ));
            }
        }
    }
    let states = states.as_deref();
    let tok = cfg.tokenizer;
    let bins = data
        .samples
        .iter()
        .map(|s| {
            let t = tok.tokenize(&s.action)?;
            let mut b = [0u32; TOKENS_PER_STEP];
            for (pos, id) in t.0.iter().enumerate() {
                b[pos] = tok.bin_at(pos, *id)?;
            }
            Ok(b)
        })
        .collect::<Result<Vec<_>>>()?;
    let cache = TextCache::build(
        data,
        text,
        cfg.model.max_text_tokens,
        &opts.text_dropout_keep,
        opts.workers.max(1),
    )?;
    if opts.prev_action_dropout > 0.0 && !cfg.model.prev_action_input {
        return Err(VlaPolicyError::Config(
            "previous-action dropout on a model without the previous-action input \
             (prev_action_input)"
                .into(),
        ));
    }
    let model_cfg = cfg.model.clone();
    let prepared = Prepared {
        data,
        model: &model_cfg,
        bins: &bins,
        cache: &cache,
        states,
        keypoint_targets: opts.keypoint_targets.min(KEYPOINT_TARGETS),
        keypoint_bilinear: opts.keypoint_bilinear,
        crop_origins: crop_origins.as_deref(),
        crop_jitter_px: opts.crop_jitter_px,
        wrist: cfg.wrist.is_some(),
        text_dropout: opts.text_dropout,
        prev_action_dropout: opts.prev_action_dropout,
    };
    cfg.decoding = opts.decoding;
    cfg.keypoint_window = opts.keypoint_window.clone();
    if opts.keypoint_window_in_training {
        // The network reads the windowed keypoints in training too
        // (the keypoint loss still sees the whole map's logits).
        model.set_keypoint_window(cfg.keypoint_window.clone());
    }
    let soft_table = (opts.label_sigma_bins > 0.0)
        .then(|| gaussian_table(cfg.model.num_bins, opts.label_sigma_bins));
    let mut opt = AdamW::new(&varmap, opts.adamw)?;
    let workers = opts.workers.clamp(1, opts.batch.max(1));
    let all_vars = varmap.all_vars();
    if resumed.is_some() {
        opt.load(&out.join(OPTIMIZER_FILE), start_step)?;
    }
    let bar = if opts.progress {
        indicatif::ProgressBar::new(opts.steps as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(start_step as u64);
    let mut log = Vec::new();
    let started = Instant::now();
    let mut trained = 0usize;
    let mut final_val = None;
    let mut recent = std::collections::VecDeque::new();
    let end = opts.stop_at.map_or(opts.steps, |s| s.min(opts.steps));
    let sampler = crate::sampling::BatchSampler::new(
        &train_idx,
        opts.sample_weights.as_deref(),
        data.samples.len(),
    )?;
    for step in start_step..end {
        let mut rng =
            ChaCha8Rng::seed_from_u64(opts.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ step as u64);
        let idx: Vec<usize> = (0..opts.batch).map(|_| sampler.draw(&mut rng)).collect();
        let b = make_batch(
            &prepared,
            &idx,
            opts.augment.as_ref().map(|a| (a, &mut rng)),
            &device,
        )?;
        let ctx = StepContext {
            model: &model,
            opts,
            soft_table: soft_table.as_deref(),
            bins: &bins,
            num_bins: cfg.model.num_bins,
            device: &device,
        };
        let (grads, losses) = if workers <= 1 {
            let l = ctx.losses(&b, &idx)?;
            (l.loss.backward()?, l.scalars()?)
        } else {
            let shares = crate::parallel::split_even(idx.len(), workers);
            let results = crate::parallel::run_parts(shares.len(), |k| {
                let (start, len) = shares[k];
                let l = ctx.losses(&b.part(start, len)?, &idx[start..start + len])?;
                Ok((l.loss.backward()?, l.scalars()?))
            });
            let mut stores = Vec::new();
            let mut scalars = Vec::new();
            for r in results {
                let (g, l) = r?;
                stores.push(g);
                scalars.push(l);
            }
            let weights: Vec<f64> = shares
                .iter()
                .map(|&(_, len)| len as f64 / idx.len() as f64)
                .collect();
            let grads = crate::parallel::weighted_mean_grads(stores, &weights, &all_vars)?;
            (grads, LossScalars::weighted_mean(&scalars, &weights))
        };
        let lr = lr_at(
            step,
            opts.steps,
            opts.warmup_steps,
            opts.lr,
            opts.final_lr_ratio,
        );
        opt.step(&grads, lr)?;
        drop(grads);
        trained += opts.batch;
        let LossScalars {
            ce: train_loss,
            aux: train_aux_loss,
            keypoint: train_keypoint_loss,
            crop_keypoint: train_crop_keypoint_loss,
        } = losses;
        recent.push_back(train_loss);
        if recent.len() > 20 {
            recent.pop_front();
        }
        let done = step + 1;
        let mut entry = LogEntry {
            step: done,
            train_loss,
            train_aux_loss,
            train_keypoint_loss,
            train_crop_keypoint_loss,
            val_loss: None,
            val_token_accuracy: None,
        };
        let last = done == end;
        // Validation scores action tokens, which perception-only runs do not train.
        if opts.validate
            && !opts.perception_only
            && !val_idx.is_empty()
            && (last || (opts.val_every > 0 && done % opts.val_every == 0))
        {
            let (vl, va) = evaluate(&model, &prepared, &val_scored, opts.batch, workers, &device)?;
            entry.val_loss = Some(vl);
            entry.val_token_accuracy = Some(va);
            final_val = Some((vl, va));
            say(
                &bar,
                format!("step {done}: train loss {train_loss:.4}, val loss {vl:.4}, val token accuracy {va:.3}"),
            );
        }
        log.push(entry);
        let rate = trained as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let mean: f64 = recent.iter().sum::<f64>() / recent.len() as f64;
        bar.set_message(format!("loss {mean:.3} lr {lr:.1e} {rate:.0} samples/s"));
        if bar.is_hidden() && opts.progress && done % 10 == 0 {
            eprintln!(
                "step {done}/{}: loss {mean:.4} (mean of last {}), aux {}, keypoints {}, lr {lr:.1e}, {rate:.1} samples/s",
                opts.steps,
                recent.len(),
                train_aux_loss.map_or("-".into(), |v| format!("{v:.3}")),
                train_keypoint_loss.map_or("-".into(), |v| format!("{v:.3}")),
            );
        }
        bar.set_position(done as u64);
        if last || (opts.checkpoint_every > 0 && done % opts.checkpoint_every == 0) {
            cfg.training = TrainingInfo {
                steps: done,
                batch: opts.batch,
                seed: opts.seed,
                train_samples: train_idx.len(),
                val_samples: val_idx.len(),
                val_loss: final_val.map(|v| v.0),
                val_token_accuracy: final_val.map(|v| v.1),
                label_sigma_bins: opts.label_sigma_bins,
            };
            save_all(out, &cfg, &varmap, &opt, done, opts)?;
        }
    }
    bar.finish_and_clear();
    Ok(TrainReport {
        start_step,
        end_step: end.max(start_step),
        log,
        samples_per_sec: trained as f64 / started.elapsed().as_secs_f64().max(1e-9),
        train_samples: train_idx.len(),
        val_samples: val_idx.len(),
        val_scored: val_scored.len(),
        final_val,
        warm_start: warm,
    })
}

/// The wrist entry for a fresh run ([`TrainOptions::wrist`]): the data's
/// wrist frames, checked to be there for every sample and of the branch's
/// size.
fn wrist_spec(opts: &TrainOptions, data: &Dataset) -> Result<Option<crate::checkpoint::WristSpec>> {
    if !opts.wrist {
        return Ok(None);
    }
    let net = opts.model.crop.as_ref().ok_or_else(|| {
        VlaPolicyError::Config("a wrist camera input needs the model's crop branch".into())
    })?;
    check_wrist_frames(data, net.side_px)?;
    let side = net.side_px as u32;
    Ok(Some(crate::checkpoint::WristSpec {
        width_px: side,
        height_px: side,
    }))
}

/// Every sample has a wrist frame `side_px` square.
fn check_wrist_frames(data: &Dataset, side_px: usize) -> Result<()> {
    for (i, s) in data.samples.iter().enumerate() {
        match &s.wrist {
            Some(w) if w.side_px == side_px && w.rgb.len() == side_px * side_px * 3 => {}
            Some(w) => {
                return Err(VlaPolicyError::Data(format!(
                    "sample {i}: its wrist frame is {} px, the model's wrist branch takes {side_px} px",
                    w.side_px
                )))
            }
            None => {
                return Err(VlaPolicyError::Data(format!(
                    "sample {i} (episode {}) has no wrist frame: collect with `vla collect --wrist-camera`",
                    s.episode
                )))
            }
        }
    }
    Ok(())
}

/// The crop's config entry for a fresh run: the camera when the model has
/// a crop branch, an error when it has one and no camera was given.
fn crop_spec(opts: &TrainOptions) -> Result<Option<crate::crop::CropSpec>> {
    if opts.wrist {
        return Ok(None);
    }
    match (&opts.model.crop, opts.crop_camera) {
        (Some(_), Some(camera)) => Ok(Some(crate::crop::CropSpec { camera })),
        (Some(_), None) => Err(VlaPolicyError::Config(
            "the model has a hand crop but no camera was given for it".into(),
        )),
        (None, _) => Ok(None),
    }
}

/// What one step's losses are computed from, shared by the threads of
/// [`TrainOptions::workers`].
struct StepContext<'a> {
    model: &'a VlaModel,
    opts: &'a TrainOptions,
    soft_table: Option<&'a [f32]>,
    bins: &'a [[u32; TOKENS_PER_STEP]],
    num_bins: usize,
    device: &'a Device,
}

/// A step's losses as tensors: the objective to differentiate and its parts.
struct StepLosses {
    loss: Tensor,
    ce: Tensor,
    aux: Option<Tensor>,
    keypoint: Option<Tensor>,
    crop_keypoint: Option<Tensor>,
}

/// A step's losses as numbers, for the log.
struct LossScalars {
    ce: f64,
    aux: Option<f64>,
    keypoint: Option<f64>,
    crop_keypoint: Option<f64>,
}

impl StepLosses {
    fn scalars(&self) -> Result<LossScalars> {
        let num = |t: &Tensor| -> Result<f64> { Ok(f64::from(t.to_scalar::<f32>()?)) };
        Ok(LossScalars {
            ce: num(&self.ce)?,
            aux: self.aux.as_ref().map(num).transpose()?,
            keypoint: self.keypoint.as_ref().map(num).transpose()?,
            crop_keypoint: self.crop_keypoint.as_ref().map(num).transpose()?,
        })
    }
}

impl LossScalars {
    /// The shares' losses weighted by their share of the batch.
    fn weighted_mean(parts: &[Self], weights: &[f64]) -> Self {
        let mean = |f: &dyn Fn(&Self) -> Option<f64>| -> Option<f64> {
            parts
                .iter()
                .zip(weights)
                .map(|(p, w)| f(p).map(|v| v * w))
                .sum()
        };
        Self {
            ce: mean(&|p| Some(p.ce)).unwrap_or(0.0),
            aux: mean(&|p| p.aux),
            keypoint: mean(&|p| p.keypoint),
            crop_keypoint: mean(&|p| p.crop_keypoint),
        }
    }
}

impl StepContext<'_> {
    /// The objective of batch `b` (built from samples `idx`) and its parts.
    fn losses(&self, b: &Batch, idx: &[usize]) -> Result<StepLosses> {
        let (model, opts) = (self.model, self.opts);
        if opts.perception_only {
            // Stem + keypoint head only: the transformer is neither run nor
            // changed, and the logged loss is the keypoint loss.
            let logits = model
                .keypoint_logits(&b.images, &b.text, &b.text_mask)?
                .ok_or_else(|| {
                    VlaPolicyError::Config("--perception-only needs a model with keypoints".into())
                })?;
            let kp = VlaModel::keypoint_loss_of(&logits, &b.keypoint_cells, &b.keypoint_weights)?;
            return Ok(StepLosses {
                loss: kp.clone(),
                ce: kp.clone(),
                aux: None,
                keypoint: Some(kp),
                crop_keypoint: None,
            });
        }
        let memory = b.encode(model)?;
        let (objective, ce) = match self.soft_table {
            Some(table) => {
                let soft = soft_targets(table, idx, self.bins, self.num_bins, self.device)?;
                model.loss_soft(&memory, &b.bins, &soft)?
            }
            None => {
                let (ce, _) = model.loss(&memory, &b.bins)?;
                (ce.clone(), ce)
            }
        };
        let aux = if opts.aux_weight > 0.0 {
            model.aux_loss(&memory, &b.aux, &b.aux_mask)?
        } else {
            None
        };
        let keypoint = if opts.keypoint_weight > 0.0 {
            model.keypoint_loss(&memory, &b.keypoint_cells, &b.keypoint_weights)?
        } else {
            None
        };
        let crop_keypoint = match (&b.crop_keypoint_cells, &b.crop_keypoint_weights) {
            (Some(cells), Some(weights)) if opts.keypoint_weight > 0.0 => {
                model.crop_keypoint_loss(&memory, cells, weights)?
            }
            _ => None,
        };
        let mut loss = objective;
        if let Some(a) = &aux {
            loss = (loss + (a * opts.aux_weight)?)?;
        }
        if let Some(k) = &keypoint {
            loss = (loss + (k * opts.keypoint_weight)?)?;
        }
        if let Some(k) = &crop_keypoint {
            loss = (loss + (k * opts.keypoint_weight)?)?;
        }
        Ok(StepLosses {
            loss,
            ce,
            aux,
            keypoint,
            crop_keypoint,
        })
    }
}

impl Batch {
    /// Samples `start..start + len` of this batch.
    fn part(&self, start: usize, len: usize) -> Result<Self> {
        let cut = |t: &Tensor| t.narrow(0, start, len);
        let cut_opt = |t: &Option<Tensor>| t.as_ref().map(cut).transpose();
        Ok(Self {
            images: cut(&self.images)?,
            text: cut(&self.text)?,
            text_mask: cut(&self.text_mask)?,
            bins: cut(&self.bins)?,
            state: cut_opt(&self.state)?,
            aux: cut(&self.aux)?,
            aux_mask: cut(&self.aux_mask)?,
            keypoint_cells: cut(&self.keypoint_cells)?,
            keypoint_weights: cut(&self.keypoint_weights)?,
            crops: cut_opt(&self.crops)?,
            crop_keypoint_cells: cut_opt(&self.crop_keypoint_cells)?,
            crop_keypoint_weights: cut_opt(&self.crop_keypoint_weights)?,
            shift_px: cut(&self.shift_px)?,
        })
    }

    /// Runs the model's encoder on this batch.
    pub fn encode(&self, model: &VlaModel) -> Result<crate::model::Memory> {
        Ok(model.encode_shifted(
            &self.images,
            self.crops.as_ref(),
            &self.text,
            &self.text_mask,
            self.state.as_ref(),
            Some(&self.shift_px),
        )?)
    }
}

/// Where each of `names` is in the data set's joint states; an error
/// naming the first joint the data lacks.
fn state_columns(data: &Dataset, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            data.state_names.iter().position(|d| d == n).ok_or_else(|| {
                VlaPolicyError::Config(format!(
                    "the model reads joint {n:?}, the data set has {:?}",
                    data.state_names
                ))
            })
        })
        .collect()
}

fn pick(row: &[f32], cols: &[usize]) -> Vec<f32> {
    cols.iter().map(|&c| row[c]).collect()
}

/// The joint-state input spec for `names`, from the training samples.
fn state_spec(data: &Dataset, train_idx: &[usize], names: &[String]) -> Result<StateSpec> {
    if names.is_empty() {
        return Err(VlaPolicyError::Config(
            "no joints to read were given".into(),
        ));
    }
    let cols = state_columns(data, names)?;
    let rows: Vec<Vec<f32>> = train_idx
        .iter()
        .map(|&i| pick(&data.samples[i].state, &cols))
        .collect();
    let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    StateSpec::from_rows(names.to_vec(), &refs)
}

/// A TCP input spec for training from `src`: installs the URDF in `out` and
/// takes the statistics of the training samples' TCP positions.
fn new_tcp_spec(
    src: &crate::tcp::TcpSource,
    data: &Dataset,
    train_idx: &[usize],
    out: &Path,
) -> Result<crate::tcp::TcpSpec> {
    let chain = crate::tcp::load_chain(&src.urdf, &src.base_link, &src.tip_link)?;
    let rows = crate::tcp::rows_from_states(
        &chain,
        &data.state_names,
        train_idx.iter().map(|&i| data.samples[i].state.as_slice()),
    )?;
    crate::tcp::install_urdf(&src.urdf, out)?;
    crate::tcp::spec_from_rows(
        crate::tcp::TCP_URDF_FILE.into(),
        src.base_link.clone(),
        src.tip_link.clone(),
        &rows,
    )
}

/// The table-plane offsets' configuration of a fresh run or warm start:
/// new for `opts.table_plane_camera` (the plane at the mean height of the
/// goal objects' centres in the training samples, from the TCP's forward
/// kinematics plus the recorded object − gripper offset), else the initial
/// policy's plane with this run's TCP statistics, else none.
fn table_plane_config(
    opts: &TrainOptions,
    init: Option<crate::table_plane::TablePlaneConfig>,
    tcp: Option<&crate::tcp::TcpSpec>,
    data: &Dataset,
    train_idx: &[usize],
    out: &Path,
) -> Result<Option<crate::table_plane::TablePlaneConfig>> {
    let (camera, kept_z) = match (opts.table_plane_camera, init) {
        (Some(camera), _) => (camera, None),
        (None, Some(init)) => (init.camera, Some(init.plane_z_m)),
        (None, None) if opts.table_plane_fine_m.is_some() || opts.table_plane_held => {
            return Err(VlaPolicyError::Config(
                "fine or held table-plane offsets need the table-plane offsets (--table-plane, \
                 or a warm start from a policy with them)"
                    .into(),
            ))
        }
        (None, None) => return Ok(None),
    };
    let Some(spec) = tcp else {
        return Err(VlaPolicyError::Config(
            "table-plane offsets need the TCP input (a TCP chain, e.g. --tcp-urdf): they are \
             measured from the TCP's forward kinematics"
                .into(),
        ));
    };
    // This run's fine scale, else the initial policy's (a warm start keeps
    // them, with their plane).
    let kept_fine = init.and_then(|i| i.fine_scale_m.zip(i.fine_plane_z_m));
    let fine_scale_m = opts.table_plane_fine_m.or(kept_fine.map(|f| f.0));
    // Heights of the goal objects' centres in the training samples (base
    // frame), only when something must be measured.
    let need_heights = kept_z.is_none() || (fine_scale_m.is_some() && kept_fine.is_none());
    let heights = if need_heights {
        let input = crate::tcp::TcpInput::load(out, spec)?;
        let known: Vec<usize> = train_idx
            .iter()
            .copied()
            .filter(|&i| data.samples[i].aux_mask[2] > 0.0)
            .collect();
        let rows = crate::tcp::rows_from_states(
            input.chain(),
            &data.state_names,
            known.iter().map(|&i| data.samples[i].state.as_slice()),
        )?;
        if rows.is_empty() {
            return Err(VlaPolicyError::Data(
                "table-plane offsets: no training sample records where its object is \
                 (aux), so the plane's height is unknown"
                    .into(),
            ));
        }
        // The recorded offsets are in world axes; the base frame differs
        // from the world by a translation and a yaw, so heights agree.
        rows.iter()
            .zip(&known)
            .map(|(tcp_m, &i)| {
                tcp_m[2] + f64::from(data.samples[i].aux[2]) * crate::data::AUX_UNIT_M
            })
            .collect::<Vec<f64>>()
    } else {
        Vec::new()
    };
    let plane_z_m = match kept_z {
        Some(z) => z,
        None => heights.iter().sum::<f64>() / heights.len() as f64,
    };
    let fine_plane_z_m = match (fine_scale_m, kept_fine) {
        (None, _) => None,
        (Some(_), Some((_, z))) => Some(z),
        (Some(_), None) => {
            // Resting objects: the 10th percentile (lifted ones pull the mean up).
            let mut sorted = heights.clone();
            sorted.sort_by(f64::total_cmp);
            Some(sorted[(sorted.len() - 1) / 10])
        }
    };
    let cfg = crate::table_plane::TablePlaneConfig {
        camera,
        plane_z_m,
        tcp_mean_m: spec.mean_m,
        tcp_std_m: spec.std_m,
        fine_scale_m,
        fine_plane_z_m,
        held_fine: opts.table_plane_held || init.is_some_and(|i| i.held_fine),
    };
    cfg.validate().map_err(VlaPolicyError::Config)?;
    Ok(Some(cfg))
}

/// Prints above the progress bar, or to stderr when the bar is hidden
/// (stderr is not a terminal).
fn say(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn save_all(
    out: &Path,
    cfg: &PolicyConfig,
    varmap: &candle_nn::VarMap,
    opt: &AdamW,
    step: usize,
    opts: &TrainOptions,
) -> Result<()> {
    checkpoint::save(out, cfg, varmap)?;
    let opt_path = out.join(OPTIMIZER_FILE);
    let tmp = out.join(format!("{OPTIMIZER_FILE}.tmp"));
    opt.save(&tmp)?;
    std::fs::rename(&tmp, &opt_path).map_err(io_err(&opt_path))?;
    let state = TrainState {
        step,
        seed: opts.seed,
        batch: opts.batch,
    };
    let json = serde_json::to_string_pretty(&state).map_err(|e| VlaPolicyError::Json {
        path: out.join(STATE_FILE),
        message: e.to_string(),
    })?;
    checkpoint::write_atomic(&out.join(STATE_FILE), json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows of 6: the first with 5 real tokens, the second with 3.
    fn mask() -> Vec<f32> {
        vec![1., 1., 1., 1., 1., 0., 1., 1., 1., 0., 0., 0.]
    }

    /// Each row's first token protected, and the third of the first row.
    fn protected() -> Vec<bool> {
        let mut p = vec![false; 12];
        (p[0], p[2], p[6]) = (true, true, true);
        p
    }

    #[test]
    fn evenly_spaced_keeps_all_or_spreads_the_cap() {
        let idx: Vec<usize> = (100..110).collect();
        assert_eq!(evenly_spaced(&idx, 0), idx);
        assert_eq!(evenly_spaced(&idx, 10), idx);
        assert_eq!(evenly_spaced(&idx, 50), idx);
        assert_eq!(evenly_spaced(&idx, 4), vec![100, 102, 105, 107]);
        assert_eq!(evenly_spaced(&idx, 1), vec![100]);
        assert!(evenly_spaced(&[], 3).is_empty());
    }

    #[test]
    fn text_dropout_zero_changes_nothing_and_draws_nothing() {
        let mut m = mask();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        drop_text_tokens(&mut m, &protected(), 0.0, &mut rng);
        assert_eq!(m, mask());
        let next: u64 = rng.gen();
        assert_eq!(next, ChaCha8Rng::seed_from_u64(7).gen::<u64>());
    }

    #[test]
    fn text_dropout_keeps_protected_tokens_and_the_padding() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut dropped, mut droppable) = (0usize, 0usize);
        let keep = protected();
        for _ in 0..2000 {
            let mut m = mask();
            drop_text_tokens(&mut m, &keep, 0.3, &mut rng);
            for ((a, b), k) in m.iter().zip(mask()).zip(&keep) {
                assert!(*a <= b, "padding became a token");
                if *k {
                    assert_eq!(*a, b, "a protected token was dropped");
                } else if b > 0.0 {
                    droppable += 1;
                    dropped += usize::from(*a == 0.0);
                }
            }
        }
        let rate = dropped as f64 / droppable as f64;
        assert!((rate - 0.3).abs() < 0.02, "dropped {rate}");
    }
}

//! Checkpoints: `config.json` (format tag, network shape, action tokenizer
//! with its normalisation bounds, text encoder, training summary) and
//! `model.safetensors` (every trainable tensor by name).
//!
//! Loading is strict: the config must carry this crate's format tag and a
//! consistent shape, and the weights must hold exactly the tensors that shape
//! implies, each with the right shape; anything else is an error naming the
//! field or tensor. Files are written to a temporary name and renamed, so an
//! interrupted save never leaves a half-written checkpoint.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::decoding::Decoding;
use vla_core::tokenizer::ActionTokenizer;

use crate::error::{io_err, Result, VlaPolicyError};
use crate::init::SeededVars;
use crate::model::{ModelConfig, VlaModel};
use crate::text_files::MINILM_PACKAGE;

/// Format tag written into every `config.json`.
pub const FORMAT: &str = "vla-policy/1";
/// Name of the weights file in a policy folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the config file in a policy folder.
pub const CONFIG_FILE: &str = "config.json";

/// How a checkpoint was trained (informational; not needed to run it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Optimiser steps done.
    pub steps: usize,
    /// Batch size.
    pub batch: usize,
    /// Random seed.
    pub seed: u64,
    /// Training samples (frames).
    pub train_samples: usize,
    /// Validation samples (frames).
    pub val_samples: usize,
    /// Last validation loss (mean cross-entropy per token), if measured.
    pub val_loss: Option<f64>,
    /// Last validation token accuracy, if measured.
    pub val_token_accuracy: Option<f64>,
    /// Standard deviation of the Gaussian soft targets of the last run, bins
    /// (0: one-hot targets; absent in older checkpoints).
    #[serde(default)]
    pub label_sigma_bins: f64,
}

/// Everything in `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// Always [`FORMAT`].
    pub format: String,
    /// Network shape.
    pub model: ModelConfig,
    /// Action tokenizer, including the normalisation bounds.
    pub tokenizer: ActionTokenizer,
    /// The pinned text encoder package the model was trained with.
    pub text_encoder: String,
    /// Proprioceptive input: which joints, in which order, and how they
    /// are normalised; present exactly when `model.state_dim > 0`.
    #[serde(default)]
    pub state: Option<StateSpec>,
    /// End-effector position input (forward kinematics of the measured
    /// joints, [`crate::tcp`]); present exactly when `model.tcp_input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<crate::tcp::TcpSpec>,
    /// The camera the hand crop is computed for ([`crate::crop`]); present
    /// exactly when `model.crop` is (which also needs `tcp`: the crop
    /// follows the TCP chain's forward kinematics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<crate::crop::CropSpec>,
    /// The wrist camera ([`WristSpec`]): when present, the `model.crop`
    /// branch reads a second, hand-mounted camera's frame instead of a
    /// window of the scene camera's (then `crop` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrist: Option<WristSpec>,
    /// Training summary.
    #[serde(default)]
    pub training: TrainingInfo,
    /// How inference picks each token's bin (`greedy` when absent, as in
    /// checkpoints written before the field existed).
    #[serde(default)]
    pub decoding: Decoding,
    /// Further members of an ensemble ([`crate::ensemble`]): policy folders,
    /// named relative to this one, whose networks decode together with this
    /// folder's own. Empty (and absent from `config.json`) for one network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<String>,
    /// The inference-time filter over the target object's keypoint
    /// ([`crate::keypoint_memory`]); absent: every frame's own estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoint_memory: Option<crate::keypoint_memory::KeypointMemorySpec>,
    /// Inference only: each camera keypoint's expected position over the
    /// cells within this many cells of its most likely one (a local
    /// soft-argmax, [`crate::model::VlaModel::set_keypoint_window`]);
    /// absent: over the whole map, as in training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keypoint_window: Option<crate::keypoint_window::KeypointWindow>,
}

/// The joint-position input of a policy: names in the order the model reads
/// them, and the per-joint mean and standard deviation of the training data
/// (`value = (position − mean) / std`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateSpec {
    /// Joint names, in model order.
    pub joint_names: Vec<String>,
    /// Mean position per joint (rad, or m for prismatic joints).
    pub mean: Vec<f64>,
    /// Standard deviation per joint, > 0.
    pub std: Vec<f64>,
}

impl StateSpec {
    /// Smallest standard deviation used, so near-constant joints do not blow up.
    pub const MIN_STD: f64 = 1e-3;

    /// Mean and standard deviation of `rows` (each `joint_names.len()` long).
    pub fn from_rows(joint_names: Vec<String>, rows: &[&[f32]]) -> Result<Self> {
        let n = joint_names.len();
        if rows.is_empty() || rows.iter().any(|r| r.len() != n) {
            return Err(VlaPolicyError::Data(format!(
                "joint states must all have {n} values"
            )));
        }
        let count = rows.len() as f64;
        let mut mean = vec![0f64; n];
        for r in rows {
            for (m, &v) in mean.iter_mut().zip(r.iter()) {
                *m += f64::from(v) / count;
            }
        }
        let mut var = vec![0f64; n];
        for r in rows {
            for ((s, &v), m) in var.iter_mut().zip(r.iter()).zip(&mean) {
                *s += (f64::from(v) - m).powi(2) / count;
            }
        }
        let std = var.iter().map(|v| v.sqrt().max(Self::MIN_STD)).collect();
        Ok(Self {
            joint_names,
            mean,
            std,
        })
    }

    /// Normalises raw positions already in model order.
    pub fn normalise(&self, positions: &[f32]) -> Vec<f32> {
        positions
            .iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(&q, (m, s))| ((f64::from(q) - m) / s) as f32)
            .collect()
    }

    /// Picks this spec's joints out of a measured joint state, by name, and
    /// normalises them. A missing joint is an error naming it.
    pub fn vector(&self, joints: &vla_core::JointState) -> Result<Vec<f32>> {
        let raw = self
            .joint_names
            .iter()
            .map(|name| {
                joints.position_of(name).map(|q| q as f32).ok_or_else(|| {
                    VlaPolicyError::Data(format!(
                        "joint state has no joint {name:?} (the policy reads {:?})",
                        self.joint_names
                    ))
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        if raw.iter().any(|v| !v.is_finite()) {
            return Err(VlaPolicyError::Data("joint state is not finite".into()));
        }
        Ok(self.normalise(&raw))
    }

    fn validate(&self, state_dim: usize) -> Result<()> {
        let n = self.joint_names.len();
        if n != state_dim || self.mean.len() != n || self.std.len() != n {
            return Err(VlaPolicyError::Config(format!(
                "state has {n} joint names, {} means and {} deviations; model.state_dim is {state_dim}",
                self.mean.len(),
                self.std.len()
            )));
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err(VlaPolicyError::Config(
                "state mean/std must be finite and std positive".into(),
            ));
        }
        Ok(())
    }
}

/// The wrist camera a policy reads (`config.json` → `wrist`): frames of
/// any size are resized to the branch's `model.crop.side_px` square, as the
/// scene camera's are to `image_size_px`; the size it was trained at is
/// kept so that the simulator renders (and a robot driver is asked for)
/// the same view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WristSpec {
    /// Width of the training frames, pixels.
    pub width_px: u32,
    /// Their height, pixels.
    pub height_px: u32,
}

impl WristSpec {
    /// Checks the sizes are positive.
    pub fn validate(&self) -> Result<()> {
        if self.width_px == 0 || self.height_px == 0 {
            return Err(VlaPolicyError::Config(format!(
                "config.json wrist: frame size {}×{} px must be positive",
                self.width_px, self.height_px
            )));
        }
        Ok(())
    }
}

impl PolicyConfig {
    /// A config for a fresh model.
    pub fn new(model: ModelConfig, tokenizer: ActionTokenizer) -> Self {
        Self {
            format: FORMAT.into(),
            model,
            tokenizer,
            text_encoder: MINILM_PACKAGE.into(),
            state: None,
            tcp: None,
            crop: None,
            wrist: None,
            training: TrainingInfo::default(),
            decoding: Decoding::default(),
            ensemble: Vec::new(),
            keypoint_memory: None,
            keypoint_window: None,
        }
    }

    /// Checks the format tag, the shape and the tokenizer.
    pub fn validate(&self) -> Result<()> {
        if self.format != FORMAT {
            return Err(VlaPolicyError::Config(format!(
                "format is {:?}, this build reads {FORMAT:?}",
                self.format
            )));
        }
        if self.text_encoder != MINILM_PACKAGE {
            return Err(VlaPolicyError::Config(format!(
                "text_encoder is {:?}, this build provides {MINILM_PACKAGE:?}",
                self.text_encoder
            )));
        }
        self.model.validate().map_err(VlaPolicyError::Config)?;
        self.tokenizer.bounds.validate()?;
        if let Some(memory) = &self.keypoint_memory {
            memory
                .validate(self.model.keypoints)
                .map_err(VlaPolicyError::Config)?;
            if !self.ensemble.is_empty() {
                return Err(VlaPolicyError::Config(
                    "keypoint_memory filters a single network's keypoints; this folder names an \
                     ensemble"
                        .into(),
                ));
            }
        }
        if let Some(window) = &self.keypoint_window {
            window
                .validate(self.model.keypoints, self.model.keypoint_side())
                .map_err(VlaPolicyError::Config)?;
        }
        match (&self.state, self.model.state_dim) {
            (None, 0) => {}
            (Some(spec), dim) => spec.validate(dim)?,
            (None, dim) => {
                return Err(VlaPolicyError::Config(format!(
                    "model.state_dim is {dim} but config.json has no state (joint names)"
                )))
            }
        }
        match (&self.tcp, self.model.tcp_input) {
            (None, false) => {}
            (Some(spec), true) => spec.validate()?,
            (Some(_), false) => {
                return Err(VlaPolicyError::Config(
                    "config.json has tcp but model.tcp_input is false".into(),
                ))
            }
            (None, true) => {
                return Err(VlaPolicyError::Config(
                    "model.tcp_input is true but config.json has no tcp (URDF and links)".into(),
                ))
            }
        }
        if let (Some(plane), Some(tcp)) = (&self.model.table_plane, &self.tcp) {
            if plane.tcp_mean_m != tcp.mean_m || plane.tcp_std_m != tcp.std_m {
                return Err(VlaPolicyError::Config(
                    "model.table_plane's TCP statistics differ from config.json tcp's".into(),
                ));
            }
        }
        if let Some(w) = &self.wrist {
            w.validate()?;
            if self.crop.is_some() || self.model.crop.is_none() {
                return Err(VlaPolicyError::Config(
                    "config.json wrist needs model.crop (the branch that reads it) and no crop \
                     (the branch reads one image)"
                        .into(),
                ));
            }
            return Ok(());
        }
        match (&self.crop, &self.model.crop) {
            (None, None) => {}
            (Some(spec), Some(_)) => {
                spec.validate()?;
                if self.tcp.is_none() {
                    return Err(VlaPolicyError::Config(
                        "the hand crop needs the TCP input (config.json tcp): it is centred \
                         on the TCP's forward kinematics"
                            .into(),
                    ));
                }
            }
            (Some(_), None) => {
                return Err(VlaPolicyError::Config(
                    "config.json has crop but model.crop is absent".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(VlaPolicyError::Config(
                    "model.crop is set but config.json has neither crop (camera) nor wrist".into(),
                ))
            }
        }
        Ok(())
    }

    /// Reads and validates `dir/config.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| VlaPolicyError::Json {
            path: path.clone(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Writes `bytes` to `path` via a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Saves the config and all variables of `varmap` into `dir`.
pub fn save(dir: &Path, cfg: &PolicyConfig, varmap: &VarMap) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let weights = dir.join(WEIGHTS_FILE);
    let tmp = tmp_name(&weights);
    varmap.save(&tmp)?;
    std::fs::rename(&tmp, &weights).map_err(io_err(&weights))?;
    let json = serde_json::to_string_pretty(cfg).map_err(|e| VlaPolicyError::Json {
        path: dir.join(CONFIG_FILE),
        message: e.to_string(),
    })?;
    write_atomic(&dir.join(CONFIG_FILE), json.as_bytes())
}

/// Copies the tensors of a safetensors file into the variables of `varmap`,
/// requiring an exact match of names and shapes.
pub fn load_into(varmap: &VarMap, path: &Path, device: &Device) -> Result<()> {
    let tensors = candle_core::safetensors::load(path, device).map_err(|e| {
        VlaPolicyError::CorruptCheckpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| VlaPolicyError::Config("variable map lock poisoned".into()))?;
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let tensor = tensors
            .get(name)
            .ok_or_else(|| VlaPolicyError::MissingTensor {
                path: path.to_path_buf(),
                name: name.clone(),
            })?;
        if tensor.dims() != var.dims() {
            return Err(VlaPolicyError::TensorShape {
                name: name.clone(),
                expected: var.dims().to_vec(),
                actual: tensor.dims().to_vec(),
            });
        }
        var.set(&tensor.to_dtype(DType::F32)?)?;
    }
    let mut extra: Vec<&String> = tensors.keys().filter(|n| !vars.contains_key(*n)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(VlaPolicyError::UnexpectedTensor {
            path: path.to_path_buf(),
            name: (*name).clone(),
        });
    }
    Ok(())
}

/// A model with fresh variables drawn from a generator seeded with `seed`.
pub fn fresh_model(cfg: &ModelConfig, seed: u64, device: &Device) -> Result<(VarMap, VlaModel)> {
    cfg.validate().map_err(VlaPolicyError::Config)?;
    let varmap = VarMap::new();
    let vb = SeededVars::builder(&varmap, seed, device);
    let model = VlaModel::new(cfg, vb)?;
    Ok((varmap, model))
}

/// Copies into `varmap` every tensor of the policy folder `dir`'s weights
/// whose name and shape match (a warm start for a grown network). A matrix
/// whose input grew (same rows, more columns, e.g. FiLM reading a longer
/// instruction vector, [`crate::grounding`]) gets the old weights in its
/// leading columns and zeros in the new ones, so the layer computes what it
/// did until training moves the new weights. Returns the names copied (or
/// grown) and the names left at their fresh initialisation.
pub fn warm_start(
    varmap: &VarMap,
    dir: &Path,
    device: &Device,
) -> Result<(Vec<String>, Vec<String>)> {
    let path = dir.join(WEIGHTS_FILE);
    let loaded = candle_core::safetensors::load(&path, device).map_err(|e| {
        VlaPolicyError::CorruptCheckpoint {
            path: path.clone(),
            message: e.to_string(),
        }
    })?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| VlaPolicyError::Config("variable map lock poisoned".into()))?;
    let (mut copied, mut fresh) = (Vec::new(), Vec::new());
    for (name, var) in data.iter() {
        match loaded.get(name) {
            Some(t) if t.shape() == var.shape() => {
                var.set(&t.to_dtype(var.dtype())?)?;
                copied.push(name.clone());
            }
            Some(t)
                if t.rank() == 2
                    && var.rank() == 2
                    && t.dim(0)? == var.dim(0)?
                    && t.dim(1)? < var.dim(1)? =>
            {
                let (rows, old, new) = (var.dim(0)?, t.dim(1)?, var.dim(1)?);
                let zeros = Tensor::zeros((rows, new - old), var.dtype(), device)?;
                var.set(&Tensor::cat(&[&t.to_dtype(var.dtype())?, &zeros], 1)?)?;
                copied.push(name.clone());
            }
            _ => fresh.push(name.clone()),
        }
    }
    copied.sort();
    fresh.sort();
    Ok((copied, fresh))
}

/// Loads a policy folder for inference: the same checks as [`load`], but the
/// model is built from plain tensors (no gradient tracking), which lets the
/// layers take candle's fused kernels.
pub fn load_for_inference(dir: &Path, device: &Device) -> Result<(PolicyConfig, VlaModel)> {
    let (cfg, varmap, _) = load(dir, device)?;
    let model = inference_model(&cfg.model, &varmap, device)?;
    Ok((cfg, model))
}

/// A copy of the model in `varmap` built from plain (untracked) tensors.
pub fn inference_model(cfg: &ModelConfig, varmap: &VarMap, device: &Device) -> Result<VlaModel> {
    let tensors = varmap
        .data()
        .lock()
        .map_err(|_| VlaPolicyError::Config("variable map lock poisoned".into()))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(VlaModel::new(cfg, vb)?)
}

/// Loads a policy folder: config, then weights into a model of that shape.
pub fn load(dir: &Path, device: &Device) -> Result<(PolicyConfig, VarMap, VlaModel)> {
    let cfg = PolicyConfig::read(dir)?;
    let (varmap, model) = fresh_model(&cfg.model, 0, device)?;
    load_into(&varmap, &dir.join(WEIGHTS_FILE), device)?;
    Ok((cfg, varmap, model))
}

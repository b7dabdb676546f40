//! The policy network: a patchify-stem image encoder trained from scratch and
//! conditioned on the instruction (FiLM), spatial-softmax keypoints, the
//! projected MiniLM instruction tokens, a transformer encoder over all of
//! them, and an autoregressive transformer decoder that writes the 8 action
//! tokens.
//!
//! ```text
//! frame 128×128 ─► 4×4 patches → 32 ─► 2×2 merge → 64 ─► 2×2 merge → 128 ─► 2×2 merge → 128 ─► 4×4 = 16 image tokens ─┐
//!   (every stage: ReLU, then ×(1+γ)+β from the mean instruction token)  │                                               │
//!                                             16×16 map ─► spatial softmax ─► 16 keypoints (x, y) ─► 16 tokens ─────────┤
//! hand crop 32×32 (optional, crate::crop) ─► its own stem (2×2 patches → 32 → 64 → 128) ─► 16 tokens + 8 keypoint tokens ┤
//! joint positions (normalised) ─► linear ─► 1 token ────────────────────────────────────────────────────────────────────┤
//! MiniLM tokens (L×384) ─► linear 384→d ────────────────────────────────────────────────────────────────────────────────┼─► encoder ─► memory
//! [BOS, a0 … a6] ─► embed ─► decoder (causal self-attn, cross-attn to memory) ─► logits over 256 bins
//! ```
//!
//! Why keypoints: the objects are 5–7 px wide in a 128 px frame; a 32 px
//! image token would have to encode where inside it the named object lies.
//! A spatial softmax over an instruction-conditioned feature map answers
//! "where is it" directly as coordinates, the representation visuomotor
//! policies have used since Levine et al. (2016), at the cost of one small
//! linear layer.
//!
//! Decoding is greedy and constrained: at position `p` only the bins that
//! [`vla_core::tokenizer::ActionTokenizer::valid_range`] allows are
//! candidates (2 for terminate, 256 otherwise). The cross-attention keys and
//! values of the memory are projected once per step and reused for all 8
//! tokens; the decoder re-runs over at most 8 tokens, which is cheaper than
//! keeping a KV cache at this size.
//!
//! The stem is a stack of non-overlapping patch embeddings (a 4×4 patchify
//! layer as in ConvNeXt, then Swin-style 2×2 patch merging with layer norm),
//! all plain matmuls over reshaped pixels. An equivalent stack of stride-2
//! 3×3 convolutions measured ~3× slower per step on one CPU thread in candle
//! 0.11 (im2col + GEMM on tiny channel counts), for no gain on this task.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use vla_core::tokenizer::{NUM_BINS, TERMINATE_BINS};
use vla_core::TOKENS_PER_STEP;

use crate::broadcast;
use crate::decoding::{add_softmax, log_of_sum, Decoding};
use crate::grounding::InstructionPool;
use crate::nn::{log_softmax_last, Attention, KeyValues, LayerNorm, Linear, Mlp};
use crate::stem::{Stem, StemShape};

/// Added to the scores of masked positions (padding, future tokens, invalid bins).
pub(crate) const NEG_INF: f64 = -1e9;

/// Shape of the network; stored in the checkpoint's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Side of the square RGB input, pixels.
    pub image_size_px: usize,
    /// Side of the first (patchify) stage's patches, pixels.
    pub stem_patch_px: usize,
    /// Output channels of each stem stage: the patchify layer, then one 2×2
    /// merge per further entry; the last is followed by a linear map to `d_model`.
    pub stem_channels: Vec<usize>,
    /// Transformer width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder layers (over image and instruction tokens).
    pub encoder_layers: usize,
    /// Decoder layers (over action tokens).
    pub decoder_layers: usize,
    /// MLP hidden width as a multiple of `d_model`.
    pub mlp_ratio: usize,
    /// Width of the text encoder's token outputs.
    pub text_hidden: usize,
    /// Most instruction tokens the model accepts.
    pub max_text_tokens: usize,
    /// Bins per action dimension (the output vocabulary).
    pub num_bins: usize,
    /// Length of the proprioceptive state vector (normalised joint
    /// positions) fed as one extra encoder token; 0 = images and text only.
    #[serde(default)]
    pub state_dim: usize,
    /// FiLM (RT-1): scale and shift every stem stage's channels by a linear
    /// map of the mean instruction token, so that the image features are
    /// computed for the task at hand. `false` in checkpoints from before it.
    #[serde(default)]
    pub film: bool,
    /// Spatial-softmax keypoints (one encoder token each): per keypoint, a
    /// softmax over the positions of stem stage `keypoint_stage` gives an
    /// expected image position. 0 = none.
    #[serde(default)]
    pub keypoints: usize,
    /// Stem stage whose feature map the keypoints read (0 = the patchify layer).
    #[serde(default)]
    pub keypoint_stage: usize,
    /// Outputs of the auxiliary head (0 = none): one learned query token in
    /// the encoder whose output predicts, in training only, where the named
    /// objects are relative to the gripper ([`crate::data::Sample::aux`]).
    /// Inference ignores the prediction; the token stays in the memory.
    #[serde(default)]
    pub aux_outputs: usize,
    /// One encoder token from the first three keypoints' positions — goal
    /// object − gripper, target object − gripper, gripper — so the
    /// relative offsets the delta tokens depend on are an input rather than
    /// something attention must subtract. Needs `keypoints >= 3`; `false`
    /// in checkpoints from before it.
    #[serde(default)]
    pub relation_token: bool,
    /// One encoder token from the tool centre point's position in the
    /// arm's base frame (forward kinematics of the measured joints,
    /// [`crate::tcp`]): 3 more values after the `state_dim` joint values of
    /// the state vector. `false` in checkpoints from before it.
    #[serde(default)]
    pub tcp_input: bool,
    /// The previous step's executed action ([`crate::prev_action`]): 7
    /// more values after the TCP position in the state vector, read by the
    /// TCP token's projection. Needs `tcp_input`. Not written when `false`
    /// (every policy before session 36).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prev_action_input: bool,
    /// Which of the previous action's values are read (session 37,
    /// [`crate::prev_action::PrevActionParts`]): the others are fed as 0,
    /// so the policy cannot copy them from its last command. The columns
    /// stay, so warm starts in either direction keep their shapes. `all`
    /// in every checkpoint from before it; not written when `all`.
    #[serde(
        default,
        skip_serializing_if = "crate::prev_action::PrevActionParts::is_all"
    )]
    pub prev_action_parts: crate::prev_action::PrevActionParts,
    /// The goal and target objects' keypoints on the episode's first
    /// frame ([`crate::first_keypoints`], session 39): 4 more values at the
    /// end of the state vector, read by the relation token beside the
    /// current keypoints. Needs the relation token and the TCP input. Not
    /// written when `false` (every policy before session 39).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_keypoints: bool,
    /// A second, hand-centred image ([`crate::crop`]): a square window of
    /// the frame around the tool centre point's projection, with its own
    /// stem, tokens and keypoints. `None` in checkpoints from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<CropNetConfig>,
    /// How FiLM (and the keypoint head) read the instruction
    /// ([`crate::grounding`]): 0 = the mean of its tokens (checkpoints
    /// before session 8), `Q > 0` = the mean and `Q` learned
    /// attention-pooling queries.
    #[serde(default)]
    pub instruction_queries: usize,
    /// Hidden width of the keypoint head's context branch ([`crate::stem`]):
    /// 0 = one linear map per cell (checkpoints before session 8); `h > 0` =
    /// plus a ReLU layer over each cell's 3×3 neighbourhood and the pooled
    /// instruction.
    #[serde(default)]
    pub keypoint_hidden: usize,
    /// Keypoint refinement ([`crate::stem`]): 0 = the keypoints' logits
    /// live on stage `keypoint_stage`'s cells (checkpoints before session
    /// 32); `h > 0` = refined onto the twice finer map of the stage before
    /// it by a context branch of width `h` (starting at zero, so a warm
    /// start keeps its keypoints). Needs `keypoint_stage >= 1`.
    #[serde(default)]
    pub keypoint_refine: usize,
    /// Channels each finer-map cell is reduced to before the refinement's
    /// branch reads its 3×3 neighbourhood (the branch's hidden layer has
    /// `9 × keypoint_refine_reduce` inputs per cell, most of its cost).
    /// Checkpoints before session 35 have 16 ([`crate::stem::CONTEXT_REDUCE`],
    /// the coarse context branch's width), and that is what a missing field
    /// means; it is written only when it differs.
    #[serde(
        default = "default_refine_reduce",
        skip_serializing_if = "is_default_refine_reduce"
    )]
    pub keypoint_refine_reduce: usize,
    /// Table-plane offsets ([`crate::table_plane`]): the goal and target
    /// objects' keypoints projected through the calibrated camera onto the
    /// table plane, minus the TCP's position, as 4 more inputs of the
    /// relation token. Needs `relation_token` and `tcp_input`. `None` in
    /// checkpoints from before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_plane: Option<crate::table_plane::TablePlaneConfig>,
}

/// Shape of the hand-crop branch (`ModelConfig::crop`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropNetConfig {
    /// Side of the crop, pixels of the `image_size_px` input.
    pub side_px: usize,
    /// Side of its patchify layer's patches, pixels.
    pub patch_px: usize,
    /// Output channels of each of its stem stages.
    pub channels: Vec<usize>,
    /// Spatial-softmax keypoints on its stage `keypoint_stage` (0 = none);
    /// the first two learn the goal and the target object.
    pub keypoints: usize,
    /// Stage its keypoints read.
    pub keypoint_stage: usize,
}

impl Default for CropNetConfig {
    fn default() -> Self {
        // 32 px of the 128 px frame is ~20 cm of table around the hand; 2 px
        // patches give a 16×16 first map (keypoint cells of 2 px ≈ 1.2 cm).
        Self {
            side_px: 32,
            patch_px: 2,
            channels: vec![32, 64, 128],
            keypoints: 8,
            keypoint_stage: 0,
        }
    }
}

impl CropNetConfig {
    /// Pixels per crop token along each axis.
    pub fn stride(&self) -> usize {
        self.patch_px << self.channels.len().saturating_sub(1)
    }

    /// Number of crop tokens from its last map.
    pub fn image_tokens(&self) -> usize {
        let g = self.side_px / self.stride().max(1);
        g * g
    }

    /// Side of its keypoint map.
    pub fn keypoint_side(&self) -> usize {
        self.side_px / (self.patch_px << self.keypoint_stage)
    }

    /// Bilinear keypoint-map targets of crop pixel `(u, v)`; `None` outside
    /// the crop or without keypoints.
    pub fn keypoint_bilinear(&self, u_px: f32, v_px: f32) -> Option<[(u32, f32); 4]> {
        if self.keypoints == 0 {
            return None;
        }
        crate::stem::bilinear_cells(self.side_px, self.keypoint_side(), u_px, v_px)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let stride = self.stride();
        if self.channels.is_empty()
            || self.patch_px == 0
            || self.side_px == 0
            || !self.side_px.is_multiple_of(stride)
        {
            return Err(format!(
                "crop side_px {} is not a positive multiple of its stem stride {stride} \
                 (patch_px {} × 2^{} merges, channels {:?})",
                self.side_px,
                self.patch_px,
                self.channels.len().saturating_sub(1),
                self.channels
            ));
        }
        if self.keypoints > 0 && self.keypoint_stage >= self.channels.len() {
            return Err(format!(
                "crop keypoint_stage {} does not exist (its stem has {} stages)",
                self.keypoint_stage,
                self.channels.len()
            ));
        }
        Ok(())
    }
}

/// A map over the camera stem's keypoint positions `(B, K, 2)` (map units,
/// [−1, 1]) → the same shape, applied before the keypoint and relation
/// tokens read them ([`VlaModel::encode_hooked`]).
pub type XyHook<'a> = &'a dyn Fn(&Tensor) -> Result<Tensor>;

/// Scale of the keypoint offsets fed to the relation token: a 1.0 input
/// is 1/8 of the image (the keypoint grid runs over [−1, 1]).
const RELATION_SCALE: f64 = 8.0;

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            image_size_px: 128,
            stem_patch_px: 4,
            stem_channels: vec![32, 64, 128, 128],
            d_model: 128,
            heads: 4,
            encoder_layers: 3,
            decoder_layers: 2,
            mlp_ratio: 4,
            text_hidden: crate::text::TEXT_HIDDEN,
            max_text_tokens: crate::text::MAX_TEXT_TOKENS,
            num_bins: NUM_BINS as usize,
            state_dim: 0,
            film: true,
            keypoints: 16,
            keypoint_stage: 1,
            aux_outputs: crate::data::AUX_DIM,
            relation_token: true,
            tcp_input: false,
            prev_action_input: false,
            prev_action_parts: crate::prev_action::PrevActionParts::All,
            first_keypoints: false,
            crop: None,
            instruction_queries: 0,
            keypoint_hidden: 0,
            keypoint_refine: 0,
            keypoint_refine_reduce: crate::stem::CONTEXT_REDUCE,
            table_plane: None,
        }
    }
}

fn default_refine_reduce() -> usize {
    crate::stem::CONTEXT_REDUCE
}

fn is_default_refine_reduce(c: &usize) -> bool {
    *c == crate::stem::CONTEXT_REDUCE
}

impl ModelConfig {
    /// Length of the state vector the encoder reads: the joint values, then
    /// the TCP position if `tcp_input`, then the previous action if
    /// `prev_action_input`, then the first frame's keypoints if
    /// `first_keypoints`.
    pub fn state_width(&self) -> usize {
        self.state_dim + self.tcp_token_width() + self.first_keypoint_width()
    }

    /// Values of the first frame's keypoints at the end of the state vector.
    pub fn first_keypoint_width(&self) -> usize {
        if self.first_keypoints {
            crate::first_keypoints::FIRST_KEYPOINT_DIM
        } else {
            0
        }
    }

    /// Values the TCP token's projection reads: the TCP position, and the
    /// previous action after it.
    pub fn tcp_token_width(&self) -> usize {
        if !self.tcp_input {
            return 0;
        }
        crate::tcp::TCP_DIM
            + if self.prev_action_input {
                crate::prev_action::PREV_ACTION_DIM
            } else {
                0
            }
    }

    /// A very small network for tests.
    pub fn tiny() -> Self {
        Self {
            image_size_px: 32,
            stem_patch_px: 4,
            stem_channels: vec![8, 16],
            d_model: 32,
            heads: 2,
            encoder_layers: 1,
            decoder_layers: 1,
            mlp_ratio: 2,
            keypoints: 4,
            ..Self::default()
        }
    }

    /// Side of the image token grid.
    pub fn grid_side(&self) -> usize {
        self.image_size_px / self.stem_stride()
    }

    /// Pixels per image token along each axis.
    pub fn stem_stride(&self) -> usize {
        self.stem_patch_px << self.stem_channels.len().saturating_sub(1)
    }

    /// Number of image tokens.
    pub fn image_tokens(&self) -> usize {
        self.grid_side() * self.grid_side()
    }

    /// Keypoint-map cell of pixel `(u, v)` of an `image_size_px` input
    /// (pixel centres at integers), the target index of
    /// [`VlaModel::keypoint_loss`]; `None` without keypoints or outside the image.
    pub fn keypoint_cell(&self, u_px: f32, v_px: f32) -> Option<u32> {
        if self.keypoints == 0 {
            return None;
        }
        let g = self.keypoint_side();
        let cell_px = self.image_size_px as f32 / g as f32;
        let (cu, cv) = ((u_px + 0.5) / cell_px, (v_px + 0.5) / cell_px);
        if !(cu >= 0.0 && cv >= 0.0 && cu < g as f32 && cv < g as f32) {
            return None;
        }
        u32::try_from(cv as usize * g + cu as usize).ok()
    }

    /// Bilinear cell targets of pixel `(u, v)` (pixel centres at integers):
    /// the four keypoint-map cells around it and weights summing to 1 whose
    /// weighted mean of cell centres is the pixel (clamped to the outermost
    /// centres), so a keypoint trained on them can sit between cells. `None`
    /// without keypoints or outside the image.
    pub fn keypoint_bilinear(&self, u_px: f32, v_px: f32) -> Option<[(u32, f32); 4]> {
        if self.keypoints == 0 {
            return None;
        }
        crate::stem::bilinear_cells(self.image_size_px, self.keypoint_side(), u_px, v_px)
    }

    /// Side of stem stage `stage`'s feature map.
    pub fn stage_side(&self, stage: usize) -> usize {
        self.image_size_px / (self.stem_patch_px << stage)
    }

    /// Side of the map the camera keypoints' logits cover: stage
    /// `keypoint_stage`'s, or twice that with the refinement.
    pub fn keypoint_side(&self) -> usize {
        let side = self.stage_side(self.keypoint_stage);
        if self.keypoint_refine > 0 {
            2 * side
        } else {
            side
        }
    }

    /// Checks that the numbers fit together; the message names the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.prev_action_input && !self.tcp_input {
            return Err(
                "prev_action_input needs the TCP input (tcp_input): the previous action \
                 feeds the TCP token"
                    .into(),
            );
        }
        if !self.prev_action_parts.is_all() && !self.prev_action_input {
            return Err(
                "prev_action_parts without prev_action_input: there is no previous action \
                 to read parts of"
                    .into(),
            );
        }
        if self.first_keypoints && !(self.relation_token && self.tcp_input) {
            return Err(
                "first_keypoints needs the relation token and the TCP input (relation_token, \
                 tcp_input)"
                    .into(),
            );
        }
        if let Some(plane) = &self.table_plane {
            if !(self.relation_token && self.tcp_input) {
                return Err(
                    "table_plane needs the relation token and the TCP input (relation_token, \
                     tcp_input)"
                        .into(),
                );
            }
            plane.validate()?;
        }
        if self.relation_token && self.keypoints < 3 {
            return Err(format!(
                "relation_token needs at least 3 keypoints, keypoints is {}",
                self.keypoints
            ));
        }
        if self.stem_channels.is_empty() || self.stem_channels.contains(&0) {
            return Err(format!(
                "stem_channels {:?} must name at least one stage, each with channels > 0",
                self.stem_channels
            ));
        }
        let stride = self.stem_stride();
        if stride == 0 || self.image_size_px == 0 || !self.image_size_px.is_multiple_of(stride) {
            return Err(format!(
                "image_size_px {} is not a positive multiple of the stem stride {stride} \
                 (stem_patch_px {} × 2^{} merges)",
                self.image_size_px,
                self.stem_patch_px,
                self.stem_channels.len().saturating_sub(1)
            ));
        }
        if self.heads == 0 || self.d_model == 0 || !self.d_model.is_multiple_of(self.heads) {
            return Err(format!(
                "d_model {} is not a positive multiple of heads {}",
                self.d_model, self.heads
            ));
        }
        if self.num_bins != NUM_BINS as usize {
            return Err(format!(
                "num_bins is {}, the action tokenizer uses {NUM_BINS}",
                self.num_bins
            ));
        }
        if self.text_hidden != crate::text::TEXT_HIDDEN {
            return Err(format!(
                "text_hidden is {}, the text encoder gives {}",
                self.text_hidden,
                crate::text::TEXT_HIDDEN
            ));
        }
        if self.keypoints > 0 && self.keypoint_stage >= self.stem_channels.len() {
            return Err(format!(
                "keypoint_stage {} does not exist (the stem has {} stages)",
                self.keypoint_stage,
                self.stem_channels.len()
            ));
        }
        if self.instruction_queries > 0 && !self.film {
            return Err(format!(
                "instruction_queries {} needs film (the pooled instruction conditions FiLM)",
                self.instruction_queries
            ));
        }
        if self.keypoint_refine > 0 && (self.keypoints == 0 || self.keypoint_stage == 0) {
            return Err(format!(
                "keypoint_refine {} needs keypoints > 0 on a keypoint_stage after the first \
                 (keypoints {}, keypoint_stage {})",
                self.keypoint_refine, self.keypoints, self.keypoint_stage
            ));
        }
        if self.keypoint_refine > 0 && self.keypoint_refine_reduce == 0 {
            return Err("keypoint_refine_reduce must be at least 1 with keypoint_refine".into());
        }
        if self.keypoint_hidden > 0 && self.keypoints == 0 {
            return Err(format!(
                "keypoint_hidden {} needs keypoints > 0",
                self.keypoint_hidden
            ));
        }
        if self.max_text_tokens == 0 || self.mlp_ratio == 0 {
            return Err("max_text_tokens and mlp_ratio must be positive".into());
        }
        if let Some(crop) = &self.crop {
            crop.validate()?;
            if crop.side_px > self.image_size_px {
                return Err(format!(
                    "crop side_px {} is larger than the {} px image",
                    crop.side_px, self.image_size_px
                ));
            }
        }
        Ok(())
    }
}

/// Pre-norm transformer layer; `cross` is present in decoder layers.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) ln_self: LayerNorm,
    pub(crate) self_attn: Attention,
    pub(crate) cross: Option<(LayerNorm, Attention)>,
    pub(crate) ln_mlp: LayerNorm,
    pub(crate) mlp: Mlp,
}

impl Block {
    fn new(cfg: &ModelConfig, with_cross: bool, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let cross = if with_cross {
            Some((
                LayerNorm::new(d, vb.pp("ln_cross"))?,
                Attention::new(d, cfg.heads, vb.pp("cross_attn"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            ln_self: LayerNorm::new(d, vb.pp("ln_self"))?,
            self_attn: Attention::new(d, cfg.heads, vb.pp("self_attn"))?,
            cross,
            ln_mlp: LayerNorm::new(d, vb.pp("ln_mlp"))?,
            mlp: Mlp::new(d, d * cfg.mlp_ratio, vb.pp("mlp"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        self_bias: Option<&Tensor>,
        memory: Option<(&KeyValues, &Tensor)>,
    ) -> Result<Tensor> {
        let h = self.ln_self.forward(x)?;
        let kv = self.self_attn.key_values(&h)?;
        let mut x = (x + self.self_attn.forward(&h, &kv, self_bias)?)?;
        if let (Some((ln, attn)), Some((mem_kv, mem_bias))) = (&self.cross, memory) {
            x = (&x + attn.forward(&ln.forward(&x)?, mem_kv, Some(mem_bias))?)?;
        }
        &x + self.mlp.forward(&self.ln_mlp.forward(&x)?)?
    }
}

/// The encoded observation: memory keys/values for each decoder layer.
pub struct Memory {
    pub(crate) kv: Vec<KeyValues>,
    /// `(B, 1, 1, T)` additive mask of padded instruction tokens.
    pub(crate) bias: Tensor,
    /// `(B, aux_outputs)`: the auxiliary head's prediction, if the model has one.
    pub(crate) aux: Option<Tensor>,
    /// `(B, K, cells)`: the keypoints' logits over the feature map, if any.
    pub(crate) keypoint_logits: Option<Tensor>,
    /// `(B, K, cells)`: the hand-crop keypoints' logits, if any.
    pub(crate) crop_keypoint_logits: Option<Tensor>,
    /// `(B, K, 2)`: the camera keypoints' positions (map units) as the
    /// tokens read them (after any hook), if any.
    pub(crate) keypoint_xy: Option<Tensor>,
}

impl Memory {
    /// The camera keypoints' positions `(B, K, 2)` in [−1, 1] as the
    /// network read them (after any filter, pin or window), if it has any.
    pub fn keypoint_xy(&self) -> Option<&Tensor> {
        self.keypoint_xy.as_ref()
    }

    /// The auxiliary head's prediction `(B, aux_outputs)`, if the model has one.
    pub fn aux_prediction(&self) -> Option<&Tensor> {
        self.aux.as_ref()
    }
}

/// The policy network.
#[derive(Debug, Clone)]
pub struct VlaModel {
    cfg: ModelConfig,
    /// The camera frame's stem (with its keypoints).
    stem: Stem,
    /// The instruction → FiLM / keypoint conditioning vector (with FiLM).
    pool: Option<InstructionPool>,
    stem_proj: Linear,
    /// The hand crop's stem, its map → token projection and token positions.
    crop: Option<(Stem, Linear, Tensor)>,
    image_pos: Tensor,
    text_proj: Linear,
    text_pos: Tensor,
    /// Projection of the proprioceptive state to one token (`state_dim > 0`).
    state_proj: Option<Linear>,
    /// Projection of the TCP position to one token (`tcp_input`).
    tcp_proj: Option<Linear>,
    /// Auxiliary query token `(1, d)` and its head (`aux_outputs > 0`).
    aux: Option<(Tensor, Linear)>,
    /// Relation token: keypoint offsets (6 values, plus the table-plane
    /// offsets' 4) → `d`, plus its embedding `(1, d)`.
    relation: Option<(Linear, Tensor)>,
    /// The table-plane geometry (`table_plane`).
    table_plane: Option<crate::table_plane::TablePlane>,
    encoder: Vec<Block>,
    ln_memory: LayerNorm,
    pub(crate) action_embed: Tensor,
    pub(crate) action_pos: Tensor,
    pub(crate) decoder: Vec<Block>,
    pub(crate) ln_out: LayerNorm,
    pub(crate) head: Linear,
    /// `(8, num_bins)`: 0 where a bin is valid at a position, −1e9 elsewhere.
    valid_bias: Tensor,
    /// `(8, 8)` causal mask of the decoder.
    causal_bias: Tensor,
}

impl VlaModel {
    /// Builds the network, creating (or fetching) its variables through `vb`.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let d = cfg.d_model;
        let pool = if cfg.film {
            Some(InstructionPool::new(
                cfg.text_hidden,
                cfg.instruction_queries,
                vb.pp("instruction_pool"),
            )?)
        } else {
            None
        };
        let film_text_hidden = pool.as_ref().map(InstructionPool::width);
        let stem = Stem::new(
            &StemShape {
                image_px: cfg.image_size_px,
                patch_px: cfg.stem_patch_px,
                channels: &cfg.stem_channels,
                film_text_hidden,
                keypoints: cfg.keypoints,
                keypoint_stage: cfg.keypoint_stage,
                d_model: d,
                keypoint_hidden: cfg.keypoint_hidden,
                keypoint_refine: cfg.keypoint_refine,
                keypoint_refine_reduce: cfg.keypoint_refine_reduce,
            },
            vb.pp("stem"),
            vb.pp("keypoints"),
        )?;
        let c_in = *cfg.stem_channels.last().unwrap_or(&0);
        let small = Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        };
        let crop = match &cfg.crop {
            Some(c) => {
                let vb_c = vb.pp("crop");
                let stem = Stem::new(
                    &StemShape {
                        image_px: c.side_px,
                        patch_px: c.patch_px,
                        channels: &c.channels,
                        film_text_hidden,
                        keypoints: c.keypoints,
                        keypoint_stage: c.keypoint_stage,
                        d_model: d,
                        keypoint_hidden: 0,
                        keypoint_refine: 0,
                        keypoint_refine_reduce: crate::stem::CONTEXT_REDUCE,
                    },
                    vb_c.pp("stem"),
                    vb_c.pp("keypoints"),
                )?;
                let c_last = *c.channels.last().unwrap_or(&0);
                Some((
                    stem,
                    Linear::new(c_last, d, vb_c.pp("proj"))?,
                    vb_c.get_with_hints((c.image_tokens(), d), "pos", small)?,
                ))
            }
            None => None,
        };
        let encoder = (0..cfg.encoder_layers)
            .map(|i| Block::new(cfg, false, vb.pp(format!("encoder.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| Block::new(cfg, true, vb.pp(format!("decoder.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let dev = vb.device().clone();
        Ok(Self {
            stem,
            pool,
            crop,
            stem_proj: Linear::new(c_in, d, vb.pp("stem_proj"))?,
            image_pos: vb.get_with_hints((cfg.image_tokens(), d), "image_pos", small)?,
            text_proj: Linear::new(cfg.text_hidden, d, vb.pp("text_proj"))?,
            text_pos: vb.get_with_hints((cfg.max_text_tokens, d), "text_pos", small)?,
            state_proj: if cfg.state_dim > 0 {
                Some(Linear::new(cfg.state_dim, d, vb.pp("state_proj"))?)
            } else {
                None
            },
            tcp_proj: if cfg.tcp_input {
                Some(Linear::new(cfg.tcp_token_width(), d, vb.pp("tcp_proj"))?)
            } else {
                None
            },
            aux: if cfg.aux_outputs > 0 {
                Some((
                    vb.get_with_hints((1, d), "aux_query", small)?,
                    Linear::new(d, cfg.aux_outputs, vb.pp("aux_head"))?,
                ))
            } else {
                None
            },
            relation: if cfg.relation_token {
                Some((
                    Linear::new(
                        6 + if cfg.table_plane.is_some() {
                            crate::table_plane::TABLE_PLANE_DIM
                        } else {
                            0
                        } + cfg.first_keypoint_width()
                            + cfg.table_plane.as_ref().map_or(0, |p| p.fine_width())
                            + cfg.table_plane.as_ref().map_or(0, |p| p.held_width()),
                        d,
                        vb.pp("relation.proj"),
                    )?,
                    vb.get_with_hints((1, d), "relation.embed", small)?,
                ))
            } else {
                None
            },
            table_plane: match &cfg.table_plane {
                Some(plane) => Some(crate::table_plane::TablePlane::new(plane, &dev)?),
                None => None,
            },
            encoder,
            ln_memory: LayerNorm::new(d, vb.pp("ln_memory"))?,
            action_embed: vb.get_with_hints((cfg.num_bins + 1, d), "action_embed", small)?,
            action_pos: vb.get_with_hints((TOKENS_PER_STEP, d), "action_pos", small)?,
            decoder,
            ln_out: LayerNorm::new(d, vb.pp("ln_out"))?,
            head: Linear::new(d, cfg.num_bins, vb.pp("head"))?,
            valid_bias: valid_bias(cfg.num_bins, &dev)?,
            causal_bias: causal_bias(TOKENS_PER_STEP, &dev)?,
            cfg: cfg.clone(),
        })
    }

    /// The network's shape.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Encodes images `(B, 3, S, S)` in [0, 1] and projected instruction
    /// tokens: `text (B, L, 384)` with `text_mask (B, L)` (1 = real token,
    /// 0 = padding). Returns the decoder's memory. For models without
    /// proprioceptive input (`state_dim == 0`).
    pub fn encode(&self, images: &Tensor, text: &Tensor, text_mask: &Tensor) -> Result<Memory> {
        self.encode_with_state(images, text, text_mask, None)
    }

    /// [`Self::encode`] plus the normalised proprioceptive state
    /// `(B, state_width())` (joints, then the TCP position), required
    /// exactly when [`ModelConfig::state_width`] is positive.
    pub fn encode_with_state(
        &self,
        images: &Tensor,
        text: &Tensor,
        text_mask: &Tensor,
        state: Option<&Tensor>,
    ) -> Result<Memory> {
        self.encode_all(images, None, text, text_mask, state)
    }

    /// Inference only: a local soft-argmax for the camera stem's keypoints
    /// (`config.json` `keypoint_window`; [`crate::stem`]'s
    /// `set_keypoint_window`). `None`: the whole map, as trained.
    pub fn set_keypoint_window(&mut self, window: Option<crate::keypoint_window::KeypointWindow>) {
        self.stem.set_keypoint_window(window);
    }

    /// [`Self::encode_with_state`] plus the hand crops `(B, 3, c, c)` in
    /// [0, 1] ([`crate::crop`]), required exactly when the model has a crop
    /// branch ([`ModelConfig::crop`]).
    pub fn encode_all(
        &self,
        images: &Tensor,
        crops: Option<&Tensor>,
        text: &Tensor,
        text_mask: &Tensor,
        state: Option<&Tensor>,
    ) -> Result<Memory> {
        self.encode_shifted(images, crops, text, text_mask, state, None)
    }

    /// [`Self::encode_all`] for images that augmentation translated:
    /// `shift_px` `(B, 2)` is how far each image's content moved (pixels,
    /// x right and y down), which the table-plane offsets undo before
    /// projecting the keypoints through the camera (the camera did not
    /// move). Ignored by models without them.
    pub fn encode_shifted(
        &self,
        images: &Tensor,
        crops: Option<&Tensor>,
        text: &Tensor,
        text_mask: &Tensor,
        state: Option<&Tensor>,
        shift_px: Option<&Tensor>,
    ) -> Result<Memory> {
        self.encode_hooked(images, crops, text, text_mask, state, shift_px, None)
    }

    /// [`Self::encode_shifted`] with the camera stem's keypoint positions
    /// passed through `xy_hook` before the keypoint and relation tokens
    /// read them (an inference-time filter, [`crate::keypoint_memory`]).
    #[allow(clippy::too_many_arguments)]
    pub fn encode_hooked(
        &self,
        images: &Tensor,
        crops: Option<&Tensor>,
        text: &Tensor,
        text_mask: &Tensor,
        state: Option<&Tensor>,
        shift_px: Option<&Tensor>,
        xy_hook: Option<XyHook<'_>>,
    ) -> Result<Memory> {
        let (b, l, _) = text.dims3()?;
        if l > self.cfg.max_text_tokens {
            candle_core::bail!(
                "instruction has {l} tokens, the model accepts {}",
                self.cfg.max_text_tokens
            );
        }
        // The pooled instruction, for FiLM: (B, pool width).
        let pooled = match &self.pool {
            Some(pool) => Some(pool.forward(text, text_mask)?),
            None => None,
        };
        let main = self.stem.forward_hooked(images, pooled.as_ref(), xy_hook)?;
        let keypoint_tokens = main.keypoint_tokens;
        let keypoint_logits = main.keypoint_logits;
        let keypoint_xy = main.keypoint_xy;
        let x = main.map;
        let (crop_tokens, crop_keypoint_tokens, crop_keypoint_logits) = match (&self.crop, crops) {
            (Some((stem, proj, pos)), Some(crops)) => {
                let (cb, _, _, _) = crops.dims4()?;
                if cb != b {
                    candle_core::bail!("{cb} crops for a batch of {b}");
                }
                let out = stem.forward(crops, pooled.as_ref())?;
                let tokens = broadcast::add(&proj.forward(&out.map.flatten(1, 2)?)?, pos)?;
                (Some(tokens), out.keypoint_tokens, out.keypoint_logits)
            }
            (Some(_), None) => {
                candle_core::bail!("this model reads a hand crop and none was given")
            }
            (None, Some(_)) => candle_core::bail!("this model takes no hand crop"),
            (None, None) => (None, None, None),
        };
        let x = x.flatten(1, 2)?; // (B, g·g, C)
        let img = broadcast::add(&self.stem_proj.forward(&x)?, &self.image_pos)?;
        let txt = broadcast::add(
            &self.text_proj.forward(text)?,
            &self.text_pos.narrow(0, 0, l)?,
        )?;
        let width = self.cfg.state_width();
        let (state_token, tcp_token) = match state {
            Some(_) if width == 0 => candle_core::bail!("this model takes no joint state"),
            None if width > 0 => candle_core::bail!(
                "this model reads a {width}-value state (joints{}) and none was given",
                if self.cfg.tcp_input {
                    " and TCP position"
                } else {
                    ""
                }
            ),
            None => (None, None),
            Some(state) => {
                let (sb, sd) = state.dims2()?;
                if sb != b || sd != width {
                    candle_core::bail!("state is {sb}×{sd}, the model takes {b}×{width}");
                }
                let joints = match &self.state_proj {
                    Some(proj) => Some(
                        proj.forward(&state.narrow(1, 0, self.cfg.state_dim)?)?
                            .unsqueeze(1)?,
                    ),
                    None => None,
                };
                let tcp = match &self.tcp_proj {
                    Some(proj) => Some(
                        proj.forward(&state.narrow(
                            1,
                            self.cfg.state_dim,
                            self.cfg.tcp_token_width(),
                        )?)?
                        .unsqueeze(1)?,
                    ),
                    None => None,
                };
                (joints, tcp)
            }
        };
        let relation_token = match (&self.relation, &keypoint_xy) {
            (Some((proj, embed)), Some(xy)) => {
                // (B, K, 2) → [p0 − p2, p1 − p2] · scale, p2: (B, 6).
                let p = |k: usize| xy.narrow(1, k, 1).and_then(|t| t.squeeze(1));
                let grip = p(2)?;
                let mut fine: Option<[Tensor; 2]> = None;
                let mut held: Option<Tensor> = None;
                let mut parts = vec![
                    ((p(0)? - &grip)? * RELATION_SCALE)?,
                    ((p(1)? - &grip)? * RELATION_SCALE)?,
                    grip.clone(),
                ];
                if let Some(plane) = &self.table_plane {
                    // Validated: the TCP input follows the joints in `state`.
                    let Some(state) = state else {
                        candle_core::bail!("table-plane offsets need the TCP input")
                    };
                    let tcp = state.narrow(1, self.cfg.state_dim, crate::tcp::TCP_DIM)?;
                    // Where the keypoints were before the shift, map units.
                    let unshift = |xy: Tensor| match shift_px {
                        Some(d) => xy - (d * (2.0 / self.cfg.image_size_px as f64))?,
                        None => Ok(xy),
                    };
                    let (goal, target) = (unshift(p(0)?)?, unshift(p(1)?)?);
                    parts.push(plane.offsets(&goal, &tcp)?);
                    parts.push(plane.offsets(&target, &tcp)?);
                    // The fine offsets go last (below), so that a warm start
                    // grows the relation weights by zero columns at the end.
                    if let (Some(g), Some(t)) =
                        (plane.fine(&goal, &tcp)?, plane.fine(&target, &tcp)?)
                    {
                        fine = Some([g, t]);
                    }
                    held = plane.held(&goal, &tcp)?;
                }
                if self.cfg.first_keypoints {
                    // Validated: they end the state vector, after the TCP token's values.
                    let Some(state) = state else {
                        candle_core::bail!("the first frame's keypoints need the state vector")
                    };
                    let first = state.narrow(
                        1,
                        self.cfg.state_dim + self.cfg.tcp_token_width(),
                        crate::first_keypoints::FIRST_KEYPOINT_DIM,
                    )?;
                    // [f0 − p2, f1 − p2] · scale, as the current offsets.
                    parts.push(((first.narrow(1, 0, 2)? - &grip)? * RELATION_SCALE)?);
                    parts.push(((first.narrow(1, 2, 2)? - &grip)? * RELATION_SCALE)?);
                }
                if let Some([g, t]) = fine {
                    parts.push(g);
                    parts.push(t);
                }
                // The held offsets after them (same reason).
                if let Some(h) = held {
                    parts.push(h);
                }
                let input = Tensor::cat(&parts, 1)?;
                Some(broadcast::add(&proj.forward(&input)?, embed)?.unsqueeze(1)?)
            }
            _ => None,
        };
        let mut parts = vec![&img];
        if let Some(t) = &keypoint_tokens {
            parts.push(t);
        }
        if let Some(t) = &relation_token {
            parts.push(t);
        }
        if let Some(t) = &crop_tokens {
            parts.push(t);
        }
        if let Some(t) = &crop_keypoint_tokens {
            parts.push(t);
        }
        if let Some(t) = &state_token {
            parts.push(t);
        }
        if let Some(t) = &tcp_token {
            parts.push(t);
        }
        let aux_token = match &self.aux {
            Some((query, _)) => Some(query.unsqueeze(0)?.repeat((b, 1, 1))?),
            None => None,
        };
        if let Some(t) = &aux_token {
            parts.push(t);
        }
        parts.push(&txt);
        let mut h = Tensor::cat(&parts, 1)?;
        let n_img = self.cfg.image_tokens()
            + keypoint_tokens.as_ref().map_or(0, |_| self.cfg.keypoints)
            + usize::from(relation_token.is_some())
            + crop_tokens.as_ref().map_or(Ok(0), |t| t.dim(1))?
            + crop_keypoint_tokens.as_ref().map_or(Ok(0), |t| t.dim(1))?
            + usize::from(state_token.is_some())
            + usize::from(tcp_token.is_some())
            + usize::from(aux_token.is_some());
        let keep = Tensor::cat(
            &[
                &Tensor::ones((b, n_img), DType::F32, images.device())?,
                &text_mask.to_dtype(DType::F32)?,
            ],
            1,
        )?;
        let bias = ((keep - 1.0)? * -NEG_INF)?.reshape((b, 1, 1, n_img + l))?;
        for block in &self.encoder {
            h = block.forward(&h, Some(&bias), None)?;
        }
        let h = self.ln_memory.forward(&h)?;
        let aux = match &self.aux {
            // The aux token sits right before the instruction tokens.
            Some((_, head)) => Some(head.forward(&h.narrow(1, n_img - 1, 1)?.squeeze(1)?)?),
            None => None,
        };
        let kv = self
            .decoder
            .iter()
            .map(|blk| match &blk.cross {
                Some((_, attn)) => attn.key_values(&h),
                None => candle_core::bail!("decoder block without cross-attention"),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Memory {
            kv,
            bias,
            aux,
            keypoint_logits,
            crop_keypoint_logits,
            keypoint_xy,
        })
    }

    /// Decoder logits `(B, T, num_bins)` for inputs `(B, T)` of bins where
    /// index `num_bins` is the begin token; invalid bins are masked.
    fn decode_logits(&self, memory: &Memory, inputs: &Tensor) -> Result<Tensor> {
        let (b, t) = inputs.dims2()?;
        let d = self.cfg.d_model;
        let emb = self
            .action_embed
            .index_select(&inputs.flatten_all()?, 0)?
            .reshape((b, t, d))?;
        let emb = broadcast::add(&emb, &self.action_pos.narrow(0, 0, t)?)?;
        let causal = self.causal_bias.narrow(0, 0, t)?.narrow(1, 0, t)?;
        let mut h = emb;
        for (blk, kv) in self.decoder.iter().zip(&memory.kv) {
            h = blk.forward(&h, Some(&causal), Some((kv, &memory.bias)))?;
        }
        let logits = self.head.forward(&self.ln_out.forward(&h)?)?;
        logits.broadcast_add(&self.valid_bias.narrow(0, 0, t)?)
    }

    /// Teacher-forced logits `(B, 8, num_bins)` for target bins `(B, 8)` u32.
    pub fn forward_teacher(&self, memory: &Memory, target_bins: &Tensor) -> Result<Tensor> {
        let b = target_bins.dim(0)?;
        let bos = Tensor::full(self.cfg.num_bins as u32, (b, 1), target_bins.device())?;
        let inputs = Tensor::cat(&[&bos, &target_bins.narrow(1, 0, TOKENS_PER_STEP - 1)?], 1)?;
        self.decode_logits(memory, &inputs)
    }

    /// Mean cross-entropy of the 8 target bins and the fraction predicted
    /// exactly (argmax), for a batch.
    pub fn loss(&self, memory: &Memory, target_bins: &Tensor) -> Result<(Tensor, Tensor)> {
        let logits = self.forward_teacher(memory, target_bins)?;
        let logp = log_softmax_last(&logits)?;
        let picked = logp.gather(&target_bins.unsqueeze(D::Minus1)?, D::Minus1)?;
        let loss = picked.mean_all()?.neg()?;
        let correct = logits
            .argmax(D::Minus1)?
            .eq(target_bins)?
            .to_dtype(DType::F32)?
            .mean_all()?;
        Ok((loss, correct))
    }

    /// Cross-entropy against soft targets `(B, 8, num_bins)` (each row a
    /// distribution over the position's valid bins), and the plain
    /// cross-entropy of the hard target bins `(B, 8)` from the same logits
    /// (comparable with [`Self::loss`]).
    pub fn loss_soft(
        &self,
        memory: &Memory,
        target_bins: &Tensor,
        soft_targets: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let logits = self.forward_teacher(memory, target_bins)?;
        let logp = log_softmax_last(&logits)?;
        let (b, t, _) = logp.dims3()?;
        let soft = (logp.mul(soft_targets)?.sum_all()? / (b * t) as f64)?.neg()?;
        let hard = logp
            .gather(&target_bins.unsqueeze(D::Minus1)?, D::Minus1)?
            .mean_all()?
            .neg()?;
        Ok((soft, hard.detach()))
    }

    /// Masked mean squared error of the auxiliary head against `targets`
    /// `(B, aux_outputs)` where `mask` `(B, aux_outputs)` is 1; `None` for a
    /// model without the head.
    pub fn aux_loss(
        &self,
        memory: &Memory,
        targets: &Tensor,
        mask: &Tensor,
    ) -> Result<Option<Tensor>> {
        let Some(pred) = &memory.aux else {
            return Ok(None);
        };
        let err = ((pred - targets)? * mask)?.sqr()?.sum_all()?;
        let count = mask.sum_all()?.clamp(1.0, f64::MAX)?;
        Ok(Some(err.div(&count)?))
    }

    /// Cross-entropy of the first keypoints' distributions over the feature
    /// map against soft cell targets: `cells (B, n, m)` (u32) with weights
    /// `(B, n, m)` summing to 1 for a keypoint whose target is known and to
    /// 0 otherwise (e.g. the bilinear cells of
    /// [`ModelConfig::keypoint_bilinear`], or one cell with weight 1),
    /// averaged over the known keypoints; `None` for a model without keypoints.
    pub fn keypoint_loss(
        &self,
        memory: &Memory,
        cells: &Tensor,
        weights: &Tensor,
    ) -> Result<Option<Tensor>> {
        match &memory.keypoint_logits {
            Some(logits) => soft_cell_ce(logits, cells, weights).map(Some),
            None => Ok(None),
        }
    }

    /// [`Self::keypoint_loss`] for the hand crop's keypoints, with cells of
    /// [`CropNetConfig::keypoint_bilinear`]; `None` without them.
    pub fn crop_keypoint_loss(
        &self,
        memory: &Memory,
        cells: &Tensor,
        weights: &Tensor,
    ) -> Result<Option<Tensor>> {
        match &memory.crop_keypoint_logits {
            Some(logits) => soft_cell_ce(logits, cells, weights).map(Some),
            None => Ok(None),
        }
    }

    /// The camera frame's keypoint logits `(B, K, cells)` from the stem
    /// alone (no transformer): what perception-only training
    /// ([`crate::train::TrainOptions::perception_only`]) fits. `None` for a
    /// model without keypoints.
    pub fn keypoint_logits(
        &self,
        images: &Tensor,
        text: &Tensor,
        text_mask: &Tensor,
    ) -> Result<Option<Tensor>> {
        let pooled = match &self.pool {
            Some(pool) => Some(pool.forward(text, text_mask)?),
            None => None,
        };
        Ok(self.stem.forward(images, pooled.as_ref())?.keypoint_logits)
    }

    /// [`Self::keypoint_loss`] on logits from [`Self::keypoint_logits`].
    pub fn keypoint_loss_of(logits: &Tensor, cells: &Tensor, weights: &Tensor) -> Result<Tensor> {
        soft_cell_ce(logits, cells, weights)
    }

    /// Greedy constrained decoding of one observation (batch 1): the 8 bins.
    pub fn generate(&self, memory: &Memory) -> Result<[u32; TOKENS_PER_STEP]> {
        self.generate_with(memory, Decoding::Greedy)
    }

    /// Constrained decoding of one observation (batch 1) choosing each bin
    /// by `decoding` among the position's valid bins: the 8 bins.
    pub fn generate_with(
        &self,
        memory: &Memory,
        decoding: Decoding,
    ) -> Result<[u32; TOKENS_PER_STEP]> {
        let dev = memory.bias.device();
        let mut bins = [0u32; TOKENS_PER_STEP];
        let mut inputs = vec![self.cfg.num_bins as u32];
        for (pos, slot) in bins.iter_mut().enumerate() {
            let x = Tensor::new(inputs.as_slice(), dev)?.unsqueeze(0)?;
            let last = self.valid_logits_at(memory, &x, pos)?;
            *slot = decoding.choose(pos, &last) as u32;
            inputs.push(*slot);
        }
        Ok(bins)
    }

    /// The logits of position `pos` over its valid bins after feeding
    /// `inputs` `(1, pos + 1)` (the begin token and the bins chosen so far).
    fn valid_logits_at(&self, memory: &Memory, inputs: &Tensor, pos: usize) -> Result<Vec<f32>> {
        let logits = self.decode_logits(memory, inputs)?; // (1, pos+1, bins)
        logits
            .get(0)?
            .get(pos)?
            .narrow(0, 0, valid_bins(pos) as usize)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()
    }

    /// Constrained decoding by an ensemble through candle (the fallback of
    /// [`crate::fast_decode::FastDecoder::generate_joint`], which it
    /// equals): each position's distribution is the mean of the members'
    /// softmax distributions over the valid bins, and every member is fed
    /// the bin chosen from it.
    pub fn generate_joint_with(
        members: &[(&VlaModel, &Memory)],
        decoding: Decoding,
    ) -> Result<[u32; TOKENS_PER_STEP]> {
        let Some((first, first_memory)) = members.first() else {
            candle_core::bail!("an ensemble needs at least one member");
        };
        let dev = first_memory.bias.device();
        let mut bins = [0u32; TOKENS_PER_STEP];
        let mut inputs = vec![first.cfg.num_bins as u32];
        for (pos, slot) in bins.iter_mut().enumerate() {
            let x = Tensor::new(inputs.as_slice(), dev)?.unsqueeze(0)?;
            let valid = valid_bins(pos) as usize;
            let mut mean_p = vec![0f32; valid];
            for (model, memory) in members {
                add_softmax(&model.valid_logits_at(memory, &x, pos)?, &mut mean_p);
            }
            *slot = decoding.choose(pos, &log_of_sum(&mean_p)) as u32;
            inputs.push(*slot);
        }
        Ok(bins)
    }
}

/// Cross-entropy of keypoint distributions `logits (B, K, cells)` against
/// soft cell targets `cells`/`weights (B, n, m)` for the first `n` keypoints,
/// averaged over the keypoints whose target is known (weights summing to 1).
fn soft_cell_ce(logits: &Tensor, cells: &Tensor, weights: &Tensor) -> Result<Tensor> {
    let n = cells.dim(1)?.min(logits.dim(1)?);
    let logp = log_softmax_last(&logits.narrow(1, 0, n)?)?;
    let weights = weights.narrow(1, 0, n)?;
    let picked = logp.gather(&cells.narrow(1, 0, n)?.contiguous()?, 2)?;
    let total = (picked * &weights)?.sum_all()?.neg()?;
    let count = weights.sum_all()?.clamp(1.0, f64::MAX)?;
    total.div(&count)
}

/// Number of bins valid at token position `pos`.
pub fn valid_bins(pos: usize) -> u32 {
    if pos == 0 {
        TERMINATE_BINS
    } else {
        NUM_BINS
    }
}

fn valid_bias(num_bins: usize, dev: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; TOKENS_PER_STEP * num_bins];
    for pos in 0..TOKENS_PER_STEP {
        for bin in valid_bins(pos) as usize..num_bins {
            v[pos * num_bins + bin] = NEG_INF as f32;
        }
    }
    Tensor::from_vec(v, (TOKENS_PER_STEP, num_bins), dev)
}

fn causal_bias(n: usize, dev: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..n * n)
        .map(|i| if i % n > i / n { NEG_INF as f32 } else { 0.0 })
        .collect();
    Tensor::from_vec(v, (n, n), dev)
}

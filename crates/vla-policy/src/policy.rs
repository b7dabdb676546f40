//! [`VlaPolicy`]: a loaded checkpoint plus the text encoder, implementing
//! [`vla_core::Policy`].
//!
//! `reset(instruction)` runs MiniLM once and keeps its token outputs;
//! `act` resizes the frame, picks the joints the checkpoint reads (if it
//! reads any: see [`crate::checkpoint::StateSpec`]) out of the joint state by
//! name (and, for policies with a TCP input, computes the tool centre
//! point's position from them: [`crate::tcp`]), runs the image encoder and
//! the transformer, and decodes 8 tokens within the valid range of each
//! position by the checkpoint's [`crate::decoding`] rule. A checkpoint that
//! names ensemble members ([`crate::ensemble`]) runs every member's network
//! on the same inputs and decodes from their mean distributions.

use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{
    Action, ActionTokens, Instruction, JointState, Policy, PolicyError, PolicyStep, RgbFrame,
    TOKENS_PER_STEP,
};

use crate::checkpoint::{self, PolicyConfig};
use crate::decoding::Decoding;
use crate::error::{Result, VlaPolicyError};
use crate::fast_decode::FastDecoder;
use crate::image::{chw_tensor, to_model_rgb8};
use crate::keypoint_memory::KeypointMemory;
use crate::model::VlaModel;
use crate::tcp::TcpInput;
use crate::text::TextEncoder;

/// An instruction encoded for the model: `(1, L, 384)` tokens and `(1, L)` mask.
#[derive(Debug, Clone)]
pub struct InstructionTokens {
    tokens: Tensor,
    mask: Tensor,
}

impl InstructionTokens {
    /// Wraps MiniLM token outputs `(L, 384)`, keeping at most `max_tokens`.
    pub fn from_text_outputs(tokens: &Tensor, max_tokens: usize) -> Result<Self> {
        let l = tokens.dim(0)?.min(max_tokens);
        let tokens = tokens.narrow(0, 0, l)?.unsqueeze(0)?;
        let mask = Tensor::ones((1, l), DType::F32, tokens.device())?;
        Ok(Self { tokens, mask })
    }
}

/// A trained policy, ready to drive an arm.
pub struct VlaPolicy {
    config: PolicyConfig,
    model: VlaModel,
    /// The decoder as flat weights (CPU only); `None` decodes through candle.
    fast: Option<FastDecoder>,
    /// Further ensemble members (`config.json` `ensemble`), same shape.
    members: Vec<Member>,
    text: Option<Arc<TextEncoder>>,
    instruction: Option<InstructionTokens>,
    /// The forward kinematics behind the TCP input (`config.json` `tcp`).
    tcp: Option<TcpInput>,
    /// The target keypoint's filter (`config.json` `keypoint_memory`): a
    /// step updates it through `&self`, a new instruction empties it.
    memory: Option<Mutex<KeypointMemory>>,
    /// The action decoded on the last step, for policies that read it
    /// (`prev_action_input`, [`crate::prev_action`]): a step updates it
    /// through `&self`, a new instruction empties it.
    previous: Mutex<Option<Action>>,
    /// The goal and target keypoints (map units) of the first frame after
    /// the instruction, for policies that read them (`first_keypoints`,
    /// [`crate::first_keypoints`]): the first step sets them, a new
    /// instruction empties them.
    first_xy: Mutex<Option<[f32; crate::first_keypoints::FIRST_KEYPOINT_DIM]>>,
    /// Keypoints held at given positions (map units) on every step, for
    /// diagnostics ([`Self::pin_keypoint_px`]).
    pinned: Vec<(usize, [f32; 2])>,
    device: Device,
}

impl VlaPolicy {
    /// Loads `dir` (config.json + model.safetensors) on the CPU, with the
    /// text encoder from its default location (`VLA_TEXT_ENCODER` or the
    /// user cache, fetched on first use).
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, None, &Device::Cpu)
    }

    /// Loads `dir`, taking the text encoder from `text_encoder_dir` if given.
    pub fn load_with(dir: &Path, text_encoder_dir: Option<&Path>, device: &Device) -> Result<Self> {
        let (config, model) = checkpoint::load_for_inference(dir, device)?;
        let tcp = match &config.tcp {
            Some(spec) => Some(TcpInput::load(dir, spec)?),
            None => None,
        };
        let members = crate::ensemble::load_members(dir, &config, device)?;
        let text = TextEncoder::from_default_location(text_encoder_dir, device)?;
        let mut policy = Self::from_parts(config, model, Some(Arc::new(text)), device);
        policy.tcp = tcp;
        policy.members = members
            .into_iter()
            .map(|(_, mut model)| {
                model.set_keypoint_window(policy.config.keypoint_window.clone());
                Member::new(model, &policy.config, device)
            })
            .collect();
        Ok(policy)
    }

    /// Adds a network to decode together with this policy's own
    /// ([`crate::ensemble`]); its config must match ([`crate::ensemble::check_member`]).
    pub fn add_member(&mut self, config: &PolicyConfig, model: VlaModel) -> Result<()> {
        crate::ensemble::check_member(&self.config, config, Path::new("(in memory)"))?;
        self.members
            .push(Member::new(model, &self.config, &self.device));
        Ok(())
    }

    /// Number of networks that decode together (1 without an ensemble).
    pub fn ensemble_size(&self) -> usize {
        1 + self.members.len()
    }

    /// Assembles a policy from a model already in memory. Without a text
    /// encoder, instructions must be given as tokens
    /// ([`Self::set_instruction_tokens`]). A config with a TCP input also
    /// needs [`Self::set_tcp_input`] before the first step.
    pub fn from_parts(
        config: PolicyConfig,
        model: VlaModel,
        text: Option<Arc<TextEncoder>>,
        device: &Device,
    ) -> Self {
        // Copying the weights only fails for a model without decoder
        // cross-attention, which `VlaModel::new` never builds; candle's
        // decoder gives the same tokens then, only slower.
        let mut model = model;
        model.set_keypoint_window(config.keypoint_window.clone());
        let fast = fast_decoder(&model, &config, device);
        let memory = config
            .keypoint_memory
            .map(|spec| Mutex::new(KeypointMemory::new(spec)));
        Self {
            config,
            model,
            fast,
            members: Vec::new(),
            text,
            instruction: None,
            tcp: None,
            memory,
            previous: Mutex::new(None),
            first_xy: Mutex::new(None),
            pinned: Vec::new(),
            device: device.clone(),
        }
    }

    /// Diagnostics: holds camera keypoint `k` at pixel `(u, v)` of the
    /// model's input frame (pixel centres at integers, as
    /// [`Self::keypoints_px`] reports them) on every following step, in
    /// place of the network's own estimate (after the keypoint filter, if
    /// any); `None` releases it. E.g. the objects' true pixels, to measure
    /// what perfect keypoints would be worth
    /// (`vla-cli/examples/oracle_keypoints.rs`).
    pub fn pin_keypoint_px(&mut self, k: usize, uv_px: Option<[f32; 2]>) -> Result<()> {
        let keypoints = self.config.model.keypoints;
        if k >= keypoints {
            return Err(VlaPolicyError::Config(format!(
                "keypoint {k} pinned, the model has {keypoints}"
            )));
        }
        let xy = match uv_px {
            None => None,
            Some(uv) if uv.iter().all(|v| v.is_finite()) => {
                let side = self.config.model.image_size_px as f32;
                let to_map = |p: f32| 2.0 * (p + 0.5) / side - 1.0;
                Some([to_map(uv[0]), to_map(uv[1])])
            }
            Some(uv) => {
                return Err(VlaPolicyError::Data(format!(
                    "keypoint {k} pinned at a non-finite pixel {uv:?}"
                )))
            }
        };
        self.pinned.retain(|&(pinned, _)| pinned != k);
        if let Some(xy) = xy {
            self.pinned.push((k, xy));
        }
        Ok(())
    }

    /// Turns the target keypoint's filter on or off from now on (overrides
    /// `config.json`'s `keypoint_memory`; [`crate::keypoint_memory`]).
    pub fn set_keypoint_memory(
        &mut self,
        spec: Option<crate::keypoint_memory::KeypointMemorySpec>,
    ) -> Result<()> {
        if let Some(spec) = &spec {
            spec.validate(self.config.model.keypoints)
                .map_err(VlaPolicyError::Config)?;
            if !self.members.is_empty() {
                return Err(VlaPolicyError::Config(
                    "keypoint_memory filters a single network's keypoints; this policy is an \
                     ensemble"
                        .into(),
                ));
            }
        }
        self.config.keypoint_memory = spec;
        self.memory = spec.map(|spec| Mutex::new(KeypointMemory::new(spec)));
        Ok(())
    }

    /// Empties the keypoint filter (a new episode).
    fn forget(&mut self) {
        *self
            .previous
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        *self
            .first_xy
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        if let Some(memory) = &mut self.memory {
            memory
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .reset();
        }
    }

    /// The action this policy decoded last, which its next step reads
    /// (`prev_action_input`); `None` before the first step after an
    /// instruction, and always for policies without the input.
    pub fn previous_action(&self) -> Option<Action> {
        *self
            .previous
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The goal and target keypoints (map units, goal `x y` then target
    /// `x y`) this policy measured on the first frame after the
    /// instruction, which every later step reads (`first_keypoints`);
    /// `None` before that step, and always for policies without the input.
    pub fn first_keypoints(&self) -> Option<[f32; crate::first_keypoints::FIRST_KEYPOINT_DIM]> {
        *self
            .first_xy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets the forward kinematics of the TCP input (loaded from the policy
    /// folder by [`Self::load_with`]).
    pub fn set_tcp_input(&mut self, tcp: TcpInput) {
        self.tcp = Some(tcp);
    }

    /// Sets (or, with `None`, removes) the camera keypoints' inference-time
    /// window from now on, overriding `config.json`'s `keypoint_window`
    /// ([`crate::keypoint_window`]), for every ensemble member too.
    pub fn set_keypoint_window(
        &mut self,
        window: Option<crate::keypoint_window::KeypointWindow>,
    ) -> Result<()> {
        if let Some(w) = &window {
            w.validate(
                self.config.model.keypoints,
                self.config.model.keypoint_side(),
            )
            .map_err(VlaPolicyError::Config)?;
        }
        self.model.set_keypoint_window(window.clone());
        for member in &mut self.members {
            member.model.set_keypoint_window(window.clone());
        }
        self.config.keypoint_window = window;
        Ok(())
    }

    /// Chooses how bins are picked from now on (overrides `config.json`'s
    /// `decoding`).
    pub fn set_decoding(&mut self, decoding: Decoding) {
        self.config.decoding = decoding;
        if let Some(fast) = self.fast.take() {
            self.fast = Some(fast.with_decoding(decoding));
        }
        for member in &mut self.members {
            if let Some(fast) = member.fast.take() {
                member.fast = Some(fast.with_decoding(decoding));
            }
        }
    }

    /// The checkpoint's config (shape, tokenizer bounds, training summary).
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The action tokenizer stored with the checkpoint.
    pub fn tokenizer(&self) -> &ActionTokenizer {
        &self.config.tokenizer
    }

    /// Sets the instruction from already-encoded text tokens.
    pub fn set_instruction_tokens(&mut self, tokens: InstructionTokens) {
        self.forget();
        self.instruction = Some(tokens);
    }

    /// Encodes and sets an instruction.
    pub fn set_instruction_text(&mut self, instruction: &Instruction) -> Result<()> {
        let text = self.text.as_ref().ok_or_else(|| {
            VlaPolicyError::Config("this policy was built without a text encoder".into())
        })?;
        let enc = text.encode(instruction.as_str())?;
        let tokens =
            InstructionTokens::from_text_outputs(&enc.tokens, self.config.model.max_text_tokens)?;
        self.forget();
        self.instruction = Some(tokens);
        Ok(())
    }

    /// One control step for a policy that reads no joint state: frame in,
    /// 8 tokens and the decoded action out.
    pub fn step_frame(&self, frame: &RgbFrame) -> Result<PolicyStep> {
        self.step_observation(frame, None)
    }

    /// The auxiliary head's estimate of where the goal object and the
    /// target object are relative to the gripper, metres (goal x y z, then
    /// target x y z, in the frame the training data recorded positions in:
    /// the simulator's world frame), or `None` for a model without the
    /// head. For diagnostics (`examples/rollout_probe.rs`): the head is a
    /// training target, the action does not read it.
    pub fn auxiliary_estimate_m(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<Option<Vec<f64>>> {
        let memory = self.encode_observation(frame, joints)?;
        let Some(aux) = memory.aux_prediction() else {
            return Ok(None);
        };
        let units: Vec<f32> = aux.flatten_all()?.to_vec1()?;
        Ok(Some(
            units
                .iter()
                .map(|&u| f64::from(u) * crate::data::AUX_UNIT_M)
                .collect(),
        ))
    }

    /// The camera-frame keypoints' expected positions, pixels `(u, v)` of
    /// the model's input frame (`image_size_px`), in keypoint order (0: goal
    /// object, 1: target object, 2: TCP for a policy trained with those
    /// targets), or `None` for a model without keypoints. For diagnostics
    /// (`examples/rollout_probe.rs`).
    pub fn keypoints_px(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<Option<Vec<[f32; 2]>>> {
        let memory = self.encode_observation(frame, joints)?;
        let Some(logits) = memory.keypoint_logits.as_ref() else {
            return Ok(None);
        };
        let side = self.config.model.keypoint_side();
        let cell_px = self.config.model.image_size_px as f32 / side as f32;
        let rows: Vec<Vec<f32>> = logits
            .get(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2()?;
        Ok(Some(
            rows.iter()
                .map(|row| {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let w: Vec<f32> = row.iter().map(|&l| (l - max).exp()).collect();
                    let total: f32 = w.iter().sum();
                    let (mut u, mut v) = (0.0f32, 0.0f32);
                    for (cell, &wi) in w.iter().enumerate() {
                        u += wi * ((cell % side) as f32 + 0.5);
                        v += wi * ((cell / side) as f32 + 0.5);
                    }
                    // Cell units → pixel coordinates with pixel centres at integers.
                    [u / total * cell_px - 0.5, v / total * cell_px - 0.5]
                })
                .collect(),
        ))
    }

    /// The camera keypoints as the network reads them, pixels `(u, v)` of
    /// the model's input frame (pixel centres at integers): like
    /// [`Self::keypoints_px`] but after the stem's keypoint window, if
    /// any (not the keypoint filter or pins, which act later). For
    /// diagnostics (`vla-cli/examples/oracle_keypoints.rs`).
    pub fn read_keypoints_px(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<Option<Vec<[f32; 2]>>> {
        let memory = self.encode_observation(frame, joints)?;
        let Some(xy) = memory.keypoint_xy() else {
            return Ok(None);
        };
        let side = self.config.model.image_size_px as f32;
        let to_px = |m: f32| (m + 1.0) * side / 2.0 - 0.5;
        let rows: Vec<Vec<f32>> = xy.get(0)?.to_dtype(DType::F32)?.to_vec2()?;
        Ok(Some(
            rows.iter().map(|r| [to_px(r[0]), to_px(r[1])]).collect(),
        ))
    }

    /// Each of the 8 token positions' logits over its valid bins along the
    /// path this policy's decoding takes, for one observation, without
    /// stepping (the keypoint filter, pins and ensemble members are not
    /// applied; the previous action is read, not written); `None` without
    /// the fast decoder. For diagnostics (`vla-cli/examples/oracle_keypoints.rs`).
    pub fn token_logits(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<Option<Vec<Vec<f32>>>> {
        let Some(fast) = &self.fast else {
            return Ok(None);
        };
        let memory = self.encode_observation(frame, joints)?;
        let (_, logits) = fast.generate_with_logits(&memory)?;
        Ok(Some(
            logits
                .into_iter()
                .enumerate()
                .map(|(pos, l)| l[..crate::model::valid_bins(pos) as usize].to_vec())
                .collect(),
        ))
    }

    /// The encoder's memory for one observation (frame, joint state, the
    /// current instruction).
    fn encode_observation(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<crate::model::Memory> {
        let inputs = self.model_inputs(frame, None, joints)?;
        self.encode_with(&self.model, &inputs)
    }

    /// Runs `model`'s encoder on prepared inputs and the current instruction.
    fn encode_with(&self, model: &VlaModel, inputs: &ModelInputs) -> Result<crate::model::Memory> {
        let instr = self
            .instruction
            .as_ref()
            .ok_or(VlaPolicyError::NoInstruction)?;
        model
            .encode_all(
                &inputs.image,
                inputs.crop.as_ref(),
                &instr.tokens,
                &instr.mask,
                inputs.state.as_ref(),
            )
            .map_err(Into::into)
    }

    /// [`Self::encode_with`] on the policy's own network, through the
    /// keypoint filter when there is one (which this call updates) and with
    /// the pinned keypoints, if any.
    fn encode_remembering(&self, inputs: &ModelInputs) -> Result<crate::model::Memory> {
        if self.memory.is_none() && self.pinned.is_empty() {
            return self.encode_with(&self.model, inputs);
        }
        let instr = self
            .instruction
            .as_ref()
            .ok_or(VlaPolicyError::NoInstruction)?;
        let hook = |xy: &Tensor| -> candle_core::Result<Tensor> {
            let (b, k, two) = xy.dims3()?;
            if b != 1 || two != 2 {
                candle_core::bail!(
                    "the keypoint filter steps one frame at a time, got {b}×{k}×{two}"
                )
            }
            let flat: Vec<f32> = xy.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let mut rows: Vec<[f32; 2]> = flat.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
            if let Some(filter) = &self.memory {
                filter
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .apply(&mut rows);
            }
            for &(k, xy) in &self.pinned {
                if let Some(row) = rows.get_mut(k) {
                    *row = xy;
                }
            }
            Tensor::from_vec(rows.concat(), (1, k, 2), xy.device())?.to_dtype(xy.dtype())
        };
        self.model
            .encode_hooked(
                &inputs.image,
                inputs.crop.as_ref(),
                &instr.tokens,
                &instr.mask,
                inputs.state.as_ref(),
                None,
                Some(&hook),
            )
            .map_err(Into::into)
    }

    /// The network's inputs for one observation: the resized frame, the
    /// hand crop and the state vector (shared by every ensemble member).
    fn model_inputs(
        &self,
        frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        joints: Option<&JointState>,
    ) -> Result<ModelInputs> {
        if self.instruction.is_none() {
            return Err(VlaPolicyError::NoInstruction);
        }
        let size = self.config.model.image_size_px;
        let rgb = to_model_rgb8(frame, size)?;
        let image = chw_tensor(&rgb, size, &self.device)?;
        let tcp_m = self.tcp_position(joints)?;
        let state = self.state_vector(joints, tcp_m)?;
        let state = match state {
            Some(v) => {
                let n = v.len();
                Some(Tensor::from_vec(v, (1, n), &self.device)?)
            }
            None => None,
        };
        let crop = match (&self.config.model.crop, &self.config.crop, tcp_m) {
            (Some(net), Some(spec), Some(tcp_m)) => {
                let origin = spec.origin_px(tcp_m, size, net.side_px).ok_or_else(|| {
                    VlaPolicyError::Data(format!(
                        "hand crop: the TCP at {tcp_m:?} m (base frame) is behind the camera"
                    ))
                })?;
                let mut window = vec![0u8; net.side_px * net.side_px * 3];
                crate::crop::extract_rgb8(&rgb, size, origin, net.side_px, &mut window);
                Some(chw_tensor(&window, net.side_px, &self.device)?)
            }
            _ => match (&self.config.model.crop, &self.config.wrist) {
                (Some(net), Some(_)) => {
                    let wrist = wrist.ok_or_else(|| {
                        VlaPolicyError::Data(
                            "this policy reads a wrist camera and no wrist frame was given".into(),
                        )
                    })?;
                    let rgb = to_model_rgb8(wrist, net.side_px)?;
                    Some(chw_tensor(&rgb, net.side_px, &self.device)?)
                }
                _ => None,
            },
        };
        Ok(ModelInputs { image, crop, state })
    }

    /// One control step: frame and (for policies that read it) the measured
    /// joint state in, 8 tokens and the decoded action out. A joint state
    /// missing one of the policy's joints is an error naming it.
    pub fn step_observation(
        &self,
        frame: &RgbFrame,
        joints: Option<&JointState>,
    ) -> Result<PolicyStep> {
        self.step_views(frame, None, joints)
    }

    /// [`Self::step_observation`] with the wrist camera's frame, which a
    /// policy with a wrist input (`config.json` → `wrist`) requires and the
    /// others ignore.
    pub fn step_views(
        &self,
        frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        joints: Option<&JointState>,
    ) -> Result<PolicyStep> {
        let mut inputs = self.model_inputs(frame, wrist, joints)?;
        let mut memory = self.encode_remembering(&inputs)?;
        if self.config.model.first_keypoints && self.first_keypoints().is_none() {
            // The first frame: measure its keypoints, then encode it again
            // with them in the state (twice the encoder on this step only).
            let xy = memory.keypoint_xy.as_ref().ok_or_else(|| {
                VlaPolicyError::Config("first_keypoints on a model without keypoints".into())
            })?;
            let rows: Vec<Vec<f32>> = xy
                .get(0)?
                .narrow(0, 0, 2)?
                .to_dtype(DType::F32)?
                .to_vec2()?;
            let first = [rows[0][0], rows[0][1], rows[1][0], rows[1][1]];
            if first.iter().any(|v| !v.is_finite()) {
                return Err(VlaPolicyError::Data(format!(
                    "the first frame's keypoints are not finite: {first:?}"
                )));
            }
            *self
                .first_xy
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(first);
            inputs = self.model_inputs(frame, wrist, joints)?;
            memory = self.encode_remembering(&inputs)?;
        }
        let bins = if self.members.is_empty() {
            match &self.fast {
                Some(fast) => fast.generate(&memory)?,
                None => self.model.generate_with(&memory, self.config.decoding)?,
            }
        } else {
            let memories = self
                .members
                .iter()
                .map(|m| self.encode_with(&m.model, &inputs))
                .collect::<Result<Vec<_>>>()?;
            let fast: Option<Vec<(&FastDecoder, &crate::model::Memory)>> =
                std::iter::once((self.fast.as_ref(), &memory))
                    .chain(self.members.iter().map(|m| m.fast.as_ref()).zip(&memories))
                    .map(|(f, mem)| f.map(|f| (f, mem)))
                    .collect();
            match fast {
                Some(fast) => FastDecoder::generate_joint(&fast, self.config.decoding)?,
                None => {
                    let all: Vec<(&VlaModel, &crate::model::Memory)> =
                        std::iter::once((&self.model, &memory))
                            .chain(self.members.iter().map(|m| &m.model).zip(&memories))
                            .collect();
                    VlaModel::generate_joint_with(&all, self.config.decoding)?
                }
            }
        };
        let first = self.config.tokenizer.first_token_id;
        let mut ids = [0u32; TOKENS_PER_STEP];
        for (id, bin) in ids.iter_mut().zip(bins) {
            *id = first + bin;
        }
        let tokens = ActionTokens(ids);
        let action = self.config.tokenizer.detokenize(&tokens)?;
        if self.config.model.prev_action_input {
            *self
                .previous
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(action);
        }
        Ok(PolicyStep { tokens, action })
    }
}

/// The inputs every network of the policy reads for one observation.
struct ModelInputs {
    /// `(1, 3, S, S)` camera frame.
    image: Tensor,
    /// The hand-crop window, for policies with one.
    crop: Option<Tensor>,
    /// `(1, n)` normalised joints and TCP position, for policies that read them.
    state: Option<Tensor>,
}

/// A further ensemble member: its network and its decoder as flat weights.
struct Member {
    model: VlaModel,
    fast: Option<FastDecoder>,
}

impl Member {
    fn new(model: VlaModel, config: &PolicyConfig, device: &Device) -> Self {
        let fast = fast_decoder(&model, config, device);
        Self { model, fast }
    }
}

/// The flat-weight decoder of `model` on the CPU (`None` elsewhere).
/// Copying the weights only fails for a model without decoder
/// cross-attention, which `VlaModel::new` never builds; candle's decoder
/// gives the same tokens then, only slower.
fn fast_decoder(model: &VlaModel, config: &PolicyConfig, device: &Device) -> Option<FastDecoder> {
    if device.is_cpu() {
        FastDecoder::new(model)
            .ok()
            .map(|f| f.with_decoding(config.decoding))
    } else {
        None
    }
}

impl VlaPolicy {
    /// The TCP position in the base frame (metres) for policies with a TCP
    /// input (which the hand crop also needs); `None` for the others.
    fn tcp_position(&self, joints: Option<&JointState>) -> Result<Option<[f64; 3]>> {
        if self.config.tcp.is_none() {
            return Ok(None);
        }
        let tcp = self.tcp.as_ref().ok_or_else(|| {
            VlaPolicyError::Config(
                "this policy reads the TCP position but has no kinematic chain; \
                 load it with VlaPolicy::load or call set_tcp_input"
                    .into(),
            )
        })?;
        let joints = joints.ok_or_else(|| {
            VlaPolicyError::Data(
                "this policy reads the joint state for its TCP position; none was given".into(),
            )
        })?;
        Ok(Some(crate::tcp::base_from_tcp_m(tcp.chain(), joints)?))
    }

    /// The model's state input for a measured joint state: the normalised
    /// joints it reads, then the normalised TCP position (`tcp_m`, from
    /// [`Self::tcp_position`]); `None` for a policy that reads neither.
    fn state_vector(
        &self,
        joints: Option<&JointState>,
        tcp_m: Option<[f64; 3]>,
    ) -> Result<Option<Vec<f32>>> {
        if self.config.state.is_none() && tcp_m.is_none() {
            return Ok(None);
        }
        let mut v = match (&self.config.state, joints) {
            (Some(spec), Some(joints)) => spec.vector(joints)?,
            (Some(spec), None) => {
                return Err(VlaPolicyError::Data(format!(
                    "this policy reads the joint state ({:?}); none was given",
                    spec.joint_names
                )))
            }
            (None, _) => Vec::new(),
        };
        if let (Some(tcp), Some(raw)) = (&self.tcp, tcp_m) {
            v.extend(tcp.normalise(&raw));
            if self.config.model.prev_action_input {
                let previous = *self
                    .previous
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                v.extend(crate::prev_action::features(
                    previous.as_ref(),
                    self.config.model.prev_action_parts,
                ));
            }
            if self.config.model.first_keypoints {
                // Zeros until the first step has measured them (step_views).
                let first = *self
                    .first_xy
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                v.extend(first.unwrap_or_default());
            }
        }
        Ok(Some(v))
    }
}

impl Policy for VlaPolicy {
    fn name(&self) -> &str {
        "vla-policy"
    }

    fn reset(&mut self, instruction: &Instruction) -> std::result::Result<(), PolicyError> {
        self.set_instruction_text(instruction)
            .map_err(PolicyError::from_source)
    }

    fn act(
        &mut self,
        frame: &RgbFrame,
        joints: &JointState,
    ) -> std::result::Result<PolicyStep, PolicyError> {
        self.step_observation(frame, Some(joints))
            .map_err(PolicyError::from_source)
    }

    fn wrist_frame_size_px(&self) -> Option<(u32, u32)> {
        self.config.wrist.map(|w| (w.width_px, w.height_px))
    }

    fn act_with_wrist(
        &mut self,
        frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        joints: &JointState,
    ) -> std::result::Result<PolicyStep, PolicyError> {
        self.step_views(frame, wrist, Some(joints))
            .map_err(PolicyError::from_source)
    }
}

//! The target keypoint's inference-time filter (`config.json`
//! `keypoint_memory`, `vla_policy::keypoint_memory`): it reaches the
//! network's keypoint tokens, a new instruction forgets it, and a bad spec
//! is refused when the folder loads. Also the diagnostic pin
//! (`VlaPolicy::pin_keypoint_px`).

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::instruction_tokens;

use candle_core::{DType, Device, Tensor};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{PixelEncoding, RgbFrame};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::keypoint_memory::KeypointMemorySpec;
use vla_policy::{ModelConfig, VlaPolicy, TEXT_HIDDEN};

fn spec(min_hand_dist: f32) -> KeypointMemorySpec {
    KeypointMemorySpec {
        keypoint: 1,
        hand_keypoint: 2,
        min_hand_dist,
        max_dev: None,
    }
}

/// A tiny policy folder (keypoints and relation token, no state input).
fn save_tiny(dir: &std::path::Path, memory: Option<KeypointMemorySpec>) {
    let model_cfg = ModelConfig::tiny();
    let (varmap, _) = checkpoint::fresh_model(&model_cfg, 7, &Device::Cpu).unwrap();
    let mut cfg = PolicyConfig::new(model_cfg, ActionTokenizer::default());
    cfg.keypoint_memory = memory;
    checkpoint::save(dir, &cfg, &varmap).unwrap();
}

fn load(dir: &std::path::Path) -> VlaPolicy {
    let (cfg, model) = checkpoint::load_for_inference(dir, &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
    policy.set_instruction_tokens(instruction_tokens());
    policy
}

fn frame(seed: u8) -> RgbFrame {
    let pixels: Vec<u8> = (0..32 * 32 * 3)
        .map(|i: usize| ((i * 37 + usize::from(seed) * 101) % 251) as u8)
        .collect();
    RgbFrame::new(32, 32, PixelEncoding::Rgb8, pixels).unwrap()
}

#[test]
fn a_hook_on_the_keypoints_changes_the_encoders_memory() {
    let (_, model) = checkpoint::fresh_model(&ModelConfig::tiny(), 7, &Device::Cpu).unwrap();
    let dev = Device::Cpu;
    let images = Tensor::rand(0f32, 1.0, (1, 3, 32, 32), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, 3, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((1, 3), DType::F32, &dev).unwrap();
    let bins = Tensor::zeros((1, 8), DType::U32, &dev).unwrap();
    let logits = |hook: Option<vla_policy::model::XyHook<'_>>| {
        let m = model
            .encode_hooked(&images, None, &text, &mask, None, None, hook)
            .unwrap();
        model.forward_teacher(&m, &bins).unwrap()
    };
    let identity = |xy: &Tensor| Ok(xy.clone());
    let moved = |xy: &Tensor| {
        // Keypoint 1 to the image's corner.
        let mut v: Vec<f32> = xy.flatten_all()?.to_vec1()?;
        v[2] = -1.0;
        v[3] = -1.0;
        Tensor::from_vec(v, xy.dims(), xy.device())
    };
    let plain = logits(None);
    let same = (&plain - logits(Some(&identity)))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(same, 0.0, "an identity hook is the plain encoder");
    let diff = (&plain - logits(Some(&moved)))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-4, "moving keypoint 1 changes the logits ({diff})");
}

#[test]
fn the_memory_passes_the_first_frame_and_forgets_on_a_new_instruction() {
    let dir_plain = tempfile::tempdir().unwrap();
    let dir_memory = tempfile::tempdir().unwrap();
    save_tiny(dir_plain.path(), None);
    save_tiny(dir_memory.path(), Some(spec(0.0)));
    let plain = load(dir_plain.path());
    let mut memory = load(dir_memory.path());
    assert_eq!(memory.config().keypoint_memory, Some(spec(0.0)));
    let tokens = |p: &VlaPolicy, f: &RgbFrame| p.step_observation(f, None).unwrap().tokens;
    // One frame remembered: its own estimate, the plain policy's tokens.
    assert_eq!(tokens(&memory, &frame(1)), tokens(&plain, &frame(1)));
    // Many frames later, a new instruction: the next frame is the first again.
    for s in 2..6 {
        tokens(&memory, &frame(s));
    }
    memory.set_instruction_tokens(instruction_tokens());
    assert_eq!(tokens(&memory, &frame(9)), tokens(&plain, &frame(9)));
    // Switched off: every frame is the plain policy's.
    memory.set_keypoint_memory(None).unwrap();
    for s in 10..13 {
        assert_eq!(tokens(&memory, &frame(s)), tokens(&plain, &frame(s)));
    }
    // A spec for a keypoint the model lacks is refused, naming the field.
    let err = memory
        .set_keypoint_memory(Some(KeypointMemorySpec {
            keypoint: 9,
            ..spec(0.0)
        }))
        .unwrap_err();
    assert!(err.to_string().contains("keypoint_memory"), "{err}");
}

#[test]
fn a_folder_with_a_bad_keypoint_memory_fails_to_load() {
    let dir = tempfile::tempdir().unwrap();
    save_tiny(dir.path(), Some(spec(-1.0)));
    let err = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("min_hand_dist"), "{err}");
}

#[test]
fn pinning_a_keypoint_at_its_own_estimate_changes_nothing_and_bad_pins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    save_tiny(dir.path(), None);
    let plain = load(dir.path());
    let mut pinned = load(dir.path());
    for s in 0..4 {
        let f = frame(s);
        let own = plain.keypoints_px(&f, None).unwrap().unwrap()[1];
        pinned.pin_keypoint_px(1, Some(own)).unwrap();
        // Pixels → map units is the inverse of keypoints_px: same tokens.
        assert_eq!(
            pinned.step_observation(&f, None).unwrap().tokens,
            plain.step_observation(&f, None).unwrap().tokens
        );
    }
    pinned.pin_keypoint_px(1, None).unwrap();
    let err = pinned.pin_keypoint_px(4, Some([1.0, 1.0])).unwrap_err();
    assert!(err.to_string().contains("keypoint 4"), "{err}");
    let err = pinned
        .pin_keypoint_px(1, Some([f32::NAN, 1.0]))
        .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}

//! The first frame's keypoints as an input (`ModelConfig::first_keypoints`,
//! session 39): a warm start into them keeps the function, training then
//! reads them (from each episode's first recorded pixels), the policy
//! measures them on the first frame after an instruction, keeps them for
//! the episode and forgets them with a new instruction, and they are
//! refused without the relation token or the TCP input.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{instruction_tokens, joints, panda_toy_data, panda_urdf, HOME_RAD};

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use vla_core::{PixelEncoding, RgbFrame, TOKENS_PER_STEP};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::data::Dataset;
use vla_policy::first_keypoints::FIRST_KEYPOINT_DIM;
use vla_policy::tcp::{TcpSource, TCP_DIM};
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy, TEXT_HIDDEN};

/// Inputs of the relation token's projection without the first keypoints.
const RELATION_IN: usize = 6;

fn options() -> TrainOptions {
    TrainOptions {
        steps: 4,
        batch: 8,
        warmup_steps: 1,
        val_every: 2,
        checkpoint_every: 0,
        model: ModelConfig::tiny(),
        progress: false,
        tcp: Some(TcpSource {
            urdf: panda_urdf(),
            base_link: "panda_link0".into(),
            tip_link: "panda_hand_tcp".into(),
        }),
        ..TrainOptions::default()
    }
}

/// The toy task with goal and target pixels on every frame, different per episode.
fn data() -> Dataset {
    let mut data = panda_toy_data();
    for (i, s) in data.samples.iter_mut().enumerate() {
        let e = s.episode as f32;
        s.keypoint_px[0] = Some([4.0 + 3.0 * e, 20.0 - e + 0.1 * i as f32]);
        s.keypoint_px[1] = (s.episode % 2 == 0).then_some([25.0 - 2.0 * e, 6.0 + e]);
    }
    data
}

fn relation_weight(dir: &Path) -> Vec<Vec<f32>> {
    let tensors: std::collections::HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors["relation.proj.weight"].to_vec2().unwrap()
}

fn frame(k: usize) -> RgbFrame {
    let px: Vec<u8> = (0..48 * 48 * 3)
        .map(|i| ((i * (k + 3)) % 251) as u8)
        .collect();
    RgbFrame::new(48, 48, PixelEncoding::Rgb8, px).unwrap()
}

/// Tokens of four successive steps after a fresh instruction.
fn rollout(policy: &mut VlaPolicy) -> Vec<[u32; TOKENS_PER_STEP]> {
    policy.set_instruction_tokens(instruction_tokens());
    (0..4)
        .map(|k| {
            let mut q = HOME_RAD;
            q[0] = 0.1 * k as f64;
            policy
                .step_observation(&frame(k), Some(&joints(&q)))
                .unwrap()
                .tokens
                .0
        })
        .collect()
}

fn load(dir: &Path) -> VlaPolicy {
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    VlaPolicy::load_with(dir, Some(&text_dir), &Device::Cpu).unwrap()
}

#[test]
fn a_warm_start_into_the_first_keypoints_keeps_the_function_then_learns_from_them() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &text, first.path(), &options()).unwrap();
    assert!(relation_weight(first.path())
        .iter()
        .all(|row| row.len() == RELATION_IN));

    // Grown with zero columns: the same tokens as before, step for step.
    let second = tempfile::tempdir().unwrap();
    let grow = TrainOptions {
        init_from: Some(first.path().to_path_buf()),
        tcp: None,
        model: ModelConfig {
            first_keypoints: true,
            ..ModelConfig::tiny()
        },
        stop_at: Some(1),
        lr: 1e-12,
        ..options()
    };
    vla_policy::train(&data, &text, second.path(), &grow).unwrap();
    let cfg = PolicyConfig::read(second.path()).unwrap();
    assert!(cfg.model.first_keypoints);
    assert_eq!(cfg.model.state_width(), 9 + TCP_DIM + FIRST_KEYPOINT_DIM);
    let grown = relation_weight(second.path());
    assert!(grown
        .iter()
        .all(|row| row.len() == RELATION_IN + FIRST_KEYPOINT_DIM));
    assert!(grown
        .iter()
        .all(|row| row[RELATION_IN..].iter().all(|w| w.abs() < 1e-9)));
    assert_eq!(
        rollout(&mut load(first.path())),
        rollout(&mut load(second.path()))
    );

    // Training reads them: the new columns move, and a warm start from
    // this policy keeps the input without being asked.
    let third = tempfile::tempdir().unwrap();
    let more = TrainOptions {
        init_from: Some(second.path().to_path_buf()),
        tcp: None,
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data, &text, third.path(), &more).unwrap();
    assert!(relation_weight(third.path())
        .iter()
        .any(|row| row[RELATION_IN..].iter().any(|w| w.abs() > 1e-6)));
    assert!(
        PolicyConfig::read(third.path())
            .unwrap()
            .model
            .first_keypoints
    );
    // A config without the field (every policy before it) reads as off,
    // and one with it off does not write it.
    let json = serde_json::to_value(PolicyConfig::read(first.path()).unwrap()).unwrap();
    assert!(json["model"].get("first_keypoints").is_none());

    // The noise is drawn from the run's seed: another level, other weights.
    let exact = tempfile::tempdir().unwrap();
    let no_noise = TrainOptions {
        first_keypoint_noise_px: 0.0,
        ..more.clone()
    };
    vla_policy::train(&data, &text, exact.path(), &no_noise).unwrap();
    assert_ne!(relation_weight(third.path()), relation_weight(exact.path()));
    for bad in [-1.0, f32::NAN] {
        let opts = TrainOptions {
            first_keypoint_noise_px: bad,
            ..more.clone()
        };
        let err = vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("first-frame keypoint noise"), "{err}");
    }
}

#[test]
fn the_policy_measures_the_first_frame_keeps_it_and_forgets_it_with_a_new_instruction() {
    // The network reads the 4 values.
    let cfg = ModelConfig {
        state_dim: 9,
        tcp_input: true,
        first_keypoints: true,
        ..ModelConfig::tiny()
    };
    let dev = Device::Cpu;
    let (_, model) = checkpoint::fresh_model(&cfg, 5, &dev).unwrap();
    let s = cfg.image_size_px;
    let images = Tensor::rand(0f32, 1.0, (1, 3, s, s), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, 4, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((1, 4), DType::F32, &dev).unwrap();
    let bins = Tensor::zeros((1, TOKENS_PER_STEP), DType::U32, &dev).unwrap();
    let logits = |first: [f32; FIRST_KEYPOINT_DIM]| -> Vec<f32> {
        let mut state = vec![0.1f32; 9 + TCP_DIM];
        state.extend(first);
        let state = Tensor::from_vec(state, (1, cfg.state_width()), &dev).unwrap();
        let memory = model
            .encode_with_state(&images, &text, &mask, Some(&state))
            .unwrap();
        model
            .forward_teacher(&memory, &bins)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (centre, moved) = (logits([0.0; 4]), logits([0.5, -0.25, 0.0, 0.0]));
    assert_eq!(centre, logits([0.0; 4]));
    assert!(centre.iter().zip(&moved).any(|(a, b)| (a - b).abs() > 1e-4));

    // The policy: measured on the first frame, kept, forgotten.
    let text_enc = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        model: ModelConfig {
            first_keypoints: true,
            ..ModelConfig::tiny()
        },
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data(), &text_enc, dir.path(), &opts).unwrap();
    let mut policy = load(dir.path());
    policy.set_instruction_tokens(instruction_tokens());
    assert_eq!(policy.first_keypoints(), None);
    let q = joints(&HOME_RAD);
    policy.step_observation(&frame(0), Some(&q)).unwrap();
    let measured = policy.first_keypoints().unwrap();
    assert!(measured.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
    // The keypoint head's own estimate on that frame (pixels → map units).
    let px = policy.keypoints_px(&frame(0), Some(&q)).unwrap().unwrap();
    for (k, uv) in px.iter().take(2).enumerate() {
        let xy = vla_policy::first_keypoints::px_to_map(*uv, 32);
        assert!(
            (xy[0] - measured[2 * k]).abs() < 1e-4,
            "{xy:?} {measured:?}"
        );
        assert!(
            (xy[1] - measured[2 * k + 1]).abs() < 1e-4,
            "{xy:?} {measured:?}"
        );
    }
    // Later frames do not move them; a new instruction forgets them, and
    // the same instruction again gives the same rollout.
    policy.step_observation(&frame(2), Some(&q)).unwrap();
    assert_eq!(policy.first_keypoints(), Some(measured));
    policy.set_instruction_tokens(instruction_tokens());
    assert_eq!(policy.first_keypoints(), None);
    let steps = rollout(&mut policy);
    assert_eq!(policy.first_keypoints(), Some(measured));
    assert_eq!(rollout(&mut policy), steps);

    for bad in [
        ModelConfig {
            first_keypoints: true,
            ..ModelConfig::tiny()
        },
        ModelConfig {
            state_dim: 9,
            tcp_input: true,
            relation_token: false,
            first_keypoints: true,
            ..ModelConfig::tiny()
        },
    ] {
        let err = bad.validate().unwrap_err();
        assert!(err.contains("first_keypoints"), "{err}");
    }
}

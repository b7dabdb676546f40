//! The previous action as an input (`ModelConfig::prev_action_input`,
//! session 36): a warm start into it keeps the function, training then
//! uses it, the policy feeds back the action it decoded and forgets it
//! with a new instruction, and it is refused without the TCP input.
//! Session 37's guards: only some values read (the others' columns never
//! move, inherited by warm starts) and previous-action dropout.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{instruction_tokens, joints, panda_toy_data, panda_urdf, HOME_RAD};

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use vla_core::{PixelEncoding, RgbFrame, TOKENS_PER_STEP};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::prev_action::{PrevActionParts, PREV_ACTION_DIM};
use vla_policy::tcp::{TcpSource, TCP_DIM};
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy, TEXT_HIDDEN};

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

fn tcp_weight(dir: &Path) -> Vec<Vec<f32>> {
    let tensors: std::collections::HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors["tcp_proj.weight"].to_vec2().unwrap()
}

fn frame(k: usize) -> RgbFrame {
    let px: Vec<u8> = (0..48 * 48 * 3)
        .map(|i| ((i * (k + 3)) % 251) as u8)
        .collect();
    RgbFrame::new(48, 48, PixelEncoding::Rgb8, px).unwrap()
}

/// Tokens of four successive steps (each reading the one before).
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
fn a_warm_start_into_the_previous_action_keeps_the_function_then_learns_from_it() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = panda_toy_data();
    // The toy expert's actions are executed: each step reads the one before.
    assert!(data.samples[0].prev_action.is_none());
    assert_eq!(data.samples[1].prev_action, Some(data.samples[0].action));
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &text, first.path(), &options()).unwrap();

    // Grown with zero columns: the same tokens as before, step for step.
    let second = tempfile::tempdir().unwrap();
    let grow = TrainOptions {
        init_from: Some(first.path().to_path_buf()),
        tcp: None,
        model: ModelConfig {
            prev_action_input: true,
            ..ModelConfig::tiny()
        },
        stop_at: Some(1),
        lr: 1e-12,
        ..options()
    };
    vla_policy::train(&data, &text, second.path(), &grow).unwrap();
    let cfg = PolicyConfig::read(second.path()).unwrap();
    assert!(cfg.model.prev_action_input);
    assert_eq!(cfg.model.state_width(), 9 + TCP_DIM + PREV_ACTION_DIM);
    let grown = tcp_weight(second.path());
    assert!(grown
        .iter()
        .all(|row| row.len() == TCP_DIM + PREV_ACTION_DIM));
    assert!(grown
        .iter()
        .all(|row| row[TCP_DIM..].iter().all(|w| w.abs() < 1e-9)));
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
    let trained = tcp_weight(third.path());
    assert!(trained
        .iter()
        .any(|row| row[TCP_DIM..].iter().any(|w| w.abs() > 1e-6)));
    assert!(
        PolicyConfig::read(third.path())
            .unwrap()
            .model
            .prev_action_input
    );
    // A config without the field (every policy before it) reads as off,
    // and one with it off does not write it.
    let json = serde_json::to_value(PolicyConfig::read(first.path()).unwrap()).unwrap();
    assert!(json["model"].get("prev_action_input").is_none());
}

#[test]
fn the_network_reads_the_previous_action_and_the_policy_forgets_it_with_a_new_instruction() {
    let cfg = ModelConfig {
        state_dim: 9,
        tcp_input: true,
        prev_action_input: true,
        ..ModelConfig::tiny()
    };
    let dev = Device::Cpu;
    let (_, model) = checkpoint::fresh_model(&cfg, 5, &dev).unwrap();
    let s = cfg.image_size_px;
    let images = Tensor::rand(0f32, 1.0, (1, 3, s, s), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, 4, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((1, 4), DType::F32, &dev).unwrap();
    let bins = Tensor::zeros((1, TOKENS_PER_STEP), DType::U32, &dev).unwrap();
    let logits = |prev: [f32; PREV_ACTION_DIM]| -> Vec<f32> {
        let mut state = vec![0.1f32; 9 + TCP_DIM];
        state.extend(prev);
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
    let (none, up) = (
        logits([0.0; 7]),
        logits([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
    );
    assert_eq!(none, logits([0.0; 7]));
    assert!(none.iter().zip(&up).any(|(a, b)| (a - b).abs() > 1e-4));

    // The policy: its last decoded action, forgotten by a new instruction.
    let text_enc = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = panda_toy_data();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        model: ModelConfig {
            prev_action_input: true,
            ..ModelConfig::tiny()
        },
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data, &text_enc, dir.path(), &opts).unwrap();
    let mut policy = load(dir.path());
    assert_eq!(policy.previous_action(), None);
    let steps = rollout(&mut policy);
    assert!(policy.previous_action().is_some());
    let last = policy
        .tokenizer()
        .detokenize(&vla_core::ActionTokens(steps[3]))
        .unwrap();
    assert_eq!(policy.previous_action(), Some(last));
    // Same instruction again: the same rollout, from "no previous action".
    assert_eq!(rollout(&mut policy), steps);

    for bad in [
        ModelConfig {
            prev_action_input: true,
            ..ModelConfig::tiny()
        },
        ModelConfig {
            state_dim: 9,
            prev_action_input: true,
            ..ModelConfig::tiny()
        },
    ] {
        let err = bad.validate().unwrap_err();
        assert!(err.contains("prev_action_input"), "{err}");
    }
}

#[test]
fn values_not_read_never_move_their_columns_and_dropout_changes_training() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = panda_toy_data();
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &text, first.path(), &options()).unwrap();

    // Grown into the input without the gripper value, then trained hard:
    // the six motion columns move, the gripper's stays at its zero start.
    let grow =
        |data: &vla_policy::data::Dataset, parts: PrevActionParts, dropout: f32, out: &Path| {
            let opts = TrainOptions {
                init_from: Some(first.path().to_path_buf()),
                tcp: None,
                model: ModelConfig {
                    prev_action_input: true,
                    prev_action_parts: parts,
                    ..ModelConfig::tiny()
                },
                lr: 1e-2,
                prev_action_dropout: dropout,
                ..options()
            };
            vla_policy::train(data, &text, out, &opts).unwrap();
        };
    let no_grip = |dropout: f32, out: &Path| grow(&data, PrevActionParts::Motion, dropout, out);
    let second = tempfile::tempdir().unwrap();
    no_grip(0.0, second.path());
    let cfg = PolicyConfig::read(second.path()).unwrap();
    assert!(cfg.model.prev_action_input);
    assert_eq!(cfg.model.prev_action_parts, PrevActionParts::Motion);
    let json = serde_json::to_value(&cfg).unwrap();
    assert_eq!(json["model"]["prev_action_parts"], "motion");
    let w = tcp_weight(second.path());
    assert!(w.iter().all(|row| row[TCP_DIM + 6] == 0.0));
    assert!(w
        .iter()
        .any(|row| row[TCP_DIM..TCP_DIM + 6].iter().any(|v| v.abs() > 1e-6)));
    // Its policy loads and runs; a warm start from it keeps leaving it out
    // without being asked.
    assert_eq!(rollout(&mut load(second.path())).len(), 4);
    let third = tempfile::tempdir().unwrap();
    let more = TrainOptions {
        init_from: Some(second.path().to_path_buf()),
        tcp: None,
        ..options()
    };
    vla_policy::train(&data, &text, third.path(), &more).unwrap();
    assert_eq!(
        PolicyConfig::read(third.path())
            .unwrap()
            .model
            .prev_action_parts,
        PrevActionParts::Motion
    );
    assert!(tcp_weight(third.path())
        .iter()
        .all(|row| row[TCP_DIM + 6] == 0.0));

    // Only Δz (the toy expert never moves vertically: give its previous
    // actions some): its column moves, the six others stay at zero.
    let mut data_z = data.clone();
    for (i, s) in data_z.samples.iter_mut().enumerate() {
        if let Some(a) = s.prev_action.as_mut() {
            a.translation_m[2] = 0.01 * (i % 3) as f64 - 0.01;
        }
    }
    let vertical = tempfile::tempdir().unwrap();
    grow(&data_z, PrevActionParts::Vertical, 0.0, vertical.path());
    let w = tcp_weight(vertical.path());
    for (i, col) in (TCP_DIM..TCP_DIM + PREV_ACTION_DIM).enumerate() {
        let moved = w.iter().any(|row| row[col].abs() > 1e-6);
        assert_eq!(moved, i == 2, "column {i}");
    }

    // Dropout draws and so trains differently from the same run without it.
    let dropped = tempfile::tempdir().unwrap();
    no_grip(0.5, dropped.path());
    assert_ne!(tcp_weight(second.path()), tcp_weight(dropped.path()));

    // Refused: dropout out of range, or on a model that has no previous action.
    for (dropout, model) in [
        (
            1.0,
            ModelConfig {
                prev_action_input: true,
                ..ModelConfig::tiny()
            },
        ),
        (0.5, ModelConfig::tiny()),
    ] {
        let opts = TrainOptions {
            model,
            prev_action_dropout: dropout,
            ..options()
        };
        let err = vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &opts)
            .unwrap_err()
            .to_string();
        assert!(err.contains("previous-action dropout"), "{err}");
    }
    let err = ModelConfig {
        prev_action_parts: PrevActionParts::Vertical,
        ..ModelConfig::tiny()
    }
    .validate()
    .unwrap_err();
    assert!(err.contains("prev_action_parts"), "{err}");
}

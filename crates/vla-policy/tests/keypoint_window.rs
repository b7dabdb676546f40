//! The camera keypoints' inference-time window (`config.json`
//! `keypoint_window`, `vla_policy::keypoint_window`): a narrow window pulls
//! a spread map's keypoint to its most likely cell, leaves the keypoints it
//! does not list alone, a window as wide as the map changes nothing, a
//! bad window is refused when the folder loads, and `vla train` writes it
//! without changing the training unless told to train with it.

#![allow(clippy::unwrap_used)]

mod common;

use candle_core::{DType, Device, Tensor};
use vla_core::tokenizer::ActionTokenizer;
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::keypoint_window::KeypointWindow;
use vla_policy::model::VlaModel;
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, TEXT_HIDDEN};

#[test]
fn a_narrow_window_moves_only_the_keypoints_it_lists() {
    let dev = Device::Cpu;
    let cfg = ModelConfig::tiny();
    let side = cfg.keypoint_side();
    let (_, mut model) = checkpoint::fresh_model(&cfg, 7, &dev).unwrap();
    let images = Tensor::rand(0f32, 1.0, (1, 3, 32, 32), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, 3, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((1, 3), DType::F32, &dev).unwrap();
    let xy = |model: &VlaModel| -> Vec<Vec<f32>> {
        let memory = model
            .encode_hooked(&images, None, &text, &mask, None, None, None)
            .unwrap();
        memory
            .keypoint_xy()
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let whole = xy(&model);
    model.set_keypoint_window(Some(KeypointWindow {
        cells: 1,
        keypoints: vec![0],
    }));
    let narrow = xy(&model);
    // Keypoint 0's most likely cell, from the (unchanged) logits.
    let logits = model
        .keypoint_logits(&images, &text, &mask)
        .unwrap()
        .unwrap();
    let best = logits.get(0).unwrap().get(0).unwrap().argmax(0).unwrap();
    let best: u32 = best.to_scalar().unwrap();
    let centre = |i: usize| (2.0 * i as f32 + 1.0) / side as f32 - 1.0;
    let (bx, by) = (centre(best as usize % side), centre(best as usize / side));
    // An untrained map is spread over every cell: its whole-map mean is
    // far from any one cell; the window's is within 1.5 cells of the peak.
    let reach = 3.0 / side as f32;
    assert!(
        (narrow[0][0] - bx).abs() <= reach && (narrow[0][1] - by).abs() <= reach,
        "windowed keypoint {:?} vs peak ({bx}, {by})",
        narrow[0]
    );
    assert!(
        (narrow[0][0] - whole[0][0]).abs() + (narrow[0][1] - whole[0][1]).abs() > 1e-3,
        "the window changed nothing: {narrow:?} {whole:?}"
    );
    for k in 1..whole.len() {
        for a in 0..2 {
            assert!(
                (narrow[k][a] - whole[k][a]).abs() < 1e-6,
                "keypoint {k} is not listed: {narrow:?} {whole:?}"
            );
        }
    }
    // A window reaching every cell is the whole map.
    model.set_keypoint_window(Some(KeypointWindow {
        cells: side - 1,
        keypoints: (0..cfg.keypoints).collect(),
    }));
    let wide = xy(&model);
    for (w, p) in wide.iter().zip(&whole) {
        for a in 0..2 {
            assert!((w[a] - p[a]).abs() < 1e-5, "{wide:?} {whole:?}");
        }
    }
}

#[test]
fn a_folder_with_a_bad_keypoint_window_fails_to_load() {
    for (window, words) in [
        (
            KeypointWindow {
                cells: 0,
                keypoints: vec![0],
            },
            "cells 0",
        ),
        (
            KeypointWindow {
                cells: 1,
                keypoints: vec![9],
            },
            "keypoint 9",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model_cfg = ModelConfig::tiny();
        let (varmap, _) = checkpoint::fresh_model(&model_cfg, 7, &Device::Cpu).unwrap();
        let mut cfg = PolicyConfig::new(model_cfg, ActionTokenizer::default());
        cfg.keypoint_window = Some(window);
        checkpoint::save(dir.path(), &cfg, &varmap).unwrap();
        let err = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
        assert!(err.to_string().contains("keypoint_window"), "{err}");
    }
}

#[test]
fn training_writes_the_window_and_only_trains_with_it_when_told() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = common::panda_toy_data();
    let window = KeypointWindow {
        cells: 1,
        keypoints: vec![0],
    };
    let run = |window: Option<KeypointWindow>, in_training: bool| {
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions {
            steps: 3,
            batch: 8,
            warmup_steps: 1,
            val_every: 3,
            checkpoint_every: 0,
            model: ModelConfig::tiny(),
            progress: false,
            keypoint_window: window,
            keypoint_window_in_training: in_training,
            ..TrainOptions::default()
        };
        vla_policy::train(&data, &text, dir.path(), &opts).unwrap();
        let (cfg, _) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
        let tensors: std::collections::BTreeMap<String, Vec<f32>> =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap()
                .into_iter()
                .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1().unwrap()))
                .collect();
        (cfg.keypoint_window, tensors)
    };
    let (none, plain) = run(None, false);
    let (written, same) = run(Some(window.clone()), false);
    let (trained, windowed) = run(Some(window.clone()), true);
    assert_eq!(none, None);
    assert_eq!(written, Some(window.clone()));
    assert_eq!(trained, Some(window));
    assert_eq!(
        plain, same,
        "a window only written into config.json trains the same weights"
    );
    assert_ne!(
        plain, windowed,
        "training with the window reads other keypoints"
    );
}

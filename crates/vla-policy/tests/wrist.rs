//! The wrist camera (`config.json` `wrist`): the crop branch reads a second,
//! hand-mounted camera's frame, trained from the data's `wrist.rgb`.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{instruction_tokens, joints, panda_toy_data, HOME_RAD};

use candle_core::Device;
use vla_core::{PixelEncoding, Policy, RgbFrame};
use vla_policy::checkpoint::PolicyConfig;
use vla_policy::data::{Dataset, WristView};
use vla_policy::model::CropNetConfig;
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy};

fn tiny_wrist() -> ModelConfig {
    ModelConfig {
        crop: Some(CropNetConfig {
            side_px: 16,
            patch_px: 2,
            channels: vec![8, 16],
            keypoints: 4,
            keypoint_stage: 0,
        }),
        ..ModelConfig::tiny()
    }
}

/// The toy data with a 16 px wrist view per sample: the frame at half
/// size, the named square's pixel halved.
fn toy_with_wrist() -> Dataset {
    let mut data = panda_toy_data();
    let s = data.size_px;
    for sample in &mut data.samples {
        let mut rgb = vec![0u8; 16 * 16 * 3];
        for y in 0..16 {
            for x in 0..16 {
                let (sx, sy) = (x * s / 16, y * s / 16);
                rgb[(y * 16 + x) * 3..(y * 16 + x) * 3 + 3]
                    .copy_from_slice(&sample.rgb[(sy * s + sx) * 3..(sy * s + sx) * 3 + 3]);
            }
        }
        let scale = 16.0 / s as f32;
        let half = |p: Option<[f32; 2]>| p.map(|[u, v]| [u * scale, v * scale]);
        sample.wrist = Some(Box::new(WristView {
            side_px: 16,
            rgb,
            keypoint_px: [half(sample.keypoint_px[0]), half(sample.keypoint_px[1])],
        }));
    }
    data
}

fn options() -> TrainOptions {
    TrainOptions {
        steps: 6,
        batch: 8,
        warmup_steps: 1,
        val_every: 3,
        checkpoint_every: 0,
        model: tiny_wrist(),
        progress: false,
        wrist: true,
        ..TrainOptions::default()
    }
}

#[test]
fn a_wrist_policy_trains_on_wrist_frames_and_needs_them_to_act() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = toy_with_wrist();
    let opts = options();
    let dir = tempfile::tempdir().unwrap();
    let report = vla_policy::train(&data, &text, dir.path(), &opts).unwrap();
    assert!(report
        .log
        .iter()
        .all(|e| e.train_crop_keypoint_loss.is_some_and(f64::is_finite)));
    let cfg = PolicyConfig::read(dir.path()).unwrap();
    assert_eq!(cfg.model.crop, tiny_wrist().crop);
    assert!(cfg.crop.is_none());
    let spec = cfg.wrist.unwrap();
    assert_eq!((spec.width_px, spec.height_px), (16, 16));

    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    let load = || {
        let mut p = VlaPolicy::load_with(dir.path(), Some(&text_dir), &Device::Cpu).unwrap();
        p.set_instruction_tokens(instruction_tokens());
        p
    };
    let mut policy = load();
    assert_eq!(policy.wrist_frame_size_px(), Some((16, 16)));
    let frame = RgbFrame::new(64, 48, PixelEncoding::Rgb8, vec![70; 64 * 48 * 3]).unwrap();
    let q = joints(&HOME_RAD);
    // Without its wrist frame the policy refuses, with a reason.
    let err = policy.act(&frame, &q).unwrap_err().to_string();
    assert!(err.contains("wrist"), "{err}");
    // A wrist frame of any size and encoding is resized to the branch's.
    let bgr: Vec<u8> = (0..40 * 30 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let wrist = RgbFrame::new(40, 30, PixelEncoding::Bgr8, bgr).unwrap();
    let a = policy.act_with_wrist(&frame, Some(&wrist), &q).unwrap();
    // Saved, then loaded again: the same tokens.
    let b = load().act_with_wrist(&frame, Some(&wrist), &q).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert!(a.action.translation_m.iter().all(|v| v.is_finite()));
}

#[test]
fn wrist_training_refuses_data_without_wrist_frames_and_configs_that_cannot_work() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let opts = options();
    // A sample without a wrist frame names the fix.
    let mut data = toy_with_wrist();
    data.samples[3].wrist = None;
    let err = vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--wrist-camera"), "{err}");
    // Wrist frames of another size than the branch's.
    let mut data = toy_with_wrist();
    if let Some(w) = data.samples[0].wrist.as_mut() {
        w.side_px = 8;
        w.rgb.truncate(8 * 8 * 3);
    }
    let err = vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("8 px"), "{err}");
    // A wrist input needs the branch that reads it.
    let no_branch = TrainOptions {
        model: ModelConfig::tiny(),
        ..opts.clone()
    };
    let err = vla_policy::train(
        &toy_with_wrist(),
        &text,
        tempfile::tempdir().unwrap().path(),
        &no_branch,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("crop branch"), "{err}");

    // config.json: a wrist input without the branch, or with a hand crop
    // too, is refused when loading.
    let dir = tempfile::tempdir().unwrap();
    vla_policy::train(&toy_with_wrist(), &text, dir.path(), &opts).unwrap();
    let cfg_path = dir.path().join("config.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut no_crop = json.clone();
    no_crop["model"]["crop"] = serde_json::Value::Null;
    std::fs::write(&cfg_path, no_crop.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("wrist"), "{err}");
    let mut zero = json.clone();
    zero["wrist"]["width_px"] = serde_json::json!(0);
    std::fs::write(&cfg_path, zero.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err().to_string();
    assert!(err.contains("wrist"), "{err}");
}

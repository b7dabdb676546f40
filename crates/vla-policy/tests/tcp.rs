//! The TCP-position input (`config.json` `tcp`): forward kinematics of the
//! measured joints through the policy folder's own URDF copy.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{instruction_tokens, joints, names, panda_toy_data, panda_urdf, HOME_RAD};

use candle_core::{DType, Device, Tensor};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{JointState, PixelEncoding, Policy, RgbFrame};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::tcp::{self, TcpInput, TcpSource, TCP_URDF_FILE};
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy, TEXT_HIDDEN};

fn source() -> TcpSource {
    TcpSource {
        urdf: panda_urdf(),
        base_link: "panda_link0".into(),
        tip_link: "panda_hand_tcp".into(),
    }
}

#[test]
fn tcp_position_at_home_is_the_simulators_recorded_tcp() {
    let chain = tcp::load_chain(&panda_urdf(), "panda_link0", "panda_hand_tcp").unwrap();
    let p = tcp::base_from_tcp_m(&chain, &joints(&HOME_RAD)).unwrap();
    // `vla collect` recorded tcp_xyz_m = (0.47702, 0, 1.13368) at step 0,
    // with the base at z = 0.75 m in the world.
    let want = [0.477_016, 0.0, 1.133_677 - 0.75];
    for k in 0..3 {
        assert!((p[k] - want[k]).abs() < 1e-5, "{p:?} vs {want:?}");
    }
    // Joint order does not matter, a missing chain joint is named.
    let mut rev_names = names();
    rev_names.reverse();
    let mut rev_q = HOME_RAD.to_vec();
    rev_q.reverse();
    let rev = JointState::new(rev_names, rev_q, 0.0).unwrap();
    assert_eq!(tcp::base_from_tcp_m(&chain, &rev).unwrap(), p);
    let short = JointState::new(names()[..3].to_vec(), HOME_RAD[..3].to_vec(), 0.0).unwrap();
    let err = tcp::base_from_tcp_m(&chain, &short).unwrap_err();
    assert!(err.to_string().contains("panda_joint4"), "{err}");
    // A bad URDF or link is an error naming it.
    let err = tcp::load_chain(&panda_urdf(), "panda_link0", "no_such_link").unwrap_err();
    assert!(err.to_string().contains("no_such_link"), "{err}");
}

/// A tiny policy folder that reads only the TCP position.
fn save_tcp_policy(dir: &std::path::Path) -> PolicyConfig {
    let model_cfg = ModelConfig {
        tcp_input: true,
        ..ModelConfig::tiny()
    };
    let (varmap, _) = checkpoint::fresh_model(&model_cfg, 4, &Device::Cpu).unwrap();
    let chain = tcp::load_chain(&panda_urdf(), "panda_link0", "panda_hand_tcp").unwrap();
    let mut lowered = HOME_RAD;
    lowered[3] = -2.5;
    let rows: Vec<[f64; 3]> = [HOME_RAD, lowered]
        .iter()
        .map(|q| tcp::base_from_tcp_m(&chain, &joints(q)).unwrap())
        .collect();
    let spec = tcp::spec_from_rows(
        TCP_URDF_FILE.into(),
        "panda_link0".into(),
        "panda_hand_tcp".into(),
        &rows,
    )
    .unwrap();
    tcp::install_urdf(&panda_urdf(), dir).unwrap();
    let mut cfg = PolicyConfig::new(model_cfg, ActionTokenizer::default());
    cfg.tcp = Some(spec);
    checkpoint::save(dir, &cfg, &varmap).unwrap();
    cfg
}

#[test]
fn a_policy_with_tcp_input_reads_the_arm_pose_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = save_tcp_policy(dir.path());
    let spec = cfg.tcp.clone().unwrap();
    let (cfg, model) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
    policy.set_instruction_tokens(instruction_tokens());
    let frame = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![90; 32 * 32 * 3]).unwrap();
    // Without its chain the policy says so instead of guessing.
    let err = policy.act(&frame, &joints(&HOME_RAD)).unwrap_err();
    assert!(err.to_string().contains("kinematic chain"), "{err}");
    policy.set_tcp_input(TcpInput::load(dir.path(), &spec).unwrap());
    policy.act(&frame, &joints(&HOME_RAD)).unwrap();
    // The input is the FK position, normalised: the home pose and the
    // lowered pose are ±1 standard deviation apart along some axis.
    let input = TcpInput::load(dir.path(), &spec).unwrap();
    let home = input.vector(&joints(&HOME_RAD)).unwrap();
    let mut lowered = HOME_RAD;
    lowered[3] = -2.5;
    let low = input.vector(&joints(&lowered)).unwrap();
    let spread = home
        .iter()
        .zip(&low)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!((spread - 2.0).abs() < 1e-3, "{home:?} {low:?}");
    // It changes what the model sees.
    let (_, model) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    let images = Tensor::rand(0f32, 1.0, (1, 3, 32, 32), &Device::Cpu).unwrap();
    let text = Tensor::randn(0f32, 0.3, (1, 3, TEXT_HIDDEN), &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 3), DType::F32, &Device::Cpu).unwrap();
    let bins = Tensor::zeros((1, 8), DType::U32, &Device::Cpu).unwrap();
    let logits = |v: [f32; 3]| {
        let s = Tensor::new(&[v], &Device::Cpu).unwrap();
        let m = model
            .encode_with_state(&images, &text, &mask, Some(&s))
            .unwrap();
        model.forward_teacher(&m, &bins).unwrap()
    };
    let diff = (logits(home) - logits(low))
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-4, "TCP input changed the logits by only {diff}");
    // A joint state without the arm's joints, or no joint state at all, is refused.
    let fingers = JointState::new(names()[7..].to_vec(), vec![0.04, 0.04], 0.0).unwrap();
    let err = policy.act(&frame, &fingers).unwrap_err();
    assert!(err.to_string().contains("panda_joint1"), "{err}");
    assert!(policy.step_frame(&frame).is_err());
    let wrong_width = Tensor::new(&[[0f32; 4]], &Device::Cpu).unwrap();
    assert!(model
        .encode_with_state(&images, &text, &mask, Some(&wrong_width))
        .is_err());

    // The folder without its URDF copy fails to load, naming the file.
    std::fs::remove_file(dir.path().join(TCP_URDF_FILE)).unwrap();
    let err = VlaPolicy::load(dir.path()).err().unwrap();
    assert!(err.to_string().contains(TCP_URDF_FILE), "{err}");
    // A config whose tcp and model disagree is refused.
    let cfg_path = dir.path().join("config.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    json["model"]["tcp_input"] = serde_json::json!(false);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("tcp_input"), "{err}");
    json["model"]["tcp_input"] = serde_json::json!(true);
    json["tcp"]["std_m"] = serde_json::json!([0.0, 1.0, 1.0]);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("std_m"), "{err}");
}

#[test]
fn training_with_tcp_input_installs_the_urdf_and_warm_starts_keep_it() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = panda_toy_data();
    let opts = TrainOptions {
        steps: 6,
        batch: 8,
        warmup_steps: 2,
        val_every: 0,
        checkpoint_every: 0,
        model: ModelConfig::tiny(),
        progress: false,
        tcp: Some(source()),
        ..TrainOptions::default()
    };
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &text, first.path(), &opts).unwrap();
    assert!(first.path().join(TCP_URDF_FILE).is_file());
    let cfg = PolicyConfig::read(first.path()).unwrap();
    assert!(cfg.model.tcp_input && cfg.model.state_dim == 9);
    let spec = cfg.tcp.clone().unwrap();
    // The arm is in front of its base, its hand above it: the mean says so.
    assert!(spec.mean_m[0] > 0.3 && spec.mean_m[2] > 0.2, "{spec:?}");
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    let mut policy = VlaPolicy::load_with(first.path(), Some(&text_dir), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(instruction_tokens());
    let frame = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![30; 32 * 32 * 3]).unwrap();
    policy.act(&frame, &joints(&HOME_RAD)).unwrap();

    // A warm start without --tcp-urdf keeps the input, its URDF and statistics.
    let second = tempfile::tempdir().unwrap();
    let warm = TrainOptions {
        tcp: None,
        init_from: Some(first.path().to_path_buf()),
        ..opts.clone()
    };
    vla_policy::train(&data, &text, second.path(), &warm).unwrap();
    assert!(second.path().join(TCP_URDF_FILE).is_file());
    assert_eq!(PolicyConfig::read(second.path()).unwrap().tcp, Some(spec));

    // Reading only the arm joints (not the fingers) next to the TCP.
    let arm = tempfile::tempdir().unwrap();
    let arm_opts = TrainOptions {
        state_joints: Some(names()[..7].to_vec()),
        ..opts.clone()
    };
    vla_policy::train(&data, &text, arm.path(), &arm_opts).unwrap();
    let cfg = PolicyConfig::read(arm.path()).unwrap();
    assert_eq!(cfg.model.state_dim, 7);
    assert_eq!(cfg.state.unwrap().joint_names, names()[..7].to_vec());
    let mut policy = VlaPolicy::load_with(arm.path(), Some(&text_dir), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(instruction_tokens());
    policy.act(&frame, &joints(&HOME_RAD)).unwrap();
    let unknown = TrainOptions {
        state_joints: Some(vec!["panda_joint1".into(), "elbow".into()]),
        ..opts.clone()
    };
    let err =
        vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &unknown).unwrap_err();
    assert!(err.to_string().contains("\"elbow\""), "{err}");

    // Data without joint states cannot feed the input: a clear error.
    let mut bare = data.clone();
    bare.state_names.clear();
    for s in &mut bare.samples {
        s.state.clear();
    }
    let third = tempfile::tempdir().unwrap();
    let err = vla_policy::train(&bare, &text, third.path(), &opts).unwrap_err();
    assert!(err.to_string().contains("no joint states"), "{err}");
}

#[test]
fn the_auxiliary_estimate_reads_the_frame_and_is_absent_without_a_head() {
    let frame = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![90; 32 * 32 * 3]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model_cfg = ModelConfig {
        aux_outputs: 6,
        ..ModelConfig::tiny()
    };
    let (varmap, _) = checkpoint::fresh_model(&model_cfg, 4, &Device::Cpu).unwrap();
    let cfg = PolicyConfig::new(model_cfg, ActionTokenizer::default());
    checkpoint::save(dir.path(), &cfg, &varmap).unwrap();
    let (cfg, model) = checkpoint::load_for_inference(dir.path(), &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
    // No instruction yet: an error, not a guess.
    assert!(policy.auxiliary_estimate_m(&frame, None).is_err());
    policy.set_instruction_tokens(instruction_tokens());
    let est = policy
        .auxiliary_estimate_m(&frame, None)
        .unwrap()
        .expect("a model with the head gives an estimate");
    assert_eq!(est.len(), 6);
    assert!(est.iter().all(|v| v.is_finite()), "{est:?}");
    // A different frame gives a different estimate (it reads the image).
    let other = RgbFrame::new(32, 32, PixelEncoding::Rgb8, vec![200; 32 * 32 * 3]).unwrap();
    let est2 = policy.auxiliary_estimate_m(&other, None).unwrap().unwrap();
    assert_ne!(est, est2);
    // A model without the head has no estimate.
    let plain = tempfile::tempdir().unwrap();
    let headless = ModelConfig {
        aux_outputs: 0,
        ..ModelConfig::tiny()
    };
    let (varmap, _) = checkpoint::fresh_model(&headless, 4, &Device::Cpu).unwrap();
    let cfg = PolicyConfig::new(headless, ActionTokenizer::default());
    checkpoint::save(plain.path(), &cfg, &varmap).unwrap();
    let (cfg, model) = checkpoint::load_for_inference(plain.path(), &Device::Cpu).unwrap();
    let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
    policy.set_instruction_tokens(instruction_tokens());
    assert_eq!(policy.auxiliary_estimate_m(&frame, None).unwrap(), None);
}

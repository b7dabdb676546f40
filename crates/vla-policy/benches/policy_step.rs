//! Latency of one policy step (frame + joint state → 8 tokens), batch 1, one
//! thread. `policy_step_default` runs the shipped policy itself
//! (policies/default as `VlaPolicy::load` assembles it, the instruction given
//! as tokens), `policy_step_refine_eight` policies/refine-eight and
//! `policy_step_lean_six` policies/lean-six likewise; `policy_step` and the variants below it build networks
//! with fresh weights from `ModelConfig`: `policy_step` the default
//! `ModelConfig` shape, the Panda's 9 joints and the TCP
//! position (forward kinematics through urdf/panda.urdf) as the shipped
//! policy reads them, built from plain tensors as
//! `VlaPolicy::load` builds it. The weights are freshly initialised: the cost
//! does not depend on their values, only on the shape.
//!
//! `policy_step_hand_crop` adds the 32 px hand crop (`--hand-crop-px 32`);
//! `policy_step_wrist` the grounded network with the 64 px wrist camera
//! (`--wrist-px 64`);
//! `policy_step_grounded` the session-8 grounding (`--instruction-queries 4
//! --keypoint-hidden 64`); `policy_step_stem2px` that with the 2 px stem of
//! session 15's candidate policy; `policy_step_refine` the grounded
//! network with the keypoints refined onto the 32×32 map
//! (`--keypoint-refine 32`); `policy_step_table_plane` the grounded
//! network plus the table-plane offsets (`--table-plane`);
//! `policy_step_grounded_ensemble2` two grounded networks decoding together
//! (`config.json` `ensemble`).
//!
//! `cargo bench -p vla-policy --bench policy_step`

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{JointState, PixelEncoding, RgbFrame};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::fast_decode::FastDecoder;
use vla_policy::tcp;
use vla_policy::{InstructionTokens, ModelConfig, VlaPolicy, TEXT_HIDDEN};

fn bench(c: &mut Criterion) {
    let names: Vec<String> = (1..=7)
        .map(|i| format!("panda_joint{i}"))
        .chain((1..=2).map(|i| format!("panda_finger_joint{i}")))
        .collect();
    let cfg = ModelConfig {
        state_dim: names.len(),
        tcp_input: true,
        ..ModelConfig::default()
    };
    let (varmap, _) = checkpoint::fresh_model(&cfg, 0, &Device::Cpu).unwrap();
    let model = checkpoint::inference_model(&cfg, &varmap, &Device::Cpu).unwrap();
    let mut pc = PolicyConfig::new(cfg.clone(), ActionTokenizer::default());
    // As the shipped policy decodes.
    pc.decoding = vla_policy::Decoding::Median;
    let home = [0.0f32, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785, 0.04, 0.04];
    pc.state = Some(checkpoint::StateSpec::from_rows(names.clone(), &[&home[..]]).unwrap());
    let joints = JointState::new(names, home.iter().map(|&q| f64::from(q)).collect(), 0.0).unwrap();
    let urdf_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../urdf");
    let chain = tcp::load_chain(
        &urdf_dir.join("panda.urdf"),
        "panda_link0",
        "panda_hand_tcp",
    )
    .unwrap();
    let at_home = tcp::base_from_tcp_m(&chain, &joints).unwrap();
    let spec = tcp::spec_from_rows(
        "panda.urdf".into(),
        "panda_link0".into(),
        "panda_hand_tcp".into(),
        &[at_home],
    )
    .unwrap();
    pc.tcp = Some(spec.clone());
    let mut policy = VlaPolicy::from_parts(pc, model, None, &Device::Cpu);
    policy.set_tcp_input(tcp::TcpInput::load(&urdf_dir, &spec).unwrap());
    // A 12-word-piece instruction, the typical length of a task sentence.
    let text = Tensor::randn(0f32, 0.3, (12, TEXT_HIDDEN), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(InstructionTokens::from_text_outputs(&text, 64).unwrap());
    let s = cfg.image_size_px as u32;
    let pixels: Vec<u8> = (0..s * s * 3).map(|i| (i * 31 % 251) as u8).collect();
    let frame = RgbFrame::new(s, s, PixelEncoding::Rgb8, pixels).unwrap();
    let big: Vec<u8> = (0..320 * 240 * 3).map(|i| (i * 31 % 251) as u8).collect();
    let camera = RgbFrame::new(320, 240, PixelEncoding::Rgb8, big).unwrap();
    c.bench_function("policy_step", |b| {
        b.iter(|| policy.step_observation(&frame, Some(&joints)).unwrap())
    });
    c.bench_function("policy_step_320x240_resize", |b| {
        b.iter(|| policy.step_observation(&camera, Some(&joints)).unwrap())
    });
    // The shipped policy itself (policies/default: its shape, its weights,
    // its decoding), assembled as `VlaPolicy::load` assembles it but with
    // the instruction given as tokens (the text encoder's one-off cost per
    // instruction is the text_encoder bench's).
    let shipped = |name: &str| {
        let dir = urdf_dir.join("../policies").join(name);
        let (cfg, model) = checkpoint::load_for_inference(&dir, &Device::Cpu).unwrap();
        let tcp_input = cfg
            .tcp
            .as_ref()
            .map(|spec| tcp::TcpInput::load(&dir, spec).unwrap());
        let mut policy = VlaPolicy::from_parts(cfg, model, None, &Device::Cpu);
        if let Some(input) = tcp_input {
            policy.set_tcp_input(input);
        }
        let max_text = policy.config().model.max_text_tokens;
        policy
            .set_instruction_tokens(InstructionTokens::from_text_outputs(&text, max_text).unwrap());
        policy
    };
    // policies/refined-six (the default of sessions 34-37) and
    // policies/refine-eight: the lean shape with the keypoints refined onto
    // the 32×32 map (session 32); policies/default (since session 38): the
    // same with the previous action's vertical move as an input;
    // policies/lean-six: the lean shape without the refinement (the
    // default of sessions 29-33).
    for (bench_name, dir) in [
        ("policy_step_default", "default"),
        ("policy_step_refined_six", "refined-six"),
        ("policy_step_refine_eight", "refine-eight"),
        ("policy_step_lean_six", "lean-six"),
    ] {
        let policy = shipped(dir);
        c.bench_function(bench_name, |b| {
            b.iter(|| policy.step_observation(&frame, Some(&joints)).unwrap())
        });
    }
    // A policy of another shape, set up as `policy` (state, TCP input,
    // instruction, median decoding), with fresh weights.
    let variant = |shape: ModelConfig,
                   crop: Option<vla_policy::crop::CropSpec>,
                   wrist: Option<vla_policy::checkpoint::WristSpec>| {
        let (vars, _) = checkpoint::fresh_model(&shape, 0, &Device::Cpu).unwrap();
        let model = checkpoint::inference_model(&shape, &vars, &Device::Cpu).unwrap();
        let mut pc = PolicyConfig::new(shape, ActionTokenizer::default());
        pc.decoding = vla_policy::Decoding::Median;
        pc.state = policy.config().state.clone();
        pc.tcp = Some(spec.clone());
        pc.crop = crop;
        pc.wrist = wrist;
        let mut p = VlaPolicy::from_parts(pc, model, None, &Device::Cpu);
        p.set_tcp_input(tcp::TcpInput::load(&urdf_dir, &spec).unwrap());
        p.set_instruction_tokens(InstructionTokens::from_text_outputs(&text, 64).unwrap());
        p
    };
    // The hand crop (`--hand-crop-px 32`), the simulator's camera in the
    // base frame.
    let crop_policy = variant(
        ModelConfig {
            crop: Some(vla_policy::model::CropNetConfig::default()),
            ..cfg.clone()
        },
        Some(vla_policy::crop::CropSpec {
            camera: tabletop_camera(),
        }),
        None,
    );
    c.bench_function("policy_step_hand_crop", |b| {
        b.iter(|| crop_policy.step_observation(&frame, Some(&joints)).unwrap())
    });
    // Attention pooling of the instruction and the keypoint context branch.
    let grounded_cfg = ModelConfig {
        instruction_queries: 4,
        keypoint_hidden: 64,
        ..cfg.clone()
    };
    let grounded = variant(grounded_cfg.clone(), None, None);
    c.bench_function("policy_step_grounded", |b| {
        b.iter(|| grounded.step_observation(&frame, Some(&joints)).unwrap())
    });
    // The grounded network with the 64 px wrist camera (`--wrist-px 64`).
    let wrist_policy = variant(
        ModelConfig {
            crop: Some(vla_policy::model::CropNetConfig {
                side_px: 64,
                patch_px: 4,
                channels: vec![32, 64, 128],
                keypoints: 8,
                keypoint_stage: 0,
            }),
            ..grounded_cfg.clone()
        },
        None,
        Some(vla_policy::checkpoint::WristSpec {
            width_px: 64,
            height_px: 64,
        }),
    );
    let wrist_frame = RgbFrame::new(64, 64, PixelEncoding::Rgb8, vec![90; 64 * 64 * 3]).unwrap();
    c.bench_function("policy_step_wrist", |b| {
        b.iter(|| {
            wrist_policy
                .step_views(&frame, Some(&wrist_frame), Some(&joints))
                .unwrap()
        })
    });
    // Session 15's candidate: the grounded network with 2 px patches and a
    // five-stage stem, keypoints read at stage 2
    // (`--stem-patch-px 2 --stem-channels 16,32,64,128,128 --keypoint-stage 2`).
    let stem2px = variant(
        ModelConfig {
            stem_patch_px: 2,
            stem_channels: vec![16, 32, 64, 128, 128],
            keypoint_stage: 2,
            ..grounded_cfg.clone()
        },
        None,
        None,
    );
    c.bench_function("policy_step_stem2px", |b| {
        b.iter(|| stem2px.step_observation(&frame, Some(&joints)).unwrap())
    });
    // The grounded network with the keypoints refined onto the 32×32 map
    // (`--keypoint-refine 32`, session 32).
    let refine = variant(
        ModelConfig {
            keypoint_refine: 32,
            ..grounded_cfg.clone()
        },
        None,
        None,
    );
    c.bench_function("policy_step_refine", |b| {
        b.iter(|| refine.step_observation(&frame, Some(&joints)).unwrap())
    });
    // The shipped (grounded) shape as a two-network ensemble (`config.json`
    // `ensemble`): a second grounded network of other weights.
    let mut ensemble2 = variant(grounded_cfg.clone(), None, None);
    let second = variant(grounded_cfg.clone(), None, None);
    let (vars, _) = checkpoint::fresh_model(&grounded_cfg, 1, &Device::Cpu).unwrap();
    let member = checkpoint::inference_model(&grounded_cfg, &vars, &Device::Cpu).unwrap();
    ensemble2.add_member(second.config(), member).unwrap();
    c.bench_function("policy_step_grounded_ensemble2", |b| {
        b.iter(|| ensemble2.step_observation(&frame, Some(&joints)).unwrap())
    });
    // Plus the table-plane offsets (session 9, `--table-plane`).
    let plane = variant(
        ModelConfig {
            table_plane: Some(vla_policy::table_plane::TablePlaneConfig {
                camera: tabletop_camera(),
                plane_z_m: 0.023,
                tcp_mean_m: spec.mean_m,
                tcp_std_m: spec.std_m,
                fine_scale_m: None,
                fine_plane_z_m: None,
                held_fine: false,
            }),
            ..grounded_cfg
        },
        None,
        None,
    );
    c.bench_function("policy_step_table_plane", |b| {
        b.iter(|| plane.step_observation(&frame, Some(&joints)).unwrap())
    });
    // The two halves of a step: observation encoding and 8-token decoding.
    let model = checkpoint::inference_model(&cfg, &varmap, &Device::Cpu).unwrap();
    let image = vla_policy::image::frame_tensor(&frame, cfg.image_size_px, &Device::Cpu).unwrap();
    let text = text.unsqueeze(0).unwrap();
    let mask = Tensor::ones((1, 12), candle_core::DType::F32, &Device::Cpu).unwrap();
    let state = Tensor::zeros(
        (1, cfg.state_width()),
        candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    c.bench_function("policy_encode_observation", |b| {
        b.iter(|| {
            model
                .encode_with_state(&image, &text, &mask, Some(&state))
                .unwrap()
        })
    });
    let memory = model
        .encode_with_state(&image, &text, &mask, Some(&state))
        .unwrap();
    c.bench_function("policy_decode_8_tokens_candle", |b| {
        b.iter(|| model.generate(&memory).unwrap())
    });
    // What `VlaPolicy` runs on the CPU.
    let fast = FastDecoder::new(&model).unwrap();
    c.bench_function("policy_decode_8_tokens", |b| {
        b.iter(|| fast.generate(&memory).unwrap())
    });
    let median = FastDecoder::new(&model)
        .unwrap()
        .with_decoding(vla_policy::Decoding::Median);
    c.bench_function("policy_decode_8_tokens_median", |b| {
        b.iter(|| median.generate(&memory).unwrap())
    });
}

/// The tabletop scene's camera (sim/scenes/tabletop.toml) in the robot's
/// base frame, 128 px square.
fn tabletop_camera() -> vla_policy::crop::CropCamera {
    use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
    let eye = Vector3::new(1.05, 0.0, 0.55);
    let forward = (Vector3::new(0.47, 0.0, 0.05) - eye).normalize();
    let right = forward.cross(&Vector3::z()).normalize();
    let down = forward.cross(&right);
    let rotation = Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[right, down, forward]));
    let pose = Isometry3::from_parts(
        Translation3::from(eye),
        UnitQuaternion::from_rotation_matrix(&rotation),
    );
    let f_px = 64.0 / 27.5f64.to_radians().tan();
    vla_policy::crop::CropCamera::new(&pose, 128, 128, f_px, f_px, 63.5, 63.5)
}

fn one_thread() {
    // Must run before candle's thread pools start.
    std::env::set_var("RAYON_NUM_THREADS", "1");
}

criterion_group! {
    name = benches;
    config = { one_thread(); Criterion::default().sample_size(50) };
    targets = bench
}
criterion_main!(benches);

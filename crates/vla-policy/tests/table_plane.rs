//! Table-plane offsets (`config.json` `model.table_plane`): the objects'
//! keypoints projected onto the table through the calibrated camera,
//! minus the TCP, as more inputs of the relation token.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::{instruction_tokens, joints, panda_toy_data, panda_urdf, tabletop_camera, HOME_RAD};

use std::path::Path;

use candle_core::{Device, Tensor};
use vla_core::{PixelEncoding, Policy, RgbFrame};
use vla_policy::checkpoint::PolicyConfig;
use vla_policy::data::Dataset;
use vla_policy::tcp::TcpSource;
use vla_policy::{ModelConfig, TextEncoder, TrainOptions, VlaPolicy};

/// Toy frames with Panda joint states and an object 0.2 m below the TCP
/// (so, from the TCP's forward kinematics, the plane's height is known).
fn data() -> Dataset {
    let mut data = panda_toy_data();
    for s in &mut data.samples {
        s.aux = [0.3, -0.2, -2.0, 0.0, 0.0, 0.0];
        s.aux_mask = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
    }
    data
}

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

fn relation_weight(dir: &Path) -> Vec<Vec<f32>> {
    let tensors: std::collections::HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors["relation.proj.weight"].to_vec2().unwrap()
}

fn actions(dir: &Path) -> Vec<[f64; 7]> {
    let text_dir = vla_policy::text_files::text_encoder_dir(None).unwrap();
    let mut policy = VlaPolicy::load_with(dir, Some(&text_dir), &Device::Cpu).unwrap();
    policy.set_instruction_tokens(instruction_tokens());
    (0..4)
        .map(|k| {
            let px: Vec<u8> = (0..48 * 48 * 3)
                .map(|i| ((i * (k + 3)) % 251) as u8)
                .collect();
            let frame = RgbFrame::new(48, 48, PixelEncoding::Rgb8, px).unwrap();
            let mut q = HOME_RAD;
            q[0] = 0.1 * k as f64;
            policy
                .act(&frame, &joints(&q))
                .unwrap()
                .action
                .to_continuous()
        })
        .collect()
}

#[test]
fn a_warm_start_into_table_plane_offsets_keeps_the_function_then_learns_from_them() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let first = tempfile::tempdir().unwrap();
    vla_policy::train(&data, &text, first.path(), &options()).unwrap();

    // Grown with zero columns: the same actions as before.
    let second = tempfile::tempdir().unwrap();
    let grow = TrainOptions {
        init_from: Some(first.path().to_path_buf()),
        table_plane_camera: Some(tabletop_camera()),
        tcp: None,
        stop_at: Some(1),
        lr: 1e-12,
        ..options()
    };
    vla_policy::train(&data, &text, second.path(), &grow).unwrap();
    let cfg = PolicyConfig::read(second.path()).unwrap();
    let plane = cfg.model.table_plane.unwrap();
    assert_eq!(plane.camera, tabletop_camera());
    let tcp = cfg.tcp.unwrap();
    assert_eq!(plane.tcp_mean_m, tcp.mean_m);
    // Every object sits 0.2 m below its TCP (both means over the same
    // training samples).
    assert!(
        (plane.plane_z_m - (tcp.mean_m[2] - 0.2)).abs() < 1e-6,
        "{plane:?} vs {tcp:?}"
    );
    let grown = relation_weight(second.path());
    assert!(grown.iter().all(|row| row.len() == 10));
    assert!(grown
        .iter()
        .all(|row| row[6..].iter().all(|w| w.abs() < 1e-9)));
    let (before, after) = (actions(first.path()), actions(second.path()));
    for (a, b) in before.iter().zip(&after) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{before:?} vs {after:?}");
        }
    }

    // Training reads them: the new columns move, and a warm start from this
    // policy keeps them without being asked.
    let third = tempfile::tempdir().unwrap();
    let more = TrainOptions {
        init_from: Some(second.path().to_path_buf()),
        tcp: None,
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data, &text, third.path(), &more).unwrap();
    let trained = relation_weight(third.path());
    assert!(trained
        .iter()
        .any(|row| row[6..].iter().any(|w| w.abs() > 1e-6)));
    let kept = PolicyConfig::read(third.path()).unwrap().model.table_plane;
    assert_eq!(kept.unwrap().plane_z_m, plane.plane_z_m);
}

#[test]
fn table_plane_offsets_without_the_tcp_input_or_a_consistent_config_are_refused() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let no_tcp = TrainOptions {
        tcp: None,
        table_plane_camera: Some(tabletop_camera()),
        ..options()
    };
    let err =
        vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &no_tcp).unwrap_err();
    assert!(err.to_string().contains("TCP"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let with = TrainOptions {
        table_plane_camera: Some(tabletop_camera()),
        ..options()
    };
    vla_policy::train(&data, &text, dir.path(), &with).unwrap();
    let cfg_path = dir.path().join("config.json");
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let mut json = good.clone();
    json["model"]["table_plane"]["tcp_std_m"] = serde_json::json!([0.1, 0.1, 0.1]);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("table_plane"), "{err}");
    let mut json = good.clone();
    json["model"]["tcp_input"] = serde_json::json!(false);
    json["tcp"] = serde_json::Value::Null;
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("table_plane"), "{err}");
    let mut json = good;
    json["model"]["table_plane"]["plane_z_m"] = serde_json::json!(5.0);
    std::fs::write(&cfg_path, json.to_string()).unwrap();
    let err = PolicyConfig::read(dir.path()).unwrap_err();
    assert!(err.to_string().contains("below the camera"), "{err}");
}

#[test]
fn the_augmentation_shift_reaches_the_offsets_and_nothing_else() {
    use candle_core::DType;
    use vla_policy::table_plane::TablePlaneConfig;
    let dev = Device::Cpu;
    let plane = TablePlaneConfig {
        camera: tabletop_camera(),
        plane_z_m: 0.03,
        tcp_mean_m: [0.5, 0.0, 0.15],
        tcp_std_m: [0.08, 0.12, 0.1],
        fine_scale_m: None,
        fine_plane_z_m: None,
        held_fine: false,
    };
    let with = ModelConfig {
        state_dim: 9,
        tcp_input: true,
        table_plane: Some(plane),
        ..ModelConfig::tiny()
    };
    let without = ModelConfig {
        table_plane: None,
        ..with.clone()
    };
    let s = with.image_size_px;
    let images = Tensor::rand(0f32, 1.0, (2, 3, s, s), &dev).unwrap();
    let text = Tensor::randn(0f32, 0.3, (2, 4, vla_policy::TEXT_HIDDEN), &dev).unwrap();
    let mask = Tensor::ones((2, 4), DType::F32, &dev).unwrap();
    let state = Tensor::randn(0f32, 1.0, (2, 12), &dev).unwrap();
    let zero = Tensor::zeros((2, 2), DType::F32, &dev).unwrap();
    let shift = Tensor::new(&[[3f32, -2.0], [-4.0, 1.0]], &dev).unwrap();
    let aux = |cfg: &ModelConfig, shift: Option<&Tensor>| -> Vec<Vec<f32>> {
        let (_, model) = vla_policy::checkpoint::fresh_model(cfg, 4, &dev).unwrap();
        model
            .encode_shifted(&images, None, &text, &mask, Some(&state), shift)
            .unwrap()
            .aux_prediction()
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let close = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| (x - y).abs() < 1e-6)
    };
    assert!(close(&aux(&with, None), &aux(&with, Some(&zero))));
    assert!(!close(&aux(&with, None), &aux(&with, Some(&shift))));
    assert!(close(&aux(&without, None), &aux(&without, Some(&shift))));
}

#[test]
fn a_warm_start_into_fine_offsets_keeps_the_function_and_later_runs_keep_them() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let coarse = tempfile::tempdir().unwrap();
    let with_plane = TrainOptions {
        table_plane_camera: Some(tabletop_camera()),
        ..options()
    };
    vla_policy::train(&data, &text, coarse.path(), &with_plane).unwrap();

    // Grown by 4 zero columns at the end of the relation input (6 + 4 + 4):
    // the same actions, the same plane.
    let fine = tempfile::tempdir().unwrap();
    let grow = TrainOptions {
        init_from: Some(coarse.path().to_path_buf()),
        tcp: None,
        table_plane_fine_m: Some(0.01),
        stop_at: Some(1),
        lr: 1e-12,
        ..options()
    };
    vla_policy::train(&data, &text, fine.path(), &grow).unwrap();
    let before_plane = PolicyConfig::read(coarse.path())
        .unwrap()
        .model
        .table_plane
        .unwrap();
    let plane = PolicyConfig::read(fine.path())
        .unwrap()
        .model
        .table_plane
        .unwrap();
    assert_eq!(plane.fine_scale_m, Some(0.01));
    assert_eq!(plane.plane_z_m, before_plane.plane_z_m);
    let grown = relation_weight(fine.path());
    assert!(grown.iter().all(|row| row.len() == 14));
    assert!(grown
        .iter()
        .all(|row| row[10..].iter().all(|w| w.abs() < 1e-9)));
    let (before, after) = (actions(coarse.path()), actions(fine.path()));
    for (a, b) in before.iter().zip(&after) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{before:?} vs {after:?}");
        }
    }

    // Training moves the new columns; a warm start without the flag keeps
    // the scale.
    let more_dir = tempfile::tempdir().unwrap();
    let more = TrainOptions {
        init_from: Some(fine.path().to_path_buf()),
        tcp: None,
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data, &text, more_dir.path(), &more).unwrap();
    assert!(relation_weight(more_dir.path())
        .iter()
        .any(|row| row[10..].iter().any(|w| w.abs() > 1e-6)));
    let kept = PolicyConfig::read(more_dir.path())
        .unwrap()
        .model
        .table_plane
        .unwrap();
    assert_eq!(kept.fine_scale_m, Some(0.01));
}

#[test]
fn fine_offsets_without_the_table_plane_or_with_a_bad_scale_are_refused() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let alone = TrainOptions {
        table_plane_fine_m: Some(0.01),
        ..options()
    };
    let err =
        vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &alone).unwrap_err();
    assert!(err.to_string().contains("--table-plane"), "{err}");
    for bad in [0.0, -0.01, f64::NAN] {
        let opts = TrainOptions {
            table_plane_camera: Some(tabletop_camera()),
            table_plane_fine_m: Some(bad),
            ..options()
        };
        let err = vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &opts)
            .unwrap_err();
        assert!(err.to_string().contains("fine_scale_m"), "{err}");
    }
}

#[test]
fn a_warm_start_into_held_offsets_keeps_the_function_and_later_runs_keep_them() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let fine = tempfile::tempdir().unwrap();
    let with_fine = TrainOptions {
        table_plane_camera: Some(tabletop_camera()),
        table_plane_fine_m: Some(0.01),
        ..options()
    };
    vla_policy::train(&data, &text, fine.path(), &with_fine).unwrap();

    // Grown by 2 zero columns at the very end (6 + 4 + 4 + 2): the same
    // actions, the same planes.
    let held = tempfile::tempdir().unwrap();
    let grow = TrainOptions {
        init_from: Some(fine.path().to_path_buf()),
        tcp: None,
        table_plane_held: true,
        stop_at: Some(1),
        lr: 1e-12,
        ..options()
    };
    vla_policy::train(&data, &text, held.path(), &grow).unwrap();
    let read = |dir: &Path| PolicyConfig::read(dir).unwrap().model.table_plane.unwrap();
    let (before_plane, plane) = (read(fine.path()), read(held.path()));
    assert!(plane.held_fine && !before_plane.held_fine);
    assert_eq!(plane.fine_plane_z_m, before_plane.fine_plane_z_m);
    assert_eq!(plane.fine_scale_m, Some(0.01));
    let grown = relation_weight(held.path());
    assert!(grown.iter().all(|row| row.len() == 16));
    assert!(grown
        .iter()
        .all(|row| row[14..].iter().all(|w| w.abs() < 1e-9)));
    let (before, after) = (actions(fine.path()), actions(held.path()));
    for (a, b) in before.iter().zip(&after) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{before:?} vs {after:?}");
        }
    }

    // Training moves the new columns; a warm start without the flag keeps them.
    let more_dir = tempfile::tempdir().unwrap();
    let more = TrainOptions {
        init_from: Some(held.path().to_path_buf()),
        tcp: None,
        lr: 1e-2,
        ..options()
    };
    vla_policy::train(&data, &text, more_dir.path(), &more).unwrap();
    assert!(relation_weight(more_dir.path())
        .iter()
        .any(|row| row[14..].iter().any(|w| w.abs() > 1e-6)));
    assert!(read(more_dir.path()).held_fine);
}

#[test]
fn held_offsets_without_the_fine_offsets_are_refused() {
    let text = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let data = data();
    let alone = TrainOptions {
        table_plane_held: true,
        ..options()
    };
    let err =
        vla_policy::train(&data, &text, tempfile::tempdir().unwrap().path(), &alone).unwrap_err();
    assert!(err.to_string().contains("--table-plane"), "{err}");
    let coarse_only = TrainOptions {
        table_plane_camera: Some(tabletop_camera()),
        table_plane_held: true,
        ..options()
    };
    let err = vla_policy::train(
        &data,
        &text,
        tempfile::tempdir().unwrap().path(),
        &coarse_only,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("held_fine needs the fine"),
        "{err}"
    );
}

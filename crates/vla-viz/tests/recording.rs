//! Writes a short recording with every entity kind and checks it with the
//! official `rerun` command-line tool of the same version.
//!
//! The tool comes from `scripts/setup-test-tools.sh`; `scripts/test.sh` passes
//! its path in `VLA_RERUN_BIN` and sets `VLA_REQUIRE_TOOLS=1`, which makes a
//! missing tool a failure instead of a skipped check.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use vla_core::{Action, PixelEncoding, RgbFrame};
use vla_viz::{StatusLevel, Viz, VizGeometry, VizShape, VizSink};

fn rerun_bin() -> Option<PathBuf> {
    match std::env::var_os("VLA_RERUN_BIN") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var_os("VLA_REQUIRE_TOOLS").is_none(),
                "VLA_REQUIRE_TOOLS is set but VLA_RERUN_BIN is not"
            );
            eprintln!(
                "VLA_RERUN_BIN not set: skipping the rerun CLI check (scripts/test.sh sets it)"
            );
            None
        }
    }
}

fn write_recording(path: &Path) {
    let mut viz = Viz::new("test", &VizSink::Rrd(path.to_path_buf())).unwrap();
    assert!(viz.is_enabled());
    let joints: Vec<String> = (1..=3).map(|i| format!("j{i}")).collect();
    viz.log_series_names(&joints).unwrap();
    let link_shape = VizShape {
        entity_from_shape: Isometry3::identity(),
        geometry: VizGeometry::Cylinder {
            radius_m: 0.05,
            length_m: 0.3,
        },
        rgba: [0.9, 0.9, 0.9, 1.0],
    };
    viz.log_static_shapes("world/robot/link1", &[link_shape])
        .unwrap();
    let cube = VizShape {
        entity_from_shape: Isometry3::identity(),
        geometry: VizGeometry::Box { size_m: [0.04; 3] },
        rgba: [1.0, 0.0, 0.0, 1.0],
    };
    let ball = VizShape {
        geometry: VizGeometry::Sphere { radius_m: 0.02 },
        ..cube
    };
    viz.set_time(0, 0.0);
    viz.begin_episode(
        1,
        &[
            ("red_cube".to_string(), vec![cube]),
            ("blue_ball".to_string(), vec![ball]),
        ],
    )
    .unwrap();
    viz.log_instruction("put the red cube in the green bowl")
        .unwrap();
    let camera = Isometry3::from_parts(
        Translation3::new(1.0, 0.0, 0.8),
        UnitQuaternion::from_axis_angle(&Vector3::y_axis(), 1.0),
    );
    let k = [100.0, 0.0, 32.0, 0.0, 100.0, 32.0, 0.0, 0.0, 1.0];
    for step in 0..5i64 {
        viz.set_time(step, step as f64 * 0.1);
        let frame = RgbFrame::new(
            64,
            64,
            PixelEncoding::Rgb8,
            vec![step as u8 * 40; 64 * 64 * 3],
        )
        .unwrap();
        let depth = vec![0.8f32; 64 * 64];
        viz.log_camera(&camera, &k, &frame, Some(&depth)).unwrap();
        let action = Action::new([0.01, 0.0, -0.01], [0.0; 3], 1.0, step == 4);
        let tokens = vla_core::tokenizer::ActionTokenizer::default()
            .tokenize(&action)
            .unwrap();
        viz.log_action(&tokens, &action).unwrap();
        let q = [0.1 * step as f64, 0.2, -0.3];
        viz.log_joints(&q, &q, &[-1.0; 3], &[1.0, 1.0, f64::INFINITY])
            .unwrap();
        viz.log_status("ok", StatusLevel::Info, 3.0).unwrap();
        let pose = Isometry3::translation(0.4 + 0.01 * step as f64, 0.0, 0.3);
        viz.log_poses("world/robot", &[("link1".to_string(), pose)])
            .unwrap();
        viz.log_poses("world/objects", &[("red_cube".to_string(), pose)])
            .unwrap();
        viz.log_ee(&pose, &pose).unwrap();
    }
    viz.flush().unwrap();
}

#[test]
fn recording_passes_rerun_verify() {
    let dir = std::env::temp_dir().join(format!("vla-viz-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("test.rrd");
    write_recording(&path);
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1000,
        "recording is nearly empty"
    );

    let Some(rerun) = rerun_bin() else { return };
    let verify = Command::new(&rerun)
        .args(["rrd", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "rerun rrd verify failed:\n{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let print = Command::new(&rerun)
        .args(["rrd", "print"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(print.status.success());
    let text = String::from_utf8_lossy(&print.stdout).to_string()
        + &String::from_utf8_lossy(&print.stderr);
    for entity in [
        "/world/camera/image",
        "/world/camera/depth",
        "/action/tokens",
        "/action/decoded",
        "/joints/measured",
        "/world/robot/link1",
        "/world/objects/red_cube",
        "/world/ee/target_path",
        "/instruction",
        "/status",
    ] {
        assert!(
            text.contains(entity),
            "{entity} missing from the recording:\n{text}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn disabled_viz_does_nothing() {
    let mut viz = Viz::disabled();
    assert!(!viz.is_enabled());
    viz.set_time(0, 0.0);
    let p = Isometry3::identity();
    viz.log_ee(&p, &p).unwrap();
    viz.log_instruction("x").unwrap();
}

#[test]
fn depth_of_wrong_size_is_an_error() {
    let dir = std::env::temp_dir().join(format!("vla-viz-depth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut viz = Viz::new("t", &VizSink::Rrd(dir.join("d.rrd"))).unwrap();
    let frame = RgbFrame::new(4, 4, PixelEncoding::Rgb8, vec![0; 48]).unwrap();
    let k = [1.0, 0.0, 2.0, 0.0, 1.0, 2.0, 0.0, 0.0, 1.0];
    let err = viz
        .log_camera(&Isometry3::identity(), &k, &frame, Some(&[0.0; 3]))
        .unwrap_err();
    assert!(err.to_string().contains("depth image has 3 values"));
    drop(viz);
    std::fs::remove_dir_all(&dir).ok();
}

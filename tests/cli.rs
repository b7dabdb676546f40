//! End-to-end tests of the `vla` binary, run from outside as a user would.

use std::process::Command;

fn vla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vla"))
}

#[test]
fn help_lists_every_subcommand() {
    let out = vla().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in ["sim", "collect", "train", "eval", "kin", "run", "sim-node"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from --help:\n{text}"
        );
    }
}

#[test]
fn unknown_subcommand_fails_with_usage() {
    let out = vla().arg("fly").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

/// `vla train` on a small generated demonstration folder writes a loadable
/// policy, and a second run with the same arguments resumes (nothing left).
#[test]
fn train_writes_a_policy_and_resumes() {
    use vla_policy::data::{synthetic::Synthetic, DemoSource};
    let demos = tempfile::tempdir().unwrap();
    let data = Synthetic {
        episodes: 4,
        steps: 5,
        seed: 3,
    }
    .load(vla_policy::ModelConfig::default().image_size_px)
    .unwrap();
    vla_policy::data::demo_dir::write(demos.path(), &data).unwrap();
    let out = tempfile::tempdir().unwrap();
    let args = |o: &std::path::Path| {
        let mut c = vla();
        c.arg("train")
            .arg("--data")
            .arg(demos.path())
            .arg("--out")
            .arg(o)
            .args(["--steps", "3", "--batch", "4", "--seed", "1"]);
        c
    };
    let run = args(out.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("validation"), "{stdout}");
    let policy = vla_policy::VlaPolicy::load(out.path()).unwrap();
    assert_eq!(policy.config().training.steps, 3);
    let again = args(out.path()).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));

    // --no-val trains without any validation pass; it cannot be combined
    // with the flags that shape one.
    let quiet = tempfile::tempdir().unwrap();
    let run = args(quiet.path()).arg("--no-val").output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(stdout.contains("trained steps 0..3"), "{stdout}");
    assert!(!stdout.contains("validation"), "{stdout}");
    let policy = vla_policy::VlaPolicy::load(quiet.path()).unwrap();
    assert_eq!(policy.config().training.val_loss, None);
    let refused = args(quiet.path())
        .args(["--no-val", "--val-every", "2"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--val-every"));

    let missing = vla()
        .args(["train", "--data", "/nonexistent/demos", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("episodes.jsonl"));

    // Loss weights must be numbers >= 0 and a step needs a thread; the
    // refusal names the flag.
    for (flag, bad) in [
        ("--aux-weight", "-1"),
        ("--keypoint-weight", "nan"),
        ("--workers", "0"),
        ("--data-weight", "-2"),
        ("--text-dropout", "1"),
        ("--text-dropout", "nan"),
    ] {
        let refused = vla()
            .args(["train", "--data", "/nonexistent/demos", "--out"])
            .arg(out.path())
            .arg(format!("{flag}={bad}"))
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains(flag), "{err}");
    }
    // One --data-weight per --data folder.
    let refused = vla()
        .args([
            "train",
            "--data",
            "/nonexistent/a",
            "--data",
            "/nonexistent/b",
        ])
        .args(["--data-weight", "1", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("1 --data-weight values for 2 --data folders"),
        "{err}"
    );
}

/// `--encoder-layers`, `--keypoints` and `--mlp-ratio` shape a fresh
/// network; a warm start without them keeps its policy's shape, and an
/// out-of-range value is refused with the flag named.
#[test]
fn train_shape_flags_set_and_inherit_the_network_shape() {
    use vla_policy::data::{synthetic::Synthetic, DemoSource};
    let demos = tempfile::tempdir().unwrap();
    let data = Synthetic {
        episodes: 3,
        steps: 4,
        seed: 5,
    }
    .load(vla_policy::ModelConfig::default().image_size_px)
    .unwrap();
    vla_policy::data::demo_dir::write(demos.path(), &data).unwrap();
    let train = |out: &std::path::Path, extra: &[&str]| {
        let run = vla()
            .arg("train")
            .arg("--data")
            .arg(demos.path())
            .arg("--out")
            .arg(out)
            .args(["--steps", "2", "--batch", "2", "--seed", "1"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        vla_policy::VlaPolicy::load(out)
            .unwrap()
            .config()
            .model
            .clone()
    };
    let lean = tempfile::tempdir().unwrap();
    let model = train(
        lean.path(),
        &[
            "--encoder-layers",
            "1",
            "--keypoints",
            "4",
            "--mlp-ratio",
            "2",
        ],
    );
    assert_eq!(
        (model.encoder_layers, model.keypoints, model.mlp_ratio),
        (1, 4, 2)
    );
    let warm = tempfile::tempdir().unwrap();
    let init = lean.path().to_str().unwrap();
    let model = train(warm.path(), &["--init-from", init]);
    assert_eq!(
        (model.encoder_layers, model.keypoints, model.mlp_ratio),
        (1, 4, 2)
    );
    let fresh = tempfile::tempdir().unwrap();
    let model = train(fresh.path(), &[]);
    let default = vla_policy::ModelConfig::default();
    assert_eq!(
        (model.encoder_layers, model.keypoints, model.mlp_ratio),
        (default.encoder_layers, default.keypoints, default.mlp_ratio)
    );
    for (flag, bad) in [("--encoder-layers", "0"), ("--mlp-ratio", "0")] {
        let refused = vla()
            .args(["train", "--data", "/nonexistent/demos", "--out"])
            .arg(fresh.path())
            .arg(format!("{flag}={bad}"))
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains(flag), "{err}");
    }
}

/// Without the `ros2` feature the ROS 2 nodes say how to build them and run nothing.
#[cfg(not(feature = "ros2"))]
#[test]
fn ros_nodes_without_the_feature_say_how_to_build_them() {
    for sub in ["run", "sim-node"] {
        let out = vla()
            .args([sub, "--ros-args", "-p", "policy:=x"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "`vla {sub}` succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("without the `ros2` feature") && err.contains("--features ros2"),
            "`vla {sub}`: {err}"
        );
    }
}

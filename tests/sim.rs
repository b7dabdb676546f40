//! End-to-end tests of `vla sim`, `vla eval` and `vla collect`, run as a
//! user would run them.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn vla() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vla"));
    c.current_dir(
        PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../.."),
    );
    c
}

fn run_ok(args: &[&str]) -> String {
    let out = vla().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "vla {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn refused(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sim_with_the_scripted_expert_succeeds() {
    let out = run_ok(&[
        "sim",
        "--task",
        "put the red cube in the green bowl",
        "--policy",
        "scripted",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 1);
    assert_eq!(v["successes"], 1, "{out}");
    assert_eq!(v["success_rate"], 1.0);
    assert_eq!(v["goal"]["family"], "put_in");
}

#[test]
fn sim_text_output_names_the_outcome() {
    let out = run_ok(&[
        "sim",
        "--task",
        "push the blue cube to the left",
        "--policy",
        "scripted",
        "--seed",
        "3",
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_bundled_policy_is_the_default_and_drives_an_episode() {
    // No --policy: policies/default, the trained policy, reads the rendered
    // camera frames and the joint states; whatever the outcome, the episode
    // must run to an outcome with its steps and tokens reported.
    let out = run_ok(&[
        "sim",
        "--task",
        "pick up the red cube",
        "--seed",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["policy"], "default");
    assert_eq!(v["episodes"], 1);
    let steps = v["results"][0]["steps"].as_u64().unwrap();
    assert!(steps >= 1, "{out}");
}

#[test]
fn every_bundled_policy_loads_drives_an_episode_and_records_both_splits() {
    // Each folder under policies/ is a policy users can pick by name: its
    // checkpoint must load and drive the simulator, and its metrics.json
    // must hold both splits measured on at least 200 episodes (issue #5).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.safetensors").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.len() >= 2,
        "policies/default and policies/eight-rounds: {names:?}"
    );
    for name in &names {
        let out = run_ok(&[
            "sim",
            "--policy",
            name,
            "--task",
            "pick up the red cube",
            "--seed",
            "1",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["policy"], name.as_str(), "{out}");
        assert!(v["results"][0]["steps"].as_u64().unwrap() >= 1, "{out}");
        let metrics: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(name).join("metrics.json")).unwrap(),
        )
        .unwrap();
        for split in ["train", "eval"] {
            let s = &metrics["splits"][split];
            assert!(s["episodes"].as_u64().unwrap() >= 200, "{name} {split}");
            let rate = s["success_rate"].as_f64().unwrap();
            let n = s["successes"].as_f64().unwrap() / s["episodes"].as_f64().unwrap();
            assert!((rate - n).abs() < 1e-9, "{name} {split}");
        }
    }
}

#[test]
fn unknown_words_are_an_error_listing_the_vocabulary() {
    let out = vla()
        .args(["sim", "--task", "put the red cube in the green teapot"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("teapot") && err.contains("vocabulary"),
        "{err}"
    );
    assert!(err.contains("bowl") && err.contains("cube"), "{err}");
}

#[test]
fn a_missing_policy_directory_is_a_clear_error() {
    let out = vla()
        .args([
            "sim",
            "--task",
            "pick up the red cube",
            "--policy",
            "policies/no-such-policy",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such policy directory"), "{err}");
}

#[test]
fn sim_rrd_recording_opens_in_the_official_tool() {
    let dir = std::env::temp_dir().join(format!("vla-sim-rrd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rrd = dir.join("sim.rrd");
    let rrd_arg = rrd.to_str().unwrap();
    let text = run_ok(&[
        "sim",
        "--task",
        "put the red cube in the green bowl",
        "--policy",
        "scripted",
        "--json",
        "--rrd",
        rrd_arg,
    ]);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["successes"], 1, "{text}");
    let overhead = v["viz"]["logging_overhead_fraction"].as_f64().unwrap();
    assert!(overhead > 0.0, "logging time must be measured: {text}");
    assert!(std::fs::metadata(&rrd).unwrap().len() > 10_000);
    let Some(rerun) = std::env::var_os("VLA_RERUN_BIN") else {
        assert!(
            std::env::var_os("VLA_REQUIRE_TOOLS").is_none(),
            "VLA_REQUIRE_TOOLS is set but VLA_RERUN_BIN is not"
        );
        return;
    };
    let verify = Command::new(&rerun)
        .args(["rrd", "verify", rrd_arg])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let print = Command::new(&rerun)
        .args(["rrd", "print", rrd_arg])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&print.stdout).to_string()
        + &String::from_utf8_lossy(&print.stderr);
    for entity in [
        "/world/camera/image",
        "/world/camera/depth",
        "/instruction",
        "/action/tokens",
        "/action/decoded",
        "/world/robot/panda_link3",
        "/world/robot/panda_leftfinger",
        "/world/objects/red_cube",
        "/world/objects/green_bowl",
        "/world/ee/target_path",
        "/world/ee/actual_path",
        "/joints/measured",
        "/joints/commanded",
        "/status",
    ] {
        assert!(listing.contains(entity), "{entity} missing:\n{listing}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_json_has_overall_and_per_family_success() {
    let out = run_ok(&[
        "eval",
        "--policy",
        "scripted",
        "--suite",
        "default",
        "--split",
        "eval",
        "--episodes",
        "10",
        "--seed",
        "7",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 10);
    assert_eq!(v["split"], "eval");
    let rate = v["success_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&rate));
    let fams = v["per_family"].as_object().unwrap();
    let total: u64 = fams.values().map(|t| t["episodes"].as_u64().unwrap()).sum();
    assert_eq!(total, 10);
    assert!(v["successes"].as_u64().unwrap() >= 9, "{out}");
}

#[test]
fn eval_with_same_colour_pairs_draws_only_such_tasks() {
    let out = run_ok(&[
        "eval",
        "--policy",
        "scripted",
        "--split",
        "train",
        "--episodes",
        "4",
        "--seed",
        "100000",
        "--same-colour-pairs",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 4);
    assert_eq!(v["same_colour_pairs"], true);
    // Only families with a target can name two objects of one colour.
    for family in v["per_family"].as_object().unwrap().keys() {
        assert!(
            ["put_in", "move_next_to", "stack"].contains(&family.as_str()),
            "{family}: {out}"
        );
    }
    for failure in v["failures"].as_array().unwrap() {
        let goal = &failure["goal"];
        assert_eq!(goal["object"]["color"], goal["target"]["color"], "{out}");
    }
}

#[test]
fn eval_takes_instructions_with_goals() {
    let dir = std::env::temp_dir().join(format!("vla-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("instructions.jsonl");
    std::fs::write(
        &file,
        r#"{"goal":{"family":"pick_up","object":{"color":"red","shape":"cube"}},"instruction":"hoist the crimson block"}
{"goal":{"family":"push","object":{"color":"green","shape":"cylinder"},"direction":"forward"},"instruction":"shove the green can away"}
"#,
    )
    .unwrap();
    let out = run_ok(&[
        "eval",
        "--instructions",
        file.to_str().unwrap(),
        "--policy",
        "scripted",
        "--episodes",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 2);
    assert_eq!(v["per_family"]["pick_up"]["episodes"], 1);
    assert_eq!(v["per_family"]["push"]["episodes"], 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn collect_writes_the_documented_files() {
    let dir = std::env::temp_dir().join(format!("vla-collect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = run_ok(&[
        "collect",
        "--suite",
        "default",
        "--episodes",
        "2",
        "--out",
        dir.to_str().unwrap(),
        "--noise",
    ]);
    assert!(out.contains("frames/s"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dataset.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "vla-sim-demonstrations");
    assert_eq!(meta["episodes"], 2);
    let (w, h) = (
        meta["width_px"].as_u64().unwrap() as usize,
        meta["height_px"].as_u64().unwrap() as usize,
    );
    let index = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for ep in &lines {
        let ep_dir = dir.join(ep["dir"].as_str().unwrap());
        let steps = ep["steps"].as_u64().unwrap() as usize;
        assert!(ep["outcome"]["success"].as_bool().unwrap());
        assert!(!ep["outcome"]["task"]["instruction"]
            .as_str()
            .unwrap()
            .is_empty());
        let frames = std::fs::metadata(ep_dir.join("frames.rgb")).unwrap().len() as usize;
        assert_eq!(frames, steps * w * h * 3);
        let records = std::fs::read_to_string(ep_dir.join("steps.jsonl")).unwrap();
        let records: Vec<serde_json::Value> = records
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), steps);
        assert_eq!(records[0]["tokens"].as_array().unwrap().len(), 8);
        assert!(records.last().unwrap()["action"]["terminate"]
            .as_bool()
            .unwrap());
        assert_eq!(
            records[0]["joints"]["positions_rad"]
                .as_array()
                .unwrap()
                .len(),
            meta["joint_names"].as_array().unwrap().len()
        );
        // Privileged positions for auxiliary training targets: the goal's
        // object starts on the table inside the workspace.
        let obj: Vec<f64> = records[0]["object_xyz_m"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            (0.3..0.75).contains(&obj[0]) && obj[1].abs() < 0.3,
            "{obj:?}"
        );
        assert!((0.75..0.80).contains(&obj[2]), "{obj:?}");
        // ... and its pixel in the frame.
        let px = records[0]["object_px"].as_array().unwrap();
        for (v, side) in px.iter().zip([w, h]) {
            assert!((0.0..side as f64).contains(&v.as_f64().unwrap()), "{px:?}");
        }
        // The TCP's pixel too, null while the hand is above the top of the
        // frame (the home pose is; the camera frames the workspace); while
        // the object is held the two coincide.
        let in_view = records.iter().filter(|r| r["tcp_px"].is_array()).count();
        assert!(
            in_view * 2 >= records.len(),
            "TCP in view on {in_view} of {} frames",
            records.len()
        );
        for r in &records {
            let Some(tcp) = r["tcp_px"].as_array() else {
                assert!(r["tcp_px"].is_null(), "{}", r["tcp_px"]);
                assert!(!r["holding"].as_bool().unwrap(), "held object out of view");
                continue;
            };
            assert_eq!(tcp.len(), 2);
            if r["holding"].as_bool().unwrap() {
                let obj = r["object_px"].as_array().unwrap();
                let d: f64 = (0..2)
                    .map(|i| (tcp[i].as_f64().unwrap() - obj[i].as_f64().unwrap()).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(d < 3.0, "held object {d} px from the TCP");
            }
        }
    }
    // A second collect into the same folder refuses to overwrite it.
    let again = vla()
        .args(["collect", "--episodes", "1", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_metrics_file_keeps_one_entry_per_split() {
    let dir = std::env::temp_dir().join(format!("vla-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let metrics = dir.join("metrics.json");
    for split in ["train", "eval", "train"] {
        run_ok(&[
            "eval",
            "--policy",
            "scripted",
            "--split",
            split,
            "--episodes",
            "2",
            "--metrics",
            metrics.to_str().unwrap(),
        ]);
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    let splits = v["splits"].as_object().unwrap();
    assert_eq!(splits.len(), 2, "{v}");
    for split in ["train", "eval"] {
        assert_eq!(splits[split]["episodes"], 2, "{v}");
        assert_eq!(splits[split]["split"], split);
        assert!(splits[split]["command"]
            .as_str()
            .unwrap()
            .contains("--metrics"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The simulator's demonstrations train a policy that reads the TCP
/// position (forward kinematics through the URDF copied into the policy
/// folder) and only the arm's joints, and that policy drives `vla eval`:
/// the joint states the simulator hands the policy carry the chain's joints.
#[test]
fn a_policy_with_tcp_input_trains_on_collected_demos_and_drives_the_sim() {
    let base = std::env::temp_dir().join(format!("vla-tcp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (demos, policy) = (base.join("demos"), base.join("policy"));
    run_ok(&[
        "collect",
        "--episodes",
        "2",
        "--seed",
        "5",
        "--out",
        demos.to_str().unwrap(),
    ]);
    let out = run_ok(&[
        "train",
        "--data",
        demos.to_str().unwrap(),
        "--out",
        policy.to_str().unwrap(),
        "--steps",
        "2",
        "--batch",
        "4",
        "--tcp-urdf",
        "urdf/panda.urdf",
        "--state-joints",
        "panda_joint1,panda_joint2,panda_joint3,panda_joint4,panda_joint5,panda_joint6,panda_joint7",
        "--keypoint-stage",
        "0",
        "--keypoint-window",
        "1:0",
    ]);
    assert!(out.contains("trained steps 0..2"), "{out}");
    assert!(policy.join("robot.urdf").is_file());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(policy.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["model"]["tcp_input"], true);
    assert_eq!(cfg["model"]["state_dim"], 7);
    assert_eq!(cfg["model"]["keypoint_stage"], 0);
    assert_eq!(cfg["tcp"]["tip_link"], "panda_hand_tcp");
    // --keypoint-window is written for inference.
    assert_eq!(
        cfg["keypoint_window"],
        serde_json::json!({"cells": 1, "keypoints": [0]})
    );
    // `vla eval --keypoint-window` refuses a window the model cannot take
    // (the run below uses the folder's own).
    let eval_with = |window: &str| {
        vla()
            .args([
                "eval",
                "--policy",
                policy.to_str().unwrap(),
                "--split",
                "train",
                "--episodes",
                "1",
                "--keypoint-window",
                window,
            ])
            .output()
            .unwrap()
    };
    for (window, words) in [("1:99", "keypoint 99"), ("1", "CELLS:K")] {
        let out = eval_with(window);
        assert!(
            !out.status.success(),
            "--keypoint-window {window} was accepted"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{window}: {err}");
    }
    let out = run_ok(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--split",
        "train",
        "--episodes",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 1, "{out}");
    assert!(v["mean_steps"].as_f64().unwrap() >= 1.0, "{out}");
    // A DAgger round with truncated rollouts: every rollout is kept, none
    // longer than --max-steps, each step labelled by the expert.
    let dagger = base.join("dagger");
    run_ok(&[
        "collect",
        "--episodes",
        "2",
        "--seed",
        "7",
        "--dagger",
        policy.to_str().unwrap(),
        "--max-steps",
        "4",
        "--out",
        dagger.to_str().unwrap(),
    ]);
    let episodes = std::fs::read_to_string(dagger.join("episodes.jsonl")).unwrap();
    let steps: Vec<u64> = episodes
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["steps"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(steps.len(), 2, "{episodes}");
    assert!(steps.iter().all(|&n| (1..=4).contains(&n)), "{steps:?}");
    // From the expert's lift on: at most 6 steps recorded per rollout, the
    // first with the object in the hand, pick-up and push tasks skipped.
    let carry = base.join("carry");
    let out = run_ok(&[
        "collect",
        "--episodes",
        "2",
        "--seed",
        "7",
        "--dagger",
        policy.to_str().unwrap(),
        "--max-steps",
        "6",
        "--after-lift",
        "--out",
        carry.to_str().unwrap(),
    ]);
    assert!(out.contains("wrote 2 episodes"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(carry.join("dataset.json")).unwrap())
            .unwrap();
    assert_eq!(meta["dagger"]["after_lift"], true, "{meta}");
    for line in std::fs::read_to_string(carry.join("episodes.jsonl"))
        .unwrap()
        .lines()
    {
        let ep: serde_json::Value = serde_json::from_str(line).unwrap();
        let family = ep["outcome"]["task"]["goal"]["family"].as_str().unwrap();
        assert!(!["pick_up", "push"].contains(&family), "{line}");
        let n = ep["steps"].as_u64().unwrap();
        assert!((1..=6).contains(&n), "{line}");
        let dir = carry.join(ep["dir"].as_str().unwrap());
        let first = std::fs::read_to_string(dir.join("steps.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
        assert_eq!(first["holding"], true, "{first}");
    }
    // Both rounds together, the carry drawn three times as often.
    let weighted = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--data",
            dagger.to_str().unwrap(),
            "--data",
            carry.to_str().unwrap(),
            "--data-weight",
            "1",
            "--data-weight",
            "3",
            "--steps",
            "1",
            "--batch",
            "4",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args)
    };
    let out = weighted(&base.join("weighted"), &[]);
    assert!(out.contains("trained steps 0..1"), "{out}");
    // The same run with instruction-token dropout trains on other masks:
    // the first step's loss differs (same batch, same weights).
    let dropped = base.join("weighted-text-dropout");
    weighted(
        &dropped,
        &[
            "--text-dropout",
            "0.9",
            "--text-dropout-keep",
            "red,green,blue,yellow,orange,purple",
        ],
    );
    let first_loss = |dir: &Path| -> f64 {
        let log = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
        let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
        first["train_loss"].as_f64().unwrap()
    };
    let (plain, masked) = (first_loss(&base.join("weighted")), first_loss(&dropped));
    assert!(plain.is_finite() && masked.is_finite());
    assert_ne!(plain, masked, "--text-dropout changed nothing");
    // `--val-every 0` validates once, after the last step.
    let once = base.join("validate-at-end");
    run_ok(&[
        "train",
        "--data",
        demos.to_str().unwrap(),
        "--out",
        once.to_str().unwrap(),
        "--steps",
        "3",
        "--batch",
        "4",
        "--val-every",
        "0",
    ]);
    let log = std::fs::read_to_string(once.join("train_log.jsonl")).unwrap();
    let validated: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["val_loss"].is_f64())
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(validated, vec![3], "{log}");
    // Truncation is for DAgger rollouts only (a cut expert demonstration
    // would be a failed one).
    let err = refused(
        vla()
            .args(["collect", "--episodes", "1", "--max-steps", "4", "--out"])
            .arg(base.join("cut")),
    );
    assert!(err.contains("--dagger"), "{err}");
    // A bad URDF path is a clear error before any training.
    let err = refused(
        vla()
            .args(["train", "--data", demos.to_str().unwrap(), "--out"])
            .arg(base.join("bad"))
            .args(["--steps", "1", "--tcp-urdf", "urdf/none.urdf"]),
    );
    assert!(err.contains("none.urdf"), "{err}");
    // A camera stem with 2 px patches and one more stage; a warm start
    // from it keeps that stem (and every tensor) without repeating the flags.
    let fine = base.join("fine-stem");
    run_ok(&[
        "train",
        "--data",
        demos.to_str().unwrap(),
        "--out",
        fine.to_str().unwrap(),
        "--steps",
        "1",
        "--batch",
        "4",
        "--stem-patch-px",
        "2",
        "--stem-channels",
        "8,16,16,32,32",
        "--keypoint-stage",
        "2",
    ]);
    let stem_of = |dir: &Path| -> serde_json::Value {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        serde_json::json!([
            cfg["model"]["stem_patch_px"],
            cfg["model"]["stem_channels"],
            cfg["model"]["keypoint_stage"]
        ])
    };
    assert_eq!(
        stem_of(&fine),
        serde_json::json!([2, [8, 16, 16, 32, 32], 2])
    );
    let warm = base.join("fine-stem-warm");
    let out = run_ok(&[
        "train",
        "--data",
        demos.to_str().unwrap(),
        "--out",
        warm.to_str().unwrap(),
        "--steps",
        "1",
        "--batch",
        "4",
        "--init-from",
        fine.to_str().unwrap(),
    ]);
    assert_eq!(stem_of(&warm), stem_of(&fine));
    assert!(out.contains(" 0 new"), "{out}");
    // A stem whose stride does not divide the frame, or an empty stage, is
    // refused before any training.
    for (flag, value, says) in [
        ("--stem-patch-px", "3", "stem stride"),
        ("--stem-channels", "8,0,16,32,32", "stem_channels"),
    ] {
        let err = refused(
            vla()
                .args(["train", "--data", demos.to_str().unwrap(), "--out"])
                .arg(base.join("bad-stem"))
                .args(["--steps", "1", flag, value]),
        );
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_hand_crop_policy_is_centred_on_the_renderers_tcp_pixel_and_drives_the_sim() {
    let base = std::env::temp_dir().join(format!("vla-crop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (demos, policy) = (base.join("demos"), base.join("policy"));
    run_ok(&[
        "collect",
        "--episodes",
        "2",
        "--seed",
        "7",
        "--out",
        demos.to_str().unwrap(),
    ]);
    let out = run_ok(&[
        "train",
        "--data",
        demos.to_str().unwrap(),
        "--out",
        policy.to_str().unwrap(),
        "--steps",
        "2",
        "--batch",
        "4",
        "--tcp-urdf",
        "urdf/panda.urdf",
        "--hand-crop-px",
        "32",
    ]);
    assert!(out.contains("trained steps 0..2"), "{out}");
    let cfg = vla_policy::PolicyConfig::read(&policy).unwrap();
    let net = cfg.model.crop.clone().expect("model.crop");
    assert_eq!(net.side_px, 32);
    let spec = cfg.crop.expect("crop camera");
    // The crop's camera, built by `vla train` from the scene file, puts the
    // TCP (forward kinematics of the recorded joints) where the simulator's
    // renderer projected it when it recorded the episode.
    let chain =
        vla_policy::tcp::load_chain(&policy.join("robot.urdf"), "panda_link0", "panda_hand_tcp")
            .unwrap();
    let steps_file = demos.join("episodes/000000/steps.jsonl");
    let mut checked = 0;
    for line in std::fs::read_to_string(&steps_file).unwrap().lines() {
        let step: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(px) = step["tcp_px"].as_array() else {
            continue;
        };
        let names: Vec<String> = step["joints"]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        let q: Vec<f64> = step["joints"]["positions_rad"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let joints = vla_core::JointState::new(names, q, 0.0).unwrap();
        let tcp_m = vla_policy::tcp::base_from_tcp_m(&chain, &joints).unwrap();
        let [u, v] = spec.camera.project_to_model(tcp_m, 128).unwrap();
        let (want_u, want_v) = (px[0].as_f64().unwrap(), px[1].as_f64().unwrap());
        assert!(
            (f64::from(u) - want_u).abs() < 0.05 && (f64::from(v) - want_v).abs() < 0.05,
            "projected ({u}, {v}), recorded ({want_u}, {want_v})"
        );
        checked += 1;
    }
    assert!(checked > 10, "only {checked} steps with a TCP pixel");
    // The policy runs closed loop in the simulator with its crop.
    let out = run_ok(&[
        "eval",
        "--policy",
        policy.to_str().unwrap(),
        "--split",
        "train",
        "--episodes",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["episodes"], 1, "{out}");
    // A crop without the TCP input is refused with a reason.
    let bad = vla()
        .args(["train", "--data", demos.to_str().unwrap(), "--out"])
        .arg(base.join("bad"))
        .args(["--steps", "1", "--hand-crop-px", "32"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("TCP"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn collect_with_recovery_noise_records_its_settings_and_needs_noise() {
    let dir = std::env::temp_dir().join(format!("vla-collect-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "collect",
        "--suite",
        "default",
        "--episodes",
        "1",
        "--seed",
        "3",
        "--out",
        dir.to_str().unwrap(),
        "--recovery",
    ];
    let refused = vla().args(args).output().unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--noise"), "{err}");
    assert!(!dir.join("dataset.json").exists());
    run_ok(&[&args[..], &["--noise"]].concat());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dataset.json")).unwrap()).unwrap();
    // The dataset says how its executed actions were perturbed.
    assert_eq!(meta["noise"]["early_close_prob"], 0.1);
    assert_eq!(meta["noise"]["early_close_steps"], 5);
    assert_eq!(meta["noise"]["near_object_m"], 0.012);
    assert_eq!(meta["noise"]["start_prob"], 0.05);
    std::fs::remove_dir_all(&dir).ok();
}

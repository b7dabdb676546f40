//! ROS 2 integration tests (built only with `--features ros2`): the real
//! `vla run` and `vla sim-node` binaries against independent rclpy processes
//! (tests/ros/*.py) that play the outside world.
//!
//! They must run inside a private network namespace so no DDS traffic leaves
//! the machine: `scripts/ros-netns.sh` sets that up and marks it with
//! `VLA_ROS_NETNS=1`; without the mark the tests fail rather than send
//! anything. `scripts/test.sh` runs them that way. Each test uses its own
//! ROS domain and they run one at a time (timing checks on 2 cores).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::Device;
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{Instruction, JointState, PixelEncoding, Policy, RgbFrame};
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::{ModelConfig, TextEncoder, VlaPolicy};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

fn require_private_network() {
    assert_eq!(
        std::env::var("VLA_ROS_NETNS").as_deref(),
        Ok("1"),
        "run the ROS 2 tests inside a private network namespace: scripts/ros-netns.sh cargo test --features ros2 --test ros"
    );
}

fn python() -> PathBuf {
    match std::env::var_os("VLA_ROS_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".local/ros/bin/python"),
    }
}

/// Tasks the scenarios send.
const TASKS: [&str; 3] = [
    "pick up the red cube",
    "push the blue cube left",
    "put the red cube in the green bowl",
];

/// The frames tests/ros/world.py sends (64x48 rgb8, pattern shifted per frame).
fn world_frame(shift: usize) -> RgbFrame {
    let data = (0..64 * 48 * 3)
        .map(|i| ((i * 31 + shift) % 251) as u8)
        .collect();
    RgbFrame::new(64, 48, PixelEncoding::Rgb8, data).unwrap()
}

/// A freshly initialised tiny policy (the tests must not depend on a trained
/// one). An untrained network may choose "terminate", which would end every
/// task at once; the first seed whose network continues on the test world's
/// frames for every task is used, so the scenarios exercise motion.
fn tiny_policy(dir: &Path) {
    tiny_policy_with(dir, false);
}

/// [`tiny_policy`], with a wrist camera input when `wrist`: 32 px, the
/// tiny model's image size, which a branch may not exceed (its untrained
/// seed chosen on the same frames plus a wrist frame; the controller
/// resizes the simulator's 64 px wrist frames to it).
fn tiny_policy_with(dir: &Path, wrist: bool) {
    let cfg = ModelConfig {
        crop: wrist.then(|| vla_policy::model::CropNetConfig {
            side_px: 32,
            patch_px: 4,
            channels: vec![8, 16, 16],
            keypoints: 4,
            keypoint_stage: 0,
        }),
        ..ModelConfig::tiny()
    };
    let wrist_spec = wrist.then_some(vla_policy::checkpoint::WristSpec {
        width_px: 32,
        height_px: 32,
    });
    let text = Arc::new(TextEncoder::from_default_location(None, &Device::Cpu).unwrap());
    let joints = JointState::new(vec![], vec![], 0.0).unwrap();
    let side = cfg.image_size_px as u32;
    for seed in 0..64 {
        let (varmap, model) = checkpoint::fresh_model(&cfg, seed, &Device::Cpu).unwrap();
        let mut config = PolicyConfig::new(cfg.clone(), ActionTokenizer::default());
        config.wrist = wrist_spec;
        let first = config.tokenizer.first_token_id;
        let mut policy =
            VlaPolicy::from_parts(config.clone(), model, Some(text.clone()), &Device::Cpu);
        let continues = TASKS.iter().all(|task| {
            policy.reset(&Instruction::new(task).unwrap()).unwrap();
            (0..7).all(|shift| {
                let frame = world_frame(shift).resized_rgb8(side, side).unwrap();
                let wrist_frame = world_frame(shift + 1).resized_rgb8(32, 32).unwrap();
                let step = policy.act_with_wrist(&frame, Some(&wrist_frame), &joints);
                step.unwrap().tokens.0[0] == first
            })
        });
        if continues {
            checkpoint::save(dir, &config, &varmap).unwrap();
            return;
        }
    }
    panic!("no seed in 0..64 gives a tiny policy that does not terminate at once");
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_vla(args: &[&str], domain: u32) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_vla"))
        .args(args)
        .current_dir(root())
        .env("ROS_DOMAIN_ID", domain.to_string())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Running(child)
}

/// Runs a test script to completion (killed after `timeout`), echoing its output.
fn run_script(script: &str, args: &[&str], domain: u32, timeout: Duration) -> Output {
    let child = Command::new(python())
        .arg(root().join("tests/ros").join(script))
        .args(args)
        .current_dir(root().join("tests/ros"))
        .env("ROS_DOMAIN_ID", domain.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let start = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            let _ = child.0.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Running(inner) = &mut child;
    let out = Output {
        status: inner.wait().unwrap(),
        stdout: read_all(inner.stdout.take()),
        stderr: read_all(inner.stderr.take()),
    };
    println!(
        "--- {script} {args:?} stdout\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    println!(
        "--- {script} {args:?} stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_all(r: Option<impl std::io::Read>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

fn controller(policy: &Path, domain: u32, extra: &[&str]) -> Running {
    let p = format!("policy:={}", policy.display());
    let mut args = vec!["run", "--ros-args", "-p", &p];
    args.extend_from_slice(extra);
    spawn_vla(&args, domain)
}

/// `vla run` with `policy` that records its policy steps to `rrd`.
fn recording_controller(policy: &Path, rrd: &Path, domain: u32) -> Running {
    let p = format!("policy:={}", policy.display());
    let rrd = rrd.to_str().unwrap();
    spawn_vla(&["run", "--rrd", rrd, "--ros-args", "-p", &p], domain)
}

#[test]
fn the_controller_follows_the_safety_rules_over_ros() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    tiny_policy(dir.path());
    let _node = controller(dir.path(), 11, &[]);
    let out = run_script("controller_test.py", &["main"], 11, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "controller scenario failed (see output above)"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ROUNDTRIP"), "no round trip measured");
}

#[test]
fn the_controller_commands_nothing_before_a_joint_state_over_ros() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    tiny_policy(dir.path());
    let _node = controller(dir.path(), 12, &[]);
    let out = run_script(
        "controller_test.py",
        &["no-joint-state"],
        12,
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "scenario failed (see output above)");
}

#[test]
fn sim_node_and_controller_find_each_other_with_default_names() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    tiny_policy(dir.path());
    let _sim = spawn_vla(&["sim-node"], 13);
    let _node = controller(dir.path(), 13, &[]);
    let out = run_script("pair_test.py", &[], 13, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "pair scenario failed (see output above)"
    );
}

#[test]
fn a_wrist_camera_policy_drives_the_simulated_arm_from_the_sim_nodes_wrist_frames() {
    // The controller holds a wrist policy until /wrist_camera/image_raw
    // delivers; the pair scenario's "the arm moves" needs those frames. Its
    // rerun recording holds the wrist frames the policy got.
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    tiny_policy_with(&policy, true);
    let rrd = dir.path().join("run.rrd");
    let _sim = spawn_vla(&["sim-node"], 19);
    let mut node = recording_controller(&policy, &rrd, 19);
    let out = run_script("pair_test.py", &["--wrist"], 19, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "pair scenario with a wrist camera policy failed (see output above)"
    );
    interrupt(&mut node, "vla run");
    check_recording(
        &rrd,
        &["/world/camera/image", "/wrist/image", "/action/tokens"],
    );
}

#[test]
fn the_bundled_policy_drives_the_simulated_arm_with_no_arguments() {
    // Both nodes exactly as a user starts them: no parameters, so the
    // controller loads policies/default (the trained policy) and the pair
    // finds each other on the default topics.
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _sim = spawn_vla(&["sim-node"], 18);
    let _node = spawn_vla(&["run"], 18);
    let out = run_script("pair_test.py", &[], 18, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "pair scenario with the bundled policy failed (see output above)"
    );
}

#[test]
fn sim_node_follows_a_forward_position_controller_too() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    tiny_policy(dir.path());
    let _sim = spawn_vla(&["sim-node"], 14);
    // The robot description as a string parameter, as launch files pass it.
    let urdf = std::fs::read_to_string(root().join("urdf/panda.urdf")).unwrap();
    let params = dir.path().join("params.yaml");
    let yaml = serde_json::json!({"vla_controller": {"ros__parameters": {
        "robot_description": urdf,
        "urdf": "/nonexistent.urdf",
    }}});
    std::fs::write(&params, yaml.to_string()).unwrap();
    let params = params.display().to_string();
    let _node = controller(
        dir.path(),
        14,
        &[
            "--params-file",
            &params,
            "-p",
            "command_interface:=forward_position",
        ],
    );
    let out = run_script("pair_test.py", &[], 14, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "pair scenario failed (see output above)"
    );
}

/// Stops a node with SIGINT (as Ctrl-C would) and asserts it exits cleanly.
fn interrupt(node: &mut Running, what: &str) {
    let pid = node.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = node.0.wait().unwrap();
    assert!(status.success(), "{what} exited with {status} on SIGINT");
}

/// Checks a recording with the official `rerun` tool (when the test set-up
/// provides it): `rerun rrd verify` accepts it and `rerun rrd print` lists
/// every entity of `entities`.
fn check_recording(rrd: &Path, entities: &[&str]) {
    let Some(rerun) = std::env::var_os("VLA_RERUN_BIN") else {
        assert!(
            std::env::var_os("VLA_REQUIRE_TOOLS").is_none(),
            "VLA_RERUN_BIN is not set"
        );
        return;
    };
    let verify = Command::new(&rerun)
        .args(["rrd", "verify"])
        .arg(rrd)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "rerun rrd verify {}: {}",
        rrd.display(),
        String::from_utf8_lossy(&verify.stderr)
    );
    let print = Command::new(&rerun)
        .args(["rrd", "print"])
        .arg(rrd)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&print.stdout).to_string()
        + &String::from_utf8_lossy(&print.stderr);
    for entity in entities {
        assert!(
            listing.contains(entity),
            "{entity} missing from {}:\n{listing}",
            rrd.display()
        );
    }
}

#[test]
fn controller_records_its_policy_steps_to_rerun() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    tiny_policy(dir.path());
    let rrd = dir.path().join("run.rrd");
    let _sim = spawn_vla(&["sim-node"], 16);
    let mut node = recording_controller(dir.path(), &rrd, 16);
    // The pair scenario takes policy steps (a task, then a stop).
    let out = run_script("pair_test.py", &[], 16, Duration::from_secs(90));
    assert!(
        out.status.success(),
        "pair scenario failed (see output above)"
    );
    interrupt(&mut node, "vla run");
    check_recording(
        &rrd,
        &[
            "/world/camera/image",
            "/instruction",
            "/action/tokens",
            "/action/decoded",
            "/joints/measured",
            "/joints/commanded",
            "/joints/lower",
            "/joints/upper",
            "/status",
        ],
    );
}

#[test]
fn sim_node_records_to_rerun_and_stops_cleanly_on_sigint() {
    require_private_network();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("sim-node.rrd");
    let mut sim = spawn_vla(&["sim-node", "--rrd", rrd.to_str().unwrap()], 15);
    std::thread::sleep(Duration::from_secs(3));
    interrupt(&mut sim, "vla sim-node");
    assert!(
        std::fs::metadata(&rrd).unwrap().len() > 10_000,
        "recording too small"
    );
    check_recording(
        &rrd,
        &[
            "/world/camera/image",
            "/world/camera/depth",
            "/world/robot/panda_link3",
            "/world/objects/red_cube",
        ],
    );
}

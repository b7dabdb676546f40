//! The runtime driving the simulated arm in-process: the simulator plays the
//! arm (it follows joint commands and reports joint states and camera
//! frames), the policy is a real `VlaPolicy` (a freshly initialised tiny
//! network saved and loaded through the checkpoint API, with the real text
//! encoder), so tokens, commands and motion all come from the real code paths.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use candle_core::Device;
use vla_core::tokenizer::ActionTokenizer;
use vla_policy::checkpoint::{self, PolicyConfig};
use vla_policy::{ModelConfig, VlaPolicy};
use vla_runtime::config::SafetyLimits;
use vla_runtime::{ArmSetup, ImageIn, RunState, Runtime, RuntimeConfig};
use vla_sim::episode::task_for_goal;
use vla_sim::{CommandedSim, Goal, ObjectRef, TaskSuite};

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

#[test]
fn the_runtime_drives_the_simulated_arm_with_a_real_policy() {
    let suite = TaskSuite::load("default", &root()).unwrap();
    let scene = &suite.scene;
    let text = "pick up the red cube";
    let task = task_for_goal(
        Goal::PickUp {
            object: ObjectRef::new("red", "cube"),
        },
        text,
        1,
        3,
    );
    let mut sim = CommandedSim::new(scene, &task, &suite.distractor_pool(None)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let model_cfg = ModelConfig::tiny();
    let (varmap, _) = checkpoint::fresh_model(&model_cfg, 7, &Device::Cpu).unwrap();
    let cfg = PolicyConfig::new(model_cfg.clone(), ActionTokenizer::default());
    checkpoint::save(dir.path(), &cfg, &varmap).unwrap();
    let policy = VlaPolicy::load(dir.path()).unwrap();

    let urdf = std::fs::read_to_string(scene.urdf_path()).unwrap();
    let arm = ArmSetup::from_urdf_str(
        &urdf,
        Some(&scene.robot.base_link),
        Some(&scene.robot.tip_link),
        &[],
        &scene.robot.finger_joints[..1],
        SafetyLimits::default(),
    )
    .unwrap();
    let side = model_cfg.image_size_px as u32;
    let config = RuntimeConfig {
        policy_period_secs: scene.policy_dt_secs(),
        command_period_secs: sim.dt_secs(),
        policy_image_size_px: Some((side, side)),
        ..RuntimeConfig::default()
    };
    let mut rt = Runtime::new(Box::new(policy), arm, config).unwrap();
    let chain = rt.arm().chain.clone();
    let home = sim.world().arm().positions_rad().to_vec();

    let dt = sim.dt_secs();
    let frame_every = (scene.policy_dt_secs() / dt).round() as usize;
    let mut commands = 0;
    let mut token_steps = 0;
    let mut last_command = None;
    for k in 0..200 {
        let now = k as f64 * dt;
        let js = sim.joint_state().unwrap();
        rt.on_joint_state(js.names(), js.positions_rad(), js.stamp_secs, now)
            .unwrap();
        if k % frame_every == 0 {
            let frame = sim.render().unwrap().rgb;
            let image = ImageIn {
                width_px: frame.width_px(),
                height_px: frame.height_px(),
                encoding: "rgb8",
                step_bytes: frame.width_px() as usize * 3,
                data: frame.data(),
            };
            rt.on_image(&image, now).unwrap();
        }
        if k == 5 {
            rt.on_task(text, now).unwrap();
        }
        let out = rt.tick(now);
        if k < 5 {
            assert_eq!(out.command, None, "nothing commanded before the task");
        }
        if let Some(tokens) = out.tokens {
            token_steps += 1;
            // Every token decodes: the policy speaks the action vocabulary.
            ActionTokenizer::default().detokenize(&tokens).unwrap();
        }
        if let Some(c) = out.command {
            commands += 1;
            assert!(chain.within_limits(&c.positions_rad[..7]));
            sim.command(&c.names, &c.positions_rad).unwrap();
            last_command = Some(c);
        }
        sim.step().unwrap();
    }
    let status = rt.status().clone();
    assert_eq!(commands, 195, "one command per tick from the task on");
    assert!(token_steps >= 1);
    assert_eq!(status.step as usize, token_steps);
    assert!(status.policy_reset_secs.is_some());
    let q = sim.world().arm().positions_rad().to_vec();
    let last = last_command.unwrap();
    match status.state {
        // The untrained network may say terminate: then the arm holds still.
        RunState::Done => {
            assert_eq!(token_steps, status.step as usize);
            assert_eq!(last.velocities_rad_s[..7], [0.0; 7]);
        }
        RunState::Running => {
            assert_eq!(token_steps, 20, "10 Hz policy over 1.95 s of task");
            let moved = q
                .iter()
                .zip(&home)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(moved > 1e-3, "the arm moved {moved} rad");
        }
        other => panic!("unexpected state {other:?}: {status:?}"),
    }
    // The simulated arm tracks the commands (within one tick of motion).
    for ((a, c), v) in q
        .iter()
        .zip(&last.positions_rad[..7])
        .zip(&rt.arm().controller.velocity_limits_rad_s)
    {
        assert!((a - c).abs() <= v * dt + 1e-9, "tracking error {}", a - c);
    }
}

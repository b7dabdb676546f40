//! The controller step: limits hold for any action sequence (adversarial ones
//! included), bad input is rejected and the last safe command held, the
//! workspace box clips, singularities slow and halt; the interpolator never jumps.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use nalgebra::Vector3;
use proptest::prelude::*;
use vla_core::{Action, JointState};
use vla_kinematics::{
    controller_step, Chain, Controller, ControllerConfig, DeltaFrame, Interpolator, StepStatus,
    WorkspaceBox,
};

/// Panda "ready" pose (franka_ros).
const PANDA_READY: [f64; 7] = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];
/// A UR5e pose away from singularities.
const UR5E_HOME: [f64; 6] = [0.0, -1.57, 1.57, -1.57, -1.57, 0.0];

/// One action out of a strategy value: plain, maximal, NaN/inf, or sign-flipped.
fn make_action(kind: u8, v: [f64; 7], step: usize) -> Action {
    let flip = if step.is_multiple_of(2) { 1.0 } else { -1.0 };
    match kind % 6 {
        0 => Action::new(
            [v[0] * 0.03, v[1] * 0.03, v[2] * 0.03],
            [v[3] * 0.15, v[4] * 0.15, v[5] * 0.15],
            v[6],
            false,
        ),
        1 => Action::new([0.03 * flip; 3], [0.15 * flip; 3], 1.0, false),
        2 => Action::new([v[0], f64::NAN, 0.0], [0.0; 3], 0.5, false),
        3 => Action::new([0.0; 3], [f64::INFINITY, 0.0, 0.0], 0.5, false),
        4 => Action::new(
            [v[0] * 0.5, v[1] * 0.5, v[2] * 0.5],
            [v[3] * 3.0, v[4] * 3.0, v[5] * 3.0],
            0.0,
            false,
        ),
        _ => Action::new(
            [0.03 * flip, -0.03 * flip, 0.03 * flip],
            [0.0; 3],
            f64::NAN,
            false,
        ),
    }
}

/// Runs a sequence with perfect tracking and checks every command.
fn run_sequence(
    chain: Chain,
    start: &[f64],
    steps: &[(u8, [f64; 7])],
    dt_secs: f64,
) -> Result<(), TestCaseError> {
    let config = ControllerConfig::default_for(&chain);
    let vmax = config.velocity_limits_rad_s.clone();
    let mut controller = Controller::new(chain.clone(), config).unwrap();
    let mut q = start.to_vec();
    for (k, (kind, v)) in steps.iter().enumerate() {
        let action = make_action(*kind, *v, k);
        let result = controller.step(&q, &action, dt_secs);
        prop_assert_eq!(result.command.len(), chain.dof());
        prop_assert!(
            chain.within_limits(&result.command),
            "step {k}: {:?} outside limits",
            result.command
        );
        for i in 0..chain.dof() {
            let speed = (result.command[i] - q[i]).abs() / dt_secs;
            prop_assert!(
                speed <= vmax[i] * (1.0 + 1e-9),
                "step {k} joint {i}: {speed} rad/s > {}",
                vmax[i]
            );
            prop_assert!(result.velocities_rad_s[i].abs() <= vmax[i] * (1.0 + 1e-9));
        }
        if action.check_finite().is_err() {
            prop_assert!(
                matches!(result.status, StepStatus::RejectedInput(_)),
                "step {k}: {}",
                result.status
            );
            prop_assert_eq!(&result.command, &q, "a rejected step must hold");
        }
        q = result.command;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn panda_commands_stay_within_limits(
        steps in prop::collection::vec((any::<u8>(), prop::array::uniform7(-1.0..1.0f64)), 1..40),
        dt in prop::sample::select(vec![0.002, 0.01, 0.1, 0.333]),
    ) {
        run_sequence(panda(), &PANDA_READY, &steps, dt)?;
    }

    #[test]
    fn ur5e_commands_stay_within_limits(
        steps in prop::collection::vec((any::<u8>(), prop::array::uniform7(-1.0..1.0f64)), 1..40),
        dt in prop::sample::select(vec![0.002, 0.01, 0.1, 0.333]),
    ) {
        run_sequence(ur5e(), &UR5E_HOME, &steps, dt)?;
    }

    #[test]
    fn panda_near_limits_stays_within_limits(
        u in prop::collection::vec(0.0..1.0f64, 7),
        steps in prop::collection::vec((any::<u8>(), prop::array::uniform7(-1.0..1.0f64)), 1..25),
    ) {
        // Start anywhere in range, including on a limit.
        let chain = panda();
        let start = within_limits(&chain, &u, 0.0);
        run_sequence(chain, &start, &steps, 0.1)?;
    }
}

#[test]
fn small_step_moves_the_tip_as_asked() {
    let chain = panda();
    let config = ControllerConfig::default_for(&chain);
    let start = chain.fk(&PANDA_READY).unwrap();
    let action = Action::new([0.01, -0.005, 0.002], [0.0, 0.0, 0.02], 0.0, false);
    let result = controller_step(&chain, &config, &PANDA_READY, None, &action, 0.2);
    assert_eq!(result.status, StepStatus::Ok, "{result:?}");
    assert_eq!(result.scale, 1.0);
    let reached = chain.fk(&result.command).unwrap();
    let moved = reached.translation.vector - start.translation.vector;
    assert!((moved - Vector3::new(0.01, -0.005, 0.002)).norm() < 1e-4);
    // Base-frame rotation about z by 0.02 rad.
    let rotated = reached.rotation * start.rotation.inverse();
    assert!((rotated.scaled_axis() - Vector3::new(0.0, 0.0, 0.02)).norm() < 1e-3);
    assert!(result.condition_number > 1.0 && result.condition_number < 17.0);
}

#[test]
fn tool_frame_rotation_turns_about_the_tool_axes() {
    let chain = panda();
    let mut config = ControllerConfig::default_for(&chain);
    config.rotation_frame = DeltaFrame::Tool;
    config.translation_frame = DeltaFrame::Tool;
    let start = chain.fk(&PANDA_READY).unwrap();
    // +z in the tool frame is "down" for the Panda in its ready pose.
    let action = Action::new([0.0, 0.0, 0.01], [0.0, 0.0, 0.05], 0.0, false);
    let result = controller_step(&chain, &config, &PANDA_READY, None, &action, 0.2);
    assert_eq!(result.status, StepStatus::Ok);
    let reached = chain.fk(&result.command).unwrap();
    let moved = reached.translation.vector - start.translation.vector;
    assert!((moved - start.rotation * Vector3::new(0.0, 0.0, 0.01)).norm() < 1e-4);
    assert!(moved.z < -0.009, "{moved}");
    let in_tool = (start.rotation.inverse() * reached.rotation).scaled_axis();
    assert!((in_tool - Vector3::new(0.0, 0.0, 0.05)).norm() < 1e-3);
}

#[test]
fn large_delta_is_scaled_to_velocity_limits() {
    let chain = panda();
    let config = ControllerConfig::default_for(&chain);
    // 3 cm in 2 ms is 15 m/s: far beyond the joints' speed.
    let action = Action::new([0.03, 0.0, 0.0], [0.0; 3], 0.0, false);
    let r = controller_step(&chain, &config, &PANDA_READY, None, &action, 0.002);
    assert_eq!(r.status, StepStatus::Scaled);
    assert!(r.scale > 0.0 && r.scale < 0.1, "{}", r.scale);
    for (i, v) in r.velocities_rad_s.iter().enumerate() {
        // From rest, the acceleration limit binds first.
        assert!(v.abs() <= config.acceleration_limits_rad_s2[i] * 0.002 * (1.0 + 1e-9));
    }
    // It still moves along +x.
    let moved = chain.fk(&r.command).unwrap().translation.vector
        - chain.fk(&PANDA_READY).unwrap().translation.vector;
    assert!(moved.x > 0.0 && moved.y.abs() < 0.1 * moved.x && moved.z.abs() < 0.1 * moved.x);
}

#[test]
fn workspace_box_clips_the_target() {
    let chain = panda();
    let mut config = ControllerConfig::default_for(&chain);
    let p = chain.fk(&PANDA_READY).unwrap().translation.vector;
    config.workspace = Some(WorkspaceBox {
        min_m: [p.x - 0.1, p.y - 0.1, p.z - 0.002],
        max_m: [p.x + 0.1, p.y + 0.1, p.z + 0.1],
    });
    let action = Action::new([0.0, 0.0, -0.01], [0.0; 3], 0.0, false);
    let r = controller_step(&chain, &config, &PANDA_READY, None, &action, 0.2);
    assert_eq!(r.status, StepStatus::Clipped);
    assert!((r.base_from_target.translation.vector.z - (p.z - 0.002)).abs() < 1e-12);
    let z = chain.fk(&r.command).unwrap().translation.vector.z;
    assert!((z - (p.z - 0.002)).abs() < 1e-4);
}

#[test]
fn non_finite_input_holds_the_last_command() {
    let chain = panda();
    let mut controller =
        Controller::new(chain.clone(), ControllerConfig::default_for(&chain)).unwrap();
    let ok = controller.step(
        &PANDA_READY,
        &Action::new([0.01, 0.0, 0.0], [0.0; 3], 0.0, false),
        0.1,
    );
    assert!(!ok.status.is_hold());
    let held = ok.command.clone();
    let cases: Vec<(Vec<f64>, Action, f64)> = vec![
        (
            held.clone(),
            Action::new([f64::NAN, 0.0, 0.0], [0.0; 3], 0.0, false),
            0.1,
        ),
        (
            held.clone(),
            Action::new([0.0; 3], [0.0, f64::NEG_INFINITY, 0.0], 0.0, false),
            0.1,
        ),
        (
            held.clone(),
            Action::new([0.0; 3], [0.0; 3], f64::NAN, false),
            0.1,
        ),
        (vec![f64::NAN; 7], Action::hold(0.0), 0.1),
        (held[..6].to_vec(), Action::hold(0.0), 0.1),
        (held.clone(), Action::hold(0.0), f64::NAN),
        (held.clone(), Action::hold(0.0), -0.1),
        (held.clone(), Action::hold(0.0), 5.0),
    ];
    for (q, action, dt) in cases {
        let r = controller.step(&q, &action, dt);
        let StepStatus::RejectedInput(why) = &r.status else {
            panic!("{q:?} {action:?} {dt}: {}", r.status);
        };
        assert!(!why.is_empty());
        assert_eq!(r.command, held, "must hold the last safe command ({why})");
        assert!(r.velocities_rad_s.iter().all(|v| *v == 0.0));
        assert!(r.status.to_string().starts_with("rejected input"));
    }
    // With no last command and unusable measurements there is nothing safe to send.
    controller.reset();
    let r = controller.step(&[f64::NAN; 7], &Action::hold(0.0), 0.1);
    assert!(r.command.is_empty() && matches!(r.status, StepStatus::RejectedInput(_)));
}

#[test]
fn singularity_slows_then_halts() {
    let chain = panda();
    let config = ControllerConfig::default_for(&chain);
    // Pushing the tip straight away from the shoulder stretches the elbow
    // (joint 4 toward 0): the Panda's stretched-arm singularity.
    let mut q = PANDA_READY;
    let shoulder = Vector3::new(0.0, 0.0, 0.333);
    let mut saw_near = false;
    let mut halted = false;
    let mut last_cond = 0.0;
    for _ in 0..400 {
        let t = (chain.fk(&q).unwrap().translation.vector - shoulder).normalize() * 0.01;
        let r = controller_step(
            &chain,
            &config,
            &q,
            None,
            &Action::new([t.x, t.y, t.z], [0.0; 3], 0.0, false),
            0.1,
        );
        match r.status {
            StepStatus::NearSingularity => {
                saw_near = true;
                assert!(r.condition_number > 17.0 && r.scale < 1.0);
            }
            StepStatus::HaltedSingularity => {
                halted = true;
                assert!(saw_near && r.condition_number > 17.0);
                assert_eq!(r.command, q.to_vec());
                break;
            }
            StepStatus::IkFailed => break,
            _ => {}
        }
        last_cond = r.condition_number;
        q.copy_from_slice(&r.command);
    }
    assert!(saw_near, "never slowed (last condition number {last_cond})");
    assert!(halted, "never halted (last condition number {last_cond})");
    // Moving back, away from the singularity, is allowed.
    let dir = (chain.fk(&q).unwrap().translation.vector - shoulder).normalize() * -0.01;
    let r = controller_step(
        &chain,
        &config,
        &q,
        None,
        &Action::new([dir.x, dir.y, dir.z], [0.0; 3], 0.0, false),
        0.1,
    );
    assert!(!r.status.is_hold(), "{}", r.status);
}

#[test]
fn unreachable_target_reports_ik_failure() {
    let chain = ur5e();
    let config = ControllerConfig::default_for(&chain);
    // Fully stretched UR5e (q = 0) cannot reach 3 cm further out.
    let q = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let out = chain.fk(&q).unwrap().translation.vector.normalize() * 0.03;
    let r = controller_step(
        &chain,
        &config,
        &q,
        None,
        &Action::new([out.x, out.y, out.z], [0.0; 3], 0.0, false),
        0.3,
    );
    assert!(
        matches!(
            r.status,
            StepStatus::IkFailed | StepStatus::HaltedSingularity
        ),
        "{}",
        r.status
    );
    assert_eq!(r.command, q.to_vec());
}

#[test]
fn config_and_status_serialise() {
    let chain = panda();
    let config = ControllerConfig::default_for(&chain);
    let json = serde_json::to_string(&config).unwrap();
    let back: ControllerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    assert_eq!(config.lower_singularity_threshold, 17.0);
    assert_eq!(config.hard_stop_singularity_threshold, 30.0);
    for status in [
        StepStatus::Ok,
        StepStatus::HaltedSingularity,
        StepStatus::RejectedInput("why".into()),
    ] {
        let s = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<StepStatus>(&s).unwrap(), status);
    }
    assert_eq!(
        serde_json::to_string(&StepStatus::NearSingularity).unwrap(),
        "\"near_singularity\""
    );
    let mut bad = config.clone();
    bad.velocity_limits_rad_s.pop();
    assert!(Controller::new(chain.clone(), bad).is_err());
    let mut bad = config;
    bad.hard_stop_singularity_threshold = 10.0;
    assert!(Controller::new(chain, bad).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn interpolator_never_jumps(
        targets in prop::collection::vec(prop::array::uniform3(-3.0..3.0f64), 1..10),
        rate_hz in prop::sample::select(vec![100.0, 250.0, 500.0]),
    ) {
        let vmax = [1.0, 2.0, 0.5];
        let mut interp = Interpolator::new(&[0.0; 3], &vmax).unwrap();
        let dt = 1.0 / rate_hz;
        let period = 0.2;
        let mut prev = interp.positions().to_vec();
        for target in &targets {
            let duration = interp.set_target(target, period).unwrap();
            prop_assert!(duration >= period);
            // A new target can arrive before the segment ends: run one period only.
            let ticks = (period * rate_hz).round() as usize;
            for _ in 0..ticks {
                let now = interp.step(dt).unwrap().to_vec();
                for i in 0..3 {
                    prop_assert!((now[i] - prev[i]).abs() <= vmax[i] * dt * (1.0 + 1e-9) + 1e-12);
                }
                prev = now;
            }
        }
        // Given time, it arrives exactly.
        let last = *targets.last().unwrap();
        interp.set_target(&last, period).unwrap();
        for _ in 0..(rate_hz as usize * 20) {
            interp.step(dt).unwrap();
        }
        prop_assert_eq!(interp.positions(), &last[..]);
        prop_assert!(interp.done());
    }
}

#[test]
fn interpolator_rejects_bad_input() {
    let mut interp = Interpolator::new(&[0.0; 2], &[1.0, 1.0]).unwrap();
    assert!(interp.set_target(&[0.0], 0.1).is_err());
    assert!(interp.set_target(&[f64::NAN, 0.0], 0.1).is_err());
    assert!(interp.set_target(&[0.1, 0.0], 0.0).is_err());
    assert!(interp.step(f64::NAN).is_err());
    assert!(Interpolator::new(&[0.0], &[0.0]).is_err());
}

#[test]
fn joint_state_in_joint_command_out() {
    let chain = panda();
    // A ROS-style state: extra joints, another order.
    let mut names: Vec<String> = chain.joint_names().iter().rev().cloned().collect();
    names.push("panda_finger_joint1".into());
    let mut positions: Vec<f64> = PANDA_READY.iter().rev().copied().collect();
    positions.push(0.04);
    let state = JointState::new(names, positions, 1.5).unwrap();
    let q = chain.positions_from_state(&state).unwrap();
    assert_eq!(q, PANDA_READY.to_vec());
    let config = ControllerConfig::default_for(&chain);
    let r = controller_step(&chain, &config, &q, None, &Action::hold(0.0), 0.1);
    let cmd = r.to_joint_command(&chain, 1.6);
    assert_eq!(cmd.names, chain.joint_names());
    assert_eq!(cmd.positions_rad, r.command);
    assert_eq!(cmd.stamp_secs, 1.6);
    let partial = JointState::new(vec!["panda_joint1".into()], vec![0.0], 0.0).unwrap();
    assert!(chain.positions_from_state(&partial).is_err());
}

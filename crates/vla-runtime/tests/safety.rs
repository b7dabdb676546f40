//! Every safety rule of the loop, driven tick by tick with a made-up clock
//! and a policy whose actions are scripted (its tokens come from the real
//! tokenizer, so what the runtime decodes is what a trained policy emits).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use vla_core::tokenizer::ActionTokenizer;
use vla_core::{Action, Instruction, JointState, Policy, PolicyError, PolicyStep, RgbFrame};
use vla_runtime::config::SafetyLimits;
use vla_runtime::{ArmSetup, ImageIn, RunState, Runtime, RuntimeConfig, TickOutput};

/// What the scripted policy saw.
#[derive(Default)]
struct Seen {
    resets: Vec<String>,
    acts: usize,
    frame_sizes: Vec<(u32, u32)>,
    fail_next: bool,
}

/// Answers `action` every step (terminate when `terminate_after` steps were taken).
struct Scripted {
    action: Action,
    terminate_after: Option<usize>,
    tokenizer: ActionTokenizer,
    seen: Rc<RefCell<Seen>>,
}

impl Policy for Scripted {
    fn name(&self) -> &str {
        "scripted-test"
    }
    fn reset(&mut self, instruction: &Instruction) -> Result<(), PolicyError> {
        self.seen
            .borrow_mut()
            .resets
            .push(instruction.as_str().into());
        Ok(())
    }
    fn act(&mut self, frame: &RgbFrame, _joints: &JointState) -> Result<PolicyStep, PolicyError> {
        let mut seen = self.seen.borrow_mut();
        if seen.fail_next {
            seen.fail_next = false;
            return Err(PolicyError::msg("scripted failure"));
        }
        seen.acts += 1;
        seen.frame_sizes.push((frame.width_px(), frame.height_px()));
        let mut action = self.action;
        action.terminate = self.terminate_after.is_some_and(|n| seen.acts > n);
        let tokens = self
            .tokenizer
            .tokenize(&action)
            .map_err(PolicyError::from_source)?;
        let action = self
            .tokenizer
            .detokenize(&tokens)
            .map_err(PolicyError::from_source)?;
        Ok(PolicyStep { tokens, action })
    }
}

const HOME: [f64; 7] = [0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785];

fn urdf() -> String {
    let path = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../urdf/panda.urdf");
    std::fs::read_to_string(path).unwrap()
}

fn arm() -> ArmSetup {
    ArmSetup::from_urdf_str(
        &urdf(),
        Some("panda_link0"),
        Some("panda_hand_tcp"),
        &[],
        &["panda_finger_joint1".to_string()],
        SafetyLimits::default(),
    )
    .unwrap()
}

struct Rig {
    rt: Runtime,
    seen: Rc<RefCell<Seen>>,
    names: Vec<String>,
}

fn rig_with(action: Action, terminate_after: Option<usize>) -> Rig {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let policy = Scripted {
        action,
        terminate_after,
        tokenizer: ActionTokenizer::default(),
        seen: seen.clone(),
    };
    rig_for(Box::new(policy), seen)
}

/// A loop over `policy` (32 px policy frames) and the Panda's 9 joints.
fn rig_for(policy: Box<dyn Policy>, seen: Rc<RefCell<Seen>>) -> Rig {
    let config = RuntimeConfig {
        policy_image_size_px: Some((32, 32)),
        ..RuntimeConfig::default()
    };
    let rt = Runtime::new(policy, arm(), config).unwrap();
    let mut names: Vec<String> = (1..=7).map(|i| format!("panda_joint{i}")).collect();
    names.push("panda_finger_joint1".into());
    names.push("panda_finger_joint2".into());
    Rig { rt, seen, names }
}

/// Moves +2 cm in x per step with the gripper half closed.
fn rig() -> Rig {
    rig_with(Action::new([0.02, 0.0, 0.0], [0.0; 3], 0.0, false), None)
}

impl Rig {
    fn joints(&mut self, q: &[f64], now: f64) {
        let mut pos = q.to_vec();
        pos.extend([0.04, 0.04]);
        self.rt.on_joint_state(&self.names, &pos, now, now).unwrap();
    }
    fn frame(&mut self, now: f64) {
        let data = vec![90u8; 64 * 48 * 3];
        let img = ImageIn {
            width_px: 64,
            height_px: 48,
            encoding: "rgb8",
            step_bytes: 64 * 3,
            data: &data,
        };
        self.rt.on_image(&img, now).unwrap();
    }
    /// Fresh inputs then a tick at `now`.
    fn fresh_tick(&mut self, q: &[f64], now: f64) -> TickOutput {
        self.joints(q, now);
        self.frame(now);
        self.rt.tick(now)
    }
    fn state(&self) -> RunState {
        self.rt.status().state
    }
    fn reason(&self) -> String {
        self.rt.status().hold_reason.clone().unwrap_or_default()
    }
}

fn arm_positions(out: &TickOutput) -> Vec<f64> {
    out.command.as_ref().unwrap().positions_rad[..7].to_vec()
}

/// Runs ticks at 100 Hz from `t0` for `n` ticks with fresh inputs, the arm
/// following the commands perfectly; returns the last output and time.
fn run_fresh(r: &mut Rig, q: &mut Vec<f64>, t0: f64, n: usize) -> (TickOutput, f64) {
    let mut out = None;
    let mut t = t0;
    for k in 0..n {
        t = t0 + k as f64 * 0.01;
        let o = r.fresh_tick(q, t);
        if let Some(c) = &o.command {
            *q = c.positions_rad[..7].to_vec();
        }
        out = Some(o);
    }
    (out.unwrap(), t)
}

#[test]
fn no_command_before_a_joint_state_arrives() {
    let mut r = rig();
    r.rt.on_task("pick up the red cube", 0.0).unwrap();
    r.frame(0.0);
    for k in 0..20 {
        let out = r.rt.tick(k as f64 * 0.01);
        assert_eq!(out.command, None);
        assert_eq!(out.tokens, None);
    }
    assert_eq!(r.state(), RunState::WaitingForJointState);
    assert_eq!(r.seen.borrow().acts, 0);
    // The first joint state starts the motion.
    let out = r.fresh_tick(&HOME, 0.3);
    assert!(out.command.is_some() && out.tokens.is_some());
    assert_eq!(r.state(), RunState::Running);
}

#[test]
fn nothing_is_commanded_before_the_first_task() {
    let mut r = rig();
    for k in 0..20 {
        assert_eq!(r.fresh_tick(&HOME, k as f64 * 0.01).command, None);
    }
    assert_eq!(r.state(), RunState::Idle);
}

#[test]
fn running_steps_the_policy_at_its_rate_and_moves_within_limits() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let mut token_ticks = Vec::new();
    let chain = r.rt.arm().chain.clone();
    let vmax = r.rt.arm().controller.velocity_limits_rad_s.clone();
    let mut prev = q.clone();
    for k in 0..100 {
        let t = k as f64 * 0.01;
        let out = r.fresh_tick(&q, t);
        if out.tokens.is_some() {
            token_ticks.push(k);
        }
        let c = out.command.unwrap();
        assert_eq!(c.names, r.rt.command_joint_names());
        assert_eq!(c.names.len(), 8);
        let arm = &c.positions_rad[..7];
        assert!(chain.within_limits(arm));
        for ((a, b), v) in arm.iter().zip(&prev).zip(&vmax) {
            assert!((a - b).abs() <= v * 0.01 + 1e-9, "joint jumped {a} -> {b}");
        }
        // Gripper 0 = open: finger joint at its upper limit (0.04 m), to
        // within the tokenizer's half bin.
        assert!((c.positions_rad[7] - 0.04).abs() < 0.04 / 256.0);
        prev = arm.to_vec();
        q = arm.to_vec();
    }
    // 10 Hz policy, 100 Hz ticks: a step every 10 ticks, starting at once.
    assert_eq!(token_ticks, (0..10).map(|i| i * 10).collect::<Vec<_>>());
    assert_eq!(r.rt.status().step, 10);
    // Frames reach the policy at its input size.
    assert!(r.seen.borrow().frame_sizes.iter().all(|&s| s == (32, 32)));
    // +2 cm per step in x for 1 s: the tip moved forward.
    let x0 = chain.fk(&HOME).unwrap().translation.x;
    let x1 = chain.fk(&q).unwrap().translation.x;
    assert!(x1 - x0 > 0.1, "tip moved {} m", x1 - x0);
}

#[test]
fn stale_joint_states_hold_the_last_measured_positions_and_fresh_ones_resume() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.0, 30);
    let measured = q.clone();
    r.joints(&measured, t);
    let acts = r.seen.borrow().acts;
    // Frames keep coming, joint states stop: after 300 ms the arm holds.
    let mut held = None;
    for k in 1..=60 {
        let now = t + k as f64 * 0.01;
        r.frame(now);
        let out = r.rt.tick(now);
        let c = arm_positions(&out);
        if now - t > 0.3 + 1e-9 {
            assert_eq!(r.state(), RunState::Holding);
            assert!(
                r.reason().contains("joint state is stale"),
                "{}",
                r.reason()
            );
            assert_eq!(out.tokens, None);
            assert_eq!(c, measured, "holds the last measured positions");
            assert!(out
                .command
                .unwrap()
                .velocities_rad_s
                .iter()
                .all(|v| *v == 0.0));
            held = Some(c);
        } else {
            assert_eq!(r.state(), RunState::Running);
        }
    }
    assert!(held.is_some());
    let acts_while_stale = r.seen.borrow().acts - acts;
    assert!(
        acts_while_stale <= 3,
        "{acts_while_stale} policy steps on stale joints"
    );
    // Joint states return: motion resumes with a policy step at once.
    let out = r.fresh_tick(&measured, t + 0.7);
    assert_eq!(r.state(), RunState::Running);
    assert!(out.tokens.is_some());
}

#[test]
fn missing_or_stale_camera_frames_hold_and_fresh_ones_resume() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    r.joints(&HOME, 0.0);
    let out = r.rt.tick(0.0);
    assert_eq!(arm_positions(&out), HOME.to_vec());
    assert_eq!(r.state(), RunState::Holding);
    assert_eq!(r.reason(), "no camera frame yet");
    assert_eq!(r.seen.borrow().acts, 0);
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.01, 20);
    assert_eq!(r.state(), RunState::Running);
    // Joint states keep coming, frames stop.
    let frozen = q.clone();
    let mut last = None;
    for k in 1..=50 {
        let now = t + k as f64 * 0.01;
        r.joints(&frozen, now);
        last = Some(r.rt.tick(now));
    }
    assert_eq!(r.state(), RunState::Holding);
    assert!(
        r.reason().contains("camera frame is stale"),
        "{}",
        r.reason()
    );
    assert_eq!(arm_positions(&last.unwrap()), frozen);
    r.frame(t + 0.51);
    r.joints(&frozen, t + 0.51);
    assert!(r.rt.tick(t + 0.51).tokens.is_some());
    assert_eq!(r.state(), RunState::Running);
}

#[test]
fn stop_holds_still_until_the_next_task() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.0, 25);
    r.rt.on_stop();
    let acts = r.seen.borrow().acts;
    let first = arm_positions(&r.fresh_tick(&q, t + 0.01));
    assert_eq!(first, q, "halts at the measured positions at once");
    for k in 2..50 {
        let out = r.fresh_tick(&q, t + k as f64 * 0.01);
        assert_eq!(arm_positions(&out), first);
        assert_eq!(out.tokens, None);
        assert_eq!(r.state(), RunState::Stopped);
    }
    assert_eq!(r.seen.borrow().acts, acts);
    assert_eq!(r.rt.status().task, None);
    r.rt.on_task("push the cube forward", t + 0.5).unwrap();
    assert!(r.fresh_tick(&q, t + 0.5).tokens.is_some());
    assert_eq!(r.state(), RunState::Running);
}

#[test]
fn an_empty_task_stops_and_a_new_task_replaces_the_current_one() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.0, 25);
    assert_eq!(r.rt.status().step, 3);
    // Mid-period, a new task: reset with the new text, step count restarts,
    // the first step of the new task runs at once.
    r.rt.on_task("put the red cube in the bowl", t + 0.005)
        .unwrap();
    let out = r.fresh_tick(&q, t + 0.005);
    assert!(out.tokens.is_some());
    assert_eq!(r.rt.status().step, 1);
    assert_eq!(
        r.rt.status().task.as_deref(),
        Some("put the red cube in the bowl")
    );
    assert_eq!(
        r.seen.borrow().resets,
        vec!["push the cube forward", "put the red cube in the bowl"]
    );
    r.rt.on_task("   ", t + 0.01).unwrap();
    let out = r.fresh_tick(&q, t + 0.01);
    assert_eq!(r.state(), RunState::Holding);
    assert_eq!(r.reason(), "no task");
    assert_eq!(out.tokens, None);
    assert_eq!(arm_positions(&out), q);
}

#[test]
fn the_terminate_token_ends_the_task_and_holds() {
    let mut r = rig_with(Action::new([0.02, 0.0, 0.0], [0.0; 3], 1.0, false), Some(2));
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (out, _) = run_fresh(&mut r, &mut q, 0.0, 60);
    assert_eq!(r.state(), RunState::Done);
    assert_eq!(r.seen.borrow().acts, 3, "no policy step after terminate");
    // The gripper stays closed (0 m) while holding: a held object is not dropped.
    let c = out.command.unwrap();
    assert!(c.positions_rad[7].abs() < 0.04 / 256.0);
    assert_eq!(c.positions_rad[..7].to_vec(), q);
}

#[test]
fn malformed_inputs_are_rejected_with_a_reason_and_the_loop_goes_on() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.0, 5);
    let data = vec![0u8; 64 * 48 * 2];
    let bad_encoding = ImageIn {
        width_px: 64,
        height_px: 48,
        encoding: "yuv422",
        step_bytes: 128,
        data: &data,
    };
    let err = r.rt.on_image(&bad_encoding, t).unwrap_err();
    assert!(err.to_string().contains("yuv422"));
    let short = ImageIn {
        encoding: "rgb8",
        step_bytes: 64 * 3,
        ..bad_encoding
    };
    assert!(r.rt.on_image(&short, t).is_err());
    let last = r.rt.status().last_error.clone().unwrap();
    assert!(last.starts_with("rejected camera frame"), "{last}");
    let mut names = r.names.clone();
    names[0] = "wrist_cam_joint".into();
    let err =
        r.rt.on_joint_state(&names, &[0.0; 9], t, t)
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown joint \"wrist_cam_joint\""), "{err}");
    let err =
        r.rt.on_joint_state(&r.names.clone()[1..], &[0.0; 8], t, t)
            .unwrap_err()
            .to_string();
    assert!(err.contains("\"panda_joint1\" is missing"), "{err}");
    let mut nan = vec![0.0; 9];
    nan[3] = f64::NAN;
    let err =
        r.rt.on_joint_state(&r.names.clone(), &nan, t, t)
            .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    let err = r.rt.on_task(&"a".repeat(5000), t).unwrap_err();
    assert!(err.to_string().contains("5000 bytes"), "{err}");
    assert_eq!(r.rt.status().rejected_inputs, 6);
    assert!(r.rt.status().last_error.clone().unwrap().contains("5000"));
    // The current task goes on, on the last good inputs.
    assert_eq!(r.rt.status().task.as_deref(), Some("push the cube forward"));
    let (out, _) = run_fresh(&mut r, &mut q, t + 0.01, 20);
    assert!(out.command.is_some());
    assert_eq!(r.state(), RunState::Running);
    assert_eq!(r.rt.status().step, 3);
    // A NaN state never reached the controller: the command is finite.
    assert!(arm_positions(&out).iter().all(|v| v.is_finite()));
}

#[test]
fn a_failing_policy_step_holds_with_the_reason_and_recovers() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    let mut q = HOME.to_vec();
    let (_, t) = run_fresh(&mut r, &mut q, 0.0, 15);
    r.seen.borrow_mut().fail_next = true;
    let out = r.fresh_tick(&q, t + 0.1);
    assert_eq!(r.state(), RunState::Holding);
    assert!(r.reason().contains("scripted failure"));
    assert_eq!(arm_positions(&out), q);
    // The retry waits one policy period (no policy call every tick), holding.
    let acts = r.seen.borrow().acts;
    for k in 1..10 {
        let out = r.fresh_tick(&q, t + 0.1 + k as f64 * 0.01);
        assert_eq!(out.tokens, None);
        assert_eq!(arm_positions(&out), q);
        assert_eq!(r.state(), RunState::Holding);
        assert!(r.reason().contains("retrying"), "{}", r.reason());
    }
    assert_eq!(r.seen.borrow().acts, acts);
    assert!(r.fresh_tick(&q, t + 0.2).tokens.is_some());
    assert_eq!(r.state(), RunState::Running);
}

#[test]
fn status_serialises_as_json() {
    let mut r = rig();
    r.rt.on_task("push the cube forward", 0.0).unwrap();
    r.fresh_tick(&HOME, 0.0);
    let v: serde_json::Value = serde_json::from_str(&r.rt.status().to_json()).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(v["task"], "push the cube forward");
    assert_eq!(v["step"], 1);
    assert_eq!(v["controller_status"], "ok");
    assert_eq!(v["last_tokens"].as_array().unwrap().len(), 8);
}

#[test]
fn bad_settings_are_errors() {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let policy = || Scripted {
        action: Action::hold(0.0),
        terminate_after: None,
        tokenizer: ActionTokenizer::default(),
        seen: seen.clone(),
    };
    let cfg = RuntimeConfig {
        stale_timeout_secs: 0.0,
        ..RuntimeConfig::default()
    };
    assert!(Runtime::new(Box::new(policy()), arm(), cfg).is_err());
    let cfg = RuntimeConfig {
        command_period_secs: 0.5,
        ..RuntimeConfig::default()
    };
    assert!(Runtime::new(Box::new(policy()), arm(), cfg).is_err());
    let wrong = ["panda_joint1".to_string()];
    let err = ArmSetup::from_urdf_str(
        &urdf(),
        None,
        Some("panda_hand_tcp"),
        &wrong,
        &[],
        SafetyLimits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("do not match"), "{err}");
    let slow = SafetyLimits {
        velocity_scale: 1.5,
        ..SafetyLimits::default()
    };
    assert!(ArmSetup::from_urdf_str(&urdf(), None, None, &[], &[], slow).is_err());
}

#[test]
fn the_last_accepted_frame_and_joints_are_what_the_policy_was_given() {
    let mut r = rig();
    assert!(r.rt.policy_frame().is_none());
    assert!(r.rt.measured_rad().is_none());
    r.rt.on_task("pick up the red cube", 0.0).unwrap();
    let out = r.fresh_tick(&HOME, 0.0);
    assert!(out.tokens.is_some());
    // The frame as the policy got it: resized to its input, not the 64x48 sent.
    let frame = r.rt.policy_frame().unwrap();
    assert_eq!((frame.width_px(), frame.height_px()), (32, 32));
    assert_eq!(r.seen.borrow().frame_sizes.last(), Some(&(32, 32)));
    // The chain's joints only (the finger joints of the message are not in it).
    assert_eq!(r.rt.measured_rad().unwrap(), &HOME[..]);
    // A rejected frame leaves the last accepted one.
    let bad = ImageIn {
        width_px: 64,
        height_px: 48,
        encoding: "rgb8",
        step_bytes: 64 * 3,
        data: &[0u8; 10],
    };
    assert!(r.rt.on_image(&bad, 0.01).is_err());
    let kept = r.rt.policy_frame().unwrap();
    assert_eq!((kept.width_px(), kept.height_px()), (32, 32));
    assert!(kept.data().iter().all(|&b| b == 90));
}

/// A policy with a wrist camera: it records the wrist frames' sizes and
/// refuses to act without one.
struct WristReader {
    tokenizer: ActionTokenizer,
    wrist_sizes: Rc<RefCell<Vec<(u32, u32)>>>,
}

impl Policy for WristReader {
    fn name(&self) -> &str {
        "wrist-test"
    }
    fn reset(&mut self, _instruction: &Instruction) -> Result<(), PolicyError> {
        Ok(())
    }
    fn act(&mut self, frame: &RgbFrame, joints: &JointState) -> Result<PolicyStep, PolicyError> {
        self.act_with_wrist(frame, None, joints)
    }
    fn wrist_frame_size_px(&self) -> Option<(u32, u32)> {
        Some((16, 16))
    }
    fn act_with_wrist(
        &mut self,
        _frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        _joints: &JointState,
    ) -> Result<PolicyStep, PolicyError> {
        let wrist = wrist.ok_or_else(|| PolicyError::msg("no wrist frame"))?;
        self.wrist_sizes
            .borrow_mut()
            .push((wrist.width_px(), wrist.height_px()));
        let action = Action::new([0.01, 0.0, 0.0], [0.0; 3], 0.0, false);
        let tokens = self
            .tokenizer
            .tokenize(&action)
            .map_err(PolicyError::from_source)?;
        Ok(PolicyStep { tokens, action })
    }
}

#[test]
fn a_wrist_camera_policy_holds_until_its_wrist_frames_arrive_and_while_they_are_stale() {
    let wrist_sizes = Rc::new(RefCell::new(Vec::new()));
    let policy = WristReader {
        tokenizer: ActionTokenizer::default(),
        wrist_sizes: wrist_sizes.clone(),
    };
    let mut r = rig_for(Box::new(policy), Rc::new(RefCell::new(Seen::default())));
    assert!(r.rt.wants_wrist());
    let wrist_data = vec![40u8; 48 * 40 * 3];
    r.rt.on_task("pick up the red cube", 0.0).unwrap();
    // Scene frames and joints, no wrist frame: hold, the policy is not asked.
    let out = r.fresh_tick(&HOME, 0.0);
    assert_eq!(arm_positions(&out), HOME.to_vec());
    assert_eq!(r.reason(), "no wrist camera frame yet");
    assert!(wrist_sizes.borrow().is_empty());
    assert!(r.rt.policy_wrist_frame().is_none());
    // A malformed wrist image is rejected and changes nothing.
    assert!(r
        .rt
        .on_wrist_image(&wrist(48, &wrist_data[..10]), 0.01)
        .is_err());
    let out = r.fresh_tick(&HOME, 0.01);
    assert_eq!(arm_positions(&out), HOME.to_vec());
    assert_eq!(r.reason(), "no wrist camera frame yet");
    assert!(r.rt.policy_wrist_frame().is_none());
    // With wrist frames the policy runs and sees them at its trained size.
    let mut q = HOME.to_vec();
    let mut t = 0.02;
    for _ in 0..20 {
        r.rt.on_wrist_image(&wrist(48, &wrist_data), t).unwrap();
        let out = r.fresh_tick(&q, t);
        if let Some(c) = &out.command {
            q = c.positions_rad[..7].to_vec();
        }
        t += 0.01;
    }
    assert_eq!(r.state(), RunState::Running, "{}", r.reason());
    assert!(!wrist_sizes.borrow().is_empty());
    assert!(wrist_sizes.borrow().iter().all(|&s| s == (16, 16)));
    let seen =
        r.rt.policy_wrist_frame()
            .expect("the wrist frame the policy got");
    assert_eq!((seen.width_px(), seen.height_px()), (16, 16));
    assert!(seen.data().iter().all(|&b| b == 40));
    // The wrist camera stops: hold at the measured position with the reason.
    let steps = wrist_sizes.borrow().len();
    let mut last = None;
    for _ in 0..60 {
        last = Some(r.fresh_tick(&q, t));
        t += 0.01;
    }
    assert_eq!(r.state(), RunState::Holding);
    assert!(
        r.reason().contains("wrist camera frame is stale"),
        "{}",
        r.reason()
    );
    assert_eq!(arm_positions(&last.unwrap()), q);
    assert!(wrist_sizes.borrow().len() <= steps + 5);
}

/// A 48×40 rgb8 wrist image over `data`.
fn wrist(w: u32, data: &[u8]) -> ImageIn<'_> {
    ImageIn {
        width_px: w,
        height_px: 40,
        encoding: "rgb8",
        step_bytes: w as usize * 3,
        data,
    }
}

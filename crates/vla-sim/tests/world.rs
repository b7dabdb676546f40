//! Behaviour of the world, the expert and the episode runner on the bundled
//! scene and suite: physics, grasping, success checks, determinism, and the
//! `Policy` trait path.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use vla_core::tokenizer::ActionTokenizer;
use vla_core::{
    Action, ActionTokens, Instruction, JointState, Policy, PolicyError, PolicyStep, RgbFrame,
};
use vla_render::DomainRandomization;
use vla_sim::episode::{run_episode, task_for_goal, Driver, EpisodeOptions, Takeover};
use vla_sim::layout::Placement;
use vla_sim::success::check;
use vla_sim::{Goal, NoiseConfig, ObjectRef, SceneConfig, Split, SuccessReport, TaskSuite, World};

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

fn suite() -> TaskSuite {
    TaskSuite::load("default", &root()).unwrap()
}

fn place(color: &str, shape: &str, x: f64, y: f64) -> Placement {
    Placement {
        object: ObjectRef::new(color, shape),
        xy_m: [x, y],
        yaw_rad: 0.0,
    }
}

fn world(scene: &SceneConfig, placements: &[Placement]) -> World {
    World::new(scene, placements).unwrap()
}

#[test]
fn objects_fall_onto_the_table_and_rest() {
    let s = suite();
    let mut w = world(
        &s.scene,
        &[
            place("red", "cube", 0.5, 0.0),
            place("blue", "sphere", 0.55, 0.15),
        ],
    );
    for _ in 0..10 {
        w.step(&Action::hold(0.0)).unwrap();
    }
    let table = s.scene.table.height_m;
    let cube = w.pose(0).translation.vector;
    assert!(
        (cube.z - (table + 0.02)).abs() < 0.003,
        "cube centre at {}",
        cube.z
    );
    assert!(w.speed_m_s(0) < 0.01 && w.speed_m_s(1) < 0.01);
    let ball = w.pose(1).translation.vector;
    assert!((ball.z - (table + 0.022)).abs() < 0.003);
}

#[test]
fn the_scene_camera_sees_the_whole_workspace_and_the_hand_over_it() {
    let s = suite();
    let camera = vla_sim::render::scene_camera(&s.scene);
    let ws = &s.scene.workspace;
    let table_z = s.scene.table.height_m;
    for x in ws.x_range_m {
        for y in ws.y_range_m {
            // An object's centre on the table anywhere in the workspace, and
            // the TCP hovering over it (grasp height + the expert's 9 cm).
            for z in [table_z + 0.02, table_z + 0.11] {
                let p = nalgebra::Point3::new(x, y, z);
                assert!(camera.project(&p).is_some(), "{p} is out of view");
            }
        }
    }
}

#[test]
fn an_object_off_the_table_lands_on_the_floor() {
    let s = suite();
    // The table spans x 0–0.9 m; this cube starts beyond its far edge.
    let mut w = world(&s.scene, &[place("red", "cube", 1.2, 0.0)]);
    for _ in 0..20 {
        w.step(&Action::hold(0.0)).unwrap();
    }
    let cube = w.pose(0).translation.vector;
    assert!((cube.z - 0.02).abs() < 0.003, "cube centre at {}", cube.z);
    assert!(w.speed_m_s(0) < 0.01);
}

#[test]
fn the_hand_pushes_objects_it_moves_into() {
    let s = suite();
    let task = task_for_goal(
        Goal::Push {
            object: ObjectRef::new("red", "cube"),
            direction: vla_sim::Direction::Left,
        },
        "push the red cube left",
        0,
        4,
    );
    let ep = run_episode(
        &s.scene,
        &task,
        &[],
        Driver::Expert(NoiseConfig::none()),
        &opts(&s, false),
        4,
    )
    .unwrap();
    assert!(ep.outcome.success, "{}", ep.outcome.reason);
    // Without the arm doing anything the same cube stays where it is.
    let mut w = world(&s.scene, &[place("red", "cube", 0.5, 0.0)]);
    let start = w.pose(0).translation.vector;
    for _ in 0..20 {
        w.step(&Action::hold(0.0)).unwrap();
    }
    assert!((w.pose(0).translation.vector - start).norm() < 0.002);
    assert!(!check(&w, &task.goal).success);
}

fn opts(s: &TaskSuite, render: bool) -> EpisodeOptions {
    let mut o = EpisodeOptions::new(s.config.max_steps);
    o.render = render;
    o.record = true;
    o
}

#[test]
fn closing_on_air_grasps_nothing_and_open_jaws_around_a_cube_grasp_it() {
    let s = suite();
    let mut w = world(&s.scene, &[place("red", "cube", 0.45, 0.2)]);
    // Far from the cube: closing the gripper holds nothing.
    for _ in 0..6 {
        w.step(&Action::hold(1.0)).unwrap();
    }
    assert_eq!(w.held(), None);
    // The expert's pick-up grasps it and the check agrees once it is lifted.
    let task = task_for_goal(
        Goal::PickUp {
            object: ObjectRef::new("green", "cylinder"),
        },
        "pick up the green cylinder",
        2,
        11,
    );
    let pool = s.distractor_pool(None);
    let ep = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Expert(NoiseConfig::none()),
        &opts(&s, false),
        11,
    )
    .unwrap();
    assert!(ep.outcome.success, "{}", ep.outcome.reason);
    assert!(ep.records.iter().any(|r| r.holding));
    assert!(!ep.records[0].holding);
}

#[test]
fn same_seed_gives_identical_trajectories_and_frames() {
    let s = suite();
    let task = s.sample_task(Split::Train, 5).unwrap();
    let pool = s.distractor_pool(task.distractor_split);
    let mut o = opts(&s, true);
    o.randomization = DomainRandomization::moderate();
    let run = || {
        run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Expert(NoiseConfig::demonstrations()),
            &o,
            5,
        )
        .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.records, b.records);
    assert_eq!(a.frames, b.frames);
    assert_eq!(a.outcome, b.outcome);
    assert_eq!(a.frames.len(), a.records.len());
    let other = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Expert(NoiseConfig::demonstrations()),
        &o,
        6,
    )
    .unwrap();
    assert_ne!(
        a.frames[0], other.frames[0],
        "randomisation seed has no effect"
    );
}

#[test]
fn expert_actions_stay_in_the_policy_action_space() {
    let s = suite();
    let tok = ActionTokenizer::default();
    for seed in 0..10 {
        let task = s.sample_task(Split::Train, seed).unwrap();
        let pool = s.distractor_pool(task.distractor_split);
        let ep = run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Expert(NoiseConfig::demonstrations()),
            &opts(&s, false),
            seed,
        )
        .unwrap();
        for r in &ep.records {
            for (v, hi) in r.action.translation_m.iter().zip([0.03; 3]) {
                assert!(v.abs() <= hi, "{v}");
            }
            for v in r.action.rotation_rad {
                assert!(v.abs() <= 0.15);
            }
            assert!(r.action.gripper == 0.0 || r.action.gripper == 1.0);
            assert_eq!(tok.tokenize(&r.action).unwrap(), r.tokens);
            assert_eq!(tok.detokenize(&r.executed_tokens).unwrap(), r.executed);
        }
        assert!(ep.records.last().unwrap().action.terminate);
    }
}

#[test]
fn scripted_expert_solves_the_suite() {
    let s = suite();
    let mut outcomes = Vec::new();
    for split in [Split::Train, Split::Eval] {
        for seed in 0..40 {
            let task = s.sample_task(split, 500 + seed).unwrap();
            let pool = s.distractor_pool(task.distractor_split);
            let mut o = EpisodeOptions::new(s.config.max_steps);
            o.render = false;
            let ep = run_episode(
                &s.scene,
                &task,
                &pool,
                Driver::Expert(NoiseConfig::none()),
                &o,
                seed,
            )
            .unwrap();
            outcomes.push(ep.outcome);
        }
    }
    let report = SuccessReport::from_outcomes(&outcomes);
    assert_eq!(report.per_family.len(), 5);
    assert!(report.success_rate >= 0.98, "{report:?}");
}

/// A policy that replays recorded tokens, to drive the `Policy` path.
struct Replay {
    tokens: Vec<ActionTokens>,
    next: usize,
    frames_seen: usize,
}

impl Policy for Replay {
    fn name(&self) -> &str {
        "replay"
    }
    fn reset(&mut self, _instruction: &Instruction) -> Result<(), PolicyError> {
        self.next = 0;
        Ok(())
    }
    fn act(&mut self, frame: &RgbFrame, joints: &JointState) -> Result<PolicyStep, PolicyError> {
        assert_eq!(frame.width_px(), 128);
        assert_eq!(joints.names().len(), 9);
        self.frames_seen += 1;
        let tokens = *self
            .tokens
            .get(self.next)
            .ok_or_else(|| PolicyError::msg("ran out of recorded steps"))?;
        self.next += 1;
        let action = ActionTokenizer::default()
            .detokenize(&tokens)
            .map_err(PolicyError::from_source)?;
        Ok(PolicyStep { tokens, action })
    }
}

#[test]
fn a_policy_replaying_the_experts_tokens_succeeds_through_the_policy_trait() {
    let s = suite();
    let task = s.sample_task(Split::Train, 2).unwrap();
    let pool = s.distractor_pool(task.distractor_split);
    let expert = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Expert(NoiseConfig::none()),
        &opts(&s, false),
        2,
    )
    .unwrap();
    assert!(expert.outcome.success);
    let mut policy: Box<dyn Policy> = Box::new(Replay {
        tokens: expert.records.iter().map(|r| r.executed_tokens).collect(),
        next: 0,
        frames_seen: 0,
    });
    let replay = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Learned(policy.as_mut()),
        &opts(&s, true),
        2,
    )
    .unwrap();
    assert!(replay.outcome.success, "{}", replay.outcome.reason);
    assert_eq!(replay.outcome.steps, expert.outcome.steps);
    assert_eq!(replay.frames.len(), expert.records.len());
}

#[test]
fn success_is_judged_from_where_objects_actually_are() {
    let s = suite();
    let put_in = Goal::PutIn {
        object: ObjectRef::new("red", "cube"),
        target: ObjectRef::new("green", "bowl"),
    };
    // A cube dropped at the bowl's centre lands inside it.
    let mut w = world(
        &s.scene,
        &[
            place("red", "cube", 0.5, 0.0),
            place("green", "bowl", 0.5, 0.0),
        ],
    );
    for _ in 0..5 {
        w.step(&Action::hold(0.0)).unwrap();
    }
    assert!(check(&w, &put_in).success, "{}", check(&w, &put_in).reason);
    // The same cube 20 cm away is not in it, but it is next to nothing.
    let w = world(
        &s.scene,
        &[
            place("red", "cube", 0.5, 0.2),
            place("green", "bowl", 0.5, 0.0),
        ],
    );
    assert!(!check(&w, &put_in).success);
    let next_to = Goal::MoveNextTo {
        object: ObjectRef::new("red", "cube"),
        target: ObjectRef::new("green", "bowl"),
    };
    assert!(!check(&w, &next_to).success);
    // 3 cm from the bowl's rim it is next to it.
    let w = world(
        &s.scene,
        &[
            place("red", "cube", 0.5, 0.125),
            place("green", "bowl", 0.5, 0.0),
        ],
    );
    assert!(
        check(&w, &next_to).success,
        "{}",
        check(&w, &next_to).reason
    );
    // A cube that was never lifted is not picked up.
    let pick = Goal::PickUp {
        object: ObjectRef::new("red", "cube"),
    };
    assert!(!check(&w, &pick).success);
}

/// Link poses by name and object poses.
type Poses = (
    std::collections::HashMap<String, nalgebra::Isometry3<f64>>,
    Vec<nalgebra::Isometry3<f64>>,
);

/// Renders for itself, like the rerun recorder's logging thread: scene
/// shapes once, then the poses after each step for the next step's frame.
struct SelfRenderingObserver {
    camera: Option<vla_sim::render::SimCamera>,
    shapes: Option<vla_sim::render::SceneShapes>,
    poses: Option<Poses>,
    frames: Vec<vla_core::RgbFrame>,
    loop_rendered: bool,
}

fn poses_of(w: &World) -> Poses {
    let links = w.arm().world_from_links().unwrap();
    (links, (0..w.objects().len()).map(|i| w.pose(i)).collect())
}

impl vla_sim::StepObserver for SelfRenderingObserver {
    fn wants_frames(&self) -> bool {
        false
    }

    fn on_episode_start(&mut self, start: &vla_sim::EpisodeStart<'_>) {
        self.camera = Some(
            vla_sim::render::SimCamera::new(start.scene, start.randomization, start.seed).unwrap(),
        );
        self.shapes = Some(vla_sim::render::SceneShapes::new(start.world));
        self.poses = Some(poses_of(start.world));
    }

    fn on_step(&mut self, view: &vla_sim::StepView<'_>) {
        self.loop_rendered |= view.frame.is_some();
        let (links, objects) = self.poses.take().unwrap();
        let prims = self.shapes.as_ref().unwrap().primitives(&links, &objects);
        let out = self
            .camera
            .as_mut()
            .unwrap()
            .render_primitives(prims)
            .unwrap();
        self.frames.push(out.rgb);
        self.poses = Some(poses_of(view.world));
    }
}

#[test]
fn an_observer_rendering_from_scene_shapes_sees_the_loops_frames() {
    let s = suite();
    let task = s.sample_task(Split::Train, 3).unwrap();
    let pool = s.distractor_pool(task.distractor_split);
    let mut o = opts(&s, true);
    o.randomization = DomainRandomization::moderate();
    let driver = || Driver::Expert(NoiseConfig::demonstrations());
    let reference = run_episode(&s.scene, &task, &pool, driver(), &o, 3).unwrap();
    o.render = false;
    let mut observer = SelfRenderingObserver {
        camera: None,
        shapes: None,
        poses: None,
        frames: Vec::new(),
        loop_rendered: false,
    };
    let observed =
        vla_sim::run_episode_observed(&s.scene, &task, &pool, driver(), &o, 3, Some(&mut observer))
            .unwrap();
    assert!(
        !observer.loop_rendered,
        "the loop rendered frames nobody needed"
    );
    assert!(observed.frames.is_empty());
    assert_eq!(reference.outcome, observed.outcome);
    assert!(reference.frames.len() > 10);
    assert_eq!(observer.frames, reference.frames);
}

#[test]
fn tracking_joint_targets_moves_within_velocity_limits_and_rejects_bad_targets() {
    let s = suite();
    let mut w = world(&s.scene, &[place("red", "cube", 0.5, 0.2)]);
    let home = w.arm().positions_rad().to_vec();
    let mut target = home.clone();
    target[0] += 0.3;
    // Joint 1 of the Panda is limited to 2.175 rad/s: 0.3 rad takes > 0.13 s.
    let dt = w.physics_dt_secs();
    w.track_substep(&target, false).unwrap();
    let moved = w.arm().positions_rad()[0] - home[0];
    assert!(moved > 0.0 && moved <= 2.175 * dt + 1e-9, "moved {moved}");
    for _ in 0..50 {
        w.track_substep(&target, false).unwrap();
    }
    assert!((w.arm().positions_rad()[0] - target[0]).abs() < 1e-9);
    assert_eq!(&w.arm().positions_rad()[1..], &home[1..]);
    // A target beyond the position limit stops at the limit.
    let mut beyond = target.clone();
    beyond[3] = 10.0;
    for _ in 0..400 {
        w.track_substep(&beyond, false).unwrap();
    }
    let upper = w.arm().chain().limits()[3].upper_rad;
    assert!((w.arm().positions_rad()[3] - upper).abs() < 1e-9);
    // Wrong length or NaN: an error, and the arm does not move.
    let before = w.arm().positions_rad().to_vec();
    assert!(w.track_substep(&target[..3], false).is_err());
    let mut nan = target.clone();
    nan[2] = f64::NAN;
    assert!(w.track_substep(&nan, false).is_err());
    assert_eq!(w.arm().positions_rad(), &before[..]);
    // Closing the gripper closes the fingers.
    for _ in 0..100 {
        w.track_substep(&target, true).unwrap();
    }
    assert!(w.arm().finger_m() < 1e-9);
}

/// A policy that always asks to hold still with this gripper command
/// (and, if `terminate`, to end the episode at once).
struct Hold {
    gripper: f64,
    terminate: bool,
}

/// Holds still, gripper open, and asks to terminate.
const HOLD_STILL: Hold = Hold {
    gripper: 0.0,
    terminate: true,
};

impl Policy for Hold {
    fn name(&self) -> &str {
        "hold"
    }
    fn reset(&mut self, _instruction: &Instruction) -> Result<(), PolicyError> {
        Ok(())
    }
    fn act(&mut self, _frame: &RgbFrame, _joints: &JointState) -> Result<PolicyStep, PolicyError> {
        let action = vla_core::Action {
            terminate: self.terminate,
            ..vla_core::Action::hold(self.gripper)
        };
        let tokens = ActionTokenizer::default()
            .tokenize(&action)
            .map_err(PolicyError::from_source)?;
        Ok(PolicyStep { tokens, action })
    }
}

#[test]
fn dagger_executes_the_policy_and_records_the_experts_labels() {
    let s = suite();
    let task = s.sample_task(Split::Train, 2).unwrap();
    let pool = s.distractor_pool(task.distractor_split);
    let mut o = opts(&s, true);
    o.max_steps = 12;
    let mut policy = HOLD_STILL;
    let ep = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Dagger {
            policy: &mut policy,
            expert_prob: 0.0,
            takeover: Takeover::Start,
        },
        &o,
        2,
    )
    .unwrap();
    // The policy's early terminate is not executed: the expert ends episodes.
    assert_eq!(ep.records.len(), 12);
    assert!(!ep.outcome.success);
    for r in &ep.records {
        assert_eq!(r.executed.translation_m, [0.0; 3], "step {}", r.step);
        assert!(!r.executed.terminate);
    }
    // The arm held still, so the expert keeps asking to move towards the object.
    let moving = ep
        .records
        .iter()
        .filter(|r| r.action.translation_m.iter().any(|v| v.abs() > 1e-3))
        .count();
    assert!(moving >= 10, "expert labels: {moving} of 12 ask for motion");
    assert_eq!(ep.frames.len(), 12);

    // With the expert executing every step, the rollout is the expert's.
    let mut policy = HOLD_STILL;
    let dagger = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Dagger {
            policy: &mut policy,
            expert_prob: 1.0,
            takeover: Takeover::Start,
        },
        &opts(&s, true),
        2,
    )
    .unwrap();
    assert!(dagger.outcome.success, "{}", dagger.outcome.reason);
}

/// `Takeover::AfterLift`: the expert carries the object up alone, then the
/// policy's (held-still) actions are executed and recorded with the
/// expert's labels, starting with the object in the hand; a push has no
/// carry and records nothing.
#[test]
fn dagger_after_lift_records_only_the_carry() {
    let s = suite();
    let stack = Goal::Stack {
        object: ObjectRef::new("red", "cube"),
        target: ObjectRef::new("blue", "cube"),
    };
    let push = Goal::Push {
        object: ObjectRef::new("red", "cube"),
        direction: vla_sim::Direction::Left,
    };
    for (goal, carries) in [(stack, true), (push, false)] {
        let task = task_for_goal(goal, "a task", 1, 5);
        let pool = s.distractor_pool(None);
        let mut policy = Hold {
            gripper: 1.0,
            terminate: false,
        };
        let ep = run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Dagger {
                policy: &mut policy,
                expert_prob: 0.0,
                takeover: Takeover::AfterLift { steps: 10 },
            },
            &opts(&s, true),
            5,
        )
        .unwrap();
        if !carries {
            assert!(ep.records.is_empty(), "{} records", ep.records.len());
            assert!(ep.outcome.terminated, "the expert finished the push");
            continue;
        }
        assert_eq!(ep.records.len(), 10);
        assert_eq!(ep.frames.len(), 10);
        assert!(ep.outcome.held_steps > 10, "{}", ep.outcome.held_steps);
        let first = &ep.records[0];
        assert!(first.holding, "the policy takes over with the object held");
        assert!(
            first.step > 5,
            "after the expert's approach, grasp and lift"
        );
        for r in &ep.records {
            assert!(r.holding, "step {}: the gripper stays closed", r.step);
            assert_eq!(r.executed.translation_m, [0.0; 3], "step {}", r.step);
        }
        // Held still at carry height, the expert keeps asking to carry it on.
        let last = ep.records.last().unwrap();
        assert!(
            last.action.translation_m.iter().any(|v| v.abs() > 1e-3),
            "{:?}",
            last.action
        );
    }
}

/// Under DAgger the expert labels states another controller reached. An
/// expert that meets the object already in the hand must say "keep it
/// closed and lift", not reach for it again with the gripper open (which
/// taught earlier DAgger rounds to drop what the policy had grasped).
#[test]
fn an_expert_meeting_a_grasped_object_labels_lift_not_release() {
    let s = suite();
    for goal in [
        Goal::PickUp {
            object: ObjectRef::new("red", "cube"),
        },
        Goal::PutIn {
            object: ObjectRef::new("red", "cube"),
            target: ObjectRef::new("blue", "bowl"),
        },
    ] {
        let mut w = world(
            &s.scene,
            &[
                place("red", "cube", 0.5, 0.1),
                place("blue", "bowl", 0.5, -0.15),
            ],
        );
        // One expert drives until the cube is in the hand.
        let mut driver = vla_sim::ScriptedExpert::new(goal.clone(), NoiseConfig::none(), 1);
        let mut steps = 0;
        while w.held().is_none() {
            let a = driver.act(&w).unwrap().executed;
            w.step(&a).unwrap();
            steps += 1;
            assert!(steps < 80, "the driving expert never grasped");
        }
        // A fresh expert (phase: approach) labels the next states.
        let mut labeller = vla_sim::ScriptedExpert::new(goal.clone(), NoiseConfig::none(), 2);
        let z0 = w.world_from_tcp().unwrap().translation.z;
        for _ in 0..5 {
            let label = labeller.act(&w).unwrap().label;
            assert!(
                label.gripper > 0.5,
                "{goal:?}: label opens the hand: {label:?}"
            );
            assert!(!label.terminate);
            w.step(&label).unwrap();
        }
        assert_eq!(w.held(), w.index_of(goal.object()));
        let z1 = w.world_from_tcp().unwrap().translation.z;
        assert!(z1 > z0 + 0.05, "{goal:?}: lifted only {:.3} m", z1 - z0);
    }
}

#[test]
fn recovery_noise_puts_grasp_failures_and_the_experts_way_out_into_demonstrations() {
    let s = suite();
    let finger_closed = |r: &vla_sim::episode::StepRecord| {
        r.joints.position_of("panda_finger_joint1").unwrap() < 0.004
    };
    let mut outcomes = Vec::new();
    let (mut early_closes, mut reopen_labels, mut sideways_steps) = (0, 0, 0);
    let (mut demo_early_closes, mut episodes) = (0, 0);
    for seed in 0..40 {
        let task = s.sample_task(Split::Train, 700 + seed).unwrap();
        if task.goal.family() == vla_sim::goal::Family::Push {
            continue;
        }
        episodes += 1;
        let pool = s.distractor_pool(task.distractor_split);
        let o = opts(&s, false);
        let ep = run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Expert(NoiseConfig::recovery()),
            &o,
            seed,
        )
        .unwrap();
        outcomes.push(ep.outcome);
        for r in &ep.records {
            // The executed hand closes while the expert says "open".
            if r.executed.gripper >= 0.5 && r.action.gripper < 0.5 && !r.holding {
                early_closes += 1;
            }
            // The state a failing policy reaches: fingers shut on nothing;
            // the label opens them again.
            if finger_closed(r) && !r.holding && r.action.gripper < 0.5 && !r.action.terminate {
                reopen_labels += 1;
            }
            let dx = r.executed.translation_m[0] - r.action.translation_m[0];
            let dy = r.executed.translation_m[1] - r.action.translation_m[1];
            let dz = r.executed.translation_m[2] - r.action.translation_m[2];
            if dx.hypot(dy) >= 0.008 && dz.abs() < 1e-3 && !r.holding {
                sideways_steps += 1;
            }
        }
        let plain = run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Expert(NoiseConfig::demonstrations()),
            &o,
            seed,
        )
        .unwrap();
        demo_early_closes += plain
            .records
            .iter()
            .filter(|r| r.executed.gripper >= 0.5 && r.action.gripper < 0.5 && !r.holding)
            .count();
    }
    let report = SuccessReport::from_outcomes(&outcomes);
    assert!(episodes >= 20, "{episodes} grasp episodes");
    // The expert still finishes most episodes (collection keeps successes only).
    assert!(report.success_rate >= 0.8, "{report:?}");
    assert!(early_closes >= 10, "{early_closes} early-close steps");
    assert!(reopen_labels >= 5, "{reopen_labels} re-open labels");
    assert!(
        sideways_steps >= 10,
        "{sideways_steps} sideways drift steps"
    );
    eprintln!(
        "{episodes} episodes: {report:?}, early-close steps {early_closes}, \
         re-open labels {reopen_labels}, sideways drift steps {sideways_steps}"
    );
    assert_eq!(demo_early_closes, 0, "plain --noise closes early");
}

/// `--noise --near-place`: while the object is carried over or lowered
/// onto its place, drifts push it 0.4–1.5 cm off, and the labels hold
/// many more of the small sideways corrections (3 mm–2 cm, object in
/// the hand) that a release needs than the plain demonstrations do,
/// while the expert still finishes its placements.
#[test]
fn near_place_noise_puts_the_last_correction_before_a_release_into_demonstrations() {
    let s = suite();
    let count = |noise: NoiseConfig| {
        let (mut small_corrections, mut outcomes) = (0, Vec::new());
        for seed in 0..40 {
            let task = s.sample_task(Split::Train, 1100 + seed).unwrap();
            if !matches!(
                task.goal.family(),
                vla_sim::goal::Family::Stack | vla_sim::goal::Family::PutIn
            ) {
                continue;
            }
            let pool = s.distractor_pool(task.distractor_split);
            let ep = run_episode(
                &s.scene,
                &task,
                &pool,
                Driver::Expert(noise),
                &opts(&s, false),
                seed,
            )
            .unwrap();
            outcomes.push(ep.outcome);
            small_corrections += ep
                .records
                .iter()
                .filter(|r| {
                    let [x, y, _] = r.action.translation_m;
                    r.holding && (0.003..0.02).contains(&x.hypot(y))
                })
                .count();
        }
        (small_corrections, SuccessReport::from_outcomes(&outcomes))
    };
    let (plain, plain_report) = count(NoiseConfig::demonstrations());
    let (near, near_report) = count(NoiseConfig::near_place());
    eprintln!("small held corrections: plain {plain} ({plain_report:?}), near-place {near} ({near_report:?})");
    assert!(near_report.episodes >= 10, "{near_report:?}");
    assert!(near_report.success_rate >= 0.8, "{near_report:?}");
    assert!(near >= 3 * plain.max(1), "near-place {near}, plain {plain}");
}

#[test]
fn a_varied_approach_puts_sideways_corrections_low_on_the_way_down() {
    let s = suite();
    // Labels moving >= 1 cm sideways with the hand already near hover
    // height (< 12 cm above it), before the grasp.
    let count = |noise: NoiseConfig| {
        let (mut low_sideways, mut outcomes) = (0, Vec::new());
        for seed in 0..30 {
            let task = s.sample_task(Split::Train, 900 + seed).unwrap();
            if task.goal.family() == vla_sim::goal::Family::Push {
                continue;
            }
            let pool = s.distractor_pool(task.distractor_split);
            let ep = run_episode(
                &s.scene,
                &task,
                &pool,
                Driver::Expert(noise),
                &opts(&s, false),
                seed,
            )
            .unwrap();
            outcomes.push(ep.outcome);
            for r in ep.records.iter().filter(|r| !r.holding) {
                let Some(obj) = r.object_xyz_m else { continue };
                let above_hover_m = r.tcp_xyz_m[2] - (obj[2] + 0.09);
                let a = r.action.translation_m;
                if above_hover_m < 0.12 && a[0].hypot(a[1]) >= 0.01 {
                    low_sideways += 1;
                }
            }
        }
        (low_sideways, SuccessReport::from_outcomes(&outcomes))
    };
    let (fixed, _) = count(NoiseConfig::demonstrations());
    let (varied, report) = count(NoiseConfig::varied_approach());
    assert!(report.success_rate >= 0.9, "{report:?}");
    assert!(
        varied >= 3 * fixed.max(5),
        "sideways labels low on the approach: {varied} varied vs {fixed} fixed"
    );
    eprintln!("sideways labels low on the approach: {varied} varied vs {fixed} fixed; {report:?}");
}

/// `Driver::Decoy` (`vla collect --decoy-approach`): in its first steps the
/// hand goes to another object of the goal object's colour while every
/// label is the clean expert's, pointing elsewhere, and the recorded
/// object is the goal; then the expert finishes the task.
#[test]
fn decoy_approaches_take_the_hand_to_a_same_coloured_object_under_the_real_labels() {
    check_decoy_approaches(0);
}

/// `--decoy-start 10`: the expert drives the first 10 steps (executed =
/// labels), then the decoy pulls the hand to the other object, then the
/// expert finishes.
#[test]
fn late_decoys_take_over_from_the_expert_at_their_start_step() {
    check_decoy_approaches(10);
}

/// Six same-colour episodes of `Driver::Decoy` starting at `start_step`.
fn check_decoy_approaches(start_step: usize) {
    let s = suite();
    let (mut episodes, mut successes, mut plain) = (0, 0, 0);
    for seed in 0..60 {
        let task = s.sample_task(Split::Train, seed).unwrap();
        let pool =
            TaskSuite::same_colour_pool(&s.distractor_pool(task.distractor_split), &task.goal);
        let w = vla_sim::episode::build_world(&s.scene, &task, &pool).unwrap();
        let named = task.goal.named_objects();
        let decoys: Vec<[f64; 3]> = (0..w.objects().len())
            .filter(|&i| {
                let o = &w.objects()[i].object;
                o.color == task.goal.object().color && !named.contains(&o)
            })
            .map(|i| {
                let t = w.pose(i).translation.vector;
                [t.x, t.y, t.z]
            })
            .collect();
        if decoys.is_empty() {
            continue;
        }
        let ep = run_episode(
            &s.scene,
            &task,
            &pool,
            Driver::Decoy {
                max_steps: 30,
                start_step,
            },
            &opts(&s, true),
            seed,
        )
        .unwrap();
        let xy = |a: [f64; 3], b: [f64; 3]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let agrees = |r: &vla_sim::episode::StepRecord| {
            let (l, e) = (r.action.translation_m, r.executed.translation_m);
            (l[0] - e[0]).abs() + (l[1] - e[1]).abs() < 1e-9
        };
        // Before the decoy starts, the expert's own moves are executed.
        for r in &ep.records[..start_step] {
            assert!(agrees(r), "seed {seed}: step {} not the expert's", r.step);
        }
        // An expert no longer approaching its object at the start step
        // (e.g. already pushing) gets no decoy: a plain demonstration.
        if start_step > 0 && agrees(&ep.records[start_step]) {
            assert!(
                ep.records.iter().all(agrees),
                "seed {seed}: a decoy moved later"
            );
            plain += 1;
            continue;
        }
        // Then the hand reaches a decoy (within 4 cm sideways) while the
        // goal object is further.
        let at_decoy = ep.records[start_step..].iter().position(|r| {
            let goal = r.object_xyz_m.unwrap();
            decoys.iter().any(|&d| xy(r.tcp_xyz_m, d) < 0.04) && xy(r.tcp_xyz_m, goal) > 0.06
        });
        let at_decoy = start_step
            + at_decoy.unwrap_or_else(|| panic!("seed {seed}: the hand never reached a decoy"));
        assert!(
            at_decoy < start_step + 30,
            "seed {seed}: at step {at_decoy}"
        );
        // Meanwhile the labels ask for another move than the executed one.
        let decoy_part = &ep.records[start_step..at_decoy];
        let disagree = decoy_part
            .iter()
            .filter(|r| {
                let (l, e) = (r.action.translation_m, r.executed.translation_m);
                (l[0] - e[0]).abs() + (l[1] - e[1]).abs() > 0.01
            })
            .count();
        assert!(
            disagree >= decoy_part.len() / 2,
            "seed {seed}: {disagree} of {}",
            decoy_part.len()
        );
        // The goal object is what the records name.
        let goal_i = w.index_of(task.goal.object()).unwrap();
        let start = w.pose(goal_i).translation.vector;
        assert!(
            xy(
                ep.records[0].object_xyz_m.unwrap(),
                [start.x, start.y, start.z]
            ) < 1e-6
        );
        episodes += 1;
        successes += usize::from(ep.outcome.success);
        if episodes == 6 {
            break;
        }
    }
    assert_eq!(episodes, 6, "too few same-colour layouts in 60 seeds");
    // Late decoys mostly find the expert still on its way.
    assert!(
        2 * plain < episodes,
        "{plain} without a decoy, {episodes} with"
    );
    // The expert recovers from the decoy.
    assert!(successes >= 4, "{successes} of {episodes} succeeded");
}

/// A recorded expert episode of `task` with the wrist camera rendered.
fn expert_with_wrist(s: &TaskSuite, task: &vla_sim::Task, seed: u64) -> vla_sim::episode::Episode {
    let mut o = opts(s, true);
    o.wrist = true;
    let pool = s.distractor_pool(task.distractor_split);
    run_episode(
        &s.scene,
        task,
        &pool,
        Driver::Expert(NoiseConfig::none()),
        &o,
        seed,
    )
    .unwrap()
}

#[test]
fn the_wrist_camera_rides_on_the_hand_and_sees_the_goal_object_between_the_fingers() {
    let s = suite();
    let config = s.scene.wrist_camera.clone().unwrap();
    let task = task_for_goal(
        Goal::PickUp {
            object: ObjectRef::new("red", "cube"),
        },
        "pick up the red cube",
        1,
        3,
    );
    let ep = expert_with_wrist(&s, &task, 3);
    assert!(ep.outcome.success, "{}", ep.outcome.reason);
    assert_eq!(ep.wrist_frames.len(), ep.records.len());
    for f in &ep.wrist_frames {
        assert_eq!(
            (f.width_px(), f.height_px()),
            (config.width_px, config.height_px)
        );
    }
    // At the grasp the cube sits between the fingertips: below the image
    // centre (the fingers show at the bottom), and its pixels are red.
    let g = ep.records.iter().position(|r| r.holding).unwrap();
    let [u, v] = ep.records[g].wrist_object_px.unwrap();
    let centre = (f64::from(config.width_px) - 1.0) / 2.0;
    assert!((u - centre).abs() < 6.0, "u {u}");
    assert!(
        v > centre + 6.0 && v < f64::from(config.height_px) - 4.0,
        "v {v}"
    );
    let rgb = ep.wrist_frames[g].to_rgb8();
    let at = |u: f64, v: f64| {
        let i = (v.round() as usize * config.width_px as usize + u.round() as usize) * 3;
        [rgb.data()[i], rgb.data()[i + 1], rgb.data()[i + 2]]
    };
    let [r, gr, b] = at(u, v - 3.0);
    assert!(
        r > 100 && u16::from(r) > 2 * u16::from(gr.max(b)),
        "not red: {r} {gr} {b}"
    );
    // High above the table at the start the view differs from the grasp's.
    let first = ep.wrist_frames[0].to_rgb8();
    let diff: f64 = first
        .data()
        .iter()
        .zip(rgb.data())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / rgb.data().len() as f64;
    assert!(diff > 10.0, "mean difference {diff}");
    // The mount is rigid: the TCP projects to one wrist pixel at every pose.
    let mut w = world(&s.scene, &[place("red", "cube", 0.5, 0.0)]);
    let cam = vla_sim::render::WristCamera::new(&s.scene, DomainRandomization::default(), 0)
        .unwrap()
        .unwrap();
    let mut seen = Vec::new();
    for k in 0..12 {
        let a = Action::new(
            [0.02, if k < 6 { 0.02 } else { -0.02 }, -0.01],
            [0.0; 3],
            0.0,
            false,
        );
        w.step(&a).unwrap();
        let tcp = w.world_from_tcp().unwrap().translation.vector;
        let (u, v, _) = cam
            .camera_at(&w)
            .unwrap()
            .project(&nalgebra::Point3::from(tcp))
            .unwrap();
        seen.push((u, v));
    }
    for (u, v) in &seen {
        assert!(
            (u - seen[0].0).abs() < 1e-6 && (v - seen[0].1).abs() < 1e-6,
            "{seen:?}"
        );
    }
}

/// [`Replay`] through the wrist-camera path: it asks for wrist frames and
/// refuses to act without one.
struct WristReplay {
    inner: Replay,
    wrist_frames: Vec<RgbFrame>,
}

impl Policy for WristReplay {
    fn name(&self) -> &str {
        "wrist-replay"
    }
    fn reset(&mut self, instruction: &Instruction) -> Result<(), PolicyError> {
        self.inner.reset(instruction)
    }
    fn act(&mut self, frame: &RgbFrame, joints: &JointState) -> Result<PolicyStep, PolicyError> {
        self.act_with_wrist(frame, None, joints)
    }
    fn wrist_frame_size_px(&self) -> Option<(u32, u32)> {
        Some((64, 64))
    }
    fn act_with_wrist(
        &mut self,
        frame: &RgbFrame,
        wrist: Option<&RgbFrame>,
        joints: &JointState,
    ) -> Result<PolicyStep, PolicyError> {
        let wrist = wrist.ok_or_else(|| PolicyError::msg("no wrist frame"))?;
        self.wrist_frames.push(wrist.clone());
        self.inner.act(frame, joints)
    }
}

#[test]
fn a_policy_that_reads_the_wrist_camera_gets_its_frame_every_step() {
    let s = suite();
    let task = s.sample_task(Split::Train, 2).unwrap();
    let pool = s.distractor_pool(task.distractor_split);
    let expert = expert_with_wrist(&s, &task, 2);
    let mut policy = WristReplay {
        inner: Replay {
            tokens: expert.records.iter().map(|r| r.executed_tokens).collect(),
            next: 0,
            frames_seen: 0,
        },
        wrist_frames: Vec::new(),
    };
    // Not asked to (options.wrist is off), the loop renders the wrist
    // camera for the policy that reads it: the same frames as the expert's.
    let replay = run_episode(
        &s.scene,
        &task,
        &pool,
        Driver::Learned(&mut policy),
        &opts(&s, true),
        2,
    )
    .unwrap();
    assert!(replay.outcome.success, "{}", replay.outcome.reason);
    assert_eq!(policy.wrist_frames.len(), expert.wrist_frames.len());
    assert!(policy.wrist_frames == expert.wrist_frames);
    // A scene without a wrist camera cannot serve it: an error, not a
    // policy stepping blind.
    let mut bare = s.scene.clone();
    bare.wrist_camera = None;
    policy.inner.next = 0;
    let err = run_episode(
        &bare,
        &task,
        &pool,
        Driver::Learned(&mut policy),
        &opts(&s, true),
        2,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("wrist_camera"), "{err}");
}

/// How far the goal's object ended from where it started, metres (x y),
/// after the expert's episode.
struct LastMove {
    object: ObjectRef,
    start: Option<nalgebra::Vector3<f64>>,
    moved_m: f64,
}

impl vla_sim::StepObserver for LastMove {
    fn wants_frames(&self) -> bool {
        false
    }

    fn on_episode_start(&mut self, start: &vla_sim::EpisodeStart<'_>) {
        let i = start.world.index_of(&self.object).unwrap();
        self.start = Some(start.world.pose(i).translation.vector);
    }

    fn on_step(&mut self, view: &vla_sim::StepView<'_>) {
        let i = view.world.index_of(&self.object).unwrap();
        let d = view.world.pose(i).translation.vector - self.start.unwrap();
        self.moved_m = d.x.hypot(d.y);
    }
}

#[test]
fn the_expert_pushes_as_far_as_it_is_told() {
    let s = suite();
    let object = ObjectRef::new("red", "cube");
    let task = task_for_goal(
        Goal::Push {
            object: object.clone(),
            direction: vla_sim::Direction::Left,
        },
        "push the red cube left",
        0,
        4,
    );
    let pushed = |distance_m: Option<f64>| {
        let mut o = opts(&s, false);
        o.expert_push_distance_m = distance_m;
        let mut observer = LastMove {
            object: object.clone(),
            start: None,
            moved_m: 0.0,
        };
        let ep = vla_sim::episode::run_episode_observed(
            &s.scene,
            &task,
            &[],
            Driver::Expert(NoiseConfig::none()),
            &o,
            4,
            Some(&mut observer),
        )
        .unwrap();
        assert!(ep.outcome.success, "{}", ep.outcome.reason);
        observer.moved_m
    };
    let default_m = pushed(None);
    let longer_m = pushed(Some(0.18));
    // The expert stops within half a centimetre of its distance, plus what
    // the object slides after the last step.
    assert!(
        (0.13..0.155).contains(&default_m),
        "default push {default_m} m"
    );
    assert!(
        (0.17..0.195).contains(&longer_m),
        "0.18 m push {longer_m} m"
    );
}

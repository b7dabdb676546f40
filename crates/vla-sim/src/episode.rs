//! The episode runner: builds the world for a task, then runs the closed
//! loop (render → policy or expert → tokens → action → controller → physics)
//! until the driver terminates or the step limit, lets the world settle and
//! judges success from the physical state.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use vla_core::tokenizer::ActionTokenizer;
use vla_core::{Action, ActionTokens, Instruction, JointState, Policy, RgbFrame};
use vla_render::DomainRandomization;

use crate::expert::{NoiseConfig, ScriptedExpert};
use crate::goal::{Goal, ObjectRef};
use crate::layout::sample_layout;
use crate::render::{SimCamera, WristCamera};
use crate::scene::SceneConfig;
use crate::success::{check, Verdict};
use crate::suite::Task;
use crate::world::World;
use crate::SimError;

/// Who chooses the actions.
pub enum Driver<'a> {
    /// The scripted expert, reading the true state, with this noise.
    Expert(NoiseConfig),
    /// A learned policy, seeing only camera frames, joint states and the instruction.
    Learned(&'a mut dyn Policy),
    /// DAgger data collection: the expert (no noise) labels every step, the
    /// learned policy's action is executed, or with probability
    /// `expert_prob` per step the expert's. The expert decides when the
    /// episode ends (a policy's early terminate is not executed), so the
    /// rollout visits every phase of the task.
    Dagger {
        /// The policy whose mistakes the data should correct.
        policy: &'a mut dyn Policy,
        /// Probability per step of executing the expert's action instead.
        expert_prob: f64,
        /// When the policy starts acting.
        takeover: Takeover,
    },
    /// Decoy approaches (session 15): the scripted expert (no noise) labels
    /// every step, but for the first steps a second expert, whose goal is
    /// to pick up another object of the scene (one sharing the goal
    /// object's colour when there is one, else the target's, else any),
    /// moves the arm: towards that object and down to it, for a number of
    /// steps drawn per episode between [`DECOY_MIN_STEPS`] and `max_steps`,
    /// and never as far as closing the gripper. Then the labelling expert's
    /// own actions are executed. The frames show the hand at the wrong
    /// object while the labels (and the recorded goal pixels) name the
    /// right one, so "the object near the hand" stops being a cue for which
    /// object is meant. A scene with no other object gives a plain
    /// demonstration. With `start_step` > 0 the labelling expert drives
    /// first and the decoy takes over at that step — from the hand on its
    /// way to, or already low at, the right object (session 16: the
    /// policy's keypoint drifts to a same-coloured object later in the
    /// episode) — unless that expert has already closed the gripper.
    Decoy {
        /// Most steps the decoy drives.
        max_steps: usize,
        /// Step at which the decoy starts driving (0: the first).
        start_step: usize,
    },
}

/// Fewest steps a decoy ([`Driver::Decoy`]) drives.
pub const DECOY_MIN_STEPS: usize = 8;

/// When the learned policy starts acting in a DAgger rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// From the first step: the round labels the approach and the grasp.
    Start,
    /// Once the expert has lifted the goal's object and starts carrying it
    /// (put in, stack, place next to): the expert alone drives until then
    /// and those steps are not recorded; at most `steps` steps follow. The
    /// round labels the carry, the lowering and the release, which rollouts
    /// from the start, cut short, never reach. A task without a carry (pick
    /// up, push) ends with nothing recorded.
    AfterLift {
        /// Steps recorded after the takeover, at most.
        steps: usize,
    },
}

/// How to run an episode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeOptions {
    /// Policy steps before the episode is cut off.
    pub max_steps: usize,
    /// Render a camera frame every step (always on for learned policies).
    pub render: bool,
    /// Keep the depth images too.
    pub keep_depth: bool,
    /// Render the scene's wrist camera every step too (always on for
    /// learned policies that read it). An error when the scene has none.
    pub wrist: bool,
    /// Keep per-step records and frames (for datasets).
    pub record: bool,
    /// Domain randomisation of the rendering.
    pub randomization: DomainRandomization,
    /// Policy steps the world runs, arm holding still, after the driver
    /// terminates (or the limit) before success is judged.
    pub settle_steps: usize,
    /// DAgger: the labelling expert lowers a held object from below carry
    /// height when its place is within this many metres
    /// ([`ScriptedExpert::with_lower_near_spot`]); `None`: it lifts to
    /// carry height first, as in its demonstrations.
    pub dagger_lower_near_spot_m: Option<f64>,
    /// How far every expert of the episode (the demonstrator, the DAgger
    /// labeller) pushes ([`ScriptedExpert::with_push_distance`]); `None`:
    /// [`crate::expert::DEFAULT_PUSH_DISTANCE_M`].
    pub expert_push_distance_m: Option<f64>,
}

impl EpisodeOptions {
    /// Defaults for a suite: its step limit, rendering on, no depth, no
    /// records, no randomisation, 0.5 s of settling at 10 Hz.
    pub fn new(max_steps: usize) -> Self {
        Self {
            max_steps,
            render: true,
            keep_depth: false,
            wrist: false,
            record: false,
            randomization: DomainRandomization::default(),
            settle_steps: 5,
            dagger_lower_near_spot_m: None,
            expert_push_distance_m: None,
        }
    }
}

/// One recorded step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step index (also the frame index).
    pub step: usize,
    /// Simulated time, seconds.
    pub time_secs: f64,
    /// Measured joints (arm, then fingers) when the frame was taken.
    pub joints: JointState,
    /// TCP position, world frame, metres.
    pub tcp_xyz_m: [f64; 3],
    /// TCP orientation, world frame, quaternion x y z w.
    pub tcp_quat_xyzw: [f64; 4],
    /// The action to learn (the expert's label, or the policy's output).
    pub action: Action,
    /// Its 8 tokens.
    pub tokens: ActionTokens,
    /// The action sent to the arm (detokenized from `executed_tokens`).
    pub executed: Action,
    /// Its 8 tokens.
    pub executed_tokens: ActionTokens,
    /// Whether the goal's object was held.
    pub holding: bool,
    /// Where the goal's object was (world frame, metres) when the frame was
    /// taken: privileged state, for auxiliary training targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_xyz_m: Option<[f64; 3]>,
    /// Where the goal's target object was (put in, stack, next to), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_xyz_m: Option<[f64; 3]>,
    /// Pixel `(u, v)` of the goal object's centre in this step's frame (when
    /// rendered and in view), likewise privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_px: Option<[f64; 2]>,
    /// Pixel `(u, v)` of the target object's centre, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_px: Option<[f64; 2]>,
    /// Pixel `(u, v)` of the TCP (between the fingertips), likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_px: Option<[f64; 2]>,
    /// Pixel `(u, v)` of the goal object's centre in this step's wrist
    /// frame (when the wrist camera was rendered and it is in view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrist_object_px: Option<[f64; 2]>,
    /// Pixel `(u, v)` of the target object's centre in the wrist frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrist_target_px: Option<[f64; 2]>,
}

/// What happened in an episode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpisodeOutcome {
    /// The task.
    pub task: Task,
    /// Whether the goal was met.
    pub success: bool,
    /// The success check's explanation.
    pub reason: String,
    /// Policy steps taken.
    pub steps: usize,
    /// Whether the driver said terminate (false: step limit).
    pub terminated: bool,
    /// Policy steps after which the goal's object was held (0: never
    /// grasped), to tell a failed grasp from a failed placement.
    #[serde(default)]
    pub held_steps: usize,
    /// Simulated seconds.
    pub sim_time_secs: f64,
}

/// An episode's outcome and, when recording, its data.
#[derive(Debug, Clone)]
pub struct Episode {
    /// The outcome.
    pub outcome: EpisodeOutcome,
    /// Per-step records (empty unless recording).
    pub records: Vec<StepRecord>,
    /// Camera frames, one per record.
    pub frames: Vec<RgbFrame>,
    /// Wrist-camera frames, one per record when the wrist camera was
    /// rendered ([`EpisodeOptions::wrist`]), else empty.
    pub wrist_frames: Vec<RgbFrame>,
    /// Depth images in metres, one per record when `keep_depth`.
    pub depth_m: Vec<Vec<f32>>,
    /// Camera intrinsics (row-major 3×3) of the frames.
    pub intrinsics_k: [f64; 9],
}

/// What an observer (e.g. a rerun recorder) sees after each policy step.
pub struct StepView<'a> {
    /// Step index within the episode.
    pub step: usize,
    /// The world after the step was executed.
    pub world: &'a World,
    /// The task text.
    pub instruction: &'a str,
    /// The camera frame the driver saw at the start of the step.
    pub frame: Option<&'a RgbFrame>,
    /// Its depth image, metres.
    pub depth_m: Option<&'a [f32]>,
    /// The camera that took it.
    pub camera: Option<&'a vla_render::Camera>,
    /// The wrist camera's frame at the start of the step, when rendered.
    pub wrist_frame: Option<&'a RgbFrame>,
    /// The 8 tokens executed.
    pub tokens: ActionTokens,
    /// The action they decode to.
    pub action: Action,
}

/// What an observer sees when an episode starts, before the first step.
pub struct EpisodeStart<'a> {
    /// The freshly built world.
    pub world: &'a World,
    /// Its scene (camera, table, light).
    pub scene: &'a SceneConfig,
    /// The task text.
    pub instruction: &'a str,
    /// The rendering randomisation of the episode.
    pub randomization: DomainRandomization,
    /// The episode seed (drives the randomisation).
    pub seed: u64,
}

/// Called by [`run_episode_observed`]: once when the episode starts, then
/// once per policy step.
pub trait StepObserver {
    /// Whether the loop should render camera frames for the observer even
    /// when the driver does not look at them. An observer that renders for
    /// itself (e.g. off the control thread, from [`crate::render::primitives`])
    /// returns `false`; frames the driver needs are rendered and shown anyway.
    fn wants_frames(&self) -> bool {
        true
    }

    /// The episode starts; `start.world` is its initial state.
    fn on_episode_start(&mut self, _start: &EpisodeStart<'_>) {}

    /// One step happened.
    fn on_step(&mut self, view: &StepView<'_>);
}

/// Builds the world of `task`: its named objects and distractors drawn
/// from `distractor_pool`.
pub fn build_world(
    scene: &SceneConfig,
    task: &Task,
    distractor_pool: &[ObjectRef],
) -> Result<World, SimError> {
    task.goal.validate(scene)?;
    let layout = sample_layout(
        scene,
        &task.goal,
        task.distractors,
        distractor_pool,
        task.layout_seed,
    )?;
    World::new(scene, &layout)
}

/// Runs one episode. `seed` drives expert noise and rendering randomisation.
pub fn run_episode(
    scene: &SceneConfig,
    task: &Task,
    distractor_pool: &[ObjectRef],
    driver: Driver<'_>,
    options: &EpisodeOptions,
    seed: u64,
) -> Result<Episode, SimError> {
    run_episode_observed(scene, task, distractor_pool, driver, options, seed, None)
}

/// [`run_episode`], calling `observer` at the start and after every policy
/// step (frames are rendered for it when it [wants them](StepObserver::wants_frames)).
pub fn run_episode_observed(
    scene: &SceneConfig,
    task: &Task,
    distractor_pool: &[ObjectRef],
    mut driver: Driver<'_>,
    options: &EpisodeOptions,
    seed: u64,
    mut observer: Option<&mut dyn StepObserver>,
) -> Result<Episode, SimError> {
    let mut world = build_world(scene, task, distractor_pool)?;
    let tokenizer = ActionTokenizer::default();
    let instruction = Instruction::new(&task.instruction)?;
    let learned = matches!(driver, Driver::Learned(_) | Driver::Dagger { .. });
    let render = options.render || learned || observer.as_deref().is_some_and(|o| o.wants_frames());
    let mut camera = if render {
        Some(SimCamera::new(scene, options.randomization, seed)?)
    } else {
        None
    };
    let wants_wrist = match &driver {
        Driver::Learned(p) | Driver::Dagger { policy: p, .. } => p.wrist_frame_size_px().is_some(),
        _ => false,
    };
    let mut wrist_camera = if options.wrist || wants_wrist {
        Some(
            WristCamera::new(scene, options.randomization, seed)?.ok_or_else(|| {
                SimError::invalid("wrist_camera", "the scene has no [wrist_camera]")
            })?,
        )
    } else {
        None
    };
    let intrinsics_k = camera
        .as_ref()
        .map(|c| c.camera().intrinsics_k())
        .unwrap_or_else(|| crate::render::scene_camera(scene).intrinsics_k());
    let push_distance = |expert: ScriptedExpert| match options.expert_push_distance_m {
        Some(distance_m) => expert.with_push_distance(distance_m),
        None => expert,
    };
    let mut expert = match &mut driver {
        Driver::Expert(noise) => Some(push_distance(ScriptedExpert::new(
            task.goal.clone(),
            *noise,
            seed,
        ))),
        Driver::Learned(policy) => {
            policy.reset(&instruction)?;
            None
        }
        Driver::Dagger { policy, .. } => {
            policy.reset(&instruction)?;
            let expert = push_distance(ScriptedExpert::new(
                task.goal.clone(),
                NoiseConfig::none(),
                seed,
            ));
            Some(match options.dagger_lower_near_spot_m {
                Some(radius_m) => expert.with_lower_near_spot(radius_m),
                None => expert,
            })
        }
        Driver::Decoy { .. } => Some(push_distance(ScriptedExpert::new(
            task.goal.clone(),
            NoiseConfig::none(),
            seed,
        ))),
    };
    let mut mix_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xda66_e500);
    // The decoy expert, when it starts and how many steps it drives
    // (Driver::Decoy).
    let decoy_start = match &driver {
        Driver::Decoy { start_step, .. } => *start_step,
        _ => 0,
    };
    let (mut decoy, decoy_steps) = match &driver {
        Driver::Decoy { max_steps, .. } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0dec_0e00);
            let steps = rng.gen_range(DECOY_MIN_STEPS..=(*max_steps).max(DECOY_MIN_STEPS));
            let decoy = decoy_object(&world, &task.goal, &mut rng).map(|object| {
                ScriptedExpert::new(Goal::PickUp { object }, NoiseConfig::none(), seed)
            });
            (decoy, steps)
        }
        _ => (None, 0),
    };
    if let Some(obs) = observer.as_deref_mut() {
        obs.on_episode_start(&EpisodeStart {
            world: &world,
            scene,
            instruction: &task.instruction,
            randomization: options.randomization,
            seed,
        });
    }
    let object_index = world.index_of(task.goal.object());
    let target_index = task.goal.target().and_then(|t| world.index_of(t));
    let mut records = Vec::new();
    let mut frames = Vec::new();
    let mut wrist_frames = Vec::new();
    let mut depth = Vec::new();
    let mut terminated = false;
    let mut last_gripper = 0.0;
    let mut held_steps = 0;
    // Steps since the policy took over (DAgger), `None` before.
    let mut since_takeover: Option<usize> = match &driver {
        Driver::Dagger {
            takeover: Takeover::AfterLift { .. },
            ..
        } => None,
        _ => Some(0),
    };
    for step in 0..options.max_steps {
        let (frame, depth_now) = match camera.as_mut() {
            Some(c) => {
                let out = c.render(&world)?;
                (Some(out.rgb), Some(out.depth_m))
            }
            None => (None, None),
        };
        let (wrist_frame, wrist_cam) = match wrist_camera.as_mut() {
            Some(w) => {
                let (out, cam) = w.render(&world)?;
                (Some(out.rgb), Some(cam))
            }
            None => (None, None),
        };
        let joints = world.joint_state()?;
        // The expert's actions go through the default tokenizer, as a
        // policy's would; a learned policy's tokens are in its own
        // tokenizer (its checkpoint's bounds), so its decoded action is
        // executed as it is.
        let (label, label_tokens, executed_tokens, executed) = match (&mut driver, expert.as_mut())
        {
            (Driver::Expert(_), Some(ex)) => {
                let s = ex.act(&world)?;
                let executed_tokens = tokenizer.tokenize(&s.executed)?;
                (
                    s.label,
                    tokenizer.tokenize(&s.label)?,
                    executed_tokens,
                    tokenizer.detokenize(&executed_tokens)?,
                )
            }
            (Driver::Learned(policy), _) => {
                let frame = frame.as_ref().ok_or_else(|| {
                    SimError::Render("a learned policy needs camera frames".into())
                })?;
                let s = policy.act_with_wrist(frame, wrist_frame.as_ref(), &joints)?;
                (s.action, s.tokens, s.tokens, s.action)
            }
            (
                Driver::Dagger {
                    policy,
                    expert_prob,
                    ..
                },
                Some(ex),
            ) => {
                let s = ex.act(&world)?;
                if since_takeover.is_none() && ex.carrying() {
                    since_takeover = Some(0);
                }
                if since_takeover.is_none() {
                    // The expert alone, unrecorded, until it carries the object.
                    if s.label.terminate {
                        terminated = true;
                        last_gripper = s.label.gripper;
                        break;
                    }
                    world.step(&s.label)?;
                    if object_index.is_some() && world.held() == object_index {
                        held_steps += 1;
                    }
                    continue;
                }
                let frame = frame.as_ref().ok_or_else(|| {
                    SimError::Render("a learned policy needs camera frames".into())
                })?;
                let p = policy.act_with_wrist(frame, wrist_frame.as_ref(), &joints)?;
                let chosen = if mix_rng.gen::<f64>() < *expert_prob {
                    s.executed
                } else {
                    p.action
                };
                let executed = Action {
                    terminate: s.label.terminate,
                    ..chosen
                };
                (
                    s.label,
                    tokenizer.tokenize(&s.label)?,
                    tokenizer.tokenize(&executed)?,
                    executed,
                )
            }
            (Driver::Decoy { .. }, Some(ex)) => {
                let s = ex.act(&world)?;
                let mut executed = s.executed;
                // A late decoy only interrupts an approach, never a grasp.
                if step == decoy_start && !ex.approaching() {
                    decoy = None;
                }
                let decoy_drives = step
                    .checked_sub(decoy_start)
                    .is_some_and(|k| k < decoy_steps);
                if let Some(d) = decoy.as_mut().filter(|_| decoy_drives) {
                    let d_step = d.act(&world)?;
                    // Up to, not including, the decoy's grasp.
                    if d.approaching() {
                        executed = Action {
                            terminate: false,
                            ..d_step.executed
                        };
                    } else {
                        decoy = None;
                    }
                }
                (
                    s.label,
                    tokenizer.tokenize(&s.label)?,
                    tokenizer.tokenize(&executed)?,
                    executed,
                )
            }
            (Driver::Expert(_) | Driver::Dagger { .. } | Driver::Decoy { .. }, None) => {
                return Err(SimError::Goal("expert missing".into()));
            }
        };
        if options.record {
            let tcp = world.world_from_tcp()?;
            let q = tcp.rotation.quaternion();
            let t = tcp.translation.vector;
            records.push(StepRecord {
                step,
                time_secs: world.time_secs(),
                joints,
                tcp_xyz_m: [t.x, t.y, t.z],
                tcp_quat_xyzw: [q.i, q.j, q.k, q.w],
                action: label,
                tokens: label_tokens,
                executed,
                executed_tokens,
                holding: object_index.is_some() && world.held() == object_index,
                object_xyz_m: object_index.map(|i| xyz(&world, i)),
                target_xyz_m: target_index.map(|i| xyz(&world, i)),
                object_px: pixel_of(&world, object_index, camera.as_ref()),
                target_px: pixel_of(&world, target_index, camera.as_ref()),
                tcp_px: camera.as_ref().and_then(|c| {
                    let (u, v, _) = c.camera().project(&nalgebra::Point3::from(t))?;
                    Some([u, v])
                }),
                wrist_object_px: projected(&world, object_index, wrist_cam.as_ref()),
                wrist_target_px: projected(&world, target_index, wrist_cam.as_ref()),
            });
        }
        last_gripper = executed.gripper;
        if executed.terminate {
            terminated = true;
        } else {
            world.step(&executed)?;
            if object_index.is_some() && world.held() == object_index {
                held_steps += 1;
            }
        }
        if let Some(obs) = observer.as_deref_mut() {
            obs.on_step(&StepView {
                step,
                world: &world,
                instruction: &task.instruction,
                frame: frame.as_ref(),
                depth_m: depth_now.as_deref(),
                camera: camera.as_ref().map(|c| c.camera()),
                wrist_frame: wrist_frame.as_ref(),
                tokens: executed_tokens,
                action: executed,
            });
        }
        if options.record {
            if let Some(f) = frame {
                frames.push(f);
            }
            if let Some(f) = wrist_frame {
                wrist_frames.push(f);
            }
            if options.keep_depth {
                if let Some(d) = depth_now {
                    depth.push(d);
                }
            }
        }
        if terminated {
            break;
        }
        if let (
            Driver::Dagger {
                takeover: Takeover::AfterLift { steps },
                ..
            },
            Some(n),
        ) = (&driver, since_takeover.as_mut())
        {
            *n += 1;
            if *n >= *steps {
                break;
            }
        }
    }
    let steps = if terminated {
        world.steps() + 1
    } else {
        world.steps()
    };
    for _ in 0..options.settle_steps {
        world.step(&Action::hold(last_gripper))?;
    }
    let Verdict { success, reason } = check(&world, &task.goal);
    Ok(Episode {
        outcome: EpisodeOutcome {
            task: task.clone(),
            success,
            reason,
            steps,
            terminated,
            held_steps,
            sim_time_secs: world.time_secs(),
        },
        records,
        frames,
        wrist_frames,
        depth_m: depth,
        intrinsics_k,
    })
}

/// Position of object `i`, world frame, metres.
fn xyz(world: &World, i: usize) -> [f64; 3] {
    let t = world.pose(i).translation.vector;
    [t.x, t.y, t.z]
}

/// Where object `i`'s centre appears in the camera's frame, pixels.
fn pixel_of(world: &World, i: Option<usize>, camera: Option<&SimCamera>) -> Option<[f64; 2]> {
    projected(world, i, camera.map(|c| c.camera()))
}

/// Where object `i`'s centre appears in `camera`'s image, pixels (`None`
/// behind it).
fn projected(
    world: &World,
    i: Option<usize>,
    camera: Option<&vla_render::Camera>,
) -> Option<[f64; 2]> {
    let t = world.pose(i?).translation.vector;
    let (u, v, _) = camera?.project(&nalgebra::Point3::new(t.x, t.y, t.z))?;
    Some([u, v])
}

/// A task for a goal given directly (e.g. parsed from `vla sim --task`):
/// the text as instruction, `distractors` extra objects, layout from `seed`.
pub fn task_for_goal(goal: Goal, instruction: &str, distractors: usize, seed: u64) -> Task {
    Task {
        goal,
        instruction: instruction.trim().to_string(),
        split: None,
        template: None,
        layout_seed: seed,
        distractors,
        distractor_split: None,
    }
}

/// The object a decoy ([`Driver::Decoy`]) approaches: another object of the
/// scene sharing the goal object's colour, else the target's, else any
/// other; `None` when the task names every object in the scene.
fn decoy_object(world: &World, goal: &Goal, rng: &mut ChaCha8Rng) -> Option<ObjectRef> {
    let named = goal.named_objects();
    let others: Vec<&ObjectRef> = world
        .objects()
        .iter()
        .map(|o| &o.object)
        .filter(|o| !named.contains(o))
        .collect();
    let colour_of = |r: Option<&ObjectRef>| r.map(|r| r.color.clone());
    for colour in [colour_of(Some(goal.object())), colour_of(goal.target())]
        .into_iter()
        .flatten()
    {
        let same: Vec<&&ObjectRef> = others.iter().filter(|o| o.color == colour).collect();
        if !same.is_empty() {
            return Some((*same[rng.gen_range(0..same.len())]).clone());
        }
    }
    if others.is_empty() {
        None
    } else {
        Some(others[rng.gen_range(0..others.len())].clone())
    }
}

//! Diagnostics: what perfect keypoints would be worth. Runs `vla eval`'s
//! episodes (same tasks, layouts and seeds, the policy's own actions) with
//! some of the policy's trained camera keypoints — 0 the goal object, 1 the
//! target object, 2 the TCP — pinned at their true pixels instead of the
//! network's estimates: the simulator's positions, projected through its
//! camera from the state each frame is rendered from (the world after the
//! previous step), so the pin has no lag. The first frame of an episode
//! keeps the network's own estimates. `--pin-first` instead pins the
//! listed keypoints on the first frame only (projected from the initial
//! world through the scene's nominal camera) and leaves every later frame
//! to the network: for policies that read the first frame's keypoints
//! (`first_keypoints`), what a perfect first look would be worth. Without
//! either nothing is pinned, which must reproduce `vla eval`'s figures.
//! `ORACLE_PIN_BEYOND_PX=X` pins a keypoint only on frames where the
//! network's own estimate is more than X px from the truth (its gross
//! errors fixed, its precision kept); `ORACLE_PIN_WITHIN_PX=X` only where
//! it is within X px (the converse). Each costs one more encoder pass a step.
//! Prints successes per family (stdout) and one line per failed episode
//! with its reason (stderr).
//!
//! ```sh
//! cargo build --release -p vla-cli --example oracle_keypoints
//! $CARGO_TARGET_DIR/release/examples/oracle_keypoints POLICY_DIR SPLIT FIRST_SEED COUNT [--pin 0,1,2 | --pin-first 0,1]
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use vla_core::{Instruction, JointState, Policy, PolicyError, PolicyStep, RgbFrame};
use vla_policy::VlaPolicy;
use vla_sim::episode::{run_episode_observed, Driver, EpisodeOptions};
use vla_sim::{EpisodeStart, ObjectRef, Split, StepObserver, StepView, TaskSuite};

/// Keypoint `k`'s true pixel (model-image pixels), written by the observer,
/// read by the policy.
type Shared = Rc<RefCell<[Option<[f32; 2]>; 3]>>;

/// The policy with its keypoints pinned where the observer says.
struct Pinned {
    inner: VlaPolicy,
    pins: Shared,
    which: Vec<usize>,
    /// Pin only frames where the network's own estimate is farther than
    /// this from the true pixel (`ORACLE_PIN_BEYOND_PX`): what fixing its
    /// gross errors alone would be worth.
    beyond_px: Option<f32>,
    /// Pin only frames where it is within this (`ORACLE_PIN_WITHIN_PX`):
    /// what sharper estimates alone would be worth.
    within_px: Option<f32>,
    /// Frames pinned and frames seen, per listed keypoint.
    counts: Vec<(usize, usize)>,
    /// Set by the observer while it traces an episode.
    trace_keypoints: Rc<std::cell::Cell<bool>>,
    /// Set by the observer while it traces an episode with `ORACLE_TRACE_TOKENS`.
    trace_tokens: Rc<std::cell::Cell<bool>>,
    /// This frame's true pixels (whether or not they are pinned).
    truth: Shared,
}

impl Policy for Pinned {
    fn name(&self) -> &str {
        "vla-policy, keypoints pinned"
    }

    fn reset(&mut self, instruction: &Instruction) -> Result<(), PolicyError> {
        *self.pins.borrow_mut() = [None; 3];
        self.inner.reset(instruction)
    }

    fn act(&mut self, frame: &RgbFrame, joints: &JointState) -> Result<PolicyStep, PolicyError> {
        let pins = *self.pins.borrow();
        if self.trace_tokens.get() {
            // Δx, Δy, Δz: the probability of a move below −3 mm, within
            // ±3 mm and above +3 mm, and the most likely bin's value (cm).
            if let Some(logits) = self
                .inner
                .token_logits(frame, Some(joints))
                .map_err(PolicyError::from_source)?
            {
                let tokenizer = self.inner.tokenizer();
                let summary: Vec<String> = (1..=3)
                    .map(|pos| {
                        let l = &logits[pos];
                        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let w: Vec<f64> = l.iter().map(|&x| f64::from(x - max).exp()).collect();
                        let total: f64 = w.iter().sum();
                        let (mut neg, mut zero, mut pos_) = (0.0, 0.0, 0.0);
                        let mut best = (0usize, 0.0f64);
                        for (bin, &wi) in w.iter().enumerate() {
                            let v = tokenizer.value_of(pos - 1, bin as u32);
                            let p = wi / total;
                            if v < -0.003 {
                                neg += p;
                            } else if v > 0.003 {
                                pos_ += p;
                            } else {
                                zero += p;
                            }
                            if p > best.1 {
                                best = (bin, p);
                            }
                        }
                        format!(
                            "{}[-{:.2} 0{:.2} +{:.2} mode {:+.2}]",
                            ["dx", "dy", "dz"][pos - 1],
                            neg,
                            zero,
                            pos_,
                            tokenizer.value_of(pos - 1, best.0 as u32) * 100.0
                        )
                    })
                    .collect();
                eprintln!(
                    "    token mass (<-3 mm, ±3 mm, >3 mm): {}",
                    summary.join(" ")
                );
            }
        }
        if self.trace_keypoints.get() {
            // The true pixels of this frame are the pins' (unpinned runs
            // compute them too); print the network's own read against them.
            let truth = *self.truth.borrow();
            if let Some(own) = self
                .inner
                .read_keypoints_px(frame, Some(joints))
                .map_err(PolicyError::from_source)?
            {
                let err = |k: usize| match (truth[k], own.get(k)) {
                    (Some(t), Some(o)) => format!("({:+.1}, {:+.1})", o[0] - t[0], o[1] - t[1]),
                    _ => "-".into(),
                };
                eprintln!(
                    "    keypoint error px (read - true): goal {} target {} tcp {}",
                    err(0),
                    err(1),
                    err(2)
                );
            }
        }
        let own = if self.beyond_px.is_some() || self.within_px.is_some() {
            for &k in &self.which {
                self.inner
                    .pin_keypoint_px(k, None)
                    .map_err(PolicyError::from_source)?;
            }
            self.inner
                .keypoints_px(frame, Some(joints))
                .map_err(PolicyError::from_source)?
        } else {
            None
        };
        for (i, &k) in self.which.iter().enumerate() {
            let mut pin = pins[k];
            if let (Some(truth), Some(own)) = (pin, own.as_ref().and_then(|o| o.get(k))) {
                let err_px = (truth[0] - own[0]).hypot(truth[1] - own[1]);
                let keep = self.beyond_px.is_none_or(|b| err_px > b)
                    && self.within_px.is_none_or(|w| err_px <= w);
                if !keep {
                    pin = None;
                }
            }
            self.counts[i].0 += usize::from(pin.is_some());
            self.counts[i].1 += 1;
            self.inner
                .pin_keypoint_px(k, pin)
                .map_err(PolicyError::from_source)?;
        }
        self.inner.act(frame, joints)
    }
}

/// Projects the goal object, the target object and the TCP after every step.
struct TruePixels {
    object: ObjectRef,
    target: Option<ObjectRef>,
    pins: Shared,
    scale: f64,
    /// Pin on the first frame only (`--pin-first`).
    first_only: bool,
    /// Print the object's offset from the target and the action every step.
    trace: bool,
    /// The objects the gripper held at some step of the episode (colour
    /// and shape), to tell a missed grasp from a grasp of the wrong object.
    held: std::collections::BTreeSet<String>,
    /// Shared with the policy: on while this episode is traced.
    trace_keypoints: Rc<std::cell::Cell<bool>>,
    /// Shared with the policy: on while this episode's tokens are traced.
    trace_tokens: Rc<std::cell::Cell<bool>>,
    /// Shared with the policy: the true pixels, pinned or not.
    truth: Shared,
}

impl StepObserver for TruePixels {
    fn on_episode_start(&mut self, start: &EpisodeStart<'_>) {
        self.trace_keypoints
            .set(self.trace && std::env::var_os("ORACLE_TRACE_KEYPOINTS").is_some());
        self.trace_tokens
            .set(self.trace && std::env::var_os("ORACLE_TRACE_TOKENS").is_some());
        *self.truth.borrow_mut() = [None; 3];
        let mut pins = [None; 3];
        if self.first_only {
            let camera = vla_sim::render::scene_camera(start.scene);
            let project = |p: nalgebra::Vector3<f64>| {
                camera
                    .project(&nalgebra::Point3::from(p))
                    .map(|(u, v, _)| [(u * self.scale) as f32, (v * self.scale) as f32])
            };
            let centre = |o: &ObjectRef| {
                start
                    .world
                    .index_of(o)
                    .and_then(|i| project(start.world.pose(i).translation.vector))
            };
            let tcp = start
                .world
                .world_from_tcp()
                .ok()
                .and_then(|p| project(p.translation.vector));
            pins = [
                centre(&self.object),
                self.target.as_ref().and_then(centre),
                tcp,
            ];
        }
        *self.pins.borrow_mut() = pins;
    }

    fn on_step(&mut self, view: &StepView<'_>) {
        if let Some(i) = view.world.held() {
            let o = &view.world.objects()[i].object;
            self.held.insert(format!("{} {}", o.color, o.shape));
        }
        let Some(camera) = view.camera else {
            return;
        };
        let project = |p: nalgebra::Vector3<f64>| {
            camera
                .project(&nalgebra::Point3::from(p))
                .map(|(u, v, _)| [(u * self.scale) as f32, (v * self.scale) as f32])
        };
        let centre = |o: &ObjectRef| {
            view.world
                .index_of(o)
                .and_then(|i| project(view.world.pose(i).translation.vector))
        };
        let tcp = view
            .world
            .world_from_tcp()
            .ok()
            .and_then(|p| project(p.translation.vector));
        if self.trace {
            let pos = |o: &ObjectRef| {
                view.world
                    .index_of(o)
                    .map(|i| view.world.pose(i).translation.vector)
            };
            // Offsets in cm: the object from the target (when there is
            // one) and the TCP from the object, then the executed move.
            let cm = |v: nalgebra::Vector3<f64>| {
                format!(
                    "({:+.1}, {:+.1}, {:+.1})",
                    v.x * 100.0,
                    v.y * 100.0,
                    v.z * 100.0
                )
            };
            if let Some(o) = pos(&self.object) {
                let target = self.target.as_ref().and_then(pos).map(|t| cm(o - t));
                let tcp = view
                    .world
                    .world_from_tcp()
                    .ok()
                    .map(|p| cm(p.translation.vector - o));
                let a = &view.action;
                eprintln!(
                    "  step {:3} obj-target {} tcp-obj {} held {} action ({:+.2}, {:+.2}, {:+.2}) cm grip {:.1} term {}",
                    view.step,
                    target.unwrap_or_else(|| "-".into()),
                    tcp.unwrap_or_else(|| "-".into()),
                    view.world.held().is_some(),
                    a.translation_m[0] * 100.0,
                    a.translation_m[1] * 100.0,
                    a.translation_m[2] * 100.0,
                    a.gripper,
                    a.terminate
                );
            }
        }
        let truth = [
            centre(&self.object),
            self.target.as_ref().and_then(centre),
            tcp,
        ];
        *self.truth.borrow_mut() = truth;
        *self.pins.borrow_mut() = if self.first_only { [None; 3] } else { truth };
    }
}

fn main() -> Result<()> {
    const USAGE: &str =
        "usage: oracle_keypoints POLICY_DIR SPLIT FIRST_SEED COUNT [--pin 0,1,2 | --pin-first 0,1]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, split, first, count, rest @ ..] = args.as_slice() else {
        bail!("{USAGE}");
    };
    let first_only = matches!(rest, [flag, _] if flag == "--pin-first");
    let which: Vec<usize> = match rest {
        [] => Vec::new(),
        [flag, list] if flag == "--pin" || flag == "--pin-first" => list
            .split(',')
            .map(|k| match k.parse::<usize>() {
                Ok(k) if k < 3 => Ok(k),
                _ => bail!("{flag} takes keypoints among 0 (goal object), 1 (target), 2 (TCP)"),
            })
            .collect::<Result<_>>()?,
        _ => bail!("{USAGE}"),
    };
    let split = match split.as_str() {
        "train" => Split::Train,
        "eval" => Split::Eval,
        other => bail!("split {other:?}: use train or eval"),
    };
    let first: u64 = first.parse().context("FIRST_SEED")?;
    // ORACLE_TRACE=SEED[,SEED...] prints those episodes step by step on stderr.
    // A comma-separated list traces each listed episode.
    let trace_seeds: Vec<u64> = std::env::var("ORACLE_TRACE")
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    let count: u64 = count.parse().context("COUNT")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = TaskSuite::load("default", &root)?;
    let inner = VlaPolicy::load(Path::new(dir))?;
    let model_px = inner.config().model.image_size_px as f64;
    // The camera renders at its own size; keypoint pixels are the model's.
    let scale = model_px / f64::from(suite.scene.camera.width_px);
    let pins: Shared = Rc::new(RefCell::new([None; 3]));
    let truth: Shared = Rc::new(RefCell::new([None; 3]));
    let trace_keypoints = Rc::new(std::cell::Cell::new(false));
    let trace_tokens = Rc::new(std::cell::Cell::new(false));
    let mut policy = Pinned {
        inner,
        pins: pins.clone(),
        which: which.clone(),
        beyond_px: std::env::var("ORACLE_PIN_BEYOND_PX")
            .ok()
            .and_then(|v| v.parse().ok()),
        within_px: std::env::var("ORACLE_PIN_WITHIN_PX")
            .ok()
            .and_then(|v| v.parse().ok()),
        counts: vec![(0, 0); which.len()],
        trace_keypoints: trace_keypoints.clone(),
        trace_tokens: trace_tokens.clone(),
        truth: truth.clone(),
    };
    let mut per_family: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for seed in first..first + count {
        let task = suite.sample_task(split, seed)?;
        let pool = suite.distractor_pool(task.distractor_split);
        let mut options = EpisodeOptions::new(suite.config.max_steps);
        options.render = false;
        let mut observer = TruePixels {
            object: task.goal.object().clone(),
            target: task.goal.target().cloned(),
            pins: pins.clone(),
            scale,
            first_only,
            trace: trace_seeds.contains(&seed),
            held: Default::default(),
            trace_keypoints: trace_keypoints.clone(),
            trace_tokens: trace_tokens.clone(),
            truth: truth.clone(),
        };
        let episode = run_episode_observed(
            &suite.scene,
            &task,
            &pool,
            Driver::Learned(&mut policy),
            &options,
            seed,
            Some(&mut observer),
        )
        .with_context(|| format!("seed {seed}"))?;
        if !episode.outcome.success {
            // One line per failure on stderr, to tell aim from grasp.
            eprintln!(
                "seed {seed} {}: held {} steps, {} steps, terminated {}: {}; objects held: {:?}",
                task.goal.family().as_str(),
                episode.outcome.held_steps,
                episode.outcome.steps,
                episode.outcome.terminated,
                episode.outcome.reason,
                observer.held
            );
        }
        let entry = per_family.entry(task.goal.family().as_str()).or_default();
        entry.0 += usize::from(episode.outcome.success);
        entry.1 += 1;
    }
    let (successes, episodes) = per_family
        .values()
        .fold((0, 0), |(s, n), (a, b)| (s + a, n + b));
    println!(
        "{} split, seeds {first}..{}, pinned {which:?}{}: {successes}/{episodes} succeeded; {}",
        if split == Split::Train {
            "train"
        } else {
            "eval"
        },
        first + count,
        if first_only {
            " on the first frame"
        } else {
            ""
        },
        per_family
            .iter()
            .map(|(f, (s, n))| format!("{f} {s}/{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if policy.beyond_px.is_some() || policy.within_px.is_some() {
        println!(
            "pinned frames (beyond {:?} px, within {:?} px): {}",
            policy.beyond_px,
            policy.within_px,
            which
                .iter()
                .zip(&policy.counts)
                .map(|(k, (p, n))| format!("keypoint {k} {p}/{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

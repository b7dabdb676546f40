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
}

impl StepObserver for TruePixels {
    fn on_episode_start(&mut self, start: &EpisodeStart<'_>) {
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
            if let (Some(o), Some(t)) = (pos(&self.object), self.target.as_ref().and_then(pos)) {
                let a = &view.action;
                eprintln!(
                    "  step {:3} obj-target ({:+.1}, {:+.1}, {:+.1}) cm  action ({:+.2}, {:+.2}, {:+.2}) cm grip {:.1} term {}",
                    view.step,
                    (o.x - t.x) * 100.0,
                    (o.y - t.y) * 100.0,
                    (o.z - t.z) * 100.0,
                    a.translation_m[0] * 100.0,
                    a.translation_m[1] * 100.0,
                    a.translation_m[2] * 100.0,
                    a.gripper,
                    a.terminate
                );
            }
        }
        *self.pins.borrow_mut() = if self.first_only {
            [None; 3]
        } else {
            [
                centre(&self.object),
                self.target.as_ref().and_then(centre),
                tcp,
            ]
        };
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
    // ORACLE_TRACE=SEED prints that episode step by step on stderr.
    let trace_seed: Option<u64> = std::env::var("ORACLE_TRACE")
        .ok()
        .and_then(|s| s.parse().ok());
    let count: u64 = count.parse().context("COUNT")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = TaskSuite::load("default", &root)?;
    let inner = VlaPolicy::load(Path::new(dir))?;
    let model_px = inner.config().model.image_size_px as f64;
    // The camera renders at its own size; keypoint pixels are the model's.
    let scale = model_px / f64::from(suite.scene.camera.width_px);
    let pins: Shared = Rc::new(RefCell::new([None; 3]));
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
            trace: trace_seed == Some(seed),
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
                "seed {seed} {}: held {} steps, {} steps, terminated {}: {}",
                task.goal.family().as_str(),
                episode.outcome.held_steps,
                episode.outcome.steps,
                episode.outcome.terminated,
                episode.outcome.reason
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

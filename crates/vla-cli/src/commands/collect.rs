//! `vla collect`: scripted-expert demonstrations of a suite's split, written
//! in the documented dataset format, with a progress bar and the throughput.
//! With `--dagger POLICY` the learned policy drives and the expert labels
//! (DAgger, Ross et al. 2011).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use vla_core::tokenizer::ActionTokenizer;
use vla_render::DomainRandomization;
use vla_sim::dataset::{DatasetMeta, DatasetWriter, FORMAT, VERSION};
use vla_sim::episode::{run_episode, Driver, EpisodeOptions, Takeover};
use vla_sim::{NoiseConfig, Split, TaskSuite};

use super::shared::{choose_policy, repo_root, PolicyChoice};
use crate::cli::CollectArgs;

/// Runs `vla collect`.
pub fn run(args: &CollectArgs) -> Result<()> {
    if args.episodes == 0 {
        bail!("--episodes must be at least 1");
    }
    let split: Split = args.split.parse()?;
    let root = repo_root()?;
    let suite = TaskSuite::load(&args.suite, &root)?;
    let noise = if args.recovery || args.varied_approach {
        match (args.recovery, args.varied_approach) {
            (true, false) => NoiseConfig::recovery(),
            (false, _) => NoiseConfig::varied_approach(),
            (true, true) => NoiseConfig {
                varied_approach: true,
                ..NoiseConfig::recovery()
            },
        }
    } else if args.near_place {
        NoiseConfig::near_place()
    } else if args.noise {
        NoiseConfig::demonstrations()
    } else {
        NoiseConfig::none()
    };
    let max_steps = match args.max_steps {
        Some(0) => bail!("--max-steps must be at least 1"),
        Some(n) => n.min(suite.config.max_steps),
        None => suite.config.max_steps,
    };
    // After the lift, --max-steps bounds the steps from the takeover; the
    // episode itself keeps the suite's limit.
    let takeover = if args.after_lift {
        Takeover::AfterLift { steps: max_steps }
    } else {
        Takeover::Start
    };
    let mut options = EpisodeOptions::new(if args.after_lift {
        suite.config.max_steps
    } else {
        max_steps
    });
    options.render = true;
    options.record = true;
    if let Some(radius_m) = args.lower_near_spot_m {
        if !(radius_m.is_finite() && radius_m >= 0.0) {
            bail!("--lower-near-spot-m must be a distance ≥ 0 in metres, got {radius_m}");
        }
        options.dagger_lower_near_spot_m = Some(radius_m);
    }
    if let Some(distance_m) = args.push_distance_m {
        if !(distance_m.is_finite() && (0.10..=0.30).contains(&distance_m)) {
            bail!(
                "--push-distance-m must be between 0.10 m (what success needs) and 0.30 m, \
                 got {distance_m}"
            );
        }
        options.expert_push_distance_m = Some(distance_m);
    }
    options.keep_depth = args.depth;
    options.wrist = args.wrist_camera;
    if args.randomize {
        options.randomization = DomainRandomization::moderate();
    }
    let scene = &suite.scene;
    let joint_names = {
        let world = vla_sim::episode::build_world(
            scene,
            &suite.sample_task(split, args.seed)?,
            &suite.distractor_pool(None),
        )?;
        world.joint_state()?.names().to_vec()
    };
    let meta = DatasetMeta {
        format: FORMAT.into(),
        version: VERSION,
        suite: suite.config.name.clone(),
        scene: scene.name.clone(),
        split: split.as_str().into(),
        width_px: scene.camera.width_px,
        height_px: scene.camera.height_px,
        encoding: "rgb8".into(),
        depth: args.depth,
        camera_k: vla_sim::render::scene_camera(scene).intrinsics_k(),
        policy_rate_hz: scene.physics.policy_rate_hz,
        tokenizer: ActionTokenizer::default(),
        joint_names,
        noise,
        episodes: 0,
        steps: 0,
        dagger: None,
        decoy_max_steps: args.decoy_approach,
        decoy_start_step: args
            .decoy_approach
            .map(|_| args.decoy_start)
            .filter(|&k| k > 0),
        wrist_camera: if args.wrist_camera {
            let config = scene.wrist_camera.as_ref().with_context(|| {
                format!(
                    "--wrist-camera: scene `{}` has no [wrist_camera]",
                    scene.name
                )
            })?;
            Some(vla_sim::dataset::WristCameraMeta::of(config))
        } else {
            None
        },
        push_distance_m: args.push_distance_m,
    };
    if !(0.0..=1.0).contains(&args.expert_prob) {
        bail!(
            "--expert-prob must be within [0, 1], got {}",
            args.expert_prob
        );
    }
    if args.decoy_approach == Some(0) {
        bail!("--decoy-approach must be at least 1 step");
    }
    let mut dagger_policy = match &args.dagger {
        Some(name) => match choose_policy(name, args.decoding)? {
            PolicyChoice::Learned(p) => Some(p),
            PolicyChoice::Scripted => bail!("--dagger needs a learned policy, not `scripted`"),
        },
        None => None,
    };
    let mut meta = meta;
    if let (Some(name), Some(policy)) = (&args.dagger, &dagger_policy) {
        meta.dagger = Some(vla_sim::dataset::DaggerInfo {
            policy: name.clone(),
            expert_prob: args.expert_prob,
            decoding: policy.config().decoding.as_str().into(),
            after_lift: args.after_lift,
            lower_near_spot_m: args.lower_near_spot_m,
        });
    }
    let mut writer = DatasetWriter::create(&args.out, meta)?;
    let bar = ProgressBar::new(args.episodes as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} episodes {msg}")?
            .progress_chars("=> "),
    );
    let started = Instant::now();
    // After the lift, only the suite's carrying families record anything.
    let max_attempts = args.episodes * if args.after_lift { 4 } else { 2 } + 10;
    let (mut attempts, mut written, mut frames, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut no_carry = 0usize;
    let mut next_seed = args.seed;
    while written < args.episodes {
        if attempts >= max_attempts {
            bar.abandon();
            bail!(
                "only {written} of {} episodes succeeded after {attempts} attempts ({no_carry} without a carry)",
                args.episodes
            );
        }
        // Consecutive seeds from --seed (with --same-colour-pairs, the
        // qualifying ones among them).
        let (seed, task) = suite.draw_task(split, &mut next_seed, args.same_colour_pairs)?;
        attempts += 1;
        let mut pool = suite.distractor_pool(task.distractor_split);
        if args.same_colour_distractors {
            pool = TaskSuite::same_colour_pool(&pool, &task.goal);
        }
        let driver = match dagger_policy.as_mut() {
            Some(policy) => Driver::Dagger {
                policy: policy.as_mut(),
                expert_prob: args.expert_prob,
                takeover,
            },
            None => match args.decoy_approach {
                Some(max_steps) => Driver::Decoy {
                    max_steps,
                    start_step: args.decoy_start,
                },
                None => Driver::Expert(noise),
            },
        };
        let episode = run_episode(scene, &task, &pool, driver, &options, seed)
            .with_context(|| format!("episode seed {seed}: {:?}", task.instruction))?;
        // DAgger keeps every rollout: the states a failing policy reaches are the point.
        if !episode.outcome.success && dagger_policy.is_none() {
            failed += 1;
            continue;
        }
        if episode.records.is_empty() {
            // --after-lift on a task without a carry (or a lift never made).
            no_carry += 1;
            continue;
        }
        writer.write_episode(&episode, seed)?;
        written += 1;
        frames += episode.frames.len();
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{:.0} frames/s", frames as f64 / secs));
        bar.inc(1);
    }
    bar.finish();
    let meta = writer.finish()?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    if no_carry > 0 {
        println!("{no_carry} rollouts skipped: the expert never carried the object (tasks without a carry)");
    }
    println!(
        "wrote {} episodes, {} frames to {} in {:.1} s: {:.1} frames/s, {:.2} episodes/s ({} failed expert episodes skipped)",
        meta.episodes,
        meta.steps,
        args.out.display(),
        secs,
        meta.steps as f64 / secs,
        meta.episodes as f64 / secs,
        failed
    );
    Ok(())
}

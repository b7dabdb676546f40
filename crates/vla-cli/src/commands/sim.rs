//! `vla sim`: parse the task text, build matching scenes, run closed-loop
//! episodes and print each outcome.

use anyhow::{Context, Result};
use serde_json::json;
use vla_sim::episode::{run_episode_observed, task_for_goal, EpisodeOptions};
use vla_sim::language::parse_instruction;
use vla_sim::StepObserver;
use vla_sim::{NoiseConfig, SuccessReport, TaskSuite};

use super::record::{warn_dropped, SimRecorder};
use super::shared::{choose_policy, repo_root};
use crate::cli::SimArgs;

/// Runs `vla sim`.
pub fn run(args: &SimArgs) -> Result<()> {
    let mut choice = choose_policy(&args.policy, args.decoding)?;
    let root = repo_root()?;
    let suite = TaskSuite::load(&args.suite, &root)?;
    let goal = parse_instruction(&args.task, &suite.scene)?;
    let pool = suite.distractor_pool(None);
    let mut recorder = SimRecorder::from_args(&args.viz, &format!("vla sim: {}", args.task))?;
    let loop_start = std::time::Instant::now();
    let mut outcomes = Vec::with_capacity(args.episodes);
    for i in 0..args.episodes {
        let seed = args.seed.wrapping_add(i as u64);
        let task = task_for_goal(goal.clone(), &args.task, args.distractors, seed);
        let mut options = EpisodeOptions::new(suite.config.max_steps);
        // The expert reads the true state; frames are only rendered for
        // policies that look at them.
        options.render = false;
        let driver = choice.driver(NoiseConfig::none());
        let observer = recorder.as_mut().map(|r| r as &mut dyn StepObserver);
        let episode =
            run_episode_observed(&suite.scene, &task, &pool, driver, &options, seed, observer)
                .with_context(|| format!("episode {} (seed {seed})", i + 1))?;
        let o = episode.outcome;
        if !args.json {
            println!(
                "episode {}/{} seed {seed}: {} after {} steps ({:.1} s simulated{}) — {}",
                i + 1,
                args.episodes,
                if o.success { "SUCCESS" } else { "FAILURE" },
                o.steps,
                o.sim_time_secs,
                if o.terminated { "" } else { ", step limit" },
                o.reason
            );
        }
        outcomes.push(o);
    }
    let loop_secs = loop_start.elapsed().as_secs_f64();
    let viz = match recorder {
        Some(rec) => {
            let r = rec.finish()?;
            warn_dropped(r.steps_dropped);
            let control_secs = r.control.as_secs_f64();
            let rest_secs = (loop_secs - control_secs).max(f64::EPSILON);
            Some(json!({
                "loop_secs": loop_secs,
                "control_thread_secs": control_secs,
                "logging_overhead_fraction": control_secs / rest_secs,
                "logging_thread_busy_secs": r.logging_thread_busy.as_secs_f64(),
                "drain_secs": r.drain.as_secs_f64(),
                "steps_logged": r.steps_logged,
                "steps_dropped": r.steps_dropped,
            }))
        }
        None => None,
    };
    let report = SuccessReport::from_outcomes(&outcomes);
    if args.json {
        let summary = json!({
            "task": args.task,
            "goal": goal,
            "policy": args.policy,
            "episodes": report.episodes,
            "successes": report.successes,
            "success_rate": report.success_rate,
            "mean_steps": report.mean_steps,
            "loop_secs": loop_secs,
            "viz": viz,
            "results": outcomes.iter().map(|o| json!({
                "seed": o.task.layout_seed,
                "success": o.success,
                "steps": o.steps,
                "terminated": o.terminated,
                "reason": o.reason,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{}: {}/{} episodes succeeded ({:.0}%) with the {} policy",
            args.task,
            report.successes,
            report.episodes,
            100.0 * report.success_rate,
            args.policy
        );
    }
    Ok(())
}

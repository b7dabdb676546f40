//! `vla eval`: success of a policy over a suite's split (or over a file of
//! instructions with goals), per task family and overall.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::json;
use vla_sim::episode::{run_episode_observed, EpisodeOptions};
use vla_sim::StepObserver;
use vla_sim::{Goal, NoiseConfig, Split, SuccessReport, Task, TaskSuite};

use super::record::{warn_dropped, SimRecorder};
use super::shared::{choose_policy, repo_root, PolicyChoice};
use crate::cli::EvalArgs;

/// One line of an `--instructions` file.
#[derive(Debug, Deserialize)]
struct InstructionLine {
    goal: Goal,
    instruction: String,
}

fn read_instructions(path: &Path, suite: &TaskSuite) -> Result<Vec<InstructionLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: InstructionLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not {{\"goal\": ..., \"instruction\": ...}}",
                path.display(),
                n + 1
            )
        })?;
        parsed
            .goal
            .validate(&suite.scene)
            .with_context(|| format!("{}:{}", path.display(), n + 1))?;
        vla_core::Instruction::new(&parsed.instruction)
            .with_context(|| format!("{}:{}", path.display(), n + 1))?;
        lines.push(parsed);
    }
    if lines.is_empty() {
        bail!("{} has no instructions", path.display());
    }
    Ok(lines)
}

/// Runs `vla eval`.
pub fn run(args: &EvalArgs) -> Result<()> {
    let mut choice = choose_policy(&args.policy, args.decoding)?;
    if let Some(spec) = &args.keypoint_window {
        let window = match spec.as_str() {
            "none" => None,
            s => Some(
                s.parse()
                    .map_err(|e: String| anyhow::anyhow!("--keypoint-window: {e}"))?,
            ),
        };
        match &mut choice {
            PolicyChoice::Learned(policy) => policy
                .set_keypoint_window(window)
                .map_err(|e| anyhow::anyhow!("--keypoint-window {spec}: {e}"))?,
            PolicyChoice::Scripted => bail!("--keypoint-window needs a learned policy"),
        }
    }
    let split: Split = args.split.parse()?;
    let root = repo_root()?;
    let suite = TaskSuite::load(&args.suite, &root)?;
    let given = match &args.instructions {
        Some(path) => Some(read_instructions(path, &suite)?),
        None => None,
    };
    let noise = if args.noise {
        NoiseConfig::demonstrations()
    } else {
        NoiseConfig::none()
    };
    let mut recorder = SimRecorder::from_args(&args.viz, &format!("vla eval: {}", args.suite))?;
    let mut outcomes = Vec::with_capacity(args.episodes);
    let mut failures = Vec::new();
    // Consecutive seeds from --seed (with --same-colour-pairs, the
    // qualifying ones among them).
    let mut next_seed = args.seed;
    for i in 0..args.episodes {
        let (seed, mut task) = suite.draw_task(split, &mut next_seed, args.same_colour_pairs)?;
        if let Some(lines) = &given {
            let line = &lines[i % lines.len()];
            task = Task {
                goal: line.goal.clone(),
                instruction: line.instruction.clone(),
                split: Some(split),
                template: None,
                ..task
            };
        }
        let mut pool = suite.distractor_pool(task.distractor_split);
        if args.same_colour_distractors {
            pool = TaskSuite::same_colour_pool(&pool, &task.goal);
        }
        let mut options = EpisodeOptions::new(suite.config.max_steps);
        options.render = false;
        let driver = choice.driver(noise);
        let observer = recorder.as_mut().map(|r| r as &mut dyn StepObserver);
        let episode =
            run_episode_observed(&suite.scene, &task, &pool, driver, &options, seed, observer)
                .with_context(|| {
                    format!("episode {} (seed {seed}): {:?}", i + 1, task.instruction)
                })?;
        if !episode.outcome.success {
            failures.push(json!({
                "seed": seed,
                "instruction": task.instruction,
                "goal": task.goal,
                "reason": episode.outcome.reason,
                "steps": episode.outcome.steps,
                "terminated": episode.outcome.terminated,
                "held_steps": episode.outcome.held_steps,
            }));
        }
        outcomes.push(episode.outcome);
    }
    if let Some(rec) = recorder {
        warn_dropped(rec.finish()?.steps_dropped);
    }
    let report = SuccessReport::from_outcomes(&outcomes);
    let mut v = serde_json::to_value(&report)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert("policy".into(), json!(args.policy));
        obj.insert("suite".into(), json!(suite.config.name));
        obj.insert("split".into(), json!(split.as_str()));
        obj.insert("seed".into(), json!(args.seed));
        obj.insert("noise".into(), json!(args.noise));
        obj.insert(
            "same_colour_distractors".into(),
            json!(args.same_colour_distractors),
        );
        obj.insert("same_colour_pairs".into(), json!(args.same_colour_pairs));
        obj.insert(
            "instructions".into(),
            json!(args.instructions.as_ref().map(|p| p.display().to_string())),
        );
        obj.insert("failures".into(), json!(failures));
    }
    if let Some(path) = &args.metrics {
        write_metrics(path, split.as_str(), &v)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "suite {} split {} policy {}: {}/{} episodes succeeded ({:.1}%), {:.1} steps on average",
            suite.config.name,
            split.as_str(),
            args.policy,
            report.successes,
            report.episodes,
            100.0 * report.success_rate,
            report.mean_steps
        );
        for (family, t) in &report.per_family {
            println!(
                "  {family:<13} {:>4}/{:<4} {:5.1}%",
                t.successes,
                t.episodes,
                100.0 * t.success_rate
            );
        }
        for f in &failures {
            println!("  failed: {f}");
        }
    }
    Ok(())
}

/// Stores `summary` as `splits.<split>` of the metrics file at `path`,
/// keeping the other splits already there. The file is locked from read to
/// write, so evaluations of two splits finishing at the same moment both
/// land.
fn write_metrics(path: &Path, split: &str, summary: &serde_json::Value) -> Result<()> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.lock()
        .with_context(|| format!("locking {}", path.display()))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut root = if text.trim().is_empty() {
        json!({})
    } else {
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if !v.is_object() {
            bail!("{} is not a JSON object", path.display());
        }
        v
    };
    let command: Vec<String> = std::env::args().skip(1).collect();
    let mut entry = summary.clone();
    if let Some(obj) = entry.as_object_mut() {
        obj.insert(
            "command".into(),
            json!(format!("vla {}", command.join(" "))),
        );
    }
    if let Some(obj) = root.as_object_mut() {
        obj.insert("written_by".into(), json!("vla eval --metrics"));
        let splits = obj.entry("splits").or_insert_with(|| json!({}));
        if let Some(s) = splits.as_object_mut() {
            s.insert(split.into(), entry);
        }
    }
    let text = serde_json::to_string_pretty(&root)? + "\n";
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
    // The lock is released when `file` is closed.
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evaluations_finishing_together_keep_both_splits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        for round in 0..20 {
            let handles: Vec<_> = ["train", "eval"]
                .into_iter()
                .map(|split| {
                    let path = path.clone();
                    std::thread::spawn(move || {
                        write_metrics(&path, split, &json!({ "round": round })).unwrap();
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for split in ["train", "eval"] {
                assert_eq!(v["splits"][split]["round"], round, "{v}");
            }
        }
        // A file that is not a JSON object is refused, not overwritten.
        std::fs::write(&path, "[1, 2]").unwrap();
        let err = write_metrics(&path, "train", &json!({})).unwrap_err();
        assert!(err.to_string().contains("not a JSON object"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1, 2]");
    }
}

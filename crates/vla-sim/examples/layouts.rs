//! Prints the starting layout of `vla eval` episodes as JSON lines: seed,
//! goal, instruction and every object with its table position and yaw. For
//! diagnostics (`scripts/colour-confounds.py` joins them with an evaluation's
//! failures):
//!
//! `cargo run --release -p vla-sim --example layouts -- SPLIT FIRST_SEED COUNT [--same-colour-distractors]`
//!
//! prints the layouts of `vla eval --split SPLIT --seed FIRST_SEED
//! --episodes COUNT` (with the same flag if given).

use anyhow::{bail, Context, Result};
use vla_sim::layout::sample_layout;
use vla_sim::{Split, TaskSuite};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [split, first, count, rest @ ..] = args.as_slice() else {
        bail!("usage: layouts SPLIT FIRST_SEED COUNT [--same-colour-distractors]");
    };
    let split = match split.as_str() {
        "train" => Split::Train,
        "eval" => Split::Eval,
        other => bail!("split {other:?}: use train or eval"),
    };
    let first: u64 = first.parse().context("FIRST_SEED")?;
    let count: u64 = count.parse().context("COUNT")?;
    let same_colour = rest.iter().any(|a| a == "--same-colour-distractors");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = TaskSuite::load("default", &root)?;
    for seed in first..first + count {
        let task = suite.sample_task(split, seed)?;
        let mut pool = suite.distractor_pool(task.distractor_split);
        if same_colour {
            pool = TaskSuite::same_colour_pool(&pool, &task.goal);
        }
        let layout = sample_layout(
            &suite.scene,
            &task.goal,
            task.distractors,
            &pool,
            task.layout_seed,
        )?;
        let objects: Vec<serde_json::Value> = layout
            .iter()
            .map(|p| {
                serde_json::json!({
                    "color": p.object.color,
                    "shape": p.object.shape,
                    "xy_m": p.xy_m,
                    "yaw_rad": p.yaw_rad,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "seed": seed,
                "goal": task.goal,
                "instruction": task.instruction,
                "objects": objects,
            })
        );
    }
    Ok(())
}

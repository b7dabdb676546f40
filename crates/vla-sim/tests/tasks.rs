//! Suite loading, instruction rendering/parsing and layout sampling against
//! the bundled `sim/` files.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use vla_sim::goal::{Family, Goal, ObjectRef};
use vla_sim::language::parse_instruction;
use vla_sim::layout::sample_layout;
use vla_sim::{SimError, Split, TaskSuite};

fn root() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

fn suite() -> TaskSuite {
    TaskSuite::load("default", &root()).unwrap()
}

#[test]
fn every_sampled_instruction_parses_back_to_its_goal() {
    let suite = suite();
    let mut families = std::collections::HashSet::new();
    for split in [Split::Train, Split::Eval] {
        for seed in 0..300 {
            let task = suite.sample_task(split, seed).unwrap();
            families.insert(task.goal.family());
            let parsed = parse_instruction(&task.instruction, &suite.scene)
                .unwrap_or_else(|e| panic!("{:?}: {e}", task.instruction));
            assert_eq!(parsed, task.goal, "{:?}", task.instruction);
        }
    }
    assert_eq!(families.len(), Family::ALL.len());
}

#[test]
fn draw_task_keeps_consecutive_seeds_or_only_same_colour_pairs() {
    let suite = suite();
    // Without the filter: sample_task on consecutive seeds.
    let mut next = 500;
    for seed in 500..520 {
        let (drawn, task) = suite.draw_task(Split::Train, &mut next, false).unwrap();
        assert_eq!(drawn, seed);
        assert_eq!(task, suite.sample_task(Split::Train, seed).unwrap());
    }
    assert_eq!(next, 520);
    // With it: the qualifying seeds in order, none skipped that qualifies.
    for split in [Split::Train, Split::Eval] {
        let mut next = 0;
        let mut last = None;
        for _ in 0..20 {
            let (seed, task) = suite.draw_task(split, &mut next, true).unwrap();
            assert!(task.goal.target_shares_colour(), "{:?}", task.instruction);
            assert_eq!(task.goal.object().color, task.goal.target().unwrap().color);
            let from = last.map_or(0, |s: u64| s + 1);
            for skipped in from..seed {
                let t = suite.sample_task(split, skipped).unwrap();
                assert!(!t.goal.target_shares_colour(), "seed {skipped} was skipped");
            }
            assert_eq!(next, seed + 1);
            last = Some(seed);
        }
    }
    let red = |shape: &str| ObjectRef::new("red", shape);
    let stack = Goal::Stack {
        object: red("cube"),
        target: red("cylinder"),
    };
    assert!(stack.target_shares_colour());
    assert!(!Goal::PickUp {
        object: red("cube")
    }
    .target_shares_colour());
}

#[test]
fn splits_keep_templates_and_combos_apart() {
    let suite = suite();
    for seed in 0..200 {
        let train = suite.sample_task(Split::Train, seed).unwrap();
        for r in train.goal.named_objects() {
            assert_eq!(suite.combo_split(r), Split::Train, "{r}");
        }
        let eval = suite.sample_task(Split::Eval, seed).unwrap();
        assert_eq!(suite.combo_split(eval.goal.object()), Split::Eval);
        let tmpl = |t: &vla_sim::Task| t.template.clone().unwrap();
        let fam = suite
            .config
            .families
            .iter()
            .find(|f| f.name == eval.goal.family())
            .unwrap();
        let split_of = |text: &str| fam.templates.iter().find(|t| t.text == text).unwrap().split;
        assert_eq!(split_of(&tmpl(&eval)), Split::Eval);
        assert!(suite.layout_seed(Split::Eval, seed) >= suite.config.layout_seeds.eval[0]);
        assert!(suite.layout_seed(Split::Train, seed) < suite.config.layout_seeds.train[1]);
    }
}

#[test]
fn unknown_words_list_the_vocabulary() {
    let suite = suite();
    let err = parse_instruction("put the red cube in the green wok", &suite.scene).unwrap_err();
    match err {
        SimError::UnknownWords {
            words, vocabulary, ..
        } => {
            assert_eq!(words, vec!["wok".to_string()]);
            assert!(vocabulary.contains("bowl") && vocabulary.contains("red"));
        }
        other => panic!("wrong error {other}"),
    }
    assert!(parse_instruction("push the red sphere left", &suite.scene).is_err());
    assert!(parse_instruction("put the cube in the bowl", &suite.scene).is_err());
}

#[test]
fn the_main_task_parses() {
    let suite = suite();
    let goal = parse_instruction("Put the red cube in the green bowl.", &suite.scene).unwrap();
    assert_eq!(
        goal,
        Goal::PutIn {
            object: ObjectRef::new("red", "cube"),
            target: ObjectRef::new("green", "bowl"),
        }
    );
}

#[test]
fn layouts_are_seeded_and_spaced() {
    let suite = suite();
    let pool = suite.combos(&suite.movable_shapes(), None);
    for seed in 0..100 {
        let task = suite.sample_task(Split::Train, seed).unwrap();
        let a = sample_layout(
            &suite.scene,
            &task.goal,
            task.distractors,
            &pool,
            task.layout_seed,
        )
        .unwrap();
        let b = sample_layout(
            &suite.scene,
            &task.goal,
            task.distractors,
            &pool,
            task.layout_seed,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), task.goal.named_objects().len() + task.distractors);
        for (i, p) in a.iter().enumerate() {
            for q in &a[i + 1..] {
                assert_ne!(p.object, q.object);
                let d = (p.xy_m[0] - q.xy_m[0]).hypot(p.xy_m[1] - q.xy_m[1]);
                assert!(d > 0.05, "{} and {} are {d} m apart", p.object, q.object);
            }
        }
    }
}

/// `stack-only` is `default`'s stacking family alone: same settings,
/// splits, layout seeds and words, the family copied as it is.
#[test]
fn the_stack_only_suite_is_defaults_stack_family_alone() {
    let default = suite();
    let stack = TaskSuite::load("stack-only", &root()).unwrap();
    let (a, b) = (&default.config, &stack.config);
    assert_eq!(b.name, "stack-only");
    assert_eq!(
        (a.scene.as_str(), a.max_steps, a.distractors),
        (b.scene.as_str(), b.max_steps, b.distractors)
    );
    for (x, y) in [
        (
            format!("{:?}", a.layout_seeds),
            format!("{:?}", b.layout_seeds),
        ),
        (format!("{:?}", a.combos), format!("{:?}", b.combos)),
        (format!("{:?}", a.words), format!("{:?}", b.words)),
    ] {
        assert_eq!(x, y);
    }
    let only: Vec<_> = a
        .families
        .iter()
        .filter(|f| f.name == Family::Stack)
        .map(|f| format!("{f:?}"))
        .collect();
    let theirs: Vec<_> = b.families.iter().map(|f| format!("{f:?}")).collect();
    assert_eq!(only, theirs);
    for split in [Split::Train, Split::Eval] {
        let mut next = 0;
        for seed in 0..50 {
            assert_eq!(
                stack.sample_task(split, seed).unwrap().goal.family(),
                Family::Stack
            );
            let (_, pair) = stack.draw_task(split, &mut next, true).unwrap();
            assert!(matches!(pair.goal, Goal::Stack { .. }));
            assert!(pair.goal.target_shares_colour());
        }
    }
}

/// `swapped-phrasings` is `default` with every template's split swapped:
/// same settings, same goal and layout seed per episode seed, the phrasing
/// drawn from the other split (and the distractor count, drawn after it,
/// sometimes another).
#[test]
fn the_swapped_phrasings_suite_differs_from_default_only_in_template_splits() {
    let default = suite();
    let swapped = TaskSuite::load("swapped-phrasings", &root()).unwrap();
    let (a, b) = (&default.config, &swapped.config);
    assert_eq!(b.name, "swapped-phrasings");
    assert_eq!(
        (a.scene.as_str(), a.max_steps, a.distractors),
        (b.scene.as_str(), b.max_steps, b.distractors)
    );
    for (x, y) in [
        (
            format!("{:?}", a.layout_seeds),
            format!("{:?}", b.layout_seeds),
        ),
        (format!("{:?}", a.combos), format!("{:?}", b.combos)),
        (format!("{:?}", a.words), format!("{:?}", b.words)),
    ] {
        assert_eq!(x, y);
    }
    assert_eq!(a.families.len(), b.families.len());
    for (fa, fb) in a.families.iter().zip(&b.families) {
        assert_eq!(fa.name, fb.name);
        assert_eq!(fa.weight, fb.weight);
        assert_eq!(
            (&fa.objects, &fa.targets, &fa.directions),
            (&fb.objects, &fb.targets, &fb.directions)
        );
        assert_eq!(fa.templates.len(), fb.templates.len());
        for (ta, tb) in fa.templates.iter().zip(&fb.templates) {
            assert_eq!(ta.text, tb.text);
            assert_ne!(ta.split, tb.split, "{:?} kept its split", ta.text);
        }
    }
    let mut other_distractors = 0;
    for split in [Split::Train, Split::Eval] {
        for seed in 0..200 {
            let (x, y) = (
                default.sample_task(split, seed).unwrap(),
                swapped.sample_task(split, seed).unwrap(),
            );
            assert_eq!(x.goal, y.goal, "seed {seed}");
            assert_eq!(
                (x.layout_seed, x.distractor_split),
                (y.layout_seed, y.distractor_split)
            );
            // The distractor count is drawn after the template, from the
            // same stream: a list of another length can shift it.
            other_distractors += usize::from(x.distractors != y.distractors);
            let fam = a
                .families
                .iter()
                .find(|f| f.name == x.goal.family())
                .unwrap();
            let split_in_default = |t: &vla_sim::Task| {
                let text = t.template.clone().unwrap();
                fam.templates.iter().find(|t| t.text == text).unwrap().split
            };
            assert_eq!(split_in_default(&x), split);
            assert_ne!(split_in_default(&y), split);
        }
    }
    // (112 of these 400 here; both suites draw it uniformly from the same range.)
    assert!(other_distractors < 400);
}

/// `same_colour_pool` (`--same-colour-distractors`): every distractor of a
/// layout drawn from it shares a colour with an object the goal names and
/// is none of them; with no such object in the pool it is the whole pool.
#[test]
fn same_colour_pools_give_layouts_whose_distractors_share_a_named_colour() {
    let suite = suite();
    let mut confounded = 0;
    for split in [Split::Train, Split::Eval] {
        for seed in 0..200 {
            let task = suite.sample_task(split, seed).unwrap();
            let pool = suite.distractor_pool(task.distractor_split);
            let same = TaskSuite::same_colour_pool(&pool, &task.goal);
            let named = task.goal.named_objects();
            let colours: Vec<&str> = named.iter().map(|n| n.color.as_str()).collect();
            assert!(same.iter().all(|o| pool.contains(o)));
            if same.len() < pool.len() {
                assert!(same
                    .iter()
                    .all(|o| colours.contains(&o.color.as_str()) && !named.contains(&o)));
            } else {
                assert!(
                    !pool
                        .iter()
                        .any(|o| colours.contains(&o.color.as_str()) && !named.contains(&o)),
                    "seed {seed}: fell back although {colours:?} has other objects"
                );
            }
            let layout = sample_layout(
                &suite.scene,
                &task.goal,
                task.distractors,
                &same,
                task.layout_seed,
            )
            .unwrap();
            let distractors = &layout[named.len()..];
            if task.distractors > 0 && same.len() < pool.len() {
                confounded += 1;
                assert!(distractors
                    .iter()
                    .all(|p| colours.contains(&p.object.color.as_str())));
            }
        }
    }
    assert!(
        confounded > 300,
        "only {confounded} of 400 layouts confounded"
    );
}

//! Simulator speed: one policy step of physics (10 substeps), one camera
//! frame of the default scene, and whole scripted episodes.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use vla_core::Action;
use vla_render::DomainRandomization;
use vla_sim::episode::{build_world, run_episode, Driver, EpisodeOptions};
use vla_sim::render::SimCamera;
use vla_sim::{NoiseConfig, Split, TaskSuite};

fn suite() -> TaskSuite {
    TaskSuite::load(
        "default",
        &PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../.."),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let s = suite();
    let task = s.sample_task(Split::Train, 1).unwrap();
    let pool = s.distractor_pool(task.distractor_split);

    let mut world = build_world(&s.scene, &task, &pool).unwrap();
    c.bench_function("policy_step_10_physics_substeps", |b| {
        b.iter(|| world.step(&Action::hold(0.0)).unwrap())
    });

    let world = build_world(&s.scene, &task, &pool).unwrap();
    let mut camera = SimCamera::new(&s.scene, DomainRandomization::default(), 0).unwrap();
    c.bench_function("render_frame_128x128", |b| {
        b.iter(|| camera.render(&world).unwrap())
    });

    let mut group = c.benchmark_group("scripted_episode");
    group.sample_size(10);
    for (name, render) in [("no_camera", false), ("with_camera", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut o = EpisodeOptions::new(s.config.max_steps);
                o.render = render;
                let ep = run_episode(
                    &s.scene,
                    &task,
                    &pool,
                    Driver::Expert(NoiseConfig::none()),
                    &o,
                    1,
                )
                .unwrap();
                assert!(ep.outcome.success);
                ep.outcome.steps
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

#![allow(clippy::unwrap_used, missing_docs)]
//! Frames per second of the demo tabletop scene (table, 10 arm and gripper
//! parts, 4 objects, 2 bowls, sun shadows, wood-grain table) on one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vla_render::demo::{tabletop_camera, tabletop_primitives};
use vla_render::{Lighting, RenderConfig, Renderer, Texture};

fn bench_render(c: &mut Criterion) {
    let primitives = tabletop_primitives();
    let lighting = Lighting::default();
    let config = RenderConfig {
        plane_texture: Texture::WoodGrain {
            ring_spacing_m: 0.015,
            contrast: 0.35,
            seed: 7,
        },
        ..RenderConfig::default()
    };
    let mut group = c.benchmark_group("render_tabletop");
    group.throughput(Throughput::Elements(1));
    for size in [128u32, 256] {
        let camera = tabletop_camera(size, size);
        let mut renderer = Renderer::new(config).unwrap();
        group.bench_function(format!("{size}x{size}"), |b| {
            b.iter(|| renderer.render(&primitives, &camera, &lighting).unwrap())
        });
        let no_shadow = Lighting {
            shadows: false,
            ..lighting
        };
        group.bench_function(format!("{size}x{size}_no_shadows"), |b| {
            b.iter(|| renderer.render(&primitives, &camera, &no_shadow).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_render);
criterion_main!(benches);

//! Renders the demo tabletop scene and writes it as PNG files for viewing:
//! `cargo run -p vla-render --example tabletop_png -- [SIZE_PX] [OUT_PREFIX]`
//! writes `<OUT_PREFIX>-rgb.png` and `<OUT_PREFIX>-depth.png` (depth scaled
//! from 0.5 m, white, to 2 m, black), plus a domain-randomised variant.

use std::fs::File;
use std::io::BufWriter;

use vla_render::demo::{tabletop_camera, tabletop_primitives};
use vla_render::{DomainRandomization, Lighting, RenderConfig, Renderer, Texture};

fn write_png(path: &str, width: u32, height: u32, colour: png::ColorType, data: &[u8]) {
    let file = BufWriter::new(File::create(path).expect("create png"));
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(colour);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("png header");
    writer.write_image_data(data).expect("png data");
    println!("wrote {path}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let prefix = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "/tmp/vla-render".into());

    let config = RenderConfig {
        plane_texture: Texture::WoodGrain {
            ring_spacing_m: 0.015,
            contrast: 0.35,
            seed: 7,
        },
        ..RenderConfig::default()
    };
    let mut renderer = Renderer::new(config).expect("renderer");
    let primitives = tabletop_primitives();
    let camera = tabletop_camera(size, size);
    let lighting = Lighting::default();
    let out = renderer
        .render(&primitives, &camera, &lighting)
        .expect("render");
    write_png(
        &format!("{prefix}-rgb.png"),
        size,
        size,
        png::ColorType::Rgb,
        out.rgb.data(),
    );
    let depth: Vec<u8> = out
        .depth_m
        .iter()
        .map(|d| (255.0 * (1.0 - ((d - 0.5) / 1.5).clamp(0.0, 1.0))) as u8)
        .collect();
    write_png(
        &format!("{prefix}-depth.png"),
        size,
        size,
        png::ColorType::Grayscale,
        &depth,
    );

    let dr = DomainRandomization::moderate();
    for seed in 1..=3u64 {
        let (mut lighting, mut primitives, mut camera) = (lighting, primitives.clone(), camera);
        dr.apply(
            seed,
            &mut lighting,
            &mut primitives,
            &mut camera,
            &mut renderer,
        )
        .expect("randomise");
        let out = renderer
            .render(&primitives, &camera, &lighting)
            .expect("render");
        write_png(
            &format!("{prefix}-dr{seed}.png"),
            size,
            size,
            png::ColorType::Rgb,
            out.rgb.data(),
        );
    }
}

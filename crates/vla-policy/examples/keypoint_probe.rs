//! Diagnostic: does a checkpoint's camera stem find the objects the
//! instruction names?
//!
//! For every `EVERY`-th frame of a `vla collect` folder it takes the stem's
//! keypoint logits (no transformer) and compares the most likely cell of
//! keypoint 0 (goal object) and keypoint 1 (target object) with the pixel
//! the simulator recorded. One JSON line per keypoint: frames, median
//! error in pixels, and the share of frames within 6 px (on the object:
//! objects are 8–10 px wide) and beyond 12 px (on another object). Run it
//! on a `--same-colour-distractors` collection and an ordinary one to see
//! whether colour confounds are a perception failure.
//!
//! ```sh
//! cargo run --release -p vla-policy --example keypoint_probe -- POLICY_DIR DATA_DIR [EVERY]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use vla_policy::{checkpoint, data, image, TextEncoder};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: keypoint_probe POLICY_DIR DATA_DIR [EVERY]");
        std::process::exit(2);
    }
    let dev = Device::Cpu;
    let (cfg, _, model) = checkpoint::load(std::path::Path::new(&args[1]), &dev).unwrap();
    let ds = data::load_dir(std::path::Path::new(&args[2]), cfg.model.image_size_px).unwrap();
    let text = TextEncoder::from_default_location(None, &dev).unwrap();
    let every: usize = args
        .get(3)
        .map_or(10, |s| s.parse().expect("EVERY is a number"));
    let side = cfg.model.image_size_px;
    let g = cfg.model.stage_side(cfg.model.keypoint_stage);
    let cell_px = (side / g) as f32;
    let mut encoded: HashMap<String, Tensor> = HashMap::new();
    // Per keypoint (goal, target): pixel errors.
    let mut errors: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
    for s in ds.samples.iter().step_by(every.max(1)) {
        let mut buf = vec![0f32; 3 * side * side];
        image::write_chw(
            &s.rgb,
            side,
            None::<(&image::Augment, &mut rand::rngs::ThreadRng)>,
            &mut buf,
        );
        let img = Tensor::from_vec(buf, (1, 3, side, side), &dev).unwrap();
        let words = s.instruction.as_str().to_string();
        let tokens = encoded
            .entry(words.clone())
            .or_insert_with(|| text.encode(&words).unwrap().tokens.unsqueeze(0).unwrap())
            .clone();
        let mask = Tensor::ones((1, tokens.dim(1).unwrap()), DType::F32, &dev).unwrap();
        let Some(logits) = model.keypoint_logits(&img, &tokens, &mask).unwrap() else {
            eprintln!("{} has no keypoints", args[1]);
            std::process::exit(1);
        };
        let best: Vec<u32> = logits
            .argmax(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for (k, errs) in errors.iter_mut().enumerate() {
            let (Some([u, v]), Some(&cell)) = (s.keypoint_px[k], best.get(k)) else {
                continue;
            };
            let cell = cell as usize;
            // Cell centre in pixels (pixel centres at integers).
            let cu = ((cell % g) as f32 + 0.5) * cell_px - 0.5;
            let cv = ((cell / g) as f32 + 0.5) * cell_px - 0.5;
            errs.push(((cu - u).powi(2) + (cv - v).powi(2)).sqrt());
        }
    }
    for (name, mut errs) in ["goal", "target"].into_iter().zip(errors) {
        if errs.is_empty() {
            continue;
        }
        errs.sort_by(f32::total_cmp);
        let n = errs.len() as f32;
        let share = |f: &dyn Fn(f32) -> bool| errs.iter().filter(|&&e| f(e)).count() as f32 / n;
        println!(
            "{}",
            serde_json::json!({
                "keypoint": name,
                "frames": errs.len(),
                "median_err_px": errs[errs.len() / 2],
                "within_6px": share(&|e| e <= 6.0),
                "beyond_12px": share(&|e| e > 12.0),
            })
        );
    }
}

//! Diagnostic: does a checkpoint's camera stem find the objects the
//! instruction names?
//!
//! For every `EVERY`-th frame of a `vla collect` folder it takes the stem's
//! keypoint logits (no transformer) and compares the most likely cell of
//! keypoint 0 (goal object) and keypoint 1 (target object) with the pixel
//! the simulator recorded. One JSON line per keypoint: frames, median
//! error in pixels, the share of frames within 6 px (on the object:
//! objects are 8–10 px wide) and beyond 12 px (on another object), the same
//! by step within the episode, and, of the frames beyond 12 px, the share
//! where the chosen cell is nearer the hand (the TCP's recorded pixel) than
//! the object is. `expected_*` are the same for the keypoint the network
//! actually reads: the softmax-weighted mean of the cell centres (median
//! error, share within 3 px and 6 px), which is not bound to the cell grid. Run it on a `--same-colour-distractors` collection and an
//! ordinary one — expert demonstrations, or the policy's own rollouts
//! (`vla collect --dagger POLICY --expert-prob 0`) — to see whether colour
//! confounds are a perception failure. With `KEYPOINT_PROBE_FRAMES=1` it
//! also prints every probed frame's goal error first,
//! `{"episode": i, "step": t, "goal_err_px": e, "goal_expected_err_px": m,
//! "expected_px": [[u, v], [u, v]], "true_px": [[u, v], null], "tcp_px": [u, v]}`
//! (expected and recorded pixels of the goal and target keypoints)
//! (episode = line of the
//! folder's `episodes.jsonl`), to join with `vla eval`'s failures by seed.
//!
//! ```sh
//! cargo run --release -p vla-policy --example keypoint_probe -- POLICY_DIR DATA_DIR [EVERY]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;

mod probe_common;

use candle_core::{DType, Tensor};
use probe_common::ProbeSetup;

fn main() {
    let probe = ProbeSetup::from_args("keypoint_probe");
    let (cfg, model, text, dev) = (&probe.cfg, &probe.model, &probe.text, &probe.dev);
    let ds = &probe.ds;
    let every = probe.every;
    let side = cfg.model.image_size_px;
    let g = cfg.model.keypoint_side();
    let cell_px = (side / g) as f32;
    let mut encoded: HashMap<String, Tensor> = HashMap::new();
    // Per keypoint (goal, target): one probe per frame.
    let mut probes: [Vec<Probe>; 2] = [Vec::new(), Vec::new()];
    let per_frame = std::env::var_os("KEYPOINT_PROBE_FRAMES").is_some();
    let tta = std::env::var_os("KEYPOINT_PROBE_TTA").is_some();
    let window: usize = std::env::var("KEYPOINT_PROBE_WINDOW")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    let mut step = 0usize;
    for (i, s) in ds.samples.iter().enumerate() {
        // Step within the episode: samples of one episode are consecutive.
        step = match i.checked_sub(1).map(|j| ds.samples[j].episode) {
            Some(prev) if prev == s.episode => step + 1,
            _ => 0,
        };
        if i % every != 0 {
            continue;
        }
        let img = probe.image(s);
        let words = s.instruction.as_str().to_string();
        let tokens = encoded
            .entry(words.clone())
            .or_insert_with(|| text.encode(&words).unwrap().tokens.unsqueeze(0).unwrap())
            .clone();
        let mask = Tensor::ones((1, tokens.dim(1).unwrap()), DType::F32, dev).unwrap();
        let Some(logits) = model.keypoint_logits(&img, &tokens, &mask).unwrap() else {
            eprintln!("{} has no keypoints", probe.policy_dir);
            std::process::exit(1);
        };
        let best: Vec<u32> = logits
            .argmax(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // Softmax-weighted mean of the cell centres per keypoint, pixels.
        let rows: Vec<Vec<f32>> = logits.get(0).unwrap().to_vec2().unwrap();
        let expected: Vec<[f32; 2]> = rows
            .iter()
            .map(|row| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let w: Vec<f32> = row.iter().map(|&l| (l - max).exp()).collect();
                let total: f32 = w.iter().sum();
                let mut xy = [0f32; 2];
                for (c, wc) in w.iter().enumerate() {
                    xy[0] += wc * (((c % g) as f32 + 0.5) * cell_px - 0.5);
                    xy[1] += wc * (((c / g) as f32 + 0.5) * cell_px - 0.5);
                }
                [xy[0] / total, xy[1] / total]
            })
            .collect();
        // The same mean over only the cells within `window` cells of the
        // most likely one (a local soft-argmax, which does not average two
        // modes): `KEYPOINT_PROBE_WINDOW`, default 2 (a 5×5 window).
        let local: Vec<[f32; 2]> = rows
            .iter()
            .zip(&best)
            .map(|(row, &b)| local_mean_px(row, b as usize, g, window, cell_px))
            .collect();
        // The share of each map's softmax mass inside that window.
        let mass: Vec<f32> = rows
            .iter()
            .zip(&best)
            .map(|(row, &b)| window_mass(row, b as usize, g, window))
            .collect();
        // Test-time shifts (`KEYPOINT_PROBE_TTA`): the whole-map expected
        // positions of the frame shifted by −1, 0, +1 px on each axis (edge
        // pixels repeated), each shifted back, averaged.
        let tta: Option<Vec<[f32; 2]>> = tta.then(|| {
            let mut sum = vec![[0f32; 2]; rows.len().min(2)];
            for dy in -1i32..=1 {
                for dx in -1i32..=1 {
                    let shifted = shift_image(&img, dx, dy);
                    let l = model
                        .keypoint_logits(&shifted, &tokens, &mask)
                        .unwrap()
                        .unwrap();
                    let r: Vec<Vec<f32>> = l.get(0).unwrap().to_vec2().unwrap();
                    for (k, acc) in sum.iter_mut().enumerate() {
                        let e = expected_px(&r[k], g, cell_px);
                        acc[0] += (e[0] - dx as f32) / 9.0;
                        acc[1] += (e[1] - dy as f32) / 9.0;
                    }
                }
            }
            sum
        });
        let tcp_px = s.keypoint_px[2];
        for (k, out) in probes.iter_mut().enumerate() {
            let (Some(truth), Some(&cell)) = (s.keypoint_px[k], best.get(k)) else {
                continue;
            };
            let cell = cell as usize;
            // Cell centre in pixels (pixel centres at integers).
            let found = [
                ((cell % g) as f32 + 0.5) * cell_px - 0.5,
                ((cell / g) as f32 + 0.5) * cell_px - 0.5,
            ];
            if per_frame && k == 0 {
                let err_px = dist(found, truth);
                let line = serde_json::json!({
                    "episode": s.episode,
                    "step": step,
                    "goal_err_px": err_px,
                    "goal_expected_err_px": dist(expected[k], truth),
                    // Expected positions and recorded pixels of the goal
                    // and target (null where the task has no target).
                    "expected_px": &expected[..expected.len().min(2)],
                    "true_px": [s.keypoint_px[0], s.keypoint_px[1]],
                    "tcp_px": tcp_px,
                    "local_px": &local[..local.len().min(2)],
                    "tta_px": tta,
                    "window_mass": &mass[..mass.len().min(2)],
                });
                println!("{line}");
            }
            out.push(Probe {
                step,
                err_px: dist(found, truth),
                expected_err_px: dist(expected[k], truth),
                nearer_hand: tcp_px.map(|h| dist(found, h) < dist(truth, h)),
            });
        }
    }
    for (name, probes) in ["goal", "target"].into_iter().zip(probes) {
        if probes.is_empty() {
            continue;
        }
        let mut errs: Vec<f32> = probes.iter().map(|p| p.err_px).collect();
        errs.sort_by(f32::total_cmp);
        let wrong: Vec<&Probe> = probes.iter().filter(|p| p.err_px > 12.0).collect();
        let mut expected_errs: Vec<f32> = probes.iter().map(|p| p.expected_err_px).collect();
        expected_errs.sort_by(f32::total_cmp);
        let all: Vec<&Probe> = probes.iter().collect();
        let by_step: serde_json::Map<String, serde_json::Value> = [
            ("0", 0, 0),
            ("1-9", 1, 9),
            ("10-19", 10, 19),
            ("20+", 20, usize::MAX),
        ]
        .into_iter()
        .map(|(label, lo, hi)| {
            let part: Vec<&Probe> = probes
                .iter()
                .filter(|p| (lo..=hi).contains(&p.step))
                .collect();
            (label.to_string(), summary(&part))
        })
        .collect();
        println!(
            "{}",
            serde_json::json!({
                "keypoint": name,
                "frames": errs.len(),
                "median_err_px": errs[errs.len() / 2],
                "all": summary(&all),
                "expected_median_err_px": expected_errs[expected_errs.len() / 2],
                "expected_within_3px": share(&all, |p| p.expected_err_px <= 3.0),
                "expected_within_6px": share(&all, |p| p.expected_err_px <= 6.0),
                "by_step": by_step,
                // Of the frames where the keypoint is on something else:
                // the share where that is nearer the hand than the object.
                "wrong_nearer_hand": share(&wrong, |p| p.nearer_hand == Some(true)),
            })
        );
    }
}

/// One frame's keypoint against the recorded pixel.
struct Probe {
    /// Step within the episode (0 = first frame).
    step: usize,
    /// Distance from the chosen cell's centre to the recorded pixel.
    err_px: f32,
    /// Distance from the expected position (softmax-weighted mean of the
    /// cell centres) to the recorded pixel.
    expected_err_px: f32,
    /// Whether the chosen cell is nearer the TCP's pixel than the object is.
    nearer_hand: Option<bool>,
}

/// The share of a `g × g` map's softmax mass within `window` cells of cell
/// `best`.
fn window_mass(row: &[f32], best: usize, g: usize, window: usize) -> f32 {
    let max = row[best];
    let total: f32 = row.iter().map(|&l| (l - max).exp()).sum();
    let (bx, by) = (best % g, best / g);
    let mut inside = 0f32;
    for y in by.saturating_sub(window)..=(by + window).min(g - 1) {
        for x in bx.saturating_sub(window)..=(bx + window).min(g - 1) {
            inside += (row[y * g + x] - max).exp();
        }
    }
    inside / total
}

/// Softmax-weighted mean of the cell centres (pixels) of one keypoint's
/// logits over a `g × g` map.
fn expected_px(row: &[f32], g: usize, cell_px: f32) -> [f32; 2] {
    let best = row
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    local_mean_px(row, best, g, g, cell_px)
}

/// `(1, 3, S, S)` image with its content moved `dx` px right and `dy` px
/// down, edge pixels repeated.
fn shift_image(img: &Tensor, dx: i32, dy: i32) -> Tensor {
    let side = img.dim(3).unwrap();
    let along = |t: Tensor, dim: usize, d: i32| -> Tensor {
        let n = d.unsigned_abs() as usize;
        if n == 0 {
            return t;
        }
        if d > 0 {
            t.pad_with_same(dim, n, 0)
                .unwrap()
                .narrow(dim, 0, side)
                .unwrap()
        } else {
            t.pad_with_same(dim, 0, n)
                .unwrap()
                .narrow(dim, n, side)
                .unwrap()
        }
    };
    along(along(img.clone(), 3, dx), 2, dy)
}

/// Softmax-weighted mean of the cell centres (pixels) over the cells of a
/// `g × g` map within `window` cells (Chebyshev) of cell `best`.
fn local_mean_px(row: &[f32], best: usize, g: usize, window: usize, cell_px: f32) -> [f32; 2] {
    let (bx, by) = (best % g, best / g);
    let lo = |c: usize| c.saturating_sub(window);
    let hi = |c: usize| (c + window).min(g - 1);
    let max = row[best];
    let (mut xy, mut total) = ([0f32; 2], 0f32);
    for y in lo(by)..=hi(by) {
        for x in lo(bx)..=hi(bx) {
            let w = (row[y * g + x] - max).exp();
            xy[0] += w * ((x as f32 + 0.5) * cell_px - 0.5);
            xy[1] += w * ((y as f32 + 0.5) * cell_px - 0.5);
            total += w;
        }
    }
    [xy[0] / total, xy[1] / total]
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn share(probes: &[&Probe], f: impl Fn(&Probe) -> bool) -> f32 {
    if probes.is_empty() {
        return f32::NAN;
    }
    probes.iter().filter(|p| f(p)).count() as f32 / probes.len() as f32
}

/// Frames, share within 6 px (on the object: objects are 8–10 px wide)
/// and share beyond 12 px (on something else).
fn summary(probes: &[&Probe]) -> serde_json::Value {
    serde_json::json!({
        "frames": probes.len(),
        "within_6px": share(probes, |p| p.err_px <= 6.0),
        "beyond_12px": share(probes, |p| p.err_px > 12.0),
    })
}

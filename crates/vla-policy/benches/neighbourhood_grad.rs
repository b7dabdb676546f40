//! Forward + backward of the keypoint head's 3×3 neighbourhood gather at
//! the 32×32 map's training shape (`--keypoint-stage 0`: one worker's half
//! of a batch of 64, 32×32 cells, 16 reduced channels), built from candle
//! ops and as `vla_policy::neighbourhood`'s one-pass custom op. One thread.
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
    let cases: [(&str, Op); 2] = [
        ("candle", neighbourhood::neighbourhood_3x3_candle),
        ("vla", neighbourhood::neighbourhood_3x3),
    ];
    for (name, op) in cases {
        c.bench_function(&format!("neighbourhood_grad_{name}"), |b| {
            b.iter(|| {
                let y = op(x.as_tensor()).unwrap();
                let grads = y.sum_all().unwrap().backward().unwrap();
                grads.get(x.as_tensor()).unwrap().dims().len()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

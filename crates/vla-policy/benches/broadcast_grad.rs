//! Forward + backward of a broadcast bias add and a FiLM scale at the image
//! stem's first-stage shape in training (batch 64, 32×32 cells, 32
//! channels), with candle's own broadcast and with `vla_policy::broadcast`
//! (same results bit for bit; see that module). One thread.
//!
//! `cargo bench -p vla-policy --bench broadcast_grad`

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use candle_core::{Device, Result, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use vla_policy::broadcast;

type Op = fn(&Tensor, &Tensor) -> Result<Tensor>;

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 32, 32, 32), &dev).unwrap()).unwrap();
    let bias = Var::from_tensor(&Tensor::randn(0f32, 1.0, 32, &dev).unwrap()).unwrap();
    let film = Var::from_tensor(&Tensor::randn(0f32, 1.0, (64, 1, 1, 32), &dev).unwrap()).unwrap();
    let cases: [(&str, &Var, Op); 4] = [
        ("bias_add_candle", &bias, |a, b| a.broadcast_add(b)),
        ("bias_add_vla", &bias, broadcast::add),
        ("film_mul_candle", &film, |a, b| a.broadcast_mul(b)),
        ("film_mul_vla", &film, broadcast::mul),
    ];
    for (name, v, op) in cases {
        c.bench_function(&format!("broadcast_grad_{name}"), |b| {
            b.iter(|| {
                let y = op(x.as_tensor(), v.as_tensor()).unwrap();
                let grads = y.sum_all().unwrap().backward().unwrap();
                grads.get(v.as_tensor()).unwrap().dims().len()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

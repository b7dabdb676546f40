//! Gradients of the vendored candle-core (third_party/candle-core), whose
//! backward pass stores a tensor's first gradient contribution directly
//! instead of adding it to zeros. These check the cases that change touches
//! against hand-derived gradients: one consumer, several consumers, the
//! subtracting ops (sub, neg, div's denominator), transposed and broadcast
//! gradients, and a weight used twice in one matmul chain.

use candle_core::{DType, Device, Tensor, Var};

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("a float tensor")
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn several_consumers_and_subtracting_ops_sum_their_gradients() -> candle_core::Result<()> {
    let xs = [0.5f32, -1.0, 2.0];
    let x = Var::new(&xs[..], &Device::Cpu)?;
    // y = x·x − x + exp(x) − (−x) + 1/x, i.e. dy/dx = 2x − 1 + eˣ + 1 − 1/x².
    let y = ((x.mul(&x)? - x.as_tensor())? + x.exp()?)?;
    let y = (y - x.neg()?)?;
    let y = (y + x.recip()?)?;
    let grads = y.sum_all()?.backward()?;
    let want: Vec<f32> = xs
        .iter()
        .map(|&v| 2.0 * v - 1.0 + v.exp() + 1.0 - 1.0 / (v * v))
        .collect();
    assert_close(&values(grads.get(&x).expect("x has a gradient")), &want);
    Ok(())
}

#[test]
fn a_lone_subtracted_operand_gets_the_negated_gradient() -> candle_core::Result<()> {
    // Only consumer of `b` subtracts it, and `c` is only a denominator: their
    // first (and only) contributions are the negated ones.
    let a = Var::new(&[3.0f32, 4.0][..], &Device::Cpu)?;
    let b = Var::new(&[1.0f32, 2.0][..], &Device::Cpu)?;
    let c = Var::new(&[2.0f32, 5.0][..], &Device::Cpu)?;
    let y = (a.as_tensor() - b.as_tensor())?.div(c.as_tensor())?;
    let grads = y.sum_all()?.backward()?;
    // y = (a − b)/c: dy/da = 1/c, dy/db = −1/c, dy/dc = −(a − b)/c².
    assert_close(&values(grads.get(&a).expect("a")), &[0.5, 0.2]);
    assert_close(&values(grads.get(&b).expect("b")), &[-0.5, -0.2]);
    assert_close(&values(grads.get(&c).expect("c")), &[-0.5, -0.08]);
    Ok(())
}

#[test]
fn transposed_and_broadcast_gradients_are_stored_contiguous_and_correct() -> candle_core::Result<()>
{
    let dev = Device::Cpu;
    // w (2×3) is used through its transpose, the bias (3) through a broadcast.
    let w = Var::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev)?;
    let bias = Var::new(&[0.1f32, 0.2, 0.3], &dev)?;
    let x = Tensor::new(&[[1.0f32, 0.0], [0.0, 2.0], [1.0, 1.0], [2.0, -1.0]], &dev)?; // 4×2
    let y = x.matmul(w.as_tensor())?.broadcast_add(bias.as_tensor())?; // 4×3
    let wt = w.as_tensor().t()?; // 3×2, a second consumer of w
    let z = y.matmul(&wt)?; // 4×2
    let grads = z.sum_all()?.backward()?;

    let gw = grads.get(&w).expect("w");
    let gb = grads.get(&bias).expect("bias");
    assert!(gw.is_contiguous() && gb.is_contiguous());
    // z = (x w + 1 bᵀ) wᵀ. With G = ∂L/∂z = 1 (4×2) and ∂L/∂y = G w (4×3):
    //   ∂L/∂w = xᵀ (G w) + Gᵀ y,  ∂L/∂b = 1ᵀ (G w).
    let g = Tensor::ones((4, 2), DType::F32, &dev)?;
    let dy = g.matmul(w.as_tensor())?;
    let want_w = (x.t()?.matmul(&dy)? + g.t()?.matmul(&y)?)?;
    let want_b = dy.sum(0)?;
    assert_close(&values(gw), &values(&want_w));
    assert_close(&values(gb), &values(&want_b));
    Ok(())
}

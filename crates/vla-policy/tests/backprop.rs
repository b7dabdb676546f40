//! Gradients of the vendored candle-core (third_party/candle-core), whose
//! backward pass stores a tensor's first gradient contribution directly
//! instead of adding it to zeros. These check the cases that change touches
//! against hand-derived gradients: one consumer, several consumers, the
//! subtracting ops (sub, neg, div's denominator), transposed and broadcast
//! gradients, and a weight used twice in one matmul chain. Session 22's
//! changes are checked bit for bit against candle's op-by-op formulas: the
//! fused relu and division backward passes, gradients skipped for arguments
//! that lead to no variable (data, masks), and matmul's uninitialised output.
//! Session 24's: the gradient of a transposed matmul operand (`x · wᵀ`,
//! `q · kᵀ`), now written by gemm straight into `w`'s layout, against the
//! plain product transposed afterwards.

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

fn bits(t: &Tensor) -> Vec<u32> {
    values(t).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn relu_gradient_is_candles_mask_product_bit_for_bit() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // Zeros of both signs, negatives and positives; a weight per element
    // (some negative, one zero) so that the incoming gradient is not all ones.
    let xs = [0.0f32, -0.0, -1.5, 2.25, 1e-30, -1e-30, 3.0, -7.0];
    let ws = [0.3f32, -1.2, 2.0, -0.7, 5.0, 0.0, -0.0, 1.1];
    let x = Var::new(&xs[..], &dev)?;
    let w = Tensor::new(&ws[..], &dev)?;
    let grads = x.relu()?.mul(&w)?.sum_all()?.backward()?;
    // candle 0.11: grad · (x ≥ 0 as f32).
    let mask = x.as_tensor().ge(&x.zeros_like()?)?.to_dtype(DType::F32)?;
    let want = w.mul(&mask)?;
    assert_eq!(bits(grads.get(&x).expect("x")), bits(&want));
    Ok(())
}

#[test]
fn division_gradients_match_candles_formula_bit_for_bit() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // x (3×4) / s (3×1) broadcast along the rows, as layer norm and softmax
    // divide; w weights the elements.
    let x = Var::from_tensor(&Tensor::randn(0f32, 2.0, (3, 4), &dev)?)?;
    let s = Var::from_tensor(&(Tensor::rand(0.5f32, 2.0, (3, 1), &dev)?))?;
    let w = Tensor::randn(0f32, 1.0, (3, 4), &dev)?;
    let y = x.as_tensor().broadcast_div(s.as_tensor())?;
    let grads = y.mul(&w)?.sum_all()?.backward()?;
    // candle 0.11: d/dx = g / s, d/ds = −Σ_row (g · x) / s², with g = w.
    let sb = s.as_tensor().broadcast_as((3, 4))?;
    let want_x = w.div(&sb)?;
    let want_s = w
        .mul(x.as_tensor())?
        .div(&sb.sqr()?)?
        .neg()?
        .sum_keepdim(1)?;
    assert_eq!(bits(grads.get(&x).expect("x")), bits(&want_x));
    assert_eq!(bits(grads.get(&s).expect("s")), bits(&want_s));
    // A numerator that is data (no variable behind it) gets no gradient,
    // and the denominator's is unchanged.
    let data = x.as_tensor().detach();
    let grads = data
        .broadcast_div(s.as_tensor())?
        .mul(&w)?
        .sum_all()?
        .backward()?;
    assert!(grads.get(&data).is_none());
    assert_eq!(bits(grads.get(&s).expect("s")), bits(&want_s));
    Ok(())
}

#[test]
fn arguments_that_lead_to_no_variable_get_no_gradient() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let w = Var::new(&[[1.0f32, -2.0], [0.5, 3.0], [2.0, 1.0]], &dev)?; // 3×2
    let x = Tensor::new(&[[1.0f32, 2.0, 3.0], [-1.0, 0.0, 4.0]], &dev)?; // 2×3, data
    let mask = Tensor::new(&[[1.0f32, 0.0], [1.0, 1.0]], &dev)?; // data
    let y = x.matmul(w.as_tensor())?.mul(&mask)?; // 2×2
    let grads = y.sum_all()?.backward()?;
    // dL/dw = xᵀ · mask.
    let want = x.t()?.matmul(&mask)?;
    assert_eq!(bits(grads.get(&w).expect("w")), bits(&want));
    assert!(grads.get(&x).is_none());
    assert!(grads.get(&mask).is_none());
    Ok(())
}

#[test]
fn matmul_writes_every_output_element() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // The output buffer is no longer zero-filled first: an inner size of 0
    // must still give zeros, and batched and single products their values.
    let a = Tensor::zeros((2, 3, 0), DType::F32, &dev)?;
    let b = Tensor::zeros((2, 0, 4), DType::F32, &dev)?;
    let c = a.matmul(&b)?;
    assert_eq!(c.dims(), &[2, 3, 4]);
    assert!(values(&c).iter().all(|v| *v == 0.0));
    let a = Tensor::arange(0f32, 24.0, &dev)?.reshape((2, 3, 4))?;
    let b = Tensor::arange(0f32, 40.0, &dev)?.reshape((2, 4, 5))?;
    let c = a.matmul(&b)?;
    let (av, bv) = (values(&a), values(&b));
    let mut want = Vec::new();
    for batch in 0..2 {
        for i in 0..3 {
            for j in 0..5 {
                let dot: f32 = (0..4)
                    .map(|k| av[batch * 12 + i * 4 + k] * bv[batch * 20 + k * 5 + j])
                    .sum();
                want.push(dot);
            }
        }
    }
    assert_close(&values(&c), &want);
    Ok(())
}

/// `∂/∂w Σ (x · wᵀ) ⊙ r` must be `(xᵀ · r)ᵀ` with the bits of the plain
/// product made contiguous afterwards, stored contiguous.
fn check_transposed_operand(rows: usize, d_in: usize, d_out: usize) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (rows, d_in), &dev)?;
    let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (d_out, d_in), &dev)?)?;
    let r = Tensor::randn(0f32, 1.0, (rows, d_out), &dev)?;
    let y = x.matmul(&w.as_tensor().t()?)?;
    let grads = y.mul(&r)?.sum_all()?.backward()?;
    let gw = grads.get(&w).expect("w");
    assert!(gw.is_contiguous(), "{rows}x{d_in}x{d_out}");
    let want = x.t()?.matmul(&r)?.t()?.contiguous()?;
    assert_eq!(bits(gw), bits(&want), "{rows}x{d_in}x{d_out}");
    Ok(())
}

#[test]
fn a_transposed_operand_gets_the_plain_products_gradient_bit_for_bit() -> candle_core::Result<()> {
    // Small (one gemm block), both sides over 64 (gemm's cache-sized
    // blocking), an inner size over 512 (several blocks along k, summed in
    // the destination), odd sizes, and a single output.
    for (rows, d_in, d_out) in [
        (5, 3, 7),
        (40, 17, 3),
        (70, 100, 65),
        (1500, 48, 96),
        (1300, 130, 70),
        (9, 1, 1),
    ] {
        check_transposed_operand(rows, d_in, d_out)?;
    }
    Ok(())
}

#[test]
fn batched_transposed_keys_get_the_plain_products_gradient_bit_for_bit() -> candle_core::Result<()>
{
    let dev = Device::Cpu;
    // Attention scores q · kᵀ over (batch, heads): k's gradient goes through
    // the transposed path, q's through the plain one.
    let q = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 9, 8), &dev)?)?;
    let k = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 3, 11, 8), &dev)?)?;
    let r = Tensor::randn(0f32, 1.0, (2, 3, 9, 11), &dev)?;
    let scores = q.as_tensor().matmul(&k.as_tensor().t()?)?;
    let grads = scores.mul(&r)?.sum_all()?.backward()?;
    let gk = grads.get(&k).expect("k");
    assert!(gk.is_contiguous());
    assert_eq!(gk.dims(), &[2, 3, 11, 8]);
    let want_k = q.as_tensor().t()?.matmul(&r)?.t()?.contiguous()?;
    assert_eq!(bits(gk), bits(&want_k));
    let want_q = r.matmul(k.as_tensor())?;
    assert_eq!(bits(grads.get(&q).expect("q")), bits(&want_q));
    Ok(())
}

#[test]
fn a_transposed_operand_used_twice_sums_both_gradients() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // One wᵀ node feeding two products: the first contribution is kept as a
    // transposed view and the second is added to it.
    let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (6, 4), &dev)?)?;
    let wt = w.as_tensor().t()?;
    let x1 = Tensor::randn(0f32, 1.0, (5, 4), &dev)?;
    let x2 = Tensor::randn(0f32, 1.0, (3, 4), &dev)?;
    let r1 = Tensor::randn(0f32, 1.0, (5, 6), &dev)?;
    let r2 = Tensor::randn(0f32, 1.0, (3, 6), &dev)?;
    let loss = (x1.matmul(&wt)?.mul(&r1)?.sum_all()? + x2.matmul(&wt)?.mul(&r2)?.sum_all()?)?;
    let grads = loss.backward()?;
    let gw = grads.get(&w).expect("w");
    assert!(gw.is_contiguous());
    let want = (r1.t()?.matmul(&x1)? + r2.t()?.matmul(&x2)?)?;
    assert_close(&values(gw), &values(&want));
    Ok(())
}

//! Strided copies of the vendored candle-core (third_party/candle-core):
//! layouts whose innermost dimension is not contiguous (transposes and
//! permutes) are copied in tiles (session 23). These compare
//! `contiguous()` on such views with the same elements gathered by index
//! arithmetic here, bit for bit, across the shapes the model makes: a
//! weight's transpose, channels-last patches, attention heads, size-1
//! dimensions, views with an offset, and sides that are not multiples of
//! the tile.

use candle_core::{Device, IndexOp, Tensor};

/// Distinct values, so that a misplaced element cannot go unnoticed.
fn numbered(dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.25).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).expect("a tensor")
}

/// The row-major flat index of `idx` in `dims`.
fn flat(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// `permute(order)` of a contiguous tensor of `dims`, gathered by hand.
fn permuted_by_hand(values: &[f32], dims: &[usize], order: &[usize]) -> Vec<f32> {
    let out_dims: Vec<usize> = order.iter().map(|&o| dims[o]).collect();
    let n: usize = out_dims.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; out_dims.len()];
    for _ in 0..n {
        let mut src_idx = vec![0usize; dims.len()];
        for (k, &o) in order.iter().enumerate() {
            src_idx[o] = idx[k];
        }
        out.push(values[flat(&src_idx, dims)]);
        for k in (0..idx.len()).rev() {
            idx[k] += 1;
            if idx[k] < out_dims[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check_permute(dims: &[usize], order: &[usize]) -> candle_core::Result<()> {
    let t = numbered(dims);
    let src = t.flatten_all()?.to_vec1::<f32>()?;
    let got = t
        .permute(order)?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?;
    assert_eq!(
        bits(&got),
        bits(&permuted_by_hand(&src, dims, order)),
        "permute {order:?} of {dims:?}"
    );
    Ok(())
}

#[test]
fn transposes_and_permutes_copy_every_element_to_its_place() -> candle_core::Result<()> {
    // A weight's transpose: square, wide, tall, sides not multiples of 16.
    for dims in [[128, 384], [384, 128], [17, 33], [1, 5], [5, 1], [16, 16]] {
        check_permute(&dims, &[1, 0])?;
    }
    // Channels-last patches of a (B, 3, H, W) batch, as the stem makes them.
    check_permute(&[2, 3, 4, 4, 4, 4], &[0, 2, 4, 3, 5, 1])?;
    // Attention heads (B, T, H, D/H) ↔ (B, H, T, D/H): blocks of D/H.
    check_permute(&[2, 7, 4, 32], &[0, 2, 1, 3])?;
    // Keypoint logits (B, g·g, K) → (B, K, g·g), and small blocks (2-4).
    check_permute(&[3, 256, 16], &[0, 2, 1])?;
    check_permute(&[3, 5, 6, 2], &[1, 0, 2, 3])?;
    check_permute(&[3, 5, 6, 4], &[2, 0, 1, 3])?;
    check_permute(&[3, 5, 6, 3], &[1, 2, 0, 3])?;
    // Size-1 dimensions among the strided ones.
    check_permute(&[1, 9, 1, 20], &[3, 1, 2, 0])?;
    check_permute(&[4, 1, 18], &[2, 1, 0])?;
    Ok(())
}

#[test]
fn strided_views_with_an_offset_copy_only_their_elements() -> candle_core::Result<()> {
    // A transposed, narrowed view: (40, 30) → rows 3..37, columns 5..26, then t().
    let t = numbered(&[40, 30]);
    let src = t.flatten_all()?.to_vec1::<f32>()?;
    let view = t.narrow(0, 3, 34)?.narrow(1, 5, 21)?.t()?;
    let got = view.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
    let mut want = Vec::new();
    for c in 5..26 {
        for r in 3..37 {
            want.push(src[r * 30 + c]);
        }
    }
    assert_eq!(bits(&got), bits(&want));
    // One batch entry of a permuted 3-D tensor.
    let t = numbered(&[3, 19, 21]);
    let src = t.flatten_all()?.to_vec1::<f32>()?;
    let got = t
        .permute((0, 2, 1))?
        .i(2)?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let want: Vec<f32> = (0..21)
        .flat_map(|c| (0..19).map(move |r| (r, c)))
        .map(|(r, c)| src[2 * 19 * 21 + r * 21 + c])
        .collect();
    assert_eq!(bits(&got), bits(&want));
    Ok(())
}

#[test]
fn integer_tensors_take_the_same_path() -> candle_core::Result<()> {
    let v: Vec<u32> = (0..23 * 37).collect();
    let t = Tensor::from_vec(v, (23, 37), &Device::Cpu)?;
    let got = t.t()?.contiguous()?.flatten_all()?.to_vec1::<u32>()?;
    let src = t.flatten_all()?.to_vec1::<u32>()?;
    let want: Vec<u32> = (0..37)
        .flat_map(|c| (0..23).map(move |r| r * 37 + c))
        .map(|i| src[i])
        .collect();
    assert_eq!(got, want);
    Ok(())
}

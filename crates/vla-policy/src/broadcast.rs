//! Broadcast add and multiply whose gradient is summed quickly on the CPU.
//!
//! candle 0.11 sums a broadcast operand's gradient with one integer
//! divide/modulo per element whenever the summed dimensions are not the
//! trailing ones — a bias added to `(rows, d)`, a layer norm's scale, FiLM's
//! `(B, 1, 1, C)` scale and shift. A profile of `vla train` (session 11,
//! `perf record` on the running process) put 27 % of a training step there.
//! [`add`] and [`mul`] materialise the broadcast operand with a custom op
//! whose backward adds the gradient up with plain loops in the same
//! row-major order as candle's reduction, so the results are the same bits
//! (the tests compare them with candle's own broadcast) and only the time
//! changes. Untracked operands (inference), other devices and dtypes, and
//! sums over trailing dimensions (candle's vectorised path, a different
//! summation order) use candle's broadcast unchanged.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// `x + v`, `v` broadcast to `x`'s shape.
pub fn add(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    match expanded(v, x.dims())? {
        Some(e) => x.add(&e),
        None => x.broadcast_add(v),
    }
}

/// `x · v`, `v` broadcast to `x`'s shape.
pub fn mul(x: &Tensor, v: &Tensor) -> Result<Tensor> {
    match expanded(v, x.dims())? {
        Some(e) => x.mul(&e),
        None => x.broadcast_mul(v),
    }
}

/// `v` materialised at `dims` through [`Expand`], or `None` where candle's
/// own broadcast is as good or the only option.
fn expanded(v: &Tensor, dims: &[usize]) -> Result<Option<Tensor>> {
    if !v.track_op() || !v.device().is_cpu() || v.dtype() != DType::F32 || v.dims() == dims {
        return Ok(None);
    }
    let Some(src_dims) = left_padded(v.dims(), dims) else {
        // Not broadcastable: let candle report it.
        return Ok(None);
    };
    let summed: Vec<usize> = (0..dims.len())
        .filter(|&i| src_dims[i] != dims[i])
        .collect();
    let trailing = summed
        .iter()
        .rev()
        .enumerate()
        .all(|(i, &d)| d == dims.len() - 1 - i);
    if summed.is_empty() || trailing {
        return Ok(None);
    }
    Ok(Some(v.contiguous()?.apply_op1(Expand {
        src_dims,
        arg_dims: v.dims().to_vec(),
        dst_dims: dims.to_vec(),
    })?))
}

/// `src` padded with leading 1s to `dst`'s rank, if it broadcasts to `dst`.
fn left_padded(src: &[usize], dst: &[usize]) -> Option<Vec<usize>> {
    let pad = dst.len().checked_sub(src.len())?;
    let padded: Vec<usize> = std::iter::repeat_n(1, pad)
        .chain(src.iter().copied())
        .collect();
    padded
        .iter()
        .zip(dst)
        .all(|(&s, &d)| s == d || s == 1)
        .then_some(padded)
}

/// Broadcast of an f32 tensor to `dst_dims`, materialised.
struct Expand {
    /// The argument's shape left-padded with 1s to `dst_dims`' rank.
    src_dims: Vec<usize>,
    /// The argument's own shape (its gradient's).
    arg_dims: Vec<usize>,
    dst_dims: Vec<usize>,
}

impl CustomOp1 for Expand {
    fn name(&self) -> &'static str {
        "vla-expand"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout)?;
        // Rows come in row-major order, so each one is appended (no zero fill first).
        let mut dst = Vec::with_capacity(self.dst_dims.iter().product());
        for_each_row(
            &self.src_dims,
            &self.dst_dims,
            |dst_at, src_at, n, along| {
                debug_assert_eq!(dst.len(), dst_at);
                if along {
                    dst.extend_from_slice(&src[src_at..src_at + n]);
                } else {
                    dst.resize(dst_at + n, src[src_at]);
                }
            },
        );
        Ok((CpuStorage::F32(dst), Shape::from(self.dst_dims.clone())))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let sum = SumTo {
            src_dims: self.src_dims.clone(),
            arg_dims: self.arg_dims.clone(),
            dst_dims: self.dst_dims.clone(),
        };
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&sum)?))
    }
}

/// [`Expand`]'s backward: a `dst_dims` gradient summed back to `arg_dims`,
/// element by element in row-major order (candle's order).
struct SumTo {
    src_dims: Vec<usize>,
    arg_dims: Vec<usize>,
    dst_dims: Vec<usize>,
}

impl CustomOp1 for SumTo {
    fn name(&self) -> &'static str {
        "vla-expand-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        if layout.dims() != self.dst_dims.as_slice() {
            candle_core::bail!(
                "vla-expand-grad: gradient of shape {:?}, expected {:?}",
                layout.dims(),
                self.dst_dims
            );
        }
        let grad = contiguous_f32(storage, layout)?;
        let mut acc = vec![0f32; self.src_dims.iter().product()];
        for_each_row(
            &self.src_dims,
            &self.dst_dims,
            |grad_at, acc_at, n, along| {
                let row = &grad[grad_at..grad_at + n];
                if along {
                    for (a, g) in acc[acc_at..acc_at + n].iter_mut().zip(row) {
                        *a += g;
                    }
                } else {
                    for g in row {
                        acc[acc_at] += g;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(acc), Shape::from(self.arg_dims.clone())))
    }
}

/// The f32 elements of `storage` under a contiguous `layout` (the callers
/// make their tensors contiguous first).
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("vla-expand: f32 only");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("vla-expand: a contiguous input is required"),
    }
}

/// Calls `f(dst_offset, src_offset, n, along)` for every row (last
/// dimension) of `dst_dims` in row-major order: the row's `n` elements start
/// at `dst_offset`; `src_dims` (same rank, 1 where broadcast) supplies them
/// from `src_offset`, one element each if `along`, else one element for all.
fn for_each_row(
    src_dims: &[usize],
    dst_dims: &[usize],
    mut f: impl FnMut(usize, usize, usize, bool),
) {
    let rank = dst_dims.len();
    if rank == 0 {
        f(0, 0, 1, true);
        return;
    }
    // Row-major strides of the source, 0 along broadcast dimensions.
    let mut src_strides = vec![0; rank];
    let mut stride = 1;
    for i in (0..rank).rev() {
        if src_dims[i] == dst_dims[i] {
            src_strides[i] = stride;
        }
        stride *= src_dims[i];
    }
    let n = dst_dims[rank - 1];
    let along = src_strides[rank - 1] == 1 || n == 1;
    let rows: usize = dst_dims[..rank - 1].iter().product();
    let mut index = vec![0usize; rank - 1];
    let mut src_at = 0;
    for row in 0..rows {
        f(row * n, src_at, n, along);
        // Odometer over the leading dimensions.
        for d in (0..rank - 1).rev() {
            index[d] += 1;
            src_at += src_strides[d];
            if index[d] < dst_dims[d] {
                break;
            }
            src_at -= src_strides[d] * dst_dims[d];
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Gradient of `sum(w ⊙ op(x, v))` with respect to `v`, with a fixed
    /// non-uniform `w` so every element's weight differs.
    fn grad_of(
        x: &Tensor,
        v: &Var,
        op: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> (Vec<f32>, Vec<f32>) {
        let y = op(x, v.as_tensor()).unwrap();
        let n = y.elem_count();
        let w = Tensor::arange(0f32, n as f32, x.device())
            .unwrap()
            .affine(0.37, 0.11)
            .unwrap()
            .sin()
            .unwrap()
            .reshape(y.dims())
            .unwrap();
        let loss = (&y * &w).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let g = grads.get(v.as_tensor()).unwrap();
        assert_eq!(g.dims(), v.dims());
        (
            y.flatten_all().unwrap().to_vec1().unwrap(),
            g.flatten_all().unwrap().to_vec1().unwrap(),
        )
    }

    /// Random-ish values with many significant bits, so a different
    /// summation order would show in the last bits.
    fn values(dims: &[usize], seed: f32) -> Tensor {
        let n: usize = dims.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .affine(1.618_034, seed as f64)
            .unwrap()
            .sin()
            .unwrap()
            .affine(3.3, 0.0)
            .unwrap()
            .reshape(dims)
            .unwrap()
    }

    #[test]
    fn values_and_gradients_are_the_same_bits_as_candles_broadcast() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[300, 17], &[17]),              // linear bias, layer-norm scale
            (&[4, 6, 6, 24], &[4, 1, 1, 24]), // FiLM
            (&[5, 9, 8], &[9, 8]),            // position embeddings
            (&[3, 7, 5], &[3, 1, 5]),
            (&[3, 7, 5], &[1, 7, 1]), // middle and last summed
            (&[6, 4], &[6, 1]),       // trailing: candle's own path
        ];
        for (case, &(x_dims, v_dims)) in cases.iter().enumerate() {
            let x = Var::from_tensor(&values(x_dims, 0.3)).unwrap();
            let v = Var::from_tensor(&values(v_dims, 1.7)).unwrap();
            let ours_add = grad_of(x.as_tensor(), &v, add);
            let candle_add = grad_of(x.as_tensor(), &v, |a, b| a.broadcast_add(b));
            assert_eq!(ours_add, candle_add, "add, case {case}");
            let ours_mul = grad_of(x.as_tensor(), &v, mul);
            let candle_mul = grad_of(x.as_tensor(), &v, |a, b| a.broadcast_mul(b));
            assert_eq!(ours_mul, candle_mul, "mul, case {case}");
            // x's own gradient through mul is v broadcast either way.
            let y = mul(x.as_tensor(), v.as_tensor()).unwrap();
            let gx = y.sum_all().unwrap().backward().unwrap();
            let gx = gx.get(x.as_tensor()).unwrap();
            let expect = v.as_tensor().broadcast_as(x_dims).unwrap();
            assert_eq!(
                gx.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                expect.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "x gradient, case {case}"
            );
        }
    }

    #[test]
    fn the_custom_op_is_used_where_candle_would_sum_slowly() {
        let v = Var::from_tensor(&values(&[17], 0.0)).unwrap();
        assert!(expanded(v.as_tensor(), &[30, 17]).unwrap().is_some());
        // Trailing-dimension sums, equal shapes and constants: candle's path.
        let col = Var::from_tensor(&values(&[30, 1], 0.0)).unwrap();
        assert!(expanded(col.as_tensor(), &[30, 17]).unwrap().is_none());
        assert!(expanded(v.as_tensor(), &[17]).unwrap().is_none());
        assert!(expanded(&values(&[17], 0.0), &[30, 17]).unwrap().is_none());
        // Shapes that do not broadcast still fail, with candle's error.
        let x = values(&[30, 16], 0.0);
        assert!(add(&x, v.as_tensor()).is_err());
    }

    #[test]
    fn a_strided_operand_expands_like_a_contiguous_one() {
        let base = Var::from_tensor(&values(&[8, 3], 0.9)).unwrap();
        let v = base.as_tensor().t().unwrap(); // (3, 8), not contiguous
        let x = values(&[5, 3, 8], 0.2);
        let ours = add(&x, &v).unwrap();
        let theirs = x.broadcast_add(&v).unwrap();
        assert_eq!(
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }
}

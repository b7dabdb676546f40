//! The keypoint head's 3×3 neighbourhood gather as one CPU pass each way.
//!
//! The context branch ([`crate::stem`]) reads every cell's features
//! followed by its eight neighbours'. Built from candle ops (pad twice, nine
//! narrowed views, a concatenation along the channels) it allocates a dozen
//! maps forward and, backward, nine zero-padded full-size gradients that are
//! then added up: on the 32×32 map (`--keypoint-stage 0`) that took a round
//! of training from 162 to 103 samples/s (session 31,
//! policies/default/README.md). [`neighbourhood_3x3`] does the gather in one
//! pass over the output and its backward in one pass over the input
//! gradient; the tests compare both with the candle-op version, which is
//! kept for other devices and dtypes.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

/// Map `(B, g, g, C)` → `(B, g, g, 9C)`: each cell's features followed by
/// its 8 neighbours' (zeros beyond the border), row by row (offsets
/// `(dy, dx)` in `-1..=1`, `dy` outer; the centre is the fifth block).
pub fn neighbourhood_3x3(map: &Tensor) -> Result<Tensor> {
    let (b, g, g2, c) = map.dims4()?;
    if g != g2 {
        candle_core::bail!("neighbourhood_3x3: square maps only, got {g}×{g2}");
    }
    if !map.device().is_cpu() || map.dtype() != DType::F32 {
        return neighbourhood_3x3_candle(map);
    }
    map.contiguous()?.apply_op1(Gather3x3 { b, g, c })
}

/// [`neighbourhood_3x3`] from candle ops: any device and dtype (the
/// reference the custom op is tested against).
pub fn neighbourhood_3x3_candle(map: &Tensor) -> Result<Tensor> {
    let (_, g, _, _) = map.dims4()?;
    let padded = map.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let mut parts = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            parts.push(padded.narrow(1, dy, g)?.narrow(2, dx, g)?);
        }
    }
    Tensor::cat(&parts, 3)
}

/// Calls `f(cell, neighbour, block)` for every cell of a `g × g` map (index
/// `y·g + x`), every neighbour inside the map (its index) and that
/// neighbour's block (0..9, `(dy + 1)·3 + (dx + 1)`), in output order.
fn for_each_neighbour(g: usize, mut f: impl FnMut(usize, usize, usize)) {
    for y in 0..g {
        for x in 0..g {
            let cell = y * g + x;
            for dy in 0..3 {
                let Some(ny) = (y + dy).checked_sub(1).filter(|&ny| ny < g) else {
                    continue;
                };
                for dx in 0..3 {
                    let Some(nx) = (x + dx).checked_sub(1).filter(|&nx| nx < g) else {
                        continue;
                    };
                    f(cell, ny * g + nx, dy * 3 + dx);
                }
            }
        }
    }
}

/// The gather: `(B, g, g, C)` → `(B, g, g, 9C)`.
struct Gather3x3 {
    b: usize,
    g: usize,
    c: usize,
}

impl CustomOp1 for Gather3x3 {
    fn name(&self) -> &'static str {
        "vla-neighbourhood-3x3"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, g, c) = (self.b, self.g, self.c);
        let src = contiguous_f32(storage, layout, &[b, g, g, c])?;
        let cells = g * g;
        let mut dst = vec![0f32; b * cells * 9 * c];
        for i in 0..b {
            let src = &src[i * cells * c..(i + 1) * cells * c];
            let dst = &mut dst[i * cells * 9 * c..(i + 1) * cells * 9 * c];
            for_each_neighbour(g, |cell, n, block| {
                let at = (cell * 9 + block) * c;
                dst[at..at + c].copy_from_slice(&src[n * c..(n + 1) * c]);
            });
        }
        Ok((CpuStorage::F32(dst), Shape::from((b, g, g, 9 * c))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let scatter = Scatter3x3 {
            b: self.b,
            g: self.g,
            c: self.c,
        };
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&scatter)?))
    }
}

/// The gather's backward: each cell's gradient is the sum of the gradients
/// of the nine blocks it was copied into.
struct Scatter3x3 {
    b: usize,
    g: usize,
    c: usize,
}

impl CustomOp1 for Scatter3x3 {
    fn name(&self) -> &'static str {
        "vla-neighbourhood-3x3-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, g, c) = (self.b, self.g, self.c);
        let grad = contiguous_f32(storage, layout, &[b, g, g, 9 * c])?;
        let cells = g * g;
        let mut acc = vec![0f32; b * cells * c];
        for i in 0..b {
            let grad = &grad[i * cells * 9 * c..(i + 1) * cells * 9 * c];
            let acc = &mut acc[i * cells * c..(i + 1) * cells * c];
            for_each_neighbour(g, |cell, n, block| {
                let at = (cell * 9 + block) * c;
                for (a, d) in acc[n * c..(n + 1) * c].iter_mut().zip(&grad[at..at + c]) {
                    *a += d;
                }
            });
        }
        Ok((CpuStorage::F32(acc), Shape::from((b, g, g, c))))
    }
}

/// The f32 elements of `storage` under a contiguous `layout` of `dims`.
fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    dims: &[usize],
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("vla-neighbourhood-3x3: f32 only");
    };
    if layout.dims() != dims {
        candle_core::bail!(
            "vla-neighbourhood-3x3: shape {:?}, expected {dims:?}",
            layout.dims()
        );
    }
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("vla-neighbourhood-3x3: a contiguous input is required"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(dims: &[usize], seed: f64) -> Tensor {
        let n: usize = dims.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .affine(1.618_034, seed)
            .unwrap()
            .sin()
            .unwrap()
            .reshape(dims)
            .unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn forward_is_exactly_the_candle_op_version() {
        for dims in [[2, 5, 5, 3], [1, 1, 1, 4], [3, 8, 8, 16], [1, 2, 2, 1]] {
            let map = values(&dims, 0.4);
            assert_eq!(
                flat(&neighbourhood_3x3(&map).unwrap()),
                flat(&neighbourhood_3x3_candle(&map).unwrap()),
                "{dims:?}"
            );
        }
    }

    #[test]
    fn a_strided_map_gathers_like_a_contiguous_one() {
        let map = values(&[2, 4, 4, 3], 0.1);
        let strided = map.transpose(1, 2).unwrap(); // not contiguous
        assert_eq!(
            flat(&neighbourhood_3x3(&strided).unwrap()),
            flat(&neighbourhood_3x3_candle(&strided).unwrap())
        );
    }

    #[test]
    fn gradient_matches_the_candle_op_version() {
        // sum(w ⊙ gather(x)) with a non-uniform w: every block's weight differs.
        let grad_of = |op: fn(&Tensor) -> Result<Tensor>| {
            let x = Var::from_tensor(&values(&[2, 6, 6, 5], 0.7)).unwrap();
            let y = op(x.as_tensor()).unwrap();
            let w = values(y.dims(), 2.3);
            let grads = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            flat(grads.get(x.as_tensor()).unwrap())
        };
        let ours = grad_of(neighbourhood_3x3);
        let theirs = grad_of(neighbourhood_3x3_candle);
        assert_eq!(ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            // Nine terms summed in another order: equal to rounding.
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "element {i}: {a} vs {b}"
            );
        }
        // A corner cell reaches 4 blocks, an edge cell 6, an inner cell 9:
        // with w = 1 its gradient counts them.
        let x = Var::from_tensor(&values(&[1, 3, 3, 1], 0.0)).unwrap();
        let g = neighbourhood_3x3(x.as_tensor())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(
            flat(g.get(x.as_tensor()).unwrap()),
            vec![4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]
        );
    }

    #[test]
    fn non_square_maps_are_refused() {
        assert!(neighbourhood_3x3(&values(&[1, 3, 4, 2], 0.0)).is_err());
    }
}

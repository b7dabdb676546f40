//! The image stem shared by the camera frame and the hand crop
//! ([`crate::crop`]): non-overlapping patch embedding, Swin-style 2×2
//! patch merging with layer norm, FiLM from the instruction after every
//! stage, and spatial-softmax keypoints on one stage's feature map.
//!
//! Each image input has its own `Stem` (own weights); the model turns the
//! last stage's map into tokens and the keypoints into one token each.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::broadcast;
use crate::keypoint_window::KeypointWindow;
use crate::model::XyHook;
use crate::neighbourhood::neighbourhood_3x3;
use crate::nn::{softmax_last, LayerNorm, Linear};

/// Shape of one stem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StemShape<'a> {
    /// Side of the square input, pixels.
    pub image_px: usize,
    /// Side of the patchify layer's patches, pixels.
    pub patch_px: usize,
    /// Output channels per stage (patchify, then one 2×2 merge per entry).
    pub channels: &'a [usize],
    /// FiLM from the pooled instruction ([`crate::grounding`]) of this
    /// width (`None` = off).
    pub film_text_hidden: Option<usize>,
    /// Keypoints (0 = none) and the stage whose map they read.
    pub keypoints: usize,
    /// Stage the keypoints read.
    pub keypoint_stage: usize,
    /// Width of the keypoint tokens.
    pub d_model: usize,
    /// 0: each keypoint's logit is a linear map of its cell's features.
    /// `h > 0`: plus a context branch — the cell's 3×3 neighbourhood of
    /// features (each reduced to [`CONTEXT_REDUCE`] channels) and the pooled
    /// instruction into a ReLU layer of width `h`, then to the logits:
    /// context across cell borders and a conjunction of "this colour" and
    /// "this shape" the FiLM'd features alone lack.
    pub keypoint_hidden: usize,
    /// 0: the keypoints' logits live on stage `keypoint_stage`'s cells.
    /// `h > 0`: refined onto the twice finer map of the stage before it —
    /// each coarse logit copied to its four sub-cells plus a context branch
    /// of width `h` over the finer map's 3×3 neighbourhoods and the pooled
    /// instruction. The branch's output layer starts at zero, so a warm
    /// start from a policy without it begins with the same keypoints.
    pub keypoint_refine: usize,
    /// Channels the refinement's branch reduces each finer-map cell to
    /// (the coarse branch always uses [`CONTEXT_REDUCE`]).
    pub keypoint_refine_reduce: usize,
}

/// What a stem computes for a batch.
pub(crate) struct StemOut {
    /// Last stage's feature map `(B, g, g, C)`.
    pub map: Tensor,
    /// Keypoint tokens `(B, K, d_model)`.
    pub keypoint_tokens: Option<Tensor>,
    /// Keypoint logits over the keypoint stage's cells `(B, K, cells)`.
    pub keypoint_logits: Option<Tensor>,
    /// Keypoints' expected positions `(B, K, 2)` in [−1, 1].
    pub keypoint_xy: Option<Tensor>,
}

/// Patch embedding + merges + FiLM + keypoints for one image input.
#[derive(Debug, Clone)]
pub(crate) struct Stem {
    patch_px: usize,
    /// Per stage: layer norm (merge stages only) and the patch embedding.
    layers: Vec<(Option<LayerNorm>, Linear)>,
    /// Per stage: instruction → `[scale, shift]` of its channels.
    film: Vec<Linear>,
    keypoints: Option<Keypoints>,
    keypoint_stage: usize,
}

impl Stem {
    /// Creates (or fetches) the stem's variables: stages under `vb_stem`
    /// (`{i}.norm`, `{i}.proj`, `{i}.film`), keypoints under `vb_keypoints`
    /// (`logits`, `to_token`, `embed`).
    pub fn new(
        shape: &StemShape<'_>,
        vb_stem: VarBuilder,
        vb_keypoints: VarBuilder,
    ) -> Result<Self> {
        let p = shape.patch_px;
        let mut layers = Vec::new();
        let mut film = Vec::new();
        let mut c_in = 3 * p * p;
        for (i, &c_out) in shape.channels.iter().enumerate() {
            let vb_i = vb_stem.pp(i.to_string());
            let norm = if i == 0 {
                None
            } else {
                Some(LayerNorm::new(c_in, vb_i.pp("norm"))?)
            };
            layers.push((norm, Linear::new(c_in, c_out, vb_i.pp("proj"))?));
            if let Some(text_hidden) = shape.film_text_hidden {
                film.push(Linear::new(text_hidden, 2 * c_out, vb_i.pp("film"))?);
            }
            c_in = 4 * c_out;
        }
        let keypoints = if shape.keypoints > 0 {
            let stage_channels = shape.channels[shape.keypoint_stage];
            let side = shape.image_px / (shape.patch_px << shape.keypoint_stage);
            let small = Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            };
            let context = if shape.keypoint_hidden > 0 {
                Some(Context::new(
                    stage_channels,
                    CONTEXT_REDUCE,
                    shape.keypoint_hidden,
                    shape,
                    false,
                    vb_keypoints.clone(),
                )?)
            } else {
                None
            };
            let refine = if shape.keypoint_refine > 0 {
                let Some(stage) = shape.keypoint_stage.checked_sub(1) else {
                    candle_core::bail!("keypoint_refine needs a keypoint stage after the first");
                };
                Some(Context::new(
                    shape.channels[stage],
                    shape.keypoint_refine_reduce,
                    shape.keypoint_refine,
                    shape,
                    true,
                    vb_keypoints.pp("refine"),
                )?)
            } else {
                None
            };
            let map_side = if refine.is_some() { 2 * side } else { side };
            Some(Keypoints {
                context,
                refine,
                logits: Linear::new(stage_channels, shape.keypoints, vb_keypoints.pp("logits"))?,
                grid: position_grid(map_side, vb_keypoints.device())?,
                to_token: Linear::new(2, shape.d_model, vb_keypoints.pp("to_token"))?,
                embed: vb_keypoints.get_with_hints(
                    (shape.keypoints, shape.d_model),
                    "embed",
                    small,
                )?,
                window: None,
            })
        } else {
            None
        };
        Ok(Self {
            patch_px: p,
            layers,
            film,
            keypoints,
            keypoint_stage: shape.keypoint_stage,
        })
    }

    /// Inference only: a local soft-argmax ([`crate::keypoint_window`]) for
    /// the keypoints `window` lists; `None`: the whole map (as trained). A
    /// stem without keypoints ignores it.
    pub fn set_keypoint_window(&mut self, window: Option<KeypointWindow>) {
        if let Some(kp) = self.keypoints.as_mut() {
            kp.window = window;
        }
    }

    /// Images `(B, 3, S, S)` in [0, 1] and the mean instruction token
    /// `(B, text_hidden)` (required with FiLM) → feature map and keypoints.
    pub fn forward(&self, images: &Tensor, pooled_text: Option<&Tensor>) -> Result<StemOut> {
        self.forward_hooked(images, pooled_text, None)
    }

    /// [`Self::forward`] with the keypoints' expected positions `(B, K, 2)`
    /// passed through `xy_hook` before they become tokens (and
    /// [`StemOut::keypoint_xy`]); the logits are left as they are. For
    /// inference-time filters ([`crate::keypoint_memory`]).
    pub fn forward_hooked(
        &self,
        images: &Tensor,
        pooled_text: Option<&Tensor>,
        xy_hook: Option<XyHook<'_>>,
    ) -> Result<StemOut> {
        let (b, c, h, w) = images.dims4()?;
        let p = self.patch_px;
        // (B, 3, H, W) → (B, H/p, W/p, p·p·3), channels last.
        let mut x = (images - 0.5)?
            .reshape((b, c, h / p, p, w / p, p))?
            .permute((0, 2, 4, 3, 5, 1))?
            .contiguous()?
            .reshape((b, h / p, w / p, p * p * c))?;
        // The stage before the keypoints' (for the refinement).
        let mut finer: Option<Tensor> = None;
        let mut out = StemOut {
            map: x.clone(),
            keypoint_tokens: None,
            keypoint_logits: None,
            keypoint_xy: None,
        };
        for (i, (norm, proj)) in self.layers.iter().enumerate() {
            if i > 0 {
                // 2×2 merge: (B, g, g, C) → (B, g/2, g/2, 4C).
                let (_, g, _, ch) = x.dims4()?;
                x = x
                    .reshape((b, g / 2, 2, g / 2, 2, ch))?
                    .permute((0, 1, 3, 2, 4, 5))?
                    .contiguous()?
                    .reshape((b, g / 2, g / 2, 4 * ch))?;
            }
            if let Some(norm) = norm {
                x = norm.forward(&x)?;
            }
            x = proj.forward(&x)?.relu()?;
            if let Some(film) = self.film.get(i) {
                let Some(pooled) = pooled_text else {
                    candle_core::bail!("a FiLM stem needs the pooled instruction");
                };
                // x·(1 + scale) + shift, per channel.
                let ch = x.dim(3)?;
                let scale_shift = film.forward(pooled)?.reshape((b, 1, 1, 2 * ch))?;
                let scale = (scale_shift.narrow(3, 0, ch)? + 1.0)?;
                let shift = scale_shift.narrow(3, ch, ch)?;
                x = broadcast::add(&broadcast::mul(&x, &scale)?, &shift)?;
            }
            if let Some(kp) = self.keypoints.as_ref() {
                if kp.refine.is_some() && i + 1 == self.keypoint_stage {
                    finer = Some(x.clone());
                }
            }
            if let Some(kp) = self.keypoints.as_ref().filter(|_| i == self.keypoint_stage) {
                let (tokens, logits, xy) = kp.tokens(&x, finer.as_ref(), pooled_text, xy_hook)?;
                out.keypoint_tokens = Some(tokens);
                out.keypoint_logits = Some(logits);
                out.keypoint_xy = Some(xy);
            }
        }
        out.map = x;
        Ok(out)
    }
}

/// Spatial-softmax keypoints (Levine et al. 2016): each keypoint is the
/// softmax-weighted mean position of one learned feature over a stem map.
#[derive(Debug, Clone)]
struct Keypoints {
    /// Context branch added to the logits, if `keypoint_hidden > 0`.
    context: Option<Context>,
    /// Branch on the finer map, if `keypoint_refine > 0`.
    refine: Option<Context>,
    /// Per-cell logits from the cell's own features.
    logits: Linear,
    /// `(positions, 2)`: (x, y) of each cell centre of the map the logits
    /// cover (the finer one with the refinement) in [−1, 1].
    grid: Tensor,
    to_token: Linear,
    /// `(keypoints, d_model)`.
    embed: Tensor,
    /// Inference only: the listed keypoints' expected positions over a
    /// window around their most likely cell ([`Stem::set_keypoint_window`]).
    window: Option<KeypointWindow>,
}

impl Keypoints {
    /// Feature map `(B, g, g, C)` (and, with the refinement, the previous
    /// stage's `(B, 2g, 2g, C')`) → keypoint tokens `(B, K, d_model)`, the
    /// keypoints' logits over the map's cells `(B, K, cells)` and their
    /// expected positions `(B, K, 2)` in [−1, 1].
    fn tokens(
        &self,
        map: &Tensor,
        finer: Option<&Tensor>,
        pooled_text: Option<&Tensor>,
        xy_hook: Option<XyHook<'_>>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, mut g, _, _) = map.dims4()?;
        let mut logits = self.logits.forward(map)?; // (B, g, g, K)
        if let Some(ctx) = &self.context {
            logits = (logits + ctx.forward(map, pooled_text)?)?;
        }
        if let Some(refine) = &self.refine {
            let Some(finer) = finer else {
                candle_core::bail!("the keypoint refinement needs the previous stage's map");
            };
            let k = logits.dim(3)?;
            // Row-major (B, 2g, 2g, K) is (B, g, 2, g, 2, K): each coarse
            // logit is added to its 2×2 sub-cells.
            let fine = refine.forward(finer, pooled_text)?;
            logits = broadcast::add(
                &fine.reshape((b, g, 2, g, 2, k))?,
                &logits.reshape((b, g, 1, g, 1, k))?,
            )?
            .reshape((b, 2 * g, 2 * g, k))?;
            g *= 2;
        }
        let k = logits.dim(3)?;
        let logits = logits
            .reshape((b, g * g, k))?
            .transpose(1, 2)?
            .contiguous()?;
        let mut weights = softmax_last(&logits)?;
        if let Some(window) = &self.window {
            weights = window_weights(&self.grid, &weights, &logits, g, window)?;
        }
        let xy = weights
            .reshape((b * k, g * g))?
            .matmul(&self.grid)?
            .reshape((b, k, 2))?;
        let xy = match xy_hook {
            Some(hook) => hook(&xy)?,
            None => xy,
        };
        let tokens = broadcast::add(&self.to_token.forward(&xy)?, &self.embed)?;
        Ok((tokens, logits, xy))
    }
}

/// `weights` `(B, K, g²)` over the cells of a `g × g` map whose centres
/// are `grid` `(g², 2)`: for the keypoints `window` lists, kept only within
/// `window.cells` cells (Chebyshev distance) of the row's most likely cell
/// by `logits` and renormalised to sum to 1; the other rows unchanged.
fn window_weights(
    grid: &Tensor,
    weights: &Tensor,
    logits: &Tensor,
    g: usize,
    window: &KeypointWindow,
) -> Result<Tensor> {
    let (b, k, cells) = weights.dims3()?;
    let best = logits.argmax_keepdim(2)?.flatten_all()?; // (B·K)
    let best_xy = grid.index_select(&best, 0)?; // (B·K, 2)
                                                // Cell centres are 2/g apart in map units; half a cell of slack.
    let reach = (2.0 * window.cells as f64 + 1.0) / g as f64;
    let far = grid
        .unsqueeze(0)?
        .broadcast_sub(&best_xy.unsqueeze(1)?)?
        .abs()?
        .max(2)?; // (B·K, g²)
    let inside = far.le(reach)?.to_dtype(weights.dtype())?;
    // Rows of unlisted keypoints keep every cell: mask = inside·on + (1 − on).
    let on: Vec<f32> = (0..b * k)
        .map(|row| f32::from(u8::from(window.keypoints.contains(&(row % k)))))
        .collect();
    let on = Tensor::from_vec(on, (b * k, 1), weights.device())?.to_dtype(weights.dtype())?;
    let off = on.affine(-1.0, 1.0)?;
    let mask = inside.broadcast_mul(&on)?.broadcast_add(&off)?;
    let kept = (weights.reshape((b * k, cells))? * mask)?;
    let total = kept.sum_keepdim(1)?;
    kept.broadcast_div(&total)?.reshape((b, k, cells))
}

/// Channels each cell's features are reduced to before the keypoint head's
/// context branch reads a 3×3 neighbourhood of them (9 × 16 inputs per cell
/// instead of 9 × 64 keeps the branch about as cheap as the stage itself).
pub(crate) const CONTEXT_REDUCE: usize = 16;

/// The keypoint head's context branch (`keypoint_hidden > 0`) and the
/// refinement's branch on the finer map (`keypoint_refine > 0`).
#[derive(Debug, Clone)]
struct Context {
    /// Cell features → `reduce_width` channels (ReLU).
    reduce: Linear,
    /// 3×3 neighbourhood of reduced features → hidden.
    hidden: Linear,
    /// Pooled instruction → hidden (with FiLM).
    from_text: Option<Linear>,
    /// Hidden (ReLU) → one logit per keypoint, added to the per-cell logits.
    out: Linear,
}

impl Context {
    /// A branch of width `h` over a map of `channels`, each cell reduced to
    /// `reduce_width` channels before the 3×3 gather, its variables under
    /// `vb` (`reduce`, `hidden`, `hidden_text`, `out`); `zero_out` starts
    /// the output layer at zero (the branch adds nothing until trained).
    fn new(
        channels: usize,
        reduce_width: usize,
        h: usize,
        shape: &StemShape<'_>,
        zero_out: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let from_text = match shape.film_text_hidden {
            Some(w) => Some(Linear::new(w, h, vb.pp("hidden_text"))?),
            None => None,
        };
        // Created in this order (the seeded initialisation draws in it).
        let reduce = Linear::new(channels, reduce_width, vb.pp("reduce"))?;
        let hidden = Linear::new(9 * reduce_width, h, vb.pp("hidden"))?;
        let out = if zero_out {
            Linear::zeros(h, shape.keypoints, vb.pp("out"))?
        } else {
            Linear::new(h, shape.keypoints, vb.pp("out"))?
        };
        Ok(Self {
            reduce,
            hidden,
            from_text,
            out,
        })
    }

    /// Map `(B, g, g, C)` → logits `(B, g, g, K)`.
    fn forward(&self, map: &Tensor, pooled_text: Option<&Tensor>) -> Result<Tensor> {
        let b = map.dim(0)?;
        let reduced = self.reduce.forward(map)?.relu()?;
        let mut h = self.hidden.forward(&neighbourhood_3x3(&reduced)?)?;
        if let (Some(proj), Some(text)) = (&self.from_text, pooled_text) {
            let t = proj.forward(text)?;
            let width = t.dim(1)?;
            h = broadcast::add(&h, &t.reshape((b, 1, 1, width))?)?;
        }
        self.out.forward(&h.relu()?)
    }
}

/// Cell centres of a `side × side` map as `(side², 2)` (x right, y down) in [−1, 1].
fn position_grid(side: usize, dev: &Device) -> Result<Tensor> {
    let centre = |i: usize| (2.0 * i as f32 + 1.0) / side as f32 - 1.0;
    let v: Vec<f32> = (0..side * side)
        .flat_map(|i| [centre(i % side), centre(i / side)])
        .collect();
    Tensor::from_vec(v, (side * side, 2), dev)
}

/// Bilinear cell targets of pixel `(u, v)` (pixel centres at integers) on
/// the `side × side` map of an `image_px` input: the four cells around it
/// and weights summing to 1 whose weighted mean of cell centres is the pixel
/// (clamped to the outermost centres). `None` outside the image.
pub(crate) fn bilinear_cells(
    image_px: usize,
    side: usize,
    u_px: f32,
    v_px: f32,
) -> Option<[(u32, f32); 4]> {
    let s = image_px as f32;
    if side == 0 || !(u_px >= -0.5 && v_px >= -0.5 && u_px < s - 0.5 && v_px < s - 0.5) {
        return None;
    }
    let g = side;
    let cell_px = s / g as f32;
    let last = g.saturating_sub(1) as f32;
    let axis = |p: f32| {
        let x = ((p + 0.5) / cell_px - 0.5).clamp(0.0, last);
        let i0 = (x.floor() as usize).min(g.saturating_sub(2));
        (i0, (x - i0 as f32).clamp(0.0, 1.0))
    };
    let ((i0, fx), (j0, fy)) = (axis(u_px), axis(v_px));
    let (i1, j1) = ((i0 + 1).min(g - 1), (j0 + 1).min(g - 1));
    let cell = |i: usize, j: usize| u32::try_from(j * g + i).unwrap_or(0);
    Some([
        (cell(i0, j0), (1.0 - fx) * (1.0 - fy)),
        (cell(i1, j0), fx * (1.0 - fy)),
        (cell(i0, j1), (1.0 - fx) * fy),
        (cell(i1, j1), fx * fy),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected positions `(K, 2)` of `weights` `(1, K, g²)` on `grid`.
    fn expected(weights: &Tensor, grid: &Tensor) -> Vec<Vec<f32>> {
        weights
            .get(0)
            .unwrap()
            .matmul(grid)
            .unwrap()
            .to_vec2()
            .unwrap()
    }

    #[test]
    fn the_window_keeps_the_stronger_mode_and_leaves_one_mode_alone() {
        let dev = Device::Cpu;
        let g = 4;
        let grid = position_grid(g, &dev).unwrap();
        // Keypoint 0: two modes, cell 0 (top left) a little stronger than
        // cell 15 (bottom right). Keypoint 1: one mode spread over cells 5,
        // 6 and 9.
        let mut rows = vec![vec![-10f32; g * g], vec![-10f32; g * g]];
        rows[0][0] = 2.0;
        rows[0][15] = 1.9;
        rows[1][5] = 2.0;
        rows[1][6] = 1.5;
        rows[1][9] = 1.0;
        let logits = Tensor::new(rows, &dev).unwrap().unsqueeze(0).unwrap();
        let weights = softmax_last(&logits).unwrap();
        let global = expected(&weights, &grid);
        let both = KeypointWindow {
            cells: 1,
            keypoints: vec![0, 1],
        };
        let local = expected(
            &window_weights(&grid, &weights, &logits, g, &both).unwrap(),
            &grid,
        );
        // The whole map averages the two modes into the middle…
        assert!(
            global[0][0].abs() < 0.1 && global[0][1].abs() < 0.1,
            "{global:?}"
        );
        // …the window keeps cell 0's centre (−0.75, −0.75).
        assert!(
            (local[0][0] + 0.75).abs() < 1e-3 && (local[0][1] + 0.75).abs() < 1e-3,
            "{local:?}"
        );
        // One mode within the window: unchanged.
        for a in 0..2 {
            assert!(
                (local[1][a] - global[1][a]).abs() < 1e-3,
                "{local:?} {global:?}"
            );
        }
        let sums: Vec<f32> = window_weights(&grid, &weights, &logits, g, &both)
            .unwrap()
            .sum(2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "{sums:?}");
        // A keypoint the window does not list keeps the whole map.
        let goal_only = KeypointWindow {
            cells: 1,
            keypoints: vec![1],
        };
        let partial = expected(
            &window_weights(&grid, &weights, &logits, g, &goal_only).unwrap(),
            &grid,
        );
        assert_eq!(partial[0], global[0]);
    }
}

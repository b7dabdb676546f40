//! Constrained decoding of the 8 action tokens in plain Rust, for batch-1
//! inference on the CPU (greedy or median, [`crate::decoding`]).
//!
//! [`crate::model::VlaModel::generate`] runs the decoder through candle: for
//! each of the 8 positions it re-runs every decoder layer over the prefix,
//! some 60 tensor ops per layer and position, each on vectors of 128 floats.
//! At that size candle's per-op cost (allocation, dispatch, thread hand-off)
//! is most of the time: 9 ms of a 13 ms step. Here the same arithmetic
//! runs on flat `f32` slices with a key/value cache, so each position costs
//! one pass of matrix-vector products (~0.5 M multiply-adds).
//!
//! The weights are copied out of the model once ([`FastDecoder::new`]); the
//! encoder's memory keys/values once per step ([`FastDecoder::generate`]).
//! The result equals `generate`'s bins (a test compares them, and the
//! logits, on random networks); the order of float additions differs, so
//! logits agree to ~1e-5, not bit for bit.

use candle_core::{DType, Result, Tensor};
use vla_core::TOKENS_PER_STEP;

use crate::decoding::{add_softmax, log_of_sum, Decoding};
use crate::model::{valid_bins, Memory, VlaModel};
use crate::nn::{LayerNorm, Linear};

/// A dense layer as flat row-major weights.
#[derive(Debug, Clone)]
struct Dense {
    /// `(d_out, d_in)`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    d_in: usize,
}

impl Dense {
    fn from(layer: &Linear) -> Result<Self> {
        let (_, d_in) = layer.weight.dims2()?;
        Ok(Self {
            weight: flat(&layer.weight)?,
            bias: flat(&layer.bias)?,
            d_in,
        })
    }

    /// `out = W·x + b`; `out` has `d_out` entries.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        for ((o, row), b) in out
            .iter_mut()
            .zip(self.weight.chunks_exact(self.d_in))
            .zip(&self.bias)
        {
            *o = dot(row, x) + b;
        }
    }
}

/// Layer norm parameters.
#[derive(Debug, Clone)]
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn from(ln: &LayerNorm) -> Result<Self> {
        Ok(Self {
            weight: flat(&ln.weight)?,
            bias: flat(&ln.bias)?,
            eps: ln.eps as f32,
        })
    }

    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + self.eps).sqrt();
        for (((o, v), w), b) in out.iter_mut().zip(x).zip(&self.weight).zip(&self.bias) {
            *o = (v - mean) * inv * w + b;
        }
    }
}

/// One decoder layer's weights.
#[derive(Debug, Clone)]
struct Layer {
    ln_self: Norm,
    self_q: Dense,
    self_kv: Dense,
    self_out: Dense,
    ln_cross: Norm,
    cross_q: Dense,
    cross_out: Dense,
    ln_mlp: Norm,
    fc1: Dense,
    fc2: Dense,
}

/// The decoder half of a [`VlaModel`], as flat `f32` weights.
#[derive(Debug, Clone)]
pub struct FastDecoder {
    d_model: usize,
    heads: usize,
    num_bins: usize,
    /// `(num_bins + 1, d_model)`: bin embeddings, then the begin token.
    action_embed: Vec<f32>,
    /// `(8, d_model)`.
    action_pos: Vec<f32>,
    layers: Vec<Layer>,
    ln_out: Norm,
    head: Dense,
    decoding: Decoding,
}

/// Scratch buffers and caches of one decoding run.
struct Scratch {
    h: Vec<f32>,
    normed: Vec<f32>,
    q: Vec<f32>,
    kv: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    hidden: Vec<f32>,
    scores: Vec<f32>,
    logits: Vec<f32>,
    /// Per layer: keys and values of the positions decoded so far, `(t, d)` each.
    self_k: Vec<Vec<f32>>,
    self_v: Vec<Vec<f32>>,
}

impl FastDecoder {
    /// Copies the decoder's weights out of `model`.
    pub fn new(model: &VlaModel) -> Result<Self> {
        let cfg = model.config();
        let layers = model
            .decoder
            .iter()
            .map(|blk| {
                let (ln_cross, cross) = blk.cross.as_ref().ok_or_else(|| {
                    candle_core::Error::Msg("decoder block without cross-attention".into())
                })?;
                Ok(Layer {
                    ln_self: Norm::from(&blk.ln_self)?,
                    self_q: Dense::from(&blk.self_attn.q)?,
                    self_kv: Dense::from(&blk.self_attn.kv)?,
                    self_out: Dense::from(&blk.self_attn.out)?,
                    ln_cross: Norm::from(ln_cross)?,
                    cross_q: Dense::from(&cross.q)?,
                    cross_out: Dense::from(&cross.out)?,
                    ln_mlp: Norm::from(&blk.ln_mlp)?,
                    fc1: Dense::from(&blk.mlp.fc1)?,
                    fc2: Dense::from(&blk.mlp.fc2)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            d_model: cfg.d_model,
            heads: cfg.heads,
            num_bins: cfg.num_bins,
            action_embed: flat(&model.action_embed)?,
            action_pos: flat(&model.action_pos)?,
            layers,
            ln_out: Norm::from(&model.ln_out)?,
            head: Dense::from(&model.head)?,
            decoding: Decoding::Greedy,
        })
    }

    /// The same decoder choosing bins by `decoding`.
    pub fn with_decoding(mut self, decoding: Decoding) -> Self {
        self.decoding = decoding;
        self
    }

    /// Constrained decoding of one observation's memory (batch 1).
    pub fn generate(&self, memory: &Memory) -> Result<[u32; TOKENS_PER_STEP]> {
        Ok(self.generate_with_logits(memory)?.0)
    }

    /// [`Self::generate`], also returning each position's masked logits.
    pub fn generate_with_logits(
        &self,
        memory: &Memory,
    ) -> Result<([u32; TOKENS_PER_STEP], Vec<Vec<f32>>)> {
        let mut run = Run::new(self, memory)?;
        let mut bins = [0u32; TOKENS_PER_STEP];
        let mut all_logits = Vec::with_capacity(TOKENS_PER_STEP);
        let mut input = self.num_bins; // begin token
        for (pos, slot) in bins.iter_mut().enumerate() {
            let logits = run.next_logits(pos, input);
            let valid = valid_bins(pos) as usize;
            let best = self.decoding.choose(pos, &logits[..valid]);
            *slot = best as u32;
            input = best;
            all_logits.push(logits.to_vec());
        }
        Ok((bins, all_logits))
    }

    /// Constrained decoding by an ensemble: each member's decoder reads its
    /// own memory, every position's distribution is the mean of the
    /// members' softmax distributions over the valid bins, the bin is chosen
    /// from it by `decoding`, and every member is fed that bin
    /// ([`crate::ensemble`]). With one member the bins equal
    /// [`Self::generate`]'s with the same rule.
    pub fn generate_joint(
        members: &[(&FastDecoder, &Memory)],
        decoding: Decoding,
    ) -> Result<[u32; TOKENS_PER_STEP]> {
        let Some((first, _)) = members.first() else {
            candle_core::bail!("an ensemble needs at least one member");
        };
        if members.iter().any(|(d, _)| d.num_bins != first.num_bins) {
            candle_core::bail!("ensemble members have different numbers of bins");
        }
        let mut runs = members
            .iter()
            .map(|(dec, mem)| Run::new(dec, mem))
            .collect::<Result<Vec<_>>>()?;
        let mut bins = [0u32; TOKENS_PER_STEP];
        let mut input = first.num_bins; // begin token
        let mut mean_p = vec![0f32; first.num_bins];
        for (pos, slot) in bins.iter_mut().enumerate() {
            let valid = valid_bins(pos) as usize;
            mean_p[..valid].fill(0.0);
            for run in &mut runs {
                let logits = run.next_logits(pos, input);
                add_softmax(&logits[..valid], &mut mean_p[..valid]);
            }
            let best = decoding.choose(pos, &log_of_sum(&mean_p[..valid]));
            *slot = best as u32;
            input = best;
        }
        Ok(bins)
    }

    /// One decoder layer for the newest position (its input in `s.h`).
    fn layer_step(
        &self,
        layer: &Layer,
        li: usize,
        mem: &(Vec<f32>, Vec<f32>),
        mem_bias: &[f32],
        s: &mut Scratch,
    ) {
        let d = self.d_model;
        // Causal self-attention over the cached positions and this one.
        layer.ln_self.apply(&s.h, &mut s.normed);
        layer.self_q.apply(&s.normed, &mut s.q);
        layer.self_kv.apply(&s.normed, &mut s.kv);
        s.self_k[li].extend_from_slice(&s.kv[..d]);
        s.self_v[li].extend_from_slice(&s.kv[d..]);
        let t = s.self_k[li].len() / d;
        attend(
            &s.q,
            (&s.self_k[li], &s.self_v[li]),
            t,
            self.heads,
            Layout::rows(d, self.heads),
            None,
            &mut s.scores,
            &mut s.attn,
        );
        layer.self_out.apply(&s.attn, &mut s.proj);
        add_into(&mut s.h, &s.proj);
        // Cross-attention to the memory, laid out (H, Tk, dh).
        layer.ln_cross.apply(&s.h, &mut s.normed);
        layer.cross_q.apply(&s.normed, &mut s.q);
        let tk = mem_bias.len();
        attend(
            &s.q,
            (&mem.0, &mem.1),
            tk,
            self.heads,
            Layout::heads_first(tk, d / self.heads),
            Some(mem_bias),
            &mut s.scores,
            &mut s.attn,
        );
        layer.cross_out.apply(&s.attn, &mut s.proj);
        add_into(&mut s.h, &s.proj);
        // MLP.
        layer.ln_mlp.apply(&s.h, &mut s.normed);
        layer.fc1.apply(&s.normed, &mut s.hidden);
        for v in &mut s.hidden {
            *v = v.max(0.0);
        }
        layer.fc2.apply(&s.hidden, &mut s.proj);
        add_into(&mut s.h, &s.proj);
    }
}

/// One member's decoding of one observation: the memory's keys/values as
/// flat buffers, the self-attention cache and scratch space.
struct Run<'a> {
    dec: &'a FastDecoder,
    /// Per layer: memory keys and values, laid out `(H, Tk, dh)`.
    mem: Vec<(Vec<f32>, Vec<f32>)>,
    mem_bias: Vec<f32>,
    s: Scratch,
}

impl<'a> Run<'a> {
    fn new(dec: &'a FastDecoder, memory: &Memory) -> Result<Self> {
        let d = dec.d_model;
        if memory.kv.len() != dec.layers.len() {
            candle_core::bail!(
                "memory has {} layers of keys/values, the decoder {}",
                memory.kv.len(),
                dec.layers.len()
            );
        }
        // Memory keys/values (1, H, Tk, dh) → per layer (H·Tk·dh) flat, and the mask.
        let mem_bias = flat(&memory.bias)?;
        let tk = mem_bias.len();
        let mut mem = Vec::with_capacity(dec.layers.len());
        for kv in &memory.kv {
            let (b, h, t, dh) = kv.k.dims4()?;
            if b != 1 || h != dec.heads || t != tk || h * dh != d {
                candle_core::bail!(
                    "memory keys are {b}×{h}×{t}×{dh}; expected 1 batch, {} heads, {tk} tokens",
                    dec.heads
                );
            }
            mem.push((flat(&kv.k)?, flat(&kv.v)?));
        }
        let hidden_width = dec.layers.first().map_or(0, |l| l.fc1.bias.len());
        let s = Scratch {
            h: vec![0.0; d],
            normed: vec![0.0; d],
            q: vec![0.0; d],
            kv: vec![0.0; 2 * d],
            attn: vec![0.0; d],
            proj: vec![0.0; d],
            hidden: vec![0.0; hidden_width],
            scores: vec![0.0; tk.max(TOKENS_PER_STEP)],
            logits: vec![0.0; dec.num_bins],
            self_k: vec![Vec::with_capacity(TOKENS_PER_STEP * d); dec.layers.len()],
            self_v: vec![Vec::with_capacity(TOKENS_PER_STEP * d); dec.layers.len()],
        };
        Ok(Self {
            dec,
            mem,
            mem_bias,
            s,
        })
    }

    /// The logits of position `pos` after feeding `input` (the previous
    /// position's bin, or the begin token at position 0), with the bins
    /// invalid at `pos` pushed to −∞. Positions must come in order.
    fn next_logits(&mut self, pos: usize, input: usize) -> &[f32] {
        let dec = self.dec;
        let d = dec.d_model;
        let s = &mut self.s;
        let emb = &dec.action_embed[input * d..(input + 1) * d];
        let pe = &dec.action_pos[pos * d..(pos + 1) * d];
        for ((h, e), p) in s.h.iter_mut().zip(emb).zip(pe) {
            *h = e + p;
        }
        for (li, layer) in dec.layers.iter().enumerate() {
            dec.layer_step(layer, li, &self.mem[li], &self.mem_bias, s);
        }
        dec.ln_out.apply(&s.h, &mut s.normed);
        dec.head.apply(&s.normed, &mut s.logits);
        let valid = valid_bins(pos) as usize;
        for l in s.logits.iter_mut().skip(valid) {
            *l += crate::model::NEG_INF as f32;
        }
        &s.logits
    }
}

/// Where key/value vector `(position j, head h)` starts in a flat buffer:
/// `j·position_stride + h·head_stride`.
#[derive(Debug, Clone, Copy)]
struct Layout {
    position_stride: usize,
    head_stride: usize,
}

impl Layout {
    /// Rows `(t, d)`: the decoder's own cache.
    fn rows(d: usize, heads: usize) -> Self {
        Self {
            position_stride: d,
            head_stride: d / heads,
        }
    }

    /// Heads first, `(heads, t, dh)`: candle's memory keys/values.
    fn heads_first(t: usize, dh: usize) -> Self {
        Self {
            position_stride: dh,
            head_stride: t * dh,
        }
    }
}

/// Attention of one query `q (d)` to `t` keys/values laid out as `layout`
/// says, with an optional additive bias per key.
#[allow(clippy::too_many_arguments)]
fn attend(
    q: &[f32],
    (k, v): (&[f32], &[f32]),
    t: usize,
    heads: usize,
    layout: Layout,
    bias: Option<&[f32]>,
    scores: &mut [f32],
    out: &mut [f32],
) {
    let dh = q.len() / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let at = |j: usize, h: usize| j * layout.position_stride + h * layout.head_stride;
    for h in 0..heads {
        let qh = &q[h * dh..(h + 1) * dh];
        for (j, sc) in scores.iter_mut().enumerate().take(t) {
            let o = at(j, h);
            *sc = dot(qh, &k[o..o + dh]) * scale + bias.map_or(0.0, |b| b[j]);
        }
        softmax_in_place(&mut scores[..t]);
        let oh = &mut out[h * dh..(h + 1) * dh];
        oh.fill(0.0);
        for (j, &p) in scores.iter().enumerate().take(t) {
            let o = at(j, h);
            axpy(p, &v[o..o + dh], oh);
        }
    }
}

fn softmax_in_place(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Dot product with 8 independent accumulators, so that the compiler keeps
/// them in one SIMD register.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_rest) = b.split_at(a8.len().min(b.len()));
    for (ca, cb) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += a·x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn add_into(y: &mut [f32], x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// A tensor's values, flattened, as f32.
fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}

//! Procedural textures for planes (the table top), baked once into a small
//! repeating tile of brightness factors that multiply the albedo.
//!
//! Texture coordinates are the plane's local x and y in metres, so the
//! pattern is fixed to the table and moves with it.

use std::f64::consts::TAU;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::RenderError;

/// Side of a baked wood-grain tile, in texels.
const WOOD_TILE_PX: usize = 256;
/// Period of a wood-grain tile, in metres.
const WOOD_TILE_M: f64 = 0.64;

/// A brightness pattern applied to every `Shape::Plane`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum Texture {
    /// Uniform albedo.
    #[default]
    Plain,
    /// Alternating squares, brightness `1 ± contrast / 2`.
    Checker {
        /// Side of one square.
        square_m: f64,
        /// Brightness difference between the two kinds of square, 0..=1.
        contrast: f32,
    },
    /// Wavy parallel grain lines along the plane's x axis, repeating every
    /// 0.64 m; the waviness and fine noise come from `seed`.
    WoodGrain {
        /// Distance between grain lines (rounded so a whole number fits the tile).
        ring_spacing_m: f64,
        /// Depth of the dark grain lines, 0..=1.
        contrast: f32,
        /// Seed of the waviness and noise.
        seed: u64,
    },
}

impl Texture {
    /// Checks sizes and contrast.
    pub fn validate(&self) -> Result<(), RenderError> {
        let (size_m, contrast) = match *self {
            Texture::Plain => return Ok(()),
            Texture::Checker { square_m, contrast } => (square_m, contrast),
            Texture::WoodGrain {
                ring_spacing_m,
                contrast,
                ..
            } => (ring_spacing_m, contrast),
        };
        if !(size_m.is_finite() && size_m > 1e-4) {
            return Err(RenderError::InvalidConfig(format!(
                "texture size {size_m} m must be finite and at least 0.1 mm"
            )));
        }
        if !(0.0..=1.0).contains(&contrast) {
            return Err(RenderError::InvalidConfig(format!(
                "texture contrast {contrast} outside 0..=1"
            )));
        }
        Ok(())
    }
}

/// Brightness factor of one texel unit (texels are stored as `u8`, so a
/// 256x256 tile is 64 KiB and stays in cache).
const TEXEL_UNIT: f32 = 1.0 / 128.0;

fn quantise(factor: f32) -> u8 {
    (factor / TEXEL_UNIT).round().clamp(0.0, 255.0) as u8
}

/// A repeating square tile of brightness factors with its mip pyramid: level
/// `k` has `side >> k` texels a side, each the mean of 2x2 texels of level
/// `k - 1`. A lookup picks the level whose texels match the pixel's footprint
/// on the plane, so fine patterns average out instead of aliasing.
#[derive(Debug, Clone)]
pub(crate) struct TextureTile {
    inv_period_m: f64,
    /// Inverse texel size of level 0, per metre.
    inv_texel_m: f64,
    /// (side, offset into `texels`) per level, finest first.
    levels: Vec<(usize, usize)>,
    texels: Vec<u8>,
}

impl TextureTile {
    /// Bakes a texture; `None` for `Plain`.
    pub(crate) fn bake(texture: &Texture) -> Option<TextureTile> {
        match *texture {
            Texture::Plain => None,
            Texture::Checker { square_m, contrast } => {
                let (hi, lo) = (1.0 + 0.5 * contrast, 1.0 - 0.5 * contrast);
                Some(Self::with_mips(2.0 * square_m, 2, vec![hi, lo, lo, hi]))
            }
            Texture::WoodGrain {
                ring_spacing_m,
                contrast,
                seed,
            } => Some(Self::wood(ring_spacing_m, contrast, seed)),
        }
    }

    /// A tile of period `period_m` from its finest level (`side` a power of two).
    fn with_mips(period_m: f64, side: usize, level0: Vec<f32>) -> TextureTile {
        let mut levels = vec![(side, 0)];
        let mut texels: Vec<u8> = level0.iter().map(|&f| quantise(f)).collect();
        let mut current = level0;
        let mut n = side;
        while n > 1 {
            let half = n / 2;
            let next: Vec<f32> = (0..half * half)
                .map(|i| {
                    let (x, y) = (2 * (i % half), 2 * (i / half));
                    0.25 * (current[y * n + x]
                        + current[y * n + x + 1]
                        + current[(y + 1) * n + x]
                        + current[(y + 1) * n + x + 1])
                })
                .collect();
            levels.push((half, texels.len()));
            texels.extend(next.iter().map(|&f| quantise(f)));
            current = next;
            n = half;
        }
        TextureTile {
            inv_period_m: 1.0 / period_m,
            inv_texel_m: side as f64 / period_m,
            levels,
            texels,
        }
    }

    fn wood(ring_spacing_m: f64, contrast: f32, seed: u64) -> TextureTile {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let lines = (WOOD_TILE_M / ring_spacing_m).round().max(1.0);
        // Wave terms (amplitude in grain-line units, integer frequencies so the
        // tile repeats seamlessly).
        let waves: Vec<(f64, f64, f64, f64)> = (0..3)
            .map(|k| {
                let amplitude = rng.gen_range(0.2..0.6) / f64::from(k + 1);
                let fx = f64::from(rng.gen_range(1..4) * (k + 1));
                let fy = f64::from(rng.gen_range(0..2));
                (amplitude, fx, fy, rng.gen_range(0.0..TAU))
            })
            .collect();
        let n = WOOD_TILE_PX;
        let mut level0 = Vec::with_capacity(n * n);
        for iy in 0..n {
            for ix in 0..n {
                let (u, v) = ((ix as f64 + 0.5) / n as f64, (iy as f64 + 0.5) / n as f64);
                let mut g = v * lines;
                for &(amplitude, fx, fy, phase) in &waves {
                    g += amplitude * (TAU * (fx * u + fy * v) + phase).sin();
                }
                let ring = 0.5 - 0.5 * (TAU * g).cos(); // 0 between lines, 1 on a line
                let noise: f64 = rng.gen_range(-1.0..1.0);
                let dark = ring.powi(4) + 0.12 * noise;
                level0.push((1.0 + 0.25 * f64::from(contrast) - f64::from(contrast) * dark) as f32);
            }
        }
        Self::with_mips(WOOD_TILE_M, n, level0)
    }

    /// Brightness factor at plane-local `(x, y)` for a pixel covering about
    /// `footprint_m` of the plane (nearest texel of the matching level).
    #[inline]
    pub(crate) fn sample(&self, x_m: f64, y_m: f64, footprint_m: f64) -> f32 {
        let ratio = (footprint_m * self.inv_texel_m) as f32;
        let level = if ratio < 2.0 {
            0
        } else {
            // floor(log2(ratio)) from the float's exponent (inf/NaN give the coarsest).
            ((ratio.to_bits() >> 23) & 0xff) as usize - 127
        };
        let (n, offset) = self.levels[level.min(self.levels.len() - 1)];
        let ix = wrap(x_m * self.inv_period_m * n as f64, n);
        let iy = wrap(y_m * self.inv_period_m * n as f64, n);
        f32::from(self.texels[offset + iy * n + ix]) * TEXEL_UNIT
    }
}

/// A multiple of every tile side: adding it makes texel coordinates positive,
/// so truncation is `floor` (exact in `f64` for |t| < 2^28).
const WRAP_OFFSET: f64 = (1u64 << 24) as f64;

/// `floor(t)` modulo `n` (a power of two), without a libm call or a branch.
#[inline(always)]
fn wrap(t: f64, n: usize) -> usize {
    ((t + WRAP_OFFSET) as i64 & (n as i64 - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_alternates_by_square() {
        let tile = TextureTile::bake(&Texture::Checker {
            square_m: 0.1,
            contrast: 0.4,
        })
        .unwrap();
        let a = tile.sample(0.05, 0.05, 0.01);
        let b = tile.sample(0.15, 0.05, 0.01);
        let c = tile.sample(0.15, 0.15, 0.01);
        assert!((a - 1.2).abs() < 0.005 && (b - 0.8).abs() < 0.005 && (c - 1.2).abs() < 0.005);
        // Negative coordinates continue the pattern.
        assert!((tile.sample(-0.05, 0.05, 0.01) - 0.8).abs() < 0.005);
        // Pixels wider than two squares see the average.
        assert!((tile.sample(0.05, 0.05, 0.25) - 1.0).abs() < 0.005);
        assert!((tile.sample(0.05, 0.05, f64::INFINITY) - 1.0).abs() < 0.005);
    }

    #[test]
    fn wood_grain_varies_and_depends_on_seed() {
        let wood = |seed| Texture::WoodGrain {
            ring_spacing_m: 0.02,
            contrast: 0.5,
            seed,
        };
        let a = TextureTile::bake(&wood(1)).unwrap();
        let b = TextureTile::bake(&wood(2)).unwrap();
        let fine = &a.texels[..WOOD_TILE_PX * WOOD_TILE_PX];
        let min = f32::from(*fine.iter().min().unwrap()) * TEXEL_UNIT;
        let max = f32::from(*fine.iter().max().unwrap()) * TEXEL_UNIT;
        assert!(max - min > 0.3, "{min}..{max}");
        // The mip levels flatten the grain: seen from far, the table is uniform.
        let far: Vec<f32> = (0..50)
            .map(|i| a.sample(0.013 * i as f64, 0.007 * i as f64, 0.2))
            .collect();
        let spread = far.iter().cloned().fold(f32::MIN, f32::max)
            - far.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread < 0.1, "{spread}");
        assert_ne!(a.texels, b.texels);
        assert_eq!(a.texels, TextureTile::bake(&wood(1)).unwrap().texels);
    }

    #[test]
    fn bad_textures_are_rejected() {
        let bad = Texture::Checker {
            square_m: 0.0,
            contrast: 0.5,
        };
        assert!(bad.validate().is_err());
        let bad = Texture::Checker {
            square_m: 0.1,
            contrast: f32::NAN,
        };
        assert!(bad.validate().is_err());
    }
}

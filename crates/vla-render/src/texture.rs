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

/// A repeating square tile of brightness factors.
#[derive(Debug, Clone)]
pub(crate) struct TextureTile {
    inv_period_m: f64,
    side_px: usize,
    texels: Vec<f32>,
}

impl TextureTile {
    /// Bakes a texture; `None` for `Plain`.
    pub(crate) fn bake(texture: &Texture) -> Option<TextureTile> {
        match *texture {
            Texture::Plain => None,
            Texture::Checker { square_m, contrast } => {
                let (hi, lo) = (1.0 + 0.5 * contrast, 1.0 - 0.5 * contrast);
                Some(TextureTile {
                    inv_period_m: 1.0 / (2.0 * square_m),
                    side_px: 2,
                    texels: vec![hi, lo, lo, hi],
                })
            }
            Texture::WoodGrain {
                ring_spacing_m,
                contrast,
                seed,
            } => Some(Self::wood(ring_spacing_m, contrast, seed)),
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
        let mut texels = Vec::with_capacity(n * n);
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
                texels.push((1.0 + 0.25 * f64::from(contrast) - f64::from(contrast) * dark) as f32);
            }
        }
        TextureTile {
            inv_period_m: 1.0 / WOOD_TILE_M,
            side_px: n,
            texels,
        }
    }

    /// Brightness factor at plane-local `(x, y)` (nearest texel).
    #[inline]
    pub(crate) fn sample(&self, x_m: f64, y_m: f64) -> f32 {
        let u = x_m * self.inv_period_m;
        let v = y_m * self.inv_period_m;
        let n = self.side_px;
        let ix = (((u - u.floor()) * n as f64) as usize).min(n - 1);
        let iy = (((v - v.floor()) * n as f64) as usize).min(n - 1);
        self.texels[iy * n + ix]
    }
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
        let a = tile.sample(0.05, 0.05);
        let b = tile.sample(0.15, 0.05);
        let c = tile.sample(0.15, 0.15);
        assert!((a - 1.2).abs() < 1e-6 && (b - 0.8).abs() < 1e-6 && (c - 1.2).abs() < 1e-6);
        // Negative coordinates continue the pattern.
        assert!((tile.sample(-0.05, 0.05) - 0.8).abs() < 1e-6);
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
        let min = a.texels.iter().cloned().fold(f32::MAX, f32::min);
        let max = a.texels.iter().cloned().fold(f32::MIN, f32::max);
        assert!(max - min > 0.3, "{min}..{max}");
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

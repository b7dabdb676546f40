//! Camera frames → network input, and the training-time augmentation.
//!
//! The network sees square RGB images of `image_size_px`, as f32 in [0, 1],
//! channel-first. Frames of any size and encoding are resized by
//! [`RgbFrame::resized_rgb8`] (area averaging). Augmentation follows DrQ /
//! RT-1 practice: a random shift of up to `shift_px` pixels (edge pixels
//! replicated, then cropped back to size) and colour jitter (brightness,
//! contrast, per-channel gain).

use candle_core::{Device, Tensor};
use rand::Rng;
use vla_core::RgbFrame;

use crate::error::Result;

/// How strongly to augment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Largest shift in pixels, each axis.
    pub shift_px: i32,
    /// Brightness offset range, ± (on the [0, 1] scale).
    pub brightness: f32,
    /// Contrast factor range, 1 ± this.
    pub contrast: f32,
    /// Per-channel gain range, 1 ± this.
    pub channel_gain: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            // 2 px of a 64 px frame is ~2 cm on the table: enough to
            // decorrelate pixels from positions a little, small enough to
            // keep the object-to-hand geometry the actions depend on.
            shift_px: 2,
            brightness: 0.08,
            contrast: 0.15,
            channel_gain: 0.05,
        }
    }
}

/// A frame resized to `size_px` square RGB8 (the form kept in memory).
pub fn to_model_rgb8(frame: &RgbFrame, size_px: usize) -> Result<Vec<u8>> {
    let side = u32::try_from(size_px).unwrap_or(u32::MAX);
    Ok(frame.resized_rgb8(side, side)?.data().to_vec())
}

/// Writes one `size × size` RGB8 image into `out` as CHW f32 in [0, 1],
/// augmented if `aug` is given. Returns the shift `(dx, dy)` applied: output
/// pixel `(x, y)` shows input pixel `(x + dx, y + dy)` (clamped at the border).
pub fn write_chw(
    rgb: &[u8],
    size: usize,
    aug: Option<(&Augment, &mut impl Rng)>,
    out: &mut [f32],
) -> (i32, i32) {
    let plane = size * size;
    let (mut dx, mut dy) = (0i32, 0i32);
    let (mut bright, mut contrast, mut gain) = (0f32, 1f32, [1f32; 3]);
    if let Some((a, rng)) = aug {
        if a.shift_px > 0 {
            dx = rng.gen_range(-a.shift_px..=a.shift_px);
            dy = rng.gen_range(-a.shift_px..=a.shift_px);
        }
        if a.brightness > 0.0 {
            bright = rng.gen_range(-a.brightness..=a.brightness);
        }
        if a.contrast > 0.0 {
            contrast = 1.0 + rng.gen_range(-a.contrast..=a.contrast);
        }
        if a.channel_gain > 0.0 {
            for g in &mut gain {
                *g = 1.0 + rng.gen_range(-a.channel_gain..=a.channel_gain);
            }
        }
    }
    let last = size as i32 - 1;
    for y in 0..size {
        let sy = (y as i32 + dy).clamp(0, last) as usize;
        for x in 0..size {
            let sx = (x as i32 + dx).clamp(0, last) as usize;
            let p = (sy * size + sx) * 3;
            for c in 0..3 {
                let v = rgb[p + c] as f32 / 255.0;
                let v = ((v - 0.5) * contrast + 0.5 + bright) * gain[c];
                out[c * plane + y * size + x] = v.clamp(0.0, 1.0);
            }
        }
    }
    (dx, dy)
}

/// One frame as a `(1, 3, S, S)` tensor, no augmentation.
pub fn frame_tensor(frame: &RgbFrame, size_px: usize, device: &Device) -> Result<Tensor> {
    chw_tensor(&to_model_rgb8(frame, size_px)?, size_px, device)
}

/// A `size × size` RGB8 image as a `(1, 3, size, size)` tensor in [0, 1].
pub fn chw_tensor(rgb: &[u8], size_px: usize, device: &Device) -> Result<Tensor> {
    let mut buf = vec![0f32; 3 * size_px * size_px];
    write_chw(
        rgb,
        size_px,
        None::<(&Augment, &mut rand::rngs::ThreadRng)>,
        &mut buf,
    );
    Ok(Tensor::from_vec(buf, (1, 3, size_px, size_px), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn plain_conversion_is_channel_first_and_scaled() {
        let rgb = vec![255, 0, 51, 0, 255, 0, 0, 0, 255, 10, 20, 30];
        let mut out = vec![0f32; 12];
        write_chw(&rgb, 2, None::<(&Augment, &mut ChaCha8Rng)>, &mut out);
        assert_eq!(out[0], 1.0); // R of pixel 0
        assert!((out[8] - 0.2).abs() < 1e-6); // B of pixel 0
        assert_eq!(out[4 + 1], 1.0); // G of pixel 1
    }

    #[test]
    fn augmentation_moves_pixels_but_keeps_range() {
        let size = 16;
        let rgb: Vec<u8> = (0..size * size * 3).map(|i| (i * 7 % 256) as u8).collect();
        let mut plain = vec![0f32; 3 * size * size];
        write_chw(&rgb, size, None::<(&Augment, &mut ChaCha8Rng)>, &mut plain);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut changed = 0;
        for _ in 0..5 {
            let mut aug = vec![0f32; 3 * size * size];
            write_chw(&rgb, size, Some((&Augment::default(), &mut rng)), &mut aug);
            assert!(aug.iter().all(|v| (0.0..=1.0).contains(v)));
            if aug != plain {
                changed += 1;
            }
        }
        assert!(changed >= 4);
    }
}

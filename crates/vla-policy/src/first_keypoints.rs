//! Where the goal and target objects were on the episode's first frame
//! (session 39), as 4 more values at the end of the state vector that the
//! relation token reads beside the current keypoints
//! (`ModelConfig::first_keypoints`).
//!
//! Why: one frame does not show how far a push has gone, and near the
//! release the held object hides the target while the hand pulls the goal
//! keypoint towards itself (policies/default/README.md, sessions 15, 26,
//! 31). On the first frame the hand is far away and nothing is held, so
//! that frame's keypoints are the cleanest view the episode gets of where
//! both objects stand. Unlike `keypoint_memory` (which *replaced* the
//! current estimate and hurt stacking), the current keypoints stay: the
//! network learns when each is worth reading.
//!
//! Values are map units ([−1, 1], the keypoints' own), goal `(x, y)` then
//! target `(x, y)`. Training takes them from the recorded pixels of the
//! episode's first frame plus Gaussian noise (what an estimate adds);
//! inference from the policy's own keypoints on the first frame after an
//! instruction ([`crate::VlaPolicy`]). A task without a target object, or
//! an object out of view, reads 0 there in training.

use rand::Rng;

/// Values the first-frame keypoints add to the state vector.
pub const FIRST_KEYPOINT_DIM: usize = 4;

/// Pixel `(u, v)` (pixel centres at integers) of an `image_px` frame →
/// keypoint map units.
pub fn px_to_map(uv_px: [f32; 2], image_px: usize) -> [f32; 2] {
    let side = image_px as f32;
    let to_map = |p: f32| 2.0 * (p + 0.5) / side - 1.0;
    [to_map(uv_px[0]), to_map(uv_px[1])]
}

/// The 4 state values of a training sample whose episode began with the
/// goal and target objects at `first_px` (pixels of an `image_px` frame,
/// `None` where unknown: 0 then), each coordinate moved by Gaussian noise
/// of `noise_px` pixels (none at 0; no draw then).
pub fn training_features(
    first_px: [Option<[f32; 2]>; 2],
    image_px: usize,
    noise_px: f32,
    rng: &mut impl Rng,
) -> [f32; FIRST_KEYPOINT_DIM] {
    let mut out = [0.0; FIRST_KEYPOINT_DIM];
    for (k, px) in first_px.iter().enumerate() {
        let Some(uv) = px else { continue };
        let mut uv = *uv;
        if noise_px > 0.0 {
            for c in &mut uv {
                *c += noise_px * standard_normal(rng);
            }
        }
        let xy = px_to_map(uv, image_px);
        out[2 * k] = xy[0];
        out[2 * k + 1] = xy[1];
    }
    out
}

/// Standard normal sample (Box–Muller).
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pixels_map_onto_the_keypoint_grid() {
        // The frame's first and last pixel centres sit half a pixel inside ±1.
        assert_eq!(px_to_map([-0.5, 127.5], 128), [-1.0, 1.0]);
        assert_eq!(px_to_map([63.5, 63.5], 128), [0.0, 0.0]);
    }

    #[test]
    fn unknown_objects_read_zero_and_noise_moves_the_rest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let exact = training_features([Some([63.5, 31.5]), None], 128, 0.0, &mut rng);
        assert_eq!(exact, [0.0, -0.5, 0.0, 0.0]);
        let noisy = training_features([Some([63.5, 31.5]), None], 128, 1.0, &mut rng);
        assert_ne!(noisy[..2], exact[..2]);
        assert!(noisy[..2]
            .iter()
            .zip(&exact[..2])
            .all(|(a, b)| (a - b).abs() < 0.2));
        assert_eq!(noisy[2..], [0.0, 0.0]);
    }
}

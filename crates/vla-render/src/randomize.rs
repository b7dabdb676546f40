//! Seeded domain randomisation: perturbs lighting, colours, camera pose and
//! table texture so that a policy does not overfit one rendering.
//!
//! Every function is a pure function of its inputs and the seed: each aspect
//! draws from its own ChaCha8 stream of `seed`, so switching one aspect on or
//! off does not change the others, and the same seed always gives the same
//! scene (hence bit-identical images).

use nalgebra::{Translation3, UnitQuaternion, UnitVector3, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Camera, Lighting, Primitive, RenderError, Renderer, Texture};

/// How much each aspect is perturbed; zero (the default) leaves it alone.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DomainRandomization {
    /// Relative lighting jitter `j` (0..=1): sun and ambient intensities are
    /// each scaled by a factor in `[1 - j, 1 + j]`, and the sun direction is
    /// tilted by up to `0.5 j` rad about a random axis.
    pub light_jitter: f32,
    /// Relative colour jitter `c` (0..=1): each primitive's albedo is scaled by
    /// a brightness factor in `[1 - c, 1 + c]` and each channel by a factor in
    /// `[1 - c/2, 1 + c/2]`, then clamped to 0..=1. Keep it small (≤ 0.15) so
    /// that a "red" cube stays red.
    pub colour_shade_jitter: f32,
    /// Camera position jitter: each world axis moves by up to this much.
    pub camera_pose_jitter_m: f64,
    /// Camera orientation jitter: a rotation about the camera's own axes of up
    /// to this much each.
    pub camera_pose_jitter_rad: f64,
    /// Whether to replace the plane (table) texture by a random one: plain,
    /// checker or wood grain with random scale and contrast.
    pub table_texture: bool,
}

/// Stream ids, one per aspect.
const LIGHT_STREAM: u64 = 1;
const COLOUR_STREAM: u64 = 2;
const CAMERA_STREAM: u64 = 3;
const TEXTURE_STREAM: u64 = 4;

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A uniform draw in `[-1, 1]`.
fn signed_unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.gen_range(-1.0..=1.0)
}

impl DomainRandomization {
    /// A moderate setting suitable for training data: ±20 % light, ±8 %
    /// colour, ±1 cm and ±0.02 rad camera, random table texture.
    pub fn moderate() -> Self {
        Self {
            light_jitter: 0.2,
            colour_shade_jitter: 0.08,
            camera_pose_jitter_m: 0.01,
            camera_pose_jitter_rad: 0.02,
            table_texture: true,
        }
    }

    /// Checks that every amplitude is finite and in range.
    pub fn validate(&self) -> Result<(), RenderError> {
        let bad = |m: String| Err(RenderError::InvalidRandomization(m));
        for (name, v) in [
            ("light_jitter", self.light_jitter),
            ("colour_shade_jitter", self.colour_shade_jitter),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("{name} = {v} outside 0..=1"));
            }
        }
        for (name, v) in [
            ("camera_pose_jitter_m", self.camera_pose_jitter_m),
            ("camera_pose_jitter_rad", self.camera_pose_jitter_rad),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} = {v} must be finite and non-negative"));
            }
        }
        Ok(())
    }

    /// The lighting perturbed for `seed`.
    pub fn lighting(&self, seed: u64, lighting: &Lighting) -> Result<Lighting, RenderError> {
        self.validate()?;
        lighting.validate()?;
        let j = f64::from(self.light_jitter);
        if j == 0.0 {
            return Ok(*lighting);
        }
        let mut rng = rng_for(seed, LIGHT_STREAM);
        let sun_scale = 1.0 + j * signed_unit(&mut rng);
        let ambient_scale = 1.0 + j * signed_unit(&mut rng);
        let axis = Vector3::new(
            signed_unit(&mut rng),
            signed_unit(&mut rng),
            signed_unit(&mut rng),
        );
        let angle_rad = 0.5 * j * rng.gen_range(0.0..=1.0);
        let tilt = match UnitVector3::try_new(axis, 1e-6) {
            Some(axis) => UnitQuaternion::from_axis_angle(&axis, angle_rad),
            None => UnitQuaternion::identity(),
        };
        Ok(Lighting {
            sun_direction_in_world: tilt * lighting.sun_direction_in_world,
            sun_intensity: (f64::from(lighting.sun_intensity) * sun_scale) as f32,
            ambient: (f64::from(lighting.ambient) * ambient_scale) as f32,
            shadows: lighting.shadows,
        })
    }

    /// Perturbs the colours of `primitives` in place (the i-th primitive always
    /// gets the i-th draw of the seed's colour stream).
    pub fn colours(&self, seed: u64, primitives: &mut [Primitive]) -> Result<(), RenderError> {
        self.validate()?;
        let c = self.colour_shade_jitter;
        if c == 0.0 {
            return Ok(());
        }
        let mut rng = rng_for(seed, COLOUR_STREAM);
        for prim in primitives.iter_mut() {
            let brightness = 1.0 + c * signed_unit(&mut rng) as f32;
            for channel in prim.rgb.iter_mut() {
                let tint = 1.0 + 0.5 * c * signed_unit(&mut rng) as f32;
                *channel = (*channel * brightness * tint).clamp(0.0, 1.0);
            }
        }
        Ok(())
    }

    /// The camera with its pose perturbed for `seed` (intrinsics unchanged).
    pub fn camera(&self, seed: u64, camera: &Camera) -> Result<Camera, RenderError> {
        self.validate()?;
        camera.validate()?;
        let mut rng = rng_for(seed, CAMERA_STREAM);
        let m = self.camera_pose_jitter_m;
        let r = self.camera_pose_jitter_rad;
        let shift = Vector3::new(
            m * signed_unit(&mut rng),
            m * signed_unit(&mut rng),
            m * signed_unit(&mut rng),
        );
        let turn = UnitQuaternion::from_scaled_axis(Vector3::new(
            r * signed_unit(&mut rng),
            r * signed_unit(&mut rng),
            r * signed_unit(&mut rng),
        ));
        let mut out = *camera;
        out.world_from_camera.rotation = camera.world_from_camera.rotation * turn;
        out.world_from_camera.translation =
            Translation3::from(camera.world_from_camera.translation.vector + shift);
        Ok(out)
    }

    /// A random table texture for `seed` when `table_texture` is on, else `base`.
    pub fn texture(&self, seed: u64, base: Texture) -> Result<Texture, RenderError> {
        self.validate()?;
        if !self.table_texture {
            return Ok(base);
        }
        let mut rng = rng_for(seed, TEXTURE_STREAM);
        Ok(match rng.gen_range(0..3) {
            0 => Texture::Plain,
            1 => Texture::Checker {
                square_m: rng.gen_range(0.03..0.12),
                contrast: rng.gen_range(0.08..0.3),
            },
            _ => Texture::WoodGrain {
                ring_spacing_m: rng.gen_range(0.008..0.03),
                contrast: rng.gen_range(0.15..0.5),
                seed: rng.gen(),
            },
        })
    }

    /// Applies every aspect for `seed`: lighting, colours and camera in place,
    /// and (when `table_texture` is on) a random plane texture on `renderer`.
    pub fn apply(
        &self,
        seed: u64,
        lighting: &mut Lighting,
        primitives: &mut [Primitive],
        camera: &mut Camera,
        renderer: &mut Renderer,
    ) -> Result<(), RenderError> {
        let new_lighting = self.lighting(seed, lighting)?;
        let new_camera = self.camera(seed, camera)?;
        let texture = self.texture(seed, renderer.config().plane_texture)?;
        self.colours(seed, primitives)?;
        *lighting = new_lighting;
        *camera = new_camera;
        renderer.set_plane_texture(texture)
    }
}

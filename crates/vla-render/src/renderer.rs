//! The renderer: a z-buffered triangle rasteriser with deferred shading.
//!
//! Per frame: (1) the sun's shadow map is drawn from the casters; (2) every
//! primitive's cached unit mesh is scaled, posed into the camera frame and
//! rasterised into a small G-buffer (inverse depth, primitive index,
//! interpolated Lambert factor; perspective-correct); (3) each pixel is shaded
//! once: albedo (linear) x plane texture x (ambient + sun x Lambert x shadow
//! visibility), converted to 8-bit sRGB through a lookup table. Buffers live in
//! the renderer and are reused; only the two output images are allocated.

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};
use vla_core::{PixelEncoding, RgbFrame};

use crate::clip::{ClipVertex, Polygon};
use crate::mesh::{Mesh, MeshLibrary};
use crate::raster::{raster_triangle, PlaneEq, GUARD_BAND_PX};
use crate::shadow::ShadowMap;
use crate::texture::{Texture, TextureTile};
use crate::{Camera, Lighting, Primitive, RenderError, Shape};

/// Most primitives one frame may hold (the per-pixel index is 16 bits).
pub const MAX_PRIMITIVES: usize = u16::MAX as usize - 1;
const NO_PRIMITIVE: u16 = u16::MAX;
const SRGB_LUT_SIZE: usize = 4096;

/// Fixed settings of a renderer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RenderConfig {
    /// Colour where nothing is drawn, sRGB 0..=1.
    pub background_rgb: [f32; 3],
    /// Side of the square sun shadow map, in texels (16..=4096).
    pub shadow_map_px: u32,
    /// Near clipping distance along the optical axis.
    pub near_clip_m: f64,
    /// Brightness pattern of every `Shape::Plane` (the table top).
    pub plane_texture: Texture,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            background_rgb: [0.72, 0.74, 0.78],
            shadow_map_px: 256,
            near_clip_m: 0.01,
            plane_texture: Texture::Plain,
        }
    }
}

impl RenderConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), RenderError> {
        if !self.background_rgb.iter().all(|c| (0.0..=1.0).contains(c)) {
            return Err(RenderError::InvalidConfig(format!(
                "background_rgb {:?} outside 0..=1",
                self.background_rgb
            )));
        }
        if !(16..=4096).contains(&self.shadow_map_px) {
            return Err(RenderError::InvalidConfig(format!(
                "shadow_map_px {} outside 16..=4096",
                self.shadow_map_px
            )));
        }
        if !(self.near_clip_m.is_finite() && self.near_clip_m > 0.0) {
            return Err(RenderError::InvalidConfig(format!(
                "near_clip_m {} must be finite and positive",
                self.near_clip_m
            )));
        }
        self.plane_texture.validate()
    }
}

/// One rendered frame.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutput {
    /// The colour image, `rgb8`.
    pub rgb: RgbFrame,
    /// Z-depth along the optical axis per pixel, row-major, metres;
    /// `f32::INFINITY` where nothing was drawn.
    pub depth_m: Vec<f32>,
}

/// Per-primitive data the shading pass needs.
#[derive(Debug, Clone, Copy)]
struct ShadingInfo {
    albedo_linear: [f32; 3],
    /// For textured planes: the first two rows of `plane_from_camera` (3x4),
    /// mapping a camera-space point to plane-local x and y.
    texture_rows: Option<[[f64; 4]; 2]>,
}

/// Renders primitives to RGB and depth images. Keeps its buffers between calls.
#[derive(Debug, Clone)]
pub struct Renderer {
    config: RenderConfig,
    meshes: MeshLibrary,
    texture: Option<TextureTile>,
    srgb_lut: Vec<u8>,
    background_rgb8: [u8; 3],
    inv_depth: Vec<f32>,
    primitive_index: Vec<u16>,
    lambert: Vec<f32>,
    shadow: ShadowMap,
    vertices: Vec<ClipVertex>,
    shading: Vec<ShadingInfo>,
    ray_x: Vec<f64>,
    ray_y: Vec<f64>,
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f32) -> f32 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

fn to_u8(c: f32) -> u8 {
    (c.clamp(0.0, 1.0) * 255.0).round() as u8
}

impl Renderer {
    /// A renderer with the given settings; fails if they are out of range.
    pub fn new(config: RenderConfig) -> Result<Renderer, RenderError> {
        config.validate()?;
        let srgb_lut = (0..SRGB_LUT_SIZE)
            .map(|i| to_u8(linear_to_srgb(i as f32 / (SRGB_LUT_SIZE - 1) as f32)))
            .collect();
        Ok(Renderer {
            config,
            meshes: MeshLibrary::new(),
            texture: TextureTile::bake(&config.plane_texture),
            srgb_lut,
            background_rgb8: config.background_rgb.map(to_u8),
            inv_depth: Vec::new(),
            primitive_index: Vec::new(),
            lambert: Vec::new(),
            shadow: ShadowMap::new(config.shadow_map_px as usize),
            vertices: Vec::new(),
            shading: Vec::new(),
            ray_x: Vec::new(),
            ray_y: Vec::new(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &RenderConfig {
        &self.config
    }

    /// Replaces the plane texture (e.g. per episode, from domain randomisation).
    pub fn set_plane_texture(&mut self, texture: Texture) -> Result<(), RenderError> {
        texture.validate()?;
        self.texture = TextureTile::bake(&texture);
        self.config.plane_texture = texture;
        Ok(())
    }

    /// Draws `primitives` as seen by `camera` under `lighting`.
    pub fn render(
        &mut self,
        primitives: &[Primitive],
        camera: &Camera,
        lighting: &Lighting,
    ) -> Result<RenderOutput, RenderError> {
        camera.validate()?;
        lighting.validate()?;
        if primitives.len() > MAX_PRIMITIVES {
            return Err(RenderError::TooManyPrimitives {
                count: primitives.len(),
                max: MAX_PRIMITIVES,
            });
        }
        crate::scene::validate_all(primitives)?;

        let (width, height) = (camera.width_px as usize, camera.height_px as usize);
        let pixels = width * height;
        self.inv_depth.clear();
        self.inv_depth.resize(pixels, 0.0);
        self.primitive_index.clear();
        self.primitive_index.resize(pixels, NO_PRIMITIVE);
        self.lambert.clear();
        self.lambert.resize(pixels, 0.0);

        let sun_dir_in_world = lighting.sun_direction_in_world.normalize();
        let shadows = lighting.shadows && lighting.sun_intensity > 0.0;
        if shadows {
            self.shadow
                .build(&self.meshes, primitives, &sun_dir_in_world);
        } else {
            self.shadow.active = false;
        }

        let camera_from_world = camera.world_from_camera.inverse();
        self.shading.clear();
        for (index, prim) in primitives.iter().enumerate() {
            let camera_from_shape = camera_from_world * prim.world_from_shape;
            let texture_rows = match (&prim.shape, &self.texture) {
                (Shape::Plane { .. }, Some(_)) => {
                    let m = camera_from_shape.inverse().to_homogeneous();
                    Some([
                        [m[(0, 0)], m[(0, 1)], m[(0, 2)], m[(0, 3)]],
                        [m[(1, 0)], m[(1, 1)], m[(1, 2)], m[(1, 3)]],
                    ])
                }
                _ => None,
            };
            self.shading.push(ShadingInfo {
                albedo_linear: prim.rgb.map(srgb_to_linear),
                texture_rows,
            });
            let mesh = self.meshes.get(&prim.shape);
            let sun_dir_in_shape = prim.world_from_shape.rotation.inverse() * sun_dir_in_world;
            pose_vertices(
                mesh,
                prim,
                camera_from_shape.rotation.to_rotation_matrix().matrix(),
                &camera_from_shape.translation.vector,
                &sun_dir_in_shape,
                &mut self.vertices,
            );
            let mut target = Target {
                camera,
                width,
                height,
                near_m: self.config.near_clip_m,
                index: index as u16,
                inv_depth: &mut self.inv_depth,
                primitive_index: &mut self.primitive_index,
                lambert: &mut self.lambert,
            };
            for tri in &mesh.triangles {
                let [a, b, c] = tri.map(|i| self.vertices[i as usize]);
                let facing_away = (b.p - a.p).cross(&(c.p - a.p)).dot(&a.p) >= 0.0;
                if facing_away && mesh.closed {
                    continue;
                }
                target.draw(a, b, c, if facing_away { -1.0 } else { 1.0 });
            }
        }
        self.resolve(camera, lighting, &camera_from_world)
    }

    /// Shades the G-buffer into the output images.
    fn resolve(
        &mut self,
        camera: &Camera,
        lighting: &Lighting,
        camera_from_world: &nalgebra::Isometry3<f64>,
    ) -> Result<RenderOutput, RenderError> {
        let (width, height) = (camera.width_px as usize, camera.height_px as usize);
        self.ray_x.clear();
        self.ray_x
            .extend((0..width).map(|x| (x as f64 - camera.cx_px) / camera.fx_px));
        self.ray_y.clear();
        self.ray_y
            .extend((0..height).map(|y| (y as f64 - camera.cy_px) / camera.fy_px));
        let world_from_camera = camera_from_world.inverse();
        let light_from_camera: Matrix3<f64> =
            self.shadow.light_from_world * world_from_camera.rotation.to_rotation_matrix().matrix();
        let light_offset = self.shadow.light_from_world * world_from_camera.translation.vector;
        let (ambient, sun) = (lighting.ambient, lighting.sun_intensity);
        let lut_scale = (SRGB_LUT_SIZE - 1) as f32;

        let mut rgb = vec![0u8; width * height * 3];
        let mut depth_m = vec![f32::INFINITY; width * height];
        for y in 0..height {
            let ray_y = self.ray_y[y];
            for x in 0..width {
                let i = y * width + x;
                let id = self.primitive_index[i];
                let out = &mut rgb[3 * i..3 * i + 3];
                if id == NO_PRIMITIVE {
                    out.copy_from_slice(&self.background_rgb8);
                    continue;
                }
                let z = 1.0 / f64::from(self.inv_depth[i]);
                depth_m[i] = z as f32;
                let p = Vector3::new(self.ray_x[x] * z, ray_y * z, z);
                let lambert = self.lambert[i].clamp(0.0, 1.0);
                let visible = if lambert > 0.0 && self.shadow.active {
                    let p_in_light = light_from_camera * p + light_offset;
                    self.shadow.visibility(&p_in_light, f64::from(lambert))
                } else {
                    1.0
                };
                let info = &self.shading[id as usize];
                let mut light = ambient + sun * lambert * visible;
                if let (Some(rows), Some(tile)) = (&info.texture_rows, &self.texture) {
                    let u = rows[0][0] * p.x + rows[0][1] * p.y + rows[0][2] * p.z + rows[0][3];
                    let v = rows[1][0] * p.x + rows[1][1] * p.y + rows[1][2] * p.z + rows[1][3];
                    light *= tile.sample(u, v);
                }
                for (o, a) in out.iter_mut().zip(info.albedo_linear) {
                    let k = ((a * light).min(1.0) * lut_scale + 0.5) as usize;
                    *o = self.srgb_lut[k.min(SRGB_LUT_SIZE - 1)];
                }
            }
        }
        let rgb = RgbFrame::new(camera.width_px, camera.height_px, PixelEncoding::Rgb8, rgb)?;
        Ok(RenderOutput { rgb, depth_m })
    }
}

/// Writes the camera-space vertices of `prim` (with their signed Lambert
/// factor) into `out`.
fn pose_vertices(
    mesh: &Mesh,
    prim: &Primitive,
    camera_from_shape_rot: &Matrix3<f64>,
    camera_from_shape_trans: &Vector3<f64>,
    sun_dir_in_shape: &Vector3<f64>,
    out: &mut Vec<ClipVertex>,
) {
    let scale = Vector3::from(prim.shape.mesh_scale());
    let inv_scale = scale.map(|s| 1.0 / s);
    out.clear();
    out.extend(mesh.positions.iter().zip(&mesh.normals).map(|(p, n)| {
        let normal = n.component_mul(&inv_scale).normalize();
        ClipVertex {
            p: camera_from_shape_rot * p.component_mul(&scale) + camera_from_shape_trans,
            shade: -normal.dot(sun_dir_in_shape),
        }
    }));
}

/// The camera pass's raster target for one primitive.
struct Target<'a> {
    camera: &'a Camera,
    width: usize,
    height: usize,
    near_m: f64,
    index: u16,
    inv_depth: &'a mut [f32],
    primitive_index: &'a mut [u16],
    lambert: &'a mut [f32],
}

impl Target<'_> {
    /// Half the guard band: vertices projecting beyond it are clipped first.
    const SAFE_PX: f64 = GUARD_BAND_PX * 0.5;

    fn project(&self, p: &Vector3<f64>) -> [f64; 2] {
        [
            self.camera.fx_px * p.x / p.z + self.camera.cx_px,
            self.camera.fy_px * p.y / p.z + self.camera.cy_px,
        ]
    }

    /// Draws a triangle whose Lambert factors are multiplied by `side`
    /// (-1 for the back of a two-sided surface).
    fn draw(&mut self, a: ClipVertex, b: ClipVertex, c: ClipVertex, side: f64) {
        let near = self.near_m;
        if a.p.z < near && b.p.z < near && c.p.z < near {
            return;
        }
        if a.p.z >= near && b.p.z >= near && c.p.z >= near {
            let xy = [self.project(&a.p), self.project(&b.p), self.project(&c.p)];
            if xy
                .iter()
                .all(|q| q[0].abs() < Self::SAFE_PX && q[1].abs() < Self::SAFE_PX)
            {
                self.fill(&xy, [a, b, c], side);
                return;
            }
        }
        let (fx, fy, cx, cy) = (
            self.camera.fx_px,
            self.camera.fy_px,
            self.camera.cx_px,
            self.camera.cy_px,
        );
        let g = Self::SAFE_PX * 0.5;
        let planes = [
            [0.0, 0.0, 1.0, -near],
            [-fx, 0.0, g - cx, 0.0],
            [fx, 0.0, g + cx, 0.0],
            [0.0, -fy, g - cy, 0.0],
            [0.0, fy, g + cy, 0.0],
        ];
        let mut poly = Polygon::triangle(a, b, c);
        for plane in planes {
            poly = poly.clip(plane);
            if poly.len < 3 {
                return;
            }
        }
        let first = poly.vertices[0];
        for k in 1..poly.len - 1 {
            let (v1, v2) = (poly.vertices[k], poly.vertices[k + 1]);
            let xy = [
                self.project(&first.p),
                self.project(&v1.p),
                self.project(&v2.p),
            ];
            self.fill(&xy, [first, v1, v2], side);
        }
    }

    fn fill(&mut self, xy: &[[f64; 2]; 3], v: [ClipVertex; 3], side: f64) {
        let inv_z = v.map(|v| 1.0 / v.p.z);
        let Some(inv_depth) = PlaneEq::new(xy, inv_z) else {
            return;
        };
        let Some(shade_over_z) = PlaneEq::new(
            xy,
            [
                side * v[0].shade * inv_z[0],
                side * v[1].shade * inv_z[1],
                side * v[2].shade * inv_z[2],
            ],
        ) else {
            return;
        };
        let (depth_buf, index_buf, lambert_buf) = (
            &mut *self.inv_depth,
            &mut *self.primitive_index,
            &mut *self.lambert,
        );
        let index = self.index;
        raster_triangle(xy, self.width, self.height, |i, x, y| {
            let (xf, yf) = (x as f64, y as f64);
            let iz = inv_depth.at(xf, yf);
            let izf = iz as f32;
            if izf > depth_buf[i] {
                depth_buf[i] = izf;
                index_buf[i] = index;
                lambert_buf[i] = (shade_over_z.at(xf, yf) / iz) as f32;
            }
        });
    }
}

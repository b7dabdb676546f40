//! The renderer: a z-buffered triangle rasteriser with deferred shading.
//!
//! Per frame: (1) the sun's shadow map is drawn from the casters; (2) every
//! primitive's cached unit mesh is scaled, posed into the camera frame and
//! rasterised into a small G-buffer (inverse depth, primitive index,
//! interpolated Lambert factor; perspective-correct); (3) each pixel is shaded
//! once: albedo (linear) x plane texture x (ambient + sun x Lambert x shadow
//! visibility), converted to 8-bit sRGB through a lookup table. Buffers live in
//! the renderer and are reused; only the two output images are allocated.

use nalgebra::{Matrix3, Vector3, Vector4};
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
    /// Side of the square sun shadow map, in texels (16..=4096); `None`
    /// matches the image: its larger side, at least 128. The map is fitted to
    /// the casters' extent every frame; its cost grows with its area.
    pub shadow_map_px: Option<u32>,
    /// Near clipping distance along the optical axis.
    pub near_clip_m: f64,
    /// Brightness pattern of every `Shape::Plane` (the table top).
    pub plane_texture: Texture,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            background_rgb: [0.72, 0.74, 0.78],
            shadow_map_px: None,
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
        if let Some(side_px) = self.shadow_map_px {
            if !(16..=4096).contains(&side_px) {
                return Err(RenderError::InvalidConfig(format!(
                    "shadow_map_px {side_px} outside 16..=4096"
                )));
            }
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
    /// For textured planes: the rows of `plane_from_camera` (3x4); the first
    /// two map a camera-space point to plane-local x and y, the third's
    /// rotation part is the plane normal in the camera frame.
    texture_rows: Option<[[f64; 4]; 3]>,
}

/// Renders primitives to RGB and depth images. Keeps its buffers between calls.
#[derive(Debug, Clone)]
pub struct Renderer {
    config: RenderConfig,
    meshes: MeshLibrary,
    texture: Option<TextureTile>,
    srgb_lut: Box<[u8; SRGB_LUT_SIZE]>,
    background_rgb8: [u8; 3],
    inv_depth: Vec<f32>,
    primitive_index: Vec<u16>,
    /// Lambert factor divided by depth (interpolated linearly in screen space;
    /// the shading pass multiplies by depth once per pixel).
    lambert_over_z: Vec<f32>,
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
        let mut srgb_lut = Box::new([0u8; SRGB_LUT_SIZE]);
        for (i, v) in srgb_lut.iter_mut().enumerate() {
            *v = to_u8(linear_to_srgb(i as f32 / (SRGB_LUT_SIZE - 1) as f32));
        }
        Ok(Renderer {
            config,
            meshes: MeshLibrary::new(),
            texture: TextureTile::bake(&config.plane_texture),
            srgb_lut,
            background_rgb8: config.background_rgb.map(to_u8),
            inv_depth: Vec::new(),
            primitive_index: Vec::new(),
            lambert_over_z: Vec::new(),
            shadow: ShadowMap::default(),
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
    /// Baking a wood grain takes a few milliseconds, so change it per episode,
    /// not per frame; setting the texture already in use costs nothing.
    pub fn set_plane_texture(&mut self, texture: Texture) -> Result<(), RenderError> {
        texture.validate()?;
        if texture == self.config.plane_texture {
            return Ok(());
        }
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
        self.lambert_over_z.clear();
        self.lambert_over_z.resize(pixels, 0.0);

        let sun_dir_in_world = lighting.sun_direction_in_world.normalize();
        let shadows = lighting.shadows && lighting.sun_intensity > 0.0;
        if shadows {
            let side_px = self
                .config
                .shadow_map_px
                .unwrap_or(camera.width_px.max(camera.height_px).clamp(128, 4096));
            self.shadow.resize(side_px as usize);
            self.shadow
                .build(&self.meshes, primitives, &sun_dir_in_world);
        } else {
            self.shadow.active = false;
        }

        let camera_from_world = camera.world_from_camera.inverse();
        let focal_px = camera.fx_px.max(camera.fy_px);
        let frustum = view_frustum(camera, self.config.near_clip_m);
        self.shading.clear();
        for (index, prim) in primitives.iter().enumerate() {
            let camera_from_shape = camera_from_world * prim.world_from_shape;
            let texture_rows = match (&prim.shape, &self.texture) {
                (Shape::Plane { .. }, Some(_)) => {
                    let m = camera_from_shape.inverse().to_homogeneous();
                    Some([
                        [m[(0, 0)], m[(0, 1)], m[(0, 2)], m[(0, 3)]],
                        [m[(1, 0)], m[(1, 1)], m[(1, 2)], m[(1, 3)]],
                        [m[(2, 0)], m[(2, 1)], m[(2, 2)], m[(2, 3)]],
                    ])
                }
                _ => None,
            };
            self.shading.push(ShadingInfo {
                albedo_linear: prim.rgb.map(srgb_to_linear),
                texture_rows,
            });
            // Skip primitives whose bounding sphere lies wholly outside the view.
            let centre = camera_from_shape.translation.vector;
            let radius_m = Vector3::from(prim.shape.mesh_scale()).norm();
            if frustum
                .iter()
                .any(|plane| plane.xyz().dot(&centre) + plane.w < -radius_m)
            {
                continue;
            }
            // Pixels per metre at the primitive's distance, for its level of detail.
            let centre_z_m = centre.z;
            let px_per_m = if centre_z_m > self.config.near_clip_m {
                focal_px / centre_z_m
            } else {
                f64::INFINITY
            };
            let mesh = self.meshes.get(&prim.shape, px_per_m);
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
                lambert_over_z: &mut self.lambert_over_z,
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
        // Light-space direction of the camera ray through pixel (x, y), scaled to
        // unit camera z: row_start(y) + x * step.
        let light_step = light_from_camera.column(0) / camera.fx_px;
        let inv_focal_px = 2.0 / (camera.fx_px + camera.fy_px);
        let (ambient, sun) = (lighting.ambient, lighting.sun_intensity);
        let lut_scale = (SRGB_LUT_SIZE - 1) as f32;

        let mut rgb = vec![0u8; width * height * 3];
        let mut depth_m = vec![f32::INFINITY; width * height];
        for (y, (rgb_row, depth_row)) in rgb
            .chunks_exact_mut(3 * width)
            .zip(depth_m.chunks_exact_mut(width))
            .enumerate()
        {
            let ray_y = self.ray_y[y];
            let light_row = light_from_camera * Vector3::new(self.ray_x[0], ray_y, 1.0);
            let row = y * width..(y + 1) * width;
            let pixels = rgb_row
                .chunks_exact_mut(3)
                .zip(depth_row.iter_mut())
                .zip(&self.primitive_index[row.clone()])
                .zip(&self.inv_depth[row.clone()])
                .zip(&self.lambert_over_z[row])
                .enumerate();
            for (x, ((((out, depth), &id), &inv_depth), &lambert_over_z)) in pixels {
                if id == NO_PRIMITIVE {
                    out.copy_from_slice(&self.background_rgb8);
                    continue;
                }
                let z32 = 1.0 / inv_depth;
                *depth = z32;
                let z = f64::from(z32);
                let lambert = (lambert_over_z * z32).clamp(0.0, 1.0);
                let visible = if lambert > 0.0 && self.shadow.active {
                    let p_in_light = (light_row + light_step * x as f64) * z + light_offset;
                    self.shadow.visibility(&p_in_light, lambert)
                } else {
                    1.0
                };
                let info = &self.shading[id as usize];
                let mut light = ambient + sun * lambert * visible;
                if let (Some(rows), Some(tile)) = (&info.texture_rows, &self.texture) {
                    let ray_x = self.ray_x[x];
                    let (px, py) = (ray_x * z, ray_y * z);
                    let u = rows[0][0] * px + rows[0][1] * py + rows[0][2] * z + rows[0][3];
                    let v = rows[1][0] * px + rows[1][1] * py + rows[1][2] * z + rows[1][3];
                    // The pixel's footprint on the plane: z / f across the ray,
                    // stretched by 1 / cos(incidence) along the plane.
                    let ray_sq = ray_x * ray_x + ray_y * ray_y + 1.0;
                    let n_dot_ray = rows[2][0] * ray_x + rows[2][1] * ray_y + rows[2][2];
                    let footprint_m = z * inv_focal_px * ray_sq / n_dot_ray.abs();
                    light *= tile.sample(u, v, footprint_m);
                }
                for (o, a) in out.iter_mut().zip(info.albedo_linear) {
                    // In 0..=4095 by construction (albedo and light are
                    // non-negative); the mask lets the compiler drop the bounds check.
                    let k = ((a * light).min(1.0) * lut_scale + 0.5) as i32 as usize;
                    *o = self.srgb_lut[k & (SRGB_LUT_SIZE - 1)];
                }
            }
        }
        let rgb = RgbFrame::new(camera.width_px, camera.height_px, PixelEncoding::Rgb8, rgb)?;
        Ok(RenderOutput { rgb, depth_m })
    }
}

/// The view frustum as planes `(n, d)` with unit `n`, in the camera frame:
/// a point `p` is inside when `n . p + d >= 0` for all five (near plane and
/// the four planes through the image border, half a pixel out).
fn view_frustum(camera: &Camera, near_m: f64) -> [Vector4<f64>; 5] {
    let (w, h) = (f64::from(camera.width_px), f64::from(camera.height_px));
    let side = |nx: f64, ny: f64, nz: f64| {
        let n = Vector3::new(nx, ny, nz).normalize();
        Vector4::new(n.x, n.y, n.z, 0.0)
    };
    [
        Vector4::new(0.0, 0.0, 1.0, -near_m),
        // u >= -0.5  <=>  fx x + (cx + 0.5) z >= 0, and so on.
        side(camera.fx_px, 0.0, camera.cx_px + 0.5),
        side(-camera.fx_px, 0.0, w - 0.5 - camera.cx_px),
        side(0.0, camera.fy_px, camera.cy_px + 0.5),
        side(0.0, -camera.fy_px, h - 0.5 - camera.cy_px),
    ]
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
    lambert_over_z: &'a mut [f32],
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
            &mut *self.lambert_over_z,
        );
        let index = self.index;
        raster_triangle(xy, self.width, self.height, |i, x, y| {
            let (xf, yf) = (x as f64, y as f64);
            let izf = inv_depth.at(xf, yf) as f32;
            if izf > depth_buf[i] {
                depth_buf[i] = izf;
                index_buf[i] = index;
                lambert_buf[i] = shade_over_z.at(xf, yf) as f32;
            }
        });
    }
}

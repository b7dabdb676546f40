//! The sun's shadow map: an orthographic depth image along the light
//! direction, fitted each frame to the shadow casters' extent.
//!
//! Closed casters (boxes, spheres, cylinders) draw only their faces turned
//! away from the sun, so the stored depth is where light leaves an object;
//! lit surfaces are well in front of it and do not shadow themselves ("second
//! depth" shadow maps). Open casters (bowls, planes) draw both sides and rely
//! on a slope-scaled depth bias. Lookups filter 2x2 texels bilinearly (PCF)
//! for soft-edged shadows.

use nalgebra::{Matrix3, Vector3};

use crate::mesh::MeshLibrary;
use crate::raster::{raster_triangle, PlaneEq};
use crate::{Primitive, Shape};

/// Constant depth bias, in shadow-map texels.
const BIAS_TEXELS: f64 = 1.5;
/// Largest slope-scaled bias, in texels.
const MAX_SLOPE_BIAS_TEXELS: f64 = 4.0;
/// Entries of the bias table over the cosine of incidence.
const BIAS_STEPS: usize = 64;

/// Depth bias in texels for a surface whose normal makes cosine
/// `i / BIAS_STEPS` (the lower end of its bin) with the direction to the sun:
/// constant plus the surface's depth slope, tan(incidence), capped.
fn bias_table() -> Vec<f32> {
    (0..=BIAS_STEPS)
        .map(|i| {
            let cos = i as f64 / BIAS_STEPS as f64;
            let tan = if cos > 0.0 {
                (1.0 - cos * cos).sqrt() / cos
            } else {
                f64::INFINITY
            };
            (BIAS_TEXELS + tan.min(MAX_SLOPE_BIAS_TEXELS)) as f32
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ShadowMap {
    side_px: usize,
    depth_m: Vec<f32>,
    /// Rows: light x, light y, light z (= direction light travels).
    pub(crate) light_from_world: Matrix3<f64>,
    x0_m: f64,
    y0_m: f64,
    inv_texel: f64,
    texel_m: f64,
    /// Whether anything casts a shadow this frame.
    pub(crate) active: bool,
    verts_in_light: Vec<Vector3<f64>>,
    bias_texels: Vec<f32>,
}

impl ShadowMap {
    /// Sets the map's side (keeping the allocation when it does not change).
    pub(crate) fn resize(&mut self, side_px: usize) {
        if self.bias_texels.is_empty() {
            self.bias_texels = bias_table();
        }
        self.side_px = side_px;
        self.depth_m.resize(side_px * side_px, f32::INFINITY);
    }

    /// Renders the casters into the map for a sun travelling along `sun_dir` (unit).
    pub(crate) fn build(
        &mut self,
        meshes: &MeshLibrary,
        primitives: &[Primitive],
        sun_dir: &Vector3<f64>,
    ) {
        let lz = *sun_dir;
        let helper = if lz.x.abs() < 0.9 {
            Vector3::x()
        } else {
            Vector3::y()
        };
        let lx = (helper - lz * helper.dot(&lz)).normalize();
        let ly = lz.cross(&lx);
        self.light_from_world =
            Matrix3::from_rows(&[lx.transpose(), ly.transpose(), lz.transpose()]);

        // The casters' extent in light space, from their bounding boxes (exact
        // for spheres), so the level of detail can follow the texel size.
        let (mut min, mut max) = (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
        );
        for prim in primitives.iter().filter(|p| p.casts_shadow) {
            let centre = self.light_from_world * prim.world_from_shape.translation.vector;
            if let Shape::Sphere { radius_m } = prim.shape {
                min = min.inf(&centre.add_scalar(-radius_m));
                max = max.sup(&centre.add_scalar(radius_m));
                continue;
            }
            let rot = self.light_from_world
                * prim.world_from_shape.rotation.to_rotation_matrix().matrix();
            let half = Vector3::from(prim.shape.mesh_scale());
            for corner in 0..8 {
                let sign = |bit: usize| if corner & bit == 0 { -1.0 } else { 1.0 };
                let local = Vector3::new(sign(1) * half.x, sign(2) * half.y, sign(4) * half.z);
                let q = rot * local + centre;
                min = min.inf(&q);
                max = max.sup(&q);
            }
        }
        self.active = min.x.is_finite();
        if !self.active {
            return;
        }
        let n = self.side_px;
        let extent = (max.x - min.x).max(max.y - min.y).max(1e-6);
        self.texel_m = extent / (n as f64 - 3.0);
        self.inv_texel = 1.0 / self.texel_m;
        self.x0_m = min.x - self.texel_m;
        self.y0_m = min.y - self.texel_m;
        self.depth_m.fill(f32::INFINITY);

        for prim in primitives.iter().filter(|p| p.casts_shadow) {
            let mesh = meshes.get(&prim.shape, self.inv_texel);
            let scale = Vector3::from(prim.shape.mesh_scale());
            let rot = self.light_from_world
                * prim.world_from_shape.rotation.to_rotation_matrix().matrix();
            let trans = self.light_from_world * prim.world_from_shape.translation.vector;
            self.verts_in_light.clear();
            self.verts_in_light.extend(
                mesh.positions
                    .iter()
                    .map(|p| rot * p.component_mul(&scale) + trans),
            );
            let verts = &self.verts_in_light;
            for tri in &mesh.triangles {
                let [a, b, c] = tri.map(|i| verts[i as usize]);
                if mesh.closed {
                    let facing_sun = (b - a).cross(&(c - a)).z <= 0.0;
                    if facing_sun {
                        continue;
                    }
                }
                let xy = [a, b, c].map(|p| {
                    [
                        (p.x - self.x0_m) * self.inv_texel,
                        (p.y - self.y0_m) * self.inv_texel,
                    ]
                });
                let Some(depth) = PlaneEq::new(&xy, [a.z, b.z, c.z]) else {
                    continue;
                };
                let map = &mut self.depth_m;
                raster_triangle(&xy, n, n, |i, x, y| {
                    let z = depth.at(x as f64, y as f64) as f32;
                    if z < map[i] {
                        map[i] = z;
                    }
                });
            }
        }
    }

    /// Fraction (0..=1) of sunlight reaching a point at `p_in_light`, on a
    /// surface whose normal makes cosine `cos_incidence` (> 0) with the
    /// direction to the sun.
    #[inline]
    pub(crate) fn visibility(&self, p_in_light: &Vector3<f64>, cos_incidence: f32) -> f32 {
        let sx = (p_in_light.x - self.x0_m) * self.inv_texel;
        let sy = (p_in_light.y - self.y0_m) * self.inv_texel;
        let n = self.side_px as f64;
        if !(sx >= 0.0 && sy >= 0.0 && sx < n - 1.0 && sy < n - 1.0) {
            return 1.0; // outside every caster's extent
        }
        let bin = ((cos_incidence * BIAS_STEPS as f32) as usize).min(BIAS_STEPS);
        let bias = self.texel_m * f64::from(self.bias_texels[bin]);
        let z = (p_in_light.z - bias) as f32;
        // sx, sy >= 0 here, so truncation is floor.
        let (ix, iy) = (sx as i32 as usize, sy as i32 as usize);
        let (wx, wy) = ((sx - ix as f64) as f32, (sy - iy as f64) as f32);
        let i = iy * self.side_px + ix;
        let lit = |d: f32| if z <= d { 1.0f32 } else { 0.0 };
        let (Some(near_row), Some(far_row)) = (
            self.depth_m.get(i..i + 2),
            self.depth_m.get(i + self.side_px..i + self.side_px + 2),
        ) else {
            return 1.0;
        };
        let top = lit(near_row[0]) * (1.0 - wx) + lit(near_row[1]) * wx;
        let bottom = lit(far_row[0]) * (1.0 - wx) + lit(far_row[1]) * wx;
        top * (1.0 - wy) + bottom * wy
    }
}

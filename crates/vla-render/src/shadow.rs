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
use crate::Primitive;

/// Constant depth bias, in shadow-map texels.
const BIAS_TEXELS: f64 = 1.5;
/// Largest slope-scaled bias, in texels.
const MAX_SLOPE_BIAS_TEXELS: f64 = 4.0;

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
}

impl ShadowMap {
    pub(crate) fn new(side_px: usize) -> Self {
        Self {
            side_px,
            depth_m: vec![f32::INFINITY; side_px * side_px],
            ..Self::default()
        }
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

        // Casters' vertices in light space, and their extent.
        self.verts_in_light.clear();
        let (mut min, mut max) = (
            Vector3::repeat(f64::INFINITY),
            Vector3::repeat(f64::NEG_INFINITY),
        );
        for prim in primitives.iter().filter(|p| p.casts_shadow) {
            let mesh = meshes.get(&prim.shape);
            let scale = Vector3::from(prim.shape.mesh_scale());
            let rot = self.light_from_world
                * prim.world_from_shape.rotation.to_rotation_matrix().matrix();
            let trans = self.light_from_world * prim.world_from_shape.translation.vector;
            for p in &mesh.positions {
                let q = rot * p.component_mul(&scale) + trans;
                min = min.inf(&q);
                max = max.sup(&q);
                self.verts_in_light.push(q);
            }
        }
        self.active = !self.verts_in_light.is_empty();
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

        let mut offset = 0;
        for prim in primitives.iter().filter(|p| p.casts_shadow) {
            let mesh = meshes.get(&prim.shape);
            let verts = &self.verts_in_light[offset..offset + mesh.positions.len()];
            offset += mesh.positions.len();
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
    pub(crate) fn visibility(&self, p_in_light: &Vector3<f64>, cos_incidence: f64) -> f32 {
        let sx = (p_in_light.x - self.x0_m) * self.inv_texel;
        let sy = (p_in_light.y - self.y0_m) * self.inv_texel;
        let n = self.side_px as f64;
        if !(sx >= 0.0 && sy >= 0.0 && sx < n - 1.0 && sy < n - 1.0) {
            return 1.0; // outside every caster's extent
        }
        let tan = (1.0 - cos_incidence * cos_incidence).max(0.0).sqrt() / cos_incidence;
        let bias = self.texel_m * (BIAS_TEXELS + tan.min(MAX_SLOPE_BIAS_TEXELS));
        let z = (p_in_light.z - bias) as f32;
        let (fx, fy) = (sx.floor(), sy.floor());
        let (wx, wy) = ((sx - fx) as f32, (sy - fy) as f32);
        let i = fy as usize * self.side_px + fx as usize;
        let lit = |k: usize| if z <= self.depth_m[k] { 1.0f32 } else { 0.0 };
        let top = lit(i) * (1.0 - wx) + lit(i + 1) * wx;
        let bottom = lit(i + self.side_px) * (1.0 - wx) + lit(i + self.side_px + 1) * wx;
        top * (1.0 - wy) + bottom * wy
    }
}

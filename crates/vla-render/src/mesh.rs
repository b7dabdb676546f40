//! Unit triangle meshes, one per shape kind, tessellated once per renderer.
//!
//! A primitive's mesh is its kind's unit mesh scaled by `Shape::mesh_scale`
//! (positions multiplied, normals divided then renormalised, which is exact
//! for a non-uniform scale). Triangles wind counter-clockwise seen from the
//! side their vertex normals point to, so the geometric normal `(b - a) x (c - a)`
//! is the outside.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

use nalgebra::Vector3;

/// Longitude segments of spheres, cylinders and bowls.
pub const ROUND_SEGMENTS: usize = 16;
/// Latitude bands of a sphere.
pub const SPHERE_BANDS: usize = 8;
/// Rings of a bowl's curved wall.
pub const BOWL_WALL_RINGS: usize = 4;
/// Floor radius of a bowl as a fraction of its rim radius.
pub const BOWL_FLOOR_FRACTION: f64 = 0.55;

/// A triangle mesh with per-vertex normals.
#[derive(Debug, Clone, Default)]
pub struct Mesh {
    /// Vertex positions in the unit shape frame.
    pub positions: Vec<Vector3<f64>>,
    /// Unit vertex normals.
    pub normals: Vec<Vector3<f64>>,
    /// Vertex indices, counter-clockwise seen from outside.
    pub triangles: Vec<[u32; 3]>,
    /// Closed meshes are back-face culled; open ones are drawn two-sided.
    pub closed: bool,
}

impl Mesh {
    fn vertex(&mut self, p: Vector3<f64>, n: Vector3<f64>) -> u32 {
        self.positions.push(p);
        self.normals.push(n.normalize());
        (self.positions.len() - 1) as u32
    }

    /// Adds a triangle, winding it so its geometric normal agrees with the
    /// mean of its vertex normals.
    fn triangle(&mut self, a: u32, b: u32, c: u32) {
        let (pa, pb, pc) = (
            self.positions[a as usize],
            self.positions[b as usize],
            self.positions[c as usize],
        );
        let geometric = (pb - pa).cross(&(pc - pa));
        if geometric.norm_squared() < 1e-18 {
            return; // degenerate (e.g. at a pole)
        }
        let mean = self.normals[a as usize] + self.normals[b as usize] + self.normals[c as usize];
        if geometric.dot(&mean) >= 0.0 {
            self.triangles.push([a, b, c]);
        } else {
            self.triangles.push([a, c, b]);
        }
    }

    fn quad(&mut self, a: u32, b: u32, c: u32, d: u32) {
        self.triangle(a, b, c);
        self.triangle(a, c, d);
    }

    /// The cube `[-1, 1]^3` with flat faces.
    pub fn unit_box() -> Mesh {
        let mut m = Mesh {
            closed: true,
            ..Mesh::default()
        };
        for axis in 0..3 {
            for sign in [-1.0, 1.0] {
                let mut n = Vector3::zeros();
                n[axis] = sign;
                let (u_axis, v_axis) = ((axis + 1) % 3, (axis + 2) % 3);
                let corner = |su: f64, sv: f64| {
                    let mut p = n;
                    p[u_axis] = su;
                    p[v_axis] = sv;
                    p
                };
                let a = m.vertex(corner(-1.0, -1.0), n);
                let b = m.vertex(corner(1.0, -1.0), n);
                let c = m.vertex(corner(1.0, 1.0), n);
                let d = m.vertex(corner(-1.0, 1.0), n);
                m.quad(a, b, c, d);
            }
        }
        m
    }

    /// The unit sphere, smooth normals.
    pub fn unit_sphere() -> Mesh {
        let mut m = Mesh {
            closed: true,
            ..Mesh::default()
        };
        let ring = ROUND_SEGMENTS + 1;
        for band in 0..=SPHERE_BANDS {
            let polar = PI * band as f64 / SPHERE_BANDS as f64;
            for seg in 0..ring {
                let azimuth = TAU * seg as f64 / ROUND_SEGMENTS as f64;
                let p = Vector3::new(
                    polar.sin() * azimuth.cos(),
                    polar.sin() * azimuth.sin(),
                    polar.cos(),
                );
                m.vertex(p, p);
            }
        }
        for band in 0..SPHERE_BANDS {
            for seg in 0..ROUND_SEGMENTS {
                let a = (band * ring + seg) as u32;
                let b = a + 1;
                let c = a + ring as u32 + 1;
                let d = a + ring as u32;
                m.quad(a, b, c, d);
            }
        }
        m
    }

    /// The cylinder of radius 1 spanning z in `[-1, 1]`, smooth sides, flat caps.
    pub fn unit_cylinder() -> Mesh {
        let mut m = Mesh {
            closed: true,
            ..Mesh::default()
        };
        let dir = |seg: usize| {
            let a = TAU * seg as f64 / ROUND_SEGMENTS as f64;
            Vector3::new(a.cos(), a.sin(), 0.0)
        };
        for seg in 0..ROUND_SEGMENTS {
            let (r0, r1) = (dir(seg), dir(seg + 1));
            let a = m.vertex(r0 - Vector3::z(), r0);
            let b = m.vertex(r1 - Vector3::z(), r1);
            let c = m.vertex(r1 + Vector3::z(), r1);
            let d = m.vertex(r0 + Vector3::z(), r0);
            m.quad(a, b, c, d);
        }
        for sign in [-1.0, 1.0] {
            let n = Vector3::z() * sign;
            let centre = m.vertex(n, n);
            for seg in 0..ROUND_SEGMENTS {
                let a = m.vertex(dir(seg) + n, n);
                let b = m.vertex(dir(seg + 1) + n, n);
                m.triangle(centre, a, b);
            }
        }
        m
    }

    /// The open bowl of rim radius 1 spanning z in `[-1, 1]` (see `Shape::Bowl`).
    pub fn unit_bowl() -> Mesh {
        let mut m = Mesh {
            closed: false,
            ..Mesh::default()
        };
        let down = -Vector3::z();
        // Profile (radius, z, outward normal in the (r, z) plane) from the floor's
        // edge (t = 0) to the rim (t = 1): a quarter ellipse.
        let profile: Vec<(f64, f64, f64, f64)> = (0..=BOWL_WALL_RINGS)
            .map(|k| {
                let t = FRAC_PI_2 * k as f64 / BOWL_WALL_RINGS as f64;
                let wall = 1.0 - BOWL_FLOOR_FRACTION;
                let r = BOWL_FLOOR_FRACTION + wall * t.sin();
                let z = -1.0 + 2.0 * (1.0 - t.cos());
                // Tangent (wall cos t, 2 sin t); outward normal (2 sin t, -wall cos t).
                (r, z, 2.0 * t.sin(), -wall * t.cos())
            })
            .collect();
        let dir = |seg: usize| {
            let a = TAU * seg as f64 / ROUND_SEGMENTS as f64;
            Vector3::new(a.cos(), a.sin(), 0.0)
        };
        let floor_centre = m.vertex(Vector3::new(0.0, 0.0, -1.0), down);
        for seg in 0..ROUND_SEGMENTS {
            let (d0, d1) = (dir(seg), dir(seg + 1));
            let r = BOWL_FLOOR_FRACTION;
            let a = m.vertex(d0 * r - Vector3::z(), down);
            let b = m.vertex(d1 * r - Vector3::z(), down);
            m.triangle(floor_centre, a, b);
            for pair in profile.windows(2) {
                let (r0, z0, nr0, nz0) = pair[0];
                let (r1, z1, nr1, nz1) = pair[1];
                let v = |d: Vector3<f64>, r: f64, z: f64| d * r + Vector3::z() * z;
                let n = |d: Vector3<f64>, nr: f64, nz: f64| d * nr + Vector3::z() * nz;
                let a = m.vertex(v(d0, r0, z0), n(d0, nr0, nz0));
                let b = m.vertex(v(d1, r0, z0), n(d1, nr0, nz0));
                let c = m.vertex(v(d1, r1, z1), n(d1, nr1, nz1));
                let d = m.vertex(v(d0, r1, z1), n(d0, nr1, nz1));
                m.quad(a, b, c, d);
            }
        }
        m
    }

    /// The square `[-1, 1]^2` at z = 0, normal +z, drawn two-sided.
    pub fn unit_plane() -> Mesh {
        let mut m = Mesh {
            closed: false,
            ..Mesh::default()
        };
        let n = Vector3::z();
        let a = m.vertex(Vector3::new(-1.0, -1.0, 0.0), n);
        let b = m.vertex(Vector3::new(1.0, -1.0, 0.0), n);
        let c = m.vertex(Vector3::new(1.0, 1.0, 0.0), n);
        let d = m.vertex(Vector3::new(-1.0, 1.0, 0.0), n);
        m.quad(a, b, c, d);
        m
    }
}

/// The unit meshes of every shape kind.
#[derive(Debug, Clone)]
pub(crate) struct MeshLibrary {
    pub(crate) cube: Mesh,
    pub(crate) sphere: Mesh,
    pub(crate) cylinder: Mesh,
    pub(crate) bowl: Mesh,
    pub(crate) plane: Mesh,
}

impl MeshLibrary {
    pub(crate) fn new() -> Self {
        Self {
            cube: Mesh::unit_box(),
            sphere: Mesh::unit_sphere(),
            cylinder: Mesh::unit_cylinder(),
            bowl: Mesh::unit_bowl(),
            plane: Mesh::unit_plane(),
        }
    }

    pub(crate) fn get(&self, shape: &crate::Shape) -> &Mesh {
        match shape {
            crate::Shape::Box { .. } => &self.cube,
            crate::Shape::Sphere { .. } => &self.sphere,
            crate::Shape::Cylinder { .. } => &self.cylinder,
            crate::Shape::Bowl { .. } => &self.bowl,
            crate::Shape::Plane { .. } => &self.plane,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<(&'static str, Mesh)> {
        vec![
            ("box", Mesh::unit_box()),
            ("sphere", Mesh::unit_sphere()),
            ("cylinder", Mesh::unit_cylinder()),
            ("bowl", Mesh::unit_bowl()),
            ("plane", Mesh::unit_plane()),
        ]
    }

    #[test]
    fn winding_agrees_with_vertex_normals() {
        for (name, m) in all() {
            assert!(!m.triangles.is_empty(), "{name}");
            for t in &m.triangles {
                let [a, b, c] = t.map(|i| m.positions[i as usize]);
                let g = (b - a).cross(&(c - a));
                for i in t {
                    assert!(g.dot(&m.normals[*i as usize]) > 0.0, "{name} {t:?}");
                }
            }
        }
    }

    #[test]
    fn closed_meshes_enclose_the_origin_and_fit_the_unit_box() {
        for (name, m) in all() {
            for p in &m.positions {
                assert!(p.iter().all(|v| v.abs() <= 1.0 + 1e-12), "{name} {p:?}");
            }
            if m.closed {
                // Divergence theorem: volume = sum over faces of (a . (b x c)) / 6 > 0.
                let vol: f64 = m
                    .triangles
                    .iter()
                    .map(|t| {
                        let [a, b, c] = t.map(|i| m.positions[i as usize]);
                        a.dot(&b.cross(&c)) / 6.0
                    })
                    .sum();
                assert!(vol > 0.0, "{name} volume {vol}");
            }
        }
        let vol_box: f64 = Mesh::unit_box()
            .triangles
            .iter()
            .map(|t| {
                let [a, b, c] = t.map(|i| Mesh::unit_box().positions[i as usize]);
                a.dot(&b.cross(&c)) / 6.0
            })
            .sum();
        assert!((vol_box - 8.0).abs() < 1e-9);
    }
}

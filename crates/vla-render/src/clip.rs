//! Clipping of camera-space triangles against the near plane and a wide guard
//! band around the image (Sutherland–Hodgman), for the few triangles that
//! cross behind the camera or project absurdly far off-screen.

use nalgebra::Vector3;

/// A camera-space vertex with the attribute the camera pass interpolates.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClipVertex {
    /// Position in the camera's optical frame.
    pub(crate) p: Vector3<f64>,
    /// Signed Lambert factor (normal · direction to the sun).
    pub(crate) shade: f64,
}

/// Most vertices a triangle clipped by five planes can have.
const MAX_VERTICES: usize = 8;

/// A convex polygon of at most [`MAX_VERTICES`] vertices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polygon {
    pub(crate) vertices: [ClipVertex; MAX_VERTICES],
    pub(crate) len: usize,
}

impl Polygon {
    pub(crate) fn triangle(a: ClipVertex, b: ClipVertex, c: ClipVertex) -> Polygon {
        let mut vertices = [ClipVertex::default(); MAX_VERTICES];
        vertices[..3].copy_from_slice(&[a, b, c]);
        Polygon { vertices, len: 3 }
    }

    /// Keeps the part where `plane[0..3] · p + plane[3] >= 0`.
    pub(crate) fn clip(&self, plane: [f64; 4]) -> Polygon {
        let dist =
            |v: &ClipVertex| plane[0] * v.p.x + plane[1] * v.p.y + plane[2] * v.p.z + plane[3];
        let mut out = Polygon {
            vertices: [ClipVertex::default(); MAX_VERTICES],
            len: 0,
        };
        let push = |v: ClipVertex, out: &mut Polygon| {
            if out.len < MAX_VERTICES {
                out.vertices[out.len] = v;
                out.len += 1;
            }
        };
        for i in 0..self.len {
            let a = self.vertices[i];
            let b = self.vertices[(i + 1) % self.len];
            let (da, db) = (dist(&a), dist(&b));
            if da >= 0.0 {
                push(a, &mut out);
            }
            if (da >= 0.0) != (db >= 0.0) {
                let t = da / (da - db);
                push(
                    ClipVertex {
                        p: a.p + (b.p - a.p) * t,
                        shade: a.shade + (b.shade - a.shade) * t,
                    },
                    &mut out,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f64, y: f64, z: f64) -> ClipVertex {
        ClipVertex {
            p: Vector3::new(x, y, z),
            shade: z,
        }
    }

    #[test]
    fn near_plane_cuts_a_triangle_into_a_quad() {
        let tri = Polygon::triangle(v(0.0, 0.0, -1.0), v(1.0, 0.0, 1.0), v(-1.0, 0.0, 1.0));
        let out = tri.clip([0.0, 0.0, 1.0, -0.5]);
        assert_eq!(out.len, 4);
        for v in &out.vertices[..out.len] {
            assert!(v.p.z >= 0.5 - 1e-12);
            assert!((v.shade - v.p.z).abs() < 1e-12, "attribute interpolated");
        }
        let gone = tri.clip([0.0, 0.0, 1.0, -2.0]);
        assert_eq!(gone.len, 0);
    }
}

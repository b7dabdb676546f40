//! Triangle scan conversion shared by the camera and shadow passes.
//!
//! Vertices are snapped to 1/16 pixel and edge functions are evaluated in
//! exact integer arithmetic with a top-left style tie rule, so triangles that
//! share an edge cover every pixel along it exactly once (no cracks, no double
//! writes) and the result does not depend on floating-point evaluation order.
//! Pixel centres sit at integer coordinates (the OpenCV/ROS convention).

/// Sub-pixel bits of the snapped vertex coordinates.
const SUB_BITS: u32 = 4;
const SUB_SCALE: f64 = (1 << SUB_BITS) as f64;
const PIXEL_STEP: i64 = 1 << SUB_BITS;

/// Largest vertex coordinate magnitude, in pixels, the rasteriser accepts;
/// callers clip triangles that reach beyond it (a guard band far outside the
/// image, which keeps the edge products well inside `i64`).
pub(crate) const GUARD_BAND_PX: f64 = (1 << 22) as f64;

/// An attribute interpolated linearly in screen space: `value(x, y) = c + dx * x + dy * y`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaneEq {
    pub(crate) x0: f64,
    pub(crate) y0: f64,
    pub(crate) a0: f64,
    pub(crate) dx: f64,
    pub(crate) dy: f64,
}

impl PlaneEq {
    /// The plane through `(x_i, y_i, a_i)`; `None` if the triangle is degenerate.
    #[inline]
    pub(crate) fn new(xy: &[[f64; 2]; 3], a: [f64; 3]) -> Option<PlaneEq> {
        let (x0, y0) = (xy[0][0], xy[0][1]);
        let (x1, y1) = (xy[1][0] - x0, xy[1][1] - y0);
        let (x2, y2) = (xy[2][0] - x0, xy[2][1] - y0);
        let det = x1 * y2 - x2 * y1;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let (a1, a2) = (a[1] - a[0], a[2] - a[0]);
        Some(PlaneEq {
            x0,
            y0,
            a0: a[0],
            dx: (a1 * y2 - a2 * y1) / det,
            dy: (a2 * x1 - a1 * x2) / det,
        })
    }

    /// The value at pixel centre `(x, y)`.
    #[inline(always)]
    pub(crate) fn at(&self, x: f64, y: f64) -> f64 {
        self.a0 + self.dx * (x - self.x0) + self.dy * (y - self.y0)
    }
}

#[inline]
fn snap(v: f64) -> i64 {
    (v * SUB_SCALE).round() as i64
}

/// Calls `visit(index, x, y)` for every pixel centre `(x, y)` of a
/// `width` x `height` raster covered by the triangle `xy` (pixel
/// coordinates, either winding), with `index = y * width + x`.
///
/// Coordinates must be finite and within [`GUARD_BAND_PX`]; other triangles
/// are skipped.
#[inline]
pub(crate) fn raster_triangle(
    xy: &[[f64; 2]; 3],
    width: usize,
    height: usize,
    mut visit: impl FnMut(usize, usize, usize),
) {
    if !xy
        .iter()
        .all(|p| p[0].abs() < GUARD_BAND_PX && p[1].abs() < GUARD_BAND_PX)
    {
        return;
    }
    let mut v = [
        [snap(xy[0][0]), snap(xy[0][1])],
        [snap(xy[1][0]), snap(xy[1][1])],
        [snap(xy[2][0]), snap(xy[2][1])],
    ];
    let edge = |a: [i64; 2], b: [i64; 2], p: [i64; 2]| {
        (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    };
    let area = edge(v[0], v[1], v[2]);
    if area == 0 {
        return;
    }
    if area < 0 {
        v.swap(1, 2);
    }
    let min_x = v.iter().map(|p| p[0]).min().unwrap_or(0);
    let max_x = v.iter().map(|p| p[0]).max().unwrap_or(0);
    let min_y = v.iter().map(|p| p[1]).min().unwrap_or(0);
    let max_y = v.iter().map(|p| p[1]).max().unwrap_or(0);
    // Pixel range: ceil(min / step) ..= floor(max / step), clamped to the raster.
    let x_start = (min_x + PIXEL_STEP - 1).div_euclid(PIXEL_STEP).max(0);
    let x_end = max_x.div_euclid(PIXEL_STEP).min(width as i64 - 1);
    let y_start = (min_y + PIXEL_STEP - 1).div_euclid(PIXEL_STEP).max(0);
    let y_end = max_y.div_euclid(PIXEL_STEP).min(height as i64 - 1);
    if x_start > x_end || y_start > y_end {
        return;
    }
    // Edge i is opposite vertex i: (v1 -> v2), (v2 -> v0), (v0 -> v1).
    let edges = [(v[1], v[2]), (v[2], v[0]), (v[0], v[1])];
    let p0 = [x_start * PIXEL_STEP, y_start * PIXEL_STEP];
    let mut row = [0i64; 3];
    let mut step_x = [0i64; 3];
    let mut step_y = [0i64; 3];
    for (i, (a, b)) in edges.iter().enumerate() {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        // Tie rule: a pixel centre exactly on an edge belongs to the triangle
        // for which that edge is "top-left"; the opposite triangle sees the
        // edge reversed and so excludes it.
        let owns_ties = dy < 0 || (dy == 0 && dx > 0);
        row[i] = edge(*a, *b, p0) - if owns_ties { 0 } else { 1 };
        step_x[i] = -dy * PIXEL_STEP;
        step_y[i] = dx * PIXEL_STEP;
    }
    for y in y_start..=y_end {
        let mut e = row;
        let base = y as usize * width;
        for x in x_start..=x_end {
            if (e[0] | e[1] | e[2]) >= 0 {
                visit(base + x as usize, x as usize, y as usize);
            }
            e[0] += step_x[0];
            e[1] += step_x[1];
            e[2] += step_x[2];
        }
        row[0] += step_y[0];
        row[1] += step_y[1];
        row[2] += step_y[2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_edge_is_covered_exactly_once() {
        let (w, h) = (16, 16);
        let mut count = vec![0u8; w * h];
        // A square split along its diagonal, the diagonal passing through pixel centres.
        let a = [1.0, 1.0];
        let b = [13.0, 1.0];
        let c = [13.0, 13.0];
        let d = [1.0, 13.0];
        raster_triangle(&[a, b, c], w, h, |i, _, _| count[i] += 1);
        raster_triangle(&[a, d, c], w, h, |i, _, _| count[i] += 1);
        assert!(count.iter().all(|&c| c <= 1));
        // Interior and diagonal pixels covered; two of the four outer edges are owned.
        for y in 2..13 {
            for x in 2..13 {
                assert_eq!(count[y * w + x], 1, "({x}, {y})");
            }
        }
        let covered = count.iter().filter(|&&c| c == 1).count();
        assert_eq!(covered, 12 * 12);
    }

    #[test]
    fn plane_equation_interpolates_vertices() {
        let xy = [[0.0, 0.0], [10.0, 0.0], [0.0, 5.0]];
        let p = PlaneEq::new(&xy, [1.0, 3.0, -2.0]).unwrap();
        assert!((p.at(10.0, 0.0) - 3.0).abs() < 1e-12);
        assert!((p.at(0.0, 5.0) + 2.0).abs() < 1e-12);
        assert!(PlaneEq::new(&[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], [0.0; 3]).is_none());
    }
}

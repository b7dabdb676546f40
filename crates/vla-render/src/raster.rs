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
/// Bounding boxes narrower than this are scanned pixel by pixel; wider ones
/// row span by row span.
const NARROW_PX: i64 = 8;

/// Largest vertex coordinate magnitude, in pixels, the rasteriser accepts;
/// callers clip triangles that reach beyond it (a guard band far outside the
/// image). It keeps edge-function values below 2^53, so they and their
/// quotients are exact enough in `f64` for the span search below.
pub(crate) const GUARD_BAND_PX: f64 = (1 << 18) as f64;

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

/// Fixed-point coordinate, rounded half away from zero (like `f64::round`,
/// without its libm call).
#[inline]
fn snap(v: f64) -> i64 {
    let t = v * SUB_SCALE;
    (t + 0.5f64.copysign(t)) as i64
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
    let last = x_end - x_start;
    if last < NARROW_PX {
        // Narrow triangles: test every pixel of the bounding box.
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
        return;
    }
    // Per-edge reciprocal of the x step, for the span estimate.
    let inv_step = step_x.map(|s| if s != 0 { 1.0 / s as f64 } else { 0.0 });
    for y in y_start..=y_end {
        // The covered pixels of a row form one span: the column offsets k with
        // e_i + k * step_x_i >= 0 for all three edges. Each bound is estimated
        // in floating point and then corrected with exact integer tests.
        let (mut lo, mut hi) = (0i64, last);
        for i in 0..3 {
            let (e, s) = (row[i], step_x[i]);
            if s > 0 {
                lo = lo.max(first_inside(e, s, inv_step[i], last));
            } else if s < 0 {
                hi = hi.min(last_inside(e, s, inv_step[i], last));
            } else if e < 0 {
                hi = -1;
            }
        }
        if lo <= hi {
            let base = y as usize * width;
            for x in (x_start + lo) as usize..=(x_start + hi) as usize {
                visit(base + x, x, y as usize);
            }
        }
        row[0] += step_y[0];
        row[1] += step_y[1];
        row[2] += step_y[2];
    }
}

/// `x` rounded towards zero, as an integer (saturating), without a libm call.
#[inline(always)]
fn trunc(x: f64) -> i64 {
    x as i64
}

/// The smallest `k` in `0..=last + 1` with `e + k * s >= 0` (`s > 0`);
/// `last + 1` when none.
#[inline(always)]
fn first_inside(e: i64, s: i64, inv_s: f64, last: i64) -> i64 {
    let mut k = (trunc(-e as f64 * inv_s) + 1).clamp(0, last + 1);
    while k > 0 && e + (k - 1) * s >= 0 {
        k -= 1;
    }
    while k <= last && e + k * s < 0 {
        k += 1;
    }
    k
}

/// The largest `k` in `-1..=last` with `e + k * s >= 0` (`s < 0`); `-1` when none.
#[inline(always)]
fn last_inside(e: i64, s: i64, inv_s: f64, last: i64) -> i64 {
    let mut k = (trunc(-e as f64 * inv_s) - 1).clamp(-1, last);
    while k < last && e + (k + 1) * s >= 0 {
        k += 1;
    }
    while k >= 0 && e + k * s < 0 {
        k -= 1;
    }
    k
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
    fn spans_match_a_per_pixel_edge_test() {
        // Reference: the same snapped edge functions evaluated at every pixel.
        let tris = [
            [[0.3, 0.2], [30.7, 3.1], [7.9, 28.4]],
            [[-20.0, 5.5], [50.25, 9.0], [12.0, 11.0]],
            [[3.0, -4.0], [3.0, 40.0], [3.0625, 12.0]],
            [[31.0, 31.0], [-5.0, 2.0], [18.0, -9.0]],
            [[1.0, 1.0], [1.0, 1.0], [5.0, 9.0]],
            [[2.2, 3.0], [6.9, 30.0], [4.0, 17.5]],
            [[2.0, 2.0], [9.0, 2.0], [2.0, 9.0]],
        ];
        for xy in tris {
            let (w, h) = (32usize, 32usize);
            let mut got = vec![false; w * h];
            raster_triangle(&xy, w, h, |i, _, _| got[i] = true);
            let mut v = xy.map(|p| [snap(p[0]), snap(p[1])]);
            let edge = |a: [i64; 2], b: [i64; 2], p: [i64; 2]| {
                (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
            };
            let area = edge(v[0], v[1], v[2]);
            if area < 0 {
                v.swap(1, 2);
            }
            for y in 0..h {
                for x in 0..w {
                    let p = [x as i64 * PIXEL_STEP, y as i64 * PIXEL_STEP];
                    let inside = area != 0
                        && [(v[1], v[2]), (v[2], v[0]), (v[0], v[1])]
                            .iter()
                            .all(|(a, b)| {
                                let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
                                let e = edge(*a, *b, p);
                                e > 0 || (e == 0 && (dy < 0 || (dy == 0 && dx > 0)))
                            });
                    assert_eq!(got[y * w + x], inside, "{xy:?} at ({x}, {y})");
                }
            }
        }
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

//! Object layouts: where the named objects and the distractors start, drawn
//! from a seed by rejection sampling so that footprints keep `min_gap_m`
//! apart, a pushed object has a clear corridor, and an object to be moved
//! next to another has a free spot there.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::goal::{Goal, ObjectRef};
use crate::scene::{Geometry, SceneConfig};
use crate::SimError;

/// Distance the push corridor extends beyond the object's start, metres.
pub const PUSH_CORRIDOR_M: f64 = 0.2;

/// Extra clearance of a next-to spot beyond touching, metres.
pub const NEXT_TO_GAP_M: f64 = 0.025;

/// Move next to: the object starts at least this far (footprint gap) from its target, metres.
pub const MOVE_MIN_START_GAP_M: f64 = 0.12;

/// Where one object starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// Which object.
    pub object: ObjectRef,
    /// Centre on the table, world x and y, metres.
    pub xy_m: [f64; 2],
    /// Rotation about world z, radians.
    pub yaw_rad: f64,
}

/// Horizontal footprint of a placed object, for spacing checks.
#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// Centre, world x and y.
    pub xy_m: [f64; 2],
    /// Radius, metres.
    pub radius_m: f64,
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

/// Distance from `p` to the segment `a`–`b`.
fn dist_to_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let len2 = ab[0] * ab[0] + ab[1] * ab[1];
    let t = if len2 > 0.0 {
        (((p[0] - a[0]) * ab[0] + (p[1] - a[1]) * ab[1]) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    dist(p, [a[0] + t * ab[0], a[1] + t * ab[1]])
}

/// The push direction of `goal` as a world-frame unit vector in xy.
pub fn push_dir_world(scene: &SceneConfig, dir_in_base: [f64; 2]) -> [f64; 2] {
    let (s, c) = scene.robot.base_yaw_rad.sin_cos();
    [
        c * dir_in_base[0] - s * dir_in_base[1],
        s * dir_in_base[0] + c * dir_in_base[1],
    ]
}

/// Candidate spots next to `target` for an object of radius `object_r_m`,
/// nearest to `from_xy_m` first, that are on the table's workspace and clear
/// of `others` (footprints other than object and target).
pub fn next_to_spots(
    scene: &SceneConfig,
    target: Footprint,
    object_r_m: f64,
    from_xy_m: [f64; 2],
    others: &[Footprint],
) -> Vec<[f64; 2]> {
    let w = &scene.workspace;
    let reach = target.radius_m + object_r_m + NEXT_TO_GAP_M;
    let margin = 0.03;
    let mut spots: Vec<[f64; 2]> = (0..16)
        .map(|k| {
            let a = k as f64 * std::f64::consts::TAU / 16.0;
            [
                target.xy_m[0] + reach * a.cos(),
                target.xy_m[1] + reach * a.sin(),
            ]
        })
        .filter(|p| {
            p[0] >= w.x_range_m[0] - margin
                && p[0] <= w.x_range_m[1] + margin
                && p[1] >= w.y_range_m[0] - margin
                && p[1] <= w.y_range_m[1] + margin
                && others
                    .iter()
                    .all(|o| dist(*p, o.xy_m) >= o.radius_m + object_r_m + 0.015)
        })
        .collect();
    spots.sort_by(|a, b| dist(*a, from_xy_m).total_cmp(&dist(*b, from_xy_m)));
    spots
}

/// Draws the starting layout: the goal's objects first, then `distractors`
/// objects drawn from `distractor_pool` (combinations the goal does not name).
pub fn sample_layout(
    scene: &SceneConfig,
    goal: &Goal,
    distractors: usize,
    distractor_pool: &[ObjectRef],
    layout_seed: u64,
) -> Result<Vec<Placement>, SimError> {
    let mut rng = ChaCha8Rng::seed_from_u64(layout_seed);
    let named: Vec<ObjectRef> = goal.named_objects().into_iter().cloned().collect();
    let pool: Vec<&ObjectRef> = distractor_pool
        .iter()
        .filter(|p| !named.contains(p))
        .collect();
    let geometry = |r: &ObjectRef| -> Result<Geometry, SimError> {
        scene
            .shape(&r.shape)
            .ok_or_else(|| SimError::Goal(format!("unknown shape {:?}", r.shape)))?
            .geometry()
    };
    let w = &scene.workspace;
    const ATTEMPTS: usize = 400;
    for _attempt in 0..ATTEMPTS {
        let mut objects = named.clone();
        let mut chosen: Vec<&ObjectRef> = pool.clone();
        chosen.shuffle(&mut rng);
        objects.extend(chosen.into_iter().take(distractors).cloned());
        let mut placed: Vec<(Placement, Footprint)> = Vec::new();
        let mut ok = true;
        for (idx, obj) in objects.iter().enumerate() {
            let g = geometry(obj)?;
            let r = g.footprint_radius_m();
            let mut found = None;
            for _try in 0..60 {
                let xy = [
                    rng.gen_range(w.x_range_m[0]..=w.x_range_m[1]),
                    rng.gen_range(w.y_range_m[0]..=w.y_range_m[1]),
                ];
                let yaw = if g.is_receptacle() || matches!(g, Geometry::Sphere { .. }) {
                    0.0
                } else {
                    rng.gen_range(w.yaw_range_rad[0]..=w.yaw_range_rad[1])
                };
                // Receptacles must fit inside the workspace entirely.
                if g.is_receptacle()
                    && (xy[0] - r < w.x_range_m[0] - 0.06
                        || xy[0] + r > w.x_range_m[1] + 0.06
                        || xy[1] - r < w.y_range_m[0] - 0.06
                        || xy[1] + r > w.y_range_m[1] + 0.06)
                {
                    continue;
                }
                if placed
                    .iter()
                    .any(|(_, f)| dist(f.xy_m, xy) < f.radius_m + r + w.min_gap_m)
                {
                    continue;
                }
                // A pushed object needs its corridor on the table and clear.
                if idx == 0 {
                    if let Goal::Push { direction, .. } = goal {
                        let d = push_dir_world(scene, direction.unit_in_base());
                        let end = [xy[0] + d[0] * 0.16, xy[1] + d[1] * 0.16];
                        if end[0] < w.x_range_m[0] - 0.02
                            || end[0] > w.x_range_m[1] + 0.02
                            || end[1] < w.y_range_m[0] - 0.02
                            || end[1] > w.y_range_m[1] + 0.02
                        {
                            continue;
                        }
                    }
                } else if let (Goal::Push { direction, .. }, Some((first, f0))) =
                    (goal, placed.first())
                {
                    let d = push_dir_world(scene, direction.unit_in_base());
                    let a = [first.xy_m[0] - d[0] * 0.09, first.xy_m[1] - d[1] * 0.09];
                    let b = [
                        first.xy_m[0] + d[0] * PUSH_CORRIDOR_M,
                        first.xy_m[1] + d[1] * PUSH_CORRIDOR_M,
                    ];
                    if dist_to_segment(xy, a, b) < f0.radius_m + r + 0.04 {
                        continue;
                    }
                }
                found = Some((
                    Placement {
                        object: obj.clone(),
                        xy_m: xy,
                        yaw_rad: yaw,
                    },
                    Footprint {
                        xy_m: xy,
                        radius_m: r,
                    },
                ));
                break;
            }
            match found {
                Some(p) => placed.push(p),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        if let Goal::MoveNextTo { .. } = goal {
            let others: Vec<Footprint> = placed.iter().skip(2).map(|(_, f)| *f).collect();
            let spots = next_to_spots(
                scene,
                placed[1].1,
                geometry(&named[0])?.footprint_radius_m(),
                placed[0].1.xy_m,
                &others,
            );
            let (o, t) = (placed[0].1, placed[1].1);
            if spots.len() < 3
                || dist(o.xy_m, t.xy_m) - o.radius_m - t.radius_m < MOVE_MIN_START_GAP_M
            {
                continue;
            }
        }
        return Ok(placed.into_iter().map(|(p, _)| p).collect());
    }
    Err(SimError::Layout {
        what: format!("the objects of {:?}", goal.family().as_str()),
        attempts: ATTEMPTS,
    })
}

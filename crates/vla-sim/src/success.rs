//! Success checks: whether the world state satisfies a goal. Tolerances are
//! the constants below (documented in sim/README.md). "Resting" means not
//! held, moving slower than [`REST_SPEED_M_S`] and turning slower than
//! [`REST_ANGULAR_SPEED_RAD_S`].

use nalgebra::{Point3, Vector3};
use serde::{Deserialize, Serialize};

use crate::goal::Goal;
use crate::layout::push_dir_world;
use crate::scene::Geometry;
use crate::world::World;

/// Pick up: the object's centre at least this far above where it started, metres.
pub const LIFT_M: f64 = 0.05;
/// Push: at least this far along the named direction, metres.
pub const PUSH_MIN_M: f64 = 0.10;
/// Push: at most this far sideways, metres.
pub const PUSH_MAX_SIDEWAYS_M: f64 = 0.05;
/// Move next to: the gap between the two sides facing each other at most this, metres.
pub const NEXT_TO_MAX_GAP_M: f64 = 0.06;
/// Vertical tolerance of "on the table" and of stacking contact, metres.
pub const Z_TOL_M: f64 = 0.012;
/// Resting: slower than this, m/s.
pub const REST_SPEED_M_S: f64 = 0.03;
/// Resting: turning slower than this, rad/s.
pub const REST_ANGULAR_SPEED_RAD_S: f64 = 0.5;

/// The outcome of a check, with the quantity that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the goal is met.
    pub success: bool,
    /// Why, in words with the measured values.
    pub reason: String,
}

fn verdict(success: bool, reason: String) -> Verdict {
    Verdict { success, reason }
}

/// Checks `goal` against the world's current state.
pub fn check(world: &World, goal: &Goal) -> Verdict {
    let Some(i) = world.index_of(goal.object()) else {
        return verdict(false, format!("no {} in the scene", goal.object()));
    };
    let obj = &world.objects()[i];
    let pose = world.pose(i);
    let centre = pose.translation.vector;
    let start = obj.start_pose.translation.vector;
    let held = world.held() == Some(i);
    let resting = !held
        && world.speed_m_s(i) < REST_SPEED_M_S
        && world.angular_speed_rad_s(i) < REST_ANGULAR_SPEED_RAD_S;
    let table_z = world.table_z_m();
    let half_h = obj.geometry.height_m() / 2.0;
    let on_table = (centre.z - (table_z + half_h)).abs() < Z_TOL_M;
    let target = goal.target().and_then(|t| world.index_of(t));
    match goal {
        Goal::PickUp { .. } => {
            let lift = centre.z - start.z;
            verdict(
                held && lift >= LIFT_M,
                format!("held: {held}, lifted {lift:.3} m (need ≥ {LIFT_M} m and held)"),
            )
        }
        Goal::Push { direction, .. } => {
            let d = push_dir_world(world.scene(), direction.unit_in_base());
            let moved = centre - start;
            let along = moved.x * d[0] + moved.y * d[1];
            let side = (-moved.x * d[1] + moved.y * d[0]).abs();
            verdict(
                resting && on_table && along >= PUSH_MIN_M && side < PUSH_MAX_SIDEWAYS_M,
                format!(
                    "moved {along:.3} m {} and {side:.3} m sideways (need ≥ {PUSH_MIN_M}, < {PUSH_MAX_SIDEWAYS_M}), resting: {resting}, on table: {on_table}",
                    direction.as_str()
                ),
            )
        }
        Goal::PutIn { target: tref, .. } => {
            let Some(t) = target else {
                return verdict(false, format!("no {tref} in the scene"));
            };
            let tobj = &world.objects()[t];
            let tpose = world.pose(t);
            let local = tpose.inverse() * Point3::from(centre);
            let radial = local.x.hypot(local.y);
            match tobj.geometry {
                Geometry::Bowl { radius_m, height_m } => {
                    let inside = radial < radius_m && local.z < height_m;
                    verdict(
                        resting && inside,
                        format!(
                            "centre {radial:.3} m from the bowl's axis (rim radius {radius_m}), {:.3} m above its base (rim {height_m}), resting: {resting}",
                            local.z
                        ),
                    )
                }
                Geometry::Plate { radius_m, height_m } => {
                    let on = radial < radius_m && (local.z - half_h - height_m).abs() < Z_TOL_M;
                    verdict(
                        resting && on,
                        format!(
                            "centre {radial:.3} m from the plate's centre (radius {radius_m}), bottom {:.3} m above its top, resting: {resting}",
                            local.z - half_h - height_m
                        ),
                    )
                }
                _ => verdict(false, format!("the {tref} is not a receptacle")),
            }
        }
        Goal::MoveNextTo { target: tref, .. } => {
            let Some(t) = target else {
                return verdict(false, format!("no {tref} in the scene"));
            };
            let tobj = &world.objects()[t];
            let tc = world.pose(t).translation.vector;
            let mut between = Vector3::new(tc.x - centre.x, tc.y - centre.y, 0.0);
            let dist = between.norm();
            if dist > 1e-9 {
                between /= dist;
            }
            let gap = dist
                - half_width_horizontal(&obj.geometry, &pose, &between)
                - half_width_horizontal(&tobj.geometry, &world.pose(t), &between);
            verdict(
                resting && on_table && gap <= NEXT_TO_MAX_GAP_M,
                format!(
                    "gap to the {tref} {gap:.3} m (need ≤ {NEXT_TO_MAX_GAP_M}), on the table: {on_table}, resting: {resting}"
                ),
            )
        }
        Goal::Stack { target: tref, .. } => {
            let Some(t) = target else {
                return verdict(false, format!("no {tref} in the scene"));
            };
            let tobj = &world.objects()[t];
            let tpose = world.pose(t);
            let local = tpose.inverse() * Point3::from(centre);
            let t_half_h = tobj.geometry.height_m() / 2.0;
            let centred = match tobj.geometry {
                Geometry::Box { half_extents_m: h } => {
                    local.x.abs() <= h[0] / 2.0 && local.y.abs() <= h[1] / 2.0
                }
                Geometry::Cylinder { radius_m, .. } => local.x.hypot(local.y) <= radius_m / 2.0,
                _ => false,
            };
            let contact = (local.z - t_half_h - half_h).abs() < Z_TOL_M;
            let t_resting = world.speed_m_s(t) < REST_SPEED_M_S;
            verdict(
                resting && t_resting && centred && contact,
                format!(
                    "offset ({:.3}, {:.3}) m on the {tref}'s top, bottom {:.3} m from its top, resting: {}",
                    local.x,
                    local.y,
                    local.z - t_half_h - half_h,
                    resting && t_resting
                ),
            )
        }
    }
}

/// Half-width of a posed geometry along a horizontal world direction.
fn half_width_horizontal(
    g: &Geometry,
    world_from_object: &nalgebra::Isometry3<f64>,
    dir: &Vector3<f64>,
) -> f64 {
    let a = world_from_object.rotation.inverse() * dir;
    match *g {
        Geometry::Box { half_extents_m: h } => {
            h[0] * a.x.abs() + h[1] * a.y.abs() + h[2] * a.z.abs()
        }
        _ => g.footprint_radius_m(),
    }
}

//! The scripted expert: solves every task family from the true world state,
//! answering in exactly the policy's action space (per-step end-effector
//! translation within ±3 cm per axis, rotation corrections within ±0.15 rad,
//! gripper 0 or 1, terminate when done), at the policy rate.
//!
//! It is a small state machine per family (approach, descend, close, lift,
//! carry, lower, open, retreat; or for push: approach behind, lower, push,
//! retreat) whose targets are recomputed from the state every step, so it
//! recovers from disturbances: a missed grasp or a dropped object sends it
//! back to the approach. Optional noise injection perturbs the *executed*
//! action for a few steps at random while the *label* stays the expert's
//! clean answer (DART-style demonstrations with recoveries).

use nalgebra::{Isometry3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use vla_core::Action;

use crate::goal::Goal;
use crate::layout::{next_to_spots, push_dir_world, Footprint};
use crate::scene::Geometry;
use crate::success::NEXT_TO_MAX_GAP_M;
use crate::world::World;
use crate::SimError;

/// Largest translation per step the expert asks for, metres (inside the tokenizer's ±3 cm).
pub const MAX_STEP_M: f64 = 0.028;
/// Largest translation per step while pushing, metres.
const PUSH_STEP_M: f64 = 0.012;
/// Largest rotation correction per step, radians.
const MAX_ROT_STEP_RAD: f64 = 0.1;
/// Carry height of the TCP above the table, metres.
const CARRY_Z_M: f64 = 0.16;
/// With [`ScriptedExpert::with_lower_near_spot`]: how far below carry
/// height the TCP must be for the expert to lower from where it is, metres.
const BELOW_CARRY_M: f64 = 0.02;
/// Move next to, lowering from where it is: the most gap (between the
/// footprints' circles, which is at least the checked gap) kept to the
/// target, metres; 2 cm inside the check's [`NEXT_TO_MAX_GAP_M`].
const HERE_MAX_GAP_M: f64 = NEXT_TO_MAX_GAP_M - 0.02;
/// Move next to, lowering from where it is: the least gap kept to the target, metres.
const HERE_MIN_GAP_M: f64 = 0.005;
/// Hover height of the TCP above a grasp point, metres.
const HOVER_M: f64 = 0.09;
/// Distance from an object's side to the TCP before pushing (closed
/// fingers reach 1.8 cm from the TCP), metres.
const PUSH_CLEARANCE_M: f64 = 0.032;
/// Half-span of the open fingers along the finger axis, metres (the outer
/// faces of the Panda's fingers at 4 cm opening).
const OPEN_HAND_HALF_SPAN_M: f64 = 0.06;
/// Half-thickness of the fingers across the finger axis, metres.
const FINGER_HALF_WIDTH_M: f64 = 0.012;
/// Distance pushed by default, metres (success needs 0.10);
/// [`ScriptedExpert::with_push_distance`] changes it.
pub const DEFAULT_PUSH_DISTANCE_M: f64 = 0.14;

fn default_near_object_radius_m() -> f64 {
    0.05
}

/// Noise injection settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseConfig {
    /// Probability per step of starting a perturbation.
    pub start_prob: f64,
    /// Steps a perturbation lasts.
    pub duration_steps: usize,
    /// Translation added per step during a perturbation, metres.
    pub magnitude_m: f64,
    /// Probability per step, while the expert is over its object before a
    /// grasp (descending, or approaching within 5 cm of the hover point),
    /// of starting a sideways drift of `near_object_m` per step for
    /// `duration_steps` steps: the misalignments a learned policy makes
    /// right where a grasp needs ~1 cm precision. 0 in files written
    /// before it existed.
    #[serde(default)]
    pub near_object_prob: f64,
    /// Horizontal translation added per step by a near-object drift, metres.
    #[serde(default)]
    pub near_object_m: f64,
    /// How far (horizontally) from its object an approaching hand counts
    /// as near it, metres (0.05 in files written before it existed).
    #[serde(default = "default_near_object_radius_m")]
    pub near_object_radius_m: f64,
    /// Probability per step, while the expert is over its object before a
    /// grasp with the fingers beside it (≥ 1.5 cm off sideways) or above it
    /// (≥ 3 cm), of closing the executed gripper early for
    /// `early_close_steps` steps, the arm holding still, while the label
    /// stays the expert's (open, keep going): the data then holds a hand
    /// closed on nothing and the expert opening it again.
    #[serde(default)]
    pub early_close_prob: f64,
    /// Steps an early close lasts.
    #[serde(default)]
    pub early_close_steps: usize,
    /// Per episode, draw the expert's sideways speed while approaching its
    /// object from 0.6–2.8 cm per step (the descent keeps 2.8 cm), so that
    /// the sideways motion ends at a different height in every episode.
    /// With a fixed speed it always ends ~8 steps in, high above the
    /// object, and a policy learns "no sideways motion below that height"
    /// from the arm's height instead of from where the object is. This
    /// changes the labels (a style of demonstration, not noise on the
    /// executed action).
    #[serde(default)]
    pub varied_approach: bool,
    /// Probability per step, while the goal's object is in the hand within
    /// `near_place_radius_m` (horizontally) of where it is to be put down
    /// (carrying or lowering it; stack, put in, move next to), of starting
    /// a sideways drift for `duration_steps` steps, of a size drawn from
    /// 25–100 % of `near_place_m` per step: the 0.5–1.5 cm misalignments
    /// a learned policy releases stacked objects with, with the expert's
    /// last correction as the label (policies/default/README.md, session
    /// 45). 0 in files written before it existed.
    #[serde(default)]
    pub near_place_prob: f64,
    /// Largest horizontal translation per step of a near-place drift, metres.
    #[serde(default)]
    pub near_place_m: f64,
    /// How far (horizontally) from its place a held object counts as near
    /// it, metres.
    #[serde(default)]
    pub near_place_radius_m: f64,
}

impl NoiseConfig {
    /// No noise.
    pub fn none() -> Self {
        Self {
            start_prob: 0.0,
            duration_steps: 0,
            magnitude_m: 0.0,
            near_object_prob: 0.0,
            near_object_m: 0.0,
            near_object_radius_m: default_near_object_radius_m(),
            early_close_prob: 0.0,
            early_close_steps: 0,
            varied_approach: false,
            near_place_prob: 0.0,
            near_place_m: 0.0,
            near_place_radius_m: 0.0,
        }
    }

    /// The setting `vla collect --noise` uses: 5 % of steps start a 3-step
    /// drift of 1.5 cm per step in a random direction.
    pub fn demonstrations() -> Self {
        Self {
            start_prob: 0.05,
            duration_steps: 3,
            magnitude_m: 0.015,
            ..Self::none()
        }
    }

    /// The setting `vla collect --noise --recovery` uses: the
    /// demonstrations' drifts, plus near the object a 15 % chance per step
    /// of a 3-step sideways drift of 1.2 cm per step (up to 3.6 cm off) and
    /// a 10 % chance per step there (hand beside or above the object) of
    /// closing it on nothing for 5 steps (the fingers shut in 4). The failures a behaviour-cloned policy makes at the grasp
    /// (closing beside the object, no sideways correction) then appear in
    /// the demonstrations with the expert's way out as the label.
    pub fn recovery() -> Self {
        Self {
            near_object_prob: 0.15,
            near_object_m: 0.012,
            early_close_prob: 0.10,
            early_close_steps: 5,
            ..Self::demonstrations()
        }
    }

    /// The demonstrations' drifts, a varied approach speed, and during the
    /// whole approach (within 25 cm of the object) a 15 % chance per step
    /// of a 3-step sideways drift of 2 cm per step, so the hand is often
    /// several cm off at every height on its way down and the labels show
    /// the correction (`vla collect --noise --varied-approach`).
    pub fn varied_approach() -> Self {
        Self {
            varied_approach: true,
            near_object_prob: 0.15,
            near_object_m: 0.02,
            near_object_radius_m: 0.25,
            ..Self::demonstrations()
        }
    }

    /// The demonstrations' drifts, and while a held object is within 4 cm
    /// of its place (carried over it or lowered onto it) a 25 % chance per
    /// step of a 3-step sideways drift of 0.375–1.5 cm per step
    /// (`vla collect --noise --near-place`): the hand keeps the object that
    /// far off until the drift ends, and the labels show the last
    /// sub-centimetre correction before a release, which the plain
    /// demonstrations hold about once per placement.
    pub fn near_place() -> Self {
        Self {
            near_place_prob: 0.25,
            near_place_m: 0.015,
            near_place_radius_m: 0.04,
            ..Self::demonstrations()
        }
    }

    fn is_active(&self) -> bool {
        self.start_prob > 0.0
            || self.near_object_prob > 0.0
            || self.early_close_prob > 0.0
            || self.near_place_prob > 0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Approach,
    Descend,
    Close,
    Lift,
    Carry,
    Lower,
    Open,
    Retreat,
    PushApproach,
    PushLower,
    Push,
    PushRetreat,
    Done,
}

/// One expert answer: the label to learn and the action to execute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpertStep {
    /// The expert's clean action (the demonstration label).
    pub label: Action,
    /// What is sent to the arm (the label plus any injected noise).
    pub executed: Action,
}

/// The scripted expert for one episode.
#[derive(Debug, Clone)]
pub struct ScriptedExpert {
    goal: Goal,
    phase: Phase,
    phase_steps: usize,
    noise: NoiseConfig,
    rng: ChaCha8Rng,
    perturb_left: usize,
    perturb_m: Vector3<f64>,
    early_close_left: usize,
    approach_xy_step_m: f64,
    world_from_tcp_home: Option<UnitQuaternion<f64>>,
    place_xy: Option<[f64; 2]>,
    lower_near_spot_m: Option<f64>,
    push_distance_m: f64,
}

fn clamp_vec(v: Vector3<f64>, max: f64) -> Vector3<f64> {
    Vector3::new(
        v.x.clamp(-max, max),
        v.y.clamp(-max, max),
        v.z.clamp(-max, max),
    )
}

impl ScriptedExpert {
    /// An expert for `goal`, with noise drawn from `seed`.
    pub fn new(goal: Goal, noise: NoiseConfig, seed: u64) -> Self {
        let phase = match goal {
            Goal::Push { .. } => Phase::PushApproach,
            _ => Phase::Approach,
        };
        Self {
            goal,
            phase,
            phase_steps: 0,
            noise,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x00e4_be47),
            // Its own stream, so the other noise stays as it was.
            approach_xy_step_m: if noise.varied_approach {
                ChaCha8Rng::seed_from_u64(seed ^ 0x0a99_70ac).gen_range(0.006..MAX_STEP_M)
            } else {
                MAX_STEP_M
            },
            perturb_left: 0,
            perturb_m: Vector3::zeros(),
            early_close_left: 0,
            world_from_tcp_home: None,
            place_xy: None,
            lower_near_spot_m: None,
            push_distance_m: DEFAULT_PUSH_DISTANCE_M,
        }
    }

    /// An expert that pushes objects `distance_m` along the named direction
    /// from where they started (default [`DEFAULT_PUSH_DISTANCE_M`]; the
    /// success check asks for 0.10 m). A learned policy cannot see how far
    /// a push has gone in one frame and stops it at about the distance of
    /// its demonstrations, sometimes short of 0.10 m; a longer expert push
    /// moves that guess up (`vla collect --push-distance-m`,
    /// policies/default/README.md, session 41).
    pub fn with_push_distance(mut self, distance_m: f64) -> Self {
        self.push_distance_m = distance_m;
        self
    }

    /// An expert that, finding the goal's object in the hand below carry
    /// height (at least [`BELOW_CARRY_M`] under it) and above its release
    /// height, lowers it onto its place from there instead of lifting it to
    /// carry height first: when the place is within `radius_m`
    /// horizontally, and for move-next-to also wherever the object already
    /// is a free spot next to the target (gap 0.5–4 cm, the open fingers
    /// clear of everything). The scripted demonstrations never meet that
    /// state (they lift to carry height before moving); a policy under
    /// DAgger does, and without this rule it is told "rise" where its own
    /// demonstrations lowered (`vla collect --lower-near-spot-m`,
    /// policies/default/README.md, session 36).
    pub fn with_lower_near_spot(mut self, radius_m: f64) -> Self {
        self.lower_near_spot_m = Some(radius_m);
        self
    }

    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
        self.phase_steps = 0;
    }

    /// The next action for the current world state.
    pub fn act(&mut self, world: &World) -> Result<ExpertStep, SimError> {
        let tcp = world.world_from_tcp()?;
        let home_rot = *self.world_from_tcp_home.get_or_insert(tcp.rotation);
        let (target, gripper, terminate) = self.target(world, &tcp)?;
        self.phase_steps += 1;
        let world_from_base = world.arm().world_from_base();
        let max = if matches!(self.phase, Phase::Push | Phase::PushLower) {
            PUSH_STEP_M
        } else {
            MAX_STEP_M
        };
        let mut delta_world = clamp_vec(target - tcp.translation.vector, max);
        if self.phase == Phase::Approach {
            let xy = self.approach_xy_step_m;
            delta_world.x = delta_world.x.clamp(-xy, xy);
            delta_world.y = delta_world.y.clamp(-xy, xy);
        }
        let delta_base = world_from_base.rotation.inverse() * delta_world;
        let rot = rotation_correction(&world_from_base, &tcp, &home_rot);
        let label = if terminate {
            Action::new([0.0; 3], [0.0; 3], gripper, true)
        } else {
            Action::new(
                [delta_base.x, delta_base.y, delta_base.z],
                rot,
                gripper,
                false,
            )
        };
        let mut executed = label;
        if !terminate && self.noise.is_active() {
            self.perturb(world, &tcp, &label, &mut executed)?;
        }
        Ok(ExpertStep { label, executed })
    }

    /// Applies the injected noise to `executed` (the label stays clean).
    fn perturb(
        &mut self,
        world: &World,
        tcp: &Isometry3<f64>,
        label: &Action,
        executed: &mut Action,
    ) -> Result<(), SimError> {
        let over_object = self.over_object_before_grasp(world, tcp);
        let near_object = over_object.is_some();
        // Close early only where the fingers would shut on nothing (beside
        // the object or well above it), so no label contradicts a real grasp.
        let misplaced = over_object
            .is_some_and(|(xy_off_m, above_grasp_m)| xy_off_m >= 0.015 || above_grasp_m >= 0.03);
        if self.early_close_left == 0
            && self.perturb_left == 0
            && misplaced
            && self.noise.early_close_prob > 0.0
            && self.rng.gen::<f64>() < self.noise.early_close_prob
        {
            self.early_close_left = self.noise.early_close_steps;
        }
        if self.early_close_left > 0 {
            // Close on the spot: the arm holds still while the fingers shut.
            self.early_close_left -= 1;
            executed.translation_m = [0.0; 3];
            executed.gripper = 1.0;
            return Ok(());
        }
        let near_place = self.noise.near_place_prob > 0.0 && self.near_place(world)?;
        if self.perturb_left == 0 {
            if near_place && self.rng.gen::<f64>() < self.noise.near_place_prob {
                self.perturb_left = self.noise.duration_steps.max(1);
                let angle = self.rng.gen_range(0.0..std::f64::consts::TAU);
                let size_m = self.noise.near_place_m * self.rng.gen_range(0.25..=1.0);
                let world_from_base = world.arm().world_from_base();
                let drift_world = Vector3::new(angle.cos(), angle.sin(), 0.0) * size_m;
                self.perturb_m = world_from_base.rotation.inverse() * drift_world;
            } else if near_object
                && self.noise.near_object_prob > 0.0
                && self.rng.gen::<f64>() < self.noise.near_object_prob
            {
                self.perturb_left = self.noise.duration_steps.max(1);
                let angle = self.rng.gen_range(0.0..std::f64::consts::TAU);
                let world_from_base = world.arm().world_from_base();
                let drift_world =
                    Vector3::new(angle.cos(), angle.sin(), 0.0) * self.noise.near_object_m;
                self.perturb_m = world_from_base.rotation.inverse() * drift_world;
            } else if self.noise.start_prob > 0.0 && self.rng.gen::<f64>() < self.noise.start_prob {
                self.perturb_left = self.noise.duration_steps;
                let v = Vector3::new(
                    self.rng.gen_range(-1.0..1.0),
                    self.rng.gen_range(-1.0..1.0),
                    self.rng.gen_range(-0.5..0.5),
                );
                self.perturb_m =
                    v.try_normalize(1e-9).unwrap_or_else(Vector3::x) * self.noise.magnitude_m;
            }
        }
        if self.perturb_left > 0 {
            self.perturb_left -= 1;
            let t = clamp_vec(
                Vector3::from(label.translation_m) + self.perturb_m,
                MAX_STEP_M,
            );
            executed.translation_m = [t.x, t.y, t.z];
        }
        Ok(())
    }

    /// Whether the goal's object is in the hand, carried or lowered, within
    /// `near_place_radius_m` (horizontally) of its place.
    fn near_place(&mut self, world: &World) -> Result<bool, SimError> {
        if !matches!(self.phase, Phase::Carry | Phase::Lower)
            || !matches!(
                self.goal,
                Goal::PutIn { .. } | Goal::Stack { .. } | Goal::MoveNextTo { .. }
            )
        {
            return Ok(false);
        }
        let Some(oi) = world.index_of(self.goal.object()) else {
            return Ok(false);
        };
        if world.held() != Some(oi) {
            return Ok(false);
        }
        let place = self.place_xy(world, oi)?;
        let oc = world.pose(oi).translation.vector;
        Ok((place[0] - oc.x).hypot(place[1] - oc.y) < self.noise.near_place_radius_m)
    }

    /// When the expert is about to grasp (descending onto its object, or
    /// approaching it within `near_object_radius_m` of it, the object not held):
    /// the hand's horizontal distance from the object and its height above
    /// the grasp point, metres.
    fn over_object_before_grasp(&self, world: &World, tcp: &Isometry3<f64>) -> Option<(f64, f64)> {
        if !matches!(self.phase, Phase::Descend | Phase::Approach) {
            return None;
        }
        let oi = world.index_of(self.goal.object())?;
        if world.held() == Some(oi) {
            return None;
        }
        let oc = world.pose(oi).translation.vector;
        let p = tcp.translation.vector;
        let xy_off_m = (oc.x - p.x).hypot(oc.y - p.y);
        let grasp_z = oc.z.max(world.table_z_m() + 0.014);
        let over = self.phase == Phase::Descend || xy_off_m < self.noise.near_object_radius_m;
        over.then_some((xy_off_m, p.z - grasp_z))
    }

    /// The TCP target (world), gripper command and terminate flag for this
    /// step; advances the phase when the current one is reached.
    fn target(
        &mut self,
        world: &World,
        tcp: &Isometry3<f64>,
    ) -> Result<(Vector3<f64>, f64, bool), SimError> {
        let table_z = world.table_z_m();
        let oi = world
            .index_of(self.goal.object())
            .ok_or_else(|| SimError::Goal(format!("no {} in the scene", self.goal.object())))?;
        let obj = &world.objects()[oi];
        let obj_pose = world.pose(oi);
        let oc = obj_pose.translation.vector;
        let half_h = obj.geometry.height_m() / 2.0;
        let p = tcp.translation.vector;
        let held = world.held() == Some(oi);
        let near = |a: Vector3<f64>, xy_tol: f64, z_tol: f64| {
            (a.x - p.x).hypot(a.y - p.y) < xy_tol && (a.z - p.z).abs() < z_tol
        };
        let grasp_z = oc.z.max(table_z + 0.014);
        for _ in 0..4 {
            // The phase follows the world, not only the script: when the
            // object is already in the hand (another controller, e.g. the
            // policy under DAgger, closed on it), lift it instead of
            // reaching for where it now hangs with the gripper open.
            if held && matches!(self.phase, Phase::Approach | Phase::Descend) {
                self.set_phase(Phase::Lift);
            }
            if held
                && matches!(self.phase, Phase::Lift | Phase::Carry)
                && self.lowers_from_here(world, oi, &p, &oc, half_h)?
            {
                self.set_phase(Phase::Lower);
            }
            match self.phase {
                Phase::Approach => {
                    let t = Vector3::new(oc.x, oc.y, grasp_z + HOVER_M);
                    if near(t, 0.006, 0.02) {
                        self.set_phase(Phase::Descend);
                        continue;
                    }
                    // Rise first when low and far, so the hand does not sweep objects.
                    let far = (t.x - p.x).hypot(t.y - p.y) > 0.03;
                    let z = if far && p.z < table_z + 0.1 {
                        p.z + 0.05
                    } else {
                        t.z
                    };
                    return Ok((Vector3::new(t.x, t.y, z), 0.0, false));
                }
                Phase::Descend => {
                    let t = Vector3::new(oc.x, oc.y, grasp_z);
                    if (t.x - p.x).hypot(t.y - p.y) > 0.02 {
                        self.set_phase(Phase::Approach);
                        continue;
                    }
                    if near(t, 0.004, 0.004) {
                        self.set_phase(Phase::Close);
                        continue;
                    }
                    return Ok((t, 0.0, false));
                }
                Phase::Close => {
                    if held {
                        self.set_phase(Phase::Lift);
                        continue;
                    }
                    if self.phase_steps > 8 {
                        // Missed: open and start again.
                        self.set_phase(Phase::Approach);
                        return Ok((p + Vector3::z() * 0.03, 0.0, false));
                    }
                    return Ok((Vector3::new(oc.x, oc.y, grasp_z), 1.0, false));
                }
                Phase::Lift => {
                    if !held {
                        self.set_phase(Phase::Approach);
                        continue;
                    }
                    let t = Vector3::new(p.x, p.y, table_z + CARRY_Z_M);
                    if near(t, 1.0, 0.01) {
                        if matches!(self.goal, Goal::PickUp { .. }) {
                            self.set_phase(Phase::Done);
                        } else {
                            self.set_phase(Phase::Carry);
                        }
                        continue;
                    }
                    return Ok((t, 1.0, false));
                }
                Phase::Carry => {
                    if !held {
                        self.set_phase(Phase::Approach);
                        continue;
                    }
                    let place = self.place_xy(world, oi)?;
                    let t = Vector3::new(
                        place[0] + p.x - oc.x,
                        place[1] + p.y - oc.y,
                        table_z + CARRY_Z_M,
                    );
                    if near(t, 0.004, 0.02) {
                        self.set_phase(Phase::Lower);
                        continue;
                    }
                    return Ok((t, 1.0, false));
                }
                Phase::Lower => {
                    if !held {
                        self.set_phase(Phase::Open);
                        continue;
                    }
                    let place = self.place_xy(world, oi)?;
                    let release_z = self.release_centre_z(world, half_h)?;
                    let t = Vector3::new(
                        place[0] + p.x - oc.x,
                        place[1] + p.y - oc.y,
                        release_z + p.z - oc.z,
                    );
                    if near(t, 0.004, 0.003) {
                        self.set_phase(Phase::Open);
                        continue;
                    }
                    return Ok((t, 1.0, false));
                }
                Phase::Open => {
                    if self.phase_steps >= 4 {
                        self.set_phase(Phase::Retreat);
                        continue;
                    }
                    return Ok((p, 0.0, false));
                }
                Phase::Retreat => {
                    let t = Vector3::new(p.x, p.y, table_z + CARRY_Z_M);
                    if near(t, 1.0, 0.02) || self.phase_steps > 10 {
                        self.set_phase(Phase::Done);
                        continue;
                    }
                    return Ok((t, 0.0, false));
                }
                Phase::PushApproach | Phase::PushLower | Phase::Push | Phase::PushRetreat => {
                    return self.push_target(world, oi, tcp);
                }
                Phase::Done => {
                    let gripper = if matches!(self.goal, Goal::PickUp { .. }) {
                        1.0
                    } else {
                        0.0
                    };
                    return Ok((p, gripper, true));
                }
            }
        }
        Ok((p, if held { 1.0 } else { 0.0 }, false))
    }

    /// Where the object's centre goes down, world xy.
    fn place_xy(&mut self, world: &World, oi: usize) -> Result<[f64; 2], SimError> {
        let target = self.goal.target().and_then(|t| world.index_of(t));
        let Some(ti) = target else {
            return Err(SimError::Goal(format!(
                "the goal of {:?} has no target in the scene",
                self.goal.family().as_str()
            )));
        };
        let tc = world.pose(ti).translation.vector;
        match self.goal {
            Goal::MoveNextTo { .. } => {
                if let Some(xy) = self.place_xy {
                    return Ok(xy);
                }
                let others: Vec<Footprint> = world
                    .objects()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != oi && *i != ti)
                    .map(|(i, o)| {
                        let c = world.pose(i).translation.vector;
                        Footprint {
                            xy_m: [c.x, c.y],
                            radius_m: o.geometry.footprint_radius_m(),
                        }
                    })
                    .collect();
                let start = world.objects()[oi].start_pose.translation.vector;
                let spots = next_to_spots(
                    world.scene(),
                    Footprint {
                        xy_m: [tc.x, tc.y],
                        radius_m: world.objects()[ti].geometry.footprint_radius_m(),
                    },
                    world.objects()[oi].geometry.footprint_radius_m(),
                    [start.x, start.y],
                    &others,
                );
                // The open fingers reach 6 cm along the finger axis: keep
                // that side clear of the target and the others.
                let y_axis = world.world_from_tcp()?.rotation * Vector3::y();
                let clear = |s: &[f64; 2]| spot_is_clear(world, oi, *s, &y_axis);
                let spots: Vec<[f64; 2]> =
                    match spots.iter().copied().filter(clear).collect::<Vec<_>>() {
                        v if v.is_empty() => spots,
                        v => v,
                    };
                let xy = spots
                    .first()
                    .copied()
                    .ok_or_else(|| SimError::Goal("no free spot next to the target".to_string()))?;
                self.place_xy = Some(xy);
                Ok(xy)
            }
            _ => Ok([tc.x, tc.y]),
        }
    }

    /// The rule of [`Self::with_lower_near_spot`]: whether to lower the
    /// held object `oi` (centre `oc`, half-height `half_h`, TCP at `p`)
    /// from where it is. For move-next-to it may move the place to here.
    fn lowers_from_here(
        &mut self,
        world: &World,
        oi: usize,
        p: &Vector3<f64>,
        oc: &Vector3<f64>,
        half_h: f64,
    ) -> Result<bool, SimError> {
        let Some(radius_m) = self.lower_near_spot_m else {
            return Ok(false);
        };
        if !matches!(
            self.goal,
            Goal::PutIn { .. } | Goal::Stack { .. } | Goal::MoveNextTo { .. }
        ) {
            return Ok(false);
        }
        if p.z > world.table_z_m() + CARRY_Z_M - BELOW_CARRY_M
            || oc.z < self.release_centre_z(world, half_h)? - 0.003
        {
            return Ok(false);
        }
        if let Goal::MoveNextTo { .. } = self.goal {
            if let Some(ti) = self.goal.target().and_then(|t| world.index_of(t)) {
                let tc = world.pose(ti).translation.vector;
                let gap_m = (tc.x - oc.x).hypot(tc.y - oc.y)
                    - world.objects()[oi].geometry.footprint_radius_m()
                    - world.objects()[ti].geometry.footprint_radius_m();
                if (HERE_MIN_GAP_M..=HERE_MAX_GAP_M).contains(&gap_m)
                    && spot_is_clear(
                        world,
                        oi,
                        [oc.x, oc.y],
                        &(world.world_from_tcp()?.rotation * Vector3::y()),
                    )
                {
                    self.place_xy = Some([oc.x, oc.y]);
                    return Ok(true);
                }
            }
        }
        let place = self.place_xy(world, oi)?;
        Ok((place[0] - oc.x).hypot(place[1] - oc.y) <= radius_m)
    }

    /// Height of the held object's centre at release, world z.
    fn release_centre_z(&self, world: &World, half_h: f64) -> Result<f64, SimError> {
        let table_z = world.table_z_m();
        // Balls are set down almost touching, so that they do not bounce and roll.
        let ball = world
            .index_of(self.goal.object())
            .is_some_and(|i| matches!(world.objects()[i].geometry, Geometry::Sphere { .. }));
        let gap = if ball { 0.002 } else { 0.006 };
        let target = self.goal.target().and_then(|t| world.index_of(t));
        Ok(match (&self.goal, target) {
            (Goal::PutIn { .. }, Some(ti)) => match world.objects()[ti].geometry {
                Geometry::Plate { height_m, .. } => table_z + height_m + half_h + gap,
                _ => table_z + 0.006 + half_h + gap,
            },
            (Goal::Stack { .. }, Some(ti)) => {
                let tc = world.pose(ti).translation.vector;
                tc.z + world.objects()[ti].geometry.height_m() / 2.0 + half_h + gap
            }
            _ => table_z + half_h + gap,
        })
    }

    fn push_target(
        &mut self,
        world: &World,
        oi: usize,
        tcp: &Isometry3<f64>,
    ) -> Result<(Vector3<f64>, f64, bool), SimError> {
        let Goal::Push { direction, .. } = self.goal else {
            return Err(SimError::Goal("push phase without a push goal".into()));
        };
        let table_z = world.table_z_m();
        let p = tcp.translation.vector;
        let obj = &world.objects()[oi];
        let oc = world.pose(oi).translation.vector;
        let start = obj.start_pose.translation.vector;
        let d0 = push_dir_world(world.scene(), direction.unit_in_base());
        let d0 = Vector3::new(d0[0], d0[1], 0.0);
        let goal_xy = start + d0 * self.push_distance_m;
        let to_goal = Vector3::new(goal_xy.x - oc.x, goal_xy.y - oc.y, 0.0);
        let d = to_goal.try_normalize(1e-6).unwrap_or(d0);
        let reach = obj.geometry.half_width_m() + PUSH_CLEARANCE_M;
        let push_z = table_z + 0.014;
        for _ in 0..4 {
            match self.phase {
                Phase::PushApproach => {
                    let behind = oc - d * reach;
                    let t = Vector3::new(behind.x, behind.y, table_z + 0.1);
                    let far = (t.x - p.x).hypot(t.y - p.y) > 0.03;
                    if !far && (t.x - p.x).hypot(t.y - p.y) < 0.005 {
                        self.set_phase(Phase::PushLower);
                        continue;
                    }
                    let z = if far && p.z < table_z + 0.08 {
                        p.z + 0.05
                    } else {
                        t.z
                    };
                    return Ok((Vector3::new(t.x, t.y, z), 1.0, false));
                }
                Phase::PushLower => {
                    let behind = oc - d * reach;
                    let t = Vector3::new(behind.x, behind.y, push_z);
                    if (t.x - p.x).hypot(t.y - p.y) > 0.02 {
                        self.set_phase(Phase::PushApproach);
                        continue;
                    }
                    if (t.z - p.z).abs() < 0.004 {
                        self.set_phase(Phase::Push);
                        continue;
                    }
                    return Ok((t, 1.0, false));
                }
                Phase::Push => {
                    let along = (oc - start).dot(&d0);
                    if along >= self.push_distance_m - 0.005 {
                        self.set_phase(Phase::PushRetreat);
                        continue;
                    }
                    // Lost contact line (object turned or slid away): go round again.
                    let behind = oc - d * reach;
                    let lateral = {
                        let off = Vector3::new(p.x - behind.x, p.y - behind.y, 0.0);
                        (off - d * off.dot(&d)).norm()
                    };
                    if lateral > 0.02 || (oc - p).dot(&d) < 0.0 {
                        self.set_phase(Phase::PushApproach);
                        continue;
                    }
                    let t = behind + d * (PUSH_CLEARANCE_M + 0.012);
                    return Ok((Vector3::new(t.x, t.y, push_z), 1.0, false));
                }
                Phase::PushRetreat => {
                    let t = Vector3::new(p.x, p.y, table_z + 0.12) - d0 * 0.0;
                    if (t.z - p.z).abs() < 0.02 || self.phase_steps > 8 {
                        self.set_phase(Phase::Done);
                        continue;
                    }
                    return Ok((t, 1.0, false));
                }
                _ => return Ok((p, 1.0, true)),
            }
        }
        Ok((p, 1.0, false))
    }

    /// The current phase, for logs.
    pub fn phase_name(&self) -> String {
        format!("{:?}", self.phase)
    }

    /// Whether the expert is still on its way to its object: approaching it
    /// or descending to it, not yet closing the gripper or pushing.
    pub fn approaching(&self) -> bool {
        matches!(
            self.phase,
            Phase::Approach | Phase::Descend | Phase::PushApproach
        )
    }

    /// Whether the expert has lifted its object and is now carrying it to,
    /// lowering it onto or releasing it at the target (or retreating after).
    pub fn carrying(&self) -> bool {
        matches!(
            self.phase,
            Phase::Carry | Phase::Lower | Phase::Open | Phase::Retreat
        )
    }

    /// Whether the expert has declared the task done.
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }
}

/// Whether an object `oi` set down at `xy` leaves the open fingers (6 cm
/// along the finger axis `y_axis`, world) clear of every other object by
/// 8 mm.
fn spot_is_clear(world: &World, oi: usize, xy: [f64; 2], y_axis: &Vector3<f64>) -> bool {
    world
        .objects()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != oi)
        .all(|(i, o)| {
            let c = world.pose(i).translation.vector;
            let u = Vector3::new(c.x - xy[0], c.y - xy[1], 0.0);
            let d = u.norm();
            let u = u / d.max(1e-9);
            let along_y = u.dot(y_axis).abs();
            let reach = OPEN_HAND_HALF_SPAN_M * along_y
                + FINGER_HALF_WIDTH_M * (1.0 - along_y * along_y).sqrt();
            d >= o.geometry.footprint_radius_m() + reach + 0.008
        })
}

/// Roll, pitch, yaw (base frame, `Rz·Ry·Rx`) that turn the TCP's current
/// orientation towards `desired`, limited per step.
fn rotation_correction(
    world_from_base: &Isometry3<f64>,
    world_from_tcp: &Isometry3<f64>,
    desired: &UnitQuaternion<f64>,
) -> [f64; 3] {
    let err_world = desired * world_from_tcp.rotation.inverse();
    let err_base = world_from_base.rotation.inverse() * err_world * world_from_base.rotation;
    let (r, p, y) = err_base.euler_angles();
    let lim = |v: f64| (0.5 * v).clamp(-MAX_ROT_STEP_RAD, MAX_ROT_STEP_RAD);
    let out = [lim(r), lim(p), lim(y)];
    // Ignore sub-milliradian noise so that quiet steps stay exactly zero.
    out.map(|v| if v.abs() < 1e-3 { 0.0 } else { v })
}

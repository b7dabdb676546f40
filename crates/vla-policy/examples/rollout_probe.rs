//! Diagnostic: does a policy know where the named object is, in the states
//! its own rollouts reach?
//!
//! Reads a `vla collect` folder (best: `vla collect --dagger POLICY
//! --expert-prob 0`, the policy's own rollouts with the true positions
//! recorded), runs the policy's encoder on every frame of the first
//! `EPISODES` episodes and compares its auxiliary head's estimate of "goal
//! object − gripper" with the truth, per step of the episode (the object not
//! in the hand). It also counts how often the policy's Δx/Δy has the sign of
//! the true offset where that offset is ≥ 3 cm: if the estimate is right and
//! the move is not, the action head is not using what the encoder knows.
//!
//! ```sh
//! cargo run --release --example rollout_probe -- POLICY_DIR DATA_DIR [EPISODES]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use vla_core::{JointState, PixelEncoding, RgbFrame};
use vla_policy::{data, VlaPolicy};

#[derive(Default)]
struct Bucket {
    n: usize,
    sq_err_m2: [f64; 2],
    sq_true_m2: [f64; 2],
    far: [usize; 2],
    est_sign_ok: [usize; 2],
    move_sign_ok: [usize; 2],
}

#[derive(Default)]
struct KeypointTally {
    n: usize,
    sq_err_px2: f64,
    within_3px: usize,
    wrong_object: usize,
}

impl KeypointTally {
    fn add(&mut self, err_px: f32, wrong_object: bool) {
        self.n += 1;
        self.sq_err_px2 += f64::from(err_px).powi(2);
        self.within_3px += usize::from(err_px < 3.0);
        self.wrong_object += usize::from(wrong_object);
    }

    fn print(&self, label: &str) {
        if self.n > 0 {
            println!(
                "{label}: {} frames, RMS error {:.1} px, within 3 px {}, nearer the target object {}",
                self.n,
                (self.sq_err_px2 / self.n as f64).sqrt(),
                self.within_3px,
                self.wrong_object
            );
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rollout_probe POLICY_DIR DATA_DIR [EPISODES]");
        std::process::exit(2);
    }
    let mut policy = VlaPolicy::load(std::path::Path::new(&args[1])).unwrap();
    let size = policy.config().model.image_size_px;
    let ds = data::load_dir(std::path::Path::new(&args[2]), size).unwrap();
    let episodes: usize = args.get(3).map_or(30, |s| s.parse().expect("EPISODES"));
    let edges = [0usize, 1, 5, 10, 15, 25, 1000];
    let mut buckets: Vec<Bucket> = (0..edges.len() - 1).map(|_| Bucket::default()).collect();
    let (mut last_episode, mut step) = (usize::MAX, 0usize);
    // First frames of two-object tasks: estimate within 3 cm of the goal
    // object, and nearer to the target object than to the goal object.
    let (mut first_two, mut first_close, mut first_target) = (0usize, 0usize, 0usize);
    // Keypoint 0 (goal object) against the recorded pixel, on every first
    // frame and on all frames: squared error, within 3 px, nearer keypoint
    // 1's target (the target object) than its own.
    let mut kp_first = KeypointTally::default();
    let mut kp_all = KeypointTally::default();
    for s in &ds.samples {
        if s.episode >= episodes {
            break;
        }
        if s.episode != last_episode {
            last_episode = s.episode;
            step = 0;
            policy.set_instruction_text(&s.instruction).unwrap();
        } else {
            step += 1;
        }
        // Goal object x, y relative to the gripper; skip held / unknown.
        if s.aux_mask[0] == 0.0 || s.aux_mask[1] == 0.0 {
            continue;
        }
        let truth_m = [
            f64::from(s.aux[0]) * data::AUX_UNIT_M,
            f64::from(s.aux[1]) * data::AUX_UNIT_M,
        ];
        if truth_m[0].hypot(truth_m[1]) < 0.01 && f64::from(s.aux[2]).abs() < 0.3 {
            continue; // in or at the hand
        }
        let frame = RgbFrame::new(
            size as u32,
            size as u32,
            PixelEncoding::Rgb8,
            s.rgb.to_vec(),
        )
        .unwrap();
        let joints = JointState::new(
            ds.state_names.clone(),
            s.state.iter().map(|&q| f64::from(q)).collect(),
            0.0,
        )
        .unwrap();
        let est = policy
            .auxiliary_estimate_m(&frame, Some(&joints))
            .unwrap()
            .expect("the policy has no auxiliary head");
        let act = policy.step_observation(&frame, Some(&joints)).unwrap();
        if let (Some(kp), Some(goal_px)) = (
            policy.keypoints_px(&frame, Some(&joints)).unwrap(),
            s.keypoint_px[0],
        ) {
            let err_px = (kp[0][0] - goal_px[0]).hypot(kp[0][1] - goal_px[1]);
            let wrong =
                s.keypoint_px[1].is_some_and(|t| (kp[0][0] - t[0]).hypot(kp[0][1] - t[1]) < err_px);
            kp_all.add(err_px, wrong);
            if step == 0 {
                if std::env::var_os("PROBE_VERBOSE").is_some() {
                    eprintln!(
                        "episode {:4} keypoint 0 at ({:5.1}, {:5.1}), goal object at ({:5.1}, {:5.1}), error {:5.1} px: {}",
                        s.episode, kp[0][0], kp[0][1], goal_px[0], goal_px[1], err_px, s.instruction.as_str()
                    );
                }
                kp_first.add(err_px, wrong);
            }
        }
        if step == 0 && s.aux_mask[3] != 0.0 && s.aux_mask[4] != 0.0 {
            let target_m = [
                f64::from(s.aux[3]) * data::AUX_UNIT_M,
                f64::from(s.aux[4]) * data::AUX_UNIT_M,
            ];
            let to_goal = (est[0] - truth_m[0]).hypot(est[1] - truth_m[1]);
            let to_target = (est[0] - target_m[0]).hypot(est[1] - target_m[1]);
            first_two += 1;
            first_close += usize::from(to_goal < 0.03);
            first_target += usize::from(to_target < to_goal);
        }
        let b = &mut buckets[edges.windows(2).position(|w| step < w[1]).unwrap()];
        b.n += 1;
        for axis in 0..2 {
            b.sq_err_m2[axis] += (est[axis] - truth_m[axis]).powi(2);
            b.sq_true_m2[axis] += truth_m[axis].powi(2);
            if truth_m[axis].abs() >= 0.03 {
                b.far[axis] += 1;
                if est[axis].signum() == truth_m[axis].signum() && est[axis].abs() >= 0.01 {
                    b.est_sign_ok[axis] += 1;
                }
                // Δx/Δy are in the base frame; the simulator's base sits at
                // the world origin without rotation (sim/scenes).
                let mv = act.action.translation_m[axis];
                if mv.signum() == truth_m[axis].signum() && mv.abs() >= 0.002 {
                    b.move_sign_ok[axis] += 1;
                }
            }
        }
    }
    println!(
        "first frames of two-object tasks: {first_two}; goal-object estimate within 3 cm: {first_close}, nearer the target object: {first_target}"
    );
    kp_first.print("keypoint 0 (goal object), first frames");
    kp_all.print("keypoint 0 (goal object), all frames  ");
    println!(
        "steps   frames | RMS offset x y (cm) | RMS error of the estimate x y (cm) | offset >= 3 cm: frames x y, estimate right sign x y, move right sign x y"
    );
    for (i, b) in buckets.iter().enumerate() {
        if b.n == 0 {
            continue;
        }
        let rms = |v: f64| 100.0 * (v / b.n as f64).sqrt();
        let pct = |k: usize, of: usize| {
            if of == 0 {
                f64::NAN
            } else {
                100.0 * k as f64 / of as f64
            }
        };
        println!(
            "{:>2}-{:<3} {:6} | {:5.1} {:5.1} | {:5.1} {:5.1} | {:5} {:5}, {:4.0}% {:4.0}%, {:4.0}% {:4.0}%",
            edges[i],
            edges[i + 1] - 1,
            b.n,
            rms(b.sq_true_m2[0]),
            rms(b.sq_true_m2[1]),
            rms(b.sq_err_m2[0]),
            rms(b.sq_err_m2[1]),
            b.far[0],
            b.far[1],
            pct(b.est_sign_ok[0], b.far[0]),
            pct(b.est_sign_ok[1], b.far[1]),
            pct(b.move_sign_ok[0], b.far[0]),
            pct(b.move_sign_ok[1], b.far[1]),
        );
    }
}

//! Inverse kinematics: round trips through FK on both bundled arms, limits
//! are never left, position-only mode, bad input.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use proptest::prelude::*;
use vla_kinematics::controller::{condition_number, DEFAULT_HARD_STOP_SINGULARITY_THRESHOLD};
use vla_kinematics::{Chain, IkConfig, IkMode, IkSolver, KinError};

/// FK(q) moved by a small delta (≤ 5 mm, ≤ 0.05 rad), solved from q. Near a
/// singularity a small step may have no nearby solution, so q is kept where
/// the controller works (condition number below its hard stop), and a step
/// whose solution would lie past a joint limit is skipped.
fn round_trip(chain: &Chain, u: &[f64], d: [f64; 6]) -> Result<(), TestCaseError> {
    let q = within_limits(chain, u, 0.15);
    let cond = condition_number(&chain.jacobian(&q).unwrap(), false);
    prop_assume!(cond < DEFAULT_HARD_STOP_SINGULARITY_THRESHOLD);
    let start = chain.fk(&q).unwrap();
    let delta = Vector3::new(d[0], d[1], d[2]) * 0.005 / 3f64.sqrt();
    let rot = UnitQuaternion::from_scaled_axis(Vector3::new(d[3], d[4], d[5]) * 0.05 / 3f64.sqrt());
    let target = Isometry3::from_parts(
        Translation3::from(start.translation.vector + delta),
        rot * start.rotation,
    );
    let solver = IkSolver::default();
    let sol = solver.solve(chain, &target, &q).unwrap();
    prop_assert!(chain.within_limits(&sol.joints));
    // Close to a singularity (but below the hard stop) a 5 mm step can need
    // more joint travel than q's 0.15 rad margin: the solver then stops on
    // a limit, which is the limits doing their job, not a solver failure.
    let on_limit = chain
        .limits()
        .iter()
        .zip(&sol.joints)
        .any(|(l, &v)| (v - l.lower_rad).abs() < 1e-9 || (v - l.upper_rad).abs() < 1e-9);
    prop_assume!(sol.converged || !on_limit);
    prop_assert!(sol.converged, "not converged from {q:?}: {sol:?}");
    let reached = chain.fk(&sol.joints).unwrap();
    let dp = (reached.translation.vector - target.translation.vector).norm();
    prop_assert!(dp <= 1e-6, "position error {dp}");
    prop_assert!(angle_between(&reached, &target) <= 1e-5);
    prop_assert!((dp - sol.position_error_m).abs() < 1e-12);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn panda_small_steps_round_trip(
        u in prop::collection::vec(0.0..1.0f64, 7),
        d in prop::array::uniform6(-1.0..1.0f64),
    ) {
        round_trip(&panda(), &u, d)?;
    }

    #[test]
    fn ur5e_small_steps_round_trip(
        u in prop::collection::vec(0.0..1.0f64, 6),
        d in prop::array::uniform6(-1.0..1.0f64),
    ) {
        round_trip(&ur5e(), &u, d)?;
    }

    #[test]
    fn far_targets_never_leave_the_limits(
        u in prop::collection::vec(0.0..1.0f64, 7),
        p in prop::array::uniform3(-1.5..1.5f64),
    ) {
        let chain = panda();
        let seed = within_limits(&chain, &u, 0.0);
        let target = Isometry3::translation(p[0], p[1], p[2]);
        let sol = IkSolver::default().solve(&chain, &target, &seed).unwrap();
        prop_assert!(chain.within_limits(&sol.joints));
        let reached = chain.fk(&sol.joints).unwrap();
        let dp = (reached.translation.vector - target.translation.vector).norm();
        prop_assert!((dp - sol.position_error_m).abs() < 1e-12);
        prop_assert_eq!(sol.converged, dp <= 1e-6 && sol.rotation_error_rad <= 1e-5);
    }
}

#[test]
fn unreachable_target_reports_failure() {
    let chain = panda();
    let target = Isometry3::translation(3.0, 0.0, 0.5);
    let sol = IkSolver::default()
        .solve(&chain, &target, &chain.mid_positions())
        .unwrap();
    assert!(!sol.converged);
    assert!(sol.position_error_m > 1.5);
    assert!(chain.within_limits(&sol.joints));
}

#[test]
fn seed_outside_limits_is_clamped() {
    let chain = panda();
    let target = chain.fk(&chain.mid_positions()).unwrap();
    let seed = [5.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    let sol = IkSolver::default().solve(&chain, &target, &seed).unwrap();
    assert!(chain.within_limits(&sol.joints));
}

/// A 3-DoF arm (yaw, pitch, pitch) that can only place its tip.
const ARM_3R: &str = r#"<robot name="arm3">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="l3"/><link name="tip"/>
  <joint name="yaw" type="revolute"><parent link="base"/><child link="l1"/><origin xyz="0 0 0.3"/>
    <axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="shoulder" type="revolute"><parent link="l1"/><child link="l2"/>
    <axis xyz="0 1 0"/><limit lower="-2" upper="2" effort="1" velocity="1"/></joint>
  <joint name="elbow" type="revolute"><parent link="l2"/><child link="l3"/><origin xyz="0 0 0.4"/>
    <axis xyz="0 1 0"/><limit lower="-2.5" upper="2.5" effort="1" velocity="1"/></joint>
  <joint name="tool" type="fixed"><parent link="l3"/><child link="tip"/><origin xyz="0 0 0.35"/></joint>
</robot>"#;

#[test]
fn short_arm_uses_position_only_mode() {
    let chain = Chain::from_urdf_str(ARM_3R, None, None).unwrap();
    let solver = IkSolver::default();
    assert!(solver.position_only(&chain));
    let q = [0.4, 0.5, 0.9];
    let mut target = chain.fk(&q).unwrap();
    target.translation.vector += Vector3::new(0.004, -0.003, 0.002);
    // An orientation the arm cannot take: ignored in position-only mode.
    target.rotation = UnitQuaternion::from_euler_angles(1.0, 0.0, 0.0);
    let sol = solver.solve(&chain, &target, &q).unwrap();
    assert!(sol.converged, "{sol:?}");
    assert!(sol.position_error_m <= 1e-6);
    assert!(sol.rotation_error_rad > 0.5);
    // Forcing full mode, the same target cannot converge.
    let full = IkSolver::new(IkConfig {
        mode: IkMode::Full,
        ..IkConfig::default()
    })
    .unwrap();
    assert!(!full.solve(&chain, &target, &q).unwrap().converged);
}

#[test]
fn nullspace_term_keeps_redundant_arm_nearer_mid_range() {
    // Follow the same small-step path with and without the null-space pull,
    // starting with joint 1 far from mid-range.
    let chain = panda();
    let mut start = chain.mid_positions();
    start[0] = 2.2;
    start[3] = -2.0;
    let path_start = chain.fk(&start).unwrap();
    let distance = |q: &[f64]| {
        let mid = chain.mid_positions();
        let l = chain.limits();
        (0..7)
            .map(|i| ((q[i] - mid[i]) / (l[i].upper_rad - l[i].lower_rad)).powi(2))
            .sum::<f64>()
    };
    let follow = |gain: f64| {
        let solver = IkSolver::new(IkConfig {
            nullspace_gain: gain,
            ..IkConfig::default()
        })
        .unwrap();
        let mut q = start.clone();
        for k in 0..60 {
            let t = f64::from(k) * 0.1;
            let mut target = path_start;
            target.translation.vector +=
                Vector3::new(0.05 * t.sin(), 0.05 * (1.0 - t.cos()), -0.03 * t.sin());
            let sol = solver.solve(&chain, &target, &q).unwrap();
            assert!(sol.converged, "gain {gain} step {k}: {sol:?}");
            q = sol.joints;
        }
        q
    };
    let (with, without) = (follow(0.5), follow(0.0));
    assert!(
        distance(&with) < 0.8 * distance(&without),
        "{} vs {}",
        distance(&with),
        distance(&without)
    );
}

#[test]
fn bad_input_is_an_error() {
    let chain = panda();
    let solver = IkSolver::default();
    let target = chain.fk(&chain.mid_positions()).unwrap();
    assert!(matches!(
        solver.solve(&chain, &target, &[0.0; 3]),
        Err(KinError::DofMismatch { .. })
    ));
    let mut nan_target = target;
    nan_target.translation.vector.x = f64::NAN;
    assert!(matches!(
        solver.solve(&chain, &nan_target, &chain.mid_positions()),
        Err(KinError::NonFinite { .. })
    ));
    assert!(IkSolver::new(IkConfig {
        damping: -1.0,
        ..IkConfig::default()
    })
    .is_err());
}

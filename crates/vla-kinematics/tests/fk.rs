//! Forward kinematics and the Jacobian: hand-computed chains, the bundled
//! arms' known poses, `k` as a reference, finite differences; URDF loading
//! rules and errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::f64::consts::{FRAC_PI_2, PI};

use common::*;
use nalgebra::{Isometry3, Matrix6xX, Vector3};
use proptest::prelude::*;
use vla_kinematics::{Chain, Geometry, KinError, RobotModel};

/// A 2-link planar arm in the x-y plane: links of 0.5 m and 0.3 m, joints about z.
const PLANAR_2R: &str = r#"<robot name="planar">
  <link name="base"/><link name="l1"/><link name="l2"/><link name="tip"/>
  <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/>
    <axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="j2" type="revolute"><parent link="l1"/><child link="l2"/>
    <origin xyz="0.5 0 0"/><axis xyz="0 0 1"/><limit lower="-3" upper="3" effort="1" velocity="1"/></joint>
  <joint name="tool" type="fixed"><parent link="l2"/><child link="tip"/><origin xyz="0.3 0 0"/></joint>
</robot>"#;

#[test]
fn planar_two_link_matches_hand_computation() {
    let chain = Chain::from_urdf_str(PLANAR_2R, None, None).unwrap();
    assert_eq!(chain.dof(), 2);
    assert_eq!(chain.tip_link(), "tip");
    for (q1, q2) in [(0.0, 0.0), (FRAC_PI_2, 0.0), (0.3, -1.1), (-2.5, 2.9)] {
        let pose = chain.fk(&[q1, q2]).unwrap();
        let x = 0.5 * f64::cos(q1) + 0.3 * f64::cos(q1 + q2);
        let y = 0.5 * f64::sin(q1) + 0.3 * f64::sin(q1 + q2);
        assert!((pose.translation.vector - Vector3::new(x, y, 0.0)).norm() < 1e-12);
        let yaw = pose.rotation.euler_angles().2;
        let expected = (q1 + q2 + PI).rem_euclid(2.0 * PI) - PI;
        assert!((yaw - expected).abs() < 1e-12, "yaw {yaw} vs {expected}");
        // Jacobian by hand: d(x,y)/dq and ωz = 1 for both joints.
        let jac = chain.jacobian(&[q1, q2]).unwrap();
        let (s1, c1, s12, c12) = (q1.sin(), q1.cos(), (q1 + q2).sin(), (q1 + q2).cos());
        let expected_cols = [
            [
                -0.5 * s1 - 0.3 * s12,
                0.5 * c1 + 0.3 * c12,
                0.0,
                0.0,
                0.0,
                1.0,
            ],
            [-0.3 * s12, 0.3 * c12, 0.0, 0.0, 0.0, 1.0],
        ];
        for (c, col) in expected_cols.iter().enumerate() {
            for (r, v) in col.iter().enumerate() {
                assert!((jac[(r, c)] - v).abs() < 1e-12, "J[{r},{c}]");
            }
        }
    }
}

/// Rotation about x, then a prismatic joint along its y axis, then a tool offset.
const RP_CHAIN: &str = r#"<robot name="rp">
  <link name="base"/><link name="a"/><link name="b"/><link name="tip"/>
  <joint name="roll" type="continuous"><parent link="base"/><child link="a"/>
    <origin xyz="0 0 1" rpy="0 0 0"/><axis xyz="1 0 0"/></joint>
  <joint name="slide" type="prismatic"><parent link="a"/><child link="b"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="0.5" effort="10" velocity="0.1"/></joint>
  <joint name="tool" type="fixed"><parent link="b"/><child link="tip"/><origin xyz="0 0 0.2"/></joint>
</robot>"#;

#[test]
fn revolute_prismatic_chain_matches_hand_computation() {
    let chain = Chain::from_urdf_str(RP_CHAIN, None, None).unwrap();
    assert_eq!(chain.joint_names(), ["roll", "slide"]);
    let roll = chain.limits()[0];
    assert!(roll.lower_rad == f64::NEG_INFINITY && roll.upper_rad == f64::INFINITY);
    assert_eq!(chain.limits()[1].velocity_rad_s, 0.1);
    let (a, d) = (0.7, 0.3);
    let p = chain.fk(&[a, d]).unwrap().translation.vector;
    // Point (0, d, 0.2) rotated by a about x, raised by 1.
    let expected = Vector3::new(
        0.0,
        d * a.cos() - 0.2 * a.sin(),
        1.0 + d * a.sin() + 0.2 * a.cos(),
    );
    assert!((p - expected).norm() < 1e-12);
}

#[test]
fn panda_zero_pose_matches_franka_figures() {
    let model = RobotModel::from_urdf_file(&urdf_path("panda.urdf")).unwrap();
    let chain = panda();
    assert_eq!(chain.tip_link(), "panda_hand_tcp");
    assert_eq!(chain.base_link(), "panda_link0");
    assert_eq!(chain.dof(), 7);
    let names: Vec<String> = (1..=7).map(|i| format!("panda_joint{i}")).collect();
    assert_eq!(chain.joint_names(), names.as_slice());
    let q0 = [0.0; 7];
    let tcp = chain.fk(&q0).unwrap();
    assert!((tcp.translation.vector - Vector3::new(0.088, 0.0, 0.8226)).norm() < 1e-12);
    // Pointing down: the TCP's z axis is the base's -z.
    assert!((tcp.rotation * Vector3::z() + Vector3::z()).norm() < 1e-12);
    let flange = Chain::from_model(&model, None, Some("panda_link8")).unwrap();
    let p = flange.fk(&q0).unwrap().translation.vector;
    assert!((p - Vector3::new(0.088, 0.0, 0.926)).norm() < 1e-12);
    let l = chain.limits();
    assert_eq!((l[3].lower_rad, l[3].upper_rad), (-3.0718, -0.0698));
    assert_eq!((l[0].velocity_rad_s, l[6].velocity_rad_s), (2.175, 2.61));
    assert_eq!((l[0].effort, l[6].effort), (87.0, 12.0));
}

#[test]
fn ur5e_zero_pose_matches_dh_figures() {
    let chain = ur5e();
    assert_eq!(chain.tip_link(), "tool0");
    assert_eq!(chain.dof(), 6);
    let p = chain.fk(&[0.0; 6]).unwrap().translation.vector;
    // DH base: (a2 + a3, -(d4 + d6), d1 - d5); base_link is rotated by pi about z.
    let expected = Vector3::new(0.425 + 0.3922, 0.1333 + 0.0996, 0.1625 - 0.0997);
    assert!((p - expected).norm() < 1e-12, "{p}");
}

fn check_against_k(chain: &Chain, file: &str, tip: &str, u: &[f64]) {
    let reference = k_chain(file, tip);
    let q = within_limits(chain, u, 0.0);
    let ours = chain.fk(&q).unwrap();
    let theirs = k_fk(&reference, &q);
    let dp = (ours.translation.vector - theirs.translation.vector).norm();
    assert!(dp < 1e-9, "position differs by {dp} m at {q:?}");
    assert!(angle_between(&ours, &theirs) < 1e-9);
}

/// Jacobian against central finite differences of FK.
fn check_jacobian(chain: &Chain, q: &[f64]) {
    let jac = chain.jacobian(q).unwrap();
    let h = 1e-6;
    for c in 0..chain.dof() {
        let (mut qp, mut qm) = (q.to_vec(), q.to_vec());
        qp[c] += h;
        qm[c] -= h;
        let (tp, tm) = (chain.fk(&qp).unwrap(), chain.fk(&qm).unwrap());
        let v = (tp.translation.vector - tm.translation.vector) / (2.0 * h);
        let w = (tp.rotation * tm.rotation.inverse()).scaled_axis() / (2.0 * h);
        for r in 0..3 {
            assert!(
                (jac[(r, c)] - v[r]).abs() < 1e-7,
                "linear J[{r},{c}] {} vs {}",
                jac[(r, c)],
                v[r]
            );
            assert!((jac[(r + 3, c)] - w[r]).abs() < 1e-7, "angular J[{r},{c}]");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn panda_fk_matches_k(u in prop::collection::vec(0.0..1.0f64, 7)) {
        check_against_k(&panda(), "panda.urdf", "panda_hand_tcp", &u);
    }

    #[test]
    fn ur5e_fk_matches_k(u in prop::collection::vec(0.0..1.0f64, 6)) {
        check_against_k(&ur5e(), "ur5e.urdf", "tool0", &u);
    }

    #[test]
    fn jacobians_match_finite_differences(u in prop::collection::vec(0.0..1.0f64, 7)) {
        let panda = panda();
        check_jacobian(&panda, &within_limits(&panda, &u, 0.0));
        let ur = ur5e();
        check_jacobian(&ur, &within_limits(&ur, &u[..6], 0.0));
    }
}

#[test]
fn fast_path_matches_allocating_path() {
    let chain = panda();
    let q = within_limits(&chain, &[0.1, 0.9, 0.4, 0.3, 0.7, 0.2, 0.6], 0.0);
    let mut jac = Matrix6xX::zeros(0);
    let pose = chain.fk_with_jacobian(&q, &mut jac).unwrap();
    assert_eq!(pose, chain.fk(&q).unwrap());
    assert_eq!(jac, chain.jacobian(&q).unwrap());
}

#[test]
fn finger_chain_mimic_and_link_poses() {
    let model = RobotModel::from_urdf_file(&urdf_path("panda.urdf")).unwrap();
    // A chain that ends at the right finger is driven by finger 1 (the leader).
    let right = Chain::from_model(&model, Some("panda_hand"), Some("panda_rightfinger")).unwrap();
    assert_eq!(right.joint_names(), ["panda_finger_joint1"]);
    let p = right.fk(&[0.03]).unwrap().translation.vector;
    assert!((p - Vector3::new(0.0, -0.03, 0.0584)).norm() < 1e-12);
    check_jacobian(&right, &[0.02]);

    // Every link gets a pose; fingers open symmetrically; the TCP matches the chain.
    let chain = panda();
    let q = [0.3, -0.4, 0.2, -2.0, 0.1, 1.8, 0.7];
    let mut positions: HashMap<String, f64> = chain.joint_names().iter().cloned().zip(q).collect();
    positions.insert("panda_finger_joint1".into(), 0.025);
    let poses: HashMap<String, Isometry3<f64>> =
        model.link_poses(&positions).unwrap().into_iter().collect();
    assert_eq!(poses.len(), model.link_names().len());
    assert_eq!(model.link_names()[0], "panda_link0");
    let tcp = chain.fk(&q).unwrap();
    assert!((poses["panda_hand_tcp"].translation.vector - tcp.translation.vector).norm() < 1e-12);
    let hand = poses["panda_hand"];
    let left = hand.inverse() * poses["panda_leftfinger"];
    let right = hand.inverse() * poses["panda_rightfinger"];
    assert!((left.translation.vector - Vector3::new(0.0, 0.025, 0.0584)).norm() < 1e-12);
    assert!((right.translation.vector - Vector3::new(0.0, -0.025, 0.0584)).norm() < 1e-12);
    // Slice form gives the same, and a mimic joint cannot be set directly.
    let from_slice = model.link_poses_from(chain.joint_names(), &q).unwrap();
    assert_eq!(from_slice.len(), poses.len());
    positions.insert("panda_finger_joint2".into(), 0.01);
    assert!(matches!(
        model.link_poses(&positions),
        Err(KinError::InvalidJoint { .. })
    ));
}

#[test]
fn visuals_are_primitives_with_colours() {
    for file in ["panda.urdf", "ur5e.urdf"] {
        let model = RobotModel::from_urdf_file(&urdf_path(file)).unwrap();
        assert!(
            model.skipped_geometry().is_empty(),
            "{file}: {:?}",
            model.skipped_geometry()
        );
        let drawn = model
            .link_names()
            .iter()
            .filter(|l| !model.link_visuals(l).is_empty())
            .count();
        assert!(drawn >= 7, "{file}: only {drawn} links have visuals");
    }
    let model = RobotModel::from_urdf_file(&urdf_path("panda.urdf")).unwrap();
    let finger = model.link_visuals("panda_leftfinger");
    assert_eq!(finger.len(), 1);
    assert_eq!(
        finger[0].geometry,
        Geometry::Box {
            size_m: [0.02, 0.018, 0.054]
        }
    );
    assert_eq!(finger[0].rgba, [0.12, 0.12, 0.14, 1.0]);
    assert!(model.link_visuals("no_such_link").is_empty());
    assert!(!model.link_collisions("panda_link1").is_empty());
}

#[test]
fn base_and_tip_can_be_chosen() {
    let model = RobotModel::from_urdf_file(&urdf_path("panda.urdf")).unwrap();
    let full = panda();
    let upper = Chain::from_model(&model, None, Some("panda_link4")).unwrap();
    let lower = Chain::from_model(&model, Some("panda_link4"), None).unwrap();
    assert_eq!(upper.dof(), 4);
    assert_eq!(lower.dof(), 3);
    assert_eq!(lower.tip_link(), "panda_hand_tcp");
    let q = [0.3, -0.4, 0.2, -2.0, 0.1, 1.8, 0.7];
    let composed = upper.fk(&q[..4]).unwrap() * lower.fk(&q[4..]).unwrap();
    assert!((composed.translation.vector - full.fk(&q).unwrap().translation.vector).norm() < 1e-12);
}

#[test]
fn loading_errors_are_specific() {
    let err = |xml: &str, base: Option<&str>, tip: Option<&str>| {
        Chain::from_urdf_str(xml, base, tip).unwrap_err()
    };
    assert!(matches!(
        err("<robot name='x'><link name='a'>", None, None),
        KinError::Urdf { .. }
    ));
    assert!(matches!(
        err("not xml at all", None, None),
        KinError::Urdf { .. }
    ));
    assert!(matches!(
        err(PLANAR_2R, None, Some("nope")),
        KinError::MissingLink { .. }
    ));
    assert!(matches!(
        err(PLANAR_2R, Some("l2"), Some("l1")),
        KinError::TipNotBelowBase { .. }
    ));
    assert!(matches!(
        err(PLANAR_2R, Some("tip"), Some("tip")),
        KinError::TipNotBelowBase { .. }
    ));
    let msg = err(PLANAR_2R, None, Some("nope")).to_string();
    assert!(msg.contains("nope") && msg.contains("l1"), "{msg}");

    let two_parents = PLANAR_2R.replace(
        "</robot>",
        r#"<joint name="extra" type="fixed"><parent link="base"/><child link="l2"/></joint></robot>"#,
    );
    assert!(matches!(
        err(&two_parents, None, None),
        KinError::NotATree(_)
    ));
    let two_roots = PLANAR_2R.replace("</robot>", r#"<link name="floating_part"/></robot>"#);
    assert!(matches!(err(&two_roots, None, None), KinError::NotATree(_)));
    let missing_child = PLANAR_2R.replace(r#"<child link="tip"/>"#, r#"<child link="ghost"/>"#);
    assert!(matches!(
        err(&missing_child, None, None),
        KinError::MissingLink { .. }
    ));
    let bad_mimic = PLANAR_2R.replace(
        r#"<origin xyz="0.5 0 0"/>"#,
        r#"<origin xyz="0.5 0 0"/><mimic joint="ghost"/>"#,
    );
    assert!(matches!(
        err(&bad_mimic, None, None),
        KinError::InvalidJoint { .. }
    ));
    let bad_limits = PLANAR_2R.replacen(r#"lower="-3" upper="3""#, r#"lower="3" upper="-3""#, 1);
    assert!(matches!(
        err(&bad_limits, None, None),
        KinError::InvalidJoint { .. }
    ));
    let floating = PLANAR_2R.replacen(r#"type="revolute""#, r#"type="floating""#, 1);
    assert!(matches!(
        err(&floating, None, None),
        KinError::UnsupportedJoint { .. }
    ));
    // Two equally long branches: the default tip is ambiguous.
    let forked = PLANAR_2R.replace(
        "</robot>",
        r#"<link name="other"/><joint name="j3" type="revolute"><parent link="l1"/><child link="other"/>
        <axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint></robot>"#,
    );
    assert!(matches!(
        err(&forked, None, None),
        KinError::AmbiguousTip { .. }
    ));
    assert_eq!(
        Chain::from_urdf_str(&forked, None, Some("other"))
            .unwrap()
            .dof(),
        2
    );
    assert!(matches!(
        Chain::from_urdf_file(std::path::Path::new("/no/such/file.urdf"), None, None),
        Err(KinError::Urdf { .. })
    ));
}

#[test]
fn bad_joint_vectors_are_errors() {
    let chain = panda();
    assert!(matches!(
        chain.fk(&[0.0; 6]),
        Err(KinError::DofMismatch {
            expected: 7,
            actual: 6,
            ..
        })
    ));
    let mut q = [0.0; 7];
    q[2] = f64::NAN;
    assert!(matches!(chain.fk(&q), Err(KinError::NonFinite { .. })));
    assert!(chain.jacobian(&q).is_err());
}

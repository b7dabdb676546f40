//! End-to-end tests of `vla kin fk` / `vla kin ik` on the bundled URDFs,
//! checked against known poses and the kinematics library.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion, Vector3};
use serde_json::Value;
use vla_kinematics::Chain;

fn urdf(file: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../urdf")
    .join(file)
}

fn vla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vla"))
        .args(args)
        .output()
        .unwrap()
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn json_ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn fk_json(file: &str, joints: &[f64], extra: &[&str]) -> Value {
    let path = urdf(file);
    let joints = list(joints);
    let mut args = vec![
        "kin",
        "fk",
        "--urdf",
        path.to_str().unwrap(),
        "--joints",
        &joints,
        "--json",
    ];
    args.extend_from_slice(extra);
    json_ok(&vla(&args))
}

#[test]
fn fk_panda_zero_pose() {
    let out = fk_json("panda.urdf", &[0.0; 7], &[]);
    let names: Vec<&str> = out["joint_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        (1..=7)
            .map(|i| format!("panda_joint{i}"))
            .collect::<Vec<_>>()
    );
    let p = floats(&out["position"]);
    assert!((Vector3::new(p[0], p[1], p[2]) - Vector3::new(0.088, 0.0, 0.8226)).norm() < 1e-12);
    let q = floats(&out["quaternion"]);
    assert_eq!(q.len(), 4);
    let r = UnitQuaternion::from_quaternion(Quaternion::new(q[3], q[0], q[1], q[2]));
    // Pointing down.
    assert!((r * Vector3::z() + Vector3::z()).norm() < 1e-12);
}

#[test]
fn fk_output_is_exactly_the_library_result() {
    let chain = Chain::from_urdf_file(&urdf("panda.urdf"), None, None).unwrap();
    let q = [0.31, -0.52, 0.27, -2.1, 0.19, 1.83, -0.61];
    let out = fk_json("panda.urdf", &q, &[]);
    let expected = chain.fk(&q).unwrap();
    let p = floats(&out["position"]);
    let t = expected.translation.vector;
    // Full precision: the printed numbers round-trip to the same f64.
    assert_eq!(p, vec![t.x, t.y, t.z]);
    let r = expected.rotation;
    assert_eq!(floats(&out["quaternion"]), vec![r.i, r.j, r.k, r.w]);
}

#[test]
fn json_fields_come_in_the_documented_order() {
    let path = urdf("panda.urdf");
    let out = vla(&[
        "kin",
        "fk",
        "--urdf",
        path.to_str().unwrap(),
        "--joints",
        "0,0,0,-1.5,0,1.5,0",
        "--json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let at = |key: &str| text.find(key).unwrap();
    assert!(
        at("joint_names") < at("position") && at("position") < at("quaternion"),
        "{text}"
    );
    let out = vla(&[
        "kin",
        "ik",
        "--urdf",
        path.to_str().unwrap(),
        "--target",
        "0.4,0.1,0.4,1,0,0,0",
        "--json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let at = |key: &str| text.find(key).unwrap();
    assert!(
        at("joints") < at("converged") && at("converged") < at("position_error_m"),
        "{text}"
    );
    assert!(at("position_error_m") < at("rotation_error_rad"), "{text}");
}

#[test]
fn fk_with_base_and_tip() {
    let out = fk_json("ur5e.urdf", &[0.0; 6], &["--tip", "tool0"]);
    let p = floats(&out["position"]);
    assert!((Vector3::new(p[0], p[1], p[2]) - Vector3::new(0.8172, 0.2329, 0.0628)).norm() < 1e-12);
    let sub = fk_json(
        "panda.urdf",
        &[0.0; 3],
        &["--base", "panda_link4", "--tip", "panda_link7"],
    );
    assert_eq!(sub["joint_names"].as_array().unwrap().len(), 3);
}

#[test]
fn fk_readable_output() {
    let path = urdf("panda.urdf");
    let out = vla(&[
        "kin",
        "fk",
        "--urdf",
        path.to_str().unwrap(),
        "--joints",
        "0,0,0,-1.5,0,1.5,0",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("panda_link0 -> panda_hand_tcp"), "{text}");
    assert!(
        text.contains("position") && text.contains("quaternion"),
        "{text}"
    );
}

#[test]
fn wrong_joint_count_and_unknown_link_fail_clearly() {
    let path = urdf("panda.urdf");
    let out = vla(&[
        "kin",
        "fk",
        "--urdf",
        path.to_str().unwrap(),
        "--joints",
        "0,0,0",
        "--json",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected 7") && err.contains("got 3"), "{err}");
    assert!(out.stdout.is_empty());

    let out = vla(&[
        "kin",
        "fk",
        "--urdf",
        path.to_str().unwrap(),
        "--joints",
        "0",
        "--tip",
        "gripper_link",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gripper_link") && err.contains("not in the URDF"),
        "{err}"
    );

    let out = vla(&["kin", "fk", "--urdf", "/no/such.urdf", "--joints", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such.urdf"));

    let out = vla(&[
        "kin",
        "ik",
        "--urdf",
        path.to_str().unwrap(),
        "--target",
        "0.3,0,0.5",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 7 values"));
}

#[test]
fn ik_round_trip_through_fk() {
    let chain = Chain::from_urdf_file(&urdf("panda.urdf"), None, None).unwrap();
    let q = [0.2, -0.4, 0.1, -2.0, 0.05, 1.7, 0.6];
    let pose = chain.fk(&q).unwrap();
    let (t, r) = (pose.translation.vector, pose.rotation);
    let target = [t.x + 0.004, t.y - 0.003, t.z + 0.002, r.i, r.j, r.k, r.w];
    let path = urdf("panda.urdf");
    let (target_s, seed_s) = (list(&target), list(&q));
    let out = json_ok(&vla(&[
        "kin",
        "ik",
        "--urdf",
        path.to_str().unwrap(),
        "--target",
        &target_s,
        "--seed",
        &seed_s,
        "--json",
    ]));
    assert_eq!(out["converged"], Value::Bool(true));
    let joints = floats(&out["joints"]);
    assert!(chain.within_limits(&joints));
    let reached = chain.fk(&joints).unwrap();
    let wanted = Isometry3::from_parts(Translation3::new(target[0], target[1], target[2]), r);
    assert!((reached.translation.vector - wanted.translation.vector).norm() <= 1e-6);
    assert!(reached.rotation.angle_to(&wanted.rotation) <= 1e-5);
    let e = out["position_error_m"].as_f64().unwrap();
    assert!((e - (reached.translation.vector - wanted.translation.vector).norm()).abs() < 1e-15);
    assert!(out["rotation_error_rad"].as_f64().unwrap() <= 1e-5);
}

#[test]
fn ik_from_default_seed_and_unreachable_target() {
    let path = urdf("ur5e.urdf");
    let chain = Chain::from_urdf_file(&path, None, None).unwrap();
    let pose = chain.fk(&[0.3, -1.2, 1.4, -1.6, -1.5, 0.4]).unwrap();
    let (t, r) = (pose.translation.vector, pose.rotation);
    let target_s = list(&[t.x, t.y, t.z, r.i, r.j, r.k, r.w]);
    let out = json_ok(&vla(&[
        "kin",
        "ik",
        "--urdf",
        path.to_str().unwrap(),
        "--target",
        &target_s,
        "--json",
    ]));
    assert_eq!(out["converged"], Value::Bool(true), "{out}");
    let reached = chain.fk(&floats(&out["joints"])).unwrap();
    assert!((reached.translation.vector - t).norm() <= 1e-6);

    let out = json_ok(&vla(&[
        "kin",
        "ik",
        "--urdf",
        path.to_str().unwrap(),
        "--target",
        "3,0,0,0,0,0,1",
        "--json",
    ]));
    assert_eq!(out["converged"], Value::Bool(false));
    assert!(out["position_error_m"].as_f64().unwrap() > 1.0);
    assert!(chain.within_limits(&floats(&out["joints"])));
}

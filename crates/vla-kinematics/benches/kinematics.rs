//! Criterion benchmarks on the Panda (7 DoF): forward kinematics, Jacobian,
//! one warm-started IK solve for a 5 mm / 0.02 rad step, one full controller
//! step; `k` (FK via `set_joint_positions_unchecked` + `end_transform`, its
//! `jacobian`, its `JacobianIkSolver`) as the baseline in the same run.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use k::InverseKinematicsSolver;
use nalgebra::{Isometry3, Matrix6xX, Translation3, UnitQuaternion, Vector3};
use vla_core::Action;
use vla_kinematics::{controller_step, Chain, ControllerConfig, IkConfig, IkSolver};

const READY: [f64; 7] = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785];

fn urdf() -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../urdf/panda.urdf")
}

fn k_arm() -> k::SerialChain<f64> {
    let robot = urdf_rs::read_file(urdf()).unwrap();
    let tree = k::Chain::<f64>::from(&robot);
    k::SerialChain::from_end(tree.find_link("panda_hand_tcp").unwrap())
}

/// Our target pose converted into k's nalgebra version.
fn to_k(pose: &Isometry3<f64>) -> k::nalgebra::Isometry3<f64> {
    let t = pose.translation.vector;
    let r = pose.rotation.coords;
    k::nalgebra::Isometry3::from_parts(
        k::nalgebra::Translation3::new(t.x, t.y, t.z),
        k::nalgebra::UnitQuaternion::new_normalize(k::nalgebra::Quaternion::new(
            r.w, r.x, r.y, r.z,
        )),
    )
}

fn benches(c: &mut Criterion) {
    let chain = Chain::from_urdf_file(&urdf(), None, None).unwrap();
    let arm = k_arm();
    let q = READY;

    let mut g = c.benchmark_group("fk");
    g.bench_function("vla", |b| b.iter(|| chain.fk(black_box(&q)).unwrap()));
    g.bench_function("k", |b| {
        b.iter(|| {
            arm.set_joint_positions_unchecked(black_box(&q));
            arm.end_transform()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("jacobian");
    let mut jac = Matrix6xX::zeros(7);
    g.bench_function("vla", |b| {
        b.iter(|| chain.fk_with_jacobian(black_box(&q), &mut jac).unwrap())
    });
    g.bench_function("k", |b| {
        b.iter(|| {
            arm.set_joint_positions_unchecked(black_box(&q));
            k::jacobian(&arm)
        })
    });
    g.finish();

    // A warm-started step: 5 mm and 0.02 rad away from the ready pose.
    let start = chain.fk(&q).unwrap();
    let target = Isometry3::from_parts(
        Translation3::from(start.translation.vector + Vector3::new(0.003, -0.003, 0.0025)),
        UnitQuaternion::from_euler_angles(0.0, 0.0, 0.02) * start.rotation,
    );
    let k_target = to_k(&target);
    // k's JacobianIkSolver at its default tolerances (1 mm, 0.005 rad) with
    // enough tries to converge; ours at the same tolerances and at its own
    // default (1 µm, 1e-5 rad).
    let k_solver = k::JacobianIkSolver::new(0.001, 0.005, 0.5, 100);
    let loose = IkSolver::new(IkConfig {
        position_tolerance_m: 0.001,
        rotation_tolerance_rad: 0.005,
        ..IkConfig::default()
    })
    .unwrap();
    let tight = IkSolver::default();
    assert!(tight.solve(&chain, &target, &q).unwrap().converged);
    arm.set_joint_positions_unchecked(&q);
    assert!(k_solver.solve(&arm, &k_target).is_ok());
    let mut g = c.benchmark_group("ik_warm_5mm");
    g.bench_function("vla_tol_1um", |b| {
        b.iter(|| {
            tight
                .solve(&chain, black_box(&target), black_box(&q))
                .unwrap()
        })
    });
    g.bench_function("vla_tol_1mm", |b| {
        b.iter(|| {
            loose
                .solve(&chain, black_box(&target), black_box(&q))
                .unwrap()
        })
    });
    g.bench_function("k_tol_1mm", |b| {
        b.iter(|| {
            arm.set_joint_positions_unchecked(black_box(&q));
            k_solver.solve(&arm, black_box(&k_target)).unwrap()
        })
    });
    g.finish();

    let config = ControllerConfig::default_for(&chain);
    let action = Action::new([0.003, -0.003, 0.0025], [0.0, 0.0, 0.02], 0.0, false);
    let mut g = c.benchmark_group("controller_step");
    g.bench_function("vla", |b| {
        b.iter(|| {
            controller_step(
                &chain,
                &config,
                black_box(&q),
                None,
                black_box(&action),
                0.1,
            )
        })
    });
    g.finish();
}

criterion_group!(kinematics, benches);
criterion_main!(kinematics);

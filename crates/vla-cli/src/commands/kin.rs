//! `vla kin fk` and `vla kin ik`: forward and inverse kinematics of a URDF
//! arm, for checking a new arm against another kinematics library. JSON
//! output prints every number with full f64 precision (shortest round-trip
//! form), so results compare to 1e-9 m and better.

use anyhow::{bail, Context, Result};
use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};
use serde::Serialize;
use vla_kinematics::{Chain, IkConfig, IkSolver};

use crate::cli::{ChainArgs, FkArgs, IkArgs, KinCommand};

/// `vla kin fk --json` output; fields print in this order.
#[derive(Serialize)]
struct FkOutput<'a> {
    joint_names: &'a [String],
    position: [f64; 3],
    quaternion: [f64; 4],
}

/// `vla kin ik --json` output; fields print in this order.
#[derive(Serialize)]
struct IkOutput<'a> {
    joints: &'a [f64],
    converged: bool,
    position_error_m: f64,
    rotation_error_rad: f64,
}

/// IK iterations for the command line, where the seed may be far from the target.
const CLI_IK_ITERATIONS: usize = 1000;

/// Runs a `vla kin` subcommand.
pub fn run(command: KinCommand) -> Result<()> {
    match command {
        KinCommand::Fk(args) => fk(&args),
        KinCommand::Ik(args) => ik(&args),
    }
}

fn load(args: &ChainArgs) -> Result<Chain> {
    Chain::from_urdf_file(&args.urdf, args.base.as_deref(), args.tip.as_deref())
        .with_context(|| format!("loading the chain from {}", args.urdf.display()))
}

/// Errors unless `values` has one entry per joint of `chain`.
fn check_joint_count(chain: &Chain, values: &[f64], what: &str) -> Result<()> {
    if values.len() != chain.dof() {
        bail!(
            "{what}: expected {} values, one per joint ({}), got {}",
            chain.dof(),
            chain.joint_names().join(", "),
            values.len()
        );
    }
    Ok(())
}

fn warn_outside_limits(chain: &Chain, q: &[f64]) {
    for ((name, limits), v) in chain.joint_names().iter().zip(chain.limits()).zip(q) {
        if !limits.contains(*v) {
            eprintln!(
                "warning: joint {name} = {v} is outside its limits [{}, {}]",
                limits.lower_rad, limits.upper_rad
            );
        }
    }
}

fn fk(args: &FkArgs) -> Result<()> {
    let chain = load(&args.chain)?;
    check_joint_count(&chain, &args.joints, "--joints")?;
    warn_outside_limits(&chain, &args.joints);
    let base_from_tip = chain.fk(&args.joints)?;
    let p = base_from_tip.translation.vector;
    let r = base_from_tip.rotation;
    if args.chain.json {
        let out = FkOutput {
            joint_names: chain.joint_names(),
            position: [p.x, p.y, p.z],
            quaternion: [r.i, r.j, r.k, r.w],
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let (roll, pitch, yaw) = r.euler_angles();
        println!(
            "{} -> {} ({} joints)",
            chain.base_link(),
            chain.tip_link(),
            chain.dof()
        );
        for (name, v) in chain.joint_names().iter().zip(&args.joints) {
            println!("  {name:<24} {v:?}");
        }
        println!(
            "position (m, base frame): x {:?} y {:?} z {:?}",
            p.x, p.y, p.z
        );
        println!(
            "quaternion (x y z w):     {:?} {:?} {:?} {:?}",
            r.i, r.j, r.k, r.w
        );
        println!("roll pitch yaw (rad):     {roll:?} {pitch:?} {yaw:?}");
    }
    Ok(())
}

fn ik(args: &IkArgs) -> Result<()> {
    let chain = load(&args.chain)?;
    let &[x, y, z, qx, qy, qz, qw] = args.target.as_slice() else {
        bail!(
            "--target: expected 7 values x,y,z,qx,qy,qz,qw, got {}",
            args.target.len()
        );
    };
    if args.target.iter().any(|v| !v.is_finite()) {
        bail!("--target: every value must be finite");
    }
    let quaternion = Quaternion::new(qw, qx, qy, qz);
    if quaternion.norm() < 1e-9 {
        bail!("--target: the quaternion has zero length");
    }
    let base_from_target = Isometry3::from_parts(
        Translation3::new(x, y, z),
        UnitQuaternion::from_quaternion(quaternion),
    );
    let seed = match &args.seed {
        Some(seed) => {
            check_joint_count(&chain, seed, "--seed")?;
            seed.clone()
        }
        None => chain.mid_positions(),
    };
    let solver = IkSolver::new(IkConfig {
        max_iterations: CLI_IK_ITERATIONS,
        ..IkConfig::default()
    })?;
    let solution = solver.solve(&chain, &base_from_target, &seed)?;
    if args.chain.json {
        let out = IkOutput {
            joints: &solution.joints,
            converged: solution.converged,
            position_error_m: solution.position_error_m,
            rotation_error_rad: solution.rotation_error_rad,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let mode = if solver.position_only(&chain) {
            " (position only)"
        } else {
            ""
        };
        println!(
            "{} -> {}{mode}: {} after {} iterations",
            chain.base_link(),
            chain.tip_link(),
            if solution.converged {
                "converged"
            } else {
                "did NOT converge"
            },
            solution.iterations
        );
        for (name, v) in chain.joint_names().iter().zip(&solution.joints) {
            println!("  {name:<24} {v:?}");
        }
        println!("position error (m):   {:?}", solution.position_error_m);
        println!("rotation error (rad): {:?}", solution.rotation_error_rad);
    }
    Ok(())
}

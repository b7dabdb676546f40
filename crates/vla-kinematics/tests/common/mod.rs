//! Helpers shared by the integration tests: the bundled URDFs, random joint
//! vectors, and `k` as an independent reference.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use nalgebra::Isometry3;
use vla_kinematics::Chain;

/// Path of a URDF in the repository's `urdf/` folder.
pub fn urdf_path(file: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../urdf")
    .join(file)
}

pub fn panda() -> Chain {
    Chain::from_urdf_file(&urdf_path("panda.urdf"), None, None).unwrap()
}

pub fn ur5e() -> Chain {
    Chain::from_urdf_file(&urdf_path("ur5e.urdf"), None, None).unwrap()
}

/// `k`'s serial chain from the URDF root to `tip`.
pub fn k_chain(file: &str, tip: &str) -> k::SerialChain<f64> {
    let robot = urdf_rs::read_file(urdf_path(file)).unwrap();
    let tree = k::Chain::<f64>::from(&robot);
    let end = tree.find_link(tip).unwrap();
    k::SerialChain::from_end(end)
}

/// `k`'s forward kinematics, converted to our nalgebra version via arrays.
pub fn k_fk(chain: &k::SerialChain<f64>, q: &[f64]) -> Isometry3<f64> {
    chain.set_joint_positions_unchecked(q);
    let t = chain.end_transform();
    let v = t.translation.vector;
    let r = t.rotation.coords;
    Isometry3::from_parts(
        nalgebra::Translation3::new(v[0], v[1], v[2]),
        nalgebra::UnitQuaternion::new_normalize(nalgebra::Quaternion::new(r[3], r[0], r[1], r[2])),
    )
}

/// Angle between two rotations, radians.
pub fn angle_between(a: &Isometry3<f64>, b: &Isometry3<f64>) -> f64 {
    a.rotation.angle_to(&b.rotation)
}

/// Joint vector at fractions `u` (0..1) of each joint's range, `margin` in from each limit.
pub fn within_limits(chain: &Chain, u: &[f64], margin: f64) -> Vec<f64> {
    chain
        .limits()
        .iter()
        .zip(u)
        .map(|(l, &f)| {
            let (lo, hi) = if l.is_bounded() {
                (l.lower_rad + margin, l.upper_rad - margin)
            } else {
                (-std::f64::consts::PI, std::f64::consts::PI)
            };
            lo + f * (hi - lo)
        })
        .collect()
}

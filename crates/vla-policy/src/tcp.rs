//! The end-effector position as a policy input (`config.json` `tcp`).
//!
//! Why: the camera looks along −x from 41°, so in the image the hand's
//! offset along x and its height share one axis, and the policy learnt to
//! correct y but hardly ever x (`policies/default/README.md`). The arm knows
//! where its tool centre point is: forward kinematics of the measured
//! joints. With `base_from_tcp`'s translation as one more encoder token the
//! network only has to find the object in the image (on the table plane, a
//! fixed map from pixels) and compare.
//!
//! The checkpoint carries its own copy of the URDF (`robot.urdf`) and the
//! base and tip links, so a policy folder stays self-contained and the
//! same chain computes the input in training, in the simulator and next to
//! a real arm. Values are normalised with the training data's mean and
//! standard deviation, like the joint state.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vla_core::JointState;
use vla_kinematics::Chain;

use crate::error::{Result, VlaPolicyError};

/// Number of values of the input: x, y, z of `base_from_tcp`, metres.
pub const TCP_DIM: usize = 3;

/// File name of the URDF copy inside a policy folder.
pub const TCP_URDF_FILE: &str = "robot.urdf";

/// Smallest standard deviation used, metres.
const MIN_STD_M: f64 = 1e-3;

/// Where the TCP input comes from and how it is normalised (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpSpec {
    /// The URDF, relative to the policy folder.
    pub urdf: String,
    /// The chain's base link (the frame the position is expressed in).
    pub base_link: String,
    /// The chain's tip link (the tool centre point).
    pub tip_link: String,
    /// Mean of x, y, z in the training data, metres.
    pub mean_m: [f64; TCP_DIM],
    /// Standard deviation of x, y, z in the training data, metres, > 0.
    pub std_m: [f64; TCP_DIM],
}

impl TcpSpec {
    /// Checks the statistics.
    pub fn validate(&self) -> Result<()> {
        if self.mean_m.iter().any(|m| !m.is_finite())
            || self.std_m.iter().any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err(VlaPolicyError::Config(
                "tcp mean_m/std_m must be finite and std_m positive".into(),
            ));
        }
        if self.urdf.is_empty() || Path::new(&self.urdf).is_absolute() {
            return Err(VlaPolicyError::Config(format!(
                "tcp urdf {:?} must be a file name relative to the policy folder",
                self.urdf
            )));
        }
        Ok(())
    }
}

/// A loaded TCP input: the chain and its normalisation.
#[derive(Debug, Clone)]
pub struct TcpInput {
    chain: Chain,
    spec: TcpSpec,
}

impl TcpInput {
    /// Loads the chain `spec.base_link → spec.tip_link` from `dir/spec.urdf`.
    pub fn load(dir: &Path, spec: &TcpSpec) -> Result<Self> {
        spec.validate()?;
        let path = dir.join(&spec.urdf);
        let chain = load_chain(&path, &spec.base_link, &spec.tip_link)?;
        Ok(Self {
            chain,
            spec: spec.clone(),
        })
    }

    /// The spec it was loaded from.
    pub fn spec(&self) -> &TcpSpec {
        &self.spec
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Normalises a raw position (metres).
    pub fn normalise(&self, raw_m: &[f64; TCP_DIM]) -> [f32; TCP_DIM] {
        let mut v = [0f32; TCP_DIM];
        for (k, out) in v.iter_mut().enumerate() {
            *out = ((raw_m[k] - self.spec.mean_m[k]) / self.spec.std_m[k]) as f32;
        }
        v
    }

    /// The normalised input for a measured joint state. A joint of the chain
    /// missing from the state, or a non-finite position, is an error.
    pub fn vector(&self, joints: &JointState) -> Result<[f32; TCP_DIM]> {
        Ok(self.normalise(&base_from_tcp_m(&self.chain, joints)?))
    }
}

/// Loads a serial chain for the TCP input, with errors naming the file.
pub fn load_chain(urdf: &Path, base_link: &str, tip_link: &str) -> Result<Chain> {
    Chain::from_urdf_file(urdf, Some(base_link), Some(tip_link)).map_err(|e| {
        VlaPolicyError::Config(format!(
            "TCP input: chain {base_link} → {tip_link} of {}: {e}",
            urdf.display()
        ))
    })
}

/// Translation of `base_from_tcp` for a joint state, metres.
pub fn base_from_tcp_m(chain: &Chain, joints: &JointState) -> Result<[f64; TCP_DIM]> {
    let q = chain
        .positions_from_state(joints)
        .map_err(|e| VlaPolicyError::Data(format!("TCP input: {e}")))?;
    if q.iter().any(|v| !v.is_finite()) {
        return Err(VlaPolicyError::Data(
            "TCP input: joint state is not finite".into(),
        ));
    }
    let base_from_tcp = chain
        .fk(&q)
        .map_err(|e| VlaPolicyError::Data(format!("TCP input: {e}")))?;
    let t = base_from_tcp.translation.vector;
    Ok([t.x, t.y, t.z])
}

/// Statistics of `rows` of raw positions (metres) for a new spec.
pub fn spec_from_rows(
    urdf: String,
    base_link: String,
    tip_link: String,
    rows: &[[f64; TCP_DIM]],
) -> Result<TcpSpec> {
    if rows.is_empty() {
        return Err(VlaPolicyError::Data(
            "TCP input: no joint states to compute its statistics from".into(),
        ));
    }
    let n = rows.len() as f64;
    let mut mean_m = [0f64; TCP_DIM];
    for r in rows {
        for k in 0..TCP_DIM {
            mean_m[k] += r[k] / n;
        }
    }
    let mut std_m = [0f64; TCP_DIM];
    for r in rows {
        for k in 0..TCP_DIM {
            std_m[k] += (r[k] - mean_m[k]).powi(2) / n;
        }
    }
    for s in &mut std_m {
        *s = s.sqrt().max(MIN_STD_M);
    }
    let spec = TcpSpec {
        urdf,
        base_link,
        tip_link,
        mean_m,
        std_m,
    };
    spec.validate()?;
    Ok(spec)
}

/// Where `vla train --tcp-urdf` takes the chain from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSource {
    /// The URDF file (copied into the policy folder as [`TCP_URDF_FILE`]).
    pub urdf: PathBuf,
    /// Base link.
    pub base_link: String,
    /// Tip link (tool centre point).
    pub tip_link: String,
}

/// Raw positions (metres) for rows of joint values named `names` (a data
/// set's joint states, stored as `f32`).
pub fn rows_from_states<'a>(
    chain: &Chain,
    names: &[String],
    states: impl Iterator<Item = &'a [f32]>,
) -> Result<Vec<[f64; TCP_DIM]>> {
    if names.is_empty() {
        return Err(VlaPolicyError::Data(
            "TCP input: the data set has no joint states".into(),
        ));
    }
    states
        .map(|row| {
            let q: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let joints = JointState::new(names.to_vec(), q, 0.0)
                .map_err(|e| VlaPolicyError::Data(format!("TCP input: {e}")))?;
            base_from_tcp_m(chain, &joints)
        })
        .collect()
}

/// Puts the URDF a spec needs into the policy folder `out`: copies `from`
/// to `out/`[`TCP_URDF_FILE`] (nothing to do when it is already there).
pub fn install_urdf(from: &Path, out: &Path) -> Result<()> {
    let dest = out.join(TCP_URDF_FILE);
    if let (Ok(a), Ok(b)) = (from.canonicalize(), dest.canonicalize()) {
        if a == b {
            return Ok(());
        }
    }
    std::fs::create_dir_all(out).map_err(|error| VlaPolicyError::Io {
        path: out.to_path_buf(),
        error,
    })?;
    std::fs::copy(from, &dest).map_err(|error| VlaPolicyError::Io {
        path: from.to_path_buf(),
        error,
    })?;
    Ok(())
}

//! What the simulator commands share: finding the repository's data folders
//! and choosing the policy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The folder holding `sim/` (and `urdf/`): `$VLA_ROOT` if set, else the
/// first folder at or above the current directory that has `sim/suites`,
/// else the checkout this binary was built from.
pub fn repo_root() -> Result<PathBuf> {
    if let Some(root) = std::env::var_os("VLA_ROOT") {
        let root = PathBuf::from(root);
        if !root.join("sim").is_dir() {
            bail!("VLA_ROOT={} has no sim/ folder", root.display());
        }
        return Ok(root);
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join("sim").join("suites").is_dir() {
            return Ok(dir.to_path_buf());
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built_from.join("sim").join("suites").is_dir() {
        return Ok(built_from);
    }
    bail!("cannot find the sim/ folder: run vla inside the repository or set VLA_ROOT to its root")
}

/// Which policy drives the arm.
pub enum PolicyChoice {
    /// The built-in scripted expert.
    Scripted,
    /// A trained policy loaded from a directory.
    Learned(Box<vla_policy::VlaPolicy>),
}

impl PolicyChoice {
    /// The episode driver for this choice (the expert with `noise`).
    pub fn driver(&mut self, noise: vla_sim::NoiseConfig) -> vla_sim::Driver<'_> {
        match self {
            Self::Scripted => vla_sim::Driver::Expert(noise),
            Self::Learned(policy) => vla_sim::Driver::Learned(policy.as_mut()),
        }
    }
}

/// Parses `--policy`: `scripted`, a directory of a learned policy
/// (`config.json` + `model.safetensors`, written by `vla train`), or the name
/// of a policy bundled under the repository's `policies/` (`default`).
/// `decoding` overrides the policy's own decoding rule.
pub fn choose_policy(policy: &str, decoding: Option<vla_policy::Decoding>) -> Result<PolicyChoice> {
    if policy == "scripted" {
        return Ok(PolicyChoice::Scripted);
    }
    let dir = resolve_policy_dir(policy)?;
    let loaded = vla_policy::VlaPolicy::load(&dir).map_err(|e| {
        anyhow::anyhow!(
            "--policy {policy}: cannot load the policy in {}: {e}",
            dir.display()
        )
    })?;
    let mut loaded = loaded;
    if let Some(d) = decoding {
        loaded.set_decoding(d);
    }
    Ok(PolicyChoice::Learned(Box::new(loaded)))
}

/// The folder `--policy NAME` means: `NAME` itself if it is a folder, else
/// `policies/NAME` in the repository.
pub fn resolve_policy_dir(policy: &str) -> Result<PathBuf> {
    let dir = Path::new(policy);
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    if !policy.contains(['/', '\\']) {
        if let Ok(root) = repo_root() {
            let bundled = root.join("policies").join(policy);
            if bundled.join("config.json").is_file() {
                return Ok(bundled);
            }
        }
    }
    bail!(
        "--policy {policy}: no such policy directory (use `scripted`, a policy under policies/, \
         or a directory written by `vla train`)"
    )
}

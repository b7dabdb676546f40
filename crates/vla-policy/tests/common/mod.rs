//! Helpers shared by the integration tests that drive a Panda policy.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use vla_core::JointState;
use vla_policy::{InstructionTokens, TEXT_HIDDEN};

pub const PANDA_JOINTS: [&str; 9] = [
    "panda_joint1",
    "panda_joint2",
    "panda_joint3",
    "panda_joint4",
    "panda_joint5",
    "panda_joint6",
    "panda_joint7",
    "panda_finger_joint1",
    "panda_finger_joint2",
];

/// The simulator's home pose (sim/scenes/tabletop.toml), fingers open.
pub const HOME_RAD: [f64; 9] = [0.0, -0.25, 0.0, -2.2, 0.0, 1.95, 0.785, 0.04, 0.04];

/// The repository's Panda URDF, found at run time (so a test binary built
/// in another clone still finds it).
pub fn panda_urdf() -> PathBuf {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    PathBuf::from(manifest).join("../../urdf/panda.urdf")
}

pub fn names() -> Vec<String> {
    PANDA_JOINTS.iter().map(|s| s.to_string()).collect()
}

pub fn joints(q: &[f64]) -> JointState {
    JointState::new(names(), q.to_vec(), 0.0).unwrap()
}

/// A 3-token instruction of zeros (no text encoder needed).
pub fn instruction_tokens() -> InstructionTokens {
    InstructionTokens::from_text_outputs(
        &Tensor::zeros((3, TEXT_HIDDEN), DType::F32, &Device::Cpu).unwrap(),
        64,
    )
    .unwrap()
}

//! Helpers shared by the integration tests that drive a Panda policy.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use nalgebra::{Isometry3, Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use vla_core::JointState;
use vla_policy::crop::CropCamera;
use vla_policy::data::synthetic::Synthetic;
use vla_policy::data::{Dataset, DemoSource};
use vla_policy::{InstructionTokens, ModelConfig, TEXT_HIDDEN};

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

/// The tabletop scene's camera in the robot's base frame (the base sits at
/// z = 0.75 m in the world): eye (1.05, 0, 0.55), looking at (0.47, 0,
/// 0.05), 55° vertical field of view, 128 px square.
pub fn tabletop_camera() -> CropCamera {
    let eye = Vector3::new(1.05, 0.0, 0.55);
    let forward = (Vector3::new(0.47, 0.0, 0.05) - eye).normalize();
    let right = forward.cross(&Vector3::z()).normalize();
    let down = forward.cross(&right);
    let rotation = Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[right, down, forward]));
    let pose = Isometry3::from_parts(
        Translation3::from(eye),
        UnitQuaternion::from_rotation_matrix(&rotation),
    );
    let f_px = 64.0 / (27.5f64.to_radians()).tan();
    CropCamera::new(&pose, 128, 128, f_px, f_px, 63.5, 63.5)
}

/// The synthetic toy task (6 episodes of 5 frames at the tiny model's
/// size) with Panda joint states that vary from frame to frame.
pub fn panda_toy_data() -> Dataset {
    let mut data = Synthetic {
        episodes: 6,
        steps: 5,
        seed: 3,
    }
    .load(ModelConfig::tiny().image_size_px)
    .unwrap();
    data.state_names = names();
    for (i, s) in data.samples.iter_mut().enumerate() {
        let mut q = HOME_RAD;
        q[0] = 0.05 * (i % 7) as f64;
        q[3] = -2.2 - 0.03 * (i % 5) as f64;
        s.state = q.iter().map(|&v| v as f32).collect();
    }
    data
}

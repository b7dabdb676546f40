//! The VLA policy: camera frame + instruction → 8 RT-2 action tokens.
//!
//! * [`text`]: the frozen all-MiniLM-L6-v2 instruction encoder, and
//!   [`text_files`], where its files come from (pinned, checksummed, cached);
//! * [`model`]: the network (conv-stem image tokens + projected instruction
//!   tokens → transformer encoder → autoregressive decoder of action tokens),
//!   built from the differentiable blocks in [`nn`]; [`fast_decode`] runs its
//!   decoder for batch-1 CPU inference without per-op overhead, choosing
//!   bins by a [`decoding`] rule; [`ensemble`] lets several such networks
//!   decode together;
//! * [`train`]: behaviour cloning with AdamW ([`optim`]), augmentation
//!   ([`image`]) and resumable checkpoints ([`checkpoint`]);
//! * [`data`]: data sets and their sources ([`sim_data`] reads `vla collect`
//!   output; [`data::synthetic`] generates a toy task);
//! * [`policy`]: [`VlaPolicy`], the inference API implementing
//!   [`vla_core::Policy`]; [`tcp`] computes its optional end-effector
//!   position input by forward kinematics of the measured joints, and
//!   [`crop`] the optional hand-centred window of the frame around it
//!   (a second image stem, the `stem` module; the instruction reaches the
//!   stems through the `grounding` module); [`table_plane`] turns the
//!   objects' keypoints into offsets from the hand in metres;
//!   [`prev_action`] and [`first_keypoints`] are the optional inputs that
//!   remember something of the episode (the last action, the first
//!   frame's keypoints).

pub mod broadcast;
pub mod checkpoint;
pub mod crop;
pub mod data;
pub mod decoding;
pub mod ensemble;
pub mod error;
pub mod fast_decode;
pub mod first_keypoints;
pub(crate) mod grounding;
pub mod image;
pub mod init;
pub mod keypoint_memory;
pub mod keypoint_window;
pub mod model;
pub mod neighbourhood;
pub mod nn;
pub mod optim;
pub mod parallel;
pub mod pixels;
pub mod policy;
pub mod prev_action;
pub mod sampling;
pub mod sim_data;
pub(crate) mod stem;
pub mod table_plane;
pub mod tcp;
pub mod text;
pub mod text_files;
pub mod train;

pub use checkpoint::PolicyConfig;
pub use decoding::Decoding;
pub use error::{Result, VlaPolicyError};
pub use model::{ModelConfig, VlaModel};
pub use policy::{InstructionTokens, VlaPolicy};
pub use text::{EncodedText, TextEncoder, TEXT_HIDDEN};
pub use train::{train, TrainOptions, TrainReport};

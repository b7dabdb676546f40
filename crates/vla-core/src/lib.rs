//! Shared types of the VLA controller.
//!
//! Everything that crosses a crate boundary lives here: what the robot sees
//! ([`RgbFrame`], [`JointState`], [`Instruction`]), what the policy says
//! ([`Action`], [`ActionTokens`]), and what the arm receives ([`JointCommand`]).
//! The [`tokenizer`] turns continuous RT-2 style actions into 8 discrete tokens
//! and back.
//!
//! Units: metres, radians, seconds, SI everywhere. Names carry their unit
//! (`dt_secs`, `positions_rad`).
//!
//! ```
//! use vla_core::{Action, tokenizer::ActionTokenizer};
//! let tok = ActionTokenizer::default();
//! let action = Action::new([0.01, 0.0, -0.02], [0.0, 0.05, 0.0], 1.0, false);
//! let tokens = tok.tokenize(&action).unwrap();
//! let back = tok.detokenize(&tokens).unwrap();
//! assert!((back.translation_m[0] - 0.01).abs() <= tok.half_bin_width(0));
//! ```

pub mod action;
pub mod command;
pub mod error;
pub mod observation;
pub mod policy;
pub mod tokenizer;

pub use action::{Action, ActionTokens, ACTION_DIMS, TOKENS_PER_STEP};
pub use command::JointCommand;
pub use error::CoreError;
pub use observation::{Instruction, JointState, PixelEncoding, RgbFrame, MAX_INSTRUCTION_BYTES};
pub use policy::{Policy, PolicyError, PolicyStep};

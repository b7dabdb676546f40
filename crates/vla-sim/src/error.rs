//! The error type of `vla-sim`.

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while loading, building or running a simulation.
#[derive(Debug, Error)]
pub enum SimError {
    /// A scene, suite or dataset file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A TOML file that does not parse or does not match the documented format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A scene or suite that parses but is inconsistent.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which file or part.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A goal spec that does not fit the scene or the task family.
    #[error("invalid goal: {0}")]
    Goal(String),
    /// An instruction with words outside the vocabulary.
    #[error("unknown word(s) {words:?} in {text:?}; the vocabulary is: {vocabulary}")]
    UnknownWords {
        /// The instruction.
        text: String,
        /// The words not understood.
        words: Vec<String>,
        /// Every known word, comma separated.
        vocabulary: String,
    },
    /// An instruction made of known words that names no task.
    #[error("cannot understand {text:?}: {reason}")]
    Unparsable {
        /// The instruction.
        text: String,
        /// Why.
        reason: String,
    },
    /// No layout satisfying the spacing rules was found.
    #[error("could not place {what} after {attempts} attempts (workspace too crowded)")]
    Layout {
        /// What could not be placed.
        what: String,
        /// Attempts made.
        attempts: usize,
    },
    /// The robot description could not be used.
    #[error("robot: {0}")]
    Robot(String),
    /// The renderer failed.
    #[error("render: {0}")]
    Render(String),
    /// The policy failed.
    #[error(transparent)]
    Policy(#[from] vla_core::PolicyError),
    /// A shared-type check failed (frame, action, joint state).
    #[error(transparent)]
    Core(#[from] vla_core::CoreError),
    /// A dataset record could not be (de)serialised.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl SimError {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A validation error.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            message: message.into(),
        }
    }
}

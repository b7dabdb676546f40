//! The error type of `vla-viz`.

use thiserror::Error;

/// What can go wrong while recording.
#[derive(Debug, Error)]
pub enum VizError {
    /// The rerun stream could not be created or written.
    #[error("rerun: {0}")]
    Rerun(#[from] rerun::RecordingStreamError),
    /// Flushing the recording failed.
    #[error("rerun flush failed: {0}")]
    Flush(String),
    /// A depth image whose size does not match its colour frame.
    #[error("depth image has {actual} values, expected {expected}")]
    DepthSize {
        /// Expected number of values.
        expected: usize,
        /// Actual number of values.
        actual: usize,
    },
    /// The logging thread could not start or died.
    #[error("rerun logging thread: {0}")]
    Worker(String),
    /// Data for the recording could not be prepared (e.g. rendering a frame).
    #[error("preparing data for the recording: {0}")]
    Prepare(String),
    /// A viewer address that is not a rerun proxy URL or host:port.
    #[error("invalid viewer address {0:?}: expected host:port or rerun+http://host:port/proxy")]
    Address(String),
}

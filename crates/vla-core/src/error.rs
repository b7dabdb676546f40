//! The error type of `vla-core`.

use thiserror::Error;

/// Everything that can be wrong with an observation, an action or a token.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// A pixel buffer whose length does not match `width * height * channels`.
    #[error(
        "image buffer has {actual} bytes, expected {expected} for {width}x{height} {encoding}"
    )]
    ImageSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Encoding name.
        encoding: String,
        /// Expected byte count.
        expected: usize,
        /// Actual byte count.
        actual: usize,
    },
    /// An image encoding that is not supported.
    #[error("unsupported image encoding {0:?} (supported: rgb8, bgr8, rgba8, bgra8, mono8)")]
    UnsupportedEncoding(String),
    /// An image of zero width or height, or absurdly large.
    #[error("image size {width}x{height} is out of range (1..={max} per side)")]
    ImageDimensions {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Largest accepted side.
        max: u32,
    },
    /// A NaN or infinite value where a finite number is required.
    #[error("{what} is not finite ({value})")]
    NonFinite {
        /// Which quantity.
        what: String,
        /// The offending value.
        value: f64,
    },
    /// Vectors that must have the same length do not.
    #[error("{what}: {left} names but {right} values")]
    LengthMismatch {
        /// Which pair of vectors.
        what: String,
        /// Length of the first.
        left: usize,
        /// Length of the second.
        right: usize,
    },
    /// The same joint name appears twice.
    #[error("joint name {0:?} appears more than once")]
    DuplicateJoint(String),
    /// An instruction with no words in it.
    #[error("instruction is empty")]
    EmptyInstruction,
    /// An instruction over the size limit.
    #[error("instruction is {len} bytes, the limit is {max}")]
    InstructionTooLong {
        /// Length in bytes.
        len: usize,
        /// Limit in bytes.
        max: usize,
    },
    /// A token id outside the action vocabulary, or a bin not valid at its position.
    #[error("token {token} at position {position} is outside the valid range {min}..={max}")]
    TokenOutOfRange {
        /// Position in the 8-token step (0 = terminate).
        position: usize,
        /// The token id.
        token: u32,
        /// Smallest valid id at this position.
        min: u32,
        /// Largest valid id at this position.
        max: u32,
    },
    /// Bounds that cannot be used for binning.
    #[error("invalid action bounds for dimension {dim}: low {low}, high {high}")]
    InvalidBounds {
        /// Action dimension (0..7).
        dim: usize,
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Quantile statistics asked of an empty data set.
    #[error("cannot compute action statistics from an empty data set")]
    EmptyDataset,
}

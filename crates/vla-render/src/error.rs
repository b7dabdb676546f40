//! The renderer's error type: every way a render request can be malformed.

use thiserror::Error;

/// Why a render (or a domain-randomisation request) was refused.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum RenderError {
    /// The camera has a zero or oversized image, non-positive focal lengths,
    /// or a non-finite pose or intrinsic.
    #[error("invalid camera: {0}")]
    InvalidCamera(String),
    /// A primitive has a non-finite pose, a non-positive size or a colour
    /// outside 0..=1.
    #[error("invalid primitive #{index}: {reason}")]
    InvalidPrimitive {
        /// Position of the primitive in the slice passed to `render`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// More primitives than the per-pixel primitive index can address.
    #[error("too many primitives: {count} (at most {max})")]
    TooManyPrimitives {
        /// Primitives passed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The lighting has a zero or non-finite sun direction or a negative or
    /// non-finite intensity.
    #[error("invalid lighting: {0}")]
    InvalidLighting(String),
    /// The renderer configuration (or a texture) is out of range.
    #[error("invalid render config: {0}")]
    InvalidConfig(String),
    /// Domain-randomisation amplitudes are negative or non-finite.
    #[error("invalid domain randomisation: {0}")]
    InvalidRandomization(String),
    /// The output image could not be built (size limits of `RgbFrame`).
    #[error("output image: {0}")]
    Image(#[from] vla_core::CoreError),
}

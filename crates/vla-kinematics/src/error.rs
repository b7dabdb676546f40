//! The error type of `vla-kinematics`.

use thiserror::Error;

/// Everything that can go wrong loading a robot description or computing with it.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum KinError {
    /// The URDF could not be read or parsed.
    #[error("cannot read URDF{source_name}: {message}")]
    Urdf {
        /// `" FILE"` when read from a file, empty otherwise.
        source_name: String,
        /// What the parser said.
        message: String,
    },
    /// A link name that the URDF does not contain.
    #[error("link {link:?} is not in the URDF (links: {available})")]
    MissingLink {
        /// The requested link.
        link: String,
        /// The links that exist, comma separated.
        available: String,
    },
    /// A joint name that the URDF (or the chain) does not contain.
    #[error("joint {joint:?} is not in {scope} (joints: {available})")]
    UnknownJoint {
        /// The requested joint.
        joint: String,
        /// "the URDF" or "the chain".
        scope: String,
        /// The joints that exist, comma separated.
        available: String,
    },
    /// The tip link is not a descendant of the base link.
    #[error("tip link {tip:?} is not below base link {base:?} in the kinematic tree")]
    TipNotBelowBase {
        /// Base link.
        base: String,
        /// Tip link.
        tip: String,
    },
    /// The links and joints do not form a single tree (several roots, a link
    /// with two parents, a cycle, a joint naming a link that does not exist).
    #[error("URDF is not a single kinematic tree: {0}")]
    NotATree(String),
    /// No tip was given and the tree does not have one obvious end.
    #[error("cannot choose a tip link below {base:?}: {reason}; pass the tip link explicitly")]
    AmbiguousTip {
        /// Base link.
        base: String,
        /// Why (the candidates).
        reason: String,
    },
    /// A joint type that a serial chain cannot hold (floating, planar, spherical).
    #[error("joint {joint:?} has type {kind}, which a serial chain does not support")]
    UnsupportedJoint {
        /// Joint name.
        joint: String,
        /// Its URDF type.
        kind: String,
    },
    /// A joint whose limits or axis make no sense.
    #[error("joint {joint:?}: {reason}")]
    InvalidJoint {
        /// Joint name.
        joint: String,
        /// What is wrong.
        reason: String,
    },
    /// A vector of joint values with the wrong length.
    #[error("{what}: expected {expected} values (one per joint), got {actual}")]
    DofMismatch {
        /// Which vector.
        what: String,
        /// Degrees of freedom of the chain.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// A NaN or infinite value where a finite number is required.
    #[error("{what} is not finite ({value})")]
    NonFinite {
        /// Which quantity.
        what: String,
        /// The offending value.
        value: f64,
    },
    /// A configuration value out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

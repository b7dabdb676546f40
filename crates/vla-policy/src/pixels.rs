//! The pixels of one training frame: owned bytes, or a window of a
//! memory-mapped `frames.rgb` file.
//!
//! A data set of the recipe's size (250 000 frames of 128×128 RGB8, 12 GB)
//! copied into the training process does not fit next to the same files in
//! the page cache of a 24 GiB machine, so every `vla train` read it from disk
//! again and filled 12 GB of fresh anonymous pages (78 s for the recipe's
//! round 3 on the 2-core machine). Frames that are already at the model's
//! size are instead viewed in place in the mapped file: the page cache *is*
//! the data set, the next stage finds it there, and nothing is copied.
//!
//! A mapped file must not be truncated or rewritten while a data set that
//! views it is alive (reading a truncated page ends the process with
//! SIGBUS). `vla collect` writes each folder once; do not collect into a
//! folder that a running `vla train` reads. [`map_file`] refuses to map
//! nothing but makes no other promise.

// Mapping a file is unsafe in Rust's sense (another process may change it);
// the one `unsafe` block below is the whole exception to the workspace's
// `unsafe_code = "deny"`.
#![allow(unsafe_code)]

use std::fmt;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::error::{io_err, Result, VlaPolicyError};

/// A file's bytes, mapped read-only.
pub struct MappedFile(memmap2::Mmap);

impl MappedFile {
    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MappedFile({} bytes)", self.0.len())
    }
}

/// Maps `path` read-only (an empty file is an error: it has no frames).
pub fn map_file(path: &Path) -> Result<Arc<MappedFile>> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len == 0 {
        return Err(VlaPolicyError::Data(format!(
            "{}: empty file",
            path.display()
        )));
    }
    // SAFETY: the mapping is read-only and private to this process; the
    // module documentation states the one remaining hazard (the file being
    // truncated while mapped), which `vla collect`'s write-once folders
    // avoid.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(path))?;
    Ok(Arc::new(MappedFile(map)))
}

/// One frame's RGB8 bytes (`size × size × 3`, row-major).
#[derive(Clone)]
pub struct Pixels(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Vec<u8>),
    Mapped {
        file: Arc<MappedFile>,
        start: usize,
        len: usize,
    },
}

impl Pixels {
    /// Bytes `start..start + len` of a mapped file (`None` if out of range).
    pub fn mapped(file: &Arc<MappedFile>, start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        (end <= file.bytes().len()).then(|| {
            Self(Repr::Mapped {
                file: Arc::clone(file),
                start,
                len,
            })
        })
    }

    /// Whether the bytes live in a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { file, start, len } => &file.bytes()[*start..*start + *len],
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(v: Vec<u8>) -> Self {
        Self(Repr::Owned(v))
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<u8>> for Pixels {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == other[..]
    }
}

impl fmt::Debug for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_mapped() { "mapped" } else { "owned" };
        write!(f, "Pixels({} bytes, {kind})", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_window_reads_the_files_bytes_and_out_of_range_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames.rgb");
        std::fs::write(&path, (0..24u8).collect::<Vec<_>>()).unwrap();
        let file = map_file(&path).unwrap();
        let p = Pixels::mapped(&file, 12, 12).unwrap();
        assert!(p.is_mapped());
        assert_eq!(&*p, &(12..24u8).collect::<Vec<_>>()[..]);
        assert_eq!(p, Pixels::from((12..24u8).collect::<Vec<_>>()));
        assert!(Pixels::mapped(&file, 13, 12).is_none());
        assert!(Pixels::mapped(&file, usize::MAX, 2).is_none());
    }

    #[test]
    fn an_empty_or_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.rgb");
        std::fs::write(&empty, []).unwrap();
        let err = map_file(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.rgb"), "{err}");
        let err = map_file(&dir.path().join("missing.rgb"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.rgb"), "{err}");
    }
}

//! Allocator settings for the whole `vla` process (glibc on Linux only).
//!
//! A training step allocates and frees hundreds of tensor buffers, many of
//! them megabytes large, on two worker threads (`vla train --workers 2`).
//! With glibc's defaults, buffers above a dynamic threshold are `mmap`ed
//! and unmapped again each time, so the kernel zeroes every page on its
//! first touch (18 % of a step's samples in `perf`, `clear_page_erms`), and
//! each thread gets its own arena. [`tune`] keeps freed memory in one heap
//! instead: one arena, buffers up to 32 MiB (glibc's largest allowed
//! threshold) from the heap, and the heap's top trimmed only above 2 GiB.
//! Results are unchanged (the allocator does not touch the numbers); the
//! speed-up is measured in crates/vla-policy/README.md, "Training speed".
//!
//! (Setting `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296`, as the
//! training scripts did up to session 19, does nothing: glibc ignores a
//! threshold above 32 MiB. If `GLIBC_TUNABLES` or `MALLOC_ARENA_MAX` is set,
//! [`tune`] leaves the allocator to it.)

/// The largest `M_MMAP_THRESHOLD` glibc accepts on 64-bit targets.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 32 << 20;

/// Applies the settings above, unless the environment sets the allocator's
/// own. Call it first thing in `main`, before any thread starts.
pub fn tune() {
    if std::env::var_os("GLIBC_TUNABLES").is_some()
        || std::env::var_os("MALLOC_ARENA_MAX").is_some()
    {
        return;
    }
    apply();
}

/// Sets the three parameters; true if glibc accepted every value.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply() -> bool {
    // SAFETY: `mallopt` only changes glibc's allocator parameters; it is
    // called before any other thread exists, with documented parameters. A
    // rejected value returns 0 and changes nothing.
    unsafe {
        let arenas = libc::mallopt(libc::M_ARENA_MAX, 1);
        let mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        let trim = libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        arenas == 1 && mmap == 1 && trim == 1
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// glibc silently ignores a threshold it considers too high (the
    /// scripts' old 4 GiB one): every value set here must be accepted.
    #[test]
    fn glibc_accepts_every_setting() {
        assert!(apply());
    }

    /// The largest threshold glibc takes is exactly the one used: one byte
    /// more is refused, so the test above can tell a rejected value.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    #[allow(unsafe_code)]
    fn a_larger_threshold_is_refused() {
        // SAFETY: as in `apply`; the refused call changes nothing, and the
        // accepted one restores the value `apply` sets.
        let (refused, restored) = unsafe {
            (
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES + 1),
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            )
        };
        assert_eq!((refused, restored), (0, 1));
    }
}

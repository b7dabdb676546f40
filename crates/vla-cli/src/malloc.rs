//! Allocator settings for the whole `vla` process (glibc on Linux only).
//!
//! A training step allocates and frees hundreds of tensor buffers, many of
//! them megabytes large, on two worker threads (`vla train --workers 2`).
//! With glibc's defaults, buffers above a dynamic threshold are `mmap`ed
//! and unmapped again each time, so the kernel zeroes every page on its
//! first touch (18 % of a step's samples in `perf`, `clear_page_erms`), and
//! each thread gets its own arena. [`tune`] keeps freed memory in one heap
//! instead: one arena, buffers up to 32 MiB from the heap instead of
//! `mmap`, and the heap's top trimmed only above 2 GiB.
//! Results are unchanged (the allocator does not touch the numbers); the
//! speed-up is measured in crates/vla-policy/README.md, "Training speed".
//!
//! (The `GLIBC_TUNABLES` with a 4 GiB mmap threshold that the training
//! scripts exported up to session 19 left 4× the page faults of these
//! settings: one arena is what matters, crates/vla-policy/README.md. If
//! `GLIBC_TUNABLES` or `MALLOC_ARENA_MAX` is set, [`tune`] leaves the
//! allocator to it.)

/// Buffers up to this size come from the heap (glibc's dynamic threshold
/// never goes above it on its own; measured with it, crates/vla-policy/README.md).
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

    /// glibc returns 0 for a value it refuses: every value set here must be
    /// accepted.
    #[test]
    fn glibc_accepts_every_setting() {
        assert!(apply());
    }

    /// What the settings are for: a freed 16 MiB buffer is reused by the
    /// next one without the kernel handing out (and zeroing) fresh pages.
    /// With glibc's defaults the first buffer is unmapped on free and the
    /// second one faults its 4 096 pages in again.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_freed_buffer_is_reused_without_page_faults() {
        // With one arena, a test running beside this one in the same
        // process can take the freed buffer before the second `touch`,
        // which then faults in fresh pages (a race, not the settings): the
        // measurement runs in a child process that runs this test alone.
        const CHILD: &str = "VLA_MALLOC_TEST_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let name = "malloc::tests::a_freed_buffer_is_reused_without_page_faults";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([name, "--exact", "--test-threads=1", "--nocapture"])
                .env(CHILD, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "the child ran no test: {text}");
            return;
        }
        const BYTES: usize = 16 << 20;
        fn touch() {
            let mut buffer = Vec::<u8>::with_capacity(BYTES);
            buffer.resize(BYTES, 1);
            std::hint::black_box(&buffer);
        }
        #[allow(unsafe_code)]
        fn minor_faults_of_this_thread() -> i64 {
            // SAFETY: `getrusage` writes one `rusage` we own.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
            assert_eq!(rc, 0);
            usage.ru_minflt
        }
        assert!(apply());
        touch();
        let before = minor_faults_of_this_thread();
        touch();
        let faults = minor_faults_of_this_thread() - before;
        assert!(
            faults < 200,
            "{faults} page faults for a reused {BYTES}-byte buffer"
        );
    }
}

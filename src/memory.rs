//! The daemon's memory: glibc's allocator set up for a small, mostly idle daemon, and
//! freed memory handed back to the system once a burst is over.
//!
//! glibc gives threads that allocate at the same time arenas of their own (up to eight
//! per core) and keeps what is freed in them for reuse; after a webhook burst the daemon
//! would stay at its peak for good. Two arenas are plenty for two async workers and a few
//! blocking threads ([`tune_allocator`], before any thread starts), and a trim
//! ([`release_freed_periodically`]) returns freed pages once the resident set grew since
//! the last one: an idle daemon does not walk its heap (and `madvise` the same free pages
//! again) every few seconds for nothing. Other allocators (musl's, in the static binary)
//! return large blocks as they free them and need neither; there both do nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the resident set is looked at.
const TRIM_EVERY: Duration = Duration::from_secs(5);
/// Growth of the resident set since the last trim that makes the next one worth it.
const TRIM_AFTER_GROWTH: u64 = 1 << 20;

/// At most two malloc arenas. Call first thing in `main`, before any thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads run.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands memory freed inside the allocator's arenas back to the system.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
    // and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`release_freed`] every few seconds (on a blocking thread) while the resident
/// set grew by [`TRIM_AFTER_GROWTH`] since the last call, until `shutdown`.
pub async fn release_freed_periodically(shutdown: CancellationToken) {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let mut ticks = tokio::time::interval(TRIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut after_last_trim = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                if resident_bytes().is_some_and(|now| now < after_last_trim + TRIM_AFTER_GROWTH) {
                    continue;
                }
                let trimmed = tokio::task::spawn_blocking(|| {
                    release_freed();
                    resident_bytes()
                });
                after_last_trim = trimmed.await.ok().flatten().unwrap_or(0);
            }
        }
    }
}

/// The process's resident set (`VmRSS` in `/proc/self/status`), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_set_is_read_and_grows_with_touched_memory() {
        let before = resident_bytes().expect("VmRSS of this process");
        let block = std::hint::black_box(vec![1u8; 32 << 20]);
        let after = resident_bytes().expect("VmRSS of this process");
        assert!(after >= before + (16 << 20), "{before} → {after}");
        drop(block);
    }
}

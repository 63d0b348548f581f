//! The daemon's memory: glibc's allocator set up for a small, mostly idle daemon, and
//! freed memory handed back to the system once a burst is over.
//!
//! glibc gives threads that allocate at the same time arenas of their own (up to eight
//! per core) and keeps what is freed in them for reuse; after a webhook burst the daemon
//! would stay at its peak for good. Two arenas are plenty for two async workers and a few
//! blocking threads ([`tune_allocator`], before any thread starts), and a trim every few
//! seconds ([`release_freed_periodically`]) returns freed pages (a few hundred µs on an
//! idle heap). Other allocators (musl's) need neither; there both do nothing.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed memory is handed back.
const TRIM_EVERY: Duration = Duration::from_secs(5);

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

/// Calls [`release_freed`] every few seconds (on a blocking thread) until `shutdown`.
pub async fn release_freed_periodically(shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(TRIM_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let _ = tokio::task::spawn_blocking(release_freed).await;
            }
        }
    }
}

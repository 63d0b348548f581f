//! Wrong passwords in the audit log, without letting a guessing bot fill it: a user's
//! first wrong password is written, the next ones within [`WINDOW`] are only counted (the
//! daemon's log still has each), and the next entry for that user — a wrong password
//! after the window, or a sign-in — says how many went unlisted.
//!
//! Only users that exist are tracked (see `auth::login`), so the map is as small as the
//! user table.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a written failure further ones for the same user are only counted.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Failures counted per user since the entry last written for them.
#[derive(Default)]
pub struct FailedLogins {
    by_user: Mutex<HashMap<i64, Counted>>,
}

struct Counted {
    written_at: Instant,
    unlisted: u32,
}

impl FailedLogins {
    /// A wrong password for `user_id` at `now`: `Some(n)` when it gets an entry of its
    /// own (`n` failures before it went unlisted), `None` when it is only counted.
    pub fn failed(&self, user_id: i64, now: Instant) -> Option<u32> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        match by_user.get_mut(&user_id) {
            Some(counted) if now.duration_since(counted.written_at) < WINDOW => {
                counted.unlisted += 1;
                None
            }
            counted => {
                let unlisted = counted.map_or(0, |c| c.unlisted);
                by_user.insert(
                    user_id,
                    Counted {
                        written_at: now,
                        unlisted: 0,
                    },
                );
                Some(unlisted)
            }
        }
    }

    /// `user_id` signed in: the failures that went unlisted since their last entry, which
    /// the sign-in's entry reports. The next failure is written again.
    pub fn signed_in(&self, user_id: i64) -> u32 {
        let mut by_user = self.by_user.lock().unwrap_or_else(|p| p.into_inner());
        by_user.remove(&user_id).map_or(0, |c| c.unlisted)
    }
}

/// What an entry adds about the failures it stands for.
pub fn unlisted_note(unlisted: u32) -> String {
    match unlisted {
        0 => String::new(),
        1 => " (1 more wrong password before it, not listed one by one)".into(),
        n => format!(" ({n} more wrong passwords before it, not listed one by one)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_window_and_the_next_one_counts_the_rest() {
        let failed = FailedLogins::default();
        let start = Instant::now();
        assert_eq!(failed.failed(1, start), Some(0), "the first is written");
        assert_eq!(failed.failed(1, start + Duration::from_secs(1)), None);
        assert_eq!(failed.failed(1, start + Duration::from_secs(2)), None);
        assert_eq!(failed.failed(2, start), Some(0), "each user on their own");
        assert_eq!(
            failed.failed(1, start + WINDOW),
            Some(2),
            "after the window: written, with the two counted"
        );
        assert_eq!(
            failed.failed(1, start + WINDOW + Duration::from_secs(1)),
            None
        );
        assert_eq!(failed.signed_in(1), 1, "the sign-in reports the one since");
        assert_eq!(
            failed.failed(1, start + WINDOW + Duration::from_secs(2)),
            Some(0),
            "after a sign-in the next failure is written again"
        );
        assert_eq!(failed.signed_in(3), 0);
    }

    #[test]
    fn the_note_says_how_many_went_unlisted() {
        assert_eq!(unlisted_note(0), "");
        assert!(unlisted_note(1).contains("1 more wrong password "));
        assert!(unlisted_note(7).contains("7 more wrong passwords"));
    }
}

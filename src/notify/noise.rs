//! Less noise: a stage failing the same way again and again is reported once; the repeats
//! are held back and counted, and the count rides on the stage's next message (a
//! different failure, a success, or every [`SUMMARY_EVERY`]th repeat).

use std::collections::HashMap;
use std::sync::Mutex;

use super::EventKind;
use super::message::Notification;

/// A summary goes out after this many held-back repeats even if nothing else happens.
pub const SUMMARY_EVERY: u32 = 10;

#[derive(Default)]
pub struct Repeats {
    /// Per (project, stage): the last failure's fingerprint and how many repeats were held.
    streaks: Mutex<HashMap<(String, String), (String, u32)>>,
}

impl Repeats {
    /// Whether to send `n`; sets `n.repeats` to the count of held-back repeats it reports.
    pub fn admit(&self, n: &mut Notification) -> bool {
        let key = (n.project.clone(), n.stage.clone());
        let mut streaks = self.streaks.lock().unwrap_or_else(|p| p.into_inner());
        match n.fingerprint() {
            Some(fingerprint) => match streaks.get_mut(&key) {
                Some((last, held)) if *last == fingerprint => {
                    *held += 1;
                    if *held < SUMMARY_EVERY {
                        return false;
                    }
                    n.repeats = std::mem::take(held);
                    true
                }
                _ => {
                    if let Some((_, held)) = streaks.insert(key, (fingerprint, 0)) {
                        n.repeats = held;
                    }
                    true
                }
            },
            None => {
                if n.event == EventKind::Success
                    && let Some((_, held)) = streaks.remove(&key)
                {
                    n.repeats = held;
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_failures_are_sent_once_then_summarised() {
        let repeats = Repeats::default();
        let failure = Notification::sample(EventKind::Rollback);
        let mut first = failure.clone();
        assert!(repeats.admit(&mut first));
        assert_eq!(first.repeats, 0);
        for _ in 0..3 {
            assert!(
                !repeats.admit(&mut failure.clone()),
                "a repeat is held back"
            );
        }
        let mut other_stage = Notification {
            stage: "prod".into(),
            ..failure.clone()
        };
        assert!(repeats.admit(&mut other_stage), "other stages are separate");
        let mut success = Notification::sample(EventKind::Success);
        assert!(repeats.admit(&mut success));
        assert_eq!(
            success.repeats, 3,
            "the success reports the held-back repeats"
        );
        let mut again = failure.clone();
        assert!(
            repeats.admit(&mut again),
            "after a success the failure is news again"
        );
    }

    #[test]
    fn a_long_streak_is_summarised_every_ten() {
        let repeats = Repeats::default();
        let failure = Notification::sample(EventKind::Failure);
        assert!(repeats.admit(&mut failure.clone()));
        let sent: Vec<u32> = (0..25)
            .filter_map(|_| {
                let mut n = failure.clone();
                repeats.admit(&mut n).then_some(n.repeats)
            })
            .collect();
        assert_eq!(sent, vec![SUMMARY_EVERY, SUMMARY_EVERY]);
        let mut different = Notification {
            error: Some("other".into()),
            ..failure
        };
        assert!(repeats.admit(&mut different));
        assert_eq!(different.repeats, 5);
    }
}

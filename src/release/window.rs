//! Deploy windows: ranges of wall-clock time in a time zone ("Mon-Fri 02:00-06:00") in
//! which deploys may start. A window is a range, not a cron trigger: `02:00-06:00` is open
//! for four hours, where the cron line `0 2-6 * * *` would fire once an hour. A range whose
//! end is before its start runs past midnight and belongs to the day it starts on.
//!
//! Syntax: `[DAYS ]HH:MM[:SS]-HH:MM[:SS]`, DAYS a comma list of days (`Mon`) or day ranges
//! (`Mon-Fri`, `Sat-Sun`), no DAYS for every day; `-` or `–` between the ends; `24:00`
//! as an end means midnight.

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// A stage's windows, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    ranges: Vec<Range>,
    tz: Tz,
}

#[derive(Clone, Debug, PartialEq)]
struct Range {
    /// Bit `n` set: open on the day `n` days after Monday.
    days: u8,
    /// Seconds since local midnight.
    start: u32,
    end: u32,
}

/// Why a window or time zone was refused; `index` is the window's place in the list.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum WindowError {
    #[error("window {index}: {reason}; write a range like \"Mon-Fri 02:00-06:00\"")]
    Window { index: usize, reason: String },
    #[error("unknown time zone {0:?}: use an IANA name like Europe/Berlin or UTC")]
    TimeZone(String),
}

const ALL_DAYS: u8 = 0b111_1111;
const DAY: u32 = 86_400;

impl Windows {
    pub fn parse(windows: &[String], timezone: &str) -> Result<Windows, WindowError> {
        let tz: Tz = timezone
            .trim()
            .parse()
            .map_err(|_| WindowError::TimeZone(timezone.chars().take(64).collect()))?;
        let ranges = windows
            .iter()
            .enumerate()
            .map(|(index, w)| {
                parse_range(w).map_err(|reason| WindowError::Window { index, reason })
            })
            .collect::<Result<_, _>>()?;
        Ok(Windows { ranges, tz })
    }

    /// No windows: deploys may start at any time.
    pub fn is_always(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether a deploy may start at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.ranges.is_empty() {
            return true;
        }
        let local = at.with_timezone(&self.tz);
        let day = local.weekday().num_days_from_monday();
        let yesterday = (day + 6) % 7;
        let t = local.num_seconds_from_midnight();
        self.ranges.iter().any(|r| {
            let on = |d: u32| r.days & (1 << d) != 0;
            if r.start < r.end {
                on(day) && r.start <= t && t < r.end
            } else {
                (on(day) && t >= r.start) || (on(yesterday) && t < r.end)
            }
        })
    }

    /// When the next window opens at or after `at` (`at` itself when one is open), within
    /// the next eight days.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return Some(at);
        }
        let today = at.with_timezone(&self.tz).date_naive();
        let mut best: Option<DateTime<Utc>> = None;
        for offset in 0..=8 {
            let date = today + Duration::days(offset);
            let day = date.weekday().num_days_from_monday();
            for r in self.ranges.iter().filter(|r| r.days & (1 << day) != 0) {
                let time = NaiveTime::from_num_seconds_from_midnight_opt(r.start, 0)?;
                let naive = date.and_time(time);
                // A start inside a DST gap opens when the clocks reach it: an hour later.
                let start = self
                    .tz
                    .from_local_datetime(&naive)
                    .earliest()
                    .or_else(|| {
                        self.tz
                            .from_local_datetime(&(naive + Duration::hours(1)))
                            .earliest()
                    })
                    .map(|t| t.with_timezone(&Utc));
                if let Some(start) = start.filter(|s| *s > at)
                    && best.is_none_or(|b| start < b)
                {
                    best = Some(start);
                }
            }
        }
        best
    }
}

fn parse_range(text: &str) -> Result<Range, String> {
    let text = text.trim().replace(['–', '—'], "-");
    if text.is_empty() {
        return Err("is empty".into());
    }
    if text.len() > 100 {
        return Err("is longer than 100 characters".into());
    }
    let (days, times) = match text.rsplit_once(' ') {
        Some((days, times)) => (parse_days(days.trim())?, times),
        None => (ALL_DAYS, text.as_str()),
    };
    let (start, end) = times
        .split_once('-')
        .ok_or_else(|| format!("{times:?} is not a time range HH:MM-HH:MM"))?;
    let start = parse_time(start.trim())?;
    let end = parse_time(end.trim())?;
    if start == DAY {
        return Err("a window cannot start at 24:00".into());
    }
    if start == end {
        return Err("starts and ends at the same time".into());
    }
    Ok(Range { days, start, end })
}

fn parse_days(text: &str) -> Result<u8, String> {
    let mut days = 0u8;
    for part in text.split(',').map(str::trim) {
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (weekday(a.trim())?, weekday(b.trim())?),
            None => (weekday(part)?, weekday(part)?),
        };
        let mut d = from;
        loop {
            days |= 1 << d.num_days_from_monday();
            if d == to {
                break;
            }
            d = d.succ();
        }
    }
    Ok(days)
}

fn weekday(text: &str) -> Result<Weekday, String> {
    text.parse::<Weekday>()
        .map_err(|_| format!("{text:?} is not a day (Mon, Tue, … Sun)"))
}

/// `HH:MM` or `HH:MM:SS` as seconds since midnight; `24:00` is the end of the day.
fn parse_time(text: &str) -> Result<u32, String> {
    let bad = || format!("{text:?} is not a time HH:MM or HH:MM:SS");
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let numbers: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (h, m, s) = (numbers[0], numbers[1], numbers.get(2).copied().unwrap_or(0));
    if h == 24 && m == 0 && s == 0 {
        return Ok(DAY);
    }
    if h > 23 || m > 59 || s > 59 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60 + s)
}

/// `at` written as a window that opens `from` seconds later and stays open `length`
/// seconds, in UTC (what tests and the UI's "soon" example use).
pub fn range_from(at: DateTime<Utc>, from: i64, length: i64) -> String {
    let start = at + Duration::seconds(from);
    let end = start + Duration::seconds(length);
    format!("{}-{}", start.format("%H:%M:%S"), end.format("%H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn windows(list: &[&str], tz: &str) -> Windows {
        Windows::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>(), tz).unwrap()
    }

    #[test]
    fn a_range_is_open_for_its_whole_length_not_one_minute_an_hour() {
        let w = windows(&["02:00-06:00"], "UTC");
        // 2026-11-30 is a Monday.
        assert!(w.is_open(utc("2026-11-30T02:00:00Z")));
        assert!(
            w.is_open(utc("2026-11-30T03:30:00Z")),
            "the cron trap: open between the hours too"
        );
        assert!(w.is_open(utc("2026-11-30T05:59:59Z")));
        assert!(!w.is_open(utc("2026-11-30T06:00:00Z")));
        assert!(!w.is_open(utc("2026-11-30T01:59:59Z")));
    }

    #[test]
    fn days_and_time_zones_count() {
        let w = windows(&["Mon-Fri 02:00–06:00"], "Europe/Berlin");
        // 01:30 UTC on Monday is 02:30 in Berlin (winter, UTC+1).
        assert!(w.is_open(utc("2026-11-30T01:30:00Z")));
        assert!(!w.is_open(utc("2026-11-30T05:30:00Z")), "06:30 in Berlin");
        // Saturday 2026-12-05.
        assert!(!w.is_open(utc("2026-12-05T01:30:00Z")));
        let w = windows(&["Sat,Sun 10:00-12:00", "Wed 22:00-02:00"], "UTC");
        assert!(w.is_open(utc("2026-12-06T11:00:00Z")), "Sunday");
        assert!(
            w.is_open(utc("2026-12-03T01:00:00Z")),
            "Thursday 01:00 belongs to Wednesday's window"
        );
        assert!(
            !w.is_open(utc("2026-12-04T01:00:00Z")),
            "Friday 01:00 does not"
        );
    }

    #[test]
    fn next_open_finds_the_next_start() {
        let w = windows(&["Mon-Fri 02:00-06:00"], "UTC");
        // Friday 07:00 → Monday 02:00.
        assert_eq!(
            w.next_open(utc("2026-12-04T07:00:00Z")),
            Some(utc("2026-12-07T02:00:00Z"))
        );
        assert_eq!(
            w.next_open(utc("2026-12-04T03:00:00Z")),
            Some(utc("2026-12-04T03:00:00Z"))
        );
        assert!(
            windows(&[], "UTC")
                .next_open(utc("2026-12-04T03:00:00Z"))
                .is_some()
        );
    }

    #[test]
    fn bad_windows_and_zones_say_what_is_wrong() {
        let err = |w: &str| {
            Windows::parse(&[w.to_string()], "UTC")
                .unwrap_err()
                .to_string()
        };
        assert!(err("0 2-6 * * *").contains("window 0"));
        assert!(err("Mon-Fry 02:00-06:00").contains("\"Fry\" is not a day"));
        assert!(err("25:00-26:00").contains("not a time"));
        assert!(err("02:00-02:00").contains("same time"));
        assert!(
            Windows::parse(&[], "Mars/Olympus")
                .unwrap_err()
                .to_string()
                .contains("unknown time zone")
        );
    }

    #[test]
    fn seconds_are_allowed_for_short_windows() {
        let now = utc("2026-11-30T10:00:00Z");
        let w = windows(&[range_from(now, 5, 60).as_str()], "UTC");
        assert!(!w.is_open(now));
        assert!(w.is_open(now + Duration::seconds(6)));
        assert_eq!(w.next_open(now), Some(now + Duration::seconds(5)));
    }
}

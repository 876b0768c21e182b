//! Weekly windows: when a grant is open, in the policy's time zone, and the
//! same windows as UTC day+hour pieces for the kernel.
//!
//! The kernel evaluates `meta day` and `meta hour` in UTC (vmgate always runs
//! `nft` with `TZ=UTC`, so `nft` does not shift hours either). A weekly window
//! in local time is therefore converted with the UTC offset in force when the
//! plan is made; the plan records when that offset changes next, and the reload
//! timer recompiles then.

use jiff::Timestamp;
use jiff::civil::{DateTime, Weekday};
use jiff::tz::TimeZone;

/// Seconds in a day.
pub const DAY: i64 = 86_400;
/// Seconds in a week.
pub const WEEK: i64 = 7 * DAY;

/// Day names in nft's order: index 0 is Sunday, as `meta day` counts.
pub const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// The short names the policy accepts, in nft's order.
pub const DAY_SHORT: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A daily time range in seconds since local midnight. `end <= start` means
/// the window crosses midnight and ends on the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Hours {
    /// Opening, seconds after midnight, `0..86400`.
    pub start: u32,
    /// Closing (exclusive), seconds after midnight, `0..=86400`.
    pub end: u32,
}

impl Hours {
    /// Parses `HH:MM-HH:MM` (closing may be `24:00`; a closing at or before the
    /// opening means the window runs past midnight).
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not an hour range HH:MM-HH:MM"))?;
        let start = parse_hhmm(a.trim(), false)?;
        let end = parse_hhmm(b.trim(), true)?;
        if start == end || (start == 0 && end == DAY as u32) {
            if start == end {
                return Err(format!("`{text}` is an empty window"));
            }
            return Err(format!("`{text}` is the whole day"));
        }
        Ok(Self { start, end })
    }

    /// Length of the window in seconds.
    #[must_use]
    pub fn len(&self) -> u32 {
        if self.end > self.start {
            self.end - self.start
        } else {
            DAY as u32 - self.start + self.end
        }
    }

    /// Never true: a parsed range is never empty (kept for clippy's sake).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_hhmm(s: &str, allow_24: bool) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a time HH:MM (00:00 to 23:59, or 24:00 as a closing)");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)) {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

/// Parses a day name (`mon` or `monday`, any case) to nft's index (Sunday = 0).
#[must_use]
pub fn parse_day(s: &str) -> Option<u8> {
    let l = s.to_ascii_lowercase();
    (0..7u8)
        .find(|&i| l == DAY_SHORT[i as usize] || l == DAY_NAMES[i as usize].to_ascii_lowercase())
}

/// When a grant is open: a set of weekdays and an optional daily hour range,
/// both meant in the policy's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Schedule {
    /// Open days, index 0 = Sunday (nft's `meta day` order).
    pub days: [bool; 7],
    /// Daily window; `None` means the whole day.
    pub hours: Option<Hours>,
}

impl Schedule {
    /// Open at all times.
    pub const ALWAYS: Self = Self {
        days: [true; 7],
        hours: None,
    };

    /// True when the schedule never closes.
    #[must_use]
    pub fn is_always(&self) -> bool {
        self.days == [true; 7] && self.hours.is_none()
    }

    /// The open intervals as `(start, length)` in local seconds of the week
    /// (0 = Sunday 00:00); an interval may run past the end of the week.
    #[must_use]
    pub fn local_intervals(&self) -> Vec<(i64, i64)> {
        let (start, len) = match self.hours {
            Some(h) => (i64::from(h.start), i64::from(h.len())),
            None => (0, DAY),
        };
        (0..7)
            .filter(|&d| self.days[d])
            .map(|d| (d as i64 * DAY + start, len))
            .collect()
    }

    /// Is the schedule open at local second-of-week `sow` (0 = Sunday 00:00)?
    #[must_use]
    pub fn contains_local(&self, sow: i64) -> bool {
        self.local_intervals()
            .iter()
            .any(|&(s, len)| (sow - s).rem_euclid(WEEK) < len)
    }

    /// Is the schedule open at instant `t` in time zone `tz`?
    #[must_use]
    pub fn contains(&self, tz: &TimeZone, t: Timestamp) -> bool {
        self.contains_local(local_second_of_week(tz, t))
    }

    /// The open intervals in UTC for a fixed UTC offset (seconds east of UTC),
    /// split at UTC midnight and merged per day.
    #[must_use]
    pub fn utc_pieces(&self, offset_seconds: i64) -> Vec<DayPiece> {
        let mut per_day: [Vec<(u32, u32)>; 7] = Default::default();
        for (s, len) in self.local_intervals() {
            let mut cur = (s - offset_seconds).rem_euclid(WEEK);
            let mut left = len;
            while left > 0 {
                let day = cur / DAY;
                let take = left.min((day + 1) * DAY - cur);
                let from = (cur - day * DAY) as u32;
                per_day[day as usize].push((from, from + take as u32));
                cur = (cur + take).rem_euclid(WEEK);
                left -= take;
            }
        }
        let mut out = Vec::new();
        for (day, ranges) in per_day.iter_mut().enumerate() {
            ranges.sort_unstable();
            let mut merged: Vec<(u32, u32)> = Vec::new();
            for &(a, b) in ranges.iter() {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            for (start, end) in merged {
                out.push(DayPiece {
                    day: day as u8,
                    start,
                    end,
                });
            }
        }
        out
    }

    /// Human form: `mon,tue 08:00-18:00`, `every day`, ...
    #[must_use]
    pub fn describe(&self) -> String {
        let days = if self.days == [true; 7] {
            "every day".to_string()
        } else {
            // Monday first reads more naturally.
            [1, 2, 3, 4, 5, 6, 0]
                .iter()
                .filter(|&&d| self.days[d])
                .map(|&d| DAY_SHORT[d])
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.hours {
            None => days,
            Some(h) => format!("{days} {}-{}", hhmm(h.start), hhmm(h.end)),
        }
    }

    /// The next instant strictly after `after` at which the schedule's open
    /// state changes to `open`, searching two weeks ahead.
    #[must_use]
    pub fn next_edge(&self, tz: &TimeZone, after: Timestamp, open: bool) -> Option<Timestamp> {
        if self.is_always() {
            return None;
        }
        let local = tz.to_datetime(after);
        let mut best: Option<Timestamp> = None;
        for day_offset in -1..15i64 {
            let Ok(date) = local.date().checked_add(jiff::Span::new().days(day_offset)) else {
                continue;
            };
            let wd = date.weekday().to_sunday_zero_offset() as usize;
            if !self.days[wd] {
                continue;
            }
            let (start, len) = match self.hours {
                Some(h) => (i64::from(h.start), i64::from(h.len())),
                None => (0, DAY),
            };
            let edge = if open { start } else { start + len };
            let Ok(dt) = DateTime::from(date).checked_add(jiff::Span::new().seconds(edge)) else {
                continue;
            };
            let Ok(z) = tz.to_ambiguous_zoned(dt).compatible() else {
                continue;
            };
            let t = z.timestamp();
            // Adjacent windows (mon and tue, whole days) do not close in between:
            // only count an edge where the state really changes.
            if t > after
                && self.contains(tz, t) == open
                && self.contains(tz, t - jiff::SignedDuration::from_secs(1)) != open
                && best.is_none_or(|b| t < b)
            {
                best = Some(t);
            }
        }
        best
    }
}

/// One piece of a window on one UTC day: `start..end` seconds after UTC midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct DayPiece {
    /// UTC weekday, 0 = Sunday.
    pub day: u8,
    /// Opening, seconds after UTC midnight.
    pub start: u32,
    /// Closing (exclusive), at most 86400.
    pub end: u32,
}

impl DayPiece {
    /// Covers the whole UTC day (then no `meta hour` match is needed).
    #[must_use]
    pub fn whole_day(&self) -> bool {
        self.start == 0 && self.end == DAY as u32
    }
}

/// Local second of the week (0 = Sunday 00:00) of `t` in `tz`.
#[must_use]
pub fn local_second_of_week(tz: &TimeZone, t: Timestamp) -> i64 {
    let dt = tz.to_datetime(t);
    let wd = i64::from(dt.weekday().to_sunday_zero_offset());
    wd * DAY + i64::from(dt.hour()) * 3600 + i64::from(dt.minute()) * 60 + i64::from(dt.second())
}

/// UTC weekday (0 = Sunday) and second of the day of `t`: what the kernel sees.
#[must_use]
pub fn utc_day_and_second(t: Timestamp) -> (u8, u32) {
    let secs = t.as_second();
    let days = secs.div_euclid(DAY);
    // 1970-01-01 was a Thursday (4).
    let wd = (days + 4).rem_euclid(7) as u8;
    (wd, secs.rem_euclid(DAY) as u32)
}

/// `HH:MM` (or `HH:MM:SS` when seconds are not zero) for seconds after midnight.
#[must_use]
pub fn hhmm(secs: u32) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The weekday of nft's index (0 = Sunday).
#[must_use]
pub fn weekday(index: u8) -> Weekday {
    Weekday::from_sunday_zero_offset(index as i8).unwrap_or(Weekday::Sunday)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(days: &[&str], hours: Option<&str>) -> Schedule {
        let mut d = [false; 7];
        for s in days {
            d[parse_day(s).unwrap() as usize] = true;
        }
        Schedule {
            days: d,
            hours: hours.map(|h| Hours::parse(h).unwrap()),
        }
    }

    #[test]
    fn hour_ranges_parse_and_reject_garbage() {
        assert_eq!(
            Hours::parse("08:00-18:00"),
            Ok(Hours {
                start: 8 * 3600,
                end: 18 * 3600
            })
        );
        assert!(Hours::parse("22:00-06:00").is_ok());
        assert!(Hours::parse("18:00-24:00").is_ok());
        for bad in [
            "8-18",
            "08:00",
            "8:00-18:00",
            "25:00-26:00",
            "08:60-09:00",
            "24:00-01:00",
            "08:00-08:00",
            "00:00-24:00",
        ] {
            assert!(Hours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn berlin_winter_monday_office_hours_are_one_hour_earlier_in_utc() {
        let s = sched(&["mon"], Some("08:00-18:00"));
        assert_eq!(
            s.utc_pieces(3600),
            vec![DayPiece {
                day: 1,
                start: 7 * 3600,
                end: 17 * 3600
            }]
        );
    }

    #[test]
    fn whole_local_days_split_at_utc_midnight_and_adjacent_days_merge() {
        // Monday and Tuesday in UTC+1: Sunday 23:00 to Tuesday 23:00 UTC.
        let s = sched(&["mon", "tue"], None);
        assert_eq!(
            s.utc_pieces(3600),
            vec![
                DayPiece {
                    day: 0,
                    start: 23 * 3600,
                    end: 86400
                },
                DayPiece {
                    day: 1,
                    start: 0,
                    end: 86400
                },
                DayPiece {
                    day: 2,
                    start: 0,
                    end: 23 * 3600
                },
            ]
        );
    }

    #[test]
    fn night_window_runs_into_the_next_day() {
        let s = sched(&["sat"], Some("22:00-02:00"));
        assert!(s.contains_local(6 * DAY + 23 * 3600));
        // Sunday 01:00 belongs to Saturday's night window (week wraps).
        assert!(s.contains_local(3600));
        assert!(!s.contains_local(3 * 3600));
    }

    #[test]
    fn utc_day_of_the_epoch_is_thursday() {
        assert_eq!(utc_day_and_second(Timestamp::UNIX_EPOCH), (4, 0));
    }
}

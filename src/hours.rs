//! Hours in the shops' time zone: which hour is the latest complete one at a given instant, and
//! when a local hour starts in Unix time. The poller, backfill and `fetch` all decide hours
//! here, so that none of them borrows from another.

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The hour a poll at `now` reports: the start (local, in `tz`) of the latest complete hour,
/// with its Unix time. `None` only in the odd case that this local hour does not exist.
pub fn latest_complete_hour(now: DateTime<Utc>, tz: Tz) -> Option<(NaiveDateTime, i64)> {
    let local = now.with_timezone(&tz).naive_local();
    let current = local.date().and_hms_opt(local.hour(), 0, 0)?;
    let hour = current - chrono::Duration::hours(1);
    let start = tz.from_local_datetime(&hour).earliest()?;
    Some((hour, start.timestamp()))
}

/// Unix seconds of the local hour start `hour` in `tz` (the earlier one when the hour repeats;
/// `None` when it does not exist).
pub fn hour_start(hour: NaiveDateTime, tz: Tz) -> Option<i64> {
    tz.from_local_datetime(&hour).earliest().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn latest_complete_hour_is_the_previous_local_hour() {
        let (hour, ts) = latest_complete_hour(utc("2024-05-01T02:30:00Z"), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(hour.to_string(), "2024-05-01 09:00:00");
        assert_eq!(ts, utc("2024-05-01T01:00:00Z").timestamp());
    }

    #[test]
    fn just_after_local_midnight_it_is_yesterdays_23h() {
        // 00:05 in Shanghai is 16:05 UTC the day before.
        let (hour, ts) = latest_complete_hour(utc("2024-05-01T16:05:00Z"), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(hour.to_string(), "2024-05-01 23:00:00");
        assert_eq!(ts, utc("2024-05-01T15:00:00Z").timestamp());
    }

    #[test]
    fn exactly_on_the_hour_the_hour_just_ended_is_complete() {
        let (hour, _) = latest_complete_hour(utc("2024-05-01T02:00:00Z"), chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(hour.to_string(), "2024-05-01 09:00:00");
    }

    #[test]
    fn etc_zones_count_the_other_way() {
        // Etc/GMT+4 is UTC-4.
        let tz: Tz = "Etc/GMT+4".parse().unwrap();
        let (hour, ts) = latest_complete_hour(utc("2024-05-01T12:10:00Z"), tz).unwrap();
        assert_eq!(hour.to_string(), "2024-05-01 07:00:00");
        assert_eq!(ts, utc("2024-05-01T11:00:00Z").timestamp());
    }
}

//! Hours and days in the shops' time zone: which hour is the latest complete one at a given
//! instant, when a local hour or day starts in Unix time, and which local day an instant falls
//! on. The poller, backfill and `fetch` all decide hours here, so that none of them borrows
//! from another.
//!
//! Hours are worked out from instants, not by arithmetic on local wall times, so zones with
//! daylight saving come out right: on a spring-forward day the hour that does not exist
//! (02:00 in Europe/Berlin) is never reported, and on a fall-back day the hour that occurs
//! twice is reported twice, once for each of its start instants. A local hour is named by its
//! naive wall time (the gateway labels its rows that way) together with its start instant.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// The instant the local hour holding `now` began in `tz`: `now` less its local minutes,
/// seconds and fraction.
pub(crate) fn current_hour_start(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let local = now.with_timezone(&tz);
    let into = chrono::Duration::seconds(i64::from(local.minute()) * 60 + i64::from(local.second()))
        + chrono::Duration::nanoseconds(i64::from(local.nanosecond()));
    now - into
}

/// The hour a poll at `now` reports: the start (local, in `tz`) of the latest complete hour,
/// with its Unix time. The hour before the one in progress, found by instants: on a
/// spring-forward day the hour after the gap follows the one before it, and on a fall-back day
/// the repeated hour is reported twice, with two different start instants. `None` only for an
/// instant at the very edge of the representable range.
pub fn latest_complete_hour(now: DateTime<Utc>, tz: Tz) -> Option<(NaiveDateTime, i64)> {
    let previous = current_hour_start(now, tz).checked_sub_signed(chrono::Duration::hours(1))?;
    // Where the clocks move by less than an hour (Australia/Lord_Howe) the instant an hour
    // back need not be a local hour start: take the start of its hour.
    let start = current_hour_start(previous, tz);
    Some((start.with_timezone(&tz).naive_local(), start.timestamp()))
}

/// Unix seconds of the local hour start `hour` in `tz` (the earlier one when the hour repeats;
/// `None` when it does not exist).
pub fn hour_start(hour: NaiveDateTime, tz: Tz) -> Option<i64> {
    tz.from_local_datetime(&hour).earliest().map(|t| t.timestamp())
}

/// The local date of `now` in `tz`.
pub fn local_day(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// Unix seconds of the first instant of the local day `date` in `tz`: its midnight (the earlier
/// one if midnight repeats), or, in a zone whose clocks jump over midnight that day, the end of
/// the jump. `None` when the zone skipped the whole date.
pub fn day_start(date: NaiveDate, tz: Tz) -> Option<i64> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    if let Some(t) = tz.from_local_datetime(&midnight).earliest() {
        return Some(t.timestamp());
    }
    // Midnight falls in a gap: the day begins at the first instant whose local time is at or
    // after midnight. Every offset is within ±15 h, so that instant lies between these bounds,
    // and around a gap local time only moves forward.
    let is_on_or_after =
        |t: i64| DateTime::from_timestamp(t, 0).is_some_and(|t| t.with_timezone(&tz).naive_local() >= midnight);
    let naive = midnight.and_utc().timestamp();
    let (mut before, mut after) = (naive - 15 * 3600, naive + 15 * 3600);
    if is_on_or_after(before) || !is_on_or_after(after) {
        return None;
    }
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if is_on_or_after(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    let first = DateTime::from_timestamp(after, 0)?;
    (first.with_timezone(&tz).date_naive() == date).then_some(after)
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

    /// What `latest_complete_hour` reports every 30 minutes from `from` to `to` (UTC), in
    /// `tz`, each instant checked on its own: the hour is complete, and it is the latest one.
    fn walk(tz: Tz, from: &str, to: &str) -> Vec<(String, i64)> {
        let (mut now, to) = (utc(from), utc(to));
        let mut seen: Vec<(String, i64)> = Vec::new();
        while now <= to {
            let (hour, start) = latest_complete_hour(now, tz).unwrap();
            let ago = now.timestamp() - start;
            assert!((3600..7200).contains(&ago), "{now}: {hour} began {ago} s ago");
            assert_eq!(hour.minute(), 0, "{now}: {hour}");
            let local = DateTime::from_timestamp(start, 0).unwrap().with_timezone(&tz);
            assert_eq!(local.naive_local(), hour, "{now}: the start instant is the hour's");
            if seen.last() != Some(&(hour.to_string(), start)) {
                seen.push((hour.to_string(), start));
            }
            now += chrono::Duration::minutes(30);
        }
        // Real time: one hour after the other, none skipped, none twice.
        for pair in seen.windows(2) {
            assert_eq!(pair[1].1 - pair[0].1, 3600, "{pair:?}");
        }
        seen
    }

    fn expected(hours: &[(&str, &str)]) -> Vec<(String, i64)> {
        hours
            .iter()
            .map(|(hour, start)| (hour.to_string(), utc(start).timestamp()))
            .collect()
    }

    #[test]
    fn on_the_spring_forward_day_the_missing_hour_is_never_reported() {
        // Europe/Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let seen = walk(
            chrono_tz::Europe::Berlin,
            "2026-03-28T22:30:00Z", // 23:30 CET
            "2026-03-29T03:30:00Z", // 05:30 CEST
        );
        let want = expected(&[
            ("2026-03-28 22:00:00", "2026-03-28T21:00:00Z"),
            ("2026-03-28 23:00:00", "2026-03-28T22:00:00Z"),
            ("2026-03-29 00:00:00", "2026-03-28T23:00:00Z"),
            ("2026-03-29 01:00:00", "2026-03-29T00:00:00Z"),
            ("2026-03-29 03:00:00", "2026-03-29T01:00:00Z"),
            ("2026-03-29 04:00:00", "2026-03-29T02:00:00Z"),
        ]);
        assert_eq!(seen, want);
        // At 03:30 CEST the hour just ended is 01:00 CET, not the 02:00 that never was.
        let (hour, start) = latest_complete_hour(utc("2026-03-29T01:30:00Z"), chrono_tz::Europe::Berlin).unwrap();
        assert_eq!((hour.to_string(), start), want[3]);
        for (hour, start) in &want {
            let naive = NaiveDateTime::parse_from_str(hour, "%Y-%m-%d %H:%M:%S").unwrap();
            assert_eq!(hour_start(naive, chrono_tz::Europe::Berlin), Some(*start));
        }
        let missing = NaiveDateTime::parse_from_str("2026-03-29 02:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(hour_start(missing, chrono_tz::Europe::Berlin), None);
    }

    #[test]
    fn on_the_fall_back_day_the_repeated_hour_is_reported_for_each_start() {
        // Europe/Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
        let seen = walk(
            chrono_tz::Europe::Berlin,
            "2026-10-24T21:30:00Z", // 23:30 CEST
            "2026-10-25T04:30:00Z", // 05:30 CET
        );
        let want = expected(&[
            ("2026-10-24 22:00:00", "2026-10-24T20:00:00Z"),
            ("2026-10-24 23:00:00", "2026-10-24T21:00:00Z"),
            ("2026-10-25 00:00:00", "2026-10-24T22:00:00Z"),
            ("2026-10-25 01:00:00", "2026-10-24T23:00:00Z"),
            ("2026-10-25 02:00:00", "2026-10-25T00:00:00Z"),
            ("2026-10-25 02:00:00", "2026-10-25T01:00:00Z"),
            ("2026-10-25 03:00:00", "2026-10-25T02:00:00Z"),
            ("2026-10-25 04:00:00", "2026-10-25T03:00:00Z"),
        ]);
        assert_eq!(seen, want);
        // `hour_start` of the repeated hour is its first start.
        let twice = NaiveDateTime::parse_from_str("2026-10-25 02:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(hour_start(twice, chrono_tz::Europe::Berlin), Some(want[4].1));
    }

    #[test]
    fn a_half_hour_offset_reports_whole_local_hours() {
        // Asia/Kolkata is UTC+5:30 all year: local hours start at half past in UTC.
        let seen = walk(chrono_tz::Asia::Kolkata, "2024-05-01T00:00:00Z", "2024-05-01T03:00:00Z");
        let want = expected(&[
            ("2024-05-01 04:00:00", "2024-04-30T22:30:00Z"),
            ("2024-05-01 05:00:00", "2024-04-30T23:30:00Z"),
            ("2024-05-01 06:00:00", "2024-05-01T00:30:00Z"),
            ("2024-05-01 07:00:00", "2024-05-01T01:30:00Z"),
        ]);
        assert_eq!(seen, want);
    }

    #[test]
    fn shanghai_reports_every_hour_of_the_day_once() {
        let seen = walk(
            chrono_tz::Asia::Shanghai,
            "2024-04-30T15:30:00Z",
            "2024-05-01T16:00:00Z",
        );
        // 23:30 on 30 April to midnight on 2 May: 22:00 on 30 April to 23:00 on 1 May.
        assert_eq!(seen.len(), 26);
        assert_eq!(seen[0], expected(&[("2024-04-30 22:00:00", "2024-04-30T14:00:00Z")])[0]);
        assert_eq!(
            seen[25],
            expected(&[("2024-05-01 23:00:00", "2024-05-01T15:00:00Z")])[0]
        );
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_local_day_and_its_first_instant() {
        let berlin = chrono_tz::Europe::Berlin;
        assert_eq!(local_day(utc("2026-03-28T23:30:00Z"), berlin), date("2026-03-29"));
        assert_eq!(local_day(utc("2026-03-28T22:59:59Z"), berlin), date("2026-03-28"));
        assert_eq!(
            local_day(utc("2024-05-01T16:05:00Z"), chrono_tz::Asia::Shanghai),
            date("2024-05-02")
        );
        // The transition days are 23 and 25 hours long.
        let start = |d: &str, tz: Tz| day_start(date(d), tz).unwrap();
        assert_eq!(start("2026-03-29", berlin), utc("2026-03-28T23:00:00Z").timestamp());
        assert_eq!(start("2026-03-30", berlin) - start("2026-03-29", berlin), 23 * 3600);
        assert_eq!(start("2026-10-25", berlin), utc("2026-10-24T22:00:00Z").timestamp());
        assert_eq!(start("2026-10-26", berlin) - start("2026-10-25", berlin), 25 * 3600);
        assert_eq!(
            start("2024-05-01", chrono_tz::Asia::Kolkata),
            utc("2024-04-30T18:30:00Z").timestamp()
        );
        // America/Santiago jumps from 00:00 to 01:00 on 2024-09-08: the day begins at 01:00 -03.
        let santiago = chrono_tz::America::Santiago;
        assert_eq!(start("2024-09-08", santiago), utc("2024-09-08T04:00:00Z").timestamp());
        assert_eq!(start("2024-09-07", santiago), utc("2024-09-07T04:00:00Z").timestamp());
        // America/Havana falls back from 01:00 to 00:00 on 2024-11-03: the first midnight.
        assert_eq!(
            start("2024-11-03", chrono_tz::America::Havana),
            utc("2024-11-03T04:00:00Z").timestamp()
        );
        // Pacific/Apia skipped 2011-12-30 altogether.
        assert_eq!(day_start(date("2011-12-30"), chrono_tz::Pacific::Apia), None);
        assert_eq!(
            start("2011-12-31", chrono_tz::Pacific::Apia),
            utc("2011-12-30T10:00:00Z").timestamp()
        );
    }
}

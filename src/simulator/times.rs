//! The gateway's time vocabulary, as the simulator reads it: the zone its wall clock runs in
//! (Asia/Shanghai), the `_timestamp` format (`yyyyMMddHHmmss`, exactly 14 digits), and the
//! business window `startTime`..`endTime`, which must be whole days (`yyyy-MM-dd 00:00:00` ..
//! `yyyy-MM-dd 23:59:59`, at most [`MAX_DAYS`]) and is answered with one row per hour of the
//! days within `starthour`/`endhour` ([`days`]), or one per day ([`each_day`]). Defined
//! here, not borrowed from the client, so that a client that formats a time wrongly is refused.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use chrono_tz::Tz;

use super::codes::Refusal;

/// The zone the gateway's wall clock (and `_timestamp`) runs in.
pub(crate) const GATEWAY_TZ: Tz = chrono_tz::Asia::Shanghai;
/// `_timestamp`: `yyyyMMddHHmmss`.
pub(crate) const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M%S";
/// `startTime`, `endTime` and a row's `time`: `yyyy-MM-dd HH:mm:ss`.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// The longest window (in days) one call may ask for.
const MAX_DAYS: i64 = 31;

/// `yyyyMMddHHmmss`, exactly 14 digits.
pub(crate) fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT).ok()
}

/// The gateway's whole-day rule: `yyyy-MM-dd 00:00:00` .. `yyyy-MM-dd 23:59:59`, end date not
/// before start date, at most [`MAX_DAYS`] days.
pub(crate) fn whole_days(start: Option<&str>, end: Option<&str>) -> Result<(NaiveDate, NaiveDate), Refusal> {
    let start_s = start.ok_or_else(|| Refusal::system("startTime must not be empty"))?;
    let end_s = end.ok_or_else(|| Refusal::system("endTime must not be empty"))?;
    let start = NaiveDateTime::parse_from_str(start_s.trim(), TIME_FORMAT)
        .map_err(|_| Refusal::system(format!("startTime {start_s:?} is not yyyy-MM-dd HH:mm:ss")))?;
    let end = NaiveDateTime::parse_from_str(end_s.trim(), TIME_FORMAT)
        .map_err(|_| Refusal::system(format!("endTime {end_s:?} is not yyyy-MM-dd HH:mm:ss")))?;
    if start.time() != NaiveTime::MIN {
        return Err(Refusal::system(format!(
            "startTime {start_s:?} must be a whole day (yyyy-MM-dd 00:00:00)"
        )));
    }
    if end.time() != NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN) {
        return Err(Refusal::system(format!(
            "endTime {end_s:?} must be a whole day (yyyy-MM-dd 23:59:59)"
        )));
    }
    let (start, end) = (start.date(), end.date());
    if end < start {
        return Err(Refusal::system("endTime is before startTime"));
    }
    if (end - start).num_days() + 1 > MAX_DAYS {
        return Err(Refusal::system(format!("at most {MAX_DAYS} days can be asked at once")));
    }
    Ok((start, end))
}

/// The hours of each day a shops call answers: `starthour` (default 0) to `endhour` (default
/// 24), `endhour` itself included or not as the gateway is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HourWindow {
    pub(crate) first: u32,
    /// The last hour answered (at most 23).
    pub(crate) last: u32,
}

impl HourWindow {
    /// Every hour of the day.
    pub(crate) const WHOLE_DAY: HourWindow = HourWindow { first: 0, last: 23 };
    /// No hour at all (its first hour is after its last).
    const EMPTY: HourWindow = HourWindow { first: 1, last: 0 };

    /// Reads `starthour`/`endhour` (whole numbers 0–24, start not after end); absent means
    /// the defaults 0 and 24.
    pub(crate) fn parse(start: Option<&str>, end: Option<&str>, end_inclusive: bool) -> Result<Self, Refusal> {
        let hour = |name: &str, value: Option<&str>, default: u32| match value {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(h) if h <= 24 => Ok(h),
                _ => Err(Refusal::system(format!("{name} {v:?} is not an hour from 0 to 24"))),
            },
        };
        let first = hour("starthour", start, 0)?;
        let end = hour("endhour", end, 24)?;
        if end < first {
            return Err(Refusal::system("endhour is before starthour"));
        }
        let last = if end_inclusive { end } else { end.saturating_sub(1) };
        if end == first && !end_inclusive || first > 23 {
            return Ok(HourWindow::EMPTY);
        }
        Ok(HourWindow {
            first,
            last: last.min(23),
        })
    }
}

/// Every hour start of the days `start..=end` within `window`.
pub(crate) fn days(start: NaiveDate, end: NaiveDate, window: HourWindow) -> impl Iterator<Item = NaiveDateTime> {
    start
        .iter_days()
        .take_while(move |d| *d <= end)
        .flat_map(move |d| (window.first..=window.last).filter_map(move |h| d.and_hms_opt(h, 0, 0)))
}

/// Every date of `start..=end`.
pub(crate) fn each_day(start: NaiveDate, end: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    start.iter_days().take_while(move |d| *d <= end)
}

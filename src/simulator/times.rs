//! The gateway's time vocabulary, as the simulator reads it: the zone its wall clock runs in
//! (Asia/Shanghai), the `_timestamp` format (`yyyyMMddHHmmss`, exactly 14 digits), and the
//! business window `startTime`..`endTime`, which must be whole days (`yyyy-MM-dd 00:00:00` ..
//! `yyyy-MM-dd 23:59:59`, at most [`MAX_DAYS`]) and is answered with one row per hour. Defined
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

/// Every hour start of the days `start..=end`.
pub(crate) fn days(start: NaiveDate, end: NaiveDate) -> impl Iterator<Item = NaiveDateTime> {
    start
        .iter_days()
        .take_while(move |d| *d <= end)
        .flat_map(|d| (0..24u32).filter_map(move |h| d.and_hms_opt(h, 0, 0)))
}

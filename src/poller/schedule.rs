//! When the next poll is due, and which targets this replica polls: the timing and sharing
//! rules of the poller, kept apart from the polling itself so they can be tested as plain
//! functions.

use chrono::{DateTime, Utc};

use crate::client::{batch, Packing};
use crate::config::Config;
use crate::hours::{current_hour_start, latest_complete_hour};
use crate::model::{DeviceTarget, TargetId};

/// How long to wait, after a poll that started `since_start` ago and finished at `now`, for
/// the next one: until the interval is over, or until the priority poll of the next hour
/// (`hour_delay` into it) if that comes first — at once if that poll is already due.
/// `refreshed` is the start (Unix seconds) of the hour whose priority poll last ran: an hour
/// is known by its start instant, so the second 02:00 of a fall-back day is a new hour. The
/// next hour begins an hour after this one, in real time, whatever the clocks do.
pub(crate) fn next_poll_in(
    config: &Config,
    now: DateTime<Utc>,
    refreshed: Option<i64>,
    since_start: std::time::Duration,
) -> std::time::Duration {
    let tz = config.timezone;
    let delay = chrono::Duration::from_std(config.hour_delay).unwrap_or_default();
    let this_hour = current_hour_start(now, tz);
    let until = |t: Option<DateTime<Utc>>| t.and_then(|t| (t - now).to_std().ok()).unwrap_or_default();
    let interval_left = config.poll_interval.saturating_sub(since_start);
    let due_hour = latest_complete_hour(now, tz).map(|(_, start)| start);
    if due_hour.is_some() && refreshed != due_hour {
        // The current hour's priority poll has not run yet.
        return until(this_hour.checked_add_signed(delay)).min(interval_left);
    }
    let next_hour = this_hour.checked_add_signed(chrono::Duration::hours(1));
    until(next_hour.and_then(|t| t.checked_add_signed(delay))).min(interval_left)
}

/// What one refresh of this replica's targets asks of the gateway: its calls, and the least
/// time they take at the configured request rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshCost {
    /// Shop batches (as the first refresh asks them: each organisation alone, its size not
    /// yet known) twice, for the hour and for the day figures, plus the devices due in an hour
    /// (a `device_poll_interval`-th of them); the poller publishes the cost of each later
    /// refresh.
    pub calls: usize,
    /// `calls ÷ requests_per_second`: no refresh can be faster.
    pub seconds: f64,
}

impl RefreshCost {
    /// The cost of refreshing `config`'s targets (this shard's, when sharded).
    pub fn of(config: &Config) -> Self {
        let (shops, devices) = owned_targets(config);
        let shop_calls = batch(&shops, [], Packing::of(&config.gateway), 1).len();
        let every = (config.device_poll_interval.as_secs() / 3600).max(1) as usize;
        let calls = 2 * shop_calls + devices.len().div_ceil(every);
        RefreshCost {
            calls,
            seconds: calls as f64 / config.gateway.requests_per_second,
        }
    }

    /// True when a refresh needs longer than the hour it describes: the next hour is due before
    /// this one is complete.
    pub fn exceeds_the_hour(&self) -> bool {
        self.seconds > 3600.0
    }

    /// What to do about a refresh that exceeds the hour.
    pub const REMEDIES: &'static str = "raise gateway.requests_per_second (a rate agreed with the vendor), \
        split the targets over several exporters (--shard INDEX/TOTAL), \
        or poll devices less often (device_poll_interval: 2h or more; no hour is lost)";
}

/// The shop ids and devices this replica polls (all of them without sharding).
pub(crate) fn owned_targets(config: &Config) -> (Vec<TargetId>, Vec<&DeviceTarget>) {
    let owns = |key: &str| config.sharding.is_none_or(|s| s.owns(key));
    let shops = config
        .shops
        .iter()
        .map(|s| s.id.clone())
        .filter(|id| owns(&id.to_string()))
        .collect();
    let devices = config.devices.iter().filter(|d| owns(&d.mac)).collect();
    (shops, devices)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::{DeviceTarget, TargetId};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    pub(in crate::poller) fn config(interval_secs: u64, delay_secs: u64) -> Config {
        let gateway =
            crate::config::GatewayConfig::new("http://127.0.0.1:1/m.api".parse().unwrap(), "k".into(), "s".into());
        Config {
            gateway,
            timezone: chrono_tz::Asia::Shanghai,
            poll_interval: std::time::Duration::from_secs(interval_secs),
            stale_after: crate::config::DEFAULT_STALE_AFTER,
            hour_delay: std::time::Duration::from_secs(delay_secs),
            device_poll_interval: std::time::Duration::from_secs(3600),
            max_catch_up_hours: 6,
            baseline: crate::config::BaselineConfig { weeks: 0 },
            sharding: None,
            calendar: Default::default(),
            shops: Default::default(),
            shop_overrides: Default::default(),
            devices: vec![],
        }
    }

    fn secs(d: std::time::Duration) -> u64 {
        d.as_secs()
    }

    #[test]
    fn the_next_poll_waits_for_the_interval_or_the_new_hour() {
        let c = config(300, 60);
        // 14:30 local, the 13:00 refresh done, the poll took 10 s: 290 s of interval left.
        let now = utc("2024-05-01T06:30:00Z");
        let done = Some(latest_complete_hour(now, c.timezone).unwrap().1);
        assert_eq!(
            secs(next_poll_in(&c, now, done, std::time::Duration::from_secs(10))),
            290
        );
        // 14:58: the new hour (15:00 + 1 min delay) comes before the interval ends.
        let now = utc("2024-05-01T06:58:00Z");
        assert_eq!(
            secs(next_poll_in(&c, now, done, std::time::Duration::from_secs(0))),
            180
        );
    }

    #[test]
    fn a_pending_refresh_waits_only_for_the_hour_delay() {
        let c = config(3600, 60);
        let refreshed = Some(latest_complete_hour(utc("2024-05-01T06:30:00Z"), c.timezone).unwrap().1);
        // 15:00:20 local: the 14:00 hour is due but not refreshed; 40 s of delay left.
        let now = utc("2024-05-01T07:00:20Z");
        assert_eq!(
            secs(next_poll_in(&c, now, refreshed, std::time::Duration::from_secs(0))),
            40
        );
        // 15:02: overdue, poll at once.
        let now = utc("2024-05-01T07:02:00Z");
        assert_eq!(
            secs(next_poll_in(&c, now, refreshed, std::time::Duration::from_secs(0))),
            0
        );
    }

    #[test]
    fn the_next_hour_is_an_hour_of_real_time_across_daylight_saving_changes() {
        let mut c = config(3600, 60);
        c.timezone = chrono_tz::Europe::Berlin;
        let start = |now: &str| latest_complete_hour(utc(now), c.timezone).map(|(_, s)| s);
        let wait =
            |now: &str, refreshed: Option<i64>| secs(next_poll_in(&c, utc(now), refreshed, std::time::Duration::ZERO));
        // 2026-03-29, 01:30 CET, 00:00 refreshed: the next hour is 03:00 CEST, 30 minutes away
        // (there is no 02:00 to wait for, and none to poll at once).
        let refreshed = start("2026-03-29T00:30:00Z");
        assert_eq!(wait("2026-03-29T00:30:00Z", refreshed), 1800 + 60);
        // 2026-10-25, 02:30 CEST, 01:00 refreshed: the next hour is 02:00 CET, 30 minutes away.
        let refreshed = start("2026-10-25T00:30:00Z");
        assert_eq!(wait("2026-10-25T00:30:00Z", refreshed), 1800 + 60);
        // 02:30 CET, the first 02:00 refreshed: the second one is next, at 03:00 CET.
        let first = start("2026-10-25T01:30:00Z");
        assert_eq!(first, Some(utc("2026-10-25T00:00:00Z").timestamp()));
        assert_eq!(wait("2026-10-25T01:30:00Z", first), 1800 + 60);
        // 03:00:20 CET: the second 02:00 is due and not refreshed although the first one was.
        assert_eq!(wait("2026-10-25T02:00:20Z", first), 40);
        let second = start("2026-10-25T02:00:20Z");
        assert_eq!(second, Some(utc("2026-10-25T01:00:00Z").timestamp()));
        assert_eq!(wait("2026-10-25T02:00:20Z", second), 3600, "the interval ends first");
    }

    /// `c` polling the organisations `orgs`.
    pub(in crate::poller) fn with_orgs(mut c: Config, orgs: impl IntoIterator<Item = u64>) -> Config {
        c.shops = orgs
            .into_iter()
            .map(|o| crate::config::ShopTarget::new(TargetId::Org(o)))
            .collect();
        c
    }

    /// `c` polling the shops `S_1` to `S_<shops>` and a device for each of `macs`.
    fn with_targets(mut c: Config, shops: u64, macs: impl Iterator<Item = String>) -> Config {
        c.shops = (1..=shops)
            .map(|i| crate::config::ShopTarget::new(TargetId::Shop(i)))
            .collect();
        c.devices = macs
            .map(|mac| DeviceTarget {
                mac,
                name: None,
                shop_id: None,
            })
            .collect();
        c
    }

    #[test]
    fn sharded_replicas_split_the_calls() {
        let mut c = with_targets(config(300, 60), 100, (0..30u64).map(|i| format!("d47c449060{i:02x}")));
        c.gateway.max_ids_per_request = 10;
        assert_eq!(RefreshCost::of(&c).calls, 2 * 10 + 30, "hours and day figures, devices");
        let mut shops = 0;
        let mut devices = 0;
        for index in 0..3 {
            c.sharding = Some(crate::config::Shard::new(index, 3).unwrap());
            let (s, d) = owned_targets(&c);
            shops += s.len();
            devices += d.len();
        }
        assert_eq!((shops, devices), (100, 30), "every target in exactly one shard");
    }

    #[test]
    fn a_refresh_costs_its_calls_at_the_configured_rate() {
        let mut c = with_targets(config(300, 60), 120, (0..20_000u64).map(|i| format!("0a{i:010x}")));
        let cost = RefreshCost::of(&c);
        // 120 shop ids in batches of 50: 3 calls, and 3 for the day figures; 20,000 devices:
        // one call each; at 5/s.
        assert_eq!(cost.calls, 6 + 20_000);
        assert!((cost.seconds - 20_006.0 / 5.0).abs() < 1e-9);
        assert!(cost.exceeds_the_hour());
        c.device_poll_interval = std::time::Duration::from_secs(2 * 3600);
        assert_eq!(RefreshCost::of(&c).calls, 6 + 10_000, "half the devices each hour");
        c.device_poll_interval = std::time::Duration::from_secs(3600);
        c.gateway.requests_per_second = 10.0;
        c.sharding = Some(crate::config::Shard::new(0, 2).unwrap());
        let half = RefreshCost::of(&c);
        assert!(half.calls < 12_000 && half.calls > 8_000, "{half:?}");
        assert!(!half.exceeds_the_hour(), "{half:?}");
    }
}

//! The gateway's last hour, for the status page: requests and failed requests by error label,
//! counted per minute in a ring of 60 buckets. The client records every finished request here
//! (through [`crate::metrics::ApiMetrics`]) as it counts it in `opretail_api_requests_total`;
//! the counters there only ever grow, so "in the last hour" needs a memory of its own. Fixed
//! size: 60 buckets, each with at most [`MAX_CODES`] labels (more fold into `other`).
//! It also keeps the name the gateway's answer gave each error code (`stat.codename`), as
//! last seen, for codes the vendor's pages do not document; at most [`MAX_NAMES`] codes.
//!
//! Minutes are counted on the monotonic clock from the ring's creation: the last hour is an
//! hour of real time, whatever the wall clock (or a test's pinned clock) says.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Buckets kept: one per minute of the last hour.
const MINUTES: usize = 60;
/// Distinct error labels kept per minute; further ones are counted as `other`.
const MAX_CODES: usize = 16;
/// Error codes whose gateway-given names are kept; names of further codes are not.
const MAX_NAMES: usize = 64;

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// The minute (since the ring began) this bucket counts; stale buckets are reset on use.
    minute: u64,
    requests: u64,
    errors: BTreeMap<String, u64>,
}

/// Requests and errors of the last hour, per minute.
#[derive(Debug)]
pub(crate) struct RecentCalls {
    began: Instant,
    buckets: Mutex<Vec<Bucket>>,
    /// error label → the name the gateway's answer gave it, as last seen
    names: Mutex<BTreeMap<String, String>>,
}

impl Default for RecentCalls {
    fn default() -> Self {
        RecentCalls {
            began: Instant::now(),
            buckets: Mutex::new(vec![Bucket::default(); MINUTES]),
            names: Mutex::new(BTreeMap::new()),
        }
    }
}

/// What the last hour adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LastHour {
    pub(crate) requests: u64,
    /// Failed requests by error label (the `code` of `opretail_api_errors_total`).
    pub(crate) errors: BTreeMap<String, u64>,
    /// The names the gateway's answers gave the labels of `errors`, where they gave one.
    pub(crate) names: BTreeMap<String, String>,
}

impl RecentCalls {
    fn minute_now(&self) -> u64 {
        self.began.elapsed().as_secs() / 60
    }

    /// Counts one finished request; `error` is its label when it failed.
    pub(crate) fn record(&self, error: Option<&str>) {
        self.record_at(self.minute_now(), error);
    }

    fn record_at(&self, minute: u64, error: Option<&str>) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(bucket) = buckets.get_mut((minute % MINUTES as u64) as usize) else {
            return;
        };
        if bucket.minute != minute || bucket.requests == 0 {
            *bucket = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        bucket.requests += 1;
        if let Some(label) = error {
            let key = if bucket.errors.contains_key(label) || bucket.errors.len() < MAX_CODES {
                label
            } else {
                "other"
            };
            *bucket.errors.entry(key.to_string()).or_insert(0) += 1;
        }
    }

    /// Remembers `name` as what the gateway calls the error label `label` (its answer's
    /// `stat.codename`, already made printable); an empty name is not one.
    pub(crate) fn name(&self, label: &str, name: &str) {
        if name.is_empty() {
            return;
        }
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = names.get_mut(label) {
            if known != name {
                *known = name.to_string();
            }
        } else if names.len() < MAX_NAMES {
            names.insert(label.to_string(), name.to_string());
        }
    }

    /// The sums of the last 60 minutes (this one included).
    pub(crate) fn last_hour(&self) -> LastHour {
        self.last_hour_at(self.minute_now())
    }

    fn last_hour_at(&self, minute: u64) -> LastHour {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sum = LastHour::default();
        let oldest = minute.saturating_sub(MINUTES as u64 - 1);
        for b in buckets
            .iter()
            .filter(|b| b.requests > 0 && (oldest..=minute).contains(&b.minute))
        {
            sum.requests += b.requests;
            for (label, n) in &b.errors {
                *sum.errors.entry(label.clone()).or_insert(0) += n;
            }
        }
        let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        sum.names = sum
            .errors
            .keys()
            .filter_map(|label| Some((label.clone(), names.get(label)?.clone())))
            .collect();
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_hour_sums_sixty_minutes_and_forgets_older_ones() {
        let recent = RecentCalls::default();
        recent.record_at(0, None);
        recent.record_at(0, Some("7"));
        recent.record_at(30, Some("http_502"));
        recent.record_at(59, Some("7"));
        let hour = recent.last_hour_at(59);
        assert_eq!(hour.requests, 4);
        assert_eq!(hour.errors.get("7"), Some(&2));
        assert_eq!(hour.errors.get("http_502"), Some(&1));
        assert_eq!(hour.errors.values().sum::<u64>(), 3);
        // Minute 60 reuses minute 0's bucket: minute 0 is an hour ago.
        recent.record_at(60, None);
        let hour = recent.last_hour_at(60);
        assert_eq!((hour.requests, hour.errors.get("7")), (3, Some(&1)));
        // Two hours of silence: nothing left.
        assert_eq!(recent.last_hour_at(200), LastHour::default());
    }

    #[test]
    fn the_gateways_names_of_the_hours_codes_are_kept_and_bounded() {
        let recent = RecentCalls::default();
        recent.record_at(1, Some("400003"));
        recent.record_at(1, Some("7"));
        recent.name("400003", "ID_NOT_ALLOWED");
        recent.name("7", "");
        recent.name("9", "NOT_IN_THE_HOUR");
        let hour = recent.last_hour_at(1);
        assert_eq!(
            hour.names,
            BTreeMap::from([("400003".to_string(), "ID_NOT_ALLOWED".to_string())]),
            "named codes of the hour only; an empty name is none"
        );
        recent.name("400003", "RENAMED");
        assert_eq!(recent.last_hour_at(1).names["400003"], "RENAMED", "as last seen");
        for code in 0..200 {
            recent.name(&format!("x{code}"), "N");
        }
        assert_eq!(
            recent.names.lock().unwrap().len(),
            MAX_NAMES,
            "a gateway inventing codes cannot grow the map"
        );
        assert_eq!(
            recent.last_hour_at(1).names["400003"],
            "RENAMED",
            "a known code is still renamed"
        );
    }

    #[test]
    fn labels_beyond_the_cap_fold_into_other() {
        let recent = RecentCalls::default();
        for code in 0..40 {
            recent.record_at(5, Some(&code.to_string()));
        }
        let hour = recent.last_hour_at(5);
        assert_eq!(hour.errors.len(), MAX_CODES + 1);
        assert_eq!(hour.errors.get("other"), Some(&(40 - MAX_CODES as u64)));
        assert_eq!(hour.errors.values().sum::<u64>(), 40);
    }
}

//! The status board: one row per configured target as the last round left it (up or down, last
//! success, last attempt, last error), sorted failing first, with the newest snapshot the
//! values are read from. The poller replaces the rows after every round
//! ([`StatusBoard::record`]); a page takes the current [`Table`] (an `Arc`, never a lock held
//! while rendering). Targets no longer configured vanish with the round that no longer polls
//! them: the rows are those of the snapshot's targets, nothing else.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::{Kind, SharedError, TargetError};
use crate::model::{Clock, DeviceDayValues, DeviceValues, ShopDayValues, ShopValues, Snapshot, TargetId};

/// What one round saw of its calls, gathered before its answers are merged.
#[derive(Debug, Default)]
pub(crate) struct RoundSeen {
    /// Unix seconds of the round's start (what `last_success` is stamped with).
    pub(crate) now: f64,
    /// The first round for a new hour (a full refresh).
    pub(crate) priority: bool,
    /// The ids (`S_…`, `O_…`) and macs a call of the round asked.
    pub(crate) attempted: HashSet<String>,
    /// The error of the call that asked each id or mac, when it failed.
    pub(crate) failures: HashMap<String, SharedError>,
}

/// Counts of one hour or one day, as the page shows them (`None`: not sent).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Figures {
    pub(crate) walk_in: Option<f64>,
    pub(crate) walk_out: Option<f64>,
    pub(crate) passing: Option<f64>,
    pub(crate) outside: Option<f64>,
    /// A ratio 0–1 (shops only).
    pub(crate) walk_in_rate: Option<f64>,
}

impl Figures {
    fn shop_hour(v: &ShopValues) -> Self {
        Figures {
            walk_in: v.walk_in,
            walk_out: v.walk_out,
            passing: v.passing,
            outside: v.outside,
            walk_in_rate: v.walk_in_rate,
        }
    }

    fn shop_day(v: &ShopDayValues) -> Self {
        Figures {
            walk_in: v.walk_in_today,
            walk_out: v.walk_out_today,
            passing: v.passing_today,
            outside: v.outside_today,
            walk_in_rate: v.walk_in_rate_today,
        }
    }

    fn device_hour(v: &DeviceValues) -> Self {
        Figures {
            walk_in: v.walk_in,
            walk_out: v.walk_out,
            ..Figures::default()
        }
    }

    fn device_day(v: &DeviceDayValues) -> Self {
        Figures {
            walk_in: v.walk_in_today,
            walk_out: v.walk_out_today,
            ..Figures::default()
        }
    }

    /// Adds the counts of `other` (an organisation's sums; a rate does not add up).
    fn add(&mut self, other: &Figures) {
        let sum = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
        self.walk_in = sum(self.walk_in, other.walk_in);
        self.walk_out = sum(self.walk_out, other.walk_out);
        self.passing = sum(self.passing, other.passing);
        self.outside = sum(self.outside, other.outside);
    }
}

/// An organisation's figures: the sums over the shops its last answer named.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct OrgFigures {
    pub(crate) shops: usize,
    /// The oldest data hour among its shops (Unix start).
    pub(crate) data_hour: Option<i64>,
    pub(crate) hour: Figures,
    pub(crate) today: Figures,
}

/// One configured target as the last round left it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) kind: Kind,
    /// `S_…`, `O_…` or the normalised mac.
    pub(crate) id: String,
    pub(crate) up: bool,
    /// Unix seconds.
    pub(crate) last_success: Option<f64>,
    pub(crate) last_attempt: Option<f64>,
    /// The error of the last failed attempt (kept after a recovery, with its time).
    pub(crate) error: Option<SharedError>,
    /// An organisation's sums (computed once a round: an organisation is few rows, many shops).
    pub(crate) org: Option<Box<OrgFigures>>,
}

/// What the page shows of one row's data.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Shown<'a> {
    /// The shop's name (as the gateway sends it), the device's configured name; empty for an
    /// organisation (the gateway names none).
    pub(crate) name: &'a str,
    /// Unix start of the hour the values describe.
    pub(crate) data_hour: Option<i64>,
    pub(crate) hour: Figures,
    pub(crate) today: Figures,
    /// An organisation's shops.
    pub(crate) shops: Option<usize>,
}

/// The rows of the last round, sorted failing first, and what the summary says of the round.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
    /// The first `down` rows are the failing targets.
    pub(crate) down: usize,
    /// The newest snapshot: names and values.
    pub(crate) snapshot: Arc<Snapshot>,
    /// Unix seconds when the last round finished.
    pub(crate) polled_at: Option<f64>,
    /// The local hour the last round asked for.
    pub(crate) hour: Option<NaiveDateTime>,
    /// Unix seconds when the last full refresh (first round of an hour) finished.
    pub(crate) refreshed_at: Option<f64>,
    /// The configured timezone (times on the page are local to it).
    pub(crate) tz: Tz,
    /// `gateway.requests_per_second` as configured.
    pub(crate) configured_rate: f64,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            down: 0,
            snapshot: Arc::default(),
            polled_at: None,
            hour: None,
            refreshed_at: None,
            tz: chrono_tz::UTC,
            configured_rate: 0.0,
        }
    }
}

impl Table {
    /// The targets that are up.
    pub(crate) fn up(&self) -> usize {
        self.rows.len() - self.down
    }

    /// The name and values of `row`, from the snapshot.
    pub(crate) fn shown<'t>(&'t self, row: &'t Row) -> Shown<'t> {
        let s = &self.snapshot;
        match row.kind {
            Kind::Shop => {
                let dep = row.id.get(2..).unwrap_or_default();
                let sample = s.shops.get(dep);
                Shown {
                    name: sample.map_or("", |x| x.name.as_str()),
                    data_hour: sample.map(|x| x.hour_start),
                    hour: sample.map(|x| Figures::shop_hour(&x.values)).unwrap_or_default(),
                    today: s
                        .shop_days
                        .get(dep)
                        .map(|d| Figures::shop_day(&d.values))
                        .unwrap_or_default(),
                    shops: None,
                }
            }
            Kind::Device => {
                let sample = s.devices.get(&row.id);
                Shown {
                    name: sample.map_or("", |x| x.name.as_str()),
                    data_hour: sample.map(|x| x.hour_start),
                    hour: sample.map(|x| Figures::device_hour(&x.values)).unwrap_or_default(),
                    today: s
                        .device_days
                        .get(&row.id)
                        .map(|d| Figures::device_day(&d.values))
                        .unwrap_or_default(),
                    shops: None,
                }
            }
            Kind::Organisation => {
                let org = row.org.as_deref().cloned().unwrap_or_default();
                Shown {
                    name: "",
                    data_hour: org.data_hour,
                    hour: org.hour,
                    today: org.today,
                    shops: Some(org.shops),
                }
            }
        }
    }
}

/// The status of every configured target, replaced after every round.
pub(crate) struct StatusBoard {
    table: RwLock<Arc<Table>>,
    /// Unix seconds of the next poll the run loop has planned (none with manual polling).
    next_poll: RwLock<Option<f64>>,
    clock: Clock,
}

impl std::fmt::Debug for StatusBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusBoard")
            .field("targets", &self.table().rows.len())
            .finish_non_exhaustive()
    }
}

/// What [`StatusBoard::record`] is told besides the round's calls.
pub(crate) struct RoundResult<'a> {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) shops_of: &'a BTreeMap<TargetId, BTreeSet<String>>,
    pub(crate) hour: NaiveDateTime,
    pub(crate) tz: Tz,
    pub(crate) configured_rate: f64,
}

impl StatusBoard {
    pub(crate) fn new(clock: Clock) -> Self {
        StatusBoard {
            table: RwLock::new(Arc::default()),
            next_poll: RwLock::new(None),
            clock,
        }
    }

    /// The rows of the last round.
    pub(crate) fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Unix seconds now (the exporter's clock).
    pub(crate) fn now(&self) -> f64 {
        self.clock.now().timestamp_millis() as f64 / 1000.0
    }

    /// Unix seconds of the next planned poll.
    pub(crate) fn next_poll(&self) -> Option<f64> {
        *self.next_poll.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records when the run loop polls next.
    pub(crate) fn plan_next_poll(&self, at: f64) {
        *self.next_poll.write().unwrap_or_else(PoisonError::into_inner) = Some(at);
    }

    /// Replaces the rows with those of a round: every target of its snapshot, its status as
    /// merged, its last attempt (when a call of the round asked it), and the error of the call
    /// that failed it (an organisation polled through its shops: the first failing shop's).
    pub(crate) fn record(&self, seen: RoundSeen, result: RoundResult<'_>) {
        let previous = self.table();
        let before: HashMap<&str, &Row> = previous.rows.iter().map(|r| (r.id.as_str(), r)).collect();
        let snapshot = result.snapshot;
        let mut rows = Vec::with_capacity(snapshot.targets.len());
        for (id, status) in snapshot.targets.iter() {
            let kind = Kind::of(id);
            let prev = before.get(id.as_str());
            let members = match kind {
                Kind::Organisation => id.parse::<TargetId>().ok().and_then(|t| result.shops_of.get(&t)),
                _ => None,
            };
            let of_member = |map: &dyn Fn(&str) -> bool| members.is_some_and(|m| m.iter().any(|d| map(d)));
            let attempted = seen.attempted.contains(id) || of_member(&|d| seen.attempted.contains(&format!("S_{d}")));
            let mut error = prev.and_then(|p| p.error.clone());
            if attempted && !status.up {
                let member_error =
                    || members.and_then(|m| m.iter().find_map(|d| seen.failures.get(&format!("S_{d}")).cloned()));
                error = Some(
                    seen.failures
                        .get(id)
                        .cloned()
                        .or_else(member_error)
                        .unwrap_or_else(|| Arc::new(TargetError::no_data(seen.now))),
                );
            }
            rows.push(Row {
                kind,
                id: id.clone(),
                up: status.up,
                last_success: status.last_success,
                last_attempt: if attempted {
                    Some(seen.now)
                } else {
                    prev.and_then(|p| p.last_attempt)
                },
                error,
                org: members.map(|m| Box::new(org_figures(m, &snapshot))),
            });
        }
        drop(before);
        rows.sort_by(order);
        let down = rows.iter().take_while(|r| !r.up).count();
        let table = Table {
            rows,
            down,
            snapshot,
            polled_at: Some(self.now()),
            hour: Some(result.hour),
            refreshed_at: if seen.priority {
                Some(self.now())
            } else {
                previous.refreshed_at
            },
            tz: result.tz,
            configured_rate: result.configured_rate,
        };
        drop(previous);
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }
}

/// Failing targets first; then shops, organisations, devices; then by id (numerically, for
/// ids of one kind: shorter first).
pub(crate) fn order(a: &Row, b: &Row) -> Ordering {
    (a.up, a.kind, a.id.len(), &a.id).cmp(&(b.up, b.kind, b.id.len(), &b.id))
}

/// The sums of an organisation's shops, as the snapshot holds them.
fn org_figures(members: &BTreeSet<String>, snapshot: &Snapshot) -> OrgFigures {
    let mut org = OrgFigures {
        shops: members.len(),
        ..OrgFigures::default()
    };
    for dep in members {
        if let Some(sample) = snapshot.shops.get(dep) {
            org.hour.add(&Figures::shop_hour(&sample.values));
            org.data_hour = Some(org.data_hour.map_or(sample.hour_start, |h| h.min(sample.hour_start)));
        }
        if let Some(day) = snapshot.shop_days.get(dep) {
            org.today.add(&Figures::shop_day(&day.values));
        }
    }
    org
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{ShopSample, TargetStatus};

    /// A board after one round over `targets` (id, up), where `S_2` failed with code 7, shop 1
    /// is named `name`, and organisation `O_9` holds shops 1 and 2.
    pub(crate) fn board_with(targets: &[(&str, bool)], name: &str) -> StatusBoard {
        let board = StatusBoard::new(Clock::manual(
            chrono::DateTime::from_timestamp(1_714_550_000, 0).unwrap(),
        ));
        let mut snapshot = Snapshot::default();
        for (id, up) in targets {
            Arc::make_mut(&mut snapshot.targets).insert(
                id.to_string(),
                TargetStatus {
                    up: *up,
                    last_success: up.then_some(1_714_549_000.0),
                },
            );
        }
        for (dep, walk_in) in [("1", 5.0), ("2", 7.0)] {
            let values = ShopValues {
                walk_in: Some(walk_in),
                ..ShopValues::default()
            };
            let sample = ShopSample {
                dep_id: dep.into(),
                name: if dep == "1" { name.into() } else { "Two".into() },
                code: String::new(),
                hour_start: 1_714_543_200,
                values,
                meta: Default::default(),
            };
            Arc::make_mut(&mut snapshot.shops).insert(dep.into(), sample);
        }
        let mut seen = RoundSeen {
            now: 1_714_549_000.0,
            priority: true,
            ..RoundSeen::default()
        };
        seen.attempted = targets.iter().map(|(t, _)| t.to_string()).collect();
        seen.attempted.insert("S_2".into());
        let e = crate::client::ApiError::Gateway {
            method: "m".into(),
            code: 7,
            codename: "SIGN_WRONG".into(),
            message: "bad sig".into(),
            cid: "cid-7".into(),
        };
        seen.failures
            .insert("S_2".into(), Arc::new(TargetError::of(&e, 1_714_549_000.0)));
        let shops_of: BTreeMap<TargetId, BTreeSet<String>> =
            [(TargetId::Org(9), ["1".to_string(), "2".to_string()].into())].into();
        board.record(
            seen,
            RoundResult {
                snapshot: Arc::new(snapshot),
                shops_of: &shops_of,
                hour: chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
                    .unwrap()
                    .and_hms_opt(14, 0, 0)
                    .unwrap(),
                tz: chrono_tz::Asia::Shanghai,
                configured_rate: 5.0,
            },
        );
        board
    }

    #[test]
    fn failing_targets_sort_first_with_their_errors() {
        let board = board_with(
            &[
                ("d47c44906f01", true),
                ("S_10", true),
                ("S_2", false),
                ("O_9", false),
                ("S_9", true),
                ("e47c44906f01", false),
            ],
            "One",
        );
        let t = board.table();
        let ids: Vec<&str> = t.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["S_2", "O_9", "e47c44906f01", "S_9", "S_10", "d47c44906f01"]);
        assert_eq!((t.down, t.up()), (3, 3));
        let code = |i: usize| {
            t.rows[i]
                .error
                .as_ref()
                .map(|e| (e.code.clone(), e.name.clone(), e.cid.clone()))
        };
        assert_eq!(code(0), Some(("7".into(), "SIGN_WRONG".into(), "cid-7".into())));
        // The organisation failed through its shop 2.
        assert_eq!(code(1), code(0));
        // A device asked and down without an error of its own: the answer lacked it.
        assert_eq!(code(2).map(|c| c.0), Some("no_data".into()));
        assert_eq!(code(3), None);
        let org = t.shown(&t.rows[1]);
        assert_eq!((org.shops, org.hour.walk_in), (Some(2), Some(12.0)));
        assert_eq!(t.shown(&t.rows[3]).name, "", "S_9 has no values");
        assert_eq!(t.refreshed_at, t.polled_at);
    }

    #[test]
    fn a_target_not_asked_keeps_its_last_attempt_and_error_and_a_gone_one_vanishes() {
        let board = board_with(&[("S_2", false), ("S_1", true)], "One");
        let first = board.table();
        let mut snapshot = (*first.snapshot).clone();
        Arc::make_mut(&mut snapshot.targets).remove("S_1");
        let seen = RoundSeen {
            now: 1_714_549_600.0,
            ..RoundSeen::default()
        };
        board.record(
            seen,
            RoundResult {
                snapshot: Arc::new(snapshot),
                shops_of: &BTreeMap::new(),
                hour: first.hour.unwrap(),
                tz: first.tz,
                configured_rate: 5.0,
            },
        );
        let t = board.table();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0].last_attempt, Some(1_714_549_000.0));
        assert_eq!(t.rows[0].error, first.rows[0].error);
        assert_eq!(t.refreshed_at, first.refreshed_at, "not a full refresh");
    }
}

//! Backfill: fetch past hourly data from the gateway and write it as OpenMetrics with
//! timestamps, for `promtool tsdb create-blocks-from openmetrics`, so that a new installation
//! starts with history.
//!
//! For every shop-local day in `[from, to]` (dates in the configuration's `timezone`) there is
//! one call per batch of shop ids (packed under the gateway's limits, each organisation alone)
//! and one per device, at most `max_in_flight` at once, through the same [`Client`] the exporter polls with. Every
//! *complete* hour of the answers becomes one sample per value, timestamped with the start of
//! the hour (Unix seconds), under the live exporter's metric names and labels (both read
//! [`crate::schema`]): `opretail_shop_*` by `shop_id`, `shop_name`,
//! `shop_code`, and `opretail_device_*` by `mac`, `device_name`, `shop_id`; in a file of
//! several accounts, the series of the account backfilled (`--account`) also carry its
//! `account` label, as on `/metrics`. The poll-health
//! families (`opretail_target_*`, `opretail_api_*`) describe a running exporter and are not
//! backfilled. Hours not yet complete are skipped, and so are values the gateway did not send.
//!
//! The gateway labels its rows with local wall times, so in a zone with daylight saving a day
//! is not always 24 rows of 24 real hours. A row for an hour the clocks skipped (02:00 on a
//! spring-forward day) is not written. The hour a fall-back day repeats has one row, written
//! once, at the first of its two starts, and only once the second one has ended too (the row
//! may count both).
//!
//! The output follows the OpenMetrics text format: one `TYPE` and `HELP` per family, families
//! and series never interleaved, the samples of a series in time order, `# EOF` last. That
//! needs every sample before the first line is written, so the fetched hours are held in
//! memory (roughly 100 bytes per shop hour); backfill years of thousands of shops in pieces.
//!
//! A failed call is reported with its gateway code and name (retrying transient failures is the
//! client's business, as for polling); the other calls go on and whatever they fetched is
//! still written.

mod openmetrics;

use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use futures_util::stream::{self, StreamExt};

pub use self::openmetrics::{family_names, Backfill};
use crate::client::{batch, ApiError, Call, Client, Packing, WHOLE_DAY};
use crate::config::Config;
use crate::hours::{latest_complete_hour, local_day};
use crate::model::TargetId;

/// Which days to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    /// First shop-local day.
    pub from: NaiveDate,
    /// Last shop-local day (clamped to today).
    pub to: NaiveDate,
}

impl Options {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        Self { from, to }
    }
}

/// Why a backfill could not start.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--from {from} is after --to {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("--from {from} is in the future (today is {today} in {tz})")]
    Future { from: NaiveDate, today: NaiveDate, tz: Tz },
    #[error("the configuration lists no shops and no devices")]
    NothingConfigured,
}

/// The calls of a backfill, before any is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub from: NaiveDate,
    /// `to` after clamping to today.
    pub to: NaiveDate,
    /// True if `to` was later than today and was clamped.
    pub clamped: bool,
    /// The latest complete hour (shop-local): later hours are skipped. On a fall-back day the
    /// repeated hour is complete only once its second occurrence has ended.
    pub last_complete: NaiveDateTime,
    pub calls: Vec<Call>,
}

/// A call that failed for good.
#[derive(Debug)]
pub struct CallFailure {
    pub call: Call,
    pub error: ApiError,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, self.error.summary())
    }
}

/// Works out the calls for `opts` at `now`.
pub fn plan(config: &Config, opts: &Options, now: DateTime<Utc>) -> Result<Plan, PlanError> {
    let tz = config.timezone;
    let today = local_day(now, tz);
    if opts.from > opts.to {
        return Err(PlanError::Reversed {
            from: opts.from,
            to: opts.to,
        });
    }
    if opts.from > today {
        return Err(PlanError::Future {
            from: opts.from,
            today,
            tz,
        });
    }
    if config.shops.is_empty() && config.devices.is_empty() {
        return Err(PlanError::NothingConfigured);
    }
    let to = opts.to.min(today);
    // Without a latest complete hour (an instant out of range) nothing of today is.
    let last_complete = latest_complete_hour(now, tz)
        .map(|(hour, start)| match tz.from_local_datetime(&hour).latest() {
            // The first of a repeated hour: its row is complete after the second one.
            Some(last) if last.timestamp() != start => hour - chrono::Duration::hours(1),
            _ => hour,
        })
        .unwrap_or_else(|| today.and_time(chrono::NaiveTime::MIN) - chrono::Duration::hours(1));
    let ids: Vec<TargetId> = config.shops.iter().map(|s| s.id.clone()).collect();
    let targets = batch(&ids, &config.devices, Packing::of(&config.gateway), WHOLE_DAY.len());
    let calls = opts
        .from
        .iter_days()
        .take_while(|d| *d <= to)
        .flat_map(|day| targets.iter().map(move |t| Call::day(t.clone(), day)))
        .collect();
    Ok(Plan {
        from: opts.from,
        to,
        clamped: to < opts.to,
        last_complete,
        calls,
    })
}

/// Progress of a running backfill, reported after every call.
#[derive(Debug)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    /// The call that just failed for good, if it did.
    pub failure: Option<&'a CallFailure>,
}

/// Makes every call of `plan` with `client` (at most `max_in_flight` at once) and collects the
/// complete hours. `progress` is called after each call. Never fails as a whole: failed calls
/// are in [`Backfill::failures`].
pub async fn run(config: &Config, client: &Client, plan: &Plan, mut progress: impl FnMut(Progress<'_>)) -> Backfill {
    let tz = config.timezone;
    let total = plan.calls.len();
    let mut out = Backfill::default();
    let mut results = stream::iter(plan.calls.iter().cloned())
        .map(|call| async move {
            let result = client.fetch(&call).await;
            (call, result)
        })
        .buffer_unordered(config.gateway.max_in_flight.max(1));
    while let Some((call, result)) = results.next().await {
        out.calls += 1;
        let failed = match result {
            Ok(answer) => {
                out.absorb(&call, answer, plan.last_complete, tz);
                false
            }
            Err(error) => {
                out.failures.push(CallFailure { call, error });
                true
            }
        };
        progress(Progress {
            done: out.calls,
            total,
            failure: if failed { out.failures.last() } else { None },
        });
    }
    out
}

/// The `backfill` command: plans `from..=to`, fetches with progress on stderr (a bar on a
/// terminal, a line at every tenth otherwise), and writes `output` next to itself first and
/// renamed, so a reader never sees half a file. `account` is the account's name in a file of
/// several accounts (every series then carries it as its `account` label). Exit code 0; 1 if
/// a call failed (what the others fetched is still written) or the file could not be written;
/// 2 for a bad range.
pub async fn command(
    config: Config,
    client: Client,
    from: NaiveDate,
    to: NaiveDate,
    output: &Path,
    now: DateTime<Utc>,
    account: Option<String>,
) -> ExitCode {
    use std::io::IsTerminal;

    let plan = match plan(&config, &Options::new(from, to), now) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if plan.clamped {
        eprintln!("note: --to {to} is after today; backfilling until {}", plan.to);
    }
    let total = plan.calls.len();
    eprintln!(
        "backfill {}..={} ({}): {} calls, at most {} at once",
        plan.from, plan.to, config.timezone, total, config.gateway.max_in_flight
    );
    // A bar only on a terminal; otherwise plain lines at every tenth, which logs keep readable.
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} calls, {msg} failed, eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("0");
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut failed = 0usize;
    let mut reported_tenth = 0usize;
    let mut result = run(&config, &client, &plan, |p| {
        if let Some(f) = p.failure {
            failed += 1;
            if tty {
                bar.println(format!("failed: {f}"));
                bar.set_message(failed.to_string());
            } else {
                eprintln!("failed: {f}");
            }
        }
        if tty {
            bar.set_position(p.done as u64);
        } else {
            let tenth = p.done * 10 / p.total.max(1);
            if tenth > reported_tenth || p.done == p.total {
                reported_tenth = tenth;
                eprintln!(
                    "progress: {}/{} calls ({}%), {failed} failed",
                    p.done,
                    p.total,
                    p.done * 100 / p.total.max(1)
                );
            }
        }
    })
    .await;
    bar.finish_and_clear();
    result.account = account;

    let samples = match result.write_file(output) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", output.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "wrote {}: {samples} samples ({} shop hours, {} device hours) from {} calls, {} failed",
        output.display(),
        result.shop_hours(),
        result.device_hours(),
        result.calls,
        result.failures.len()
    );
    if result.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: {} of {} calls failed:", result.failures.len(), result.calls);
        for f in &result.failures {
            eprintln!("  {f}");
        }
        ExitCode::FAILURE
    }
}

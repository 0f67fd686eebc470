//! `doctor`: the first check of a configuration against the real gateway, on one screen. It
//! makes a few calls through the exporter's own [`Client`] (same signing, token, limits and
//! retries as polling) and reports, check by check, whether the exporter can run as
//! configured, each problem with its fix, and the gateway settings to put in the file.
//!
//! The calls, all for yesterday (shop-local, so that every hour is complete), in this order:
//!
//! 1. The first call: the whole day, hourly, of the first configured `S_` id; without one,
//!    the hour 12:00–13:00 of the first `O_` id; without shops, the first device's day. Its
//!    gateway code says whether the key and signature are accepted (a refusal — codes 1–17,
//!    9990001, 103094, 103095 — ends the checks here, with the hint for the code), and the
//!    `stat.systime` of the first answer how far this host's clock is from the gateway's.
//! 2. The hour 12:00–13:00 of each configured `O_` id, at most [`MAX_ORGS`] (the rest are
//!    only counted), asked as the exporter asks it (one hour more with `gateway.row_time:
//!    end`): its shops, rows and answer bytes.
//! 3. `id` lists of [`LIST_SIZES`] `S_` ids, whole days: the configured `S_` ids first, then
//!    the shops the organisations' answers named; only the sizes there are ids for, the list
//!    of one being the first call when that was one. A list works when the call succeeds and
//!    answers every shop asked; the lists stop at the first that does not.
//! 4. The day rows (`timeType=2`, [`Call::day_figures`]) of the longest list that worked
//!    (the first call's shop when that is the list of one): the vendor's figures of the same
//!    day for shops whose 24 hourly rows are already in hand. Not made when no list worked.
//! 5. The whole day of each of the first [`MAX_DEVICES`] devices.
//!
//! That is at most [`MAX_CALLS`] calls (1 + 5 + 4 + 1 + 2 = 13) whatever the size of the
//! configuration, plus the login when `gateway.login` is set and the client's retries of
//! transient failures (`gateway.max_retries` each); calls not finished within [`TIME_BUDGET`]
//! are given up and the checks that needed them say so.
//!
//! The answers are then read with the functions the client applies to every answer it polls
//! ([`crate::client::conventions`]): which read fields the rows lack or carry besides
//! ([`check_fields`]), whether a row's `time` is the start or the end of its hour
//! ([`row_time_of`] on the whole-day answers), whether rates are percentages or fractions
//! ([`RateVotes`]), and the clock skew ([`clock_skew`]); the shops' rows are decoded as the
//! exporter decodes them, to find the shops whose rows never carry walk-outs (face-counting
//! devices) or outside traffic (no outside counter).
//!
//! The day figures: each shop's day row, decoded as the client decodes the day rows it
//! publishes as `opretail_shop_*_today`, against the sum of the same shop's hourly rows of the
//! day (picked by their time, read under the row time the answers show), count by count
//! (walk-in, passing, outside, walk-out; rates are the vendor's ratios and are not compared):
//! see [`compare_day`]. Equal everywhere is consistent; a walk-in below the sum of the hours
//! with everything else equal (outside traffic, which holds the walk-ins, short by as much) is
//! the de-duplication the vendor documents for face-counting devices, a finding that explains
//! why `opretail_shop_walk_in_today` is below the sum of the hours for those shops; any other
//! difference is a warning naming the shops and counts (late uploads between the two calls, or
//! a different day boundary), with nothing to set. A day call that failed or was given up is
//! a warning too.
//!
//! A read field that no row of any answer of a method carries is a problem when it is the
//! row's time or its walk-ins, or when the rows carry a field the exporter does not know (a
//! likely new name for it); otherwise (walk-outs, passing and outside traffic, the rates) it
//! is a warning, since a chain may have no such counter at all. A field only some shops lack
//! is a finding: the shops are listed.
//!
//! The other problems: a clock more than [`SKEW_WARNING_SECONDS`] off; a fixed
//! `gateway.row_time` or `gateway.rate_scale` the answers contradict; a refused list no longer
//! than the exporter sends (`max_ids_per_request`, `max_id_chars`); a configured id or device
//! the gateway does not answer; an answer over half of `max_response_bytes`, or a
//! `max_rows_per_call` whose calls would weigh that much; calls given up for time. Each comes
//! with its fix, most of them a setting; the recommended settings gather them. The command
//! exits 0 without a problem (warnings allowed), 1 with one.
//!
//! What is unsafe in the configuration itself ([`Config::warnings`]: an `http://` gateway
//! that is not this machine, over which the signature and the token travel in clear) is a
//! warning, a `configuration` line before the checks.
//!
//! `day` compares the day rows with the hours (the `day figures` check); `render` writes the
//! [`Report`] as text (a line per check: `ok`, `warn` or `FAIL`) or JSON.
//! Nothing here prints the secret, the password, the token or `_sig`; the text shows the
//! gateway's own words (error texts, shop ids, field names) escaped.

mod day;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use tokio::time::Instant;

pub use self::day::{compare_day, CountDiff, DayFigures, DayVerdict};
use self::day::{compare_days, day_figures_check};
pub use self::render::{render_json, render_text};
use crate::client::conventions::{
    check_fields, clock_skew, row_time_of, row_times, FieldCheck, RateVotes, SKEW_WARNING_SECONDS,
};
use crate::client::{decode_shops, ApiError, Call, Client, Envelope, Per, Reading, Target, METHOD_SHOPS, WHOLE_DAY};
use crate::config::Config;
use crate::model::{Clock, Convention, Named, RateScale, RowTime, ShopSeries, TargetId};

/// Most organisations asked (one hour each); further ones are only counted.
pub const MAX_ORGS: usize = 5;
/// The lengths of the `id` lists tried, shortest first.
pub const LIST_SIZES: [usize; 4] = [1, 2, 10, 50];
/// Most devices asked (one day each).
pub const MAX_DEVICES: usize = 2;
/// Most calls `doctor` makes: the first call, the organisations, the lists (the list of one
/// again when the first call's shop was not answered), the day rows of the longest list that
/// worked, and the devices.
pub const MAX_CALLS: usize = 1 + MAX_ORGS + LIST_SIZES.len() + 1 + MAX_DEVICES;
/// Calls not finished this long after the start are given up.
pub const TIME_BUDGET: Duration = Duration::from_secs(45);
/// An answer over this share of `gateway.max_response_bytes` is too close to the limit.
const NEAR_LIMIT: f64 = 0.5;
/// The local hour the one-hour calls ask for (a busy one).
const HOUR_ASKED: u32 = 12;

/// How a check came out, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The word of the text report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report: a check, how it came out, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub finding: String,
}

/// Something that keeps the exporter from running as configured, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub problem: String,
    pub fix: String,
}

/// Whether the gateway accepted the key and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// The first call got past the key and signature checks (answered, or refused for what
    /// it asked).
    Accepted,
    /// Refused: the gateway's code, name and message.
    Rejected { error: String },
    /// No gateway answer to tell by (unreachable, timeout, HTTP error, undecodable).
    Unknown { error: String },
}

impl Signature {
    pub fn as_str(&self) -> &'static str {
        match self {
            Signature::Accepted => "accepted",
            Signature::Rejected { .. } => "rejected",
            Signature::Unknown { .. } => "unknown",
        }
    }
}

/// One `id` list tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListTry {
    /// The ids asked.
    pub asked: Vec<String>,
    /// Ids in the list.
    pub ids: usize,
    /// Characters of the joined list, commas included.
    pub chars: usize,
    /// Shops the answer held (0 when the call failed).
    pub answered: usize,
    /// The ids asked that the answer did not hold.
    pub missing: Vec<String>,
    /// Why the call failed, if it did.
    pub error: Option<String>,
}

impl ListTry {
    /// The call succeeded and answered every shop asked.
    pub fn worked(&self) -> bool {
        self.error.is_none() && self.missing.is_empty()
    }
}

/// The `id` lists tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdLists {
    /// `S_` ids there were to build lists of.
    pub available: usize,
    pub tried: Vec<ListTry>,
}

impl IdLists {
    /// Whether comma-separated lists work: a list of two or more worked (`true`), the list of
    /// two did not (`false`), or none was tried (`None`).
    pub fn accepted(&self) -> Option<bool> {
        if self.tried.iter().any(|t| t.ids >= 2 && t.worked()) {
            Some(true)
        } else if self.tried.iter().any(|t| t.ids >= 2) {
            Some(false)
        } else {
            None
        }
    }

    /// The longest list that worked (0 if none did).
    pub fn max_ids_ok(&self) -> usize {
        self.best().map_or(0, |t| t.ids)
    }

    fn best(&self) -> Option<&ListTry> {
        self.tried.iter().filter(|t| t.worked()).max_by_key(|t| t.ids)
    }
}

/// One organisation asked for one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: TargetId,
    /// Shops its answer held.
    pub shops: usize,
    /// Rows its answer held.
    pub rows: usize,
    /// Bytes of the whole answer.
    pub bytes: usize,
    /// Why the call failed, if it did.
    pub error: Option<String>,
}

/// The gateway settings `doctor` suggests, under `gateway:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommended {
    /// `start`, `end`, or the configured value (`auto` when nothing decided it).
    pub row_time: String,
    /// `percent`, `fraction`, or the configured value.
    pub rate_scale: String,
    pub max_ids_per_request: usize,
    pub max_id_chars: usize,
    pub max_rows_per_call: usize,
    pub max_response_bytes: usize,
}

/// Everything `doctor` found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The gateway's URL (no user, password or query).
    pub gateway: String,
    /// The shops' time zone (`timezone`).
    pub timezone: chrono_tz::Tz,
    /// The shop-local day asked about (yesterday).
    pub day: NaiveDate,
    /// What the first call asked.
    pub first_call: String,
    pub signature: Signature,
    /// This host's clock minus the gateway's (`stat.systime` of the first answer).
    pub clock_skew_seconds: Option<f64>,
    /// What the whole-day answers show; `None` if they do not tell (or disagree).
    pub row_time: Option<RowTime>,
    /// What the rates show; `None` if they do not tell (or disagree).
    pub rate_scale: Option<RateScale>,
    /// Fields per method, over every answer of it.
    pub fields: BTreeMap<&'static str, FieldCheck>,
    pub id_lists: IdLists,
    pub organisations: Vec<Organisation>,
    /// Configured `O_` ids beyond [`MAX_ORGS`], not asked.
    pub organisations_not_asked: Vec<TargetId>,
    /// Distinct shops the answers held.
    pub shops_seen: usize,
    /// Dep ids of shops whose rows never carry walk-outs.
    pub face_device_shops: Vec<String>,
    /// Dep ids of shops whose rows never carry outside traffic (or 0 beside walk-ins).
    pub no_outside_counter_shops: Vec<String>,
    /// The day rows against the sums of their hours.
    pub day_figures: DayFigures,
    /// `None` when the checks stopped at the first call.
    pub recommended: Option<Recommended>,
    /// Calls made.
    pub calls: usize,
    pub elapsed: Duration,
    /// One line per check, in order.
    pub checks: Vec<Check>,
    pub problems: Vec<Problem>,
}

impl Report {
    /// The exporter can run as configured (warnings allowed).
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The `doctor` command: the checks, then the report on stdout as text or JSON. Exit code 0
/// when the exporter can run as configured, 1 when there is a problem.
pub async fn command(client: Client, config: Config, json: bool, clock: Clock) -> ExitCode {
    use std::io::Write as _;
    let report = run(&client, &config, &clock).await;
    let text = if json {
        format!("{:#}\n", render_json(&report))
    } else {
        render_text(&report)
    };
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            return ExitCode::FAILURE;
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One successful answer and the call that got it.
struct Seen {
    call: Call,
    method: &'static str,
    envelope: Envelope,
    /// This host's clock minus the answer's `stat.systime` when it arrived, in seconds.
    skew: Option<f64>,
}

/// Why a call brought no answer.
enum Failure {
    Api(ApiError),
    /// Not finished within [`TIME_BUDGET`].
    OutOfTime,
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Api(e) => e.summary(),
            Failure::OutOfTime => format!("not finished within doctor's {} s", TIME_BUDGET.as_secs()),
        }
    }
}

/// The calls of one run and their answers.
struct Session<'a> {
    client: &'a Client,
    clock: &'a Clock,
    deadline: Instant,
    calls: usize,
    seen: Vec<Seen>,
    /// Calls given up for time.
    out_of_time: usize,
}

impl Session<'_> {
    /// Makes `call`; a successful answer is kept in `seen` and its index returned.
    async fn ask(&mut self, call: Call) -> Result<usize, Failure> {
        if Instant::now() >= self.deadline {
            self.out_of_time += 1;
            return Err(Failure::OutOfTime);
        }
        self.calls += 1;
        let (method, business) = self.client.business(&call);
        match tokio::time::timeout_at(self.deadline, self.client.call(method, &business)).await {
            Ok(Ok(envelope)) => {
                let skew = envelope.systime_ms.map(|ms| clock_skew(self.clock.now(), ms));
                self.seen.push(Seen {
                    call,
                    method,
                    envelope,
                    skew,
                });
                Ok(self.seen.len() - 1)
            }
            Ok(Err(e)) => Err(Failure::Api(e)),
            Err(_) => {
                self.out_of_time += 1;
                Err(Failure::OutOfTime)
            }
        }
    }

    /// The shops of a kept shops answer (none if it does not decode).
    fn shops(&self, index: usize) -> Vec<ShopSeries> {
        self.seen.get(index).map(shops_of).unwrap_or_default()
    }
}

/// The shops of a shops answer, decoded as the exporter decodes them (none if it does not
/// decode).
fn shops_of(seen: &Seen) -> Vec<ShopSeries> {
    decode_shops(&seen.envelope.data, Reading::default()).unwrap_or_default()
}

/// What the calls found, before it is judged.
struct Evidence {
    first_call: String,
    signature: Signature,
    /// The first call's failure when it was refused for what it asked.
    first_failure: Option<String>,
    clock_skew_seconds: Option<f64>,
    id_lists: IdLists,
    organisations: Vec<Organisation>,
    organisations_not_asked: Vec<TargetId>,
    /// Devices whose call failed, and why.
    device_failures: Vec<(String, String)>,
    /// Devices whose answer held no row.
    devices_without_rows: Vec<String>,
    /// The day-figures call.
    day_call: DayCall,
    out_of_time: usize,
}

/// How the day-figures call came out.
enum DayCall {
    /// Not made: no list of `S_` ids worked.
    NotAsked,
    /// Answered: the session's answer whose call asks for day rows.
    Answered,
    /// Failed or given up: why.
    Failed(String),
}

/// Runs the checks against the gateway of `config` with `client` (see the module doc for the
/// calls) and judges them; the configuration's own warnings ([`Config::warnings`], such as an
/// `http://` gateway) come first, as `configuration` checks.
pub async fn run(client: &Client, config: &Config, clock: &Clock) -> Report {
    let mut report = run_calls(client, config, clock).await;
    let warnings = config.warnings().into_iter().map(|finding| Check {
        name: "configuration",
        status: Status::Warn,
        finding,
    });
    report.checks.splice(0..0, warnings);
    report
}

/// The calls and their judgement.
async fn run_calls(client: &Client, config: &Config, clock: &Clock) -> Report {
    let started = Instant::now();
    let today = clock.now().with_timezone(&config.timezone).date_naive();
    let day = today.pred_opt().unwrap_or(today);
    let hour = day.and_time(NaiveTime::from_hms_opt(HOUR_ASKED, 0, 0).unwrap_or(NaiveTime::MIN));
    let mut session = Session {
        client,
        clock,
        deadline: started + TIME_BUDGET,
        calls: 0,
        seen: Vec::new(),
        out_of_time: 0,
    };
    let shop_ids: Vec<TargetId> = config
        .shops
        .iter()
        .map(|s| s.id.clone())
        .filter(|id| matches!(id, TargetId::Shop(_)))
        .collect();
    let org_ids: Vec<TargetId> = config
        .shops
        .iter()
        .map(|s| s.id.clone())
        .filter(|id| matches!(id, TargetId::Org(_)))
        .collect();

    // 1. The first call.
    let first = if let Some(id) = shop_ids.first() {
        Call::day(Target::Shops(vec![id.clone()]), day)
    } else if let Some(id) = org_ids.first() {
        Call::hour(Target::Shops(vec![id.clone()]), hour)
    } else if let Some(device) = config.devices.first() {
        Call::day(Target::Device(device.clone()), day)
    } else {
        // A validated configuration lists something; this one is judged as it is.
        Call::day(Target::Shops(Vec::new()), day)
    };
    let mut evidence = Evidence {
        first_call: first.to_string(),
        signature: Signature::Unknown {
            error: "no call made".into(),
        },
        first_failure: None,
        clock_skew_seconds: None,
        id_lists: IdLists::default(),
        organisations: Vec::new(),
        organisations_not_asked: org_ids.iter().skip(MAX_ORGS).cloned().collect(),
        device_failures: Vec::new(),
        devices_without_rows: Vec::new(),
        day_call: DayCall::NotAsked,
        out_of_time: 0,
    };
    let first_answer = session.ask(first.clone()).await;
    let mut problems = Vec::new();
    match &first_answer {
        Ok(_) => evidence.signature = Signature::Accepted,
        Err(Failure::Api(e)) if e.is_refusal() => {
            evidence.signature = Signature::Rejected { error: e.summary() };
            problems.push(Problem {
                problem: format!("the gateway refused the first call ({first}): {}", e.summary()),
                fix: e
                    .hint()
                    .unwrap_or("check gateway.app_key, gateway.app_secret, gateway.aid and gateway.sign_method")
                    .to_string(),
            });
        }
        Err(Failure::Api(e @ ApiError::Gateway { .. })) => {
            evidence.signature = Signature::Accepted;
            evidence.first_failure = Some(e.summary());
        }
        Err(failure) => {
            let error = failure.text();
            problems.push(Problem {
                problem: format!("the first call ({first}) brought no answer: {error}"),
                fix: match failure {
                    Failure::Api(e) => e.hint().map_or_else(
                        || "check gateway.url and that this host reaches it (proxy, firewall, DNS)".to_string(),
                        str::to_string,
                    ),
                    Failure::OutOfTime => "check gateway.url and gateway.timeout".to_string(),
                },
            });
            evidence.signature = Signature::Unknown { error };
        }
    }
    if evidence.signature != Signature::Accepted {
        return stopped(config, day, evidence, session.calls, started.elapsed(), problems);
    }

    // 2. Organisations, one hour each.
    let mut named_shops: Vec<TargetId> = Vec::new();
    for (n, org) in org_ids.iter().take(MAX_ORGS).enumerate() {
        let answer = if n == 0 && shop_ids.is_empty() {
            first_answer.as_ref().copied().map_err(|_| ())
        } else {
            match session.ask(Call::hour(Target::Shops(vec![org.clone()]), hour)).await {
                Ok(i) => Ok(i),
                Err(f) => {
                    evidence.organisations.push(Organisation {
                        id: org.clone(),
                        shops: 0,
                        rows: 0,
                        bytes: 0,
                        error: Some(f.text()),
                    });
                    continue;
                }
            }
        };
        match answer {
            Ok(i) => {
                let shops = session.shops(i);
                named_shops.extend(shops.iter().filter_map(|s| s.dep_id.parse().ok()).map(TargetId::Shop));
                evidence.organisations.push(Organisation {
                    id: org.clone(),
                    shops: shops.len(),
                    rows: shops.iter().map(|s| s.rows.len()).sum(),
                    bytes: session.seen[i].envelope.bytes,
                    error: None,
                });
            }
            Err(()) => evidence.organisations.push(Organisation {
                id: org.clone(),
                shops: 0,
                rows: 0,
                bytes: 0,
                error: evidence.first_failure.clone(),
            }),
        }
    }

    // 3. Id lists of the configured S_ ids, then the shops the organisations named.
    let mut pool: Vec<TargetId> = Vec::new();
    for id in shop_ids.iter().chain(&named_shops) {
        if !pool.contains(id) {
            pool.push(id.clone());
        }
    }
    let mut first_list = None;
    if let (Some(id), Target::Shops(_)) = (shop_ids.first(), &first.target) {
        let answer = first_answer
            .as_ref()
            .copied()
            .map_err(|f| evidence.first_failure.clone().unwrap_or_else(|| f.text()));
        let tried = list_try(&session, std::slice::from_ref(id), answer);
        if !tried.worked() {
            // The shop itself is not answered: the lists go on without it.
            pool.retain(|p| p != id);
        }
        first_list = Some(tried);
    }
    evidence.id_lists.available = pool.len();
    for size in LIST_SIZES.into_iter().filter(|s| *s <= pool.len()) {
        let ids = &pool[..size];
        let tried = match (&first_list, size) {
            (Some(t), 1) if t.worked() => t.clone(),
            _ => {
                let answer = session.ask(Call::day(Target::Shops(ids.to_vec()), day)).await;
                list_try(&session, ids, answer.map_err(|f| f.text()))
            }
        };
        let worked = tried.worked();
        evidence.id_lists.tried.push(tried);
        if !worked {
            break;
        }
    }
    if let Some(t) = first_list.filter(|t| !t.worked()) {
        evidence.id_lists.tried.insert(0, t);
    }

    // 4. The day rows of the longest list that worked: shops whose whole hourly day is in hand.
    let day_ids = &pool[..evidence.id_lists.max_ids_ok().min(pool.len())];
    if !day_ids.is_empty() {
        let call = Call::day_figures(Target::Shops(day_ids.to_vec()), day);
        evidence.day_call = match session.ask(call).await {
            Ok(_) => DayCall::Answered,
            Err(f) => DayCall::Failed(f.text()),
        };
    }

    // 5. Devices, one day each.
    for (n, device) in config.devices.iter().take(MAX_DEVICES).enumerate() {
        let answer = if n == 0 && matches!(first.target, Target::Device(_)) {
            first_answer.as_ref().copied().map_err(|_| {
                evidence
                    .first_failure
                    .clone()
                    .unwrap_or_else(|| "no answer".to_string())
            })
        } else {
            session
                .ask(Call::day(Target::Device(device.clone()), day))
                .await
                .map_err(|f| f.text())
        };
        match answer {
            Ok(i) => {
                let seen = &session.seen[i];
                if crate::client::conventions::rows(seen.method, &seen.envelope.data).is_empty() {
                    evidence.devices_without_rows.push(device.mac.clone());
                }
            }
            Err(e) => evidence.device_failures.push((device.mac.clone(), e)),
        }
    }

    evidence.out_of_time = session.out_of_time;
    // The first answer's clock (the first call's, unless it was refused for what it asked).
    evidence.clock_skew_seconds = session.seen.iter().find_map(|s| s.skew);
    let outcome = Outcome {
        seen: &session.seen,
        calls: session.calls,
        elapsed: started.elapsed(),
    };
    judge(config, day, evidence, &outcome, problems)
}

/// How a call for the `S_` ids `ids` came out as a list: the index of its answer in the
/// session, or why it failed.
fn list_try(session: &Session<'_>, ids: &[TargetId], answer: Result<usize, String>) -> ListTry {
    let chars = ids.iter().map(|id| id.to_string().len()).sum::<usize>() + ids.len().saturating_sub(1);
    match answer {
        Ok(i) => {
            let answered: BTreeSet<String> = session.shops(i).into_iter().map(|s| s.dep_id).collect();
            let missing = ids
                .iter()
                .filter(|id| !answered.contains(&id.number().to_string()))
                .map(ToString::to_string)
                .collect();
            ListTry {
                asked: ids.iter().map(ToString::to_string).collect(),
                ids: ids.len(),
                chars,
                answered: answered.len(),
                missing,
                error: None,
            }
        }
        Err(e) => ListTry {
            asked: ids.iter().map(ToString::to_string).collect(),
            ids: ids.len(),
            chars,
            answered: 0,
            missing: Vec::new(),
            error: Some(e),
        },
    }
}

/// The report when the checks stopped at the first call.
fn stopped(
    config: &Config,
    day: NaiveDate,
    evidence: Evidence,
    calls: usize,
    elapsed: Duration,
    problems: Vec<Problem>,
) -> Report {
    let finding = match &evidence.signature {
        Signature::Rejected { error } => format!("rejected: {error}"),
        Signature::Unknown { error } => format!("unknown: {error}"),
        Signature::Accepted => "accepted".to_string(),
    };
    Report {
        gateway: shown_url(config),
        timezone: config.timezone,
        day,
        first_call: evidence.first_call,
        signature: evidence.signature,
        clock_skew_seconds: None,
        row_time: None,
        rate_scale: None,
        fields: BTreeMap::new(),
        id_lists: IdLists::default(),
        organisations: Vec::new(),
        organisations_not_asked: Vec::new(),
        shops_seen: 0,
        face_device_shops: Vec::new(),
        no_outside_counter_shops: Vec::new(),
        day_figures: DayFigures::NotAsked,
        recommended: None,
        calls,
        elapsed,
        checks: vec![
            Check {
                name: "signature",
                status: Status::Fail,
                finding,
            },
            Check {
                name: "other checks",
                status: Status::Fail,
                finding: "not run: they need an answer from the gateway".to_string(),
            },
        ],
        problems,
    }
}

/// The gateway URL without credentials or query.
fn shown_url(config: &Config) -> String {
    let mut url = config.gateway.url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The answers of a run, its calls and how long it took.
struct Outcome<'a> {
    seen: &'a [Seen],
    calls: usize,
    elapsed: Duration,
}

/// Judges the evidence and the answers: the checks, the problems and the recommended
/// settings.
fn judge(
    config: &Config,
    day: NaiveDate,
    evidence: Evidence,
    session: &Outcome<'_>,
    mut problems: Vec<Problem>,
) -> Report {
    let elapsed = session.elapsed;
    let gateway = &config.gateway;
    let mut checks = vec![Check {
        name: "signature",
        status: Status::Ok,
        finding: match &evidence.first_failure {
            None => format!("accepted ({})", evidence.first_call),
            Some(e) => format!("accepted, but the call was refused for what it asked: {e}"),
        },
    }];
    // A first call refused for what it asked is a problem of the check that owns it (id lists,
    // organisations or devices).

    // Clock.
    checks.push(match evidence.clock_skew_seconds {
        None => Check {
            name: "clock",
            status: Status::Warn,
            finding: "the gateway's answer carried no stat.systime to compare with".to_string(),
        },
        Some(skew) if skew.abs() > SKEW_WARNING_SECONDS => {
            let side = if skew > 0.0 { "ahead of" } else { "behind" };
            problems.push(Problem {
                problem: format!(
                    "this host's clock is {:.0} s {side} the gateway's; the gateway refuses requests whose _timestamp is too far off (code 16)",
                    skew.abs()
                ),
                fix: "synchronise this host's clock (NTP)".to_string(),
            });
            Check {
                name: "clock",
                status: Status::Fail,
                finding: format!("{skew:+.1} s from the gateway's stat.systime (more than {SKEW_WARNING_SECONDS:.0} s)"),
            }
        }
        Some(skew) => Check {
            name: "clock",
            status: Status::Ok,
            finding: format!("{skew:+.1} s from the gateway's stat.systime"),
        },
    });

    // Row time, from the whole-day hourly answers.
    let found_row_times: Vec<RowTime> = session
        .seen
        .iter()
        .filter(|s| s.call.per == Per::Hour && s.call.hours == WHOLE_DAY)
        .filter_map(|s| row_time_of(&row_times(s.method, &s.envelope.data), s.call.from, s.call.to))
        .collect();
    let row_time = found_row_times
        .first()
        .copied()
        .filter(|first| found_row_times.iter().all(|t| t == first));
    checks.push(convention_check(
        "row time",
        "row_time",
        row_time,
        gateway.row_time,
        match row_time {
            Some(RowTime::Start) => "a whole day's rows run 00:00..23:00".to_string(),
            Some(RowTime::End) => "a whole day's rows run 01:00..next day 00:00".to_string(),
            None if !found_row_times.is_empty() => "the whole-day answers disagree".to_string(),
            None => "no whole-day answer with rows to tell".to_string(),
        },
        "every published hour is off by one",
        &mut problems,
    ));

    // Rate scale, from every shops answer.
    let votes = session
        .seen
        .iter()
        .filter(|s| s.method == METHOD_SHOPS)
        .map(|s| RateVotes::of(&s.envelope.data))
        .fold(RateVotes::default(), |a, b| RateVotes {
            percent: a.percent + b.percent,
            fraction: a.fraction + b.fraction,
        });
    let rate_scale = votes.decided();
    checks.push(convention_check(
        "rate scale",
        "rate_scale",
        rate_scale,
        gateway.rate_scale,
        format!(
            "inShopRate is walk-ins/outside x100 in {} rows, x1 in {}",
            votes.percent, votes.fraction
        ),
        "published rates are off by a factor of 100",
        &mut problems,
    ));

    // Fields, per method over all its answers.
    let mut fields: BTreeMap<&'static str, FieldCheck> = BTreeMap::new();
    for seen in session.seen {
        let check = check_fields(seen.method, &seen.envelope.data);
        let merged = fields.entry(seen.method).or_default();
        merged.rows += check.rows;
        for (field, n) in check.missing {
            *merged.missing.entry(field).or_insert(0) += n;
        }
        merged.extra.extend(check.extra);
    }
    checks.push(fields_check(&fields, &mut problems));

    // Id lists.
    let lists = &evidence.id_lists;
    checks.push(lists_check(lists, gateway, &mut problems));

    // Organisations.
    checks.push(organisations_check(&evidence, gateway, &mut problems));

    // Shops: walk-outs and outside counters.
    let mut shops: BTreeMap<String, ShopSeries> = BTreeMap::new();
    for seen in session.seen.iter().filter(|s| s.method == METHOD_SHOPS) {
        if let Err(e) = decode_shops(&seen.envelope.data, Reading::default()) {
            problems.push(Problem {
                problem: format!("the answer for {} does not decode: {}", seen.call, e.summary()),
                fix: "the gateway changed the shape of its answer: report it to the vendor and the exporter's issue tracker".to_string(),
            });
        }
        if seen.call.per == Per::Day {
            continue; // the day rows are compared with the hours below
        }
        for shop in shops_of(seen) {
            match shops.get_mut(&shop.dep_id) {
                Some(known) => known.rows.extend(shop.rows),
                None => {
                    shops.insert(shop.dep_id.clone(), shop);
                }
            }
        }
    }
    let face_device_shops: Vec<String> = shops
        .values()
        .filter(|s| !s.rows.is_empty() && s.rows.iter().all(|r| r.values.walk_out.is_none()))
        .map(|s| s.dep_id.clone())
        .collect();
    let no_outside_counter_shops: Vec<String> = shops
        .values()
        .filter(|s| lacks_outside_counter(s))
        .map(|s| s.dep_id.clone())
        .collect();
    checks.push(shop_list_check(
        "walk-outs",
        &face_device_shops,
        shops.len(),
        "every shop seen counts walk-outs",
        "no walk-outs (face-counting devices)",
        "no opretail_shop_walk_out for them",
    ));
    checks.push(shop_list_check(
        "outside counters",
        &no_outside_counter_shops,
        shops.len(),
        "every shop seen counts outside traffic",
        "no outside counter (no outside traffic, or 0 beside walk-ins)",
        "no passing, outside or walk-in rate for them; a chain walk-in rate leaves them out",
    ));

    // Day figures against the sums of their hours.
    let hourly_reading = Reading {
        row_time: row_time.unwrap_or(match gateway.row_time {
            Convention::Fixed(t) => t,
            Convention::Auto => RowTime::Start,
        }),
        ..Reading::default()
    };
    let day_figures = match &evidence.day_call {
        DayCall::NotAsked => DayFigures::NotAsked,
        DayCall::Failed(e) => DayFigures::Failed(e.clone()),
        DayCall::Answered => compare_days(day, session.seen, hourly_reading),
    };
    checks.push(day_figures_check(&day_figures));

    // Devices.
    if !config.devices.is_empty() {
        checks.push(devices_check(&evidence, config, &mut problems));
    }

    if evidence.out_of_time > 0 {
        problems.push(Problem {
            problem: format!(
                "{} calls were not made or not finished within {} s: the checks that needed them are incomplete",
                evidence.out_of_time,
                TIME_BUDGET.as_secs()
            ),
            fix: "check the gateway's latency and gateway.timeout, then run doctor again".to_string(),
        });
    }

    let recommended = recommend(config, row_time, rate_scale, lists, session, &mut problems);
    checks.push(Check {
        name: "calls",
        status: Status::Ok,
        finding: format!(
            "{} gateway calls in {:.1} s (at most {MAX_CALLS})",
            session.calls,
            elapsed.as_secs_f64()
        ),
    });
    Report {
        gateway: shown_url(config),
        timezone: config.timezone,
        day,
        first_call: evidence.first_call,
        signature: evidence.signature,
        clock_skew_seconds: evidence.clock_skew_seconds,
        row_time,
        rate_scale,
        fields,
        id_lists: evidence.id_lists,
        organisations: evidence.organisations,
        organisations_not_asked: evidence.organisations_not_asked,
        shops_seen: shops.len(),
        face_device_shops,
        no_outside_counter_shops,
        day_figures,
        recommended: Some(recommended),
        calls: session.calls,
        elapsed,
        checks,
        problems,
    }
}

/// A shop whose rows never carry outside traffic above 0, and either never carry it at all or
/// carry 0 beside walk-ins (decoded as the exporter decodes them: `outside` is absent then).
/// A shop with no traffic at all tells nothing.
fn lacks_outside_counter(shop: &ShopSeries) -> bool {
    let rows = &shop.rows;
    !rows.is_empty()
        && !rows.iter().any(|r| r.values.outside.is_some_and(|o| o > 0.0))
        && (rows.iter().all(|r| r.values.outside.is_none())
            || rows.iter().any(|r| r.values.walk_in.is_some_and(|w| w > 0.0)))
}

/// The check of a convention: what the answers show against the setting.
fn convention_check<T: Named + PartialEq + std::fmt::Display>(
    name: &'static str,
    setting: &str,
    found: Option<T>,
    configured: Convention<T>,
    evidence: String,
    if_wrong: &str,
    problems: &mut Vec<Problem>,
) -> Check {
    match (found, configured) {
        (None, _) => Check {
            name,
            status: Status::Warn,
            finding: format!("unknown: {evidence} (gateway.{setting}: {configured})"),
        },
        (Some(found), Convention::Fixed(set)) if found != set => {
            problems.push(Problem {
                problem: format!("gateway.{setting} is {set}, but the gateway's answers show {found}: {if_wrong}"),
                fix: format!("gateway.{setting}: {found}"),
            });
            Check {
                name,
                status: Status::Fail,
                finding: format!("{found}: {evidence}, but gateway.{setting} is {set}"),
            }
        }
        (Some(found), _) => Check {
            name,
            status: Status::Ok,
            finding: format!("{found}: {evidence} (gateway.{setting}: {configured})"),
        },
    }
}

/// Fields the exporter cannot do without: a row's time and its walk-ins.
const CORE_FIELDS: [&str; 2] = ["time", "passengerFlow"];

/// The check of the fields: read fields no row carries, per method.
fn fields_check(fields: &BTreeMap<&'static str, FieldCheck>, problems: &mut Vec<Problem>) -> Check {
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    for (method, check) in fields {
        let short = short_method(method);
        if check.rows == 0 {
            parts.push(format!("{short}: no rows to check"));
            status = status.max(Status::Warn);
            continue;
        }
        let missing = check.missing_everywhere();
        if missing.is_empty() {
            parts.push(format!("{short}: every read field present ({} rows)", check.rows));
            continue;
        }
        let extra: Vec<&str> = check.extra.iter().map(String::as_str).collect();
        for field in &missing {
            let renamed = CORE_FIELDS.contains(field) || !extra.is_empty();
            if renamed {
                status = Status::Fail;
                problems.push(Problem {
                    problem: format!(
                        "no row of {method} carries {field} (in {} rows): its metric is absent everywhere",
                        check.rows
                    ),
                    fix: if extra.is_empty() {
                        "the gateway may have renamed or dropped it: report it to the vendor and the exporter's issue tracker".to_string()
                    } else {
                        format!(
                            "the gateway may have renamed it (fields it sends that the exporter does not read: {}): report it to the vendor and the exporter's issue tracker",
                            extra.join(", ")
                        )
                    },
                });
            } else {
                status = status.max(Status::Warn);
            }
        }
        let mut part = format!("{short}: {} missing from all {} rows", missing.join(", "), check.rows);
        if !extra.is_empty() {
            part.push_str(&format!(" (unknown fields: {})", extra.join(", ")));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        parts.push("no answer to check".to_string());
        status = Status::Warn;
    }
    Check {
        name: "fields",
        status,
        finding: parts.join("; "),
    }
}

/// `shops` or `devices` for a method name.
fn short_method(method: &str) -> &'static str {
    if method == METHOD_SHOPS {
        "shops"
    } else {
        "devices"
    }
}

/// The check of the `id` lists against `max_ids_per_request` and `max_id_chars`.
fn lists_check(lists: &IdLists, gateway: &crate::config::GatewayConfig, problems: &mut Vec<Problem>) -> Check {
    if lists.tried.is_empty() {
        return Check {
            name: "id lists",
            status: Status::Ok,
            finding: "not tried: no S_ shop to list (configure S_ ids or O_ ids)".to_string(),
        };
    }
    let sizes: Vec<String> = lists
        .tried
        .iter()
        .map(|t| format!("{}{}", t.ids, if t.worked() { "" } else { " (failed)" }))
        .collect();
    let mut finding = format!(
        "lists of {} ids worked (tried {}; {} S_ ids known)",
        lists.max_ids_ok(),
        sizes.join(", "),
        lists.available
    );
    let mut status = Status::Ok;
    for t in lists.tried.iter().filter(|t| !t.worked()) {
        let failed = match &t.error {
            Some(e) => {
                finding.push_str(&format!("; {} ids: {e}", t.ids));
                // Longer than the exporter ever sends: not a problem.
                let sent = t.ids <= gateway.max_ids_per_request && t.chars <= gateway.max_id_chars;
                if t.ids == 1 {
                    problems.push(Problem {
                        problem: format!("the call for {} failed: {e}", t.asked.join(",")),
                        fix: "check the id in the configuration (and that this key may see the shop)".to_string(),
                    });
                } else if sent {
                    // Refused whole every time, before it is asked again in parts.
                    problems.push(Problem {
                        problem: format!(
                            "the gateway refused a list of {} ids ({} characters), and gateway.max_ids_per_request is {}: such calls fail before they are asked again in parts",
                            t.ids, t.chars, gateway.max_ids_per_request
                        ),
                        fix: format!("gateway.max_ids_per_request: {}", lists.max_ids_ok().max(1)),
                    });
                }
                t.ids == 1 || sent
            }
            None => {
                finding.push_str(&format!(
                    "; {} ids: {} shops answered, not {}",
                    t.ids,
                    t.answered,
                    t.missing.join(", ")
                ));
                problems.push(Problem {
                    problem: format!(
                        "a call for {} ids answered {} shops: {} missing (unknown ids, shops this key may not see, or a list cut short)",
                        t.ids,
                        t.answered,
                        t.missing.join(", ")
                    ),
                    fix: "check those ids in the configuration; if each answers alone (opretail-exporter fetch --id ...), lower gateway.max_ids_per_request".to_string(),
                });
                true
            }
        };
        if failed {
            status = Status::Fail;
        }
    }
    Check {
        name: "id lists",
        status,
        finding,
    }
}

/// The check of the organisations' one-hour answers.
fn organisations_check(
    evidence: &Evidence,
    gateway: &crate::config::GatewayConfig,
    problems: &mut Vec<Problem>,
) -> Check {
    if evidence.organisations.is_empty() {
        return Check {
            name: "organisations",
            status: Status::Ok,
            finding: "none configured".to_string(),
        };
    }
    let mut status = Status::Ok;
    let mut parts = Vec::new();
    let near = (gateway.max_response_bytes as f64 * NEAR_LIMIT) as usize;
    for org in &evidence.organisations {
        let id = &org.id;
        if let Some(e) = &org.error {
            status = Status::Fail;
            parts.push(format!("{id}: failed"));
            problems.push(Problem {
                problem: format!("the one-hour call for {id} failed: {e}"),
                fix: if e.contains("max_response_bytes") {
                    "raise gateway.max_response_bytes, or list the organisation's shops as S_ ids".to_string()
                } else {
                    format!("check {id} in the configuration (and that this key may see it)")
                },
            });
            continue;
        }
        let mut part = format!("{id}: {} shops, {} per hour", org.shops, bytes(org.bytes));
        if org.shops == 0 {
            status = Status::Fail;
            problems.push(Problem {
                problem: format!("the gateway answered no shop for {id}"),
                fix: format!("check {id} in the configuration (and that this key may see it)"),
            });
        }
        if org.rows > gateway.max_rows_per_call {
            part.push_str(&format!(
                " (over max_rows_per_call {}: polled through its shops)",
                gateway.max_rows_per_call
            ));
        }
        if org.bytes > near {
            status = Status::Fail;
            problems.push(Problem {
                problem: format!(
                    "the one-hour answer for {id} is {}, near gateway.max_response_bytes ({}): a busier or longer call is refused",
                    bytes(org.bytes),
                    bytes(gateway.max_response_bytes)
                ),
                fix: format!("gateway.max_response_bytes: {}", size_setting(suggested_bytes(org.bytes))),
            });
        }
        parts.push(part);
    }
    if !evidence.organisations_not_asked.is_empty() {
        parts.push(format!("{} more not asked", evidence.organisations_not_asked.len()));
    }
    Check {
        name: "organisations",
        status,
        finding: parts.join("; "),
    }
}

/// The check of a list of shops (face devices, no outside counter): a warning naming them, and
/// what that means for the metrics.
fn shop_list_check(name: &'static str, listed: &[String], seen: usize, none: &str, what: &str, meaning: &str) -> Check {
    if listed.is_empty() {
        return Check {
            name,
            status: Status::Ok,
            finding: format!("{none} ({seen} shops)"),
        };
    }
    Check {
        name,
        status: Status::Warn,
        finding: format!(
            "{what} in {} of {seen} shops: {}; {meaning}",
            listed.len(),
            shortened(listed)
        ),
    }
}

/// Up to 8 names, then how many more.
fn shortened(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The check of the devices asked.
fn devices_check(evidence: &Evidence, config: &Config, problems: &mut Vec<Problem>) -> Check {
    let asked = config.devices.len().min(MAX_DEVICES);
    let mut status = Status::Ok;
    let mut parts = vec![format!("{asked} of {} asked", config.devices.len())];
    for (mac, e) in &evidence.device_failures {
        status = Status::Fail;
        parts.push(format!("{mac} failed"));
        problems.push(Problem {
            problem: format!("the call for device {mac} failed: {e}"),
            fix: "check the device's mac in the configuration (and that this key may see it)".to_string(),
        });
    }
    for mac in &evidence.devices_without_rows {
        status = Status::Fail;
        parts.push(format!("{mac}: no rows"));
        problems.push(Problem {
            problem: format!("the gateway answered no row for device {mac}"),
            fix: "check the device's mac in the configuration (and that this key may see it)".to_string(),
        });
    }
    Check {
        name: "devices",
        status,
        finding: parts.join("; "),
    }
}

/// The settings to put in the configuration, and the problems of the sizes configured.
fn recommend(
    config: &Config,
    row_time: Option<RowTime>,
    rate_scale: Option<RateScale>,
    lists: &IdLists,
    session: &Outcome<'_>,
    problems: &mut Vec<Problem>,
) -> Recommended {
    let gateway = &config.gateway;
    // A list the exporter sends was refused: no longer lists than the longest that worked.
    let refused = lists.tried.iter().any(|t| {
        t.error.is_some() && t.ids > 1 && t.ids <= gateway.max_ids_per_request && t.chars <= gateway.max_id_chars
    });
    let max_ids = match lists.best() {
        Some(best) if refused => gateway.max_ids_per_request.min(best.ids),
        _ => gateway.max_ids_per_request,
    };
    // Bytes per row of the largest shops answer: what max_rows_per_call rows weigh.
    let per_row = session
        .seen
        .iter()
        .filter(|s| s.method == METHOD_SHOPS)
        .map(|s| {
            (
                crate::client::conventions::rows(s.method, &s.envelope.data).len(),
                s.envelope.bytes,
            )
        })
        .filter(|(rows, _)| *rows > 0)
        .max_by_key(|(rows, _)| *rows)
        .map(|(rows, bytes)| bytes.div_ceil(rows));
    let largest = session.seen.iter().map(|s| s.envelope.bytes).max().unwrap_or(0);
    let mut max_response_bytes = gateway.max_response_bytes;
    if largest as f64 > gateway.max_response_bytes as f64 * NEAR_LIMIT {
        max_response_bytes = suggested_bytes(largest);
    }
    let mut max_rows = gateway.max_rows_per_call;
    if let Some(per_row) = per_row {
        let fit = ((max_response_bytes as f64 * NEAR_LIMIT) as usize / per_row.max(1)).max(1);
        if max_rows > fit {
            problems.push(Problem {
                problem: format!(
                    "a call of gateway.max_rows_per_call ({max_rows}) rows weighs about {} at {per_row} bytes a row, near gateway.max_response_bytes ({})",
                    bytes(max_rows.saturating_mul(per_row)),
                    bytes(max_response_bytes)
                ),
                fix: format!("gateway.max_rows_per_call: {fit}"),
            });
            max_rows = fit;
        }
    }
    Recommended {
        row_time: row_time.map_or_else(|| gateway.row_time.to_string(), |v| v.as_str().to_string()),
        rate_scale: rate_scale.map_or_else(|| gateway.rate_scale.to_string(), |v| v.as_str().to_string()),
        max_ids_per_request: max_ids.max(1),
        max_id_chars: gateway.max_id_chars,
        max_rows_per_call: max_rows,
        max_response_bytes,
    }
}

/// A `max_response_bytes` with room for an answer of `bytes`: four times it, in whole MiB.
fn suggested_bytes(bytes: usize) -> usize {
    const MIB: usize = 1024 * 1024;
    bytes.saturating_mul(4).div_ceil(MIB).max(1).saturating_mul(MIB)
}

/// A size as the configuration writes it: `64MiB`, `512KiB`, or bytes.
pub(crate) fn size_setting(n: usize) -> String {
    const KIB: usize = 1024;
    if n > 0 && n % (KIB * KIB) == 0 {
        format!("{}MiB", n / KIB / KIB)
    } else if n > 0 && n % KIB == 0 {
        format!("{}KiB", n / KIB)
    } else {
        n.to_string()
    }
}

/// Bytes for people: `812 B`, `3.4 KiB`, `16.0 MiB`.
pub(crate) fn bytes(n: usize) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{:.1} MiB", f / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    use crate::client::METHOD_DEVICES;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()
    }

    fn config(gateway: &str) -> Config {
        let text = format!(
            "gateway:\n  url: http://127.0.0.1:9/m.api\n  app_key: k\n  app_secret: s\n{gateway}shops:\n  - id: S_1\n  - id: S_2\n  - id: S_3\n  - id: S_4\ndevices:\n  - mac: d47c44906f01\n"
        );
        Config::from_yaml_str(&text, &|_| None).unwrap()
    }

    /// Rows for every hour of `day()` (labelled by start, or by end with `end`) from `row`.
    fn day_rows(end: bool, row: impl Fn(u32) -> Value) -> Vec<Value> {
        (0..24)
            .map(|h| {
                let label = day().and_hms_opt(h, 0, 0).unwrap() + chrono::Duration::hours(i64::from(end));
                let mut r = row(h);
                r["time"] = json!(label.format("%Y-%m-%d %H:%M:%S").to_string());
                r
            })
            .collect()
    }

    /// A row of a shop with every counter: 10 walk-ins of 40 outside, rate in percent or as
    /// a fraction.
    fn full_row(fraction: bool) -> Value {
        json!({"passengerFlow": 10, "passPassengerFlow": 30, "outSidePassengerFlow": 40,
               "inShopRate": if fraction { 0.25 } else { 25.0 }, "outFlowCount": 9, "dressingRate": 12.5})
    }

    fn shop(dep: u64, rows: Vec<Value>) -> Value {
        json!({"depId": dep, "name": format!("Shop {dep}"), "shopId": "", "dataList": rows})
    }

    fn shops_seen(ids: &[u64], data: Value) -> Seen {
        let target = Target::Shops(ids.iter().map(|n| TargetId::Shop(*n)).collect());
        Seen {
            call: Call::day(target, day()),
            method: METHOD_SHOPS,
            envelope: Envelope {
                bytes: data.to_string().len() + 100,
                data,
                cid: "c".into(),
                systime_ms: None,
            },
            skew: None,
        }
    }

    fn evidence(skew: f64) -> Evidence {
        Evidence {
            first_call: "S_1 2024-05-01".into(),
            signature: Signature::Accepted,
            first_failure: None,
            clock_skew_seconds: Some(skew),
            id_lists: IdLists::default(),
            organisations: Vec::new(),
            organisations_not_asked: Vec::new(),
            device_failures: Vec::new(),
            devices_without_rows: Vec::new(),
            day_call: DayCall::NotAsked,
            out_of_time: 0,
        }
    }

    fn judged(config: &Config, evidence: Evidence, seen: &[Seen]) -> Report {
        let outcome = Outcome {
            seen,
            calls: seen.len(),
            elapsed: Duration::from_millis(300),
        };
        judge(config, day(), evidence, &outcome, Vec::new())
    }

    fn check<'r>(report: &'r Report, name: &str) -> &'r Check {
        report.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn end_labelled_rows_and_fractions_are_found_and_recommended() {
        let data = json!([shop(1, day_rows(true, |_| full_row(true)))]);
        let report = judged(&config(""), evidence(0.5), &[shops_seen(&[1], data)]);
        assert_eq!(report.row_time, Some(RowTime::End));
        assert_eq!(report.rate_scale, Some(RateScale::Fraction));
        assert!(report.ok(), "{:?}", report.problems);
        let recommended = report.recommended.clone().unwrap();
        assert_eq!(
            (recommended.row_time.as_str(), recommended.rate_scale.as_str()),
            ("end", "fraction")
        );
        assert_eq!(check(&report, "row time").status, Status::Ok);

        // The same answers against fixed settings that say otherwise.
        let data = json!([shop(1, day_rows(true, |_| full_row(true)))]);
        let fixed = config("  row_time: start\n  rate_scale: percent\n");
        let report = judged(&fixed, evidence(0.5), &[shops_seen(&[1], data)]);
        let fixes: Vec<&str> = report.problems.iter().map(|p| p.fix.as_str()).collect();
        assert_eq!(fixes, ["gateway.row_time: end", "gateway.rate_scale: fraction"]);
        assert_eq!(check(&report, "rate scale").status, Status::Fail);
    }

    #[test]
    fn a_renamed_field_is_a_problem_naming_the_candidates() {
        let renamed = |_| {
            let mut r = full_row(false);
            let v = r["passPassengerFlow"].take();
            r.as_object_mut().unwrap().remove("passPassengerFlow");
            r["passFlow"] = v;
            r
        };
        let data = json!([shop(1, day_rows(false, renamed))]);
        let report = judged(&config(""), evidence(0.0), &[shops_seen(&[1], data)]);
        let fields = &report.fields[METHOD_SHOPS];
        assert_eq!(fields.missing_everywhere(), ["passPassengerFlow"]);
        assert_eq!(fields.extra.iter().collect::<Vec<_>>(), ["passFlow"]);
        assert_eq!(check(&report, "fields").status, Status::Fail);
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0]
            .fix
            .contains("renamed it (fields it sends that the exporter does not read: passFlow)"));
    }

    #[test]
    fn an_optional_field_no_shop_has_is_a_warning_without_a_candidate() {
        let no_fitting = |_| {
            let mut r = full_row(false);
            r.as_object_mut().unwrap().remove("dressingRate");
            r
        };
        let data = json!([shop(1, day_rows(false, no_fitting))]);
        let report = judged(&config(""), evidence(0.0), &[shops_seen(&[1], data)]);
        assert_eq!(report.fields[METHOD_SHOPS].missing_everywhere(), ["dressingRate"]);
        assert_eq!(check(&report, "fields").status, Status::Warn);
        assert!(report.ok());
        // Walk-ins are not optional.
        let no_walk_ins = |_| {
            let mut r = full_row(false);
            r.as_object_mut().unwrap().remove("passengerFlow");
            r
        };
        let data = json!([shop(1, day_rows(false, no_walk_ins))]);
        let report = judged(&config(""), evidence(0.0), &[shops_seen(&[1], data)]);
        assert!(!report.ok());
    }

    #[test]
    fn face_device_and_no_outside_counter_shops_are_listed() {
        let face = |_| {
            let mut r = full_row(false);
            r.as_object_mut().unwrap().remove("outFlowCount");
            r
        };
        let zero_outside = |_| json!({"passengerFlow": 7, "outSidePassengerFlow": 0, "outFlowCount": 6});
        let no_outside = |_| json!({"passengerFlow": 7, "outFlowCount": 6});
        let closed = |_| json!({"passengerFlow": 0, "outSidePassengerFlow": 0, "outFlowCount": 0});
        let data = json!([
            shop(1, day_rows(false, |_| full_row(false))),
            shop(2, day_rows(false, face)),
            shop(3, day_rows(false, zero_outside)),
            shop(4, day_rows(false, no_outside)),
            shop(5, day_rows(false, closed)),
        ]);
        let report = judged(&config(""), evidence(0.0), &[shops_seen(&[1, 2, 3, 4, 5], data)]);
        assert_eq!(report.face_device_shops, ["2"]);
        assert_eq!(report.no_outside_counter_shops, ["3", "4"]);
        assert_eq!(report.shops_seen, 5);
        assert_eq!(check(&report, "walk-outs").status, Status::Warn);
        assert!(check(&report, "outside counters")
            .finding
            .starts_with("no outside counter (no outside traffic, or 0 beside walk-ins) in 2 of 5 shops: 3, 4;"));
        assert!(report.ok(), "findings, not problems: {:?}", report.problems);
    }

    #[test]
    fn a_clock_off_by_more_than_a_minute_is_a_problem() {
        let data = json!([shop(1, day_rows(false, |_| full_row(false)))]);
        let report = judged(&config(""), evidence(300.0), &[shops_seen(&[1], data)]);
        assert_eq!(check(&report, "clock").status, Status::Fail);
        assert_eq!(report.problems.len(), 1);
        assert!(report.problems[0].problem.contains("300 s ahead of"));
        assert!(report.problems[0].fix.contains("NTP"));
        let data = json!([shop(1, day_rows(false, |_| full_row(false)))]);
        assert!(judged(&config(""), evidence(-59.0), &[shops_seen(&[1], data)]).ok());
    }

    #[test]
    fn device_rows_are_checked_too() {
        let rows = json!({"dataList": day_rows(false, |_| json!({"passengerFlow": 1, "walkOut": 1}))});
        let device = Seen {
            call: Call::day(Target::Device(config("").devices[0].clone()), day()),
            method: METHOD_DEVICES,
            envelope: Envelope {
                data: rows,
                cid: String::new(),
                systime_ms: None,
                bytes: 10,
            },
            skew: None,
        };
        let report = judged(&config(""), evidence(0.0), &[device]);
        assert_eq!(
            report.row_time,
            Some(RowTime::Start),
            "device days tell the row time too"
        );
        assert_eq!(report.fields[METHOD_DEVICES].missing_everywhere(), ["outFlowCount"]);
        assert!(!report.ok(), "an unknown field beside: likely renamed");
    }

    fn tried(ids: usize, chars: usize, error: Option<&str>, missing: &[&str]) -> ListTry {
        ListTry {
            asked: (1..=ids).map(|n| format!("S_{n}")).collect(),
            ids,
            chars,
            answered: if error.is_some() { 0 } else { ids - missing.len() },
            missing: missing.iter().map(|m| m.to_string()).collect(),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn id_lists_are_a_problem_only_when_the_exporter_sends_what_failed() {
        let lists = IdLists {
            available: 60,
            tried: vec![
                tried(1, 3, None, &[]),
                tried(2, 7, None, &[]),
                tried(10, 49, None, &[]),
                tried(50, 249, Some("gateway error 400001 PARAM_TOO_LONG"), &[]),
            ],
        };
        assert_eq!((lists.accepted(), lists.max_ids_ok()), (Some(true), 10));
        let mut problems = Vec::new();
        let gateway = &config("").gateway;
        assert_eq!(lists_check(&lists, gateway, &mut problems).status, Status::Fail);
        assert_eq!(problems[0].fix, "gateway.max_ids_per_request: 10");
        // The exporter sends at most 10 ids: the refused 50 is none of its business.
        let mut problems = Vec::new();
        let gateway = &config("  max_ids_per_request: 10\n").gateway;
        assert_eq!(lists_check(&lists, gateway, &mut problems).status, Status::Ok);
        assert!(problems.is_empty());
        // Nor when the list is longer than max_id_chars.
        let gateway = &config("  max_id_chars: 200\n").gateway;
        assert_eq!(lists_check(&lists, gateway, &mut problems).status, Status::Ok);

        // A list answered in part names the missing ids.
        let lists = IdLists {
            available: 4,
            tried: vec![tried(1, 3, None, &[]), tried(2, 7, None, &["S_2"])],
        };
        assert_eq!((lists.accepted(), lists.max_ids_ok()), (Some(false), 1));
        let mut problems = Vec::new();
        lists_check(&lists, &config("").gateway, &mut problems);
        assert!(problems[0].problem.contains("answered 1 shops: S_2 missing"));
        assert_eq!(IdLists::default().accepted(), None);
    }

    #[test]
    fn sizes_are_written_as_the_configuration_reads_them() {
        assert_eq!(size_setting(16 * 1024 * 1024), "16MiB");
        assert_eq!(size_setting(512 * 1024), "512KiB");
        assert_eq!(size_setting(1000), "1000");
        assert_eq!(suggested_bytes(3 * 1024 * 1024), 12 * 1024 * 1024);
        assert_eq!(suggested_bytes(10), 1024 * 1024);
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(3482), "3.4 KiB");
    }

    #[test]
    fn the_text_has_a_line_per_check_and_the_verdict() {
        let data = json!([shop(1, day_rows(false, |_| full_row(false)))]);
        let report = judged(&config(""), evidence(300.0), &[shops_seen(&[1], data)]);
        let text = render_text(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "opretail-exporter doctor: http://127.0.0.1:9/m.api (Asia/Shanghai, day 2024-05-01)"
        );
        assert_eq!(lines[1], "ok    signature         accepted (S_1 2024-05-01)");
        assert!(lines[2].starts_with("FAIL  clock             +300.0 s from the gateway's stat.systime"));
        assert!(text.contains("\n  row_time: start\n  rate_scale: percent\n"));
        assert!(text.contains("\n1 problem:\n  1. this host's clock is 300 s ahead of"));
        assert!(text.ends_with("verdict: FAIL, fix the problems above and run doctor again\n"));
        let json = render_json(&report);
        assert_eq!(json["ok"], false);
        assert_eq!(json["clock_skew_seconds"], 300.0);
        assert_eq!(json["problems"][0]["fix"], "synchronise this host's clock (NTP)");
        assert_eq!(json["fields"][METHOD_SHOPS]["missing"], json!([]));
    }

    /// A day-figures answer for the shops `ids`: the rows `data`.
    fn day_seen(ids: &[u64], data: Value) -> Seen {
        let target = Target::Shops(ids.iter().map(|n| TargetId::Shop(*n)).collect());
        Seen {
            call: Call::day_figures(target, day()),
            ..shops_seen(ids, data)
        }
    }

    fn day_row(walk_in: u64, outside: u64, walk_out: Option<u64>) -> Value {
        let mut row = json!({"time": "2024-05-01 00:00:00", "passengerFlow": walk_in,
                             "passPassengerFlow": outside - walk_in, "outSidePassengerFlow": outside,
                             "inShopRate": 25.0, "dressingRate": 12.5});
        if let Some(w) = walk_out {
            row["outFlowCount"] = json!(w);
        }
        row
    }

    #[test]
    fn day_figures_are_compared_with_hours_read_under_the_row_time_found() {
        let face = |_| {
            let mut r = full_row(false);
            r.as_object_mut().unwrap().remove("outFlowCount");
            r
        };
        // End-labelled hours: read as start-labelled, the day would lose its first hour.
        let hourly = json!([
            shop(1, day_rows(true, |_| full_row(false))),
            shop(2, day_rows(true, face)),
            shop(3, day_rows(true, |_| full_row(false))),
            shop(4, day_rows(true, |_| full_row(false))),
        ]);
        let days = json!([
            shop(1, vec![day_row(240, 960, Some(216))]),
            shop(2, vec![day_row(204, 924, None)]),
            shop(3, vec![day_row(250, 970, Some(216))]),
        ]);
        let mut evidence = evidence(0.0);
        evidence.day_call = DayCall::Answered;
        let seen = [shops_seen(&[1, 2, 3, 4], hourly), day_seen(&[1, 2, 3, 4], days)];
        let report = judged(&config(""), evidence, &seen);
        assert_eq!(report.row_time, Some(RowTime::End));
        assert_eq!(
            report.day_figures,
            DayFigures::Compared(vec![
                ("1".into(), DayVerdict::Consistent),
                (
                    "2".into(),
                    DayVerdict::DeDuplicated {
                        day: 204.0,
                        hours: 240.0
                    }
                ),
                (
                    "3".into(),
                    DayVerdict::Differs(vec![
                        CountDiff {
                            count: "walk-in",
                            day: 250.0,
                            hours: 240.0
                        },
                        CountDiff {
                            count: "outside",
                            day: 970.0,
                            hours: 960.0
                        },
                    ])
                ),
                ("4".into(), DayVerdict::NotCompared("no day row")),
            ])
        );
        let check = check(&report, "day figures");
        assert_eq!(check.status, Status::Warn);
        assert!(
            check.finding.starts_with(
                "day rows equal the sums of their hours in 1 of 4 shops; day walk-in below the sum of the hours in 1 of 4 shops: 2; "
            ),
            "{}",
            check.finding
        );
        assert!(check
            .finding
            .contains("opretail_shop_walk_in_today for them is below the sum of their hourly walk-ins by design"));
        assert!(check.finding.contains("differ from the sums of their hours in 1 of 4 shops: 3 (walk-in day 250 / hours 240, outside day 970 / hours 960);"), "{}", check.finding);
        assert!(
            check.finding.ends_with("not compared in 1 of 4 shops: 4 (no day row)"),
            "{}",
            check.finding
        );
        assert!(report.ok(), "a finding, not a problem: {:?}", report.problems);
        assert_eq!(report.shops_seen, 4, "the day rows are no shops of their own");
        assert_eq!(report.face_device_shops, ["2"]);

        let json = render_json(&report);
        let figures = &json["day_figures"];
        assert_eq!(figures["asked"], true);
        assert_eq!(figures["consistent"], json!(["1"]));
        assert_eq!(figures["de_duplicated"], json!(["2"]));
        assert_eq!(figures["differing"][0]["shop"], "3");
        assert_eq!(
            figures["differing"][0]["counts"][0],
            json!({"count": "walk-in", "day": 250.0, "hours": 240.0})
        );
        assert_eq!(figures["not_compared"], json!([{"shop": "4", "reason": "no day row"}]));
        assert!(json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "day figures" && c["status"] == "warn"));

        // Only the consistent and the de-duplicated: a finding, no warning.
        let hourly = json!([
            shop(1, day_rows(true, |_| full_row(false))),
            shop(2, day_rows(true, face))
        ]);
        let days = json!([
            shop(1, vec![day_row(240, 960, Some(216))]),
            shop(2, vec![day_row(204, 924, None)])
        ]);
        let mut evidence = self::evidence(0.0);
        evidence.day_call = DayCall::Answered;
        let report = judged(
            &config(""),
            evidence,
            &[shops_seen(&[1, 2], hourly), day_seen(&[1, 2], days)],
        );
        assert_eq!(check_of(&report).status, Status::Ok, "{}", check_of(&report).finding);
    }

    fn check_of(report: &Report) -> &Check {
        check(report, "day figures")
    }

    #[test]
    fn a_day_call_lost_or_not_made_is_said() {
        let data = || json!([shop(1, day_rows(false, |_| full_row(false)))]);
        let mut evidence = evidence(0.0);
        evidence.day_call = DayCall::Failed("gateway error 5 PARAM_ERROR: timeType".into());
        let report = judged(&config(""), evidence, &[shops_seen(&[1], data())]);
        let check = check_of(&report);
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.finding,
            "the day rows (timeType=2) were not compared with the hours: gateway error 5 PARAM_ERROR: timeType; opretail_shop_*_today come from such calls"
        );
        assert_eq!(
            render_json(&report)["day_figures"]["error"],
            "gateway error 5 PARAM_ERROR: timeType"
        );
        let report = judged(&config(""), self::evidence(0.0), &[shops_seen(&[1], data())]);
        assert_eq!(check_of(&report).status, Status::Ok);
        assert!(check_of(&report).finding.starts_with("not asked: "));
        assert_eq!(render_json(&report)["day_figures"]["asked"], false);
    }

    #[tokio::test]
    async fn an_http_gateway_elsewhere_is_a_warning_before_the_checks() {
        // The calls go to a closed loopback port; the configuration judged names another host.
        let local = config(
            "  max_retries: 0
",
        );
        let store = crate::metrics::MetricsStore::new("test", "test").unwrap();
        let client = Client::new(&local.gateway, Clock::system(), store.api().clone()).unwrap();
        let mut elsewhere = local.clone();
        elsewhere.gateway.url = "http://gw.example/m.api?k=v".parse().unwrap();
        let report = run(&client, &elsewhere, &Clock::system()).await;
        let first = &report.checks[0];
        assert_eq!((first.name, first.status), ("configuration", Status::Warn));
        assert!(
            first.finding.starts_with("gateway.url is http://gw.example:80"),
            "{}",
            first.finding
        );
        assert_eq!(report.checks[1].name, "signature");
        let text = render_text(&report);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("warn  configuration     gateway.url is http://gw.example:80, not this machine"),
            "{text}"
        );
        assert!(!text.contains("k=v"), "{text}");
        let json = render_json(&report);
        assert_eq!(json["checks"][0]["check"], "configuration");
        assert_eq!(json["checks"][0]["status"], "warn");
        let report = run(&client, &local, &Clock::system()).await;
        assert!(
            report.checks.iter().all(|c| c.name != "configuration"),
            "loopback: no warning"
        );
    }
}

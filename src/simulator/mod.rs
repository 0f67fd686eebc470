//! A fake Opretail gateway, independent of the exporter's client so that it can catch the
//! client's mistakes: it owns the simulated tenant (organisations, shops, counting devices), a
//! deterministic traffic model that says how many people each shop and device counted in any
//! hour ([`shop_hour`], [`device_hour`]), and an HTTP server that answers the two gateway
//! methods the exporter calls (and the login) exactly like the real `m.api` does — same
//! envelope, same signature check, same error codes in the same order, rows for every hour of
//! the asked days with zeros for hours still to come (`timeType=1`), or one row per day
//! (`timeType=2`, [`shop_day`], [`device_day`]). Signature, codes, method names, time
//! formats and header names are its own, written from the gateway's published rules, never
//! borrowed from the client it is there to test. Faults (gateway error codes, HTTP errors, hangs, garbage,
//! truncated bodies, wrong content type) can be switched on from code ([`Simulator::set_fault`])
//! or over HTTP (`POST /-/fault`). Switches on [`SimConfig`] make it prove more: realistic row
//! sizes ([`RowDetail`]), organisations of any size ([`SimConfig::large`]), a longest `id` and a
//! largest answer (refused with the simulator's own stand-in codes [`PARAM_TOO_LONG`] and
//! [`DATA_TOO_LARGE`]); and it counts its answers by `stat.code` ([`Simulator::answered`]) so a
//! test can say from the gateway's side that no call failed, and keeps what the last shops
//! requests asked for ([`Simulator::shops_asked`]) so a test can see the days and hours sent.
//! Each convention the vendor's pages leave open is a switch too, so a test can prove the
//! exporter right under every reading: hourly rows labelled by the start or the end of their
//! hour ([`SimRowTime`]), rates as percentages or ratios ([`SimRateScale`]), row fields under
//! other names, a gateway clock that runs ahead or behind, late uploads that revise a past
//! hour, and shops that count with face devices (no walk-outs, de-duplicated days) or without
//! an outside counter. It is used by
//! `opretail-exporter demo`, `opretail-exporter simulate` and the integration tests.
//!
//! This file is the request core ([`Simulator::handle`]): the shared state, its counters and
//! the order in which a request is checked and answered. Beside it: `tenant` (who the gateway knows),
//! `traffic` (the hourly counts), `day` (day rows), `verify` (`_sig`), `codes` (return codes),
//! `times` (time formats and windows), `limits` (replays and the request budget), `faults`,
//! `reply` (the JSON written back) and `server` (the axum layer), which stays thin so the core
//! is tested without a socket.

mod codes;
mod day;
mod faults;
mod limits;
mod reply;
mod server;
mod tenant;
#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
mod times;
mod traffic;
mod verify;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use self::codes::{DATA_TOO_LARGE, ID_NOT_ALLOWED, PARAM_TOO_LONG};
pub use self::day::{device_day, shop_day, SimDeviceDay, SimShopDay};
pub use self::faults::{Fault, FaultParseError};
pub use self::limits::RateRule;
pub use self::reply::{Outcome, SimReply};
pub use self::server::RunningSimulator;
pub use self::tenant::{DeviceShape, RowDetail, SimConfig, SimDevice, SimOrg, SimRateScale, SimRowTime, SimShop};
pub use self::traffic::{device_hour, shop_hour, SimDeviceHour, SimShopHour};

use self::codes::Refusal;
use self::limits::{Nonces, RateBudget};
use self::reply::{device_rows, envelope, shop_json, Rows};
use self::tenant::normalize_mac;
use self::times::{parse_timestamp, whole_days, HourWindow};
use self::verify::{is_signed, Algorithm};

/// Gateway method: hourly passenger indicators of many shops / organisations in one call.
const METHOD_SHOPS: &str = "open.passengerflow.getManyShopsPassengerIndicatorData";
/// Gateway method: hourly walk-in / walk-out of one counting device.
const METHOD_DEVICES: &str = "open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator";
/// Gateway method: a user token for a web-console account.
const METHOD_LOGIN: &str = "open.shopweb.security.mobileLogin";
/// How many `_sig` values are kept for [`Simulator::signatures`].
const SIGNATURE_MEMORY: usize = 10_000;
/// How many shops requests are kept for [`Simulator::shops_asked`].
const SHOPS_ASKED_MEMORY: usize = 1_000;

/// What one shops request asked for, its parameters as received (for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopsAsked {
    pub id: String,
    pub start_time: String,
    pub end_time: String,
    pub starthour: Option<String>,
    pub endhour: Option<String>,
    /// `timeType` as sent (`1` hourly rows, `2` day rows).
    pub time_type: Option<String>,
}

struct Inner {
    cfg: SimConfig,
    /// Shops by dep id, and organisations and devices by id, for large tenants.
    shop_index: HashMap<u64, (usize, usize)>,
    org_index: HashMap<u64, usize>,
    device_index: HashMap<String, usize>,
    /// The gateway's request budget, when `rate_limit` is set.
    budget: RateBudget,
    fault: Mutex<Option<Fault>>,
    /// Faults played only for calls that name one id (`S_…`, `O_…`) or mac.
    target_faults: Mutex<HashMap<String, Fault>>,
    nonces: Mutex<Nonces>,
    requests: AtomicU64,
    /// Shop rows answered by the shops method (one per shop and hour, or day for day rows).
    shop_rows: AtomicU64,
    /// Day rows answered by the shops method (one per shop and day).
    day_rows: AtomicU64,
    /// Gateway answers by `stat.code`.
    answered: Mutex<BTreeMap<i64, u64>>,
    /// Tokens issued by logins and still valid.
    tokens: Mutex<HashSet<String>>,
    /// The most recent `_sig` values received (for tests that look for leaks).
    signatures: Mutex<VecDeque<String>>,
    /// The most recent shops requests with valid parameters.
    shops_asked: Mutex<VecDeque<ShopsAsked>>,
    /// Cancelled (and replaced) to release hanging requests: on shutdown and on a fault change.
    release: Mutex<CancellationToken>,
}

/// The fake gateway. Cheap to clone; clones share configuration, fault, nonces and counter.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("aid", &self.inner.cfg.aid)
            .field("shops", &self.inner.cfg.shops().count())
            .field("devices", &self.inner.cfg.devices.len())
            .field("fault", &self.fault())
            .field("requests", &self.requests())
            .finish()
    }
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Self {
        let mut shop_index = HashMap::new();
        let mut org_index = HashMap::new();
        for (o, org) in cfg.orgs.iter().enumerate() {
            org_index.entry(org.org_id).or_insert(o);
            for (i, shop) in org.shops.iter().enumerate() {
                shop_index.entry(shop.dep_id).or_insert((o, i));
            }
        }
        let device_index = cfg
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (normalize_mac(&d.mac), i))
            .collect();
        Simulator {
            inner: Arc::new(Inner {
                shop_index,
                org_index,
                device_index,
                budget: RateBudget::new(cfg.rate_limit, cfg.rate_rule),
                cfg,
                fault: Mutex::new(None),
                target_faults: Mutex::new(HashMap::new()),
                nonces: Mutex::new(Nonces::default()),
                requests: AtomicU64::new(0),
                shop_rows: AtomicU64::new(0),
                day_rows: AtomicU64::new(0),
                answered: Mutex::new(BTreeMap::new()),
                tokens: Mutex::new(HashSet::new()),
                signatures: Mutex::new(VecDeque::new()),
                shops_asked: Mutex::new(VecDeque::new()),
                release: Mutex::new(CancellationToken::new()),
            }),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// Plays `fault` on every gateway request until cleared with `None`. Changing the fault
    /// releases requests hanging under [`Fault::Hang`].
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.inner.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
        self.release_hangs();
        tracing::debug!(fault = ?fault, "simulator fault set");
    }

    /// Plays `fault` on every gateway request whose `id` list names `target` (`S_<depId>` or
    /// `O_<orgId>`, as written in the list) or whose `mac` is `target`, until cleared with
    /// `None`; other requests are answered as usual. The whole request fails, as a gateway
    /// refusing one id of a list would fail it; a client that splits such a call finds the
    /// one id that fails.
    pub fn set_target_fault(&self, target: &str, fault: Option<Fault>) {
        let key = target_key(target);
        let mut faults = self.inner.target_faults.lock().unwrap_or_else(PoisonError::into_inner);
        match fault {
            Some(f) => {
                faults.insert(key, f);
            }
            None => {
                faults.remove(&key);
            }
        }
        drop(faults);
        self.release_hangs();
        tracing::debug!(target, fault = ?fault, "simulator target fault set");
    }

    /// The fault played for a request with `params`: one set for an id or mac it names.
    fn target_fault(&self, params: &[(String, String)]) -> Option<Fault> {
        let faults = self.inner.target_faults.lock().unwrap_or_else(PoisonError::into_inner);
        if faults.is_empty() {
            return None;
        }
        let ids = param(params, "id").into_iter().flat_map(|ids| ids.split(','));
        let mac = param(params, "mac");
        ids.chain(mac).find_map(|named| faults.get(&target_key(named)).copied())
    }

    /// The fault being played, if any.
    pub fn fault(&self) -> Option<Fault> {
        *self.inner.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gateway requests received so far (faulted and refused ones included).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Hourly shop rows the shops method has answered so far (one per shop and hour): what the
    /// exporter made the gateway send.
    pub fn shop_rows(&self) -> u64 {
        self.inner.shop_rows.load(Ordering::Relaxed)
    }

    /// Day rows the shops method has answered so far (`timeType=2`, one per shop and day).
    pub fn day_rows(&self) -> u64 {
        self.inner.day_rows.load(Ordering::Relaxed)
    }

    /// How many gateway answers carried `stat.code` `code` so far: success (0), refusals,
    /// rate-limit answers and [`Fault::Code`] / [`Fault::Oversized`] answers alike. Answers
    /// without a readable envelope (HTTP errors, hangs, garbage, truncated bodies, HTML pages)
    /// carry no code and are not counted.
    pub fn answered(&self, code: i64) -> u64 {
        self.answered_lock().get(&code).copied().unwrap_or(0)
    }

    /// Every `stat.code` answered so far, with how many answers carried it (see
    /// [`Simulator::answered`]).
    pub fn codes_answered(&self) -> BTreeMap<i64, u64> {
        self.answered_lock().clone()
    }

    fn answered_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, u64>> {
        self.inner.answered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an answer with `stat.code` `code`.
    fn count_answer(&self, code: i64) {
        *self.answered_lock().entry(code).or_insert(0) += 1;
    }

    /// Invalidates every token issued so far: the next business call with one answers
    /// 9990001 TOKEN_NOT_EXIST.
    pub fn expire_tokens(&self) {
        self.inner.tokens.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Issues a token as a login would (for tests of a fixed configured token).
    pub fn issue_token(&self) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone());
        token
    }

    /// The tokens issued and still valid.
    pub fn tokens(&self) -> Vec<String> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The last (up to 10,000) `_sig` values received.
    pub fn signatures(&self) -> Vec<String> {
        self.inner
            .signatures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// What the last (up to 1,000) shops requests with valid parameters asked for, oldest
    /// first (faulted requests are not kept).
    pub fn shops_asked(&self) -> Vec<ShopsAsked> {
        self.inner
            .shops_asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn remember_shops_asked(&self, asked: ShopsAsked) {
        let mut kept = self.inner.shops_asked.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= SHOPS_ASKED_MEMORY {
            kept.pop_front();
        }
        kept.push_back(asked);
    }

    fn release_hangs(&self) {
        let mut guard = self.inner.release.lock().unwrap_or_else(PoisonError::into_inner);
        guard.cancel();
        *guard = CancellationToken::new();
    }

    fn release_token(&self) -> CancellationToken {
        self.inner
            .release
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    #[cfg(test)]
    /// The gateway core: counts the request, plays the fault if one is set, else validates the
    /// common parameters in the order of their code numbers and answers the method.
    pub(crate) fn handle(&self, params: &[(String, String)]) -> Outcome {
        self.handle_with_token(params, None)
    }

    /// [`Simulator::handle`] for a request that carried `token` in its `authenticator` or
    /// `Ovo-Authorization` header.
    pub(crate) fn handle_with_token(&self, params: &[(String, String)], token: Option<&str>) -> Outcome {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(sig) = param(params, "_sig") {
            let mut sigs = self.inner.signatures.lock().unwrap_or_else(PoisonError::into_inner);
            if sigs.len() >= SIGNATURE_MEMORY {
                sigs.pop_front();
            }
            sigs.push_back(sig.to_owned());
        }
        let mt = param(params, "_mt").unwrap_or("");
        if let Some(fault) = self.fault().or_else(|| self.target_fault(params)) {
            tracing::debug!(method = mt, fault = %fault, "simulated gateway request (fault)");
            match fault {
                Fault::Code(code) => self.count_answer(code),
                Fault::Oversized(_) => self.count_answer(codes::SUCCESS),
                _ => {}
            }
            return fault.outcome(&self.inner.cfg);
        }
        let now = self.inner.cfg.gateway_now();
        if !self.inner.budget.take() {
            tracing::debug!(method = mt, "simulated gateway request over the rate limit");
            let repeat = codes::API_CALL_REPEAT;
            self.count_answer(repeat);
            return Outcome::Reply(envelope(now, repeat, codes::description(repeat), Value::Null));
        }
        let (code, reply) = match self.answer(params, token).and_then(|answer| self.within_size(answer)) {
            Ok(sent) => sent,
            Err(Refusal { code, text }) => (code, envelope(now, code, &text, Value::Null)),
        };
        tracing::debug!(method = mt, code, "simulated gateway request");
        self.count_answer(code);
        Outcome::Reply(reply)
    }

    /// The success envelope of `answer`, unless it is a shops answer larger than
    /// `max_answer_bytes`; its shop rows count as answered only once it is sent.
    fn within_size(&self, answer: Answer) -> Result<(i64, SimReply), Refusal> {
        let success = codes::SUCCESS;
        let reply = envelope(
            self.inner.cfg.gateway_now(),
            success,
            codes::description(success),
            answer.data,
        );
        if let Some(rows) = answer.shop_rows {
            if self
                .inner
                .cfg
                .max_answer_bytes
                .is_some_and(|max| reply.body.len() > max)
            {
                return Err(Refusal::code(codes::DATA_TOO_LARGE));
            }
            let counter = match answer.daily {
                true => &self.inner.day_rows,
                false => &self.inner.shop_rows,
            };
            counter.fetch_add(rows, Ordering::Relaxed);
        }
        Ok((success, reply))
    }

    /// Validation of the common parameters, then the method.
    fn answer(&self, params: &[(String, String)], token: Option<&str>) -> Result<Answer, Refusal> {
        let cfg = &self.inner.cfg;
        let present = |name: &str| param(params, name).filter(|v| !v.is_empty());

        let akey = present("_akey").ok_or(Refusal::code(codes::KEY_NOTNULL))?;
        if akey != cfg.app_key {
            return Err(Refusal::code(codes::KEY_UNLAWFUL));
        }
        let sm = present("_sm").ok_or(Refusal::code(codes::SIGN_METHOD_NOTNULL))?;
        let algorithm = Algorithm::from_sm(sm).ok_or(Refusal::code(codes::SIGN_TYPE_NOTEXIST))?;
        let sig = present("_sig").ok_or(Refusal::code(codes::SIGN_NOTNULL))?;
        if !is_signed(params, &cfg.app_secret, algorithm, sig) {
            return Err(Refusal::code(codes::SIGN_WRONG));
        }
        let mt = present("_mt").ok_or(Refusal::code(codes::METHOD_NOTNULL))?;
        if mt != METHOD_SHOPS && mt != METHOD_DEVICES && mt != METHOD_LOGIN {
            return Err(Refusal::code(codes::METHOD_NOTEXIST_CODE));
        }
        present("_requestMode").ok_or(Refusal::code(codes::REQUESTMODE_NOTNULL))?;
        let aid = present("_aid").ok_or(Refusal::code(codes::APPLICATIONID_NOTNULL))?;
        if aid != cfg.aid {
            return Err(Refusal::code(codes::APPLICATIONID_NOTSAME));
        }
        present("_version").ok_or(Refusal::code(codes::VERSION_NOTNULL))?;
        let ts = present("_timestamp").ok_or(Refusal::code(codes::TIMESTAMP_NOTNULL))?;
        let ts = parse_timestamp(ts).ok_or(Refusal::code(codes::TIMESTAMP_FORMAT_ERROR))?;
        let now = cfg.now_local();
        let skew = (ts - now).abs().to_std().unwrap_or(Duration::MAX);
        if skew > cfg.max_skew {
            return Err(Refusal::code(codes::TIMESTAMP_OVERTIME));
        }
        if let Some(format) = present("_format") {
            if !format.eq_ignore_ascii_case("json") {
                return Err(Refusal::code(codes::FORMAT_TYPE_NOTEXIST));
            }
        }
        if let Some(nonce) = present("_nonce") {
            let fresh = self
                .inner
                .nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(nonce);
            if !fresh {
                return Err(Refusal::code(codes::API_CALL_REPEAT));
            }
        }

        if mt == METHOD_LOGIN {
            return self.login(present("userName"), present("password")).map(Answer::other);
        }
        if cfg.require_token {
            let valid = token.is_some_and(|t| {
                self.inner
                    .tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(t)
            });
            if !valid {
                return Err(Refusal::code(codes::TOKEN_NOT_EXIST));
            }
        }
        if mt == METHOD_SHOPS {
            let id_chars = param(params, "id").map_or(0, |id| id.chars().count());
            if cfg.max_id_chars.is_some_and(|max| id_chars > max) {
                return Err(Refusal::code(codes::PARAM_TOO_LONG));
            }
        }
        let daily = match present("timeType").map(str::trim) {
            None | Some("1") => false,
            Some("2") => true,
            Some(tt) => {
                return Err(Refusal::system(format!(
                    "timeType {tt:?} is not simulated (only 1 = hour and 2 = day)"
                )))
            }
        };
        let (start, end) = whole_days(present("startTime"), present("endTime"))?;
        if mt == METHOD_SHOPS {
            let ids = present("id").ok_or_else(|| Refusal::system("id must not be empty"))?;
            self.remember_shops_asked(ShopsAsked {
                id: ids.to_owned(),
                start_time: present("startTime").unwrap_or_default().to_owned(),
                end_time: present("endTime").unwrap_or_default().to_owned(),
                starthour: present("starthour").map(str::to_owned),
                endhour: present("endhour").map(str::to_owned),
                time_type: present("timeType").map(str::to_owned),
            });
            // Day rows answer whole days: `starthour`/`endhour` are not read.
            let rows = if daily {
                Rows::Daily
            } else {
                Rows::Hourly(HourWindow::parse(
                    present("starthour"),
                    present("endhour"),
                    cfg.end_hour_inclusive,
                )?)
            };
            let shops = self.match_shops(ids);
            let shop_rows = rows.count(start, end) * shops.len() as u64;
            let data = shops
                .into_iter()
                .map(|s| shop_json(cfg, s, start, end, rows, now))
                .collect();
            Ok(Answer {
                data: Value::Array(data),
                shop_rows: Some(shop_rows),
                daily,
            })
        } else {
            let mac = present("mac").ok_or_else(|| Refusal::system("mac must not be empty"))?;
            let device = self
                .inner
                .device_index
                .get(&normalize_mac(mac))
                .and_then(|i| cfg.devices.get(*i));
            let rows = if daily {
                Rows::Daily
            } else {
                Rows::Hourly(HourWindow::WHOLE_DAY)
            };
            Ok(Answer::other(
                cfg.device_shape.wrap(device_rows(cfg, device, start, end, rows, now)),
            ))
        }
    }

    /// `open.shopweb.security.mobileLogin`: a fresh token for a known account.
    fn login(&self, user: Option<&str>, password: Option<&str>) -> Result<Value, Refusal> {
        let account = self.inner.cfg.users.iter().find(|(u, _)| Some(u.as_str()) == user);
        match account {
            None => Err(Refusal::code(codes::USERNAME_ERROE)),
            Some((_, p)) if Some(p.as_str()) != password => Err(Refusal::code(codes::PASSWORD_ERROE)),
            Some(_) => Ok(json!({"enterpriseId": 1, "token": self.issue_token()})),
        }
    }

    /// The distinct shops named by `ids` (`S_<depId>`, `O_<orgId>`, comma-separated), in the
    /// order they are first named; unknown ids are skipped.
    fn match_shops<'a>(&'a self, ids: &str) -> Vec<&'a SimShop> {
        let inner: &'a Inner = &self.inner;
        let mut seen = HashSet::new();
        let mut out: Vec<&SimShop> = Vec::new();
        let mut push = |shop: &'a SimShop| {
            if seen.insert(shop.dep_id) {
                out.push(shop);
            }
        };
        for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, num) = match id.split_once('_') {
                Some((k, n)) => (k.trim().to_ascii_uppercase(), n.trim()),
                None => continue,
            };
            let Ok(num) = num.parse::<u64>() else {
                continue;
            };
            let org = |o: usize| inner.cfg.orgs.get(o);
            match kind.as_str() {
                "S" => {
                    let found = inner.shop_index.get(&num);
                    if let Some(shop) = found.and_then(|&(o, i)| org(o).and_then(|org| org.shops.get(i))) {
                        push(shop);
                    }
                }
                "O" => {
                    if let Some(org) = inner.org_index.get(&num).and_then(|&o| org(o)) {
                        org.shops.iter().for_each(&mut push);
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// A method's successful `data`, before it is sent.
struct Answer {
    data: Value,
    /// For the shops method: the shop rows `data` holds.
    shop_rows: Option<u64>,
    /// They are day rows (`timeType=2`).
    daily: bool,
}

impl Answer {
    /// The `data` of a method other than the shops method.
    fn other(data: Value) -> Self {
        Answer {
            data,
            shop_rows: None,
            daily: false,
        }
    }
}

/// The first value of `name`.
/// How a target of [`Simulator::set_target_fault`] is compared: trimmed, an id as written
/// (`S_9605`), a mac normalised (`:`/`-` dropped, lower case).
fn target_key(target: &str) -> String {
    let t = target.trim();
    if t.starts_with("S_") || t.starts_with("O_") {
        t.to_owned()
    } else {
        normalize_mac(t)
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

//! The only code that talks to the Opretail gateway: request signing, the signed form POST,
//! limits on time and size, the response envelope, and the conversion of the gateway's loosely
//! typed JSON into the exporter's own types ([`crate::model`]).
//!
//! Every call is counted in the API metrics here, because only here is it known how long it took
//! and how it ended. Errors are [`ApiError`], each with a short `code` label for
//! `opretail_api_errors_total`; no error text ever carries the secret, the token or `_sig`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime};
mod limiter;

use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha1::Sha1;
use tokio::sync::Semaphore;

use self::limiter::RateLimiter;
use crate::config::{GatewayAuth, GatewayConfig, TargetId};
use crate::metrics::ApiMetrics;
use crate::model::{Clock, DeviceRow, DeviceValues, ShopRow, ShopSeries, ShopValues};

/// Gateway method: hourly passenger indicators of many shops / organisations in one call.
pub const METHOD_SHOPS: &str = "open.passengerflow.getManyShopsPassengerIndicatorData";
/// Gateway method: hourly walk-in / walk-out of one counting device.
pub const METHOD_DEVICES: &str = "open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator";
/// `_timestamp` format (wall clock of [`GATEWAY_TZ`]).
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M%S";
/// `startTime` / `endTime` / row `time` format.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// The zone the gateway reads `_timestamp` in.
pub const GATEWAY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// The `_sm` signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    #[default]
    Md5,
    Sha1,
}

impl SignMethod {
    /// The value sent as `_sm`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::Sha1 => "sha1",
        }
    }
}

impl fmt::Display for SignMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "md5" => Ok(SignMethod::Md5),
            "sha1" => Ok(SignMethod::Sha1),
            other => Err(format!("unknown sign method {other:?} (expected md5 or sha1)")),
        }
    }
}

/// Computes `_sig` for `params` (every parameter that is sent except `_sig`, empty values
/// included): sort by name in byte order, concatenate `name value` pairs, wrap in the secret
/// on both ends, hash, upper-case hex.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)], secret: &str, method: SignMethod) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text =
        String::with_capacity(secret.len() * 2 + sorted.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    text.push_str(secret);
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
    }
    text.push_str(secret);
    match method {
        SignMethod::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
        SignMethod::Sha1 => hex::encode_upper(Sha1::digest(text.as_bytes())),
    }
}

/// Answers larger than this are refused rather than buffered.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a gateway call failed. [`ApiError::code`] is the `code` label of
/// `opretail_api_errors_total`. Display texts never contain the secret, a token or `_sig`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method}: gateway answered code {code} ({codename}){}", detail_suffix(.message))]
    Gateway {
        method: String,
        code: i64,
        codename: String,
        message: String,
    },
    #[error("{method}: gateway answered HTTP {status}")]
    Http { method: String, status: u16 },
    #[error("{method}: no complete answer within {timeout:?}")]
    Timeout { method: String, timeout: Duration },
    #[error("{method}: transport error: {detail}")]
    Transport { method: String, detail: String },
    #[error("{method}: undecodable answer: {detail}")]
    Decode { method: String, detail: String },
}

fn detail_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl ApiError {
    /// Worth retrying: HTTP 5xx and 429, timeouts, connection errors, and the gateway's
    /// transient codes (-100 API_CALL_REPEAT, -500, -999, 16 TIMESTAMP_OVERTIME: the retry
    /// carries a fresh timestamp).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Gateway { code, .. } => matches!(code, -100 | -500 | -999 | 16),
            ApiError::Http { status, .. } => *status >= 500 || *status == 429,
            ApiError::Timeout { .. } | ApiError::Transport { .. } => true,
            ApiError::Decode { .. } => false,
        }
    }

    /// The user token is missing, unknown or expired (code 9990001).
    pub fn is_token_error(&self) -> bool {
        matches!(
            self,
            ApiError::Gateway {
                code: TOKEN_NOT_EXIST,
                ..
            }
        )
    }

    /// The metric label: the gateway's `stat.code`, or `http_<status>`, `timeout`,
    /// `transport`, `decode`.
    pub fn code(&self) -> String {
        match self {
            ApiError::Gateway { code, .. } => code.to_string(),
            ApiError::Http { status, .. } => format!("http_{status}"),
            ApiError::Timeout { .. } => "timeout".to_string(),
            ApiError::Transport { .. } => "transport".to_string(),
            ApiError::Decode { .. } => "decode".to_string(),
        }
    }
}

/// Gateway method: log in with a user account; answers `{"enterpriseId", "token"}`.
pub const METHOD_LOGIN: &str = "open.shopweb.security.mobileLogin";
/// The gateway code for a missing, unknown or expired user token.
pub const TOKEN_NOT_EXIST: i64 = 9_990_001;
/// The HTTP headers that carry the user token (both are sent).
pub const TOKEN_HEADERS: [&str; 2] = ["authenticator", "Ovo-Authorization"];

/// A signed-request client for one gateway and one app key. Cheap to clone; clones share the
/// rate limit, the in-flight bound and the cached user token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    url: reqwest::Url,
    app_key: String,
    app_secret: SecretString,
    aid: String,
    sign_method: SignMethod,
    timeout: Duration,
    max_body_bytes: usize,
    max_retries: usize,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    auth: Auth,
    limiter: RateLimiter,
    in_flight: Semaphore,
    clock: Clock,
    metrics: ApiMetrics,
}

enum Auth {
    None,
    Fixed(SecretString),
    Login {
        username: String,
        password: SecretString,
        /// The cached token; the lock also makes concurrent callers share one login.
        token: tokio::sync::Mutex<Option<SecretString>>,
    },
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.url.as_str())
            .field("aid", &self.inner.aid)
            .field("sign_method", &self.inner.sign_method)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client. `clock` supplies `_timestamp`; `metrics` counts every request.
    pub fn new(cfg: &GatewayConfig, clock: Clock, metrics: ApiMetrics) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("opretail-exporter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let auth = match &cfg.auth {
            GatewayAuth::None => Auth::None,
            GatewayAuth::Token(t) => Auth::Fixed(t.clone()),
            GatewayAuth::Login { username, password } => Auth::Login {
                username: username.clone(),
                password: password.clone(),
                token: tokio::sync::Mutex::new(None),
            },
        };
        let limiter = RateLimiter::new(cfg.requests_per_second);
        metrics.set_rate_limit(limiter.current_rate());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                url: cfg.url.clone(),
                app_key: cfg.app_key.clone(),
                app_secret: cfg.app_secret.clone(),
                aid: cfg.aid.clone(),
                sign_method: cfg.sign_method,
                timeout: cfg.timeout,
                max_body_bytes: cfg.max_response_bytes,
                max_retries: cfg.max_retries,
                retry_backoff: cfg.retry_backoff,
                retry_backoff_max: cfg.retry_backoff_max,
                auth,
                limiter,
                in_flight: Semaphore::new(cfg.max_in_flight.max(1)),
                clock,
                metrics,
            }),
        })
    }

    /// Hourly rows of every shop behind `ids` (`S_`/`O_`, one call), for the whole days
    /// `from..=to` (shop-local dates).
    pub async fn shop_hours(
        &self,
        ids: &[TargetId],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ShopSeries>, ApiError> {
        let id = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let (start, end) = whole_days(from, to);
        let data = self
            .call(
                METHOD_SHOPS,
                &[
                    ("id", id),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", "1".into()),
                ],
            )
            .await?;
        parse_shops(&data).map_err(|detail| ApiError::Decode {
            method: METHOD_SHOPS.into(),
            detail,
        })
    }

    /// Hourly rows of one counting device for the whole days `from..=to`.
    pub async fn device_hours(&self, mac: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<DeviceRow>, ApiError> {
        let (start, end) = whole_days(from, to);
        let data = self
            .call(
                METHOD_DEVICES,
                &[
                    ("mac", mac.to_string()),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", "1".into()),
                    ("isOnBusinessTime", "0".into()),
                ],
            )
            .await?;
        parse_device_rows(&data).map_err(|detail| ApiError::Decode {
            method: METHOD_DEVICES.into(),
            detail,
        })
    }

    /// A business call: with the user token when one is configured (logging in first if
    /// needed, and once more if the gateway says the token is gone), retried on transient
    /// failures. Returns `data` of the successful answer.
    pub async fn call(&self, method: &str, business: &[(&str, String)]) -> Result<Value, ApiError> {
        let mut logged_in_again = false;
        loop {
            let token = self.token().await?;
            match self.with_retries(method, business, token.as_ref()).await {
                Err(e) if e.is_token_error() && !logged_in_again && matches!(self.inner.auth, Auth::Login { .. }) => {
                    tracing::info!(method, "the gateway no longer accepts the user token; logging in again");
                    self.forget_token(token.as_ref()).await;
                    logged_in_again = true;
                }
                other => return other,
            }
        }
    }

    /// The token to send: none, the fixed one, or the cached login token (logging in when
    /// there is none).
    async fn token(&self) -> Result<Option<SecretString>, ApiError> {
        match &self.inner.auth {
            Auth::None => Ok(None),
            Auth::Fixed(t) => Ok(Some(t.clone())),
            Auth::Login {
                username,
                password,
                token,
            } => {
                let mut cached = token.lock().await;
                if let Some(t) = cached.as_ref() {
                    return Ok(Some(t.clone()));
                }
                let business = [
                    ("userName", username.clone()),
                    ("password", password.expose_secret().to_string()),
                ];
                let data = self.with_retries(METHOD_LOGIN, &business, None).await?;
                let fresh = data
                    .get("token")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| ApiError::Decode {
                        method: METHOD_LOGIN.into(),
                        detail: "no token in the login answer".into(),
                    })?;
                tracing::info!(user = %username, "logged in to the gateway");
                let fresh = SecretString::from(fresh.to_string());
                *cached = Some(fresh.clone());
                Ok(Some(fresh))
            }
        }
    }

    /// Drops the cached token if it is still the one that was refused.
    async fn forget_token(&self, refused: Option<&SecretString>) {
        if let (Auth::Login { token, .. }, Some(refused)) = (&self.inner.auth, refused) {
            let mut cached = token.lock().await;
            if cached
                .as_ref()
                .is_some_and(|t| t.expose_secret() == refused.expose_secret())
            {
                *cached = None;
            }
        }
    }

    /// One logical request: attempts until success, a permanent failure, or the retry budget
    /// is spent, with exponential backoff and jitter between attempts.
    async fn with_retries(
        &self,
        method: &str,
        business: &[(&str, String)],
        token: Option<&SecretString>,
    ) -> Result<Value, ApiError> {
        let inner = &self.inner;
        let mut retries = 0;
        loop {
            match self.attempt(method, business, token).await {
                Ok(data) => {
                    inner.limiter.recover();
                    inner.metrics.set_rate_limit(inner.limiter.current_rate());
                    return Ok(data);
                }
                Err(e) if e.is_transient() && retries < inner.max_retries => {
                    retries += 1;
                    if matches!(e, ApiError::Gateway { code: -100, .. }) {
                        inner.limiter.slow_down();
                        inner.metrics.set_rate_limit(inner.limiter.current_rate());
                    }
                    let delay = backoff(inner.retry_backoff, inner.retry_backoff_max, retries);
                    tracing::debug!(error = %e, retry = retries, delay_ms = delay.as_millis() as u64, "transient gateway failure; retrying");
                    inner.metrics.retried(method);
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One HTTP request under the in-flight bound and the rate limit, counted in the metrics.
    async fn attempt(
        &self,
        method: &str,
        business: &[(&str, String)],
        token: Option<&SecretString>,
    ) -> Result<Value, ApiError> {
        let inner = &self.inner;
        let _permit = inner.in_flight.acquire().await.map_err(|_| ApiError::Transport {
            method: method.into(),
            detail: "the client is shut down".into(),
        })?;
        inner.limiter.acquire().await;
        let started = Instant::now();
        let result = match tokio::time::timeout(inner.timeout, self.send(method, business, token)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout {
                method: method.into(),
                timeout: inner.timeout,
            }),
        };
        let code = result.as_ref().err().map(ApiError::code);
        inner.metrics.observe(method, started.elapsed(), code.as_deref());
        result
    }

    /// The signed form body for one attempt: fresh `_timestamp` and `_nonce`, then `_sig`.
    fn signed_body(&self, method: &str, business: &[(&str, String)]) -> String {
        let inner = &self.inner;
        let timestamp = inner
            .clock
            .now()
            .with_timezone(&GATEWAY_TZ)
            .format(TIMESTAMP_FORMAT)
            .to_string();
        let nonce = uuid::Uuid::new_v4().to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("_aid", &inner.aid),
            ("_akey", &inner.app_key),
            ("_mt", method),
            ("_sm", inner.sign_method.as_str()),
            ("_requestMode", "post"),
            ("_version", "v1"),
            ("_format", "json"),
            ("_timestamp", &timestamp),
            ("_nonce", &nonce),
        ];
        params.extend(business.iter().map(|(k, v)| (*k, v.as_str())));
        let sig = sign(&params, inner.app_secret.expose_secret(), inner.sign_method);
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params.iter());
        form.append_pair("_sig", &sig);
        form.finish()
    }

    async fn send(
        &self,
        method: &str,
        business: &[(&str, String)],
        token: Option<&SecretString>,
    ) -> Result<Value, ApiError> {
        let inner = &self.inner;
        let body = self.signed_body(method, business);
        let transport = |e: reqwest::Error| classify(method, inner.timeout, e);
        let mut request = inner
            .http
            .post(inner.url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(token.expose_secret()).map_err(|_| ApiError::Transport {
                    method: method.into(),
                    detail: "the user token contains characters not allowed in an HTTP header".into(),
                })?;
            value.set_sensitive(true);
            for name in TOKEN_HEADERS {
                request = request.header(name, value.clone());
            }
        }
        let mut response = request.body(body).send().await.map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::Http {
                method: method.into(),
                status: status.as_u16(),
            });
        }
        let too_large = || ApiError::Decode {
            method: method.into(),
            detail: format!("answer larger than {} bytes", inner.max_body_bytes),
        };
        if response
            .content_length()
            .is_some_and(|n| n > inner.max_body_bytes as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > inner.max_body_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        decode_envelope(method, &bytes)
    }
}

/// The delay before retry number `retry` (1-based): `base · 2^(retry-1)`, capped at `max`,
/// then jittered to between half and all of it so that clients do not retry in step.
pub fn backoff(base: Duration, max: Duration, retry: usize) -> Duration {
    let exp = base.saturating_mul(1u32 << (retry.saturating_sub(1)).min(20)).min(max);
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

/// Decodes a whole answer of the shops method: envelope, then shops. Never panics.
pub fn parse_shops_answer(bytes: &[u8]) -> Result<Vec<ShopSeries>, ApiError> {
    let data = decode_envelope(METHOD_SHOPS, bytes)?;
    parse_shops(&data).map_err(|detail| ApiError::Decode {
        method: METHOD_SHOPS.into(),
        detail,
    })
}

/// Decodes a whole answer of the device method: envelope, then rows. Never panics.
pub fn parse_devices_answer(bytes: &[u8]) -> Result<Vec<DeviceRow>, ApiError> {
    let data = decode_envelope(METHOD_DEVICES, bytes)?;
    parse_device_rows(&data).map_err(|detail| ApiError::Decode {
        method: METHOD_DEVICES.into(),
        detail,
    })
}

fn classify(method: &str, timeout: Duration, e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout {
            method: method.into(),
            timeout,
        }
    } else if e.is_decode() || e.is_body() {
        ApiError::Decode {
            method: method.into(),
            detail: error_chain(&e),
        }
    } else {
        ApiError::Transport {
            method: method.into(),
            detail: error_chain(&e),
        }
    }
}

/// `e` and its sources on one line (reqwest's own Display hides the cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn whole_days(from: NaiveDate, to: NaiveDate) -> (String, String) {
    (
        format!("{} 00:00:00", from.format("%Y-%m-%d")),
        format!("{} 23:59:59", to.format("%Y-%m-%d")),
    )
}

/// Checks the `stat` envelope and hands back `data` (`null` when absent).
fn decode_envelope(method: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let decode = |detail: String| ApiError::Decode {
        method: method.into(),
        detail,
    };
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| decode(format!("not JSON: {e}")))?;
    let stat = doc
        .get("stat")
        .ok_or_else(|| decode("no `stat` in the answer".into()))?;
    let code = stat
        .get("code")
        .and_then(integer)
        .ok_or_else(|| decode("`stat.code` is missing or not an integer".into()))?;
    if code != 0 {
        let codename = stat.get("codename").and_then(Value::as_str).unwrap_or("").to_string();
        let message = doc.get("result").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::Gateway {
            method: method.into(),
            code,
            codename,
            message: message.chars().take(200).collect(),
        });
    }
    Ok(doc.get_mut("data").map(Value::take).unwrap_or(Value::Null))
}

/// An integer given as a JSON number or a numeric string.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number given as a JSON number or a numeric string; anything else (absent, null,
/// empty, text) is no value.
fn number(v: Option<&Value>) -> Option<f64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// A text field; numbers become their decimal text (ids arrive either way).
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn percent(v: Option<&Value>) -> Option<f64> {
    number(v).map(|p| p / 100.0)
}

/// Row `time`: `yyyy-MM-dd HH:mm:ss` (also without seconds, or a bare date).
fn row_time(v: Option<&Value>) -> Option<NaiveDateTime> {
    let s = v?.as_str()?.trim();
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// `data` of the shops method: a list of shops, each with its hourly `dataList`.
pub(crate) fn parse_shops(data: &Value) -> Result<Vec<ShopSeries>, String> {
    let shops = match data {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => return Err(format!("expected a list of shops, got {}", kind(other))),
    };
    let mut out = Vec::with_capacity(shops.len());
    for shop in shops {
        let dep_id = text(shop.get("depId"));
        if dep_id.is_empty() {
            continue; // a shop we cannot name cannot be published
        }
        let rows = match shop.get("dataList") {
            Some(Value::Array(rows)) => rows.iter().filter_map(shop_row).collect(),
            _ => Vec::new(),
        };
        out.push(ShopSeries {
            dep_id,
            name: text(shop.get("name")),
            code: text(shop.get("shopId")),
            rows,
        });
    }
    Ok(out)
}

fn shop_row(row: &Value) -> Option<ShopRow> {
    Some(ShopRow {
        hour: row_time(row.get("time"))?,
        values: ShopValues {
            walk_in: number(row.get("passengerFlow")),
            passing: number(row.get("passPassengerFlow")),
            outside: number(row.get("outSidePassengerFlow")).or_else(|| number(row.get("outsidePassengerFlow"))),
            walk_in_rate: percent(row.get("inShopRate")),
            walk_out: number(row.get("outFlowCount")),
            fitting_rate: percent(row.get("dressingRate")),
        },
    })
}

/// `data` of the device method: a bare list of rows, or an object wrapping one.
pub(crate) fn parse_device_rows(data: &Value) -> Result<Vec<DeviceRow>, String> {
    let rows = match data {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        Value::Object(o) => ["dataList", "list", "rows", "data"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .ok_or_else(|| "expected a list of rows, or an object with dataList/list/rows/data".to_string())?,
        other => return Err(format!("expected a list of rows, got {}", kind(other))),
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(DeviceRow {
                hour: row_time(row.get("time"))?,
                values: DeviceValues {
                    walk_in: number(row.get("passengerFlow")),
                    walk_out: number(row.get("outFlowCount")),
                },
            })
        })
        .collect())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The gateway's name for a return code (`"UNKNOWN"` for one not documented).
pub fn codename(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "KEY_NOTNULL",
        2 => "KEY_UNLAWFUL",
        3 => "KEY_HAS_EXPIRED",
        4 => "SIGN_METHOD_NOTNULL",
        5 => "SIGN_TYPE_NOTEXIST",
        6 => "SIGN_NOTNULL",
        7 => "SIGN_WRONG",
        8 => "METHOD_NOTNULL",
        9 => "METHOD_NOTEXIST_CODE",
        10 => "REQUESTMODE_NOTNULL",
        11 => "APPLICATIONID_NOTNULL",
        12 => "APPLICATIONID_NOTSAME",
        13 => "VERSION_NOTNULL",
        14 => "TIMESTAMP_NOTNULL",
        15 => "TIMESTAMP_FORMAT_ERROR",
        16 => "TIMESTAMP_OVERTIME",
        17 => "FORMAT_TYPE_NOTEXIST",
        -100 => "API_CALL_REPEAT",
        -500 => "API_SYSTEM_CALL_ERROR",
        -999 => "UNKNOWN_ERROR",
        9_990_001 => "TOKEN_NOT_EXIST",
        103_094 => "USERNAME_ERROE",
        103_095 => "PASSWORD_ERROE",
        _ => "UNKNOWN",
    }
}

/// The gateway's description of `code` (from the method pages).
pub fn code_description(code: i64) -> &'static str {
    match code {
        0 => "success",
        1 => "_akey can not be empty",
        2 => "_akey is illegal",
        3 => "_akey has expired",
        4 => "_sm parameter cannot be empty",
        5 => "_sm type does not exist",
        6 => "_sig parameter cannot be empty",
        7 => "Invalid signature, please check parameters and signature format",
        8 => "_mt parameter cannot be empty",
        9 => "The method name corresponding to _mt does not exist or is not registered in the service",
        10 => "_requestMode parameter cannot be empty",
        11 => "_aid parameter cannot be empty",
        12 => "_aid does not match the current key",
        13 => "_version version number cannot be empty",
        14 => "_timestamp timestamp cannot be empty",
        15 => "_timestamp timestamp formatting error",
        16 => "_timestamp has expired",
        17 => "_format type does not exist",
        -100 => "The interface is called repeatedly",
        -500 => "API call failed, system exception occurred",
        -999 => "Open platform system exception",
        9_990_001 => "token does not exist",
        103_094 => "user name error",
        103_095 => "password error",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    #[test]
    fn shops_numbers_strings_and_missing_fields() {
        let data = json!([
            {"name": "Test store", "depId": 9642, "shopId": "", "dataList": [
                {"time": "2024-05-01 10:00:00", "passengerFlow": 12, "passPassengerFlow": 135,
                 "outSidePassengerFlow": 147, "inShopRate": 8.16, "outFlowCount": 11, "dressingRate": null},
                {"time": "2024-05-01 11:00:00", "passengerFlow": "7", "passPassengerFlow": "3",
                 "outsidePassengerFlow": "10", "inShopRate": "70", "outFlowCount": "x", "dressingRate": "25.5"},
                {"time": "garbage", "passengerFlow": 1}
            ]},
            {"name": "No id", "dataList": []},
            {"name": "Second", "depId": "9643", "shopId": "SH-2"}
        ]);
        let shops = parse_shops(&data).unwrap();
        assert_eq!(shops.len(), 2);
        assert_eq!(shops[0].dep_id, "9642");
        assert_eq!(shops[0].code, "");
        assert_eq!(shops[0].rows.len(), 2, "a row without a readable time is dropped");
        let r = shops[0].rows[0];
        assert_eq!(r.hour, at("2024-05-01 10:00:00"));
        assert_eq!(r.values.walk_in, Some(12.0));
        assert_eq!(r.values.passing, Some(135.0));
        assert_eq!(r.values.outside, Some(147.0));
        assert!((r.values.walk_in_rate.unwrap() - 0.0816).abs() < 1e-12);
        assert_eq!(r.values.walk_out, Some(11.0));
        assert_eq!(r.values.fitting_rate, None, "null is no value, not zero");
        let r = shops[0].rows[1];
        assert_eq!(r.values.walk_in, Some(7.0));
        assert_eq!(
            r.values.outside,
            Some(10.0),
            "lower-case outsidePassengerFlow is accepted"
        );
        assert_eq!(r.values.walk_in_rate, Some(0.7));
        assert_eq!(r.values.walk_out, None);
        assert_eq!(r.values.fitting_rate, Some(0.255));
        assert_eq!(shops[1].dep_id, "9643");
        assert_eq!(shops[1].code, "SH-2");
        assert!(shops[1].rows.is_empty());
    }

    #[test]
    fn shops_wrong_shape_is_an_error() {
        assert!(parse_shops(&json!({"a": 1})).is_err());
        assert_eq!(parse_shops(&Value::Null).unwrap(), vec![]);
    }

    #[test]
    fn device_rows_in_every_wrapping() {
        let rows = json!([{"time": "2024-05-01 10:00:00", "passengerFlow": 5, "outFlowCount": "4"}]);
        for data in [
            rows.clone(),
            json!({"dataList": rows}),
            json!({"list": rows}),
            json!({"rows": rows}),
            json!({"data": rows}),
            json!({"total": 1, "dataList": rows}),
        ] {
            let parsed = parse_device_rows(&data).unwrap();
            assert_eq!(parsed.len(), 1, "{data}");
            assert_eq!(parsed[0].hour, at("2024-05-01 10:00:00"));
            assert_eq!(
                parsed[0].values,
                DeviceValues {
                    walk_in: Some(5.0),
                    walk_out: Some(4.0)
                }
            );
        }
        assert!(parse_device_rows(&json!({"other": []})).is_err());
        assert!(parse_device_rows(&json!("x")).is_err());
    }

    #[test]
    fn envelope_codes_as_numbers_or_strings() {
        let ok = br#"{"stat":{"code":"0","codename":"SUCCESS"},"data":[1]}"#;
        assert_eq!(decode_envelope("m", ok).unwrap(), json!([1]));
        let err = br#"{"stat":{"code":7,"codename":"SIGN_WRONG"},"result":"bad sig","data":null}"#;
        let e = decode_envelope("m", err).unwrap_err();
        assert_eq!(e.code(), "7");
        assert!(e.to_string().contains("SIGN_WRONG"), "{e}");
        let e = decode_envelope("m", br#"{"stat":{"code":"-100"}}"#).unwrap_err();
        assert_eq!(e.code(), "-100");
        assert_eq!(decode_envelope("m", b"<html>").unwrap_err().code(), "decode");
        assert_eq!(decode_envelope("m", br#"{"data":[]}"#).unwrap_err().code(), "decode");
        assert_eq!(decode_envelope("m", br#"{"stat":{"code":0}}"#).unwrap(), Value::Null);
    }
}

#[cfg(test)]
mod sign_tests {
    use super::*;

    fn vector() -> Vec<(&'static str, &'static str)> {
        vec![
            ("_aid", "S107"),
            ("orgid", "1"),
            ("_akey", "test"),
            ("_requestMode", "post"),
            ("_mt", "open.demo.queryOpenAccount"),
            ("_sm", "md5"),
            ("_version", "v1"),
            ("_timestamp", "20171221132407"),
        ]
    }

    #[test]
    fn official_md5_vector() {
        assert_eq!(
            sign(&vector(), "test", SignMethod::Md5),
            "5489704B80A47394025527D6D51FB582"
        );
    }

    #[test]
    fn sha1_signs_the_same_string() {
        let text = "test_aidS107_akeytest_mtopen.demo.queryOpenAccount_requestModepost_smmd5_timestamp20171221132407_versionv1orgid1test";
        let expected = hex::encode_upper(Sha1::digest(text.as_bytes()));
        assert_eq!(expected.len(), 40);
        assert_eq!(sign(&vector(), "test", SignMethod::Sha1), expected);
    }

    #[test]
    fn byte_order_and_empty_values_count() {
        // `startTime` sorts before `starthour` (upper case 'T' < 's'); empty values are signed.
        let a = sign(
            &[("starthour", "0"), ("startTime", "x"), ("e", "")],
            "s",
            SignMethod::Md5,
        );
        let text = "sestartTimexstarthour0s";
        assert_eq!(a, hex::encode_upper(Md5::digest(text.as_bytes())));
    }
}

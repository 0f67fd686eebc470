//! The exporter's configuration: reading the YAML file, expanding `${VAR}` references from the
//! environment, and validating everything once into typed values ([`Config`]) so that no other
//! module ever re-checks a URL, a duration, a shop id or a MAC address. The document is walked by
//! hand as a [`serde_yaml::Value`] so that one call reports every problem at once, each as a
//! [`ConfigError`] naming the dotted field path (`gateway.timeout`, `shops[1].id`,
//! `devices[0].mac`). The app secret is never echoed in an error or in `Debug` output.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use reqwest::Url;
use secrecy::SecretString;
use serde_yaml::Value;

use crate::model::{normalize_mac, DeviceTarget, SignMethod, TargetId};

/// Default `timezone`: the shops' local time.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Shanghai;
/// Default `poll_interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Smallest accepted `poll_interval`.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default `gateway.aid` (sent as `_aid`).
pub const DEFAULT_AID: &str = "S107";
/// Default `gateway.sign_method` (sent as `_sm`).
pub const DEFAULT_SIGN_METHOD: SignMethod = SignMethod::Md5;
/// Default `gateway.timeout` for one gateway request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `gateway.max_ids_per_request`.
pub const DEFAULT_MAX_IDS_PER_REQUEST: usize = 50;
/// Accepted range of `gateway.max_ids_per_request`.
pub const MAX_IDS_PER_REQUEST_RANGE: RangeInclusive<usize> = 1..=1000;
/// Default `gateway.max_in_flight`.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;
/// Accepted range of `gateway.max_in_flight`.
pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<usize> = 1..=64;

/// Default `gateway.requests_per_second`: the token-bucket rate of gateway requests.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 5.0;
/// Default `gateway.max_response_bytes`: larger answers are refused.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Accepted range of `gateway.max_response_bytes`.
pub const MAX_RESPONSE_BYTES_RANGE: RangeInclusive<usize> = 1024..=1024 * 1024 * 1024;
/// Default `gateway.max_retries` for transient failures.
pub const DEFAULT_MAX_RETRIES: usize = 3;
/// Accepted range of `gateway.max_retries`.
pub const MAX_RETRIES_RANGE: RangeInclusive<usize> = 0..=10;
/// Default `gateway.retry_backoff`: the first retry's base delay, doubled for each further one.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// Default `gateway.retry_backoff_max`: the longest delay between retries.
pub const DEFAULT_RETRY_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Default `hour_delay`: how long after each full hour the poll for the new hour starts.
pub const DEFAULT_HOUR_DELAY: Duration = Duration::from_secs(60);
/// Default `stale_after`: how long a failing target keeps its last good values.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(2 * 3600);

const TOP_KEYS: &[&str] = &[
    "gateway",
    "timezone",
    "poll_interval",
    "stale_after",
    "hour_delay",
    "sharding",
    "shops",
    "devices",
];
const GATEWAY_KEYS: &[&str] = &[
    "url",
    "app_key",
    "app_secret",
    "app_secret_file",
    "aid",
    "sign_method",
    "timeout",
    "max_ids_per_request",
    "max_in_flight",
    "requests_per_second",
    "max_response_bytes",
    "max_retries",
    "retry_backoff",
    "retry_backoff_max",
    "login",
    "token",
];
const SHARDING_KEYS: &[&str] = &["index", "total"];
const LOGIN_KEYS: &[&str] = &["username", "password", "password_file"];
const SHOP_KEYS: &[&str] = &["id"];
const DEVICE_KEYS: &[&str] = &["mac", "name", "shop_id"];

/// The path used for problems of the document as a whole (syntax errors, empty document).
const ROOT_PATH: &str = "<yaml>";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub gateway: GatewayConfig,
    /// The shops' local time zone, used to pick the latest complete hour.
    pub timezone: Tz,
    /// How often the gateway is polled.
    pub poll_interval: Duration,
    /// A target failing for longer than this loses its value series (its `up` stays, at 0).
    pub stale_after: Duration,
    /// How long after each full hour the (prioritised) poll for the new hour starts, giving
    /// counters time to upload.
    pub hour_delay: Duration,
    /// This replica's share of the targets, when several exporters split a large chain.
    pub sharding: Option<Shard>,
    pub shops: Vec<ShopTarget>,
    pub devices: Vec<DeviceTarget>,
}

/// One replica's share of the targets: those whose stable hash modulo `total` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// Whether this shard polls the target named `key` (`S_…`, `O_…` or a normalised mac).
    /// The hash (64-bit FNV-1a) is fixed: it never changes between versions or machines.
    pub fn owns(&self, key: &str) -> bool {
        shard_of(key, self.total) == self.index
    }
}

/// The shard of `key` among `total`: 64-bit FNV-1a of its bytes, modulo `total`.
pub fn shard_of(key: &str, total: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(total.max(1))) as u32
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl Shard {
    /// A checked shard: `total` at least 1 and `index` below it.
    pub fn new(index: u32, total: u32) -> Result<Shard, String> {
        if total == 0 {
            return Err("the number of shards must be at least 1".into());
        }
        if index >= total {
            return Err(format!(
                "shard index {index} must be below the number of shards {total} (indexes count from 0)"
            ));
        }
        Ok(Shard { index, total })
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `INDEX/TOTAL`, where INDEX may also be a name ending in `-<number>` (a StatefulSet pod
    /// name such as `opretail-exporter-2`), so that `--shard $(POD_NAME)/3` works.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = || format!("invalid shard {s:?}: expected INDEX/TOTAL such as 0/3, or POD-NAME-<n>/TOTAL");
        let (index, total) = s.trim().rsplit_once('/').ok_or_else(hint)?;
        let index = match index.trim().rsplit_once('-') {
            Some((name, n)) if !name.is_empty() => n,
            _ => index,
        }
        .trim();
        let index: u32 = index.parse().map_err(|_| hint())?;
        let total: u32 = total.trim().parse().map_err(|_| hint())?;
        Shard::new(index, total)
    }
}

/// How to reach and sign for the gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Gateway endpoint, http or https.
    pub url: Url,
    /// Sent as `_akey`.
    pub app_key: String,
    /// Signs every request; never logged (its `Debug` is redacted).
    pub app_secret: SecretString,
    /// Sent as `_aid`.
    pub aid: String,
    /// Sent as `_sm`.
    pub sign_method: SignMethod,
    /// Limit for one gateway request.
    pub timeout: Duration,
    /// Shop / organisation ids (`S_` / `O_`) batched into one call.
    pub max_ids_per_request: usize,
    /// Concurrent gateway requests.
    pub max_in_flight: usize,
    /// Token-bucket rate of gateway requests (retries and logins included).
    pub requests_per_second: f64,
    /// Larger answers are refused rather than buffered.
    pub max_response_bytes: usize,
    /// Retries of a transiently failed request (HTTP 5xx, timeouts, connection errors, codes
    /// -100, -500, -999, 16).
    pub max_retries: usize,
    /// Base delay before the first retry; doubled for each further one, with jitter.
    pub retry_backoff: Duration,
    /// Longest delay between retries.
    pub retry_backoff_max: Duration,
    /// The user token sent with business calls, if any.
    pub auth: GatewayAuth,
}

/// How business calls carry a user token (`authenticator` / `Ovo-Authorization` headers).
#[derive(Debug, Clone, Default)]
pub enum GatewayAuth {
    /// No token.
    #[default]
    None,
    /// A fixed token from the configuration.
    Token(SecretString),
    /// Log in with `open.shopweb.security.mobileLogin`, cache the token, log in again on
    /// code 9990001.
    Login { username: String, password: SecretString },
}

impl GatewayConfig {
    /// A gateway config with every optional field at its default.
    pub fn new(url: Url, app_key: String, app_secret: String) -> Self {
        GatewayConfig {
            url,
            app_key,
            app_secret: SecretString::from(app_secret),
            aid: DEFAULT_AID.to_string(),
            sign_method: DEFAULT_SIGN_METHOD,
            timeout: DEFAULT_TIMEOUT,
            max_ids_per_request: DEFAULT_MAX_IDS_PER_REQUEST,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            retry_backoff_max: DEFAULT_RETRY_BACKOFF_MAX,
            auth: GatewayAuth::None,
        }
    }
}

/// A shop or organisation to poll with the many-shops method.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShopTarget {
    pub id: TargetId,
}

/// One configuration problem: where (`gateway.timeout`, `shops[1].id`, `<yaml>`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration, in document order as far as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::new(path, message)])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Parse and validate. `env` looks up environment variables (tests pass a closure over a map).
    pub fn from_yaml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        let mut doc: Value = serde_yaml::from_str(text).map_err(|e| ConfigErrors::one(ROOT_PATH, e.to_string()))?;
        doc.apply_merge()
            .map_err(|e| ConfigErrors::one(ROOT_PATH, e.to_string()))?;
        if doc.is_null() {
            return Err(ConfigErrors::one(ROOT_PATH, "the document is empty"));
        }
        let mut walker = Walker {
            env,
            errors: Vec::new(),
        };
        let config = walker.config(&doc);
        match config {
            Some(config) if walker.errors.is_empty() => Ok(config),
            _ => {
                if walker.errors.is_empty() {
                    walker.errors.push(ConfigError::new(ROOT_PATH, "invalid configuration"));
                }
                Err(ConfigErrors(walker.errors))
            }
        }
    }

    /// Read a file and call [`Config::from_yaml_str`] with the process environment. A read
    /// error is one [`ConfigError`] whose path is the file path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigErrors::one(path.display().to_string(), e.to_string()))?;
        Config::from_yaml_str(&text, &|name| std::env::var(name).ok())
    }
}

/// `parent.key`, or `key` at the top level.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// What kind of YAML node this is, for "expected X, found Y" (never the value itself).
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The known keys of one mapping; a `null` value counts as absent.
struct Fields<'v> {
    entries: Vec<(&'v str, &'v Value)>,
}

impl<'v> Fields<'v> {
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_null())
    }
}

/// Walks the document, collecting every problem.
struct Walker<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl Walker<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        let path = if path.is_empty() { ROOT_PATH } else { path };
        self.errors.push(ConfigError::new(path, message));
    }

    /// Checks that `value` is a mapping whose keys are all strings in `allowed`.
    fn mapping<'v>(&mut self, path: &str, value: &'v Value, allowed: &[&str]) -> Option<Fields<'v>> {
        let Value::Mapping(map) = value else {
            self.error(path, format!("expected a mapping, found {}", describe(value)));
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, v) in map {
            match key {
                Value::String(key) if allowed.contains(&key.as_str()) => entries.push((key.as_str(), v)),
                Value::String(key) => self.error(
                    &join(path, key),
                    format!("unknown key (expected one of {})", allowed.join(", ")),
                ),
                other => self.error(path, format!("keys must be strings, found {}", describe(other))),
            }
        }
        Some(Fields { entries })
    }

    /// Replaces `${VAR}` from the environment; `$$` is a literal `$`; any other `$` is kept.
    /// With `secret`, no part of the text other than a variable's name is ever echoed.
    fn expand(&mut self, path: &str, raw: &str, secret: bool) -> Option<String> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut ok = true;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(r) = after.strip_prefix('{') {
                let Some(end) = r.find('}') else {
                    self.error(
                        path,
                        "unterminated ${ (write ${NAME} for a variable, $$ for a literal $)",
                    );
                    return None;
                };
                let name = &r[..end];
                rest = &r[end + 1..];
                if !is_env_name(name) {
                    let message = if secret {
                        "invalid environment variable name in ${...} (letters, digits and _ only)".to_string()
                    } else {
                        format!("invalid environment variable name {name:?} in ${{...}} (letters, digits and _ only)")
                    };
                    self.error(path, message);
                    ok = false;
                    continue;
                }
                match (self.env)(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        self.error(path, format!("environment variable {name} is not set"));
                        ok = false;
                    }
                }
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        ok.then_some(out)
    }

    /// A string scalar, expanded.
    fn string(&mut self, path: &str, value: &Value, secret: bool) -> Option<String> {
        match value {
            Value::String(s) => self.expand(path, s, secret),
            other => {
                let hint = if matches!(other, Value::Number(_) | Value::Bool(_)) {
                    " (quote the value)"
                } else {
                    ""
                };
                self.error(path, format!("expected a string, found {}{hint}", describe(other)));
                None
            }
        }
    }

    /// A non-empty string scalar, expanded.
    fn non_empty_string(&mut self, path: &str, value: &Value, secret: bool) -> Option<String> {
        let s = self.string(path, value, secret)?;
        if s.is_empty() {
            self.error(path, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// The value of a required key, or a "missing" error.
    fn required<'v>(&mut self, fields: &Fields<'v>, parent: &str, key: &str) -> Option<&'v Value> {
        let value = fields.get(key);
        if value.is_none() {
            self.error(&join(parent, key), "missing");
        }
        value
    }

    /// An optional key: `default` when absent or null, else `parse`d.
    fn optional<T>(
        &mut self,
        fields: &Fields<'_>,
        parent: &str,
        key: &str,
        default: T,
        parse: impl FnOnce(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        match fields.get(key) {
            None => Some(default),
            Some(value) => parse(self, &join(parent, key), value),
        }
    }

    fn duration(&mut self, path: &str, value: &Value) -> Option<Duration> {
        let Value::String(raw) = value else {
            self.error(
                path,
                format!(
                    "expected a duration with a unit such as 30s, 5m or 1h, found {}",
                    describe(value)
                ),
            );
            return None;
        };
        let text = self.expand(path, raw, false)?;
        match humantime::parse_duration(text.trim()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    path,
                    format!("invalid duration {text:?}: {e} (expected e.g. 30s, 5m, 1h)"),
                );
                None
            }
        }
    }

    fn integer(&mut self, path: &str, value: &Value, range: RangeInclusive<usize>) -> Option<usize> {
        let n = match value {
            Value::Number(n) => match n.as_u64() {
                Some(n) => n,
                None => {
                    self.error(path, format!("expected a whole number, found {n}"));
                    return None;
                }
            },
            Value::String(raw) => {
                let text = self.expand(path, raw, false)?;
                match text.trim().parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        self.error(path, format!("expected a whole number, found {text:?}"));
                        return None;
                    }
                }
            }
            other => {
                self.error(path, format!("expected a whole number, found {}", describe(other)));
                return None;
            }
        };
        match usize::try_from(n) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    path,
                    format!("must be between {} and {}, found {n}", range.start(), range.end()),
                );
                None
            }
        }
    }

    fn timezone(&mut self, path: &str, value: &Value) -> Option<Tz> {
        let text = self.non_empty_string(path, value, false)?;
        match text.trim().parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    path,
                    format!("unknown time zone {text:?} (expected an IANA name such as Asia/Shanghai)"),
                );
                None
            }
        }
    }

    fn url(&mut self, path: &str, value: &Value) -> Option<Url> {
        let text = self.non_empty_string(path, value, false)?;
        match Url::parse(text.trim()) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            Ok(url) => {
                self.error(
                    path,
                    format!("URL scheme must be http or https, found {:?}", url.scheme()),
                );
                None
            }
            Err(e) => {
                self.error(path, format!("invalid URL {text:?}: {e}"));
                None
            }
        }
    }

    fn sign_method(&mut self, path: &str, value: &Value) -> Option<SignMethod> {
        let text = self.string(path, value, false)?;
        match text.trim().parse::<SignMethod>() {
            Ok(m) => Some(m),
            Err(e) => {
                self.error(path, e);
                None
            }
        }
    }

    fn config(&mut self, doc: &Value) -> Option<Config> {
        let top = self.mapping("", doc, TOP_KEYS)?;
        let gateway = match self.required(&top, "", "gateway") {
            Some(value) => self.gateway("gateway", value),
            None => None,
        };
        let timezone = self.optional(&top, "", "timezone", DEFAULT_TIMEZONE, Self::timezone);
        let poll_interval = self.optional(&top, "", "poll_interval", DEFAULT_POLL_INTERVAL, |w, path, value| {
            let d = w.duration(path, value)?;
            if d < MIN_POLL_INTERVAL {
                w.error(path, "must be at least 1s");
                return None;
            }
            Some(d)
        });
        let stale_after = self.optional(&top, "", "stale_after", DEFAULT_STALE_AFTER, |w, path, value| {
            let d = w.duration(path, value)?;
            if d.is_zero() {
                w.error(path, "must be greater than zero");
                return None;
            }
            Some(d)
        });
        let hour_delay = self.optional(&top, "", "hour_delay", DEFAULT_HOUR_DELAY, Self::duration);
        let sharding = self.optional(&top, "", "sharding", None, |w, path, value| {
            let f = w.mapping(path, value, SHARDING_KEYS)?;
            let index = w
                .required(&f, path, "index")
                .and_then(|v| w.integer(&join(path, "index"), v, 0..=u32::MAX as usize));
            let total = w
                .required(&f, path, "total")
                .and_then(|v| w.integer(&join(path, "total"), v, 1..=u32::MAX as usize));
            match Shard::new(u32::try_from(index?).ok()?, u32::try_from(total?).ok()?) {
                Ok(shard) => Some(Some(shard)),
                Err(e) => {
                    w.error(&join(path, "index"), e);
                    None
                }
            }
        });
        let shops = self.shops(top.get("shops"));
        let devices = self.devices(top.get("devices"));
        if let (Some(shops), Some(devices)) = (&shops, &devices) {
            if shops.is_empty() && devices.is_empty() {
                self.error(
                    "shops",
                    "nothing to poll: list at least one shop under shops or one device under devices",
                );
                return None;
            }
        }
        Some(Config {
            gateway: gateway?,
            timezone: timezone?,
            poll_interval: poll_interval?,
            stale_after: stale_after?,
            hour_delay: hour_delay?,
            sharding: sharding?,
            shops: shops?,
            devices: devices?,
        })
    }

    fn gateway(&mut self, path: &str, value: &Value) -> Option<GatewayConfig> {
        let f = self.mapping(path, value, GATEWAY_KEYS)?;
        let url = self
            .required(&f, path, "url")
            .and_then(|v| self.url(&join(path, "url"), v));
        let app_key = self
            .required(&f, path, "app_key")
            .and_then(|v| self.non_empty_string(&join(path, "app_key"), v, false));
        let app_secret = self.secret_or_file(&f, path, "app_secret", "app_secret_file");
        let aid = self.optional(&f, path, "aid", DEFAULT_AID.to_string(), |w, p, v| {
            w.non_empty_string(p, v, false)
        });
        let sign_method = self.optional(&f, path, "sign_method", DEFAULT_SIGN_METHOD, Self::sign_method);
        let timeout = self.optional(&f, path, "timeout", DEFAULT_TIMEOUT, |w, p, v| {
            let d = w.duration(p, v)?;
            if d.is_zero() {
                w.error(p, "must be greater than zero");
                return None;
            }
            Some(d)
        });
        let max_ids_per_request = self.optional(
            &f,
            path,
            "max_ids_per_request",
            DEFAULT_MAX_IDS_PER_REQUEST,
            |w, p, v| w.integer(p, v, MAX_IDS_PER_REQUEST_RANGE),
        );
        let max_in_flight = self.optional(&f, path, "max_in_flight", DEFAULT_MAX_IN_FLIGHT, |w, p, v| {
            w.integer(p, v, MAX_IN_FLIGHT_RANGE)
        });
        let requests_per_second =
            self.optional(&f, path, "requests_per_second", DEFAULT_REQUESTS_PER_SECOND, Self::rate);
        let max_response_bytes =
            self.optional(&f, path, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, |w, p, v| {
                w.byte_size(p, v, MAX_RESPONSE_BYTES_RANGE)
            });
        let max_retries = self.optional(&f, path, "max_retries", DEFAULT_MAX_RETRIES, |w, p, v| {
            w.integer(p, v, MAX_RETRIES_RANGE)
        });
        let retry_backoff = self.optional(&f, path, "retry_backoff", DEFAULT_RETRY_BACKOFF, Self::duration);
        let retry_backoff_max = self.optional(&f, path, "retry_backoff_max", DEFAULT_RETRY_BACKOFF_MAX, Self::duration);
        let auth = self.auth(&f, path);
        Some(GatewayConfig {
            url: url?,
            app_key: app_key?,
            app_secret: app_secret?,
            aid: aid?,
            sign_method: sign_method?,
            timeout: timeout?,
            max_ids_per_request: max_ids_per_request?,
            max_in_flight: max_in_flight?,
            requests_per_second: requests_per_second?,
            max_response_bytes: max_response_bytes?,
            max_retries: max_retries?,
            retry_backoff: retry_backoff?,
            retry_backoff_max: retry_backoff_max?,
            auth: auth?,
        })
    }

    /// A secret given inline under `key` or read from the file named under `file_key`
    /// (exactly one of the two; trailing whitespace of the file is dropped). The secret is
    /// never echoed.
    fn secret_or_file(&mut self, f: &Fields<'_>, parent: &str, key: &str, file_key: &str) -> Option<SecretString> {
        let path = join(parent, key);
        let file_path = join(parent, file_key);
        match (f.get(key), f.get(file_key)) {
            (Some(_), Some(_)) => {
                self.error(&file_path, format!("give either {key} or {file_key}, not both"));
                None
            }
            (None, None) => {
                self.error(&path, format!("missing (or give {file_key})"));
                None
            }
            (Some(v), None) => self.non_empty_string(&path, v, true).map(SecretString::from),
            (None, Some(v)) => {
                let file = self.non_empty_string(&file_path, v, false)?;
                match std::fs::read_to_string(file.trim()) {
                    Ok(text) => {
                        let secret = text.trim_end_matches(['\r', '\n', ' ', '\t']);
                        if secret.is_empty() {
                            self.error(&file_path, format!("{file:?} is empty"));
                            return None;
                        }
                        Some(SecretString::from(secret.to_string()))
                    }
                    Err(e) => {
                        self.error(&file_path, format!("cannot read {file:?}: {e}"));
                        None
                    }
                }
            }
        }
    }

    /// `gateway.login` / `gateway.token`: at most one of them.
    fn auth(&mut self, f: &Fields<'_>, parent: &str) -> Option<GatewayAuth> {
        match (f.get("login"), f.get("token")) {
            (Some(_), Some(_)) => {
                self.error(&join(parent, "token"), "give either login or token, not both");
                None
            }
            (None, None) => Some(GatewayAuth::None),
            (None, Some(v)) => {
                let token = self.non_empty_string(&join(parent, "token"), v, true)?;
                Some(GatewayAuth::Token(SecretString::from(token)))
            }
            (Some(v), None) => {
                let path = join(parent, "login");
                let login = self.mapping(&path, v, LOGIN_KEYS)?;
                let username = self
                    .required(&login, &path, "username")
                    .and_then(|v| self.non_empty_string(&join(&path, "username"), v, false));
                let password = self.secret_or_file(&login, &path, "password", "password_file");
                Some(GatewayAuth::Login {
                    username: username?,
                    password: password?,
                })
            }
        }
    }

    /// A positive number of requests per second.
    fn rate(&mut self, path: &str, value: &Value) -> Option<f64> {
        let n = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(raw) => self.expand(path, raw, false)?.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n > 0.0 && n <= 10_000.0 => Some(n),
            _ => {
                self.error(
                    path,
                    "expected a number of requests per second above 0 (up to 10000), e.g. 5 or 0.5",
                );
                None
            }
        }
    }

    /// A size in bytes: a whole number, or with a unit (`512KiB`, `16MiB`, `1GiB`, `16MB`).
    fn byte_size(&mut self, path: &str, value: &Value, range: RangeInclusive<usize>) -> Option<usize> {
        if let Value::String(raw) = value {
            let text = self.expand(path, raw, false)?;
            let t = text.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (digits, unit) = (&t[..split], t[split..].trim());
            let factor: Option<u64> = match unit.to_ascii_lowercase().as_str() {
                "" | "b" => Some(1),
                "k" | "kb" => Some(1000),
                "kib" => Some(1024),
                "m" | "mb" => Some(1000 * 1000),
                "mib" => Some(1024 * 1024),
                "g" | "gb" => Some(1000 * 1000 * 1000),
                "gib" => Some(1024 * 1024 * 1024),
                _ => None,
            };
            let bytes = digits
                .parse::<u64>()
                .ok()
                .zip(factor)
                .and_then(|(n, f)| n.checked_mul(f));
            let Some(bytes) = bytes else {
                self.error(
                    path,
                    format!("expected a size such as 16MiB, 512KiB or 1048576, found {text:?}"),
                );
                return None;
            };
            return self.integer(path, &Value::Number(bytes.into()), range);
        }
        self.integer(path, value, range)
    }

    /// The items of an optional list (absent or null: empty).
    fn list<'v>(&mut self, path: &str, value: Option<&'v Value>) -> Option<&'v [Value]> {
        match value {
            None => Some(&[]),
            Some(Value::Sequence(items)) => Some(items.as_slice()),
            Some(other) => {
                self.error(path, format!("expected a list, found {}", describe(other)));
                None
            }
        }
    }

    fn shops(&mut self, value: Option<&Value>) -> Option<Vec<ShopTarget>> {
        let items = self.list("shops", value)?;
        let mut seen: HashMap<TargetId, String> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("shops[{i}]");
            let Some(f) = self.mapping(&path, item, SHOP_KEYS) else {
                ok = false;
                continue;
            };
            let id_path = join(&path, "id");
            let Some(text) = self
                .required(&f, &path, "id")
                .and_then(|v| self.non_empty_string(&id_path, v, false))
            else {
                ok = false;
                continue;
            };
            match text.trim().parse::<TargetId>() {
                Ok(id) => {
                    if let Some(first) = seen.get(&id) {
                        let message = format!("duplicate id {id} (first listed at {first})");
                        self.error(&id_path, message);
                        ok = false;
                    } else {
                        seen.insert(id.clone(), id_path);
                        out.push(ShopTarget { id });
                    }
                }
                Err(e) => {
                    self.error(&id_path, e.to_string());
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn devices(&mut self, value: Option<&Value>) -> Option<Vec<DeviceTarget>> {
        let items = self.list("devices", value)?;
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("devices[{i}]");
            let Some(f) = self.mapping(&path, item, DEVICE_KEYS) else {
                ok = false;
                continue;
            };
            let mac_path = join(&path, "mac");
            let mac = self
                .required(&f, &path, "mac")
                .and_then(|v| self.non_empty_string(&mac_path, v, false))
                .and_then(|text| match normalize_mac(text.trim()) {
                    Ok(mac) => Some(mac),
                    Err(e) => {
                        self.error(&mac_path, e);
                        None
                    }
                });
            let name = self.optional(&f, &path, "name", None, |w, p, v| {
                w.non_empty_string(p, v, false).map(Some)
            });
            let shop_id = self.optional(&f, &path, "shop_id", None, |w, p, v| w.shop_id(p, v).map(Some));
            let (Some(mac), Some(name), Some(shop_id)) = (mac, name, shop_id) else {
                ok = false;
                continue;
            };
            if let Some(first) = seen.get(&mac) {
                let message = format!("duplicate MAC address {mac} (first listed at {first})");
                self.error(&mac_path, message);
                ok = false;
                continue;
            }
            seen.insert(mac.clone(), mac_path);
            out.push(DeviceTarget { mac, name, shop_id });
        }
        ok.then_some(out)
    }

    /// A depId label, given as a YAML number or a string of decimal digits.
    fn shop_id(&mut self, path: &str, value: &Value) -> Option<String> {
        const HINT: &str = "expected a shop depId such as 9642";
        match value {
            Value::Number(n) => match n.as_u64() {
                Some(n) => Some(n.to_string()),
                None => {
                    self.error(path, format!("{HINT}, found {n}"));
                    None
                }
            },
            Value::String(raw) => {
                let text = self.expand(path, raw, false)?;
                let digits = text.trim();
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    self.error(path, format!("{HINT}, found {text:?}"));
                    return None;
                }
                match digits.parse::<u64>() {
                    Ok(n) => Some(n.to_string()),
                    Err(_) => {
                        self.error(path, format!("{HINT}, found {text:?} (too large)"));
                        None
                    }
                }
            }
            other => {
                self.error(path, format!("{HINT}, found {}", describe(other)));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    const FULL: &str = r#"
gateway:
  url: https://openapi.opretail.com/m.api
  app_key: ${OPRETAIL_APP_KEY}
  app_secret: ${OPRETAIL_APP_SECRET}
  aid: S107
  sign_method: md5
  timeout: 10s
  max_ids_per_request: 50
  max_in_flight: 4
timezone: Asia/Shanghai
poll_interval: 5m
shops:
  - id: S_9642
  - id: O_1834
devices:
  - mac: d47c44906f14
    name: Main entrance
    shop_id: "9642"
"#;

    const MINIMAL: &str = "
gateway:
  url: http://gw.example/m.api
  app_key: key
  app_secret: hunter2-secret
shops:
  - id: S_1
";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn std_env() -> impl Fn(&str) -> Option<String> {
        env_of(&[("OPRETAIL_APP_KEY", "the-key"), ("OPRETAIL_APP_SECRET", "s3cr3t-value")])
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_yaml_str(text, &std_env())
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match parse(text) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(e) => e.0,
        }
    }

    /// Asserts there is an error at `path` whose message contains `word`.
    fn assert_error(errs: &[ConfigError], path: &str, word: &str) {
        assert!(
            errs.iter().any(|e| e.path == path && e.message.contains(word)),
            "no error at {path} containing {word:?} in:\n{}",
            ConfigErrors(errs.to_vec())
        );
    }

    #[test]
    fn reliability_defaults() {
        let c = parse(MINIMAL).unwrap();
        let g = &c.gateway;
        assert_eq!(g.requests_per_second, DEFAULT_REQUESTS_PER_SECOND);
        assert_eq!(g.max_response_bytes, 16 * 1024 * 1024);
        assert_eq!(g.max_retries, 3);
        assert_eq!(g.retry_backoff, Duration::from_millis(500));
        assert_eq!(g.retry_backoff_max, Duration::from_secs(30));
        assert!(matches!(g.auth, GatewayAuth::None));
        assert_eq!(c.stale_after, Duration::from_secs(7200));
    }

    #[test]
    fn reliability_keys_parse() {
        let text = minimal_with(
            "  app_secret: hunter2-secret\n",
            "  app_secret: hunter2-secret\n  requests_per_second: 0.5\n  max_response_bytes: 512KiB\n  max_retries: 0\n  retry_backoff: 100ms\n  retry_backoff_max: 2s\n  token: ${TOK}\n",
        ) + "stale_after: 30m\n";
        let c = Config::from_yaml_str(&text, &env_of(&[("TOK", "tok-123")])).unwrap();
        assert_eq!(c.gateway.requests_per_second, 0.5);
        assert_eq!(c.gateway.max_response_bytes, 512 * 1024);
        assert_eq!(c.gateway.max_retries, 0);
        assert_eq!(c.gateway.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.gateway.retry_backoff_max, Duration::from_secs(2));
        assert!(matches!(&c.gateway.auth, GatewayAuth::Token(t) if t.expose_secret() == "tok-123"));
        assert_eq!(c.stale_after, Duration::from_secs(1800));
        assert!(!format!("{c:?}").contains("tok-123"), "the token is redacted in Debug");
        for (size, bytes) in [
            ("1048576", 1_048_576),
            ("16MiB", 16 << 20),
            ("2MB", 2_000_000),
            ("64 KiB", 65_536),
        ] {
            let text = minimal_with(
                "  app_key: key\n",
                &format!("  app_key: key\n  max_response_bytes: {size}\n"),
            );
            assert_eq!(parse(&text).unwrap().gateway.max_response_bytes, bytes, "{size}");
        }
    }

    #[test]
    fn reliability_keys_reject_bad_values() {
        let text = minimal_with(
            "  app_key: key\n",
            "  app_key: key\n  requests_per_second: 0\n  max_response_bytes: lots\n  max_retries: 11\n  retry_backoff: soon\n",
        ) + "stale_after: 0s\n";
        let errs = errors(&text);
        assert_error(&errs, "gateway.requests_per_second", "above 0");
        assert_error(&errs, "gateway.max_response_bytes", "size");
        assert_error(&errs, "gateway.max_retries", "between 0 and 10");
        assert_error(&errs, "gateway.retry_backoff", "duration");
        assert_error(&errs, "stale_after", "greater than zero");
        let tiny = minimal_with("  app_key: key\n", "  app_key: key\n  max_response_bytes: 10\n");
        assert_error(&errors(&tiny), "gateway.max_response_bytes", "between 1024");
    }

    #[test]
    fn login_with_password_or_password_file() {
        let dir = std::env::temp_dir().join(format!("opretail-config-login-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "pa55-from-file\n").unwrap();
        let inline = minimal_with(
            "  app_key: key\n",
            "  app_key: key\n  login:\n    username: ops\n    password: pa55-inline\n",
        );
        let c = parse(&inline).unwrap();
        assert!(
            matches!(&c.gateway.auth, GatewayAuth::Login { username, password } if username == "ops" && password.expose_secret() == "pa55-inline")
        );
        assert!(!format!("{c:?}").contains("pa55-inline"));
        let from_file = minimal_with(
            "  app_key: key\n",
            &format!(
                "  app_key: key\n  login:\n    username: ops\n    password_file: {}\n",
                file.display()
            ),
        );
        let c = parse(&from_file).unwrap();
        assert!(
            matches!(&c.gateway.auth, GatewayAuth::Login { password, .. } if password.expose_secret() == "pa55-from-file")
        );
        let both = minimal_with(
            "  app_key: key\n",
            &format!(
                "  app_key: key\n  login:\n    username: ops\n    password: x\n    password_file: {}\n",
                file.display()
            ),
        );
        assert_error(&errors(&both), "gateway.login.password_file", "not both");
        let neither = minimal_with("  app_key: key\n", "  app_key: key\n  login:\n    username: ops\n");
        assert_error(&errors(&neither), "gateway.login.password", "missing");
        let with_token = minimal_with(
            "  app_key: key\n",
            "  app_key: key\n  token: t\n  login:\n    username: ops\n    password: x\n",
        );
        assert_error(&errors(&with_token), "gateway.token", "not both");
        let unknown = minimal_with(
            "  app_key: key\n",
            "  app_key: key\n  login:\n    user: ops\n    password: x\n",
        );
        assert_error(&errors(&unknown), "gateway.login.user", "unknown key");
    }

    #[test]
    fn app_secret_from_a_file() {
        let dir = std::env::temp_dir().join(format!("opretail-config-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "file-secret-value\r\n").unwrap();
        let text = MINIMAL.replace(
            "  app_secret: hunter2-secret\n",
            &format!("  app_secret_file: {}\n", file.display()),
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.gateway.app_secret.expose_secret(), "file-secret-value");
        let both = minimal_with(
            "  app_secret: hunter2-secret\n",
            &format!("  app_secret: x\n  app_secret_file: {}\n", file.display()),
        );
        assert_error(&errors(&both), "gateway.app_secret_file", "not both");
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let text = MINIMAL.replace(
            "  app_secret: hunter2-secret\n",
            &format!("  app_secret_file: {}\n", empty.display()),
        );
        assert_error(&errors(&text), "gateway.app_secret_file", "empty");
        let errs = errors(&MINIMAL.replace("  app_secret: hunter2-secret\n", ""));
        assert_error(&errs, "gateway.app_secret", "missing");
    }

    #[test]
    fn sharding_and_hour_delay() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!((c.sharding, c.hour_delay), (None, Duration::from_secs(60)));
        let c = parse(&format!(
            "{MINIMAL}sharding:\n  index: 1\n  total: 3\nhour_delay: 30s\n"
        ))
        .unwrap();
        assert_eq!(c.sharding, Some(Shard { index: 1, total: 3 }));
        assert_eq!(c.hour_delay, Duration::from_secs(30));
        assert_error(
            &errors(&format!("{MINIMAL}sharding:\n  index: 3\n  total: 3\n")),
            "sharding.index",
            "below",
        );
        assert_error(
            &errors(&format!("{MINIMAL}sharding:\n  total: 3\n")),
            "sharding.index",
            "missing",
        );
        assert_error(
            &errors(&format!("{MINIMAL}sharding:\n  index: 0\n  total: 0\n")),
            "sharding.total",
            "between 1",
        );
    }

    #[test]
    fn shard_strings() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, total: 3 }));
        assert_eq!(
            "opretail-exporter-2/3".parse::<Shard>(),
            Ok(Shard { index: 2, total: 3 })
        );
        assert_eq!(" 0 / 1 ".parse::<Shard>(), Ok(Shard { index: 0, total: 1 }));
        for bad in ["3/3", "1/0", "x/2", "2", "-1/2", "pod/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_the_targets_stably() {
        // The hash is part of the contract: replicas of different versions must agree.
        assert_eq!(shard_of("S_9642", 3), 0);
        assert_eq!(shard_of("O_1834", 3), 1);
        assert_eq!(shard_of("d47c44906f14", 3), 1);
        let keys: Vec<String> = (0..3000).map(|i| format!("S_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
        let mut counts = [0usize; 3];
        for k in &keys {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(k)).collect();
            assert_eq!(owners.len(), 1, "{k} is owned by exactly one shard");
            counts[owners[0]] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..=1100).contains(&c)),
            "balanced: {counts:?}"
        );
    }

    /// MINIMAL with `from` replaced by `to`.
    fn minimal_with(from: &str, to: &str) -> String {
        assert!(MINIMAL.contains(from), "{from:?} not in MINIMAL");
        MINIMAL.replacen(from, to, 1)
    }

    #[test]
    fn full_example_parses_with_every_value() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.gateway.url.as_str(), "https://openapi.opretail.com/m.api");
        assert_eq!(c.gateway.app_key, "the-key");
        assert_eq!(c.gateway.app_secret.expose_secret(), "s3cr3t-value");
        assert_eq!(c.gateway.aid, "S107");
        assert_eq!(c.gateway.sign_method, SignMethod::Md5);
        assert_eq!(c.gateway.timeout, Duration::from_secs(10));
        assert_eq!(c.gateway.max_ids_per_request, 50);
        assert_eq!(c.gateway.max_in_flight, 4);
        assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(c.poll_interval, Duration::from_secs(300));
        assert_eq!(
            c.shops,
            vec![
                ShopTarget {
                    id: TargetId::Shop(9642)
                },
                ShopTarget {
                    id: TargetId::Org(1834)
                }
            ]
        );
        assert_eq!(
            c.devices,
            vec![DeviceTarget {
                mac: "d47c44906f14".into(),
                name: Some("Main entrance".into()),
                shop_id: Some("9642".into()),
            }]
        );
    }

    #[test]
    fn non_default_values() {
        let text = "
gateway:
  url: https://cloudapi.ovopark.com/m.api
  app_key: k
  app_secret: s
  aid: DC-000698
  sign_method: SHA1
  timeout: 1m 30s
  max_ids_per_request: \"1000\"
  max_in_flight: 64
timezone: Europe/Berlin
poll_interval: 30s
devices:
  - mac: D4:7C:44:90:6F:14
    shop_id: 9642
";
        let c = parse(text).unwrap();
        assert_eq!(c.gateway.aid, "DC-000698");
        assert_eq!(c.gateway.sign_method, SignMethod::Sha1);
        assert_eq!(c.gateway.timeout, Duration::from_secs(90));
        assert_eq!(c.gateway.max_ids_per_request, 1000);
        assert_eq!(c.gateway.max_in_flight, 64);
        assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.poll_interval, Duration::from_secs(30));
        assert!(c.shops.is_empty());
        assert_eq!(c.devices[0].shop_id.as_deref(), Some("9642"));
        assert_eq!(c.devices[0].name, None);
    }

    #[test]
    fn defaults_fill_in() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.gateway.aid, DEFAULT_AID);
        assert_eq!(c.gateway.sign_method, SignMethod::Md5);
        assert_eq!(c.gateway.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.gateway.max_ids_per_request, DEFAULT_MAX_IDS_PER_REQUEST);
        assert_eq!(c.gateway.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(c.timezone, DEFAULT_TIMEZONE);
        assert_eq!(c.poll_interval, DEFAULT_POLL_INTERVAL);
        assert!(c.devices.is_empty());
        // null means default too
        let c = parse(&minimal_with("app_key: key", "app_key: key\n  timeout:\n  aid: ~")).unwrap();
        assert_eq!(c.gateway.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.gateway.aid, DEFAULT_AID);
    }

    #[test]
    fn gateway_config_new_fills_defaults() {
        let url = Url::parse("http://127.0.0.1:9/m.api").unwrap();
        let g = GatewayConfig::new(url, "k".into(), "s".into());
        assert_eq!(g.aid, DEFAULT_AID);
        assert_eq!(g.sign_method, DEFAULT_SIGN_METHOD);
        assert_eq!(g.timeout, DEFAULT_TIMEOUT);
        assert_eq!(g.max_ids_per_request, DEFAULT_MAX_IDS_PER_REQUEST);
        assert_eq!(g.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(g.app_secret.expose_secret(), "s");
    }

    #[test]
    fn env_substitution_multiple_and_dollar_dollar() {
        let text = minimal_with("http://gw.example/m.api", "https://${HOST}:${PORT}/m.api").replacen(
            "app_key: key",
            "app_key: a$$b${USER}$x",
            1,
        );
        let env = env_of(&[("HOST", "gw.example"), ("PORT", "8443"), ("USER", "u1")]);
        let c = Config::from_yaml_str(&text, &env).unwrap();
        assert_eq!(c.gateway.url.as_str(), "https://gw.example:8443/m.api");
        assert_eq!(c.gateway.app_key, "a$bu1$x");
    }

    #[test]
    fn env_values_are_not_expanded_again_and_keys_are_not_expanded() {
        let text = minimal_with("app_key: key", "app_key: ${K}");
        let env = env_of(&[("K", "${NOPE}")]);
        let c = Config::from_yaml_str(&text, &env).unwrap();
        assert_eq!(c.gateway.app_key, "${NOPE}");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  ${X}: 1"));
        assert_error(&errs, "gateway.${X}", "unknown key");
    }

    #[test]
    fn unset_var_names_field_and_var() {
        let errs = Config::from_yaml_str(FULL, &env_of(&[("OPRETAIL_APP_SECRET", "x")]))
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "gateway.app_key: environment variable OPRETAIL_APP_KEY is not set"
        );
    }

    #[test]
    fn unterminated_and_invalid_var() {
        let errs = errors(&minimal_with("app_key: key", "app_key: abc${OOPS"));
        assert_error(&errs, "gateway.app_key", "unterminated");
        let errs = errors(&minimal_with("app_key: key", "app_key: ${}"));
        assert_error(&errs, "gateway.app_key", "invalid environment variable name");
    }

    #[test]
    fn missing_keys() {
        let errs = errors("gateway:\n  app_key: k\nshops: [{id: S_1}]\n");
        assert_error(&errs, "gateway.url", "missing");
        assert_error(&errs, "gateway.app_secret", "missing");
        assert_eq!(errs.len(), 2, "{errs:?}");
        let errs = errors("shops: [{id: S_1}]\n");
        assert_error(&errs, "gateway", "missing");
        let errs = errors(&minimal_with("- id: S_1", "- {}"));
        assert_error(&errs, "shops[0].id", "missing");
    }

    #[test]
    fn unknown_keys_top_level_and_nested() {
        let errs = errors(&format!("{MINIMAL}color: blue\n"));
        assert_error(&errs, "color", "unknown key");
        assert_error(&errs, "color", "gateway, timezone");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  foo: 1"));
        assert_error(&errs, "gateway.foo", "unknown key (expected one of url, app_key,");
        let errs = errors(&minimal_with("- id: S_1", "- id: S_1\n    label: x"));
        assert_error(&errs, "shops[0].label", "unknown key");
    }

    #[test]
    fn wrong_types() {
        let errs = errors(&minimal_with("shops:\n  - id: S_1", "shops: S_1"));
        assert_error(&errs, "shops", "expected a list");
        let errs = errors(&format!("{MINIMAL}devices: {{mac: x}}\n"));
        assert_error(&errs, "devices", "expected a list");
        let errs = errors("gateway: hello\nshops: [{id: S_1}]\n");
        assert_error(&errs, "gateway", "expected a mapping");
        let errs = errors("- a\n- b\n");
        assert_error(&errs, "<yaml>", "expected a mapping");
        let errs = errors(&minimal_with("app_key: key", "app_key: 12345"));
        assert_error(&errs, "gateway.app_key", "expected a string");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: true"));
        assert_error(&errs, "gateway.max_in_flight", "whole number");
    }

    #[test]
    fn yaml_syntax_error_and_empty_document() {
        let errs = errors("gateway: [unclosed\n");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "<yaml>");
        assert!(errs[0].message.contains("line"), "{}", errs[0].message);
        let errs = errors(&format!("{MINIMAL}timezone: UTC\ntimezone: UTC\n"));
        assert_eq!(errs.len(), 1);
        assert_error(&errs, "<yaml>", "duplicate");
        for empty in ["", "   \n", "# only a comment\n", "~\n"] {
            let errs = errors(empty);
            assert_error(&errs, "<yaml>", "empty");
        }
    }

    #[test]
    fn bad_durations() {
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: ten"));
        assert_error(&errs, "gateway.timeout", "invalid duration");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: 0s"));
        assert_error(&errs, "gateway.timeout", "greater than zero");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: 10"));
        assert_error(&errs, "gateway.timeout", "expected a duration");
        let errs = errors(&format!("{MINIMAL}poll_interval: 500ms\n"));
        assert_error(&errs, "poll_interval", "at least 1s");
        let errs = errors(&format!("{MINIMAL}poll_interval: 5\n"));
        assert_error(&errs, "poll_interval", "duration");
    }

    #[test]
    fn timezones() {
        let errs = errors(&format!("{MINIMAL}timezone: Mars/Olympus\n"));
        assert_error(&errs, "timezone", "unknown time zone");
        let c = parse(&format!("{MINIMAL}timezone: Etc/GMT+4\n")).unwrap();
        assert_eq!(c.timezone, chrono_tz::Etc::GMTPlus4);
    }

    #[test]
    fn bad_macs() {
        for bad in ["zz7c44906f14", "d47c44906f", "d47c44906f1400"] {
            let errs = errors(&format!("{MINIMAL}devices:\n  - mac: {bad}\n"));
            assert_error(&errs, "devices[0].mac", "12 hex digits");
        }
    }

    #[test]
    fn mac_normalisation() {
        for good in ["D4:7C:44:90:6F:14", "d4-7c-44-90-6f-14", "d47c44906f14", "D47C44906F14"] {
            assert_eq!(normalize_mac(good).unwrap(), "d47c44906f14");
        }
        let c = parse(&format!(
            "{MINIMAL}devices:\n  - mac: \"D4:7C:44:90:6F:14\"\n  - mac: d4-7c-44-90-6f-15\n"
        ))
        .unwrap();
        assert_eq!(c.devices[0].mac, "d47c44906f14");
        assert_eq!(c.devices[1].mac, "d47c44906f15");
    }

    #[test]
    fn target_ids() {
        assert_eq!("S_9642".parse::<TargetId>().unwrap(), TargetId::Shop(9642));
        assert_eq!("O_1834".parse::<TargetId>().unwrap(), TargetId::Org(1834));
        assert_eq!(TargetId::Shop(9642).to_string(), "S_9642");
        assert_eq!(TargetId::Org(1834).to_string(), "O_1834");
        for bad in ["S_0", "S_", "S_-1", "S_+1", "s_1"] {
            assert!(bad.parse::<TargetId>().is_err(), "{bad}");
        }
        let errs = errors(&minimal_with("S_1", "X_1"));
        assert_error(&errs, "shops[0].id", "S_ or O_");
        let errs = errors(&minimal_with("S_1", "S_abc"));
        assert_error(&errs, "shops[0].id", "positive integer");
    }

    #[test]
    fn device_labels() {
        let errs = errors(&format!(
            "{MINIMAL}devices:\n  - mac: d47c44906f14\n    shop_id: S_9642\n"
        ));
        assert_error(&errs, "devices[0].shop_id", "depId");
        let errs = errors(&format!("{MINIMAL}devices:\n  - mac: d47c44906f14\n    name: [a]\n"));
        assert_error(&errs, "devices[0].name", "expected a string");
    }

    #[test]
    fn nothing_to_poll() {
        let gateway = "gateway:\n  url: http://gw.example/m.api\n  app_key: k\n  app_secret: s\n";
        for tail in ["", "shops:\ndevices:\n", "shops: []\ndevices: []\n"] {
            let errs = errors(&format!("{gateway}{tail}"));
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert_error(&errs, "shops", "nothing to poll");
        }
    }

    #[test]
    fn bad_urls() {
        let errs = errors(&minimal_with("http://gw.example/m.api", "ftp://gw.example/m.api"));
        assert_error(&errs, "gateway.url", "http or https");
        let errs = errors(&minimal_with("http://gw.example/m.api", "not a url"));
        assert_error(&errs, "gateway.url", "invalid URL");
    }

    #[test]
    fn bad_sign_method() {
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  sign_method: sha256"));
        assert_error(&errs, "gateway.sign_method", "sign method");
    }

    #[test]
    fn integer_ranges() {
        let errs = errors(&minimal_with(
            "app_key: key",
            "app_key: key\n  max_ids_per_request: 0\n  max_in_flight: 65",
        ));
        assert_error(&errs, "gateway.max_ids_per_request", "between 1 and 1000");
        assert_error(&errs, "gateway.max_in_flight", "between 1 and 64");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: -1"));
        assert_error(&errs, "gateway.max_in_flight", "whole number");
        let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: 2.5"));
        assert_error(&errs, "gateway.max_in_flight", "whole number");
    }

    #[test]
    fn duplicates() {
        let errs = errors(&minimal_with("- id: S_1", "- id: S_1\n  - id: O_1\n  - id: S_1"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_error(&errs, "shops[2].id", "duplicate");
        let errs = errors(&format!(
            "{MINIMAL}devices:\n  - mac: d47c44906f14\n  - mac: D4-7C-44-90-6F-14\n"
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_error(&errs, "devices[1].mac", "duplicate");
    }

    #[test]
    fn three_problems_reported_at_once() {
        let text = "
gateway:
  url: https://openapi.opretail.com/m.api
  app_secret: s
timezone: Mars/Olympus
devices:
  - mac: zz7c44906f14
";
        let errs = errors(text);
        assert_eq!(errs.len(), 3, "{}", ConfigErrors(errs.clone()));
        assert_error(&errs, "gateway.app_key", "missing");
        assert_error(&errs, "timezone", "unknown time zone");
        assert_error(&errs, "devices[0].mac", "hex");
        let shown = ConfigErrors(errs).to_string();
        assert_eq!(shown.lines().count(), 3);
    }

    #[test]
    fn secret_never_in_debug_or_errors() {
        let c = parse(MINIMAL).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("gateway"));

        let errs = errors(&minimal_with("hunter2-secret", "hunter2-secret${UNCLOSED"));
        assert_error(&errs, "gateway.app_secret", "unterminated");
        let errs = errors(&minimal_with("hunter2-secret", "hunter2-secret${bad name}"));
        assert_error(&errs, "gateway.app_secret", "invalid");
        let errs2 = errors(&minimal_with("hunter2-secret", "987654321"));
        assert_error(&errs2, "gateway.app_secret", "expected a string");
        let errs3 = errors(&minimal_with("hunter2-secret", "[hunter2]"));
        for e in errs.iter().chain(&errs2).chain(&errs3) {
            let shown = e.to_string();
            assert!(!shown.contains("hunter2") && !shown.contains("987654321"), "{shown}");
        }
    }

    #[test]
    fn load_reports_read_errors_with_the_file_path() {
        let path = Path::new("/nonexistent/dir/opretail.yaml");
        let errs = Config::load(path).unwrap_err().0;
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "/nonexistent/dir/opretail.yaml");
    }

    #[test]
    fn example_file_parses() {
        let c = parse(include_str!("../../config.example.yaml")).unwrap();
        assert_eq!(c.gateway.app_key, "the-key");
        assert_eq!(c.shops.len(), 2);
        assert_eq!(c.devices.len(), 1);
    }
}

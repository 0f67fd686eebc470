//! The exporter's configuration: reading the YAML file, expanding `${VAR}` references from the
//! environment, and validating everything once into typed values ([`Config`]) so that no other
//! module ever re-checks a URL, a duration, a shop id or a MAC address. The document is walked by
//! hand as a [`serde_yaml::Value`] so that one call reports every problem at once, each as a
//! [`ConfigError`] naming the dotted field path (`gateway.timeout`, `shops[1].id`,
//! `devices[0].mac`). The app secret is never echoed in an error or in `Debug` output.
//!
//! `${VAR}` is expanded only in [`EXPANDED_FIELDS`]: the credentials (never echoed, logged or
//! published) and the gateway's URL. Anywhere else it is an error, so that whoever edits the
//! file cannot copy a secret of the environment into a label on `/metrics` or a log line.
//! [`Config::warnings`] lists what is valid but unsafe (an `http://` gateway that is not this
//! machine); [`Config::load`] logs each once, at start-up and on every reload.
//!
//! Each key is declared once, with `section!` (`declare.rs`): this file holds the top level,
//! `gateway.rs` the gateway section, `targets.rs` the shop, override and device lists,
//! `calendar.rs` business calendars and static labels (and how a shop's levels resolve),
//! `baseline.rs` the walk-in baseline, `shard.rs` sharding, `accounts.rs` the file of several
//! accounts (each a whole [`Config`], read by [`Accounts::load`]), and `walk.rs` the generic
//! walk (mappings, `${VAR}`, strings, durations, numbers). [`Config::load`] reads the
//! single-account form only.

mod accounts;
mod baseline;
mod calendar;
mod declare;
mod gateway;
mod shard;
mod targets;
mod walk;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;
use serde_yaml::Value;

pub use self::accounts::{Account, Accounts};
pub use self::baseline::BaselineConfig;
pub use self::calendar::{CalendarLevel, DateSpan, DayHours, Labels, ShopCalendar};
use self::declare::section;
pub use self::gateway::{GatewayAuth, GatewayConfig};
pub(crate) use self::shard::stable_hash;
pub use self::shard::{Shard, ShardError};
pub use self::targets::{Indexed, Keyed, ShopOverride, ShopTarget};
use self::walk::Walker;
use crate::model::{DeviceTarget, TargetId};

/// Default `stale_after`: how long a failing target keeps its last good values.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(2 * 3600);
/// Default `hour_delay`: how long after each full hour the poll for the new hour starts.
pub(crate) const DEFAULT_HOUR_DELAY: Duration = Duration::from_secs(60);

/// The path used for problems of the document as a whole (syntax errors, empty document).
const ROOT_PATH: &str = "<yaml>";

/// The fields in which `${VAR}` is replaced from the environment: the gateway's URL and the
/// credentials, which are read as secrets (never echoed in an error, never logged or
/// published). In any other field `${` is an error (`$$` writes a literal `$`). In a file of
/// several accounts they are the fields of each account (`accounts[1].gateway.app_secret`).
pub const EXPANDED_FIELDS: &[&str] = &[
    "gateway.url",
    "gateway.app_key",
    "gateway.app_secret",
    "gateway.token",
    "gateway.login.username",
    "gateway.login.password",
];

section! {
    /// The validated configuration.
    #[derive(Debug, Clone)]
    pub struct Config {
        /// How to reach and sign for the gateway.
        gateway: GatewayConfig = required(GatewayConfig::read),
        /// The shops' local time zone, used to pick the latest complete hour.
        timezone: Tz = default(chrono_tz::Asia::Shanghai, read_timezone),
        /// How often the gateway is polled.
        poll_interval: Duration = default(Duration::from_secs(5 * 60), read_poll_interval),
        /// A target failing for longer than this loses its value series (its `up` stays, at 0).
        stale_after: Duration = default(DEFAULT_STALE_AFTER, Walker::positive_duration),
        /// How long after each full hour the (prioritised) poll for the new hour starts, giving
        /// counters time to upload.
        hour_delay: Duration = default(DEFAULT_HOUR_DELAY, Walker::duration),
        /// Devices are polled every this many hours, each in its own hour of the cycle, asking
        /// for every hour since its last success (whole hours, 1h to 24h).
        device_poll_interval: Duration = default(Duration::from_secs(3600), read_whole_hours),
        /// After a gap, a refresh also asks for the hours since the target's last success, up
        /// to this many (0 to 23; shop calls within the hour's day).
        max_catch_up_hours: usize = default(6, |w, path, v| w.integer(path, v, 0..=23)),
        /// The walk-in baseline of each shop's reported hour, from the gateway's past days.
        baseline: BaselineConfig = default(BaselineConfig::default(), BaselineConfig::read),
        /// This replica's share of the targets, when several exporters split a large chain.
        sharding: Option<Shard> = optional(shard::read_sharding),
        /// The business calendar of every shop, unless its organisation's or its own level
        /// says otherwise (without one: 10:00-22:00 every day).
        calendar: CalendarLevel = default(CalendarLevel::default(), calendar::read_calendar),
        /// Shops and organisation nodes polled with the many-shops method, with their levels'
        /// labels and calendars.
        shops: Indexed<ShopTarget> = default(Indexed::default(), targets::read_shops),
        /// The own level (labels, calendar) of shops reached through an organisation, by depId.
        shop_overrides: Indexed<ShopOverride> = default(Indexed::default(), targets::read_shop_overrides),
        /// Counting devices polled with the per-device method.
        devices: Vec<DeviceTarget> = default(Vec::new(), targets::read_devices),
    }
    check(shops, devices, shop_overrides) with targets::check_lists;
}

impl Config {
    /// The business calendar of the shop `shop_id` (its depId, `9642`), reached through the
    /// configured organisation `org_id` (`O_1834`) or, with `None`, configured by its own
    /// `S_` id: the top level, then the organisation's entry, then the shop's own level (its
    /// `S_` entry or its `shop_overrides` entry). An id that is not configured adds nothing.
    pub fn calendar_for(&self, shop_id: &str, org_id: Option<&str>) -> ShopCalendar {
        let (dep, org) = parse_ids(shop_id, org_id);
        self.calendar_of(dep, org)
    }

    /// The static labels of the shop `shop_id` reached through `org_id` (as for
    /// [`Config::calendar_for`]): the organisation's, then the shop's own level's, by name.
    pub fn labels_for(&self, shop_id: &str, org_id: Option<&str>) -> Labels {
        let (dep, org) = parse_ids(shop_id, org_id);
        self.labels_of(dep, org)
    }

    /// [`Config::calendar_for`] by numbers: the depId and the organisation's id.
    pub(crate) fn calendar_of(&self, dep: Option<u64>, org: Option<u64>) -> ShopCalendar {
        let (org, own) = self.levels(dep, org);
        let mut levels = vec![&self.calendar];
        levels.extend(org.map(|o| &o.calendar));
        levels.extend(own.map(|(_, calendar)| calendar));
        ShopCalendar::resolve(&levels)
    }

    /// [`Config::labels_for`] by numbers.
    pub(crate) fn labels_of(&self, dep: Option<u64>, org: Option<u64>) -> Labels {
        let (org, own) = self.levels(dep, org);
        let empty = Labels::default();
        calendar::merge_labels(&[
            org.map_or(&empty, |o| &o.labels),
            own.map_or(&empty, |(labels, _)| labels),
        ])
    }

    /// Whether the shop `dep` is listed by its own `S_` id.
    pub(crate) fn lists_shop(&self, dep: u64) -> bool {
        self.shops.get(&TargetId::Shop(dep)).is_some()
    }

    /// The organisation entry of `org` and the shop's own level (labels and calendar) of `dep`.
    fn levels(&self, dep: Option<u64>, org: Option<u64>) -> (Option<&ShopTarget>, Option<(&Labels, &CalendarLevel)>) {
        let org = org.and_then(|o| self.shops.get(&TargetId::Org(o))).map(|(_, t)| t);
        let own = dep.and_then(|d| match self.shops.get(&TargetId::Shop(d)) {
            Some((_, t)) => Some((&t.labels, &t.calendar)),
            None => self.shop_overrides.get(&d).map(|(_, o)| (&o.labels, &o.calendar)),
        });
        (org, own)
    }
}

/// A depId (`9642`, or `S_9642`) and an organisation id (`O_1834`) as numbers; what does not
/// read as one is `None`.
fn parse_ids(shop_id: &str, org_id: Option<&str>) -> (Option<u64>, Option<u64>) {
    let shop_id = shop_id.trim();
    let dep = shop_id.strip_prefix("S_").unwrap_or(shop_id).parse().ok();
    let org = org_id.and_then(|o| match o.trim().parse::<TargetId>() {
        Ok(TargetId::Org(n)) => Some(n),
        _ => None,
    });
    (dep, org)
}

/// An IANA time zone name.
fn read_timezone(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Tz> {
    let text = w.text(path, value)?;
    match text.trim().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            w.error(
                path,
                format!("unknown time zone {text:?} (expected an IANA name such as Asia/Shanghai)"),
            );
            None
        }
    }
}

/// A poll interval: a duration of at least 1s.
fn read_poll_interval(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Duration> {
    let d = w.duration(path, value)?;
    if d < Duration::from_secs(1) {
        w.error(path, "must be at least 1s");
        return None;
    }
    Some(d)
}

/// A whole number of hours from 1h to 24h.
fn read_whole_hours(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Duration> {
    let d = w.duration(path, value)?;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs % 3600 != 0 || !(1..=24).contains(&(secs / 3600)) {
        w.error(path, "must be a whole number of hours from 1h to 24h");
        return None;
    }
    Some(d)
}

/// One configuration problem: where (`gateway.timeout`, `shops[1].id`, `<yaml>`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one configuration, in document order as far as possible, one per
/// line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn lines(errors: &[ConfigError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl ConfigErrors {
    fn one(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::new(path, message)])
    }
}

impl Config {
    /// Parse and validate. `env` looks up environment variables (tests pass a closure over a map).
    #[cfg(test)]
    pub(crate) fn from_yaml_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
        Config::parse(text, env).map(|(config, _)| config)
    }

    /// [`Config::from_yaml_str`], and the secret fields written out in the text (not taken
    /// from the environment). A file of several accounts (`accounts:`) is an error here: it is
    /// read whole by [`Accounts::load`], so that nothing silently picks one of its accounts.
    fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(Config, Vec<String>), ConfigErrors> {
        let doc = document(text)?;
        if accounts::has_accounts(&doc) {
            return Err(ConfigErrors::one(
                "accounts",
                "the file lists several accounts, so it is read as a whole (fetch, backfill and doctor take --account NAME)",
            ));
        }
        Config::read_document(&doc, env)
    }

    /// Reads the single-account form from the parsed `doc`, with the secret fields written out.
    fn read_document(doc: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(Config, Vec<String>), ConfigErrors> {
        let mut walker = Walker::new(env, EXPANDED_FIELDS);
        let config = Config::read(&mut walker, "", doc);
        let (mut errors, literal_secrets) = walker.into_parts();
        if let (Some(config), Some(allowed)) = (&config, env(gateway::ALLOWED_HOSTS_ENV)) {
            errors.extend(
                config
                    .gateway
                    .disallowed_host(&allowed)
                    .map(|message| ConfigError::new("gateway.url", message)),
            );
        }
        match config {
            Some(config) if errors.is_empty() => Ok((config, literal_secrets)),
            _ => {
                if errors.is_empty() {
                    errors.push(ConfigError::new(ROOT_PATH, "invalid configuration"));
                }
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Read a file in the single-account form and call [`Config::from_yaml_str`] with the
    /// process environment (a file of several accounts is an error: see [`Accounts::load`]).
    /// A read error is one [`ConfigError`] whose path is the file path. Each of a valid
    /// configuration's [`Config::warnings`] is logged once (at start-up, and on each reload).
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, warnings) = Config::load_quietly(path)?;
        for warning in warnings {
            tracing::warn!(file = %path.display(), "{warning}");
        }
        Ok(config)
    }

    /// Reads and validates the file at `path`, like [`Config::load`], and returns its warnings
    /// instead of logging them: [`Config::warnings`], and one when the file may be read by
    /// other users while it holds a secret written out. `check-config` prints them.
    pub fn load_quietly(path: &Path) -> Result<(Config, Vec<String>), ConfigErrors> {
        let text = read_file(path)?;
        let (config, literal_secrets) = Config::parse(&text, &|name| std::env::var(name).ok())?;
        let mut warnings = config.warnings();
        warnings.extend(file_mode(path).and_then(|mode| readable_secrets(mode, &literal_secrets)));
        Ok((config, warnings))
    }

    /// What is valid but unsafe in this configuration, one line each, starting with the field
    /// it is about (never a credential or a URL's query; [`Accounts::warnings`] puts an
    /// account's name and path in front): today, a `gateway.url` of `http://` to a host that is
    /// not this machine, over which every request's signature and the user token (and the
    /// login password) travel in clear. Pure: `check-config` and `doctor` show them, and
    /// [`Config::load`] logs them.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(warning) = self.gateway.cleartext_warning() {
            warnings.push(warning);
        }
        warnings
    }
}

/// The YAML document of `text`, merge keys (`<<`) applied; an empty document is an error.
fn document(text: &str) -> Result<Value, ConfigErrors> {
    let mut doc: Value = serde_yaml::from_str(text).map_err(|e| ConfigErrors::one(ROOT_PATH, e.to_string()))?;
    doc.apply_merge()
        .map_err(|e| ConfigErrors::one(ROOT_PATH, e.to_string()))?;
    if doc.is_null() {
        return Err(ConfigErrors::one(ROOT_PATH, "the document is empty"));
    }
    Ok(doc)
}

/// The text of the file at `path`; a read error is one [`ConfigError`] whose path is the
/// file's.
fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| ConfigErrors::one(path.display().to_string(), e.to_string()))
}

/// The permission bits of the file at `path`, where the platform has them (also used for the
/// web config's key file).
pub(crate) fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode())
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The warning for a file of permission bits `mode` that other users may read while it holds
/// the secret fields `literal` written out (none when it holds none, or only its owner reads).
fn readable_secrets(mode: u32, literal: &[String]) -> Option<String> {
    (mode & 0o044 != 0 && !literal.is_empty()).then(|| {
        format!(
            "the file is readable by group or others (mode {:o}) and holds {} as written: chmod 600 it, or take them from the environment (${{VAR}})",
            mode & 0o777,
            literal.join(", ")
        )
    })
}

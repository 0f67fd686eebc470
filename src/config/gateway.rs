//! The `gateway` section: how to reach the gateway, sign for it, and how hard to lean on it.
//! Every key is declared once below, with its type, default, reader and doc; the client
//! ([`crate::client::Client`]) holds the validated [`GatewayConfig`] and reads its fields, so
//! a new setting is one line here (plus its line in `config.example.yaml`, which a test
//! enforces).
//!
//! Secrets (`app_secret`, `token`, `login.password`) are never echoed in an error and are
//! redacted in `Debug`; `app_key` and `login.username`, which may come from the environment
//! like them, are never echoed either. These and `url` are the fields whose `${VAR}` are
//! expanded ([`super::EXPANDED_FIELDS`]). [`GatewayConfig::cleartext_warning`] says when the
//! URL sends all that in clear.

use std::time::Duration;

use reqwest::Url;
use secrecy::SecretString;
use serde_yaml::Value;

use super::declare::section;
use super::walk::{join, Fields, Walker};
use crate::model::{Convention, Named, RateScale, RowTime, SignMethod};

/// The keys of `gateway.login`.
pub(super) const LOGIN_KEYS: &[&str] = &["username", "password", "password_file"];

section! {
    /// How to reach and sign for the gateway.
    #[derive(Debug, Clone)]
    pub struct GatewayConfig, constructor with_defaults {
        /// Gateway endpoint, http or https.
        url: Url = required(read_url),
        /// Sent as `_akey`. Read as a secret (never echoed), since it may come from one.
        app_key: String = required(Walker::secret_text),
        /// Signs every request; never logged (its `Debug` is redacted). Given inline as
        /// `app_secret` or read from the file named by `app_secret_file`.
        app_secret: SecretString = custom(["app_secret", "app_secret_file"], |w, f, parent| {
            secret_or_file(w, f, parent, "app_secret", "app_secret_file")
        }),
        /// Sent as `_aid`.
        aid: String = default("S107".to_string(), Walker::text),
        /// Sent as `_sm`.
        sign_method: SignMethod = default(SignMethod::Md5, read_sign_method),
        /// Limit for one gateway request.
        timeout: Duration = default(Duration::from_secs(10), Walker::positive_duration),
        /// Shop / organisation ids (`S_` / `O_`) batched into one call.
        max_ids_per_request: usize = default(50, |w, path, v| w.integer(path, v, 1..=1000)),
        /// Longest joined `id` list (`S_1,S_2,O_3`) sent in one call, in characters. The
        /// vendor's page gives every string parameter a length of 100 and shows one id;
        /// public integrations send lists of 50 ids. A gateway that refuses a list is met by
        /// splitting it, and the split that works is remembered.
        max_id_chars: usize = default(500, |w, path, v| w.integer(path, v, 20..=100_000)),
        /// The rows one shops call may be expected to answer (shops × hours): organisations
        /// are packed by their learned shop counts under it, and one too big on its own is
        /// polled through its shops.
        max_rows_per_call: usize = default(2000, |w, path, v| w.integer(path, v, 1..=1_000_000)),
        /// How long a learned split of a batch, and a large organisation's shop list, are
        /// trusted before the gateway is asked the plain way again.
        batch_memory: Duration = default(Duration::from_secs(6 * 3600), Walker::positive_duration),
        /// Concurrent gateway requests.
        max_in_flight: usize = default(4, |w, path, v| w.integer(path, v, 1..=64)),
        /// Gateway requests per second, retries and logins included: never more than its whole
        /// part in any one second.
        requests_per_second: f64 = default(5.0, Walker::rate),
        /// Larger answers are refused rather than buffered.
        max_response_bytes: usize = default(16 * 1024 * 1024, |w, path, v| {
            w.byte_size(path, v, 1024..=1024 * 1024 * 1024)
        }),
        /// Retries of a transiently failed request (HTTP 5xx, timeouts, connection errors, codes
        /// -100, -500, -999, 16).
        max_retries: usize = default(3, |w, path, v| w.integer(path, v, 0..=10)),
        /// Base delay before the first retry; doubled for each further one, with jitter.
        retry_backoff: Duration = default(Duration::from_millis(500), Walker::duration),
        /// Longest delay between retries.
        retry_backoff_max: Duration = default(Duration::from_secs(30), Walker::duration),
        /// What a row's `time` labels: `start` or `end` of the hour it counts, or `auto`
        /// (detected from whole-day answers; start is assumed until then).
        row_time: Convention<RowTime> = default(Convention::Auto, read_convention),
        /// How rates arrive: `percent` (8.14) or `fraction` (0.0814), or `auto` (detected by
        /// comparing `inShopRate` with walk-ins over outside traffic; percent until then).
        rate_scale: Convention<RateScale> = default(Convention::Auto, read_convention),
        /// The user token sent with business calls, if any: `login` or `token`.
        auth: GatewayAuth = custom(["login", "token"], GatewayAuth::None, read_auth),
    }
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
        GatewayConfig::with_defaults(url, app_key, SecretString::from(app_secret))
    }
}

impl GatewayConfig {
    /// A warning when `url` is `http://` to a host that is not this machine (127.0.0.0/8,
    /// ::1, `localhost`): every request's `_sig`, the user token and the login password then
    /// travel in clear. It names the scheme, host and port only.
    pub fn cleartext_warning(&self) -> Option<String> {
        let url = &self.url;
        if url.scheme() != "http" || is_loopback(url) {
            return None;
        }
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(80);
        Some(format!(
            "gateway.url is http://{host}:{port}, not this machine: every request's signature (_sig), the user token and the login password travel in clear; use https:// (the known gateways answer on https)"
        ))
    }
}

/// The environment variable that, when set, lists the only gateway hosts `gateway.url` may
/// name (comma- or space-separated). Set it where the configuration's editors cannot (the
/// container's environment, not its ConfigMap), so that editing the file cannot send the login
/// password, the token and signed requests to another host.
pub(crate) const ALLOWED_HOSTS_ENV: &str = "OPRETAIL_ALLOWED_GATEWAY_HOSTS";

impl GatewayConfig {
    /// The error when `allowed` (the value of [`ALLOWED_HOSTS_ENV`]) does not list the host of
    /// `gateway.url` (compared without case); `None` when it does.
    pub(crate) fn disallowed_host(&self, allowed: &str) -> Option<String> {
        let host = self
            .url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let list: Vec<&str> = allowed
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|h| !h.is_empty())
            .collect();
        (!list.iter().any(|h| h.eq_ignore_ascii_case(host))).then(|| {
            format!(
                "the host {host} is not one {ALLOWED_HOSTS_ENV} allows ({}): the gateway address is pinned by the environment",
                list.join(", ")
            )
        })
    }
}

/// Whether `url` names this machine: a loopback address (127.0.0.0/8, ::1, or an IPv4 one
/// mapped into IPv6) or `localhost`.
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => host.strip_suffix('.').unwrap_or(host).eq_ignore_ascii_case("localhost"),
    }
}

fn read_url(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Url> {
    // Errors echo the URL as written, not as expanded: a variable may hold a secret.
    let written = value.as_str().unwrap_or_default().trim().to_string();
    let text = w.text(path, value)?;
    match Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
        Ok(_) => {
            w.error(path, format!("the URL's scheme must be http or https: {written:?}"));
            None
        }
        Err(e) => {
            w.error(path, format!("invalid URL {written:?}: {e}"));
            None
        }
    }
}

fn read_convention<T: Named + PartialEq>(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Convention<T>> {
    let text = w.string(path, value, false)?;
    match text.parse::<Convention<T>>() {
        Ok(c) => Some(c),
        Err(e) => {
            w.error(path, e.to_string());
            None
        }
    }
}

fn read_sign_method(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<SignMethod> {
    let text = w.string(path, value, false)?;
    match text.trim().parse::<SignMethod>() {
        Ok(m) => Some(m),
        Err(e) => {
            w.error(path, e.to_string());
            None
        }
    }
}

/// A secret given inline under `key` or read from the file named under `file_key`
/// (exactly one of the two; trailing whitespace of the file is dropped). The secret is
/// never echoed.
fn secret_or_file(w: &mut Walker<'_>, f: &Fields<'_>, parent: &str, key: &str, file_key: &str) -> Option<SecretString> {
    let path = join(parent, key);
    let file_path = join(parent, file_key);
    match (f.get(key), f.get(file_key)) {
        (Some(_), Some(_)) => {
            w.error(&file_path, format!("give either {key} or {file_key}, not both"));
            None
        }
        (None, None) => {
            w.error(&path, format!("missing (or give {file_key})"));
            None
        }
        (Some(v), None) => w.non_empty_string(&path, v, true).map(SecretString::from),
        (None, Some(v)) => {
            let file = w.text(&file_path, v)?;
            match std::fs::read_to_string(file.trim()) {
                Ok(text) => {
                    let secret = text.trim_end_matches(['\r', '\n', ' ', '\t']);
                    if secret.is_empty() {
                        w.error(&file_path, format!("{file:?} is empty"));
                        return None;
                    }
                    Some(SecretString::from(secret.to_string()))
                }
                Err(e) => {
                    w.error(&file_path, format!("cannot read {file:?}: {e}"));
                    None
                }
            }
        }
    }
}

/// `gateway.login` / `gateway.token`: at most one of them.
fn read_auth(w: &mut Walker<'_>, f: &Fields<'_>, parent: &str) -> Option<GatewayAuth> {
    match (f.get("login"), f.get("token")) {
        (Some(_), Some(_)) => {
            w.error(&join(parent, "token"), "give either login or token, not both");
            None
        }
        (None, None) => Some(GatewayAuth::None),
        (None, Some(v)) => {
            let token = w.non_empty_string(&join(parent, "token"), v, true)?;
            Some(GatewayAuth::Token(SecretString::from(token)))
        }
        (Some(v), None) => {
            let path = join(parent, "login");
            let login = w.mapping(&path, v, LOGIN_KEYS)?;
            let username = w.required(&login, &path, "username", Walker::secret_text);
            let password = secret_or_file(w, &login, &path, "password", "password_file");
            Some(GatewayAuth::Login {
                username: username?,
                password: password?,
            })
        }
    }
}

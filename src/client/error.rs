//! Why a gateway call failed, as one typed error whose `code` is the label of
//! `opretail_api_errors_total`; and which failures are worth a retry. No error text ever
//! carries the secret, the token or `_sig`, and the gateway's own text in it (`codename`,
//! `result`, `cid`, transport and decode details) is shown through [`sanitize`], so that it
//! can neither forge a log line nor drive a terminal.

use std::time::Duration;

use reqwest::{StatusCode, Url};

use super::codes::{code_description, codename, TOKEN_NOT_EXIST};
use super::text::sanitize;

/// Why a gateway call failed. [`ApiError::code`] is the `code` label of
/// `opretail_api_errors_total`. Display texts never contain the secret, a token or `_sig`,
/// nor a raw control character from the gateway's answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method}: gateway answered code {code} ({}){}{}", sanitize(.codename), detail_suffix(.message), cid_suffix(.cid))]
    Gateway {
        method: String,
        code: i64,
        codename: String,
        message: String,
        /// `stat.cid`: the gateway's id of the call, which the vendor's support asks for.
        cid: String,
    },
    #[error("{method}: gateway answered HTTP {status}")]
    Http { method: String, status: u16 },
    /// A 3xx answer. Redirects are never followed: the request would carry `_sig`, the login
    /// password or the user token to wherever the answer points. Counted as `http_<status>`.
    #[error("{method}: the gateway answered {} to {location}; redirects are not followed: set gateway.url to the final address", status_text(*.status))]
    Redirect {
        method: String,
        status: u16,
        /// Where the answer pointed: `scheme://host:port` only (no path, query or user), or
        /// `no Location` / `an unreadable Location`.
        location: String,
    },
    #[error("{method}: no complete answer within {timeout:?}")]
    Timeout { method: String, timeout: Duration },
    #[error("{method}: transport error: {}", sanitize(.detail))]
    Transport { method: String, detail: String },
    #[error("{method}: undecodable answer: {}", sanitize(.detail))]
    Decode { method: String, detail: String },
    #[error("{method}: answer larger than {limit} bytes (gateway.max_response_bytes)")]
    TooLarge { method: String, limit: usize },
}

fn cid_suffix(cid: &str) -> String {
    if cid.is_empty() {
        String::new()
    } else {
        format!(" [cid {}]", sanitize(cid))
    }
}

fn detail_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {}", sanitize(message))
    }
}

/// `307 Temporary Redirect`, or the bare number for a status without a standard reason.
fn status_text(status: u16) -> String {
    match StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Where a redirect points, for an error text: the `Location` header resolved against the
/// request's URL, reduced to `scheme://host:port` (its path and query may carry anything).
pub(super) fn redirect_target(base: &Url, location: Option<&reqwest::header::HeaderValue>) -> String {
    let Some(location) = location else {
        return "no Location".to_string();
    };
    let target = location
        .to_str()
        .ok()
        .and_then(|l| base.join(l.trim()).ok())
        .and_then(|url| {
            let host = url.host_str()?.to_string();
            let port = url.port_or_known_default()?;
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            };
            Some(format!("{}://{host}:{port}", url.scheme()))
        });
    match target {
        Some(t) => sanitize(&t).into_owned(),
        None => "an unreadable Location".to_string(),
    }
}

impl ApiError {
    /// One line for a failed call: `gateway error 7 SIGN_WRONG: <message>` for a gateway refusal
    /// (the name from the answer, else the documented one), the error itself otherwise.
    pub(crate) fn summary(&self) -> String {
        match self {
            ApiError::Gateway { code, message, cid, .. } => {
                let name = self.code_name();
                let message = if message.is_empty() {
                    code_description(*code).into()
                } else {
                    sanitize(message)
                };
                format!("gateway error {code} {name}: {message}{}", cid_suffix(cid))
            }
            other => other.to_string(),
        }
    }

    /// The name of what failed, beside [`ApiError::code`]: for a gateway refusal the gateway's
    /// name of its code (the answer's `codename`, shown through [`sanitize`], else the
    /// documented one), otherwise the name of the label (see [`label_name`]).
    pub(crate) fn code_name(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ApiError::Gateway {
                code, codename: given, ..
            } if given.is_empty() => codename(*code).into(),
            ApiError::Gateway { codename: given, .. } => sanitize(given),
            other => label_name(&other.code()),
        }
    }

    /// A hint for the gateway codes a user checking a new key is likely to meet.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        let ApiError::Gateway { code, .. } = self else {
            return None;
        };
        Some(match *code {
            1..=3 => "check gateway.app_key (the app key of the open platform)",
            4 | 5 | 7 => "check gateway.app_secret and gateway.sign_method",
            11 | 12 => "check gateway.aid (S107 on openapi.opretail.com; the app's own id on cloudapi.ovopark.com)",
            14..=16 => "check this machine's clock: _timestamp is sent as Asia/Shanghai wall time",
            9 => "the gateway does not know this method for this app: check the app's permissions",
            -100 => "the gateway saw a repeated call: wait a little and try again",
            TOKEN_NOT_EXIST => {
                "the method needs a user token: set gateway.login (the web console's account) or gateway.token"
            }
            103_094 | 103_095 => {
                "check gateway.login: the user name and password of the main web console (not the developer console)"
            }
            _ => return None,
        })
    }

    /// Worth retrying: HTTP 5xx and 429, timeouts, connection errors, and the gateway's
    /// transient codes (-100 API_CALL_REPEAT, -500, -999, 16 TIMESTAMP_OVERTIME: the retry
    /// carries a fresh timestamp).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            ApiError::Gateway { code, .. } => matches!(code, -100 | -500 | -999 | 16),
            ApiError::Http { status, .. } => *status >= 500 || *status == 429,
            ApiError::Timeout { .. } | ApiError::Transport { .. } => true,
            ApiError::Redirect { .. } | ApiError::Decode { .. } | ApiError::TooLarge { .. } => false,
        }
    }

    /// Worth splitting a multi-id call over: the answer was too large, or the gateway refused
    /// the call for what it asked (a code that is neither transient nor about the key, the
    /// signature, the clock, the token or the login: those fail every call alike), or HTTP
    /// 400, 413, 414 or 431 (a request too long for the gateway's web server).
    pub(crate) fn is_worth_splitting(&self) -> bool {
        match self {
            ApiError::TooLarge { .. } => true,
            ApiError::Gateway { .. } => !self.is_transient() && !self.is_refusal(),
            ApiError::Http { status, .. } => matches!(status, 400 | 413 | 414 | 431),
            ApiError::Redirect { .. }
            | ApiError::Timeout { .. }
            | ApiError::Transport { .. }
            | ApiError::Decode { .. } => false,
        }
    }

    /// The gateway refused the key, the signature, the clock, the token or the login (codes
    /// 1–17, 9990001 TOKEN_NOT_EXIST, 103094 USERNAME_ERROE, 103095 PASSWORD_ERROE): every
    /// call fails alike until the configuration or the clock is fixed.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, ApiError::Gateway { code, .. }
            if (1..=17).contains(code) || matches!(*code, TOKEN_NOT_EXIST | 103_094 | 103_095))
    }

    /// The user token is missing, unknown or expired (code 9990001).
    pub(crate) fn is_token_error(&self) -> bool {
        matches!(
            self,
            ApiError::Gateway {
                code: TOKEN_NOT_EXIST,
                ..
            }
        )
    }

    /// The metric label: the gateway's `stat.code`, or `http_<status>` (redirects included),
    /// `timeout`, `transport`, `decode`, `too_large`.
    pub fn code(&self) -> String {
        match self {
            ApiError::Gateway { code, .. } => code.to_string(),
            ApiError::Http { status, .. } | ApiError::Redirect { status, .. } => format!("http_{status}"),
            ApiError::Timeout { .. } => "timeout".to_string(),
            ApiError::Transport { .. } => "transport".to_string(),
            ApiError::Decode { .. } => "decode".to_string(),
            ApiError::TooLarge { .. } => "too_large".to_string(),
        }
    }
}

/// The name of an error label of `opretail_api_errors_total` ([`ApiError::code`]): a gateway
/// code's documented name (`7` → `SIGN_WRONG`, `UNKNOWN` for one not documented), an HTTP
/// status's reason (`http_502` → `HTTP 502 Bad Gateway`), or what the other labels stand for.
pub(crate) fn label_name(label: &str) -> std::borrow::Cow<'static, str> {
    if let Ok(code) = label.parse::<i64>() {
        return codename(code).into();
    }
    if let Some(status) = label.strip_prefix("http_").and_then(|s| s.parse::<u16>().ok()) {
        return format!("HTTP {}", status_text(status)).into();
    }
    match label {
        "timeout" => "no answer in time".into(),
        "transport" => "connection failed".into(),
        "decode" => "undecodable answer".into(),
        "too_large" => "answer too large".into(),
        _ => "UNKNOWN".into(),
    }
}

pub(super) fn classify(method: &str, timeout: Duration, mut e: reqwest::Error) -> ApiError {
    // reqwest names the URL in its text: without a user, password or query, which
    // `gateway.url` may carry from the environment.
    if let Some(url) = e.url_mut() {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_read_code_name_and_message() {
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 7,
            codename: "SIGN_WRONG".into(),
            message: "bad sig".into(),
            cid: "c-9".into(),
        };
        assert_eq!(e.summary(), "gateway error 7 SIGN_WRONG: bad sig [cid c-9]");
        assert_eq!(
            e.to_string(),
            "m: gateway answered code 7 (SIGN_WRONG): bad sig [cid c-9]"
        );
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 16,
            codename: String::new(),
            message: String::new(),
            cid: String::new(),
        };
        assert_eq!(
            e.summary(),
            "gateway error 16 TIMESTAMP_OVERTIME: _timestamp has expired"
        );
        assert!(e.hint().unwrap().contains("clock"));
    }

    #[test]
    fn every_label_has_a_name() {
        assert_eq!(label_name("7"), "SIGN_WRONG");
        assert_eq!(label_name("-100"), "API_CALL_REPEAT");
        assert_eq!(label_name("400003"), "UNKNOWN");
        assert_eq!(label_name("http_502"), "HTTP 502 Bad Gateway");
        assert_eq!(label_name("http_599"), "HTTP 599");
        assert_eq!(label_name("timeout"), "no answer in time");
        assert_eq!(label_name("too_large"), "answer too large");
        let given = |name: &str| ApiError::Gateway {
            method: "m".into(),
            code: 400_003,
            codename: name.into(),
            message: String::new(),
            cid: String::new(),
        };
        assert_eq!(
            given("ID_NOT_ALLOWED").code_name(),
            "ID_NOT_ALLOWED",
            "the answer's name first"
        );
        assert_eq!(given("").code_name(), "UNKNOWN");
        assert_eq!(given("A\nB\x1b").code_name(), r"A\nB\u{1b}", "sanitised");
        let timeout = ApiError::Timeout {
            method: "m".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(timeout.code_name(), "no answer in time");
    }

    #[test]
    fn the_gateways_text_is_shown_escaped() {
        let hostile = "bad sig\n2026-01-01T00:00:00Z  INFO forged\x1b[31m";
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 7,
            codename: hostile.into(),
            message: hostile.into(),
            cid: "c\r\x1b[2J".into(),
        };
        for shown in [e.to_string(), e.summary()] {
            assert!(
                !shown.contains('\n') && !shown.contains('\r') && !shown.contains('\x1b'),
                "{shown:?}"
            );
            assert!(
                shown.contains(r"bad sig\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m"),
                "{shown}"
            );
            assert!(shown.contains(r"[cid c\r\u{1b}[2J]"), "{shown}");
        }
        for e in [
            ApiError::Transport {
                method: "m".into(),
                detail: hostile.into(),
            },
            ApiError::Decode {
                method: "m".into(),
                detail: hostile.into(),
            },
        ] {
            let shown = e.to_string();
            assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown:?}");
        }
    }

    #[test]
    fn a_redirect_names_its_status_and_where_it_pointed_but_no_path() {
        let base = Url::parse("https://gw.example/m.api").unwrap();
        let header = |s: &str| reqwest::header::HeaderValue::from_str(s).unwrap();
        let target = |s: &str| redirect_target(&base, Some(&header(s)));
        assert_eq!(target("http://127.0.0.1:8080/steal?pw=1"), "http://127.0.0.1:8080");
        assert_eq!(target("http://evil.example/x"), "http://evil.example:80");
        assert_eq!(
            target("/elsewhere?q=1"),
            "https://gw.example:443",
            "relative to the request"
        );
        assert_eq!(target("https://user:pw@[::1]:8443/p"), "https://[::1]:8443");
        assert_eq!(redirect_target(&base, None), "no Location");
        assert_eq!(target("http://[bad"), "an unreadable Location");
        let bytes = reqwest::header::HeaderValue::from_bytes(b"http://h\xff/").unwrap();
        assert_eq!(redirect_target(&base, Some(&bytes)), "an unreadable Location");
        let e = ApiError::Redirect {
            method: "m".into(),
            status: 307,
            location: target("http://127.0.0.1:8080/steal?pw=1"),
        };
        assert_eq!(
            e.to_string(),
            "m: the gateway answered 307 Temporary Redirect to http://127.0.0.1:8080; redirects are not followed: set gateway.url to the final address"
        );
        assert_eq!(e.code(), "http_307");
        assert!(!e.is_transient() && !e.is_worth_splitting() && !e.is_refusal());
        assert_eq!(e.summary(), e.to_string());
        let odd = ApiError::Redirect {
            method: "m".into(),
            status: 399,
            location: "no Location".into(),
        };
        assert!(odd.to_string().contains("answered 399 to no Location"), "{odd}");
    }

    #[test]
    fn splitting_helps_only_against_what_a_call_asked() {
        let gateway = |code| ApiError::Gateway {
            method: "m".into(),
            code,
            codename: String::new(),
            message: String::new(),
            cid: String::new(),
        };
        let too_large = ApiError::TooLarge {
            method: "m".into(),
            limit: 10,
        };
        assert!(too_large.is_worth_splitting() && !too_large.is_transient());
        assert_eq!(too_large.code(), "too_large");
        for code in [400_001, 400_002, -1, 18, 100] {
            assert!(gateway(code).is_worth_splitting(), "{code}");
        }
        for code in [-100, -500, -999, 16, 1, 7, 12, 17, 9_990_001, 103_094] {
            assert!(!gateway(code).is_worth_splitting(), "{code}");
        }
        let http = |status| ApiError::Http {
            method: "m".into(),
            status,
        };
        assert!(http(414).is_worth_splitting() && !http(502).is_worth_splitting() && !http(401).is_worth_splitting());
    }
}

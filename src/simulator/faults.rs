//! Failures the simulator can play instead of answering, so tests and demos can watch the
//! exporter cope with a misbehaving gateway: a gateway error code, an HTTP error, a request that
//! never answers, garbage, a truncated or oversized body, an HTML page. Owns the [`Fault`]
//! values, their text form (what `POST /-/fault` takes and `GET /-/fault` shows) and the answer
//! each one produces.

use axum::http::StatusCode;
use serde_json::Value;

use super::codes::{description, SUCCESS};
use super::reply::{
    envelope, shop_json, Outcome, Rows, SimReply, HTML_CONTENT_TYPE, JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};
use super::tenant::SimConfig;
use super::times::HourWindow;

/// A failure the simulator plays instead of answering (before any validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200, the envelope with this `stat.code` (and its codename), `data: null`.
    Code(i64),
    /// This HTTP status with a short text body.
    Http(u16),
    /// Never answer.
    Hang,
    /// HTTP 200 claiming JSON, with an HTML body.
    Garbage,
    /// HTTP 200 JSON, the first half of a valid success body.
    Truncated,
    /// HTTP 200 `text/html`, an HTML error page.
    WrongContentType,
    /// HTTP 200, a valid success envelope padded to this many KiB.
    Oversized(u32),
}

/// Why a fault's text form was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultParseError {
    #[error("bad size in KiB {0:?}")]
    Size(String),
    #[error("bad gateway code {0:?}")]
    Code(String),
    #[error("bad HTTP status {0:?}")]
    Status(String),
    #[error("bad HTTP status {0}")]
    StatusOutOfRange(u16),
    #[error(
        "unknown fault {0:?} (expected none, code:<n>, http:<status>, hang, garbage, truncated, wrong_content_type or oversized:<KiB>)"
    )]
    Unknown(String),
}

impl Fault {
    /// Parses the admin form value: `none` | `code:<n>` | `http:<status>` | `hang` |
    /// `garbage` | `truncated` | `wrong_content_type`. `none` is `Ok(None)`.
    pub fn parse(s: &str) -> Result<Option<Fault>, FaultParseError> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let fault = match lower.as_str() {
            "none" | "" => return Ok(None),
            "hang" => Fault::Hang,
            "garbage" => Fault::Garbage,
            "truncated" => Fault::Truncated,
            "wrong_content_type" | "wrong-content-type" => Fault::WrongContentType,
            other => {
                if let Some(n) = other.strip_prefix("oversized:") {
                    Fault::Oversized(n.trim().parse().map_err(|_| FaultParseError::Size(n.to_owned()))?)
                } else if let Some(n) = other.strip_prefix("code:") {
                    Fault::Code(n.trim().parse().map_err(|_| FaultParseError::Code(n.to_owned()))?)
                } else if let Some(n) = other.strip_prefix("http:") {
                    let status: u16 = n.trim().parse().map_err(|_| FaultParseError::Status(n.to_owned()))?;
                    if !(100..=999).contains(&status) {
                        return Err(FaultParseError::StatusOutOfRange(status));
                    }
                    Fault::Http(status)
                } else {
                    return Err(FaultParseError::Unknown(s.to_owned()));
                }
            }
        };
        Ok(Some(fault))
    }

    /// What the gateway of `cfg` answers while this fault is played.
    pub(crate) fn outcome(self, cfg: &SimConfig) -> Outcome {
        let reply = match self {
            Fault::Code(code) => envelope(cfg.gateway_now(), code, description(code), Value::Null),
            Fault::Http(status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                SimReply {
                    status: status.as_u16(),
                    content_type: TEXT_CONTENT_TYPE,
                    body: format!("simulated HTTP error {status}\n"),
                }
            }
            Fault::Hang => return Outcome::Hang,
            Fault::Garbage => SimReply {
                status: 200,
                content_type: JSON_CONTENT_TYPE,
                body: "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>\n".to_owned(),
            },
            Fault::Truncated => {
                let full = canned_success_body(cfg);
                let mut cut = full.len() / 2;
                while !full.is_char_boundary(cut) {
                    cut -= 1;
                }
                SimReply {
                    status: 200,
                    content_type: JSON_CONTENT_TYPE,
                    body: full.get(..cut).unwrap_or_default().to_owned(),
                }
            }
            Fault::Oversized(kib) => {
                let pad = "x".repeat(kib as usize * 1024);
                let mut reply = envelope(cfg.gateway_now(), SUCCESS, description(SUCCESS), Value::Array(Vec::new()));
                reply.body = format!("{{\"padding\":\"{pad}\",{}", reply.body.trim_start_matches('{'));
                reply
            }
            Fault::WrongContentType => SimReply {
                status: 200,
                content_type: HTML_CONTENT_TYPE,
                body: "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>System maintenance</h1><p>The service is temporarily unavailable.</p></body></html>\n".to_owned(),
            },
        };
        Outcome::Reply(reply)
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Code(c) => write!(f, "code:{c}"),
            Fault::Http(s) => write!(f, "http:{s}"),
            Fault::Hang => f.write_str("hang"),
            Fault::Garbage => f.write_str("garbage"),
            Fault::Truncated => f.write_str("truncated"),
            Fault::WrongContentType => f.write_str("wrong_content_type"),
            Fault::Oversized(kib) => write!(f, "oversized:{kib}"),
        }
    }
}

/// A complete success answer for the first configured shop's current day.
fn canned_success_body(cfg: &SimConfig) -> String {
    let now = cfg.now_local();
    let data = match cfg.shops().next() {
        Some(shop) => Value::Array(vec![shop_json(
            cfg,
            shop,
            now.date(),
            now.date(),
            Rows::Hourly(HourWindow::WHOLE_DAY),
            now,
        )]),
        None => Value::Array(Vec::new()),
    };
    envelope(cfg.gateway_now(), SUCCESS, description(SUCCESS), data).body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_parsing() {
        assert_eq!(Fault::parse("none"), Ok(None));
        assert_eq!(Fault::parse("code:9990001"), Ok(Some(Fault::Code(9_990_001))));
        assert_eq!(Fault::parse("code:-100"), Ok(Some(Fault::Code(-100))));
        assert_eq!(Fault::parse("http:502"), Ok(Some(Fault::Http(502))));
        assert_eq!(Fault::parse("hang"), Ok(Some(Fault::Hang)));
        assert_eq!(Fault::parse("garbage"), Ok(Some(Fault::Garbage)));
        assert_eq!(Fault::parse("truncated"), Ok(Some(Fault::Truncated)));
        assert_eq!(Fault::parse("wrong_content_type"), Ok(Some(Fault::WrongContentType)));
        for bad in ["code:x", "http:70000", "http:42", "explode"] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
        for f in [
            Fault::Code(7),
            Fault::Http(500),
            Fault::Hang,
            Fault::Garbage,
            Fault::Truncated,
            Fault::WrongContentType,
        ] {
            assert_eq!(Fault::parse(&f.to_string()), Ok(Some(f)));
        }
    }

    #[test]
    fn parse_errors_keep_their_text() {
        let text = |s: &str| Fault::parse(s).err().map(|e| e.to_string());
        assert_eq!(text("oversized:lots").as_deref(), Some("bad size in KiB \"lots\""));
        assert_eq!(text("code:x").as_deref(), Some("bad gateway code \"x\""));
        assert_eq!(text("http:70000").as_deref(), Some("bad HTTP status \"70000\""));
        assert_eq!(text("http:42").as_deref(), Some("bad HTTP status 42"));
        assert_eq!(
            text(" Explode ").as_deref(),
            Some("unknown fault \"Explode\" (expected none, code:<n>, http:<status>, hang, garbage, truncated, wrong_content_type or oversized:<KiB>)")
        );
    }
}

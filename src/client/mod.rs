//! The only code that talks to the Opretail gateway: request signing, the signed form POST,
//! limits on time and size, the response envelope, and the conversion of the gateway's loosely
//! typed JSON into the exporter's own types ([`crate::model`]).
//!
//! Every call is counted in the API metrics here, because only here is it known how long it took
//! and how it ended. Errors are [`ApiError`], each with a short `code` label for
//! `opretail_api_errors_total`; no error text ever carries the secret, the token or `_sig`.
//!
//! [`Client::fetch`] is the one entry point for data: a [`Call`] in, an [`Answer`] out
//! (`doctor` alone asks [`Client::call`] for the raw answer of a call's parameters,
//! `Client::business`, to report on the answer itself). Before an answer is decoded,
//! [`conventions`] looks at it: the fields it carries, and the evidence for what the vendor
//! leaves open (row time, rate scale); the clock skew is read from every answer's
//! `stat.systime`. Inside: `call` (what a call asks, hourly or day figures, and packing ids into
//! calls), `split` (asking in parts what the gateway refused whole), `transport` (one signed
//! request, retries, limits; no redirect is ever followed), `auth` (the user token), `sign`
//! (`_sig`), `decode` (answers into our types, under the conventions in force), `conventions`
//! (the checks, shared with `doctor`), `error` and `codes` (what failed, by gateway code; a
//! refusal carries the gateway's `stat.cid`), `limiter` (the request rate), `text`
//! ([`sanitize`]: the gateway's text made safe for logs, error texts and terminals; never
//! applied to `/metrics`).

mod auth;
mod call;
mod codes;
pub mod conventions;
mod decode;
mod error;
mod limiter;
mod sign;
mod split;
mod text;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio::sync::Semaphore;

use self::auth::Auth;
pub use self::call::{batch, pack, Answer, Call, Packing, Per, Target, WHOLE_DAY};
use self::conventions::Conventions;
pub use self::conventions::{Reading, Source};
pub(crate) use self::decode::shops as decode_shops;
pub use self::decode::{parse_devices_answer, parse_shops_answer, Envelope};
pub(crate) use self::error::label_name;
pub use self::error::ApiError;
use self::limiter::RateLimiter;
pub use self::split::{Leaf, Members, Split};
pub use self::text::sanitize;
use crate::config::GatewayConfig;
use crate::metrics::ApiMetrics;
use crate::model::{Clock, RowTime};

/// Gateway method: hourly passenger indicators of many shops / organisations in one call.
pub const METHOD_SHOPS: &str = "open.passengerflow.getManyShopsPassengerIndicatorData";
/// Gateway method: hourly walk-in / walk-out of one counting device.
pub const METHOD_DEVICES: &str = "open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator";
/// `_timestamp` format (wall clock of [`GATEWAY_TZ`]).
pub(crate) const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M%S";
/// `startTime` / `endTime` / row `time` format.
pub(crate) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// The zone the gateway reads `_timestamp` in.
pub(crate) const GATEWAY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// Gateway method: log in with a user account; answers `{"enterpriseId", "token"}`.
pub const METHOD_LOGIN: &str = "open.shopweb.security.mobileLogin";
/// The HTTP headers that carry the user token (both are sent).
pub(crate) const TOKEN_HEADERS: [&str; 2] = ["authenticator", "Ovo-Authorization"];

/// A signed-request client for one gateway and one app key. Cheap to clone; clones share the
/// rate limit, the in-flight bound and the cached user token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The validated gateway settings, read as they are (url, key, secret, limits, retries).
    config: GatewayConfig,
    auth: Auth,
    limiter: RateLimiter,
    in_flight: Semaphore,
    clock: Clock,
    metrics: ApiMetrics,
    /// The gateway conventions in force, configured or detected from the answers.
    conventions: Conventions,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.inner.config.url.as_str())
            .field("aid", &self.inner.config.aid)
            .field("sign_method", &self.inner.config.sign_method)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client. `clock` supplies `_timestamp`; `metrics` counts every request.
    pub fn new(cfg: &GatewayConfig, clock: Clock, metrics: ApiMetrics) -> Result<Self, reqwest::Error> {
        Client::build(cfg, clock, metrics, RateLimiter::new(cfg.requests_per_second), None)
    }

    fn build(
        cfg: &GatewayConfig,
        clock: Clock,
        metrics: ApiMetrics,
        limiter: RateLimiter,
        before: Option<&Conventions>,
    ) -> Result<Self, reqwest::Error> {
        // No redirect is followed: a 3xx answer fails the call (see `transport`), so that
        // nothing signed, no password and no token is ever sent where the gateway points.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opretail-exporter/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        metrics.set_rate_limit(limiter.current_rate());
        metrics.set_rate_limit_configured(cfg.requests_per_second);
        let conventions = Conventions::new(cfg.row_time, cfg.rate_scale, metrics.clone(), before);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config: cfg.clone(),
                auth: Auth::new(&cfg.auth),
                limiter,
                in_flight: Semaphore::new(cfg.max_in_flight.max(1)),
                clock,
                metrics,
                conventions,
            }),
        })
    }

    /// A client for `cfg` (after a reload) that shares this one's clock and metrics and goes
    /// on from its request rate (the requests it sent in the last second count against the new
    /// client's first) and, when `cfg` names the same gateway URL, from what it learned of the
    /// gateway's conventions. Another gateway starts over: what one gateway's answers showed
    /// says nothing of another's, and an hourly poll may not bring the whole-day answer that
    /// would correct it for hours.
    pub fn renewed(&self, cfg: &GatewayConfig) -> Result<Self, reqwest::Error> {
        let inner = &self.inner;
        let limiter = RateLimiter::after(cfg.requests_per_second, &inner.limiter);
        let same_gateway = cfg.url == inner.config.url;
        if !same_gateway {
            tracing::info!("the reloaded configuration names another gateway URL: its conventions are detected anew");
        }
        Client::build(
            cfg,
            inner.clock.clone(),
            inner.metrics.clone(),
            limiter,
            same_gateway.then_some(&inner.conventions),
        )
    }

    /// The row-time convention in force, and where it comes from.
    pub fn row_time(&self) -> (crate::model::RowTime, Source) {
        self.inner.conventions.row_time()
    }

    /// The rate scale in force, and where it comes from.
    pub fn rate_scale(&self) -> (crate::model::RateScale, Source) {
        self.inner.conventions.rate_scale()
    }

    /// Makes one call: the hourly rows of every shop behind a batch of ids, or of one device,
    /// for the shop-local days `from..=to` (shops: the call's hours of each day).
    pub async fn fetch(&self, call: &Call) -> Result<Answer, ApiError> {
        let (method, business) = self.business(call);
        let data = self.call(method, &business).await?.data;
        match &call.target {
            Target::Shops(_) => {
                let hourly = call.per == Per::Hour;
                let whole_days = (hourly && call.hour_window().is_none()).then_some((call.from, call.to));
                let mut reading = self.inner.conventions.observe(METHOD_SHOPS, &data, whole_days);
                if !hourly {
                    // Day rows are labelled with their date.
                    reading.row_time = RowTime::Start;
                }
                decode::shops(&data, reading).map(Answer::Shops)
            }
            Target::Device(_) => {
                let reading = self
                    .inner
                    .conventions
                    .observe(METHOD_DEVICES, &data, Some((call.from, call.to)));
                decode::device_rows(&data, reading).map(Answer::Device)
            }
        }
    }

    /// The gateway method of `call` and its business parameters: for shops `id`
    /// (comma-separated), `startTime`/`endTime` (whole days), `timeType` and, when the call
    /// narrows the hours, `starthour`/`endhour` (one hour more with end-labelled rows); for a
    /// device `mac`, `startTime`/`endTime`, `timeType=1`, `isOnBusinessTime=0`.
    pub(crate) fn business(&self, call: &Call) -> (&'static str, Vec<(&'static str, String)>) {
        let (start, end) = whole_days(call.from, call.to);
        match &call.target {
            Target::Shops(ids) => {
                let id = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                let time_type = match call.per {
                    Per::Hour => "1",
                    Per::Day => "2",
                };
                let mut business = vec![
                    ("id", id),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", time_type.into()),
                ];
                if let Some((start_hour, end_hour)) = call.hour_window() {
                    // End-labelled rows: whether the gateway then picks hours by their start or
                    // by their label is not known, so one more hour is asked; rows are picked
                    // by their time either way.
                    let end_hour = match self.row_time().0 {
                        RowTime::Start => end_hour,
                        RowTime::End => (end_hour + 1).min(24),
                    };
                    business.push(("starthour", start_hour.to_string()));
                    business.push(("endhour", end_hour.to_string()));
                }
                (METHOD_SHOPS, business)
            }
            Target::Device(device) => (
                METHOD_DEVICES,
                vec![
                    ("mac", device.mac.clone()),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", "1".into()),
                    ("isOnBusinessTime", "0".into()),
                ],
            ),
        }
    }

    /// A business call: with the user token when one is configured (logging in first if
    /// needed, and once more if the gateway says the token is gone), retried on transient
    /// failures. Returns the successful answer (`data`, `stat.cid`, `stat.systime`, bytes).
    pub async fn call(&self, method: &str, business: &[(&str, String)]) -> Result<Envelope, ApiError> {
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
}

fn whole_days(from: NaiveDate, to: NaiveDate) -> (String, String) {
    (
        format!("{} 00:00:00", from.format("%Y-%m-%d")),
        format!("{} 23:59:59", to.format("%Y-%m-%d")),
    )
}

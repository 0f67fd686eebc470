//! The only code that talks to the Opretail gateway: request signing, the signed form POST,
//! limits on time and size, the response envelope, and the conversion of the gateway's loosely
//! typed JSON into the exporter's own types ([`crate::model`]).
//!
//! Every call is counted in the API metrics here, because only here is it known how long it took
//! and how it ended. Errors are [`ApiError`], each with a short `code` label for
//! `opretail_api_errors_total`; no error text ever carries the secret, the token or `_sig`.

mod call;
mod codes;
mod decode;
mod error;
mod limiter;
mod sign;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Semaphore;

pub(crate) use self::call::batch;
pub use self::call::{Answer, Call, Target};
use self::decode::decode_envelope;
pub use self::decode::{parse_devices_answer, parse_shops_answer};
use self::error::classify;
pub use self::error::ApiError;
use self::limiter::RateLimiter;
use self::sign::sign;
use crate::config::{GatewayAuth, GatewayConfig};
use crate::metrics::ApiMetrics;
use crate::model::Clock;

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
            .field("url", &self.inner.config.url.as_str())
            .field("aid", &self.inner.config.aid)
            .field("sign_method", &self.inner.config.sign_method)
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
                config: cfg.clone(),
                auth,
                limiter,
                in_flight: Semaphore::new(cfg.max_in_flight.max(1)),
                clock,
                metrics,
            }),
        })
    }

    /// Makes one call: the hourly rows of every shop behind a batch of ids, or of one device,
    /// for the whole shop-local days `from..=to`.
    pub async fn fetch(&self, call: &Call) -> Result<Answer, ApiError> {
        let (start, end) = whole_days(call.from, call.to);
        match &call.target {
            Target::Shops(ids) => {
                let id = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                let business = [
                    ("id", id),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", "1".into()),
                ];
                let data = self.call(METHOD_SHOPS, &business).await?;
                decode::shops(&data).map(Answer::Shops)
            }
            Target::Device(device) => {
                let business = [
                    ("mac", device.mac.clone()),
                    ("startTime", start),
                    ("endTime", end),
                    ("timeType", "1".into()),
                    ("isOnBusinessTime", "0".into()),
                ];
                let data = self.call(METHOD_DEVICES, &business).await?;
                decode::device_rows(&data).map(Answer::Device)
            }
        }
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
                Err(e) if e.is_transient() && retries < inner.config.max_retries => {
                    retries += 1;
                    if matches!(e, ApiError::Gateway { code: -100, .. }) {
                        inner.limiter.slow_down();
                        inner.metrics.set_rate_limit(inner.limiter.current_rate());
                    }
                    let delay = backoff(inner.config.retry_backoff, inner.config.retry_backoff_max, retries);
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
        let result = match tokio::time::timeout(inner.config.timeout, self.send(method, business, token)).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::Timeout {
                method: method.into(),
                timeout: inner.config.timeout,
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
            ("_aid", &inner.config.aid),
            ("_akey", &inner.config.app_key),
            ("_mt", method),
            ("_sm", inner.config.sign_method.as_str()),
            ("_requestMode", "post"),
            ("_version", "v1"),
            ("_format", "json"),
            ("_timestamp", &timestamp),
            ("_nonce", &nonce),
        ];
        params.extend(business.iter().map(|(k, v)| (*k, v.as_str())));
        let sig = sign(
            &params,
            inner.config.app_secret.expose_secret(),
            inner.config.sign_method,
        );
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
        let transport = |e: reqwest::Error| classify(method, inner.config.timeout, e);
        let mut request = inner
            .http
            .post(inner.config.url.clone())
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
            detail: format!("answer larger than {} bytes", inner.config.max_response_bytes),
        };
        if response
            .content_length()
            .is_some_and(|n| n > inner.config.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if bytes.len() + chunk.len() > inner.config.max_response_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        decode_envelope(method, &bytes)
    }
}

/// The delay before retry number `retry` (1-based): `base · 2^(retry-1)`, capped at `max`,
/// then jittered to between half and all of it so that clients do not retry in step.
pub(crate) fn backoff(base: Duration, max: Duration, retry: usize) -> Duration {
    let exp = base.saturating_mul(1u32 << (retry.saturating_sub(1)).min(20)).min(max);
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

fn whole_days(from: NaiveDate, to: NaiveDate) -> (String, String) {
    (
        format!("{} 00:00:00", from.format("%Y-%m-%d")),
        format!("{} 23:59:59", to.format("%Y-%m-%d")),
    )
}

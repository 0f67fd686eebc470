//! One logical request to the gateway: signed form POSTs under the in-flight bound and the
//! rate limit, with timeouts, a size limit on answers, retries with backoff and jitter on
//! transient failures, and every attempt counted in the API metrics. A redirect is never
//! followed (the request carries `_sig`, and the password or the token): a 3xx answer is a
//! failed call, [`ApiError::Redirect`].

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::decode::{decode_envelope, Envelope};
use super::error::{classify, redirect_target};
use super::sign::sign;
use super::{ApiError, Client, GATEWAY_TZ, TIMESTAMP_FORMAT, TOKEN_HEADERS};

impl Client {
    /// One logical request: attempts until success, a permanent failure, or the retry budget
    /// is spent, with exponential backoff and jitter between attempts.
    pub(super) async fn with_retries(
        &self,
        method: &str,
        business: &[(&str, String)],
        token: Option<&SecretString>,
    ) -> Result<Envelope, ApiError> {
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
    ) -> Result<Envelope, ApiError> {
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
        if let (Err(e @ ApiError::Gateway { codename, .. }), Some(code)) = (&result, &code) {
            if !codename.is_empty() {
                inner.metrics.name_error(code, &e.code_name());
            }
        }
        if let Some(systime) = result.as_ref().ok().and_then(|e| e.systime_ms) {
            inner.conventions.observe_systime(systime, inner.clock.now());
        }
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
    ) -> Result<Envelope, ApiError> {
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
        if status.is_redirection() {
            // The client follows no redirect (it would carry `_sig`, the password or the token
            // to wherever the answer points): the call fails, saying where it pointed.
            return Err(ApiError::Redirect {
                method: method.into(),
                status: status.as_u16(),
                location: redirect_target(&inner.config.url, response.headers().get(reqwest::header::LOCATION)),
            });
        }
        if !status.is_success() {
            return Err(ApiError::Http {
                method: method.into(),
                status: status.as_u16(),
            });
        }
        let too_large = || ApiError::TooLarge {
            method: method.into(),
            limit: inner.config.max_response_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > inner.config.max_response_bytes as u64)
        {
            return Err(too_large());
        }
        let day_figures = business.iter().any(|(k, v)| *k == "timeType" && v == "2");
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            // Counted as it arrives: an answer refused for its size was downloaded too.
            inner.metrics.downloaded(method, chunk.len(), day_figures);
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
fn backoff(base: Duration, max: Duration, retry: usize) -> Duration {
    let exp = base.saturating_mul(1u32 << (retry.saturating_sub(1)).min(20)).min(max);
    exp.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

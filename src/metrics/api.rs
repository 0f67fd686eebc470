//! The gateway-call health series: requests, errors by code, retries, latency and the request
//! rate in force. The client holds a clone and records every call itself, so these counters
//! move as calls happen, not when a poll publishes.

use std::time::Duration;

use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::{gauge, register};

/// Counters of gateway calls, shared by every clone of the client.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    retries: IntCounterVec,
    response_bytes: IntCounterVec,
    batch_splits: IntCounterVec,
    duration: HistogramVec,
    rate_limit: Gauge,
}

/// A registered counter family with `labels`.
fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

impl ApiMetrics {
    pub(super) fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = counters(
            registry,
            "opretail_api_requests_total",
            "Requests sent to the Opretail gateway while polling its hourly data, by gateway method.",
            &["method"],
        )?;
        let errors = counters(
            registry,
            "opretail_api_errors_total",
            "Failed Opretail gateway requests while polling its hourly data, by method and code: the gateway's stat.code, or http_<status>, timeout, transport, decode, too_large.",
            &["method", "code"],
        )?;
        let duration = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "opretail_api_request_duration_seconds",
                    "Duration of Opretail gateway requests while polling its hourly data, by gateway method.",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                &["method"],
            )?,
        )?;
        let retries = counters(
            registry,
            "opretail_api_retries_total",
            "Gateway requests retried after a transient failure while polling hourly data, by gateway method.",
            &["method"],
        )?;
        let response_bytes = counters(
            registry,
            "opretail_api_response_bytes_total",
            "Bytes of gateway answers downloaded while polling hourly data, by gateway method.",
            &["method"],
        )?;
        let batch_splits = counters(
            registry,
            "opretail_api_batch_splits_total",
            "Multi-id gateway calls split in parts after the gateway refused them for what they asked (an answer too large, a list too long), by gateway method.",
            &["method"],
        )?;
        let rate_limit = gauge(
            registry,
            "opretail_api_rate_limit_requests_per_second",
            "Gateway requests per second allowed now while polling hourly data (lowered after -100 API_CALL_REPEAT answers).",
        )?;
        Ok(Self {
            requests,
            errors,
            retries,
            response_bytes,
            batch_splits,
            duration,
            rate_limit,
        })
    }

    /// Counts `bytes` of an answer from `method` as downloaded.
    pub(crate) fn downloaded(&self, method: &str, bytes: usize) {
        self.response_bytes.with_label_values(&[method]).inc_by(bytes as u64);
    }

    /// Records one finished call; `error_code` is `None` on success.
    pub(crate) fn observe(&self, method: &str, took: Duration, error_code: Option<&str>) {
        self.requests.with_label_values(&[method]).inc();
        self.duration.with_label_values(&[method]).observe(took.as_secs_f64());
        if let Some(code) = error_code {
            self.errors.with_label_values(&[method, code]).inc();
        }
    }

    /// Counts one call to `method` split in parts.
    pub(crate) fn split(&self, method: &str) {
        self.batch_splits.with_label_values(&[method]).inc();
    }

    /// Counts one retry of a request to `method`.
    pub(crate) fn retried(&self, method: &str) {
        self.retries.with_label_values(&[method]).inc();
    }

    /// Publishes the request rate in force.
    pub(crate) fn set_rate_limit(&self, per_second: f64) {
        self.rate_limit.set(per_second);
    }
}

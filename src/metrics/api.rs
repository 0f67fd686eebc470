//! The gateway-call health series: requests, errors by code, retries, latency and the request
//! rate in force. The client holds a clone and records every call itself, so these counters
//! move as calls happen, not when a poll publishes. Each account has its own set, labelled
//! `account="<name>"` when the account is named.

use std::time::Duration;

use std::collections::HashMap;

use prometheus::core::Collector;
use prometheus::{Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::register;

/// Counters of gateway calls, shared by every clone of the client.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    retries: IntCounterVec,
    response_bytes: IntCounterVec,
    day_figure_bytes: IntCounterVec,
    batch_splits: IntCounterVec,
    duration: HistogramVec,
    rate_limit: Gauge,
    rate_limit_configured: Gauge,
    fields_missing: GaugeVec,
    clock_skew: Gauge,
    convention: GaugeVec,
    /// The last hour of requests and errors, for the status page.
    recent: std::sync::Arc<crate::status::RecentCalls>,
}

/// A registered counter family with `labels` (and the account's constant labels).
fn counters(
    registry: &Registry,
    account: &HashMap<String, String>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let opts = Opts::new(name, help).const_labels(account.clone());
    register(registry, IntCounterVec::new(opts, labels)?)
}

/// A registered gauge without labels but the account's constant labels.
fn gauge(registry: &Registry, account: &HashMap<String, String>, name: &str, help: &str) -> prometheus::Result<Gauge> {
    register(
        registry,
        Gauge::with_opts(Opts::new(name, help).const_labels(account.clone()))?,
    )
}

impl ApiMetrics {
    /// Registers an account's gateway-call series in `registry`, each with the constant labels
    /// `account` (none for the single-account form).
    pub(super) fn new(registry: &Registry, account: &HashMap<String, String>) -> prometheus::Result<Self> {
        let requests = counters(
            registry,
            account,
            "opretail_api_requests_total",
            "Requests sent to the Opretail gateway while polling its hourly data, by gateway method.",
            &["method"],
        )?;
        let errors = counters(
            registry,
            account,
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
                .const_labels(account.clone())
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                &["method"],
            )?,
        )?;
        let retries = counters(
            registry,
            account,
            "opretail_api_retries_total",
            "Gateway requests retried after a transient failure while polling hourly data, by gateway method.",
            &["method"],
        )?;
        let response_bytes = counters(
            registry,
            account,
            "opretail_api_response_bytes_total",
            "Bytes of gateway answers downloaded while polling hourly data, by gateway method.",
            &["method"],
        )?;
        let day_figure_bytes = counters(
            registry,
            account,
            "opretail_api_day_figures_response_bytes_total",
            "Bytes of gateway answers to day-figure calls (timeType=2, one per shop batch and refresh of the hourly data), by gateway method; included in opretail_api_response_bytes_total.",
            &["method"],
        )?;
        let batch_splits = counters(
            registry,
            account,
            "opretail_api_batch_splits_total",
            "Multi-id gateway calls split in parts after the gateway refused them for what they asked (an answer too large, a list too long), by gateway method.",
            &["method"],
        )?;
        let rate_limit = gauge(
            registry,
            account,
            "opretail_api_rate_limit_requests_per_second",
            "Gateway requests per second allowed now while polling hourly data (lowered after -100 API_CALL_REPEAT answers).",
        )?;
        let rate_limit_configured = gauge(
            registry,
            account,
            "opretail_api_rate_limit_configured_requests_per_second",
            "Gateway requests per second configured (gateway.requests_per_second) for polling hourly data: the rate in force returns to it after -100 API_CALL_REPEAT answers stop.",
        )?;
        let fields_missing = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "opretail_gateway_fields_missing",
                    "Rows of the last answer of the gateway method (polling hourly data and daily figures) that lacked a field the exporter reads (absent or null), by method and field. A field missing from every row may have been renamed by the gateway: run `opretail-exporter doctor`.",
                )
                .const_labels(account.clone()),
                &["method", "field"],
            )?,
        )?;
        let clock_skew = gauge(
            registry,
            account,
            "opretail_gateway_clock_skew_seconds",
            "This host's clock minus the gateway's clock (stat.systime of the last answer while polling hourly data), in seconds; positive when this host is ahead. The gateway refuses requests whose _timestamp is too far off (code 16).",
        )?;
        let convention = register(
            registry,
            GaugeVec::new(
                Opts::new(
                    "opretail_gateway_convention",
                    "1 for the convention in force for each open point of the gateway's hourly data: setting row_time (value start or end of the hour a row's time labels) and rate_scale (value percent or fraction); source configured, detected (from the answers, with auto) or assumed (auto, not decided yet).",
                )
                .const_labels(account.clone()),
                &["setting", "value", "source"],
            )?,
        )?;
        Ok(Self {
            fields_missing,
            clock_skew,
            convention,
            requests,
            errors,
            retries,
            response_bytes,
            day_figure_bytes,
            batch_splits,
            duration,
            rate_limit,
            rate_limit_configured,
            recent: Default::default(),
        })
    }

    /// Every collector of the account, to unregister when the account goes.
    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.errors.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.response_bytes.clone()),
            Box::new(self.day_figure_bytes.clone()),
            Box::new(self.batch_splits.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.rate_limit.clone()),
            Box::new(self.rate_limit_configured.clone()),
            Box::new(self.fields_missing.clone()),
            Box::new(self.clock_skew.clone()),
            Box::new(self.convention.clone()),
        ]
    }

    /// Counts `bytes` of an answer from `method` as downloaded (`day_figures`: an answer of
    /// day rows, counted apart too).
    pub(crate) fn downloaded(&self, method: &str, bytes: usize, day_figures: bool) {
        self.response_bytes.with_label_values(&[method]).inc_by(bytes as u64);
        if day_figures {
            self.day_figure_bytes.with_label_values(&[method]).inc_by(bytes as u64);
        }
    }

    /// Records one finished call; `error_code` is `None` on success.
    pub(crate) fn observe(&self, method: &str, took: Duration, error_code: Option<&str>) {
        self.requests.with_label_values(&[method]).inc();
        self.duration.with_label_values(&[method]).observe(took.as_secs_f64());
        if let Some(code) = error_code {
            self.errors.with_label_values(&[method, code]).inc();
        }
        self.recent.record(error_code);
    }

    /// Remembers `name` (printable) as the gateway's own name of the error label `code`, for
    /// the status page's last hour.
    pub(crate) fn name_error(&self, code: &str, name: &str) {
        self.recent.name(code, name);
    }

    /// Counts one call to `method` split in parts.
    pub(crate) fn split(&self, method: &str) {
        self.batch_splits.with_label_values(&[method]).inc();
    }

    /// Counts one retry of a request to `method`.
    pub(crate) fn retried(&self, method: &str) {
        self.retries.with_label_values(&[method]).inc();
    }

    /// Publishes how many rows of the last answer of `method` lacked `field`.
    pub(crate) fn set_fields_missing(&self, method: &str, field: &str, rows: usize) {
        self.fields_missing.with_label_values(&[method, field]).set(rows as f64);
    }

    /// Publishes the host's clock minus the gateway's, in seconds.
    pub(crate) fn set_clock_skew(&self, seconds: f64) {
        self.clock_skew.set(seconds);
    }

    /// Publishes the convention in force for `setting` (the only series of that setting).
    pub(crate) fn set_convention(&self, setting: &str, value: &str, source: &str) {
        for old in ["start", "end", "percent", "fraction"] {
            for from in ["configured", "detected", "assumed"] {
                if (old, from) != (value, source) {
                    // Absent is fine: only one combination was ever set.
                    let _ = self.convention.remove_label_values(&[setting, old, from]);
                }
            }
        }
        self.convention.with_label_values(&[setting, value, source]).set(1.0);
    }

    /// The requests and errors of the last hour.
    pub(crate) fn recent(&self) -> &crate::status::RecentCalls {
        &self.recent
    }

    /// The request rate in force (requests per second).
    pub(crate) fn rate_limit(&self) -> f64 {
        self.rate_limit.get()
    }

    /// This host's clock minus the gateway's, as last published (0 before any answer).
    pub(crate) fn clock_skew(&self) -> f64 {
        self.clock_skew.get()
    }

    /// `(method, field, rows)` of `opretail_gateway_fields_missing`: rows of the last answer of
    /// each method that lacked a field the exporter reads.
    pub(crate) fn fields_missing(&self) -> Vec<(String, String, f64)> {
        labelled(&self.fields_missing, ["method", "field"])
            .into_iter()
            .map(|([method, field], rows)| (method, field, rows))
            .collect()
    }

    /// `(setting, value, source)` of each convention in force (`opretail_gateway_convention`).
    pub(crate) fn conventions(&self) -> Vec<(String, String, String)> {
        let mut found: Vec<_> = labelled(&self.convention, ["setting", "value", "source"])
            .into_iter()
            .filter(|(_, v)| *v == 1.0)
            .map(|([setting, value, source], _)| (setting, value, source))
            .collect();
        found.sort();
        found
    }

    /// Publishes the request rate in force.
    pub(crate) fn set_rate_limit(&self, per_second: f64) {
        self.rate_limit.set(per_second);
    }

    /// Publishes the configured request rate.
    pub(crate) fn set_rate_limit_configured(&self, per_second: f64) {
        self.rate_limit_configured.set(per_second);
    }
}

/// Every series of `gauges`: the values of the labels `names`, and the value.
fn labelled<const N: usize>(gauges: &GaugeVec, names: [&str; N]) -> Vec<([String; N], f64)> {
    use prometheus::core::Collector as _;
    gauges
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|m| {
            let labels = names.map(|name| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == name)
                    .map(|l| l.value().to_string())
                    .unwrap_or_default()
            });
            (labels, m.get_gauge().value())
        })
        .collect()
}

//! opretail-exporter: a Prometheus exporter for the Opretail (Ovopark) open platform's
//! people-counting data.
//!
//! Data flows `config` → `client` → `poller` → `metrics` → `http`; `simulator` is a fake
//! gateway for the demo and the tests.

pub mod client;
pub mod cmd;
pub mod config;
pub mod exporter;
pub mod hours;
pub mod http;
pub mod metrics;
pub mod model;
pub mod poller;
pub mod simulator;
pub mod web_config;

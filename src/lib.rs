//! opretail-exporter: a Prometheus exporter for the Opretail (Ovopark) open platform's
//! people-counting data.
//!
//! Data flows `config` → `client` → `poller` → `metrics` → `http`; `simulator` is a fake
//! gateway for the demo and the tests. Every value family the exporter publishes is declared
//! once in `schema`, at the bottom, and the model, the metrics, backfill and `fetch` read it.

pub mod client;
pub mod cmd;
pub mod config;
pub mod exporter;
pub(crate) mod hours;
pub mod http;
pub mod metrics;
pub mod model;
pub mod poller;
pub mod schema;
pub mod simulator;
pub mod web_config;

//! opretail-exporter: a Prometheus exporter for the Opretail (Ovopark) open platform's
//! people-counting data.
//!
//! Data flows `config` → `client` → `poller` → `metrics` → `http`, wired by `exporter`:
//!
//! - `schema`, `model`, `hours`: the bottom. Every value family the exporter publishes is
//!   declared once in `schema` (the model, the metrics, backfill and `fetch` read it); `model`
//!   is the exporter's vocabulary (targets, hourly rows, the snapshot, the clock); `hours`
//!   decides which hour is complete and when local hours and days begin.
//! - `config`: the YAML file, every key declared once, validated once into typed values; it
//!   also resolves each shop's business calendar and static labels over its levels.
//! - `client`: the only code that talks to the gateway; one entry point, `Client::fetch`, takes
//!   a `Call` and gives an `Answer`.
//! - `poller`: when to call and what to keep (and what the configuration says of each shop
//!   kept; `baseline`: the past days it keeps for the walk-in baseline, and the baseline
//!   computed from them); `metrics`: the registry and the cached exposition; `status`: how the
//!   last round left every target and the gateway's last hour, for the status page; `http` and
//!   `web_config`: the front door.
//! - `exporter`: the wiring `main` and the tests start; `cmd`: the one-off commands beside it
//!   (`fetch`, `doctor`, `backfill`).
//! - `simulator`: a fake gateway for the demo and the tests, independent of the client.

pub mod baseline;
pub mod client;
pub mod cmd;
pub mod config;
pub mod exporter;
pub mod hours;
pub mod http;
pub mod metrics;
pub mod model;
pub mod poller;
pub mod schema;
pub mod simulator;
mod status;
pub mod web_config;

/// A fresh, empty directory for one unit test's files: unique within the process, and cleared of
/// whatever an earlier process with the same id left there.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("opretail-unit-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// What tests of several modules share.
#[cfg(test)]
pub(crate) mod test_log {
    use std::sync::{Arc, Mutex};

    /// The log lines written while `f` runs, as plain text.
    pub(crate) fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

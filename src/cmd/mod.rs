//! The one-off commands that sit beside the long-running exporter and share its client:
//! `fetch` (one call, printed), `doctor` (the first check of a key and a configuration
//! against the gateway) and `backfill` (past hours as OpenMetrics); and `healthcheck`, which
//! asks a running exporter whether it is alive or ready.

pub mod backfill;
pub mod doctor;
pub mod fetch;
pub mod healthcheck;

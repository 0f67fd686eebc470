//! The one-off commands that sit beside the long-running exporter and share its client:
//! `fetch` (one call, printed), `doctor` (the first check of a key and a configuration
//! against the gateway) and `backfill` (past hours as OpenMetrics).

pub mod backfill;
pub mod doctor;
pub mod fetch;

//! The one-off commands that sit beside the long-running exporter and share its client:
//! `fetch` (one call, printed) and `backfill` (past hours as OpenMetrics).

pub mod backfill;
pub mod fetch;

//! Wiring: builds the client, metrics store, poller and HTTP server from a [`Config`], runs
//! them as tasks, and stops them together. `main` and the integration tests both start the
//! exporter through here, so the tests exercise exactly what users run.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::MetricsStore;
use crate::model::Clock;
use crate::poller::Poller;
use crate::web_config::WebConfig;

/// The git revision the binary was built from (`unknown` outside a checkout).
pub const REVISION: &str = match option_env!("OPRETAIL_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// A started exporter.
pub struct RunningExporter {
    /// Where the HTTP server listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    pub store: Arc<MetricsStore>,
    pub poller: Arc<Poller>,
    cancel: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    polling: JoinHandle<()>,
}

/// Starts polling and serving, with the TLS and basic authentication of `web` if given. The
/// first poll begins at once.
pub async fn start(
    config: Config,
    listen: SocketAddr,
    clock: Clock,
    web: Option<Arc<WebConfig>>,
) -> anyhow::Result<RunningExporter> {
    let config = Arc::new(config);
    let store = Arc::new(MetricsStore::new(env!("CARGO_PKG_VERSION"), REVISION)?);
    let client = Client::new(&config.gateway, clock.clone(), store.api().clone())?;
    let poller = Arc::new(Poller::new(config, client, Arc::clone(&store), clock));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let tls = web.as_ref().is_some_and(|w| w.tls.is_some());
    let basic_auth = web.as_ref().is_some_and(|w| w.basic_auth.is_some());
    let server = tokio::spawn(http::serve_with(
        listener,
        AppState {
            store: Arc::clone(&store),
        },
        web,
        cancel.clone().cancelled_owned(),
    ));
    let polling = tokio::spawn(Arc::clone(&poller).run(cancel.clone()));
    tracing::info!(%addr, tls, basic_auth, "serving /metrics");
    Ok(RunningExporter {
        addr,
        store,
        poller,
        cancel,
        server,
        polling,
    })
}

impl RunningExporter {
    /// Stops polling, lets requests in flight finish, and waits for both.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.cancel.cancel();
        self.polling.await?;
        self.server.await??;
        Ok(())
    }

    /// Runs until `shutdown` completes, then stops as [`RunningExporter::shutdown`] does.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        shutdown.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// The configuration `demo` runs with: every organisation and device of the simulated
/// gateway `sim`, reached at `url`, polled every minute.
pub fn demo_config(sim: &crate::simulator::SimConfig, url: reqwest::Url) -> Config {
    use crate::config::{DeviceTarget, GatewayConfig, ShopTarget, TargetId};
    Config {
        gateway: GatewayConfig::new(url, sim.app_key.clone(), sim.app_secret.clone()),
        timezone: crate::client::GATEWAY_TZ,
        poll_interval: std::time::Duration::from_secs(60),
        shops: sim
            .orgs
            .iter()
            .map(|o| ShopTarget {
                id: TargetId::Org(o.org_id),
            })
            .collect(),
        devices: sim
            .devices
            .iter()
            .map(|d| DeviceTarget {
                mac: d.mac.clone(),
                name: Some(d.name.clone()),
                shop_id: Some(d.dep_id.to_string()),
            })
            .collect(),
    }
}

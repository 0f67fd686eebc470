//! Wiring: builds the client, metrics store, poller and HTTP server from a [`Config`], runs
//! them as tasks, and stops them together. `main` and the integration tests both start the
//! exporter through here, so the tests exercise exactly what users run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::{Config, ConfigErrors, Shard};
use crate::http::{self, AppState, Reload};
use crate::metrics::MetricsStore;
use crate::model::Clock;
use crate::poller::{Poller, RefreshCost};

/// Why the exporter could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("cannot set up the metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot build the gateway client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error("a task of the exporter failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a configuration reload was rejected (the previous configuration stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Every problem of the file, each with its field path (never a secret).
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    #[error("cannot build the gateway client: {0}")]
    Client(#[from] reqwest::Error),
}

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
    /// Re-reads the configuration file, when the exporter was started from one.
    pub reloader: Option<Arc<Reloader>>,
    cancel: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    /// The poll loop (none with [`Options::manual_polling`]).
    polling: Option<JoinHandle<()>>,
}

/// What an exporter may be started with besides its configuration.
#[derive(Default, Clone)]
pub struct Options {
    /// The file SIGHUP and `POST /-/reload` re-read; without one the exporter cannot reload.
    pub config_file: Option<PathBuf>,
    /// TLS and basic authentication for the HTTP server (`--web.config.file`, re-read when
    /// it changes, or a configuration fixed in code).
    pub web: Option<http::WebSource>,
    /// This replica's shard, overriding the configuration's `sharding` (also after reloads).
    pub shard: Option<Shard>,
    /// Start no poll loop: rounds happen only when the caller runs them
    /// ([`Poller::poll_once`], [`Poller::poll_scheduled`]), as tests of the schedule do.
    pub manual_polling: bool,
    /// `--web.enable-lifecycle`: `POST /-/reload` reloads (SIGHUP always does).
    pub lifecycle: bool,
    /// The HTTP server's connection cap and deadlines.
    pub http: http::Limits,
}

/// Starts polling and serving a configuration given in code (no reload, plain HTTP). The
/// first poll begins at once.
pub async fn start(config: Config, listen: SocketAddr, clock: Clock) -> Result<RunningExporter, ExporterError> {
    start_with(config, listen, clock, Options::default()).await
}

/// Starts polling and serving with `options`. The first poll begins at once.
pub async fn start_with(
    config: Config,
    listen: SocketAddr,
    clock: Clock,
    options: Options,
) -> Result<RunningExporter, ExporterError> {
    let mut config = config;
    if options.shard.is_some() {
        config.sharding = options.shard;
    }
    let store = Arc::new(MetricsStore::new(env!("CARGO_PKG_VERSION"), REVISION)?);
    log_targets(&config, &store);
    let config = Arc::new(config);
    let client = Client::new(&config.gateway, clock.clone(), store.api().clone())?;
    store.config_loaded(Some(unix_now(&clock)));
    let poller = Arc::new(Poller::new(config, client, Arc::clone(&store), clock.clone()));
    let reloader = options.config_file.map(|path| {
        Arc::new(Reloader {
            path,
            poller: Arc::clone(&poller),
            store: Arc::clone(&store),
            clock,
            shard: options.shard,
            busy: tokio::sync::Mutex::new(()),
        })
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ExporterError::Listen { addr: listen, source })?;
    let addr = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let web = options.web;
    if let Some(http::WebSource::Live(live)) = &web {
        live.register(store.registry())?;
    }
    let tls = web.as_ref().is_some_and(|w| w.current().tls.is_some());
    let basic_auth = web.as_ref().is_some_and(|w| w.current().basic_auth.is_some());
    let state = AppState {
        store: Arc::clone(&store),
        reload: reloader.clone().map(|r| r as Arc<dyn Reload>),
        lifecycle: options.lifecycle,
        status: poller.status(),
    };
    let server = tokio::spawn(http::serve_with(
        listener,
        state,
        web,
        options.http,
        cancel.clone().cancelled_owned(),
    ));
    let polling = (!options.manual_polling).then(|| tokio::spawn(Arc::clone(&poller).run(cancel.clone())));
    tracing::info!(%addr, tls, basic_auth, "serving /metrics");
    Ok(RunningExporter {
        addr,
        store,
        poller,
        reloader,
        cancel,
        server,
        polling,
    })
}

/// Logs what this replica polls and what a refresh of it costs (a warning when it needs
/// longer than the hour), and publishes that cost.
fn log_targets(config: &Config, store: &MetricsStore) {
    let (shops, devices) = crate::poller::owned_targets(config);
    let shard = config.sharding.map_or_else(|| "all".to_string(), |s| s.to_string());
    let cost = RefreshCost::of(config);
    tracing::info!(
        shard = %shard,
        shop_ids = shops.len(),
        of_shop_ids = config.shops.len(),
        devices = devices.len(),
        of_devices = config.devices.len(),
        refresh_calls = cost.calls,
        refresh_seconds = cost.seconds.round(),
        "targets"
    );
    if cost.exceeds_the_hour() {
        tracing::warn!(
            refresh_calls = cost.calls,
            refresh_seconds = cost.seconds.round(),
            requests_per_second = config.gateway.requests_per_second,
            "a refresh needs longer than the hour it describes: {}",
            RefreshCost::REMEDIES
        );
    }
    store.refresh_budget(cost.seconds);
}

fn unix_now(clock: &Clock) -> f64 {
    clock.now().timestamp_millis() as f64 / 1000.0
}

impl RunningExporter {
    /// Stops polling, lets requests in flight finish, and waits for both.
    pub async fn shutdown(self) -> Result<(), ExporterError> {
        self.cancel.cancel();
        if let Some(polling) = self.polling {
            polling.await?;
        }
        self.server.await??;
        Ok(())
    }

    /// Runs until `shutdown` completes, then stops as [`RunningExporter::shutdown`] does.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ExporterError> {
        shutdown.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Applies a changed configuration file without a restart: a valid file replaces the
/// configuration and client of the poller (and triggers a poll); an invalid one is rejected
/// whole, the old one keeps running, and the reload metrics say so.
pub struct Reloader {
    path: PathBuf,
    poller: Arc<Poller>,
    store: Arc<MetricsStore>,
    clock: Clock,
    shard: Option<Shard>,
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Re-reads the file. The error lists every problem (never a secret).
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.busy.lock().await;
        let result = self.try_reload();
        match &result {
            Ok(()) => {
                self.store.config_loaded(Some(unix_now(&self.clock)));
                tracing::info!(file = %self.path.display(), "configuration reloaded");
            }
            Err(e) => {
                self.store.config_loaded(None);
                tracing::error!(file = %self.path.display(), "configuration reload rejected; the previous configuration stays in force:\n{e}");
            }
        }
        result
    }

    fn try_reload(&self) -> Result<(), ReloadError> {
        let mut config = Config::load(&self.path)?;
        if self.shard.is_some() {
            config.sharding = self.shard;
        }
        log_targets(&config, &self.store);
        // The new client goes on from the old one's request rate.
        let client = self.poller.client().renewed(&config.gateway)?;
        self.poller.replace(Arc::new(config), client);
        crate::metrics::release_free_memory();
        Ok(())
    }
}

impl Reload for Reloader {
    fn reload(&self) -> BoxFuture<'_, Result<(), Box<dyn std::error::Error + Send + Sync>>> {
        Box::pin(async move { Ok(Reloader::reload(self).await?) })
    }
}

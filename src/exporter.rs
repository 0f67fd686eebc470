//! Wiring: builds the metrics store, the HTTP server and, per account of an [`Accounts`] (one
//! unnamed account for a single [`Config`]), a client, a poller and its poll loop; runs them as
//! tasks, applies reloads account by account, and stops them together. `main` and the integration tests both start the
//! exporter through here, so the tests exercise exactly what users run.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::{Account, Accounts, Config, ConfigErrors, Shard};
use crate::http::{self, AppState, Reload};
use crate::metrics::{AccountMetrics, MetricsStore};
use crate::model::Clock;
use crate::poller::{Poller, RefreshCost};
use crate::status::{AccountStatus, StatusSource};

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
    #[error("there is no account to poll")]
    NoAccount,
}

/// Why a configuration reload was rejected (the previous configuration stays in force).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// Every problem of the file, each with its field path (never a secret).
    #[error(transparent)]
    Invalid(#[from] ConfigErrors),
    #[error("cannot build the gateway client: {0}")]
    Client(#[from] reqwest::Error),
    /// The file switched between the single-account form and `accounts:`.
    #[error("accounts: switching between the single-account form (a top-level gateway) and an accounts list needs a restart")]
    Form,
    #[error("cannot start polling an added account: {0}")]
    Start(String),
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
    /// The poller of the first account (in the single-account form, the only one).
    pub poller: Arc<Poller>,
    /// Re-reads the configuration file, when the exporter was started from one.
    pub reloader: Option<Arc<Reloader>>,
    /// Every account's poller and poll loop.
    fleet: Arc<Fleet>,
    cancel: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
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
    start_accounts(Accounts::single(config), listen, clock, options).await
}

/// Starts polling every account of `accounts` and serving them all with `options`: one client
/// (with its own token, rate limiter and counters), poller and poll loop per account, the
/// series of a named account labelled `account="<name>"`. `options.shard` applies to every
/// account. The first polls begin at once.
pub async fn start_accounts(
    accounts: Accounts,
    listen: SocketAddr,
    clock: Clock,
    options: Options,
) -> Result<RunningExporter, ExporterError> {
    let names: Vec<Option<&str>> = accounts.iter().map(|a| a.name.as_deref()).collect();
    let store = Arc::new(MetricsStore::with_accounts(
        env!("CARGO_PKG_VERSION"),
        REVISION,
        &names,
    )?);
    let cancel = CancellationToken::new();
    let fleet = Arc::new(Fleet {
        runs: std::sync::Mutex::new(Vec::new()),
        single: accounts.is_single(),
        store: Arc::clone(&store),
        clock: clock.clone(),
        shard: options.shard,
        manual: options.manual_polling,
        cancel: cancel.clone(),
    });
    let mut runs = Vec::with_capacity(accounts.len());
    for account in accounts {
        runs.push(fleet.build(account)?);
    }
    store.config_loaded(Some(unix_now(&clock)));
    // An `Accounts` is never empty; should one be, starting fails rather than panics.
    let poller = runs
        .first()
        .map(|run| Arc::clone(&run.poller))
        .ok_or(ExporterError::NoAccount)?;
    *fleet.runs.lock().unwrap_or_else(PoisonError::into_inner) = runs;
    let reloader = options.config_file.map(|path| {
        Arc::new(Reloader {
            path,
            fleet: Arc::clone(&fleet),
            store: Arc::clone(&store),
            clock,
            busy: tokio::sync::Mutex::new(()),
        })
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ExporterError::Listen { addr: listen, source })?;
    let addr = listener.local_addr()?;
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
        status: Arc::clone(&fleet) as Arc<dyn StatusSource>,
    };
    let server = tokio::spawn(http::serve_with(
        listener,
        state,
        web,
        options.http,
        cancel.clone().cancelled_owned(),
    ));
    for run in fleet.runs.lock().unwrap_or_else(PoisonError::into_inner).iter_mut() {
        fleet.start(run);
    }
    tracing::info!(%addr, tls, basic_auth, "serving /metrics");
    Ok(RunningExporter {
        addr,
        store,
        poller,
        reloader,
        fleet,
        cancel,
        server,
    })
}

/// One account's poller and its poll loop.
struct AccountRun {
    name: Option<String>,
    poller: Arc<Poller>,
    /// Stops this account's loop alone (a child of the exporter's).
    stop: CancellationToken,
    /// The poll loop (none with [`Options::manual_polling`]).
    polling: Option<JoinHandle<()>>,
}

/// Every account's poller and poll loop: built at start, changed by reloads, stopped at
/// shutdown.
struct Fleet {
    runs: std::sync::Mutex<Vec<AccountRun>>,
    /// The single-account form (one unnamed account).
    single: bool,
    store: Arc<MetricsStore>,
    clock: Clock,
    shard: Option<Shard>,
    manual: bool,
    cancel: CancellationToken,
}

impl Fleet {
    /// The client and poller of `account` (its loop not started yet), its series registered
    /// in the store.
    fn build(&self, account: Account) -> Result<AccountRun, ExporterError> {
        let Account { name, mut config } = account;
        if self.shard.is_some() {
            config.sharding = self.shard;
        }
        let metrics = self.store.account(name.as_deref())?;
        log_targets(name.as_deref(), &config, &metrics);
        let config = Arc::new(config);
        let client = Client::new(&config.gateway, self.clock.clone(), metrics.api().clone())?;
        let poller = Arc::new(Poller::for_account(
            config,
            client,
            Arc::clone(&self.store),
            metrics,
            self.clock.clone(),
        ));
        Ok(AccountRun {
            name,
            poller,
            stop: self.cancel.child_token(),
            polling: None,
        })
    }

    /// Starts the poll loop of `run` (unless polling is manual).
    fn start(&self, run: &mut AccountRun) {
        if !self.manual && run.polling.is_none() {
            run.polling = Some(tokio::spawn(Arc::clone(&run.poller).run(run.stop.clone())));
        }
    }

    /// The poller of the account `name`.
    fn poller(&self, name: Option<&str>) -> Option<Arc<Poller>> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|r| r.name.as_deref() == name)
            .map(|r| Arc::clone(&r.poller))
    }

    /// Every account's poller, in file order.
    fn pollers(&self) -> Vec<Arc<Poller>> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| Arc::clone(&r.poller))
            .collect()
    }

    /// Stops every loop and waits for them.
    async fn stop_all(&self) -> Result<(), ExporterError> {
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(PoisonError::into_inner));
        for run in runs {
            run.stop.cancel();
            if let Some(polling) = run.polling {
                polling.await?;
            }
        }
        Ok(())
    }
}

/// Logs what this replica polls of an account and what a refresh of it costs (a warning when
/// it needs longer than the hour), and publishes that cost.
fn log_targets(account: Option<&str>, config: &Config, metrics: &AccountMetrics) {
    let account = account.unwrap_or("");
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
        account,
        "targets"
    );
    if cost.exceeds_the_hour() {
        tracing::warn!(
            refresh_calls = cost.calls,
            refresh_seconds = cost.seconds.round(),
            requests_per_second = config.gateway.requests_per_second,
            account,
            "a refresh needs longer than the hour it describes: {}",
            RefreshCost::REMEDIES
        );
    }
    metrics.refresh_budget(cost.seconds);
}

fn unix_now(clock: &Clock) -> f64 {
    clock.now().timestamp_millis() as f64 / 1000.0
}

impl RunningExporter {
    /// The poller of the account `name` (`None`: the unnamed account of the single-account
    /// form), if the exporter polls it now.
    pub fn poller_of(&self, name: Option<&str>) -> Option<Arc<Poller>> {
        self.fleet.poller(name)
    }

    /// Every account's poller, in the order of the configuration.
    pub fn pollers(&self) -> Vec<Arc<Poller>> {
        self.fleet.pollers()
    }

    /// Stops every account's polling, lets requests in flight finish, and waits for both.
    pub async fn shutdown(self) -> Result<(), ExporterError> {
        self.cancel.cancel();
        self.fleet.stop_all().await?;
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

impl StatusSource for Fleet {
    fn statuses(&self) -> Vec<AccountStatus> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| AccountStatus {
                name: r.name.clone(),
                board: r.poller.status(),
                api: r.poller.account_metrics().api().clone(),
            })
            .collect()
    }
}

/// Applies a changed configuration file without a restart: a valid file replaces the
/// configuration and client of each account's poller (and triggers a poll), starts polling an
/// account new to the file and stops one gone from it (its series vanish); an invalid one is
/// rejected whole, the old one keeps running, and the reload metrics say so. Switching between
/// the single-account form and `accounts:` is rejected (it needs a restart).
pub struct Reloader {
    path: PathBuf,
    fleet: Arc<Fleet>,
    store: Arc<MetricsStore>,
    clock: Clock,
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Re-reads the file. The error lists every problem (never a secret).
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let result = match Accounts::load(&self.path) {
            Ok(accounts) => self.apply(accounts).await,
            Err(e) => {
                let _one_at_a_time = self.busy.lock().await;
                self.store.config_loaded(None);
                Err(e.into())
            }
        };
        match &result {
            Ok(()) => tracing::info!(file = %self.path.display(), "configuration reloaded"),
            Err(e) => {
                tracing::error!(file = %self.path.display(), "configuration reload rejected; the previous configuration stays in force:\n{e}")
            }
        }
        result
    }

    /// Puts `accounts` in force as a reload of the file does, and records the outcome in the
    /// reload metrics.
    pub async fn apply(&self, accounts: Accounts) -> Result<(), ReloadError> {
        let _one_at_a_time = self.busy.lock().await;
        let result = self.try_apply(accounts).await;
        match &result {
            Ok(()) => self.store.config_loaded(Some(unix_now(&self.clock))),
            Err(_) => self.store.config_loaded(None),
        }
        result
    }

    async fn try_apply(&self, accounts: Accounts) -> Result<(), ReloadError> {
        let fleet = &self.fleet;
        if accounts.is_single() != fleet.single {
            return Err(ReloadError::Form);
        }
        // Every client first: a failure leaves everything as it was.
        let mut renewed = Vec::new();
        let mut added = Vec::new();
        {
            let runs = fleet.runs.lock().unwrap_or_else(PoisonError::into_inner);
            for account in accounts.iter() {
                let mut config = account.config.clone();
                if fleet.shard.is_some() {
                    config.sharding = fleet.shard;
                }
                match runs.iter().find(|r| r.name == account.name) {
                    // The new client goes on from the old one's request rate.
                    Some(run) => match run.poller.client().renewed(&config.gateway) {
                        Ok(client) => renewed.push((Arc::clone(&run.poller), config, client)),
                        Err(e) => return Err(e.into()),
                    },
                    None => added.push(Account {
                        name: account.name.clone(),
                        config,
                    }),
                }
            }
        }
        let mut new_runs = Vec::with_capacity(added.len());
        for account in added {
            let name = account.name.clone();
            match fleet.build(account) {
                Ok(run) => new_runs.push(run),
                Err(e) => {
                    self.store.remove_account(name.as_deref());
                    for run in &new_runs {
                        self.store.remove_account(run.name.as_deref());
                    }
                    return Err(match e {
                        ExporterError::Client(e) => ReloadError::Client(e),
                        other => ReloadError::Start(other.to_string()),
                    });
                }
            }
        }
        for (poller, config, client) in renewed {
            log_targets(poller.account(), &config, poller.account_metrics());
            poller.replace(Arc::new(config), client);
        }
        let gone: Vec<AccountRun> = {
            let mut runs = fleet.runs.lock().unwrap_or_else(PoisonError::into_inner);
            let (kept, gone) = std::mem::take(&mut *runs)
                .into_iter()
                .partition(|r| accounts.iter().any(|a| a.name == r.name));
            *runs = kept;
            for mut run in new_runs {
                fleet.start(&mut run);
                tracing::info!(account = run.name.as_deref().unwrap_or(""), "account added");
                runs.push(run);
            }
            // In the order of the file.
            runs.sort_by_key(|r| accounts.iter().position(|a| a.name == r.name));
            gone
        };
        for run in gone {
            run.stop.cancel();
            if let Some(polling) = run.polling {
                // A loop that panicked is gone either way.
                let _ = polling.await;
            }
            self.store.remove_account(run.name.as_deref());
            tracing::info!(account = run.name.as_deref().unwrap_or(""), "account removed");
        }
        crate::metrics::release_free_memory();
        Ok(())
    }
}

impl Reload for Reloader {
    fn reload(&self) -> BoxFuture<'_, Result<(), Box<dyn std::error::Error + Send + Sync>>> {
        Box::pin(async move { Ok(Reloader::reload(self).await?) })
    }
}

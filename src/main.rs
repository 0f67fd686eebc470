//! The `opretail-exporter` command: parses arguments, sets up logging and signals, and hands
//! over to the library. Nothing else happens here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use opretail_exporter::config::Config;
use opretail_exporter::exporter;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{SimConfig, Simulator};
use opretail_exporter::web_config::WebConfig;

/// Prometheus exporter for the Opretail (Ovopark) open platform's hourly people-counting data.
#[derive(Parser, Debug)]
#[command(name = "opretail-exporter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (YAML); see config.example.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to serve /metrics on (`:9863` means every interface).
    #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    listen: SocketAddr,
    /// Web configuration file (YAML, exporter-toolkit shape): TLS and basic auth; see
    /// web-config.example.yml.
    #[arg(long = "web.config.file", value_name = "FILE")]
    web_config: Option<PathBuf>,
    /// This replica's share of the targets, INDEX/TOTAL (INDEX may be a StatefulSet pod name
    /// such as opretail-exporter-2): overrides the configuration's `sharding`.
    #[arg(long, value_name = "INDEX/TOTAL")]
    shard: Option<opretail_exporter::config::Shard>,
    /// Log level or tracing filter directive (error, warn, info, debug, trace).
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info", global = true)]
    log_level: String,
    /// Log format.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a configuration file: exit 0, or print every problem and exit 2.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the simulated Opretail gateway alone (key `demo`, secret `demo-secret`).
    Simulate {
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8099", value_parser = parse_listen)]
        listen: SocketAddr,
        /// Serve a large tenant instead of the demo: this many shops, in organisations of 100
        /// (O_2001, …; dep ids from 100001).
        #[arg(long, value_name = "N")]
        shops: Option<u64>,
        /// With --shops: this many devices (macs 0a0000000000 + index).
        #[arg(long, value_name = "N", default_value_t = 0, requires = "shops")]
        devices: u64,
        /// Enforce a request budget: answer -100 API_CALL_REPEAT beyond this many requests per
        /// second.
        #[arg(long, value_name = "RPS")]
        rate_limit: Option<f64>,
    },
    /// Run the simulated gateway on loopback and the exporter against it: no configuration.
    Demo {
        #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
        listen: SocketAddr,
        /// Web configuration file: TLS and basic auth.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config: Option<PathBuf>,
    },
    /// Fetch past hourly data and write it as OpenMetrics with timestamps, for
    /// `promtool tsdb create-blocks-from openmetrics`. Exit 1 if any call failed (what the
    /// other calls fetched is still written), 2 on bad arguments or configuration.
    Backfill {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// First shop-local day (YYYY-MM-DD, in the configuration's timezone).
        #[arg(long, value_name = "DATE")]
        from: chrono::NaiveDate,
        /// Last shop-local day (YYYY-MM-DD); hours not yet complete are skipped.
        #[arg(long, value_name = "DATE")]
        to: chrono::NaiveDate,
        /// Where to write the OpenMetrics text.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// One gateway call for one shop/organisation (--id) or device (--mac) and one day, printed
    /// as a table (or JSON): the first thing to run to check a key. Exit 1 on a failed call.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["id", "mac"])))]
    Fetch {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// A shop (S_<depId>) or organisation (O_<orgId>).
        #[arg(long, value_name = "ID", value_parser = parse_target_id)]
        id: Option<opretail_exporter::model::TargetId>,
        /// A counting device's MAC address.
        #[arg(long, value_name = "MAC", value_parser = opretail_exporter::model::normalize_mac)]
        mac: Option<String>,
        /// Shop-local day (YYYY-MM-DD); default today in the configuration's timezone.
        #[arg(long, value_name = "DATE")]
        date: Option<chrono::NaiveDate>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

const DEFAULT_LISTEN: &str = ":9863";

/// `host:port`, or `:port` for every interface (the Prometheus exporters' convention).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|e| format!("{s:?} is not an address like 0.0.0.0:9863 or :9863 ({e})"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.log_level, cli.log_format) {
        eprintln!("error: --log.level: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::CheckConfig { config }) => check_config(&config),
        Some(Command::Simulate {
            listen,
            shops,
            devices,
            rate_limit,
        }) => {
            let mut sim = match shops {
                Some(shops) => SimConfig::large(Clock::system(), shops, devices),
                None => SimConfig::demo(Clock::system()),
            };
            sim.rate_limit = rate_limit;
            run(simulate(listen, sim))
        }
        Some(Command::Demo { listen, web_config }) => match load_web_config(web_config.as_deref()) {
            Ok(web) => run(demo(listen, web)),
            Err(code) => code,
        },
        Some(Command::Backfill {
            config,
            from,
            to,
            output,
        }) => one_off(&config, |config, client| async move {
            opretail_exporter::cmd::backfill::command(config, client, from, to, &output, Clock::system().now()).await
        }),
        Some(Command::Fetch {
            config,
            id,
            mac,
            date,
            json,
        }) => {
            use opretail_exporter::client::Target;
            use opretail_exporter::cmd::fetch;
            let target = match (id, mac) {
                (Some(id), None) => Target::Shops(vec![id]),
                (None, Some(mac)) => Target::Device(opretail_exporter::model::DeviceTarget {
                    mac,
                    name: None,
                    shop_id: None,
                }),
                _ => {
                    eprintln!("error: give exactly one of --id and --mac");
                    return ExitCode::from(2);
                }
            };
            one_off(&config, |config, client| async move {
                let now_local = Clock::system().now().with_timezone(&config.timezone).naive_local();
                fetch::command(client, target, date.unwrap_or(now_local.date()), json, now_local).await
            })
        }
        None => match cli.config {
            Some(path) => match Config::load(&path) {
                Ok(config) => match load_web_config(cli.web_config.as_deref()) {
                    Ok(web) => {
                        let options = exporter::Options {
                            config_file: Some(path),
                            web,
                            shard: cli.shard,
                            manual_polling: false,
                        };
                        run(serve(config, cli.listen, options))
                    }
                    Err(code) => code,
                },
                Err(errors) => {
                    eprintln!("error: invalid configuration {}:\n{errors}", path.display());
                    ExitCode::from(2)
                }
            },
            None => {
                eprintln!("error: --config FILE is required (or try `opretail-exporter demo`)");
                ExitCode::from(2)
            }
        },
    }
}

/// Reads `--web.config.file` if given; on a problem prints it and gives exit code 2.
fn load_web_config(path: Option<&std::path::Path>) -> Result<Option<Arc<WebConfig>>, ExitCode> {
    let Some(path) = path else {
        return Ok(None);
    };
    match WebConfig::load(path) {
        Ok(web) => Ok(Some(Arc::new(web))),
        Err(e) => {
            eprintln!("error: invalid web config {}: {e}", path.display());
            Err(ExitCode::from(2))
        }
    }
}

fn init_logging(level: &str, format: LogFormat) -> Result<(), String> {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = log_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR"));
            builder.with_ansi(colour).init()
        }
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Whether text logs are coloured: only on a terminal, and never when `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>). Files, pipes, journald and container logs get
/// plain text.
fn log_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            let cost = opretail_exporter::poller::RefreshCost::of(&c);
            println!(
                "{}: valid ({} shop ids, {} devices, poll every {}); a refresh needs {} gateway calls, at least {} at {} requests/s",
                path.display(),
                c.shops.len(),
                c.devices.len(),
                humantime::format_duration(c.poll_interval),
                cost.calls,
                humantime::format_duration(std::time::Duration::try_from_secs_f64(cost.seconds.ceil()).unwrap_or_default()),
                c.gateway.requests_per_second
            );
            if cost.exceeds_the_hour() {
                eprintln!(
                    "warning: a refresh needs longer than the hour it describes; {}",
                    opretail_exporter::poller::RefreshCost::REMEDIES
                );
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: invalid configuration:\n{errors}", path.display());
            ExitCode::from(2)
        }
    }
}

fn run(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(task) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config, listen: SocketAddr, options: exporter::Options) -> anyhow::Result<()> {
    // Signal handlers first: a signal that arrives while the exporter starts is handled, not
    // left to its default action (which ends the process).
    let shutdown = shutdown_signal()?;
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let running = exporter::start_with(config, listen, Clock::system(), options).await?;
    #[cfg(unix)]
    if let Some(reloader) = running.reloader.clone() {
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // The outcome is logged and published in the reload metrics.
                let _ = reloader.reload().await;
            }
        });
    }
    Ok(running.run_until(shutdown).await?)
}

async fn simulate(listen: SocketAddr, config: SimConfig) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let shops = config.shops().count();
    let devices = config.devices.len();
    let sim = Simulator::new(config);
    tracing::info!(
        addr = %listener.local_addr()?,
        shops,
        devices,
        "simulated Opretail gateway (key demo, secret demo-secret) at /m.api"
    );
    sim.serve(listener, shutdown).await?;
    Ok(())
}

async fn demo(listen: SocketAddr, web: Option<Arc<WebConfig>>) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let sim = Simulator::new(SimConfig::demo(Clock::system()))
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let config = sim.sim.config().exporter_config(sim.url().parse()?);
    tracing::info!(gateway = %config.gateway.url, "demo: simulated gateway started");
    let options = exporter::Options {
        web,
        ..exporter::Options::default()
    };
    let running = exporter::start_with(config, listen, Clock::system(), options).await?;
    let result = running.run_until(shutdown).await;
    sim.shutdown().await;
    Ok(result?)
}

/// Registers the SIGINT and SIGTERM handlers now, and resolves when one of them arrives.
/// Call it before starting anything, so that an early signal still means a graceful stop.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn parse_target_id(s: &str) -> Result<opretail_exporter::model::TargetId, String> {
    s.parse()
        .map_err(|e: opretail_exporter::model::ParseTargetIdError| e.to_string())
}

/// Runs a one-off command that needs the configuration and a client of its own (its call
/// counters are not served anywhere): exit 2 on a bad configuration.
fn one_off<F, Fut>(config_path: &std::path::Path, command: F) -> ExitCode
where
    F: FnOnce(Config, opretail_exporter::client::Client) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    use anyhow::Context as _;
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("error: invalid configuration {}:\n{errors}", config_path.display());
            return ExitCode::from(2);
        }
    };
    let client = opretail_exporter::metrics::MetricsStore::new(env!("CARGO_PKG_VERSION"), exporter::REVISION)
        .context("cannot set up the call counters")
        .and_then(|store| {
            opretail_exporter::client::Client::new(&config.gateway, Clock::system(), store.api().clone())
                .context("cannot build the HTTP client")
        });
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match runtime() {
        Ok(rt) => rt.block_on(command(config, client)),
        Err(code) => code,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}

#[cfg(test)]
mod tests {
    use super::log_colour;

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None), "a file or pipe gets no escape codes");
        assert!(!log_colour(false, Some("1".into())));
    }
}

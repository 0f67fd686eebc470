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
    },
    /// Run the simulated gateway on loopback and the exporter against it: no configuration.
    Demo {
        #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
        listen: SocketAddr,
        /// Web configuration file: TLS and basic auth.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config: Option<PathBuf>,
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
        Some(Command::Simulate { listen }) => run(simulate(listen)),
        Some(Command::Demo { listen, web_config }) => match load_web_config(web_config.as_deref()) {
            Ok(web) => run(demo(listen, web)),
            Err(code) => code,
        },
        None => match cli.config {
            Some(path) => match Config::load(&path) {
                Ok(config) => match load_web_config(cli.web_config.as_deref()) {
                    Ok(web) => run(serve(config, path, cli.listen, web)),
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
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            println!(
                "{}: valid ({} shop ids, {} devices, poll every {})",
                path.display(),
                c.shops.len(),
                c.devices.len(),
                humantime::format_duration(c.poll_interval)
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{}: invalid configuration:\n{errors}", path.display());
            ExitCode::from(2)
        }
    }
}

fn run(task: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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

async fn serve(config: Config, path: PathBuf, listen: SocketAddr, web: Option<Arc<WebConfig>>) -> anyhow::Result<()> {
    let options = exporter::Options {
        config_file: Some(path),
        web,
    };
    let running = exporter::start_with(config, listen, Clock::system(), options).await?;
    #[cfg(unix)]
    if let Some(reloader) = running.reloader.clone() {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // The outcome is logged and published in the reload metrics.
                let _ = reloader.reload().await;
            }
        });
    }
    running.run_until(shutdown_signal()).await
}

async fn simulate(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let sim = Simulator::new(SimConfig::demo(Clock::system()));
    tracing::info!(addr = %listener.local_addr()?, "simulated Opretail gateway (key demo, secret demo-secret) at /m.api");
    sim.serve(listener, shutdown_signal()).await?;
    Ok(())
}

async fn demo(listen: SocketAddr, web: Option<Arc<WebConfig>>) -> anyhow::Result<()> {
    let sim = Simulator::new(SimConfig::demo(Clock::system()))
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let config = exporter::demo_config(sim.sim.config(), sim.url().parse()?);
    tracing::info!(gateway = %config.gateway.url, "demo: simulated gateway started");
    let options = exporter::Options { config_file: None, web };
    let running = exporter::start_with(config, listen, Clock::system(), options).await?;
    let result = running.run_until(shutdown_signal()).await;
    sim.shutdown().await;
    result
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

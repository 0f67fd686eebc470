//! The `opretail-exporter` command: parses arguments, sets up logging and signals, and hands
//! over to the library. Nothing else happens here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use opretail_exporter::config::{Accounts, Config};
use opretail_exporter::exporter;
use opretail_exporter::http::WebSource;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{RateRule, RowDetail, SimConfig, Simulator};
use opretail_exporter::web_config::LiveWebConfig;

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
    #[command(flatten)]
    web_limits: WebLimitArgs,
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
    /// Validate a configuration file: exit 0, or print every problem and exit 2. A file of
    /// several accounts is validated whole and summarised one line per account.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Summarise only this account (the whole file is still validated).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// Run the simulated Opretail gateway alone (key `demo`, secret `demo-secret`).
    Simulate(SimulateArgs),
    /// Ask the exporter running on this machine whether it is alive (or, with --ready, ready):
    /// exit 0 or 1. For container HEALTHCHECKs and exec probes: finds out whether the port
    /// speaks TLS, counts a 401 as alive, and sends OPRETAIL_HEALTHCHECK_USER and
    /// OPRETAIL_HEALTHCHECK_PASSWORD when set.
    Healthcheck {
        /// The exporter's listen address (`:9863` means this machine's loopback).
        #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
        listen: SocketAddr,
        /// Ask /-/ready instead of /-/healthy.
        #[arg(long)]
        ready: bool,
    },
    /// Run the simulated gateway on loopback and the exporter against it: no configuration.
    Demo {
        #[arg(long = "web.listen-address", value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
        listen: SocketAddr,
        /// Web configuration file: TLS and basic auth.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config: Option<PathBuf>,
        #[command(flatten)]
        web_limits: WebLimitArgs,
        /// Make one demo shop (dep id 9601..=9620) fail, to see a failing target: it is polled
        /// by its own S_ id too, and the simulated gateway refuses every call naming that id
        /// with its stand-in code 400003 ID_NOT_ALLOWED.
        #[arg(long = "demo.failing-shop", value_name = "DEP_ID")]
        failing_shop: Option<u64>,
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
        /// The account to use, by name (required when the file lists several).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
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
        /// The account to use, by name (required when the file lists several).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
    /// The first check of a key and a configuration against the gateway: signature, clock,
    /// row time, rate scale, fields, id lists, organisation sizes, day rows against the sums of
    /// their hours, in a few calls. Exit 0 when
    /// the exporter can run as configured, 1 on a problem (each with its fix), 2 on bad
    /// arguments or configuration.
    Doctor {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The account to use, by name (required when the file lists several).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
}

/// The `simulate` command's tenant and switches.
#[derive(Args, Debug)]
struct SimulateArgs {
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8099", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Serve a large tenant instead of the demo: this many shops, in organisations of
    /// --org-size (O_2001, …; dep ids from 100001).
    #[arg(long, value_name = "N")]
    shops: Option<u64>,
    /// With --shops: this many devices (macs 0a0000000000 + index).
    #[arg(long, value_name = "N", default_value_t = 0, requires = "shops")]
    devices: u64,
    /// With --shops: shops per organisation (the last one holds what is left; 0 counts as 1).
    #[arg(long, value_name = "M", default_value_t = 100, requires = "shops")]
    org_size: u64,
    /// Enforce a request budget: answer -100 API_CALL_REPEAT beyond this many requests per
    /// second.
    #[arg(long, value_name = "RPS")]
    rate_limit: Option<f64>,
    /// How the request budget counts: a token bucket (bursts of one second's worth) or at
    /// most the rate in any one second.
    #[arg(long, value_enum, value_name = "RULE", default_value_t = RateRuleArg::TokenBucket)]
    rate_rule: RateRuleArg,
    /// Answer `endhour` itself too (rows starthour..=endhour instead of starthour..endhour).
    #[arg(long)]
    end_hour_inclusive: bool,
    /// Refuse a shops answer whose JSON body would be larger than this (stand-in code 400002
    /// DATA_TOO_LARGE).
    #[arg(long, value_name = "BYTES")]
    max_answer_bytes: Option<usize>,
    /// Refuse a shops request whose `id` is longer than this many characters, commas included
    /// (stand-in code 400001 PARAM_TOO_LONG).
    #[arg(long, value_name = "N")]
    max_id_chars: Option<usize>,
    /// Which fields a shop row carries: every field the live gateway is known to send, or
    /// only the documented ones plus duplicatedFlow.
    #[arg(long, value_enum, value_name = "DETAIL", default_value_t = RowDetailArg::Full)]
    row_detail: RowDetailArg,
    /// Which moment of its hour an hourly row's `time` names: its start (13:00 for the hour
    /// 13:00-14:00) or its end (14:00; the day's last hour is the next day's 00:00).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = RowTimeArg::Start)]
    row_time: RowTimeArg,
    /// How inShopRate and dressingRate are sent: percentages (8.16) or ratios (0.0816).
    #[arg(long, value_enum, value_name = "SCALE", default_value_t = RateScaleArg::Percent)]
    rate_scale: RateScaleArg,
    /// Send the row field FROM under the name TO instead, e.g. passPassengerFlow=passFlow
    /// (repeatable).
    #[arg(long = "rename-field", value_name = "FROM=TO", value_parser = SimulateArgs::parse_rename)]
    rename_field: Vec<(String, String)>,
    /// Seconds the gateway's clock runs ahead of (positive) or behind (negative) this machine's:
    /// moves stat.systime, the _timestamp check and which hours are complete.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(i64).range(-SimulateArgs::MAX_CLOCK_SKEW..=SimulateArgs::MAX_CLOCK_SKEW)
    )]
    clock_skew: i64,
    /// Every 5th shop uploads late: a past hour of it shows half its counts until this long
    /// after the hour's end (e.g. 20m), then the full counts.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    late_upload: Option<std::time::Duration>,
    /// The first N shops count with face devices (no walk-outs, de-duplicated day rows), and so
    /// do their devices.
    #[arg(long, value_name = "N", default_value_t = 0)]
    face_device_shops: usize,
    /// The last N shops have no outside counter (no passing, outside or walk-in rate fields).
    #[arg(long, value_name = "N", default_value_t = 0)]
    no_outside_counter_shops: usize,
}

impl SimulateArgs {
    /// The simulated tenant these arguments describe, on `clock`.
    fn config(&self, clock: Clock) -> SimConfig {
        let mut sim = match self.shops {
            Some(shops) => SimConfig::large(clock, shops, self.devices, self.org_size),
            None => SimConfig::demo(clock),
        };
        sim.rate_limit = self.rate_limit;
        sim.rate_rule = match self.rate_rule {
            RateRuleArg::TokenBucket => RateRule::TokenBucket,
            RateRuleArg::PerSecond => RateRule::PerSecond,
        };
        sim.end_hour_inclusive = self.end_hour_inclusive;
        sim.max_answer_bytes = self.max_answer_bytes;
        sim.max_id_chars = self.max_id_chars;
        sim.row_detail = match self.row_detail {
            RowDetailArg::Full => RowDetail::Full,
            RowDetailArg::Lean => RowDetail::Lean,
        };
        sim.row_time = match self.row_time {
            RowTimeArg::Start => opretail_exporter::simulator::SimRowTime::Start,
            RowTimeArg::End => opretail_exporter::simulator::SimRowTime::End,
        };
        sim.rate_scale = match self.rate_scale {
            RateScaleArg::Percent => opretail_exporter::simulator::SimRateScale::Percent,
            RateScaleArg::Fraction => opretail_exporter::simulator::SimRateScale::Fraction,
        };
        sim.renamed_fields = self.rename_field.clone();
        sim.clock_skew = self.clock_skew;
        sim.late_upload = self.late_upload;
        let shops = sim.shops().count();
        let outside_counters = shops.saturating_sub(self.no_outside_counter_shops);
        let mut face_shops = std::collections::HashSet::new();
        for (i, shop) in sim.orgs.iter_mut().flat_map(|o| o.shops.iter_mut()).enumerate() {
            shop.face_device = i < self.face_device_shops;
            shop.outside_counter = i < outside_counters;
            shop.late_uploader = self.late_upload.is_some() && i % 5 == 4;
            if shop.face_device {
                face_shops.insert(shop.dep_id);
            }
        }
        for dev in &mut sim.devices {
            dev.face_device = face_shops.contains(&dev.dep_id);
        }
        sim
    }

    /// The largest `--clock-skew`, either way: about 31 years.
    const MAX_CLOCK_SKEW: i64 = 1_000_000_000;

    /// `--rename-field FROM=TO`: two non-empty names.
    fn parse_rename(s: &str) -> Result<(String, String), String> {
        match s.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                Ok((from.trim().to_owned(), to.trim().to_owned()))
            }
            _ => Err(format!("{s:?} is not FROM=TO (two field names)")),
        }
    }
}

/// `--rate-rule`: the simulator's [`RateRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RateRuleArg {
    TokenBucket,
    PerSecond,
}

/// `--row-detail`: the simulator's [`RowDetail`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RowDetailArg {
    Full,
    Lean,
}

/// `--row-time`: the simulator's `SimRowTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RowTimeArg {
    Start,
    End,
}

/// `--rate-scale`: the simulator's `SimRateScale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RateScaleArg {
    Percent,
    Fraction,
}

/// How the HTTP server holds up against many or slow clients, and whether it serves the
/// lifecycle endpoint (the exporter's and `demo`'s).
#[derive(clap::Args, Debug, Clone)]
struct WebLimitArgs {
    /// Connections served at once; at the cap, the connection idle longest is closed to make
    /// room (lowered to what the open-files limit allows).
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 512, value_parser = parse_max_connections)]
    max_connections: usize,
    /// How long a client may take to send a request's headers, counted from when it connects
    /// or the previous answer was sent: also how long an idle kept-alive connection stays open,
    /// and how long a TLS handshake may take.
    #[arg(long = "web.read-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    read_header_timeout: std::time::Duration,
    /// Serve `POST /-/reload` (SIGHUP always reloads). Off by default, as in Prometheus.
    #[arg(long = "web.enable-lifecycle")]
    enable_lifecycle: bool,
}

impl WebLimitArgs {
    fn limits(&self) -> opretail_exporter::http::Limits {
        opretail_exporter::http::Limits {
            max_connections: self.max_connections,
            read_header_timeout: self.read_header_timeout,
        }
    }
}

/// `--web.max-connections`: at least 1.
fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of connections (1 or more)")),
    }
}

/// A duration with a unit, above zero (`10s`, `1m`).
fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be above zero".to_string()),
        Err(e) => Err(format!("{s:?}: {e} (expected e.g. 10s, 1m)")),
    }
}

/// Raises the open-files limit to the hard limit, and says so.
fn raise_open_files_limit() {
    match opretail_exporter::http::raise_open_files_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(from = before, to = after, "open-files limit raised");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
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
    one_malloc_arena();
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.log_level, cli.log_format) {
        eprintln!("error: --log.level: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::CheckConfig { config, account }) => check_config(&config, account.as_deref()),
        Some(Command::Healthcheck { listen, ready }) => healthcheck(listen, ready),
        Some(Command::Simulate(args)) => run(simulate(args.listen, args.config(Clock::system()))),
        Some(Command::Demo {
            listen,
            web_config,
            web_limits,
            failing_shop,
        }) => match load_web_config(web_config.as_deref()) {
            Ok(web) => run(demo(listen, web, web_limits, failing_shop)),
            Err(code) => code,
        },
        Some(Command::Backfill {
            config,
            from,
            to,
            output,
            account,
        }) => one_off(&config, account.as_deref(), |config, client, name| async move {
            opretail_exporter::cmd::backfill::command(config, client, from, to, &output, Clock::system().now(), name)
                .await
        }),
        Some(Command::Fetch {
            config,
            id,
            mac,
            date,
            json,
            account,
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
            one_off(&config, account.as_deref(), |config, client, _| async move {
                let now_local = Clock::system().now().with_timezone(&config.timezone).naive_local();
                fetch::command(client, target, date.unwrap_or(now_local.date()), json, now_local).await
            })
        }
        Some(Command::Doctor { config, json, account }) => {
            one_off(&config, account.as_deref(), |config, client, _| async move {
                opretail_exporter::cmd::doctor::command(client, config, json, Clock::system()).await
            })
        }
        None => match cli.config {
            Some(path) => match Accounts::load(&path) {
                Ok(accounts) => match load_web_config(cli.web_config.as_deref()) {
                    Ok(web) => {
                        let options = exporter::Options {
                            config_file: Some(path),
                            web,
                            shard: cli.shard,
                            manual_polling: false,
                            lifecycle: cli.web_limits.enable_lifecycle,
                            http: cli.web_limits.limits(),
                        };
                        run(serve(accounts, cli.listen, options))
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

/// Makes glibc's malloc serve every thread from one arena, unless `MALLOC_ARENA_MAX` says
/// otherwise. By default each thread that allocates while another does gets an arena of its own
/// (up to 8 per core), and memory freed in one arena is never reused by another: the
/// configuration is parsed on the main thread, a poll's calls run on the runtime's workers and
/// its snapshot is rendered on a blocking thread, so each of them grows an arena to its own
/// peak. Measured with the scale bench's tenant (10,000 `S_` shops and 20,000 devices, 187,540
/// series, release build): peak RSS (VmHWM) after the first refresh 118 MiB with the default
/// arenas, 73 MiB with one; after a second refresh triggered by a reload, 170 MiB and 112 MiB.
/// `/metrics` is not slower (p50 of a plain scrape 11.8 ms with one arena, 15.3 ms with
/// `MALLOC_ARENA_MAX=8`; each thread's tcache still serves small blocks without the arena
/// lock). mimalloc measured 90 MiB and jemalloc 99 MiB after the first refresh, so the system
/// allocator stays. `metrics` also trims free memory around each rendering.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called first thing in main, before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Reads `--web.config.file` if given (re-read from then on when it changes); on a problem
/// prints it and gives exit code 2.
fn load_web_config(path: Option<&std::path::Path>) -> Result<Option<WebSource>, ExitCode> {
    let Some(path) = path else {
        return Ok(None);
    };
    match LiveWebConfig::load(path) {
        Ok(web) => Ok(Some(WebSource::Live(Arc::new(web)))),
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

fn check_config(path: &std::path::Path, account: Option<&str>) -> ExitCode {
    use opretail_exporter::poller::RefreshCost;
    let invalid = |errors: opretail_exporter::config::ConfigErrors| {
        eprintln!("{}: invalid configuration:\n{errors}", path.display());
        ExitCode::from(2)
    };
    let (accounts, warnings) = match Accounts::load_quietly(path) {
        Ok(loaded) => loaded,
        Err(errors) => return invalid(errors),
    };
    let shown: Vec<&opretail_exporter::config::Account> = match account {
        None => accounts.iter().collect(),
        Some(name) => match accounts.pick(Some(name)) {
            Ok(a) => vec![a],
            Err(errors) => return invalid(errors),
        },
    };
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    // What a refresh of `c` costs, for its summary line.
    let cost_of = |c: &Config| {
        let cost = RefreshCost::of(c);
        let line = format!(
            "a refresh needs {} gateway calls, at least {} at {} requests/s",
            cost.calls,
            humantime::format_duration(std::time::Duration::try_from_secs_f64(cost.seconds.ceil()).unwrap_or_default()),
            c.gateway.requests_per_second
        );
        (line, cost.exceeds_the_hour())
    };
    if accounts.is_single() {
        let c = &shown[0].config;
        let (cost, too_long) = cost_of(c);
        println!(
            "{}: valid ({} shop ids, {} devices, poll every {}); {cost}",
            path.display(),
            c.shops.len(),
            c.devices.len(),
            humantime::format_duration(c.poll_interval),
        );
        if too_long {
            eprintln!(
                "warning: a refresh needs longer than the hour it describes; {}",
                RefreshCost::REMEDIES
            );
        }
        return ExitCode::SUCCESS;
    }
    println!(
        "{}: valid ({} accounts, poll every {})",
        path.display(),
        accounts.len(),
        humantime::format_duration(shown[0].config.poll_interval),
    );
    for a in shown {
        let c = &a.config;
        let (cost, too_long) = cost_of(c);
        println!(
            "account {}: {} shop ids, {} devices; {cost}",
            a.label(),
            c.shops.len(),
            c.devices.len(),
        );
        if too_long {
            eprintln!(
                "warning: {}: a refresh needs longer than the hour it describes; {}",
                a.label(),
                RefreshCost::REMEDIES
            );
        }
    }
    ExitCode::SUCCESS
}

fn healthcheck(listen: SocketAddr, ready: bool) -> ExitCode {
    use opretail_exporter::cmd::healthcheck::{check, credentials_from_env, Health};
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(check(listen, ready, credentials_from_env())) {
        Health::Good(how) => {
            println!("ok: {how}");
            ExitCode::SUCCESS
        }
        Health::Bad(why) => {
            println!("unhealthy: {why}");
            ExitCode::FAILURE
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

async fn serve(accounts: Accounts, listen: SocketAddr, options: exporter::Options) -> anyhow::Result<()> {
    // Signal handlers first: a signal that arrives while the exporter starts is handled, not
    // left to its default action (which ends the process).
    let shutdown = shutdown_signal()?;
    raise_open_files_limit();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let running = exporter::start_accounts(accounts, listen, Clock::system(), options).await?;
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
    let orgs = config.orgs.len();
    let org_size = config.orgs.iter().map(|o| o.shops.len()).max().unwrap_or(0);
    let caps = simulator_caps(&config);
    let sim = Simulator::new(config);
    tracing::info!(
        addr = %listener.local_addr()?,
        shops,
        devices,
        orgs,
        org_size,
        caps = %caps,
        "simulated Opretail gateway (key demo, secret demo-secret) at /m.api"
    );
    sim.serve(listener, shutdown).await?;
    Ok(())
}

/// The limits and readings a simulated gateway was started with, for its start-up log line.
fn simulator_caps(config: &SimConfig) -> String {
    let mut caps = Vec::new();
    if let Some(max) = config.max_id_chars {
        caps.push(format!("id at most {max} characters (else 400001)"));
    }
    if let Some(max) = config.max_answer_bytes {
        caps.push(format!("answers at most {max} bytes (else 400002)"));
    }
    if let Some(rate) = config.rate_limit {
        caps.push(format!("at most {rate} requests/s ({:?}, else -100)", config.rate_rule));
    }
    if caps.is_empty() {
        caps.push("no caps".to_owned());
    }
    if config.end_hour_inclusive {
        caps.push("endhour inclusive".to_owned());
    }
    caps.push(format!("{:?} rows", config.row_detail));
    caps.join(", ")
}

async fn demo(
    listen: SocketAddr,
    web: Option<WebSource>,
    limits: WebLimitArgs,
    failing_shop: Option<u64>,
) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    raise_open_files_limit();
    let tenant = SimConfig::demo(Clock::system());
    if let Some(dep) = failing_shop {
        if tenant.shop(dep).is_none() {
            anyhow::bail!("--demo.failing-shop {dep}: the demo's shops are 9601..=9620");
        }
    }
    let sim = Simulator::new(tenant)
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await?;
    let mut config = sim.sim.config().exporter_config(sim.url().parse()?);
    if let Some(dep) = failing_shop {
        let id = opretail_exporter::model::TargetId::Shop(dep);
        sim.sim.set_target_fault(
            &id.to_string(),
            Some(opretail_exporter::simulator::Fault::Code(
                opretail_exporter::simulator::ID_NOT_ALLOWED,
            )),
        );
        tracing::info!(target = %id, "demo: the simulated gateway refuses every call naming this shop");
        config.shops = config
            .shops
            .iter()
            .cloned()
            .chain([opretail_exporter::config::ShopTarget::new(id)])
            .collect();
    }
    tracing::info!(gateway = %config.gateway.url, "demo: simulated gateway started");
    let options = exporter::Options {
        web,
        lifecycle: limits.enable_lifecycle,
        http: limits.limits(),
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

/// Runs a one-off command that needs the configuration of one account (`--account NAME`,
/// which may be left out when the file has one) and a client of its own (its call counters
/// are not served anywhere): exit 2 on a bad configuration or an account the file does not
/// have (the error lists its accounts). The command is given the account's configuration, its
/// client and its name (`None` in the single-account form).
fn one_off<F, Fut>(config_path: &std::path::Path, account: Option<&str>, command: F) -> ExitCode
where
    F: FnOnce(Config, opretail_exporter::client::Client, Option<String>) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    use anyhow::Context as _;
    let accounts = match Accounts::load(config_path) {
        Ok(accounts) => accounts,
        Err(errors) => {
            eprintln!("error: invalid configuration {}:\n{errors}", config_path.display());
            return ExitCode::from(2);
        }
    };
    let (config, name) = match accounts.pick(account) {
        Ok(a) => (a.config.clone(), a.name.clone()),
        Err(errors) => {
            eprintln!("error: {}: {errors}", config_path.display());
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
        Ok(rt) => rt.block_on(command(config, client, name)),
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
    use clap::{CommandFactory, Parser};

    use super::{log_colour, simulator_caps, Cli, Command, SimulateArgs};
    use opretail_exporter::model::Clock;
    use opretail_exporter::simulator::{RateRule, RowDetail};

    fn simulate(args: &[&str]) -> Result<SimulateArgs, clap::Error> {
        let cli = Cli::try_parse_from(["opretail-exporter", "simulate"].iter().chain(args))?;
        match cli.command {
            Some(Command::Simulate(args)) => Ok(args),
            other => panic!("not simulate: {other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn simulate_takes_its_switches() {
        let args = simulate(&[
            "--shops",
            "250",
            "--devices",
            "3",
            "--org-size",
            "50",
            "--rate-limit",
            "4",
            "--rate-rule",
            "per-second",
            "--end-hour-inclusive",
            "--max-answer-bytes",
            "65536",
            "--max-id-chars",
            "100",
            "--row-detail",
            "lean",
        ])
        .unwrap();
        let cfg = args.config(Clock::system());
        let sizes: Vec<usize> = cfg.orgs.iter().map(|o| o.shops.len()).collect();
        assert_eq!(sizes, [50; 5]);
        assert_eq!(cfg.devices.len(), 3);
        assert_eq!((cfg.rate_limit, cfg.rate_rule), (Some(4.0), RateRule::PerSecond));
        assert!(cfg.end_hour_inclusive);
        assert_eq!((cfg.max_answer_bytes, cfg.max_id_chars), (Some(65_536), Some(100)));
        assert_eq!(cfg.row_detail, RowDetail::Lean);
        assert_eq!(
            simulator_caps(&cfg),
            "id at most 100 characters (else 400001), answers at most 65536 bytes (else 400002), at most 4 requests/s (PerSecond, else -100), endhour inclusive, Lean rows"
        );
    }

    #[test]
    fn simulate_defaults_to_the_demo_tenant_without_caps() {
        let cfg = simulate(&[]).unwrap().config(Clock::system());
        assert_eq!(cfg.orgs.len(), 2, "the demo tenant");
        assert_eq!((cfg.rate_limit, cfg.rate_rule), (None, RateRule::TokenBucket));
        assert!(!cfg.end_hour_inclusive);
        assert_eq!((cfg.max_answer_bytes, cfg.max_id_chars), (None, None));
        assert_eq!(cfg.row_detail, RowDetail::Full);
        assert_eq!(simulator_caps(&cfg), "no caps, Full rows");
        let cfg = simulate(&["--shops", "250"]).unwrap().config(Clock::system());
        let sizes: Vec<usize> = cfg.orgs.iter().map(|o| o.shops.len()).collect();
        assert_eq!(sizes, [100, 100, 50], "organisations of 100 by default");
        assert!(simulate(&["--org-size", "10"]).is_err(), "--org-size needs --shops");
        assert!(simulate(&["--shops", "5", "--rate-rule", "leaky"]).is_err());
    }

    #[test]
    fn simulate_takes_the_convention_switches() {
        use opretail_exporter::simulator::{SimRateScale, SimRowTime};

        let cfg = simulate(&[]).unwrap().config(Clock::system());
        assert_eq!(
            (cfg.row_time, cfg.rate_scale),
            (SimRowTime::Start, SimRateScale::Percent)
        );
        assert!(cfg.renamed_fields.is_empty());
        assert_eq!((cfg.clock_skew, cfg.late_upload), (0, None));
        assert!(cfg
            .shops()
            .all(|s| !s.face_device && s.outside_counter && !s.late_uploader));
        assert!(cfg.devices.iter().all(|d| !d.face_device));

        let args = simulate(&[
            "--row-time",
            "end",
            "--rate-scale",
            "fraction",
            "--rename-field",
            "passPassengerFlow=passFlow",
            "--rename-field",
            "outFlowCount=walkOut",
            "--clock-skew",
            "-300",
            "--late-upload",
            "20m",
            "--face-device-shops",
            "2",
            "--no-outside-counter-shops",
            "3",
        ])
        .unwrap();
        let cfg = args.config(Clock::system());
        assert_eq!(
            (cfg.row_time, cfg.rate_scale),
            (SimRowTime::End, SimRateScale::Fraction)
        );
        assert_eq!(
            cfg.renamed_fields,
            [
                ("passPassengerFlow".to_owned(), "passFlow".to_owned()),
                ("outFlowCount".to_owned(), "walkOut".to_owned())
            ]
        );
        assert_eq!(cfg.clock_skew, -300);
        assert_eq!(cfg.late_upload, Some(std::time::Duration::from_secs(1200)));
        let shops: Vec<_> = cfg.shops().collect();
        assert_eq!(shops.len(), 20);
        let face: Vec<u64> = shops.iter().filter(|s| s.face_device).map(|s| s.dep_id).collect();
        assert_eq!(face, [9601, 9602]);
        let no_outside: Vec<u64> = shops.iter().filter(|s| !s.outside_counter).map(|s| s.dep_id).collect();
        assert_eq!(no_outside, [9618, 9619, 9620]);
        let late: Vec<u64> = shops.iter().filter(|s| s.late_uploader).map(|s| s.dep_id).collect();
        assert_eq!(late, [9605, 9610, 9615, 9620]);
        let face_devices: Vec<&str> = cfg
            .devices
            .iter()
            .filter(|d| d.face_device)
            .map(|d| d.mac.as_str())
            .collect();
        assert_eq!(
            face_devices,
            ["d47c44906f01", "d47c44906f02", "d47c44906f03", "d47c44906f04"]
        );

        assert_eq!(simulate(&["--clock-skew=3600"]).unwrap().clock_skew, 3600);
        for bad in [
            &["--rename-field", "passFlow"][..],
            &["--rename-field", "=x"],
            &["--rename-field", "x="],
            &["--late-upload", "soon"],
            &["--clock-skew", "ten"],
            &["--clock-skew", "99999999999"],
            &["--row-time", "middle"],
            &["--rate-scale", "permille"],
        ] {
            assert!(simulate(bad).is_err(), "{bad:?}");
        }
        // No late uploaders without --late-upload.
        let cfg = simulate(&["--face-device-shops", "100"])
            .unwrap()
            .config(Clock::system());
        assert!(cfg.shops().all(|s| s.face_device && !s.late_uploader));
        assert!(cfg.devices.iter().all(|d| d.face_device));
    }

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!log_colour(true, Some("1".into())));
        assert!(!log_colour(false, None), "a file or pipe gets no escape codes");
        assert!(!log_colour(false, Some("1".into())));
    }
}

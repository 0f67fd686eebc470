//! The scale benchmark: `cargo bench --bench scale` (or `scripts/bench.sh`, which also writes
//! BENCHMARKS.md).
//!
//! One run starts the simulated gateway with a large tenant (default 10,000 shops in
//! organisations of 100 and 20,000 devices) enforcing a request budget of `R` requests/s, and
//! the exporter against it configured with every shop (`S_` ids, batched by the exporter) and
//! every device at `requests_per_second: R`. It waits for `/-/ready` and reports:
//!
//! - the time of the full refresh (`opretail_poll_duration_seconds`) against the ideal,
//!   requests needed ÷ R, and the `-100 API_CALL_REPEAT` answers counted (must be 0);
//! - the exporter's RSS (VmRSS, VmHWM) and the CPU seconds the poll took;
//! - `/metrics` latency p50/p99 over keep-alive, plain and with `Accept-Encoding: gzip`, and
//!   the response sizes;
//! - the same latency for two peers serving exactly the exporter's value series: an
//!   encode-on-every-scrape server with the `prometheus` crate (in this process) and a Python
//!   `prometheus_client` server (`bench/python_peer.py`), as ratios.
//!
//! The table goes to stdout and to `target/bench/scale.md`. Sizes are overridable for a quick
//! smoke run: BENCH_SHOPS, BENCH_DEVICES, BENCH_RATE (requests/s), BENCH_IN_FLIGHT,
//! BENCH_WARMUP, BENCH_REQUESTS (measured scrapes per row), BENCH_MAX_SECONDS (time cap of the
//! measured scrapes of one row), BENCH_PYTHON (interpreter).
//!
//! Not part of `cargo test`: run without `--bench` (as `cargo test --all-targets` would) it
//! only prints how to run it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool: a failed assumption aborts the run

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Shop ids per gateway call: the exporter's default `max_ids_per_request`, written into the
/// configuration so that the ideal below matches.
const IDS_PER_REQUEST: u64 = 50;
/// Families the exporter renders from its snapshot: what the peers serve too.
const VALUE_PREFIXES: &[&str] = &["opretail_shop_", "opretail_device_", "opretail_target_"];

// Targets of the scale issue.
const TARGET_PYTHON_RATIO: f64 = 20.0;
const TARGET_ENCODE_RATIO: f64 = 5.0;
const TARGET_REFRESH_RATIO: f64 = 1.1;
const TARGET_RSS_MIB: f64 = 150.0;

struct Settings {
    shops: u64,
    devices: u64,
    rate: f64,
    in_flight: u64,
    warmup: usize,
    requests: usize,
    max_seconds: f64,
    python: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| anyhow!("{name}={v:?} is not valid")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Self> {
        Ok(Settings {
            shops: env_or("BENCH_SHOPS", 10_000)?,
            devices: env_or("BENCH_DEVICES", 20_000)?,
            rate: env_or("BENCH_RATE", 200.0)?,
            in_flight: env_or("BENCH_IN_FLIGHT", 8)?,
            warmup: env_or("BENCH_WARMUP", 50)?,
            requests: env_or("BENCH_REQUESTS", 300)?,
            max_seconds: env_or("BENCH_MAX_SECONDS", 60.0)?,
            python: env_or("BENCH_PYTHON", "python3".to_string())?,
        })
    }

    /// Gateway calls of one full refresh: shop ids in batches, one call per device.
    fn requests_needed(&self) -> u64 {
        self.shops.div_ceil(IDS_PER_REQUEST) + self.devices
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("the scale benchmark is heavy; run it with `cargo bench --bench scale` or scripts/bench.sh");
        return;
    }
    let result = (|| -> Result<String> {
        let settings = Settings::from_env()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(run(&settings))
    })();
    match result {
        Ok(table) => {
            println!("\n{table}");
            let dir = bench_dir();
            let path = dir.join("scale.md");
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, &table)) {
                eprintln!("error: cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
            eprintln!("wrote {}", path.display());
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// `target/bench` (or under CARGO_TARGET_DIR).
fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target"));
    target.join("bench")
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[scale] {}", msg.as_ref());
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// A child process killed when dropped.
struct ChildGuard {
    child: std::process::Child,
    name: &'static str,
}

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with JSON logs into `log`, and waits for the log line carrying `addr`.
fn spawn_logged(name: &'static str, args: &[&str], log: &Path) -> Result<(ChildGuard, SocketAddr)> {
    let file = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let child = Command::new(BIN)
        .args(args)
        .args(["--log.format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .with_context(|| format!("start {name}"))?;
    let mut guard = ChildGuard { child, name };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        guard.check_alive().with_context(|| format!("log: {}", log.display()))?;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(addr) = v["fields"]["addr"].as_str() {
                return Ok((guard, addr.parse()?));
            }
        }
        if Instant::now() > deadline {
            bail!("{name} did not log its address; log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exporter's configuration: every shop as an `S_` id, every device, at `rate`.
fn write_config(s: &Settings, gateway: SocketAddr, path: &Path) -> Result<()> {
    let mut y = String::with_capacity(64 * (s.shops + s.devices) as usize);
    writeln!(y, "gateway:")?;
    writeln!(y, "  url: http://{gateway}/m.api")?;
    writeln!(y, "  app_key: demo")?;
    writeln!(y, "  app_secret: demo-secret")?;
    writeln!(y, "  timeout: 30s")?;
    writeln!(y, "  max_ids_per_request: {IDS_PER_REQUEST}")?;
    writeln!(y, "  max_in_flight: {}", s.in_flight)?;
    writeln!(y, "  requests_per_second: {}", s.rate)?;
    writeln!(y, "poll_interval: 24h")?;
    writeln!(y, "stale_after: 48h")?;
    if s.shops > 0 {
        writeln!(y, "shops:")?;
        for i in 0..s.shops {
            writeln!(y, "  - id: S_{}", 100_001 + i)?;
        }
    }
    if s.devices > 0 {
        writeln!(y, "devices:")?;
        for i in 0..s.devices {
            // The simulator spreads devices round-robin over the shops.
            let dep = 100_001 + if s.shops == 0 { 0 } else { i % s.shops };
            writeln!(
                y,
                "  - mac: 0a{i:010x}\n    name: Counter {}\n    shop_id: \"{dep}\"",
                i + 1
            )?;
        }
    }
    std::fs::write(path, y).with_context(|| format!("write {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// (VmRSS, VmHWM) in MiB.
fn memory_mib(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| anyhow!("{name} missing from /proc/{pid}/status"))?;
        let kib: f64 = line[name.len()..]
            .split_whitespace()
            .next()
            .ok_or_else(|| anyhow!("bad {name} line"))?
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of the process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which is in parentheses and may contain spaces):
    // state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').ok_or_else(|| anyhow!("bad /proc/{pid}/stat"))? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11).ok_or_else(|| anyhow!("no utime"))?.parse()?;
    let stime: f64 = fields.get(12).ok_or_else(|| anyhow!("no stime"))?.parse()?;
    Ok((utime + stime) / ticks)
}

// ---------------------------------------------------------------------------------------------
// The exposition text
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Family {
    name: String,
    help: String,
    kind: String,
    /// Label names of the first sample (the same for every sample of a value family).
    labels: Vec<String>,
    /// Label values in the order of `labels`, and the value.
    samples: Vec<(Vec<String>, f64)>,
}

/// Parses the text exposition format: families in order, samples under their family (a sample
/// of a histogram, `name_bucket`, lands under the family declared before it).
fn parse_exposition(text: &str) -> Result<Vec<Family>> {
    let mut families: Vec<Family> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let family_of = |families: &mut Vec<Family>, index: &mut BTreeMap<String, usize>, name: &str| -> usize {
        *index.entry(name.to_string()).or_insert_with(|| {
            families.push(Family {
                name: name.to_string(),
                ..Family::default()
            });
            families.len() - 1
        })
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let i = family_of(&mut families, &mut index, name);
            families[i].help = unescape_help(help);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let i = family_of(&mut families, &mut index, name);
            families[i].kind = kind.to_string();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = parse_sample(line).with_context(|| format!("sample line {line:?}"))?;
        let i = match index.get(name) {
            Some(&i) => i,
            None => families
                .len()
                .checked_sub(1)
                .unwrap_or_else(|| family_of(&mut families, &mut index, name)),
        };
        let fam = &mut families[i];
        if fam.samples.is_empty() {
            fam.labels = labels.iter().map(|(k, _)| k.clone()).collect();
        }
        let values = fam
            .labels
            .iter()
            .map(|k| {
                labels
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        fam.samples.push((values, value));
    }
    Ok(families)
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

type Labels = Vec<(String, String)>;

/// `name{a="x",b="y"} value [timestamp]`.
fn parse_sample(line: &str) -> Result<(&str, Labels, f64)> {
    let name_end = line.find(['{', ' ']).ok_or_else(|| anyhow!("no value"))?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end = loop {
            // Skip separators.
            while chars.next_if(|&(_, c)| c == ',' || c == ' ').is_some() {}
            let Some(&(start, c)) = chars.peek() else {
                bail!("unterminated labels");
            };
            if c == '}' {
                break start + 1;
            }
            let eq = after[start..].find('=').ok_or_else(|| anyhow!("label without ="))? + start;
            let key = after[start..eq].trim().to_string();
            for (i, _) in chars.by_ref() {
                if i == eq {
                    break;
                }
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                bail!("label value not quoted");
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => bail!("unterminated escape"),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => bail!("unterminated label value"),
                }
            }
            labels.push((key, value));
        };
        rest = &after[end..];
    }
    let value_text = rest.split_whitespace().next().ok_or_else(|| anyhow!("no value"))?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse()?,
    };
    Ok((name, labels, value))
}

fn is_value_family(f: &Family) -> bool {
    f.kind == "gauge" && VALUE_PREFIXES.iter().any(|p| f.name.starts_with(p))
}

/// The value of an unlabelled sample, or the sum over every sample of `name` whose labels
/// include `filter`.
fn sum_of(families: &[Family], name: &str, filter: Option<(&str, &str)>) -> f64 {
    families
        .iter()
        .filter(|f| f.name == name)
        .flat_map(|f| {
            f.samples.iter().filter(move |(values, _)| match filter {
                None => true,
                Some((k, v)) => f.labels.iter().position(|l| l == k).is_some_and(|i| values[i] == v),
            })
        })
        .map(|(_, v)| *v)
        .sum::<f64>()
        + 0.0 // an empty sum is -0.0
}

fn count_samples(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

// ---------------------------------------------------------------------------------------------
// Scrape latency
// ---------------------------------------------------------------------------------------------

struct Scrapes {
    n: usize,
    p50: Duration,
    p99: Duration,
    /// Body bytes as received (compressed if the server compressed).
    bytes: usize,
    /// The `Content-Encoding` the server answered with.
    encoding: String,
    /// CPU seconds the server process spent per scrape, when it is a child we can read.
    cpu_per_scrape: Option<f64>,
}

impl Scrapes {
    fn gzip(&self) -> bool {
        self.encoding == "gzip"
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Sequential GETs of `url` over one keep-alive client: `warmup` unmeasured, then up to
/// `requests` measured (fewer if `max_seconds` runs out first, but at least 20).
async fn measure(s: &Settings, label: &str, url: &str, gzip: bool, server_pid: Option<(u32, f64)>) -> Result<Scrapes> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(1)
        .build()?;
    let get = || async {
        let mut req = client.get(url);
        if gzip {
            req = req.header(reqwest::header::ACCEPT_ENCODING, "gzip");
        }
        let started = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        let encoding = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_string();
        let body = resp.bytes().await?;
        let took = started.elapsed();
        if !status.is_success() {
            bail!("{url}: HTTP {status}");
        }
        if encoding == "gzip" && !body.starts_with(&[0x1f, 0x8b]) {
            bail!("{url}: Content-Encoding gzip but the body is not gzip");
        }
        Ok::<_, anyhow::Error>((took, body.len(), encoding))
    };
    // Warm-up, capped at a quarter of the measuring time. A server that answers a gzip request
    // uncompressed has no gzip figures: it is not measured again.
    let warm_deadline = Instant::now() + Duration::from_secs_f64(s.max_seconds / 4.0);
    for i in 0..s.warmup.max(1) {
        let (_, len, enc) = get().await?;
        if gzip && enc != "gzip" {
            progress(format!("{label} gzip: answered {enc}, no gzip figures"));
            return Ok(Scrapes {
                n: 0,
                p50: Duration::ZERO,
                p99: Duration::ZERO,
                bytes: len,
                encoding: enc,
                cpu_per_scrape: None,
            });
        }
        if i >= 4 && Instant::now() > warm_deadline {
            break;
        }
    }
    let cpu_before = match server_pid {
        Some((pid, ticks)) => Some(cpu_seconds(pid, ticks)?),
        None => None,
    };
    let mut times = Vec::with_capacity(s.requests);
    let (mut bytes, mut encoding) = (0, String::new());
    let deadline = Instant::now() + Duration::from_secs_f64(s.max_seconds);
    while times.len() < s.requests {
        let (took, len, enc) = get().await?;
        times.push(took);
        bytes = len;
        encoding = enc;
        if times.len() >= 20 && Instant::now() > deadline {
            break;
        }
    }
    let cpu_per_scrape = match (server_pid, cpu_before) {
        (Some((pid, ticks)), Some(before)) => Some((cpu_seconds(pid, ticks)? - before) / times.len() as f64),
        _ => None,
    };
    times.sort();
    let r = Scrapes {
        n: times.len(),
        p50: percentile(&times, 0.50),
        p99: percentile(&times, 0.99),
        bytes,
        encoding,
        cpu_per_scrape,
    };
    progress(format!(
        "{label}{}: n={} p50={} p99={} body={} ({})",
        if gzip { " gzip" } else { "" },
        r.n,
        ms(r.p50),
        ms(r.p99),
        mib(r.bytes),
        r.encoding
    ));
    Ok(r)
}

/// One scrape with `Accept-Encoding: gzip`: if the answer is gzip, it must decompress to as
/// many series as the plain text had.
async fn check_gzip(url: &str, plain_series: usize) -> Result<String> {
    use std::io::Read as _;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await?;
    let gzip = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let body = resp.bytes().await?;
    if !gzip {
        return Ok("not compressed (no Content-Encoding: gzip)".into());
    }
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .context("the gzip answer does not decompress")?;
    let series = count_samples(&text);
    if series != plain_series {
        bail!("the gzip answer has {series} series, the plain one {plain_series}");
    }
    Ok(format!(
        "decompresses to {} with {series} series, as the plain answer",
        mib(text.len())
    ))
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("{url}: HTTP {status}");
    }
    Ok(text)
}

// ---------------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------------

/// An encode-on-every-scrape server with the `prometheus` crate, on its own runtime thread.
fn start_encode_peer(families: &[&Family]) -> Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    use prometheus::{GaugeVec, Opts, Registry};
    let registry = Registry::new();
    for fam in families {
        let names: Vec<&str> = fam.labels.iter().map(String::as_str).collect();
        let gauge = GaugeVec::new(Opts::new(fam.name.clone(), fam.help.clone()), &names)?;
        for (values, v) in &fam.samples {
            let values: Vec<&str> = values.iter().map(String::as_str).collect();
            gauge.with_label_values(&values).set(*v);
        }
        registry.register(Box::new(gauge))?;
    }
    let registry = Arc::new(registry);
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name("encode-peer".into()).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("peer runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("peer listener");
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(
                        |axum::extract::State(registry): axum::extract::State<Arc<prometheus::Registry>>| async move {
                            use prometheus::Encoder as _;
                            let encoder = prometheus::TextEncoder::new();
                            let mut body = Vec::new();
                            encoder.encode(&registry.gather(), &mut body).expect("encode");
                            (
                                [(axum::http::header::CONTENT_TYPE, encoder.format_type().to_string())],
                                body,
                            )
                        },
                    ),
                )
                .with_state(registry);
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    })?;
    Ok((addr, stop_tx))
}

/// The series as JSON for `bench/python_peer.py`.
fn write_series_json(families: &[&Family], path: &Path) -> Result<()> {
    let json: Vec<serde_json::Value> = families
        .iter()
        .map(|f| {
            let samples: Vec<serde_json::Value> = f
                .samples
                .iter()
                .map(|(values, v)| {
                    let mut row: Vec<serde_json::Value> = values.iter().map(|x| serde_json::json!(x)).collect();
                    row.push(serde_json::json!(v));
                    serde_json::Value::Array(row)
                })
                .collect();
            serde_json::json!({"name": f.name, "help": f.help, "labels": f.labels, "samples": samples})
        })
        .collect();
    std::fs::write(path, serde_json::to_vec(&json)?)?;
    Ok(())
}

struct PythonPeer {
    guard: ChildGuard,
    addr: String,
    banner: String,
}

fn start_python_peer(s: &Settings, series: &Path) -> Result<PythonPeer> {
    let script = Path::new(MANIFEST_DIR).join("bench/python_peer.py");
    let mut child = Command::new(&s.python)
        .arg(&script)
        .arg(series)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {} {}", s.python, script.display()))?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let guard = ChildGuard {
        child,
        name: "python peer",
    };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let banner = line.trim().to_string();
    let addr = banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .ok_or_else(|| anyhow!("python peer did not print its address (got {banner:?}); is prometheus_client installed? (python3 -m pip install --user prometheus_client)"))?
        .to_string();
    Ok(PythonPeer { guard, addr, banner })
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

async fn run(s: &Settings) -> Result<String> {
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    let ticks = clock_ticks();
    let needed = s.requests_needed();
    let ideal = needed as f64 / s.rate;
    progress(format!(
        "{} shops, {} devices: {needed} gateway calls at {} requests/s, ideal refresh {ideal:.1} s",
        s.shops, s.devices, s.rate
    ));

    // The gateway.
    let shops = s.shops.to_string();
    let devices = s.devices.to_string();
    let rate = s.rate.to_string();
    let (sim, sim_addr) = spawn_logged(
        "simulator",
        &[
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--shops",
            &shops,
            "--devices",
            &devices,
            "--rate-limit",
            &rate,
        ],
        &dir.join("simulator.log"),
    )?;
    progress(format!("simulator at {sim_addr} (pid {})", sim.pid()));

    // The exporter.
    let config = dir.join("scale-config.yaml");
    write_config(s, sim_addr, &config)?;
    let config_arg = config.to_string_lossy().into_owned();
    let launched = Instant::now();
    let (mut exporter, addr) = spawn_logged(
        "exporter",
        &["--config", &config_arg, "--web.listen-address", "127.0.0.1:0"],
        &dir.join("exporter.log"),
    )?;
    let pid = exporter.pid();
    // The first poll starts as the exporter starts serving: the CPU spent until here is
    // start-up (reading the configuration), not polling.
    let cpu_startup = cpu_seconds(pid, ticks)?;
    progress(format!(
        "exporter at {addr} (pid {pid}), start-up CPU {cpu_startup:.2} s"
    ));

    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let ready_url = format!("http://{addr}/-/ready");
    let timeout = Duration::from_secs_f64(ideal * 3.0 + 120.0);
    let mut last_note = Instant::now();
    loop {
        exporter.check_alive()?;
        if let Ok(resp) = client.get(&ready_url).send().await {
            if resp.status().is_success() {
                break;
            }
        }
        if launched.elapsed() > timeout {
            bail!("the exporter was not ready after {:?}", launched.elapsed());
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            progress(format!("polling… {:.0} s", launched.elapsed().as_secs_f64()));
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wall_to_ready = launched.elapsed().as_secs_f64();
    let cpu_ready = cpu_seconds(pid, ticks)?;
    let (rss_ready, hwm_ready) = memory_mib(pid)?;
    let cpu_poll = cpu_ready - cpu_startup;
    progress(format!(
        "ready after {wall_to_ready:.1} s; poll CPU {cpu_poll:.2} s; RSS {rss_ready:.1} MiB (peak {hwm_ready:.1})"
    ));

    let metrics_url = format!("http://{addr}/metrics");
    let text = get_text(&client, &metrics_url).await?;
    let families = parse_exposition(&text)?;
    let poll_duration = sum_of(&families, "opretail_poll_duration_seconds", None);
    let api_requests = sum_of(&families, "opretail_api_requests_total", None);
    let api_errors = sum_of(&families, "opretail_api_errors_total", None);
    let errors_100 = sum_of(&families, "opretail_api_errors_total", Some(("code", "-100")));
    let retries = sum_of(&families, "opretail_api_retries_total", None);
    let targets_down = families
        .iter()
        .filter(|f| f.name == "opretail_target_up")
        .flat_map(|f| f.samples.iter())
        .filter(|(_, v)| *v != 1.0)
        .count();
    let series_total = count_samples(&text);
    let values: Vec<&Family> = families.iter().filter(|f| is_value_family(f)).collect();
    let value_series: usize = values.iter().map(|f| f.samples.len()).sum();
    progress(format!(
        "{series_total} series ({value_series} value series); poll {poll_duration:.1} s, {api_requests} requests, {errors_100} × -100"
    ));

    let gzip_check = check_gzip(&metrics_url, series_total).await?;
    progress(format!("gzip answer: {gzip_check}"));

    // The exporter's scrapes.
    let ex_plain = measure(s, "exporter", &metrics_url, false, Some((pid, ticks))).await?;
    let ex_gzip = measure(s, "exporter", &metrics_url, true, Some((pid, ticks))).await?;
    let (rss_after, hwm_after) = memory_mib(pid)?;
    drop(exporter);
    drop(sim);

    // Encode-on-scrape peer.
    progress("building the encode-on-scrape peer");
    let (peer_addr, stop_peer) = start_encode_peer(&values)?;
    let peer_url = format!("http://{peer_addr}/metrics");
    let peer_series = count_samples(&get_text(&client, &peer_url).await?);
    let enc_plain = measure(s, "encode-on-scrape", &peer_url, false, None).await?;
    let enc_gzip = measure(s, "encode-on-scrape", &peer_url, true, None).await?;
    let _ = stop_peer.send(());

    // Python peer.
    progress("starting the Python peer");
    let series_json = dir.join("scale-series.json");
    write_series_json(&values, &series_json)?;
    let py = start_python_peer(s, &series_json)?;
    progress(format!("python peer: {}", py.banner));
    let py_url = format!("http://{}/metrics", py.addr);
    let py_series = count_samples(&get_text(&client, &py_url).await?);
    let py_pid = Some((py.guard.pid(), ticks));
    let py_plain = measure(s, "python", &py_url, false, py_pid).await?;
    let py_gzip = measure(s, "python", &py_url, true, py_pid).await?;
    let py_banner = py.banner.clone();
    drop(py);

    // The table.
    let refresh_ratio = poll_duration / ideal;
    let ratio_py = py_plain.p50.as_secs_f64() / ex_plain.p50.as_secs_f64();
    let ratio_enc = enc_plain.p50.as_secs_f64() / ex_plain.p50.as_secs_f64();
    let verdict = |ok: bool| if ok { "**pass**" } else { "**FAIL**" };
    let mut t = String::new();
    writeln!(
        t,
        "Scale benchmark: {} shops (`S_` ids, {IDS_PER_REQUEST} per call) and {} devices against the simulated gateway enforcing {} requests/s; exporter `requests_per_second: {}`, `max_in_flight: {}`.\n",
        s.shops, s.devices, s.rate, s.rate, s.in_flight
    )?;
    writeln!(t, "### Targets\n")?;
    writeln!(t, "| target | measured | result |")?;
    writeln!(t, "|---|---|---|")?;
    writeln!(
        t,
        "| scrape p50 ≥ {TARGET_PYTHON_RATIO}× faster than Python `prometheus_client` (plain) | {ratio_py:.1}× ({} vs {}) | {} |",
        ms(py_plain.p50),
        ms(ex_plain.p50),
        verdict(ratio_py >= TARGET_PYTHON_RATIO)
    )?;
    writeln!(
        t,
        "| scrape p50 ≥ {TARGET_ENCODE_RATIO}× faster than encode-on-scrape (plain) | {ratio_enc:.1}× ({} vs {}) | {} |",
        ms(enc_plain.p50),
        ms(ex_plain.p50),
        verdict(ratio_enc >= TARGET_ENCODE_RATIO)
    )?;
    writeln!(
        t,
        "| full refresh ≤ {TARGET_REFRESH_RATIO}× ideal | {refresh_ratio:.3}× ({poll_duration:.1} s vs {ideal:.1} s) | {} |",
        verdict(refresh_ratio <= TARGET_REFRESH_RATIO)
    )?;
    writeln!(
        t,
        "| zero -100 API_CALL_REPEAT at the configured rate | {errors_100} | {} |",
        verdict(errors_100 == 0.0)
    )?;
    writeln!(
        t,
        "| peak RSS (VmHWM) < {TARGET_RSS_MIB} MiB | {hwm_after:.1} MiB at {series_total} series | {} |",
        verdict(hwm_after < TARGET_RSS_MIB)
    )?;

    writeln!(t, "\n### Full refresh\n")?;
    writeln!(t, "| figure | value |")?;
    writeln!(t, "|---|---|")?;
    writeln!(
        t,
        "| gateway calls needed | {needed} ({} shop batches + {} devices) |",
        s.shops.div_ceil(IDS_PER_REQUEST),
        s.devices
    )?;
    writeln!(t, "| ideal (calls ÷ {} requests/s) | {ideal:.1} s |", s.rate)?;
    writeln!(
        t,
        "| refresh (`opretail_poll_duration_seconds`) | {poll_duration:.1} s |"
    )?;
    writeln!(
        t,
        "| refresh ÷ ideal | {refresh_ratio:.3} (the exporter's limiter and the gateway both allow a burst of one second's worth, so a refresh can finish up to 1 s under the ideal) |"
    )?;
    writeln!(
        t,
        "| launch to `/-/ready` (wall, bench's view) | {wall_to_ready:.1} s |"
    )?;
    writeln!(t, "| requests sent (`opretail_api_requests_total`) | {api_requests} |")?;
    writeln!(t, "| retries (`opretail_api_retries_total`) | {retries} |")?;
    writeln!(t, "| errors, all codes (`opretail_api_errors_total`) | {api_errors} |")?;
    writeln!(t, "| of which -100 API_CALL_REPEAT | {errors_100} |")?;
    writeln!(
        t,
        "| targets down after the poll (`opretail_target_up != 1`) | {targets_down} |"
    )?;
    writeln!(
        t,
        "| CPU of the poll (utime+stime, ready − start-up) | {cpu_poll:.2} s |"
    )?;
    writeln!(
        t,
        "| CPU of start-up before the poll (not counted above) | {cpu_startup:.2} s |"
    )?;
    writeln!(
        t,
        "| series on `/metrics` | {series_total} ({value_series} value series) |"
    )?;
    writeln!(t, "| `/metrics` with `Accept-Encoding: gzip` | {gzip_check} |")?;
    writeln!(
        t,
        "| RSS when ready (VmRSS / VmHWM) | {rss_ready:.1} / {hwm_ready:.1} MiB |"
    )?;
    writeln!(
        t,
        "| RSS after the scrapes below (VmRSS / VmHWM) | {rss_after:.1} / {hwm_after:.1} MiB |"
    )?;

    writeln!(t, "\n### `/metrics` latency (sequential, keep-alive)\n")?;
    writeln!(
        t,
        "| server | encoding asked | n | p50 | p99 | body | answered | server CPU per scrape | p50 ÷ exporter's |"
    )?;
    writeln!(t, "|---|---|---|---|---|---|---|---|---|")?;
    let rows: [(&str, &Scrapes, &Scrapes); 3] = [
        ("opretail-exporter", &ex_plain, &ex_gzip),
        ("encode-on-scrape (`prometheus` crate)", &enc_plain, &enc_gzip),
        ("Python `prometheus_client`", &py_plain, &py_gzip),
    ];
    for (name, plain, gz) in rows {
        for (asked, r, base) in [("identity", plain, &ex_plain), ("gzip", gz, &ex_gzip)] {
            let absent = asked == "gzip" && !r.gzip();
            let ratio = if name == "opretail-exporter" {
                "1".to_string()
            } else if absent || (asked == "gzip" && !base.gzip()) {
                "—".to_string()
            } else {
                format!("{:.1}×", r.p50.as_secs_f64() / base.p50.as_secs_f64())
            };
            if absent {
                writeln!(
                    t,
                    "| {name} | gzip | — | — | — | — | uncompressed (no gzip support): absent | — | — |"
                )?;
                continue;
            }
            writeln!(
                t,
                "| {name} | {asked} | {} | {} | {} | {} | {} | {} | {ratio} |",
                r.n,
                ms(r.p50),
                ms(r.p99),
                mib(r.bytes),
                r.encoding,
                r.cpu_per_scrape
                    .map_or("—".to_string(), |c| format!("{:.1} ms", c * 1000.0)),
            )?;
        }
    }
    writeln!(
        t,
        "\nSeries served: exporter {series_total} (value series {value_series} + health), encode-on-scrape {peer_series}, Python {py_series} (default process/platform/GC collectors unregistered). Python peer: {}.",
        py_banner
            .split_whitespace()
            .filter(|w| !w.starts_with("addr="))
            .collect::<Vec<_>>()
            .join(" ")
    )?;
    writeln!(
        t,
        "Each row: up to {} warm-up (at most a quarter of the cap) then up to {} measured scrapes, capped at {:.0} s (at least 20); p99 of fewer than 100 scrapes is close to the maximum. Python's server answers HTTP/1.0-style (a new connection per scrape). CPU per poll counts from the exporter's first log line (\"serving /metrics\", logged as the poll starts) to readiness; start-up before it is listed separately and is small. Server CPU per scrape is the server process's utime+stime over the measured scrapes ÷ n (clock ticks of 10 ms, so small values are coarse); the encode-on-scrape peer runs on a thread of the bench process, where it cannot be told apart from the client. Client, servers and the simulator share the machine's cores.",
        s.warmup, s.requests, s.max_seconds
    )?;
    Ok(t)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn mib(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

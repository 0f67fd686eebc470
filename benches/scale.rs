//! The scale benchmark: `cargo bench --bench scale` (or `scripts/bench.sh`, which also writes
//! BENCHMARKS.md).
//!
//! One run measures three tenants, each against its own simulated gateway (`simulate`)
//! enforcing a request budget of `R` requests in any one second (`--rate-rule per-second`, the
//! strict reading of the gateway's limit), with the exporter at `requests_per_second: R`:
//!
//! - **`S_` ids**: 10,000 shops configured as `S_` ids (batched 50 a call) and 20,000 devices.
//!   Besides the refreshes, `/metrics` latency p50/p99 over keep-alive, plain and with
//!   `Accept-Encoding: gzip`, against two peers serving exactly the exporter's value series: an
//!   encode-on-every-scrape server with the `prometheus` crate (in this process) and a Python
//!   `prometheus_client` server (`bench/python_peer.py`), as ratios. And the status page at
//!   that size (30,000 targets): one page of `/`, the same filtered by text (a walk over every
//!   row), and one page of `/api/v1/targets`, p50/p99 over keep-alive.
//! - **organisations**: the same 10,000 shops as 100 organisations `O_2001…O_2100` of 100
//!   shops, configured by their 100 `O_` ids, and the 20,000 devices; every gateway setting at
//!   its default but the rate. Also the whole-day baseline: the bytes the same ids download as
//!   whole-day calls of 50 ids (no `starthour`/`endhour`, what the exporter asked before), made
//!   with the library's client against the same simulator.
//! - **one organisation** of 10,000 shops, configured as `O_2001` alone, no devices.
//! - **baseline**: the `S_` ids tenant (shops and devices) with `baseline.weeks: 4`: after its
//!   first refresh, the first fill of the walk-in history (shop batches × 28 whole-day calls,
//!   made in the time the polls leave free), as the exporter logs it (`history calls
//!   complete`: days kept and the history's own size), and the exporter's RSS once it is done.
//!   The other tenants run with `baseline.weeks: 0`, so their figures are the hourly polling's.
//!
//! For each, the first refresh (from start to the first "poll complete" log line) and a second
//! one triggered by `POST /-/reload` with the same file (a reload makes the next poll a full
//! first round at once): gateway calls, requests, splits, bytes downloaded by each method,
//! `-100 API_CALL_REPEAT` answers, refresh time against the ideal (requests ÷ R), targets down,
//! shops and devices with values, and the exporter's peak RSS (VmHWM). For the one
//! organisation, a third refresh is made in this process with the library (simulator and
//! exporter on one manual clock moved on by an hour), because a reload starts the exporter's
//! learning afresh and only the next hour shows the organisation polled through its shops.
//!
//! The tables go to stdout and to `target/bench/scale.md`. Sizes are overridable for a quick
//! smoke run: BENCH_SHOPS, BENCH_DEVICES, BENCH_ORG_SIZE (shops per organisation of the
//! organisations tenant), BENCH_BIG_ORG (shops of the one organisation, default BENCH_SHOPS),
//! BENCH_RATE (requests/s), BENCH_IN_FLIGHT (the `S_` tenant's `max_in_flight`), BENCH_WARMUP,
//! BENCH_REQUESTS (measured scrapes per row), BENCH_MAX_SECONDS (time cap of the measured
//! scrapes of one row), BENCH_PYTHON (interpreter), BENCH_SCENARIOS (comma-separated subset of
//! `shops,orgs,big-org,baseline`; targets of a scenario left out are not judged).
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
/// `S_` tenant's configuration so that the ideal below matches; also the batch of the
/// whole-day baseline.
const IDS_PER_REQUEST: u64 = 50;
/// The exporter's defaults the expected call counts are worked out with.
const DEFAULT_MAX_ROWS: u64 = 2000;
const DEFAULT_MAX_ID_CHARS: u64 = 500;
/// Families the exporter renders from its snapshot: what the peers serve too.
const VALUE_PREFIXES: &[&str] = &["opretail_shop_", "opretail_device_", "opretail_target_"];
const METHOD_SHOPS: &str = "open.passengerflow.getManyShopsPassengerIndicatorData";
const METHOD_DEVICES: &str = "open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator";
/// First organisation and first dep id of `simulate --shops`.
const FIRST_ORG: u64 = 2001;
const FIRST_DEP: u64 = 100_001;

// Targets of the scale issues.
const TARGET_PYTHON_RATIO: f64 = 20.0;
const TARGET_ENCODE_RATIO: f64 = 5.0;
const TARGET_REFRESH_RATIO: f64 = 1.05;
const TARGET_RSS_MIB: f64 = 100.0;
const TARGET_WHOLE_DAY_RATIO: f64 = 10.0;
/// Weeks of the baseline scenario's history (the default of `baseline.weeks`).
const BASELINE_WEEKS: u64 = 4;
/// One page of the status page or its JSON, at the largest scenario.
const TARGET_STATUS_PAGE_SECONDS: f64 = 1.0;

struct Settings {
    shops: u64,
    devices: u64,
    org_size: u64,
    big_org: u64,
    rate: f64,
    in_flight: u64,
    warmup: usize,
    requests: usize,
    max_seconds: f64,
    python: String,
    scenarios: Vec<String>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| anyhow!("{name}={v:?} is not valid")),
        _ => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Result<Self> {
        let shops = env_or("BENCH_SHOPS", 10_000)?;
        let scenarios: String = env_or("BENCH_SCENARIOS", "shops,orgs,big-org,baseline".to_string())?;
        let scenarios: Vec<String> = scenarios.split(',').map(|s| s.trim().to_string()).collect();
        if let Some(bad) = scenarios
            .iter()
            .find(|s| !["shops", "orgs", "big-org", "baseline"].contains(&s.as_str()))
        {
            bail!("BENCH_SCENARIOS: unknown scenario {bad:?} (shops, orgs, big-org, baseline)");
        }
        let s = Settings {
            shops,
            devices: env_or("BENCH_DEVICES", 20_000)?,
            org_size: env_or("BENCH_ORG_SIZE", 100)?,
            big_org: env_or("BENCH_BIG_ORG", shops)?,
            rate: env_or("BENCH_RATE", 200.0)?,
            in_flight: env_or("BENCH_IN_FLIGHT", 8)?,
            warmup: env_or("BENCH_WARMUP", 50)?,
            requests: env_or("BENCH_REQUESTS", 300)?,
            max_seconds: env_or("BENCH_MAX_SECONDS", 60.0)?,
            python: env_or("BENCH_PYTHON", "python3".to_string())?,
            scenarios,
        };
        if s.shops == 0 || s.org_size == 0 || s.big_org == 0 || s.rate < 1.0 {
            bail!("BENCH_SHOPS, BENCH_ORG_SIZE and BENCH_BIG_ORG must be at least 1, BENCH_RATE at least 1");
        }
        Ok(s)
    }

    fn wants(&self, scenario: &str) -> bool {
        self.scenarios.iter().any(|s| s == scenario)
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

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// One tenant: what the simulated gateway serves and what the exporter is configured with.
struct Scenario {
    /// Short name for files and progress lines.
    tag: &'static str,
    /// Column heading.
    title: String,
    /// `simulate --shops --org-size --devices`.
    sim_shops: u64,
    sim_org_size: u64,
    sim_devices: u64,
    /// The configured shop ids (`S_…` / `O_…`).
    ids: Vec<String>,
    /// Devices configured (the simulator's first ones).
    devices: u64,
    /// `max_ids_per_request` and `max_in_flight` written into the configuration (otherwise
    /// the defaults).
    max_ids: Option<u64>,
    in_flight: Option<u64>,
    /// Gateway calls the first and the second refresh should take by design.
    expected: [u64; 2],
    /// `baseline.weeks` written into the configuration.
    baseline_weeks: u64,
}

impl Scenario {
    /// Every shop as an `S_` id, every device (the first scale scenario).
    fn shop_ids(s: &Settings) -> Self {
        let calls = s.shops.div_ceil(IDS_PER_REQUEST) + s.devices;
        Scenario {
            tag: "shops",
            title: "`S_` ids".into(),
            sim_shops: s.shops,
            sim_org_size: s.org_size,
            sim_devices: s.devices,
            ids: (0..s.shops).map(|i| format!("S_{}", FIRST_DEP + i)).collect(),
            devices: s.devices,
            max_ids: Some(IDS_PER_REQUEST),
            in_flight: Some(s.in_flight),
            expected: [calls, calls],
            baseline_weeks: 0,
        }
    }

    /// The shops as organisations of `org_size`, configured by their `O_` ids, and every
    /// device; gateway settings at their defaults.
    fn organisations(s: &Settings) -> Self {
        let orgs = s.shops.div_ceil(s.org_size);
        let sizes: Vec<u64> = (0..orgs).map(|o| (s.shops - o * s.org_size).min(s.org_size)).collect();
        let ids: Vec<String> = (0..orgs).map(|o| format!("O_{}", FIRST_ORG + o)).collect();
        let packed = packed_calls(ids.iter().map(String::as_str).zip(sizes.iter().copied()));
        Scenario {
            tag: "orgs",
            title: "organisations".into(),
            sim_shops: s.shops,
            sim_org_size: s.org_size,
            sim_devices: s.devices,
            ids,
            devices: s.devices,
            max_ids: None,
            in_flight: None,
            expected: [orgs + s.devices, packed + s.devices],
            baseline_weeks: 0,
        }
    }

    /// One organisation of `big_org` shops, configured as `O_2001` alone, no devices.
    fn one_organisation(s: &Settings) -> Self {
        Scenario {
            tag: "big-org",
            title: "one organisation".into(),
            sim_shops: s.big_org,
            sim_org_size: s.big_org,
            sim_devices: 0,
            ids: vec![format!("O_{FIRST_ORG}")],
            devices: 0,
            max_ids: None,
            in_flight: None,
            // Alone while its size is unknown; then too big for one call, so through its
            // shops (50 `S_` ids a call).
            expected: [1, via_shops_calls(s.big_org)],
            baseline_weeks: 0,
        }
    }

    /// The `S_` ids tenant with a baseline over [`BASELINE_WEEKS`] weeks.
    fn with_baseline(s: &Settings) -> Self {
        Scenario {
            tag: "baseline",
            title: format!("`S_` ids, {BASELINE_WEEKS}-week baseline"),
            baseline_weeks: BASELINE_WEEKS,
            ..Scenario::shop_ids(s)
        }
    }

    /// History calls the first fill takes by design: every shop batch (50 `S_` ids) once for
    /// each of the 7 × weeks days.
    fn history_calls(&self) -> u64 {
        (self.ids.len() as u64).div_ceil(self.max_ids.unwrap_or(IDS_PER_REQUEST)) * 7 * self.baseline_weeks
    }

    fn shops_configured(&self) -> u64 {
        self.sim_shops
    }

    /// The configuration, at `rate`: only the settings named here differ from the defaults.
    fn write_config(&self, rate: f64, gateway: SocketAddr, path: &Path) -> Result<()> {
        let mut y = String::with_capacity(16 * self.ids.len() + 64 * self.devices as usize + 512);
        writeln!(y, "gateway:")?;
        writeln!(y, "  url: http://{gateway}/m.api")?;
        writeln!(y, "  app_key: demo")?;
        writeln!(y, "  app_secret: demo-secret")?;
        writeln!(y, "  timeout: 30s")?;
        if let Some(n) = self.max_ids {
            writeln!(y, "  max_ids_per_request: {n}")?;
        }
        if let Some(n) = self.in_flight {
            writeln!(y, "  max_in_flight: {n}")?;
        }
        writeln!(y, "  requests_per_second: {rate}")?;
        writeln!(y, "poll_interval: 24h")?;
        writeln!(y, "stale_after: 48h")?;
        writeln!(y, "baseline:")?;
        writeln!(y, "  weeks: {}", self.baseline_weeks)?;
        writeln!(y, "shops:")?;
        for id in &self.ids {
            writeln!(y, "  - id: {id}")?;
        }
        if self.devices > 0 {
            writeln!(y, "devices:")?;
            for i in 0..self.devices {
                // The simulator spreads devices round-robin over the shops.
                let dep = FIRST_DEP + i % self.sim_shops;
                writeln!(
                    y,
                    "  - mac: 0a{i:010x}\n    name: Counter {}\n    shop_id: \"{dep}\"",
                    i + 1
                )?;
            }
        }
        std::fs::write(path, y).with_context(|| format!("write {}", path.display()))
    }
}

/// Calls of ids with known row counts packed in order under the default limits (50 ids, 500
/// characters of `id`, 2,000 rows), as the design says: a greedy fill, one id too big alone.
fn packed_calls<'a>(ids: impl Iterator<Item = (&'a str, u64)>) -> u64 {
    let (mut calls, mut n, mut chars, mut rows) = (0u64, 0u64, 0u64, 0u64);
    for (id, size) in ids {
        let len = id.len() as u64;
        if size > DEFAULT_MAX_ROWS {
            calls += 1;
            continue;
        }
        let fits = n < IDS_PER_REQUEST && chars + 1 + len <= DEFAULT_MAX_ID_CHARS && rows + size <= DEFAULT_MAX_ROWS;
        if n > 0 && !fits {
            calls += 1;
            (n, chars, rows) = (0, 0, 0);
        }
        chars += if n == 0 { len } else { len + 1 };
        n += 1;
        rows += size;
    }
    calls + u64::from(n > 0)
}

/// Calls of an organisation of `shops` asked through its `S_` ids (a single call if it fits).
fn via_shops_calls(shops: u64) -> u64 {
    if shops <= DEFAULT_MAX_ROWS {
        return 1;
    }
    let ids: Vec<String> = (0..shops).map(|i| format!("S_{}", FIRST_DEP + i)).collect();
    packed_calls(ids.iter().map(|id| (id.as_str(), 1)))
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
// Refreshes
// ---------------------------------------------------------------------------------------------

/// What the exporter logs when a poll completes (`poll complete`), or the library's report.
#[derive(Debug, Clone, Default)]
struct PollLine {
    hour: String,
    calls: u64,
    failed: u64,
    splits: u64,
    shops: u64,
    devices: u64,
}

/// The priority (full refresh) `poll complete` lines of an exporter's JSON log, in order.
fn priority_polls(log: &Path) -> Vec<PollLine> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["fields"]["message"] == "poll complete" && v["fields"]["priority"] == true)
        .map(|v| {
            let f = &v["fields"];
            let n = |k: &str| f[k].as_u64().unwrap_or(0);
            PollLine {
                hour: f["hour"].as_str().unwrap_or("").to_string(),
                calls: n("calls"),
                failed: n("failed"),
                splits: n("splits"),
                shops: n("shops"),
                devices: n("devices"),
            }
        })
        .collect()
}

/// The exporter's cumulative call counters.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    requests: f64,
    shop_bytes: f64,
    /// The part of `shop_bytes` that answered day-figure calls.
    day_bytes: f64,
    device_bytes: f64,
    splits: f64,
    errors: f64,
    errors_100: f64,
    retries: f64,
}

impl Counters {
    fn of(f: &[Family]) -> Self {
        Counters {
            requests: sum_of(f, "opretail_api_requests_total", None),
            shop_bytes: sum_of(f, "opretail_api_response_bytes_total", Some(("method", METHOD_SHOPS))),
            day_bytes: sum_of(
                f,
                "opretail_api_day_figures_response_bytes_total",
                Some(("method", METHOD_SHOPS)),
            ),
            device_bytes: sum_of(f, "opretail_api_response_bytes_total", Some(("method", METHOD_DEVICES))),
            splits: sum_of(f, "opretail_api_batch_splits_total", None),
            errors: sum_of(f, "opretail_api_errors_total", None),
            errors_100: sum_of(f, "opretail_api_errors_total", Some(("code", "-100"))),
            retries: sum_of(f, "opretail_api_retries_total", None),
        }
    }

    fn since(self, before: Counters) -> Counters {
        Counters {
            requests: self.requests - before.requests,
            shop_bytes: self.shop_bytes - before.shop_bytes,
            day_bytes: self.day_bytes - before.day_bytes,
            device_bytes: self.device_bytes - before.device_bytes,
            splits: self.splits - before.splits,
            errors: self.errors - before.errors,
            errors_100: self.errors_100 - before.errors_100,
            retries: self.retries - before.retries,
        }
    }
}

/// The figures of one full refresh.
struct Refresh {
    /// Column heading.
    title: String,
    poll: PollLine,
    /// Counters moved by this refresh.
    delta: Counters,
    /// Gateway calls the design says this refresh takes.
    expected: u64,
    /// `opretail_refresh_duration_seconds` and `opretail_refresh_requests`.
    seconds: f64,
    refresh_requests: f64,
    targets_down: usize,
    shops_with_values: usize,
    devices_with_values: usize,
    /// (VmRSS, VmHWM) of the exporter right after the refresh; `None` in this process.
    memory: Option<(f64, f64)>,
}

impl Refresh {
    /// What the figures of `families` (scraped right after the refresh) say, counters taken
    /// since `before`.
    fn of(
        title: String,
        poll: PollLine,
        families: &[Family],
        before: Counters,
        expected: u64,
        memory: Option<(f64, f64)>,
    ) -> Self {
        let count = |name: &str| {
            families
                .iter()
                .filter(|f| f.name == name)
                .map(|f| f.samples.len())
                .sum()
        };
        Refresh {
            title,
            poll,
            delta: Counters::of(families).since(before),
            expected,
            seconds: sum_of(families, "opretail_refresh_duration_seconds", None),
            refresh_requests: sum_of(families, "opretail_refresh_requests", None),
            targets_down: families
                .iter()
                .filter(|f| f.name == "opretail_target_up")
                .flat_map(|f| f.samples.iter())
                .filter(|(_, v)| *v != 1.0)
                .count(),
            shops_with_values: count("opretail_shop_walk_in"),
            devices_with_values: count("opretail_device_walk_in"),
            memory,
        }
    }

    /// Requests sent ÷ the rate: no refresh can be faster (less the one second's burst).
    fn ideal(&self, rate: f64) -> f64 {
        self.delta.requests / rate
    }

    fn ratio(&self, rate: f64) -> f64 {
        self.seconds / self.ideal(rate)
    }
}

/// A scenario's simulator and exporter, as child processes.
struct Live {
    sim: ChildGuard,
    sim_addr: SocketAddr,
    exporter: ChildGuard,
    addr: SocketAddr,
    pid: u32,
    log: PathBuf,
    launched: Instant,
    cpu_startup: f64,
    client: reqwest::Client,
}

impl Live {
    fn start(s: &Settings, sc: &Scenario, ticks: f64) -> Result<Self> {
        let dir = bench_dir();
        let (shops, org_size, devices, rate) = (
            sc.sim_shops.to_string(),
            sc.sim_org_size.to_string(),
            sc.sim_devices.to_string(),
            s.rate.to_string(),
        );
        let (sim, sim_addr) = spawn_logged(
            "simulator",
            &[
                "simulate",
                "--listen",
                "127.0.0.1:0",
                "--shops",
                &shops,
                "--org-size",
                &org_size,
                "--devices",
                &devices,
                "--rate-limit",
                &rate,
                "--rate-rule",
                "per-second",
            ],
            &dir.join(format!("simulator-{}.log", sc.tag)),
        )?;
        progress(format!("[{}] simulator at {sim_addr} (pid {})", sc.tag, sim.pid()));
        let config = dir.join(format!("scale-{}.yaml", sc.tag));
        sc.write_config(s.rate, sim_addr, &config)?;
        let config_arg = config.to_string_lossy().into_owned();
        let log = dir.join(format!("exporter-{}.log", sc.tag));
        let launched = Instant::now();
        let (exporter, addr) = spawn_logged(
            "exporter",
            &[
                "--config",
                &config_arg,
                "--web.listen-address",
                "127.0.0.1:0",
                "--web.enable-lifecycle",
            ],
            &log,
        )?;
        let pid = exporter.pid();
        // The first poll starts as the exporter starts serving: the CPU spent until here is
        // start-up (reading the configuration), not polling.
        let cpu_startup = cpu_seconds(pid, ticks)?;
        progress(format!(
            "[{}] exporter at {addr} (pid {pid}), start-up CPU {cpu_startup:.2} s",
            sc.tag
        ));
        Ok(Live {
            sim,
            sim_addr,
            exporter,
            addr,
            pid,
            log,
            launched,
            cpu_startup,
            client: reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?,
        })
    }

    fn check_alive(&mut self) -> Result<()> {
        self.exporter.check_alive()?;
        self.sim.check_alive()
    }

    /// Waits for `/-/ready`: the first poll has published.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let url = format!("http://{}/-/ready", self.addr);
        let mut last_note = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(resp) = self.client.get(&url).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if self.launched.elapsed() > timeout {
                bail!("the exporter was not ready after {:?}", self.launched.elapsed());
            }
            if last_note.elapsed() > Duration::from_secs(15) {
                progress(format!("polling… {:.0} s", self.launched.elapsed().as_secs_f64()));
                last_note = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the `n`th full refresh to be logged as complete.
    async fn wait_poll(&mut self, n: usize, timeout: Duration) -> Result<PollLine> {
        let started = Instant::now();
        let mut last_note = Instant::now();
        loop {
            self.check_alive()?;
            if let Some(line) = priority_polls(&self.log).into_iter().nth(n - 1) {
                return Ok(line);
            }
            if started.elapsed() > timeout {
                bail!(
                    "no full refresh number {n} after {:?}; log: {}",
                    started.elapsed(),
                    self.log.display()
                );
            }
            if last_note.elapsed() > Duration::from_secs(15) {
                progress(format!("refresh {n}… {:.0} s", started.elapsed().as_secs_f64()));
                last_note = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /-/reload` with the same file: the next poll is a full first round, at once.
    async fn reload(&self) -> Result<()> {
        let url = format!("http://{}/-/reload", self.addr);
        let resp = self.client.post(&url).send().await?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("{url}: HTTP {status}: {body}");
        }
        Ok(())
    }

    async fn metrics(&self) -> Result<(String, Vec<Family>)> {
        let text = get_text(&self.client, &format!("http://{}/metrics", self.addr)).await?;
        let families = parse_exposition(&text)?;
        Ok((text, families))
    }
}

/// What a scenario run with child processes gives.
struct TwoRefreshes {
    live: Live,
    first: Refresh,
    second: Refresh,
    /// Launch to `/-/ready` (wall), and the CPU of the first poll.
    wall_to_ready: f64,
    cpu_poll: f64,
    memory_ready: (f64, f64),
    /// The exposition after the second refresh.
    text: String,
    families: Vec<Family>,
}

/// Starts the scenario's simulator and exporter, waits for the first full refresh, triggers
/// a second by a reload, and takes the figures of both.
async fn two_refreshes(s: &Settings, sc: &Scenario, ticks: f64) -> Result<TwoRefreshes> {
    let timeout = |calls: u64| Duration::from_secs_f64(calls as f64 / s.rate * 3.0 + 120.0);
    progress(format!(
        "[{}] {}: {} shop ids, {} devices; expected {} calls, then {} ({:.1} s, {:.1} s at {} requests/s)",
        sc.tag,
        sc.title,
        sc.ids.len(),
        sc.devices,
        sc.expected[0],
        sc.expected[1],
        sc.expected[0] as f64 / s.rate,
        sc.expected[1] as f64 / s.rate,
        s.rate
    ));
    let mut live = Live::start(s, sc, ticks)?;
    live.wait_ready(timeout(sc.expected[0])).await?;
    let wall_to_ready = live.launched.elapsed().as_secs_f64();
    let cpu_poll = cpu_seconds(live.pid, ticks)? - live.cpu_startup;
    let memory_ready = memory_mib(live.pid)?;
    let poll = live.wait_poll(1, Duration::from_secs(30)).await?;
    let (_, families) = live.metrics().await?;
    let first = Refresh::of(
        "first".into(),
        poll,
        &families,
        Counters::default(),
        sc.expected[0],
        Some(memory_mib(live.pid)?),
    );
    progress(format!(
        "[{}] first refresh: {} calls in {:.1} s, {} × -100; ready after {wall_to_ready:.1} s, poll CPU {cpu_poll:.2} s, RSS {:.1} MiB (peak {:.1})",
        sc.tag, first.poll.calls, first.seconds, first.delta.errors_100, memory_ready.0, memory_ready.1
    ));
    let before = Counters::of(&families);
    drop(families);
    // Right after the refresh: the reloaded client goes on from the old one's request rate, so
    // its first second must not go over a per-second gateway's budget either.
    live.reload().await?;
    let poll = live.wait_poll(2, timeout(sc.expected[1].max(sc.expected[0]))).await?;
    let (text, families) = live.metrics().await?;
    let second = Refresh::of(
        "second (reload)".into(),
        poll,
        &families,
        before,
        sc.expected[1],
        Some(memory_mib(live.pid)?),
    );
    progress(format!(
        "[{}] second refresh: {} calls in {:.1} s, {} × -100",
        sc.tag, second.poll.calls, second.seconds, second.delta.errors_100
    ));
    Ok(TwoRefreshes {
        live,
        first,
        second,
        wall_to_ready,
        cpu_poll,
        memory_ready,
        text,
        families,
    })
}

/// The refresh of the next hour, in this process: the simulator and the exporter (the
/// library, manual polling) on one manual clock; a first refresh, then the clock moved on by an
/// hour and the next one, with everything the first taught still known.
async fn next_hour_in_process(s: &Settings, sc: &Scenario) -> Result<Refresh> {
    use opretail_exporter::exporter::{self, Options};
    use opretail_exporter::model::Clock;
    use opretail_exporter::simulator::{RateRule, SimConfig, Simulator};

    let clock = Clock::manual(chrono::Utc::now());
    let mut cfg = SimConfig::large(clock.clone(), sc.sim_shops, sc.sim_devices, sc.sim_org_size);
    cfg.rate_limit = Some(s.rate);
    cfg.rate_rule = RateRule::PerSecond;
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let sim = Simulator::new(cfg).spawn(local).await?;
    let path = bench_dir().join(format!("scale-{}-next-hour.yaml", sc.tag));
    sc.write_config(s.rate, sim.addr, &path)?;
    let config = opretail_exporter::config::Config::load(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let options = Options {
        config_file: Some(path),
        manual_polling: true,
        ..Options::default()
    };
    let running = exporter::start_with(config, local, clock.clone(), options).await?;
    let families = || parse_exposition(&String::from_utf8(running.store.exposition(false).concat())?);
    let line = |r: opretail_exporter::poller::PollReport| PollLine {
        hour: r.hour.map(|h| h.to_string()).unwrap_or_default(),
        calls: r.calls as u64,
        failed: r.failed_calls as u64,
        splits: r.splits as u64,
        shops: r.shops as u64,
        devices: r.devices as u64,
    };
    let first = line(running.poller.poll_once().await);
    let before = Counters::of(&families()?);
    clock.set(clock.now() + chrono::Duration::hours(1));
    let next = line(running.poller.poll_once().await);
    progress(format!(
        "[{}] in process: first refresh {} calls ({}), next hour {} calls ({})",
        sc.tag, first.calls, first.hour, next.calls, next.hour
    ));
    let refresh = Refresh::of(
        "next hour (in process)".into(),
        next,
        &families()?,
        before,
        sc.expected[1],
        None,
    );
    running.shutdown().await?;
    sim.shutdown().await;
    Ok(refresh)
}

/// The whole-day baseline: what the same shop ids download as whole-day calls of 50 ids.
struct Baseline {
    calls: usize,
    shops: usize,
    rows: usize,
    bytes: f64,
}

/// Makes the whole-day calls of `sc`'s ids for `day` against the running simulator, with the
/// library's client (at the bench's rate; no answer size cap), and counts their bytes as the
/// exporter counts them.
async fn whole_day_baseline(
    s: &Settings,
    sc: &Scenario,
    sim_addr: SocketAddr,
    day: chrono::NaiveDate,
) -> Result<Baseline> {
    use opretail_exporter::client::{Answer, Call, Client, Target};
    use opretail_exporter::config::GatewayConfig;
    use opretail_exporter::metrics::MetricsStore;
    use opretail_exporter::model::{Clock, TargetId};

    let store = MetricsStore::new("bench", "bench")?;
    let mut gateway = GatewayConfig::new(
        format!("http://{sim_addr}/m.api").parse()?,
        "demo".into(),
        "demo-secret".into(),
    );
    gateway.requests_per_second = s.rate;
    gateway.max_response_bytes = 1 << 30;
    gateway.timeout = Duration::from_secs(300);
    let client = Client::new(&gateway, Clock::system(), store.api().clone())?;
    let ids: Vec<TargetId> = sc
        .ids
        .iter()
        .map(|id| id.parse().map_err(|e| anyhow!("{id}: {e}")))
        .collect::<Result<_>>()?;
    let (mut calls, mut shops, mut rows) = (0, 0, 0);
    for chunk in ids.chunks(IDS_PER_REQUEST as usize) {
        let call = Call::day(Target::Shops(chunk.to_vec()), day);
        match client
            .fetch(&call)
            .await
            .map_err(|e| anyhow!("whole-day call {call}: {e}"))?
        {
            Answer::Shops(series) => {
                shops += series.len();
                rows += series.iter().map(|s| s.rows.len()).sum::<usize>();
            }
            Answer::Device(_) => bail!("a shops call answered device rows"),
        }
        calls += 1;
    }
    let families = parse_exposition(&String::from_utf8(store.exposition(false).concat())?)?;
    Ok(Baseline {
        calls,
        shops,
        rows,
        bytes: sum_of(
            &families,
            "opretail_api_response_bytes_total",
            Some(("method", METHOD_SHOPS)),
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// The `S_` ids scenario's scrape comparison.
struct ScrapeFigures {
    series_total: usize,
    value_series: usize,
    gzip_check: String,
    ex_plain: Scrapes,
    ex_gzip: Scrapes,
    enc_plain: Scrapes,
    enc_gzip: Scrapes,
    py_plain: Scrapes,
    py_gzip: Scrapes,
    peer_series: usize,
    py_series: usize,
    py_banner: String,
    memory_after: (f64, f64),
    /// The status page: one page of `/`, `/?q=…` (every row filtered), one page of the JSON.
    status: [(String, Scrapes); 3],
    /// Targets on the status page.
    status_targets: usize,
}

struct ShopIdsRun {
    sc: Scenario,
    two: TwoRefreshes,
    scrapes: ScrapeFigures,
}

struct OrgsRun {
    sc: Scenario,
    first: Refresh,
    second: Refresh,
    peak: (f64, f64),
    baseline: Baseline,
    day: chrono::NaiveDate,
}

struct BigOrgRun {
    sc: Scenario,
    first: Refresh,
    second: Refresh,
    next_hour: Refresh,
    peak: (f64, f64),
}

async fn run_shop_ids(s: &Settings, ticks: f64) -> Result<ShopIdsRun> {
    let sc = Scenario::shop_ids(s);
    let mut two = two_refreshes(s, &sc, ticks).await?;
    let dir = bench_dir();
    let series_total = count_samples(&two.text);
    let families = std::mem::take(&mut two.families);
    let values: Vec<&Family> = families.iter().filter(|f| is_value_family(f)).collect();
    let value_series: usize = values.iter().map(|f| f.samples.len()).sum();
    progress(format!("[shops] {series_total} series ({value_series} value series)"));
    let metrics_url = format!("http://{}/metrics", two.live.addr);
    let gzip_check = check_gzip(&metrics_url, series_total).await?;
    progress(format!("gzip answer: {gzip_check}"));

    // The exporter's scrapes.
    let pid = two.live.pid;
    let ex_plain = measure(s, "exporter", &metrics_url, false, Some((pid, ticks))).await?;
    let ex_gzip = measure(s, "exporter", &metrics_url, true, Some((pid, ticks))).await?;
    let memory_after = memory_mib(pid)?;

    // The status page at this size.
    let base = format!("http://{}", two.live.addr);
    let listed: serde_json::Value =
        serde_json::from_str(&get_text(&two.live.client, &format!("{base}/api/v1/targets")).await?)?;
    let status_targets = listed["summary"]["targets"].as_u64().unwrap_or(0) as usize;
    progress(format!("status page: {status_targets} targets"));
    let mut status = Vec::new();
    for (label, path) in [
        ("`/` (first page)", "/"),
        (
            "`/?q=S_1000&status=up` (text filter over every row)",
            "/?q=S_1000&status=up",
        ),
        ("`/api/v1/targets` (first page)", "/api/v1/targets"),
    ] {
        let r = measure(
            s,
            &format!("status {path}"),
            &format!("{base}{path}"),
            false,
            Some((pid, ticks)),
        )
        .await?;
        status.push((label.to_string(), r));
    }
    let status: [(String, Scrapes); 3] = status.try_into().map_err(|_| anyhow!("three status measurements"))?;

    // Encode-on-scrape peer.
    progress("building the encode-on-scrape peer");
    let (peer_addr, stop_peer) = start_encode_peer(&values)?;
    let peer_url = format!("http://{peer_addr}/metrics");
    let peer_series = count_samples(&get_text(&two.live.client, &peer_url).await?);
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
    let py_series = count_samples(&get_text(&two.live.client, &py_url).await?);
    let py_pid = Some((py.guard.pid(), ticks));
    let py_plain = measure(s, "python", &py_url, false, py_pid).await?;
    let py_gzip = measure(s, "python", &py_url, true, py_pid).await?;
    let py_banner = py.banner.clone();
    drop(py);
    Ok(ShopIdsRun {
        sc,
        two,
        scrapes: ScrapeFigures {
            series_total,
            value_series,
            gzip_check,
            ex_plain,
            ex_gzip,
            enc_plain,
            enc_gzip,
            py_plain,
            py_gzip,
            peer_series,
            py_series,
            py_banner,
            memory_after,
            status,
            status_targets,
        },
    })
}

async fn run_orgs(s: &Settings, ticks: f64) -> Result<OrgsRun> {
    let sc = Scenario::organisations(s);
    let two = two_refreshes(s, &sc, ticks).await?;
    let day = chrono::NaiveDate::parse_from_str(two.second.poll.hour.get(..10).unwrap_or(""), "%Y-%m-%d")
        .with_context(|| format!("the refresh's hour {:?}", two.second.poll.hour))?;
    let peak = memory_mib(two.live.pid)?;
    progress(format!(
        "[orgs] whole-day baseline: {} ids, 50 a call, {day}",
        sc.ids.len()
    ));
    let baseline = whole_day_baseline(s, &sc, two.live.sim_addr, day).await?;
    progress(format!(
        "[orgs] whole day: {} calls, {} shops, {} rows, {}",
        baseline.calls,
        baseline.shops,
        baseline.rows,
        mib(baseline.bytes as usize)
    ));
    drop(two.live);
    Ok(OrgsRun {
        sc,
        first: two.first,
        second: two.second,
        peak,
        baseline,
        day,
    })
}

async fn run_big_org(s: &Settings, ticks: f64) -> Result<BigOrgRun> {
    let sc = Scenario::one_organisation(s);
    let two = two_refreshes(s, &sc, ticks).await?;
    let peak = memory_mib(two.live.pid)?;
    drop(two.live);
    let next_hour = next_hour_in_process(s, &sc).await?;
    Ok(BigOrgRun {
        sc,
        first: two.first,
        second: two.second,
        next_hour,
        peak,
    })
}

/// The history calls an exporter's JSON log reports (`history calls complete` lines): calls
/// and failures summed, the days kept and the history's size as of the last line.
#[derive(Debug, Clone, Copy, Default)]
struct Fill {
    calls: u64,
    failed: u64,
    days_kept: u64,
    shops_kept: u64,
    bytes: u64,
}

fn history_lines(log: &Path) -> Fill {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut fill = Fill::default();
    for v in text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["fields"]["message"] == "history calls complete")
    {
        let n = |k: &str| v["fields"][k].as_u64().unwrap_or(0);
        fill.calls += n("calls");
        fill.failed += n("failed");
        fill.days_kept = n("days_kept");
        fill.shops_kept = n("shops_kept");
        fill.bytes = n("history_bytes");
    }
    fill
}

struct BaselineRun {
    sc: Scenario,
    first: Refresh,
    fill: Fill,
    /// From the end of the first refresh to the last day kept (wall).
    fill_seconds: f64,
    /// (VmRSS, VmHWM) once the fill is done.
    memory: (f64, f64),
    /// Shops with a published baseline, and the exporter's requests since the first refresh.
    shops_with_baseline: usize,
    requests: f64,
}

/// The `S_` ids tenant with a 4-week baseline: the first refresh, then the first fill of the
/// history until every shop holds its 7 × weeks days (across an hour's refresh if the fill
/// meets one), and the exporter's memory then.
async fn run_baseline(s: &Settings, ticks: f64) -> Result<BaselineRun> {
    let sc = Scenario::with_baseline(s);
    let history_calls = sc.history_calls();
    progress(format!(
        "[baseline] {}: {} shop ids, {} devices, {} weeks: expected {} calls, then {history_calls} history calls ({:.1} s at {} requests/s)",
        sc.title,
        sc.ids.len(),
        sc.devices,
        sc.baseline_weeks,
        sc.expected[0],
        history_calls as f64 / s.rate,
        s.rate
    ));
    let timeout = |calls: u64| Duration::from_secs_f64(calls as f64 / s.rate * 3.0 + 120.0);
    let mut live = Live::start(s, &sc, ticks)?;
    live.wait_ready(timeout(sc.expected[0])).await?;
    let poll = live.wait_poll(1, Duration::from_secs(30)).await?;
    let (_, families) = live.metrics().await?;
    let before = Counters::of(&families);
    let first = Refresh::of(
        "first".into(),
        poll,
        &families,
        Counters::default(),
        sc.expected[0],
        Some(memory_mib(live.pid)?),
    );
    drop(families);
    let want = sc.shops_configured() * 7 * sc.baseline_weeks;
    let started = Instant::now();
    // The fill may meet the next hour's refresh, which goes first: allow for one.
    let limit = timeout(history_calls) + Duration::from_secs(3700);
    let mut last_note = Instant::now();
    let fill = loop {
        live.check_alive()?;
        let fill = history_lines(&live.log);
        if fill.days_kept >= want {
            break fill;
        }
        if started.elapsed() > limit {
            bail!(
                "the history holds {} of {want} shop days after {:?}; log: {}",
                fill.days_kept,
                started.elapsed(),
                live.log.display()
            );
        }
        if last_note.elapsed() > Duration::from_secs(15) {
            progress(format!(
                "[baseline] fill: {} calls, {} of {want} shop days, {:.0} s",
                fill.calls,
                fill.days_kept,
                started.elapsed().as_secs_f64()
            ));
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let fill_seconds = started.elapsed().as_secs_f64();
    // The snapshot with the baselines is published right after the line that logged the fill.
    let (mut shops_with_baseline, mut requests) = (0, 0.0);
    for _ in 0..60 {
        let (_, families) = live.metrics().await?;
        shops_with_baseline = families
            .iter()
            .filter(|f| f.name == "opretail_shop_walk_in_baseline_samples")
            .map(|f| f.samples.len())
            .sum();
        requests = Counters::of(&families).since(before).requests;
        if shops_with_baseline > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let memory = memory_mib(live.pid)?;
    progress(format!(
        "[baseline] fill: {} calls ({} failed) in {fill_seconds:.1} s, {} shop days, history {}, {shops_with_baseline} shops with a baseline, RSS {:.1} MiB (peak {:.1})",
        fill.calls,
        fill.failed,
        fill.days_kept,
        mib(fill.bytes as usize),
        memory.0,
        memory.1
    ));
    drop(live);
    Ok(BaselineRun {
        sc,
        first,
        fill,
        fill_seconds,
        memory,
        shops_with_baseline,
        requests,
    })
}

async fn run(s: &Settings) -> Result<String> {
    std::fs::create_dir_all(bench_dir())?;
    let ticks = clock_ticks();
    let shop_ids = if s.wants("shops") {
        Some(run_shop_ids(s, ticks).await?)
    } else {
        None
    };
    let orgs = if s.wants("orgs") {
        Some(run_orgs(s, ticks).await?)
    } else {
        None
    };
    let big = if s.wants("big-org") {
        Some(run_big_org(s, ticks).await?)
    } else {
        None
    };
    let baseline = if s.wants("baseline") {
        Some(run_baseline(s, ticks).await?)
    } else {
        None
    };
    let mut table = report(s, shop_ids.as_ref(), orgs.as_ref(), big.as_ref())?;
    if let Some(b) = &baseline {
        table.push_str(&baseline_report(s, b)?);
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------

/// The baseline scenario's table: the first fill of the history and the memory after it.
fn baseline_report(s: &Settings, b: &BaselineRun) -> Result<String> {
    let mut t = String::new();
    let expected = b.sc.history_calls();
    let (rss, hwm) = b.memory;
    writeln!(t, "\n### Walk-in baseline: history of {} weeks\n", b.sc.baseline_weeks)?;
    writeln!(
        t,
        "The `S_` ids tenant ({} shops, {} devices) with `baseline.weeks: {}`: after its first refresh, the exporter fills the history of every shop (7 × weeks past days, whole-day calls of {} ids) in the time its polls leave free, at {} requests/s.\n",
        b.sc.shops_configured(),
        b.sc.devices,
        b.sc.baseline_weeks,
        b.sc.max_ids.unwrap_or(IDS_PER_REQUEST),
        s.rate
    )?;
    writeln!(t, "| | |")?;
    writeln!(t, "|---|---|")?;
    writeln!(
        t,
        "| first refresh | {} calls, {:.1} s |",
        b.first.poll.calls, b.first.seconds
    )?;
    writeln!(
        t,
        "| history calls of the first fill (design: batches × 7 × weeks = {expected}) | {} ({} failed; {:.0} gateway requests with retries and the polls meanwhile) |",
        b.fill.calls, b.fill.failed, b.requests
    )?;
    writeln!(
        t,
        "| fill time (wall, after the first refresh) | {:.1} s |",
        b.fill_seconds
    )?;
    writeln!(
        t,
        "| shop days kept | {} ({} shops) |",
        b.fill.days_kept, b.fill.shops_kept
    )?;
    writeln!(
        t,
        "| history size (the exporter's own count of its heap) | {} ({:.0} bytes a shop) |",
        mib(b.fill.bytes as usize),
        b.fill.bytes as f64 / b.fill.shops_kept.max(1) as f64
    )?;
    writeln!(t, "| shops with a published baseline | {} |", b.shops_with_baseline)?;
    writeln!(
        t,
        "| exporter RSS after the fill (VmRSS / VmHWM) | {rss:.1} / {hwm:.1} MiB |"
    )?;
    writeln!(
        t,
        "| peak RSS (VmHWM) ≤ {TARGET_RSS_MIB} MiB with a {}-week baseline: {} shops, {} devices | {hwm:.1} MiB | {} |",
        b.sc.baseline_weeks,
        b.sc.shops_configured(),
        b.sc.devices,
        verdict(hwm <= TARGET_RSS_MIB)
    )?;
    Ok(t)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**pass**"
    } else {
        "**FAIL**"
    }
}

/// A scenario, its refreshes, and the exporter's memory at its end (VmRSS, VmHWM).
type ScenarioRow<'a> = (&'a Scenario, Vec<&'a Refresh>, Option<(f64, f64)>);

fn report(
    s: &Settings,
    shop_ids: Option<&ShopIdsRun>,
    orgs: Option<&OrgsRun>,
    big: Option<&BigOrgRun>,
) -> Result<String> {
    let rate = s.rate;
    let mut t = String::new();
    writeln!(
        t,
        "Scale benchmark: three tenants, each against its own simulated gateway enforcing {rate} requests in any one second (`simulate --rate-rule per-second`, answering `-100` beyond), with the exporter at `requests_per_second: {rate}`. Each is refreshed twice: the first refresh from start, the second triggered by `POST /-/reload` with the same file.\n"
    )?;

    // Targets.
    writeln!(t, "### Targets\n")?;
    writeln!(t, "| target | measured | result |")?;
    writeln!(t, "|---|---|---|")?;
    if let Some(r) = shop_ids {
        let f = &r.scrapes;
        let ratio_py = f.py_plain.p50.as_secs_f64() / f.ex_plain.p50.as_secs_f64();
        let ratio_enc = f.enc_plain.p50.as_secs_f64() / f.ex_plain.p50.as_secs_f64();
        writeln!(
            t,
            "| scrape p50 ≥ {TARGET_PYTHON_RATIO}× faster than Python `prometheus_client` (plain) | {ratio_py:.1}× ({} vs {}) | {} |",
            ms(f.py_plain.p50),
            ms(f.ex_plain.p50),
            verdict(ratio_py >= TARGET_PYTHON_RATIO)
        )?;
        writeln!(
            t,
            "| scrape p50 ≥ {TARGET_ENCODE_RATIO}× faster than encode-on-scrape (plain) | {ratio_enc:.1}× ({} vs {}) | {} |",
            ms(f.enc_plain.p50),
            ms(f.ex_plain.p50),
            verdict(ratio_enc >= TARGET_ENCODE_RATIO)
        )?;
    }
    if let Some(r) = shop_ids {
        let f = &r.scrapes;
        for (label, scrapes) in &f.status {
            writeln!(
                t,
                "| status page {label} p50 < {TARGET_STATUS_PAGE_SECONDS} s at {} targets | {} (p99 {}, {}) | {} |",
                f.status_targets,
                ms(scrapes.p50),
                ms(scrapes.p99),
                mib(scrapes.bytes),
                verdict(scrapes.p50.as_secs_f64() < TARGET_STATUS_PAGE_SECONDS)
            )?;
        }
    }
    // Per scenario: -100, refresh time, memory.
    let mut scenario_rows: Vec<ScenarioRow<'_>> = Vec::new();
    if let Some(r) = shop_ids {
        let peak = (r.scrapes.memory_after.0, r.scrapes.memory_after.1);
        scenario_rows.push((&r.sc, vec![&r.two.first, &r.two.second], Some(peak)));
    }
    if let Some(r) = orgs {
        scenario_rows.push((&r.sc, vec![&r.first, &r.second], Some(r.peak)));
    }
    if let Some(r) = big {
        scenario_rows.push((&r.sc, vec![&r.first, &r.second, &r.next_hour], Some(r.peak)));
    }
    for (sc, refreshes, _) in &scenario_rows {
        let repeats: Vec<String> = refreshes.iter().map(|r| format!("{}", r.delta.errors_100)).collect();
        let total: f64 = refreshes.iter().map(|r| r.delta.errors_100).sum();
        writeln!(
            t,
            "| zero -100 API_CALL_REPEAT at the configured rate: {} ({}) | {} | {} |",
            sc.title,
            refreshes
                .iter()
                .map(|r| r.title.as_str())
                .collect::<Vec<_>>()
                .join(" / "),
            repeats.join(" / "),
            verdict(total == 0.0)
        )?;
    }
    for (sc, refreshes, _) in scenario_rows.iter().filter(|(sc, _, _)| sc.tag != "big-org") {
        let ratios: Vec<String> = refreshes
            .iter()
            .map(|r| format!("{:.3}× ({:.1} s vs {:.1} s)", r.ratio(rate), r.seconds, r.ideal(rate)))
            .collect();
        let ok = refreshes.iter().all(|r| r.ratio(rate) <= TARGET_REFRESH_RATIO);
        writeln!(
            t,
            "| full refresh ≤ {TARGET_REFRESH_RATIO}× ideal: {} (first / second) | {} | {} |",
            sc.title,
            ratios.join(" / "),
            verdict(ok)
        )?;
    }
    for (sc, refreshes, peak) in scenario_rows.iter().filter(|(sc, _, _)| sc.tag != "big-org") {
        let Some((_, hwm)) = peak else { continue };
        let at = refreshes
            .last()
            .map_or(0, |r| r.shops_with_values + r.devices_with_values);
        let first = refreshes
            .first()
            .and_then(|r| r.memory)
            .map_or(String::new(), |(_, h)| format!("; {h:.1} MiB after the first"));
        writeln!(
            t,
            "| peak RSS (VmHWM) ≤ {TARGET_RSS_MIB} MiB: {} ({} shops, {} devices) | {hwm:.1} MiB after both refreshes{}{first} ({at} shops and devices with values) | {} |",
            sc.title,
            sc.shops_configured(),
            sc.devices,
            if sc.tag == "shops" { " and the scrapes" } else { "" },
            verdict(*hwm <= TARGET_RSS_MIB)
        )?;
    }
    if let Some(r) = orgs {
        let hourly = r.second.delta.shop_bytes - r.second.delta.day_bytes;
        let ratio = r.baseline.bytes / hourly;
        writeln!(
            t,
            "| whole-day ÷ hourly shop bytes ≥ {TARGET_WHOLE_DAY_RATIO}×: organisations | {ratio:.1}× ({} vs {} a refresh, besides {} of day figures) | {} |",
            mib(r.baseline.bytes as usize),
            mib(hourly as usize),
            mib(r.second.delta.day_bytes as usize),
            verdict(ratio >= TARGET_WHOLE_DAY_RATIO)
        )?;
    }
    for (sc, refreshes, _) in scenario_rows.iter().filter(|(sc, _, _)| sc.tag != "shops") {
        let first = refreshes[0];
        let ok =
            first.shops_with_values as u64 == sc.shops_configured() && first.devices_with_values as u64 == sc.devices;
        writeln!(
            t,
            "| every shop and device has values after the first refresh: {} | {} of {} shops, {} of {} devices | {} |",
            sc.title,
            first.shops_with_values,
            sc.shops_configured(),
            first.devices_with_values,
            sc.devices,
            verdict(ok)
        )?;
    }

    // Scenarios.
    writeln!(t, "\n### Tenants\n")?;
    writeln!(
        t,
        "| tenant | simulated gateway | exporter configured with | calls by design (first / second refresh) |"
    )?;
    writeln!(t, "|---|---|---|---|")?;
    for (sc, _, _) in &scenario_rows {
        let configured = match sc.tag {
            "shops" => format!(
                "{} `S_` ids (`max_ids_per_request: {IDS_PER_REQUEST}`, `max_in_flight: {}`) + {} devices",
                sc.ids.len(),
                sc.in_flight.unwrap_or(0),
                sc.devices
            ),
            _ => format!(
                "{} `O_` id{} ({}) + {} devices, gateway settings at their defaults (`max_rows_per_call: {DEFAULT_MAX_ROWS}`, `max_in_flight: 4`)",
                sc.ids.len(),
                if sc.ids.len() == 1 { "" } else { "s" },
                match sc.ids.as_slice() {
                    [one] => one.clone(),
                    [first, .., last] => format!("{first}…{last}"),
                    [] => String::new(),
                },
                sc.devices
            ),
        };
        writeln!(
            t,
            "| {} | `--shops {} --org-size {} --devices {}` | {configured} | {} / {} |",
            sc.title, sc.sim_shops, sc.sim_org_size, sc.sim_devices, sc.expected[0], sc.expected[1]
        )?;
    }
    writeln!(
        t,
        "\nBy design: shop ids 50 a call; an organisation alone until its shop count is learned, then packed by rows (shops × 1 hour) under 2,000 a call; one bigger than that through its `S_` ids, 50 a call; one call per device."
    )?;

    // Refreshes.
    let columns: Vec<(&Scenario, &Refresh)> = scenario_rows
        .iter()
        .flat_map(|(sc, refreshes, _)| refreshes.iter().map(move |r| (*sc, *r)))
        .collect();
    writeln!(t, "\n### Refreshes\n")?;
    write!(t, "| figure |")?;
    for (sc, r) in &columns {
        write!(t, " {}: {} |", sc.title, r.title)?;
    }
    writeln!(t)?;
    writeln!(t, "|---|{}", "---|".repeat(columns.len()))?;
    let row = |t: &mut String, name: &str, cell: &dyn Fn(&Scenario, &Refresh) -> String| -> Result<()> {
        write!(t, "| {name} |")?;
        for (sc, r) in &columns {
            write!(t, " {} |", cell(sc, r))?;
        }
        writeln!(t)?;
        Ok(())
    };
    row(&mut t, "hour asked", &|_, r| r.poll.hour.clone())?;
    row(&mut t, "gateway calls (`poll complete` calls)", &|_, r| {
        r.poll.calls.to_string()
    })?;
    row(&mut t, "calls by design", &|_, r| r.expected.to_string())?;
    row(&mut t, "`opretail_refresh_requests`", &|_, r| {
        r.refresh_requests.to_string()
    })?;
    row(&mut t, "requests sent (`opretail_api_requests_total`)", &|_, r| {
        r.delta.requests.to_string()
    })?;
    row(&mut t, "batch splits (`opretail_api_batch_splits_total`)", &|_, r| {
        r.delta.splits.to_string()
    })?;
    row(&mut t, "failed calls", &|_, r| r.poll.failed.to_string())?;
    row(&mut t, "splits / shops / devices (`poll complete`)", &|_, r| {
        format!("{} / {} / {}", r.poll.splits, r.poll.shops, r.poll.devices)
    })?;
    row(&mut t, "bytes, shops method", &|_, r| mib(r.delta.shop_bytes as usize))?;
    row(&mut t, "of which day figures (`timeType=2`)", &|_, r| {
        mib(r.delta.day_bytes as usize)
    })?;
    row(&mut t, "bytes, devices method", &|_, r| {
        mib(r.delta.device_bytes as usize)
    })?;
    row(&mut t, "-100 API_CALL_REPEAT", &|_, r| r.delta.errors_100.to_string())?;
    row(&mut t, "errors, all codes", &|_, r| r.delta.errors.to_string())?;
    row(&mut t, "retries", &|_, r| r.delta.retries.to_string())?;
    row(&mut t, "refresh (`opretail_refresh_duration_seconds`)", &|_, r| {
        format!("{:.2} s", r.seconds)
    })?;
    row(&mut t, "ideal (requests ÷ rate)", &|_, r| {
        format!("{:.2} s", r.ideal(rate))
    })?;
    row(&mut t, "refresh ÷ ideal", &|_, r| format!("{:.3}", r.ratio(rate)))?;
    row(&mut t, "targets down (`opretail_target_up != 1`)", &|_, r| {
        r.targets_down.to_string()
    })?;
    row(&mut t, "shops with values (`opretail_shop_walk_in`)", &|sc, r| {
        format!("{} of {}", r.shops_with_values, sc.shops_configured())
    })?;
    row(&mut t, "devices with values (`opretail_device_walk_in`)", &|sc, r| {
        format!("{} of {}", r.devices_with_values, sc.devices)
    })?;
    row(&mut t, "exporter RSS after (VmRSS / VmHWM)", &|_, r| match r.memory {
        Some((rss, hwm)) => format!("{rss:.1} / {hwm:.1} MiB"),
        None => "— (in process)".into(),
    })?;
    writeln!(
        t,
        "\nCounters are the change over the refresh. The exporter's limiter and the per-second gateway both allow one second's worth at once, so a refresh bound by the rate can finish up to 1 s under the ideal; a refresh of a few calls is bound by answer time instead, and its ratio means little. The reload is sent as soon as the first refresh has been scraped: the reloaded client goes on from the old one's request rate, so the refresh it starts stays within the per-second budget too. A reload starts what the exporter learned afresh (`Learned` lives with the configuration) but keeps the shop lists of the organisations, so a second refresh after a reload packs the organisations it knows but asks a big organisation as itself again; the one organisation's \"next hour\" column is a refresh of the next hour made in this process (simulator and exporter library on one manual clock), where what the first refresh taught is still known."
    )?;

    if let Some(r) = orgs {
        writeln!(t, "\n### Whole-day baseline: organisations\n")?;
        writeln!(t, "| figure | value |")?;
        writeln!(t, "|---|---|")?;
        writeln!(
            t,
            "| whole-day calls of the {} `O_` ids, {IDS_PER_REQUEST} a call, {} (no `starthour`/`endhour`) | {} calls, {} shops, {} rows |",
            r.sc.ids.len(),
            r.day,
            r.baseline.calls,
            r.baseline.shops,
            r.baseline.rows
        )?;
        writeln!(
            t,
            "| bytes downloaded, whole day | {} |",
            mib(r.baseline.bytes as usize)
        )?;
        writeln!(
            t,
            "| bytes downloaded by the shops method, refresh (first / second): hourly calls | {} / {} |",
            mib((r.first.delta.shop_bytes - r.first.delta.day_bytes) as usize),
            mib((r.second.delta.shop_bytes - r.second.delta.day_bytes) as usize)
        )?;
        writeln!(
            t,
            "| the same refreshes' day-figure calls (`timeType=2`, one per shop batch) | {} / {} |",
            mib(r.first.delta.day_bytes as usize),
            mib(r.second.delta.day_bytes as usize)
        )?;
        writeln!(
            t,
            "| whole day ÷ hourly calls (second refresh) | {:.1}× |",
            r.baseline.bytes / (r.second.delta.shop_bytes - r.second.delta.day_bytes)
        )?;
        writeln!(
            t,
            "\nThe whole-day calls are made by the library's client (`Call::day`) against the same simulator, at the same rate, with no answer size cap (a whole day of 50 organisations of this size is larger than the exporter's default `max_response_bytes`)."
        )?;
    }

    if let Some(r) = shop_ids {
        let f = &r.scrapes;
        let two = &r.two;
        writeln!(t, "\n### `S_` ids: the exporter\n")?;
        writeln!(t, "| figure | value |")?;
        writeln!(t, "|---|---|")?;
        writeln!(
            t,
            "| launch to `/-/ready` (wall, bench's view) | {:.1} s |",
            two.wall_to_ready
        )?;
        writeln!(
            t,
            "| CPU of the first poll (utime+stime, ready − start-up) | {:.2} s |",
            two.cpu_poll
        )?;
        writeln!(
            t,
            "| CPU of start-up before the poll (not counted above) | {:.2} s |",
            two.live.cpu_startup
        )?;
        writeln!(
            t,
            "| series on `/metrics` | {} ({} value series) |",
            f.series_total, f.value_series
        )?;
        writeln!(t, "| `/metrics` with `Accept-Encoding: gzip` | {} |", f.gzip_check)?;
        writeln!(
            t,
            "| RSS when ready (VmRSS / VmHWM) | {:.1} / {:.1} MiB |",
            two.memory_ready.0, two.memory_ready.1
        )?;
        writeln!(
            t,
            "| RSS after the second refresh and the scrapes below (VmRSS / VmHWM) | {:.1} / {:.1} MiB |",
            f.memory_after.0, f.memory_after.1
        )?;

        writeln!(t, "\n### `/metrics` latency (sequential, keep-alive), `S_` ids\n")?;
        writeln!(
            t,
            "| server | encoding asked | n | p50 | p99 | body | answered | server CPU per scrape | p50 ÷ exporter's |"
        )?;
        writeln!(t, "|---|---|---|---|---|---|---|---|---|")?;
        let rows: [(&str, &Scrapes, &Scrapes); 3] = [
            ("opretail-exporter", &f.ex_plain, &f.ex_gzip),
            ("encode-on-scrape (`prometheus` crate)", &f.enc_plain, &f.enc_gzip),
            ("Python `prometheus_client`", &f.py_plain, &f.py_gzip),
        ];
        for (name, plain, gz) in rows {
            for (asked, r, base) in [("identity", plain, &f.ex_plain), ("gzip", gz, &f.ex_gzip)] {
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
            "\nSeries served: exporter {} (value series {} + health), encode-on-scrape {}, Python {} (default process/platform/GC collectors unregistered). Python peer: {}.",
            f.series_total,
            f.value_series,
            f.peer_series,
            f.py_series,
            f.py_banner
                .split_whitespace()
                .filter(|w| !w.starts_with("addr="))
                .collect::<Vec<_>>()
                .join(" ")
        )?;
        writeln!(
            t,
            "Each row: up to {} warm-up (at most a quarter of the cap) then up to {} measured scrapes, capped at {:.0} s (at least 20); p99 of fewer than 100 scrapes is close to the maximum. Python's server answers HTTP/1.0-style (a new connection per scrape). CPU per poll counts from the exporter's first log line (\"serving /metrics\", logged as the poll starts) to readiness; start-up before it is listed separately. Server CPU per scrape is the server process's utime+stime over the measured scrapes ÷ n (clock ticks of 10 ms, so small values are coarse); the encode-on-scrape peer runs on a thread of the bench process, where it cannot be told apart from the client. Client, servers and the simulator share the machine's cores.",
            s.warmup, s.requests, s.max_seconds
        )?;
    }
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

//! Scrape latency under a flood of bogus basic-auth requests: the binary (`demo`, basic auth
//! with a bcrypt hash of cost 10, as the README makes it) scraped by one client with the right
//! password over a kept-alive connection, as Prometheus scrapes, in rounds of a quiet block and
//! a block while 1,500 clients each send a wrong password every second (each a new one, so none
//! is answered from the failure cache). Quiet and flooded blocks alternate so that both see the
//! machine in the same state; the p50s compared are those of all the scrapes of each kind. The
//! flood runs on a tokio runtime of its own, so that its client work competes with the exporter
//! for the cores but does not hold up the scraper's reading of its answers. Writes a table to
//! `target/bench/auth.md` for `scripts/bench.sh`.
//!
//! Knobs: BENCH_AUTH_FLOOD (connections, default 1500), BENCH_AUTH_ROUNDS (default 20),
//! BENCH_AUTH_SCRAPES (scrapes per block, default 100), BENCH_AUTH_COST (bcrypt cost, default
//! 10).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-pass";
/// The flooded p50 may be at most this many times the quiet one.
const TARGET_RATIO: f64 = 2.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().map_err(|_| anyhow!("{name}: cannot parse {v:?}")),
        Err(_) => Ok(default),
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target"))
        .join("bench")
}

/// Kills the exporter when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `demo` with basic auth; returns it and its address.
fn start(dir: &Path, cost: u32) -> Result<(Child, String)> {
    let hash = bcrypt::hash(PASSWORD, cost)?;
    let web = dir.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  {USER}: {hash}\n"))?;
    let mut child = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0", "--log.format", "json"])
        .arg("--web.config.file")
        .arg(&web)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("start demo")?;
    let mut stderr = BufReader::new(child.stderr.take().context("stderr")?);
    let child = Child(child);
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line)? == 0 {
            bail!("demo ended before serving");
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(addr) = v["fields"]["addr"].as_str() {
            let addr = addr.to_string();
            std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
            return Ok((child, addr));
        }
    }
}

/// `n` scrapes of `/metrics` with the right password over one kept-alive connection; their
/// latencies in milliseconds, sorted, and the failures.
async fn scrapes(client: &reqwest::Client, url: &str, n: usize) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let started = Instant::now();
        let ok = match client.get(url).basic_auth(USER, Some(PASSWORD)).send().await {
            Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
            _ => false,
        };
        if ok {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    times.sort_by(f64::total_cmp);
    (times, failed)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The scraper runs alone on the main thread's runtime; the flood on a runtime of its own (one
/// worker), so that the flood's client work delays the exporter, as it would from other
/// machines, but not the scraper's own reading of the answers.
fn main() -> Result<()> {
    let flood_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("flood")
        .enable_all()
        .build()?;
    let scraper_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = scraper_runtime.block_on(bench(flood_runtime.handle()));
    drop(flood_runtime);
    result
}

/// The flood's shared state: when a flood phase began (`None` between phases), the requests
/// sent in the current phase and those not answered yet, and the answers by status.
struct Flood {
    phase: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    sent: AtomicU64,
    in_flight: AtomicU64,
    /// 401 / 503 / other / error
    by_status: [AtomicU64; 4],
}

/// One flooding client: in each flood phase, a wrong password, new each time, once a second,
/// at its own offset within the second.
async fn flood_client(flood: Arc<Flood>, i: usize, clients: usize, url: String) {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(30)).build() else {
        return;
    };
    let offset = Duration::from_micros((i as u64 * 1_000_000) / clients as u64);
    let mut phases = flood.phase.subscribe();
    let mut k = 0u64;
    loop {
        let began = match phases.wait_for(Option::is_some).await {
            Ok(began) => began.unwrap_or_else(tokio::time::Instant::now),
            Err(_) => return, // the bench is over
        };
        let mut tick = tokio::time::interval_at(began + offset, Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if *phases.borrow() != Some(began) {
                break;
            }
            k += 1;
            flood.in_flight.fetch_add(1, Ordering::SeqCst);
            flood.sent.fetch_add(1, Ordering::SeqCst);
            let r = client
                .get(&url)
                .basic_auth("mallory", Some(format!("guess-{i}-{k}")))
                .send()
                .await;
            let slot = match r.map(|r| r.status().as_u16()) {
                Ok(401) => 0,
                Ok(503) => 1,
                Ok(_) => 2,
                Err(_) => 3,
            };
            flood.by_status[slot].fetch_add(1, Ordering::SeqCst);
            flood.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Waits until `done` holds, checking every 10 ms, for at most `limit`.
async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) -> Result<()> {
    let began = Instant::now();
    while !done() {
        if began.elapsed() > limit {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn bench(flood_runtime: &tokio::runtime::Handle) -> Result<()> {
    let clients: usize = env_or("BENCH_AUTH_FLOOD", 1500)?;
    let rounds: usize = env_or("BENCH_AUTH_ROUNDS", 20)?;
    let n: usize = env_or("BENCH_AUTH_SCRAPES", 100)?;
    let cost: u32 = env_or("BENCH_AUTH_COST", 10)?;
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    // The flood needs a descriptor per connection.
    opretail_exporter::http::raise_open_files_limit()?;
    let (_demo, addr) = start(&dir, cost)?;
    let url = format!("http://{addr}/metrics");
    let scraper = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let ready = Instant::now();
    loop {
        let r = scraper.get(&url).basic_auth(USER, Some(PASSWORD)).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        if ready.elapsed() > Duration::from_secs(30) {
            bail!("the demo did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = scrapes(&scraper, &url, 20).await; // warm-up

    let flood = Arc::new(Flood {
        phase: tokio::sync::watch::channel(None).0,
        sent: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        by_status: [(); 4].map(|_| AtomicU64::new(0)),
    });
    let tasks: Vec<_> = (0..clients)
        .map(|i| flood_runtime.spawn(flood_client(Arc::clone(&flood), i, clients, url.clone())))
        .collect();

    // Rounds of a quiet block and a flooded block, so that both see the machine in the same
    // state: a quiet p50 taken once, in a tenth of a second, varies with it by 3×.
    let (mut quiet, mut flooded) = (Vec::new(), Vec::new());
    let (mut quiet_failed, mut flooded_failed) = (0, 0);
    let mut round_ratios = Vec::with_capacity(rounds);
    let (mut flood_sent, mut flood_seconds) = (0u64, 0.0f64);
    for round in 1..=rounds {
        let (q, qf) = scrapes(&scraper, &url, n).await;
        // The flood: every client sends once within the first second, then once a second.
        let sent_before = flood.sent.load(Ordering::SeqCst);
        let began = tokio::time::Instant::now();
        flood.phase.send_replace(Some(began));
        wait_until("every flooding client sent", Duration::from_secs(30), || {
            flood.sent.load(Ordering::SeqCst) - sent_before >= clients as u64
        })
        .await?;
        let (f, ff) = scrapes(&scraper, &url, n).await;
        flood.phase.send_replace(None);
        flood_sent += flood.sent.load(Ordering::SeqCst) - sent_before;
        flood_seconds += began.elapsed().as_secs_f64();
        // Quiet again once every bogus request was answered (bcrypt's queue is empty then).
        wait_until("the flood was answered", Duration::from_secs(60), || {
            flood.in_flight.load(Ordering::SeqCst) == 0
        })
        .await?;
        let ratio = quantile(&f, 0.5) / quantile(&q, 0.5);
        eprintln!(
            "[auth] round {round}: quiet p50 {:.2} ms, flooded p50 {:.2} ms ({ratio:.2}×)",
            quantile(&q, 0.5),
            quantile(&f, 0.5)
        );
        round_ratios.push(ratio);
        quiet.extend(q);
        flooded.extend(f);
        quiet_failed += qf;
        flooded_failed += ff;
    }
    for task in tasks {
        task.abort();
    }
    quiet.sort_by(f64::total_cmp);
    flooded.sort_by(f64::total_cmp);
    round_ratios.sort_by(f64::total_cmp);
    let counts: Vec<u64> = flood.by_status.iter().map(|c| c.load(Ordering::SeqCst)).collect();
    let (q50, f50) = (quantile(&quiet, 0.5), quantile(&flooded, 0.5));
    let ratio = f50 / q50;
    eprintln!("[auth] quiet: p50 {q50:.2} ms; flooded: p50 {f50:.2} ms ({ratio:.2}× quiet)");

    let verdict = if ratio <= TARGET_RATIO && flooded_failed == 0 {
        "pass"
    } else {
        "**FAIL**"
    };
    let total = rounds * n;
    let mut md = String::new();
    md.push_str("\n## Basic auth under a flood of bogus passwords\n\n");
    md.push_str(&format!(
        "`demo` with basic auth (bcrypt cost {cost}), scraped with the right password over a kept-alive connection (as Prometheus scrapes; its credentials are remembered after the first check), in {rounds} rounds of {n} quiet scrapes and then {n} scrapes while {clients} clients each send a wrong password every second ({clients} a second in all), each a new one (so none is answered from the failure cache). A flooded block begins once every flooding client has sent, and the next quiet block once every bogus request was answered. The flooding clients run on a runtime of their own, as if on other machines, but on the same two cores: `cargo bench --bench auth_flood`.\n\n"
    ));
    md.push_str("| target | measured | result |\n|---|---|---|\n");
    md.push_str(&format!(
        "| scrape p50 under {clients} bogus-auth requests a second ≤ {TARGET_RATIO}× the quiet p50 | {ratio:.2}× ({f50:.2} ms vs {q50:.2} ms, {total} scrapes each); failed scrapes {flooded_failed} (quiet {quiet_failed}) | {verdict} |\n\n"
    ));
    md.push_str("| figure | quiet | flooded |\n|---|---|---|\n");
    md.push_str(&format!(
        "| scrape p50 / p90 / p99 | {:.2} / {:.2} / {:.2} ms | {:.2} / {:.2} / {:.2} ms |\n",
        q50,
        quantile(&quiet, 0.9),
        quantile(&quiet, 0.99),
        f50,
        quantile(&flooded, 0.9),
        quantile(&flooded, 0.99)
    ));
    md.push_str(&format!(
        "| flooded p50 ÷ quiet p50 of each round: lowest / median / highest | — | {:.2}× / {:.2}× / {:.2}× |\n",
        quantile(&round_ratios, 0.0),
        quantile(&round_ratios, 0.5),
        quantile(&round_ratios, 1.0)
    ));
    md.push_str(&format!(
        "| bogus requests sent in the flood phases (from the first request to the last scrape) | — | {flood_sent} in {flood_seconds:.1} s ({:.0} a second) |\n| bogus answers in all: 401 (bcrypt ran, or a refused check padded) / 503 (bcrypt queue full) / other / error | — | {} / {} / {} / {} |\n",
        flood_sent as f64 / flood_seconds.max(f64::EPSILON),
        counts[0], counts[1], counts[2], counts[3]
    ));
    std::fs::write(dir.join("auth.md"), &md)?;
    eprintln!("wrote {}", dir.join("auth.md").display());
    Ok(())
}

//! Scrape latency under a flood of bogus basic-auth requests: the binary (`demo`, basic auth
//! with a bcrypt hash of cost 10, as the README makes it) scraped by one client with the right
//! password over a kept-alive connection, as Prometheus scrapes, first quietly and then while
//! 1,500 clients each send a wrong password every second (each a new one, so none is answered
//! from the failure cache). The flood runs on a tokio runtime of its own, so that its client
//! work competes with the exporter for the cores but does not hold up the scraper's reading of
//! its answers. Writes a table to `target/bench/auth.md` for `scripts/bench.sh`.
//!
//! Knobs: BENCH_AUTH_FLOOD (connections, default 1500), BENCH_AUTH_SCRAPES (measured scrapes
//! per phase, default 200), BENCH_AUTH_COST (bcrypt cost, default 10).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

async fn bench(flood_runtime: &tokio::runtime::Handle) -> Result<()> {
    let flood: usize = env_or("BENCH_AUTH_FLOOD", 1500)?;
    let n: usize = env_or("BENCH_AUTH_SCRAPES", 200)?;
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
    let (quiet, quiet_failed) = scrapes(&scraper, &url, n).await;
    eprintln!("[auth] quiet: p50 {:.2} ms", quantile(&quiet, 0.5));

    // The flood: `flood` connections, each sending a new wrong password as soon as the last
    // one was answered.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, by_status) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new([(); 4].map(|_| AtomicU64::new(0))),
    );
    let mut tasks = Vec::with_capacity(flood);
    let flood_began = Instant::now();
    for i in 0..flood {
        let (stop, sent, by_status, url) = (
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&by_status),
            url.clone(),
        );
        tasks.push(flood_runtime.spawn(async move {
            let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(30)).build() else {
                return;
            };
            // Spread over the second, then one request a second each: `flood` requests a second.
            tokio::time::sleep(Duration::from_micros((i as u64 * 1_000_000) / flood as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut k = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                k += 1;
                let r = client
                    .get(&url)
                    .basic_auth("mallory", Some(format!("guess-{i}-{k}")))
                    .send()
                    .await;
                sent.fetch_add(1, Ordering::Relaxed);
                let slot = match r.map(|r| r.status().as_u16()) {
                    Ok(401) => 0,
                    Ok(503) => 1,
                    Ok(_) => 2,
                    Err(_) => 3,
                };
                by_status[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // let the flood build up
    let (flooded, flooded_failed) = scrapes(&scraper, &url, n).await;
    stop.store(true, Ordering::Relaxed);
    let flood_seconds = flood_began.elapsed().as_secs_f64();
    let during = sent.load(Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(35), task).await;
    }
    let counts: Vec<u64> = by_status.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let (q50, f50) = (quantile(&quiet, 0.5), quantile(&flooded, 0.5));
    let ratio = f50 / q50;
    eprintln!("[auth] flooded: p50 {f50:.2} ms ({ratio:.2}× quiet)");

    let verdict = if ratio <= TARGET_RATIO && flooded_failed == 0 {
        "pass"
    } else {
        "**FAIL**"
    };
    let mut md = String::new();
    md.push_str("\n## Basic auth under a flood of bogus passwords\n\n");
    md.push_str(&format!(
        "`demo` with basic auth (bcrypt cost {cost}), scraped {n} times with the right password over a kept-alive connection (as Prometheus scrapes; its credentials are remembered after the first check), first quietly, then while {flood} clients each send a wrong password every second ({flood} a second in all), each a new one (so none is answered from the failure cache). The flooding clients run on a runtime of their own, as if on other machines, but on the same two cores: `cargo bench --bench auth_flood`.\n\n"
    ));
    md.push_str("| target | measured | result |\n|---|---|---|\n");
    md.push_str(&format!(
        "| scrape p50 under {flood} bogus-auth requests a second ≤ {TARGET_RATIO}× the quiet p50 | {ratio:.2}× ({f50:.2} ms vs {q50:.2} ms); failed scrapes {flooded_failed} (quiet {quiet_failed}) | {verdict} |\n\n"
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
        "| bogus requests answered (3 s of build-up, then while the scrapes ran) | — | {during} in {flood_seconds:.1} s |\n| bogus answers in all: 401 (bcrypt ran, or a refused check padded) / 503 (bcrypt queue full) / other / error | — | {} / {} / {} / {} |\n",
        counts[0], counts[1], counts[2], counts[3]
    ));
    std::fs::write(dir.join("auth.md"), &md)?;
    eprintln!("wrote {}", dir.join("auth.md").display());
    Ok(())
}

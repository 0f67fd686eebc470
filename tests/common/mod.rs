//! Shared pieces of the integration tests: a simulator and an exporter on 127.0.0.1 port 0,
//! a pinned clock, and a small reader of the text exposition format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use opretail_exporter::config::{Config, GatewayConfig, ShopTarget};
use opretail_exporter::exporter::{self, RunningExporter};
use opretail_exporter::model::Clock;
use opretail_exporter::model::{DeviceTarget, TargetId};
use opretail_exporter::simulator::{RunningSimulator, SimConfig, Simulator};
use opretail_exporter::web_config::WebConfig;

pub const LOOPBACK: ([u8; 4], u16) = ([127, 0, 0, 1], 0);

/// The tests' HTTP client: a request that takes over 10 s fails the test.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test time").with_timezone(&Utc)
}

pub fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test local time")
}

pub struct Harness {
    pub sim: RunningSimulator,
    pub exporter: RunningExporter,
    pub clock: Clock,
    pub http: reqwest::Client,
}

/// A config for the demo simulator at `url`: the given shop ids and devices, timeout short,
/// two quick retries, interval long (tests drive further polls with `poll_once`).
pub fn config(url: &str, shops: &[&str], macs: &[(&str, &str, &str)]) -> Config {
    let mut gateway = GatewayConfig::new(url.parse().expect("url"), "demo".into(), "demo-secret".into());
    gateway.timeout = Duration::from_millis(500);
    // Fast retries and no rate limit to speak of: the tests count attempts, not wait for them.
    gateway.max_retries = 2;
    gateway.retry_backoff = Duration::from_millis(1);
    gateway.retry_backoff_max = Duration::from_millis(5);
    gateway.requests_per_second = 10_000.0;
    Config {
        gateway,
        timezone: chrono_tz::Asia::Shanghai,
        poll_interval: Duration::from_secs(3600),
        stale_after: opretail_exporter::config::DEFAULT_STALE_AFTER,
        hour_delay: std::time::Duration::ZERO,
        device_poll_interval: std::time::Duration::from_secs(3600),
        max_catch_up_hours: 6,
        baseline: opretail_exporter::config::BaselineConfig { weeks: 0 },
        sharding: None,
        calendar: Default::default(),
        shop_overrides: Default::default(),
        shops: shops
            .iter()
            .map(|s| ShopTarget::new(s.parse::<TargetId>().expect("id")))
            .collect(),
        devices: macs
            .iter()
            .map(|(mac, name, shop)| DeviceTarget {
                mac: mac.to_string(),
                name: (!name.is_empty()).then(|| name.to_string()),
                shop_id: (!shop.is_empty()).then(|| shop.to_string()),
            })
            .collect(),
    }
}

impl Harness {
    /// Starts the demo simulator and an exporter built by `make_config(sim_url)`, both on the
    /// pinned clock, and waits until the first poll has completed.
    pub async fn start(now: DateTime<Utc>, make_config: impl FnOnce(&str) -> Config) -> Harness {
        let h = Self::start_unready(now, make_config).await;
        h.wait_ready().await;
        h
    }

    pub async fn start_unready(now: DateTime<Utc>, make_config: impl FnOnce(&str) -> Config) -> Harness {
        Self::start_full(now, |_| {}, |sim| make_config(&sim.url()), None).await
    }

    /// Like `start`, with no poll loop: every round is one the test runs itself (the first one
    /// included), so that no round of the loop races the test's own.
    pub async fn start_manual(now: DateTime<Utc>, make_config: impl FnOnce(&str) -> Config) -> Harness {
        Self::start_manual_with(now, |_| {}, make_config).await
    }

    /// Like `start_manual`, with the demo simulator's configuration adjusted first.
    pub async fn start_manual_with(
        now: DateTime<Utc>,
        adjust_sim: impl FnOnce(&mut SimConfig),
        make_config: impl FnOnce(&str) -> Config,
    ) -> Harness {
        let options = exporter::Options {
            manual_polling: true,
            ..exporter::Options::default()
        };
        let h = Self::start_full_with(now, adjust_sim, |sim| make_config(&sim.url()), options).await;
        h.poll().await;
        h.wait_ready().await;
        h
    }

    /// Like `start_unready`, with the demo simulator's configuration adjusted first.
    pub async fn start_with(
        now: DateTime<Utc>,
        adjust_sim: impl FnOnce(&mut SimConfig),
        make_config: impl FnOnce(&RunningSimulator) -> Config,
    ) -> Harness {
        Self::start_full(now, adjust_sim, make_config, None).await
    }

    /// Like `start_unready`, serving with the TLS and basic auth of `web`; `http` is a plain
    /// client (bring your own for TLS or credentials).
    pub async fn start_unready_with(
        now: DateTime<Utc>,
        make_config: impl FnOnce(&str) -> Config,
        web: Option<Arc<WebConfig>>,
    ) -> Harness {
        Self::start_full(now, |_| {}, |sim| make_config(&sim.url()), web).await
    }

    async fn start_full(
        now: DateTime<Utc>,
        adjust_sim: impl FnOnce(&mut SimConfig),
        make_config: impl FnOnce(&RunningSimulator) -> Config,
        web: Option<Arc<WebConfig>>,
    ) -> Harness {
        let options = exporter::Options {
            web: web.map(Into::into),
            ..exporter::Options::default()
        };
        Self::start_full_with(now, adjust_sim, make_config, options).await
    }

    pub async fn start_full_with(
        now: DateTime<Utc>,
        adjust_sim: impl FnOnce(&mut SimConfig),
        make_config: impl FnOnce(&RunningSimulator) -> Config,
        options: exporter::Options,
    ) -> Harness {
        let clock = Clock::manual(now);
        let mut sim_config = SimConfig::demo(clock.clone());
        adjust_sim(&mut sim_config);
        let sim = Simulator::new(sim_config)
            .spawn(SocketAddr::from(LOOPBACK))
            .await
            .expect("simulator starts");
        let config = make_config(&sim);
        let exporter = exporter::start_with(config, SocketAddr::from(LOOPBACK), clock.clone(), options)
            .await
            .expect("exporter starts");
        let http = http_client();
        Harness {
            sim,
            exporter,
            clock,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.exporter.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Waits until `/-/ready` answers 200 (the first poll has completed).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.get("/-/ready").await.0 == 200 {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "exporter not ready within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The poller's next round, run to completion.
    pub async fn poll(&self) -> opretail_exporter::poller::PollReport {
        self.exporter.poller.poll_once().await
    }

    pub async fn scrape(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
    }

    pub async fn stop(self) {
        self.exporter.shutdown().await.expect("exporter stops");
        self.sim.shutdown().await;
    }
}

/// A parsed `/metrics` answer.
#[derive(Debug, Default)]
pub struct Exposition {
    pub text: String,
    /// (name, labels) → value
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Exposition {
    pub fn parse(text: &str) -> Exposition {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name.to_string(), parse_labels(rest.trim_end_matches('}'))),
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Exposition {
            text: text.to_string(),
            samples,
        }
    }

    /// Every sample of `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
            .collect()
    }

    /// The one sample of `name` with `labels`, or `None` if there is none. Panics on several.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(found.len() <= 1, "{name}{labels:?} matches {} samples", found.len());
        found.first().copied()
    }

    /// Like `get`, but the sample must exist.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{}", self.text))
    }

    /// All label sets of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .filter_map(|(_, l, _)| l.get(label).cloned())
            .collect()
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label key");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(match e {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        rest = after[end..].trim_start_matches(',');
    }
    out
}

/// A fresh, empty directory for one test's files, under the system's temporary directory: its
/// name is unique within the process, and whatever an earlier process with the same id left
/// there is removed first.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("opretail-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A self-signed server certificate for localhost and 127.0.0.1, written (over any before it)
/// as `server.crt` and `server.key` in `dir`, the key readable by its owner only; returns the
/// certificate PEM.
pub fn write_server_cert(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("self-signed certificate");
    let pem = cert.cert.pem();
    std::fs::write(dir.join("server.crt"), &pem).expect("write cert");
    let key = dir.join("server.key");
    std::fs::write(&key, cert.key_pair.serialize_pem()).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    pem
}

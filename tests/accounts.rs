//! Several accounts in one exporter, each against a simulator of its own on 127.0.0.1: one
//! account's bad key or outage leaves another's values, counters and rate limit alone; every
//! series of a named account carries `account` (and the single-account form none); each
//! family is declared once in a scrape of two accounts; a reload adds and removes accounts;
//! sharded replicas cover every target of every account once; the status page and its JSON show
//! every account merged (failing rows of all first) unless `account=` picks one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use common::{config, utc, Exposition, Harness, LOOPBACK};
use opretail_exporter::config::{Account, Accounts, Config, Shard};
use opretail_exporter::exporter::{self, Options, ReloadError, RunningExporter};
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{Fault, RunningSimulator, SimConfig, Simulator};

const NOW: &str = "2024-05-01T06:30:00Z";
const SHOPS: &[&str] = &["S_9603", "O_1002"];
const DEVICES: &[(&str, &str, &str)] = &[("d47c44906f01", "Entrance A", "9601"), ("d47c44906f02", "", "")];

/// Two simulators (one per account) and an exporter of the accounts `make` builds from their
/// URLs, all on one pinned clock, polled by the test (every account once before it returns).
struct Two {
    sims: Vec<RunningSimulator>,
    exporter: RunningExporter,
    clock: Clock,
    http: reqwest::Client,
}

async fn simulator(clock: &Clock) -> RunningSimulator {
    Simulator::new(SimConfig::demo(clock.clone()))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts")
}

fn named(list: Vec<(&str, Config)>) -> Accounts {
    Accounts::named(
        list.into_iter()
            .map(|(name, config)| Account {
                name: Some(name.to_string()),
                config,
            })
            .collect(),
    )
    .expect("named accounts")
}

impl Two {
    async fn start(options: Options, make: impl FnOnce(&str, &str) -> Accounts) -> Two {
        let clock = Clock::manual(utc(NOW));
        let sims = vec![simulator(&clock).await, simulator(&clock).await];
        let accounts = make(&sims[0].url(), &sims[1].url());
        let options = Options {
            manual_polling: true,
            ..options
        };
        let exporter = exporter::start_accounts(accounts, SocketAddr::from(LOOPBACK), clock.clone(), options)
            .await
            .expect("exporter starts");
        let http = common::http_client();
        let two = Two {
            sims,
            exporter,
            clock,
            http,
        };
        two.poll_all().await;
        two
    }

    /// One round of every account's poller.
    async fn poll_all(&self) {
        for poller in self.exporter.pollers() {
            poller.poll_once().await;
        }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("http://{}{path}", self.exporter.addr))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    async fn scrape(&self) -> Exposition {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        Exposition::parse(&body)
    }

    async fn stop(self) {
        self.exporter.shutdown().await.expect("exporter stops");
        for sim in self.sims {
            sim.shutdown().await;
        }
    }
}

/// The shop, device and target series of `account` in `m`, the `account` label left out.
fn values_of(m: &Exposition, account: Option<&str>) -> BTreeSet<(String, String, String)> {
    m.samples
        .iter()
        .filter(|(n, _, _)| {
            n.starts_with("opretail_shop_") && !n.contains("revisions")
                || n.starts_with("opretail_device_") && !n.contains("revisions")
                || n.starts_with("opretail_target_")
        })
        .filter(|(_, l, _)| l.get("account").map(String::as_str) == account)
        .map(|(n, l, v)| {
            let mut l = l.clone();
            l.remove("account");
            (n.clone(), format!("{l:?}"), v.to_string())
        })
        .collect()
}

fn errors(m: &Exposition, account: &str) -> f64 {
    m.find("opretail_api_errors_total", &[("account", account)])
        .iter()
        .sum()
}

#[tokio::test]
async fn one_accounts_bad_key_or_outage_leaves_the_others_values_alone() {
    let two = Two::start(Options::default(), |a, b| {
        let mut bad = config(a, SHOPS, DEVICES);
        bad.gateway.app_secret = "not-the-secret".to_string().into();
        named(vec![("a", bad), ("b", config(b, SHOPS, DEVICES))])
    })
    .await;
    // b alone, against the same simulator and clock.
    let solo = exporter::start_with(
        config(&two.sims[1].url(), SHOPS, DEVICES),
        SocketAddr::from(LOOPBACK),
        two.clock.clone(),
        Options {
            manual_polling: true,
            ..Options::default()
        },
    )
    .await
    .expect("solo exporter starts");
    solo.poller.poll_once().await;
    let solo_text = String::from_utf8(solo.store.exposition(false).concat()).expect("utf-8");
    let solo_values = values_of(&Exposition::parse(&solo_text), None);
    assert!(
        solo_values.iter().any(|(n, _, _)| n == "opretail_shop_walk_in"),
        "the solo run has shop values"
    );
    assert!(
        solo_values.iter().any(|(n, _, _)| n == "opretail_device_walk_in"),
        "the solo run has device values"
    );

    let m = two.scrape().await;
    assert_eq!(values_of(&m, Some("b")), solo_values, "b as if alone");
    for target in ["S_9603", "O_1002", "d47c44906f01", "d47c44906f02"] {
        assert_eq!(
            m.value("opretail_target_up", &[("account", "a"), ("target", target)]),
            0.0,
            "{target} of a"
        );
        assert_eq!(
            m.value("opretail_target_up", &[("account", "b"), ("target", target)]),
            1.0,
            "{target} of b"
        );
    }
    assert!(
        m.find("opretail_shop_walk_in", &[("account", "a")]).is_empty(),
        "a has no values"
    );
    assert!(
        errors(&m, "a") >= 2.0,
        "a's signature errors are counted: {}",
        errors(&m, "a")
    );
    assert_eq!(errors(&m, "b"), 0.0, "no error of b");
    assert!(
        m.find("opretail_api_errors_total", &[]).len()
            == m.find("opretail_api_errors_total", &[("account", "a")]).len(),
        "every error series is a's"
    );
    let rate =
        |m: &Exposition, account: &str| m.value("opretail_api_rate_limit_requests_per_second", &[("account", account)]);
    assert_eq!(rate(&m, "b"), 10_000.0, "b's rate limit unchanged");
    assert!(!m.text.contains("not-the-secret"));

    // Now a's gateway throttles every call and then goes away; b's values and rate stay.
    two.sims[0].sim.set_fault(Some(Fault::Code(-100)));
    two.poll_all().await;
    let m = two.scrape().await;
    assert_eq!(
        values_of(&m, Some("b")),
        solo_values,
        "b unchanged while a is throttled"
    );
    assert!(rate(&m, "a") < 10_000.0, "a's rate lowered: {}", rate(&m, "a"));
    assert_eq!(rate(&m, "b"), 10_000.0, "b's rate limit unchanged");
    assert_eq!(errors(&m, "b"), 0.0, "no error of b");
    two.sims[0].sim.set_fault(Some(Fault::Http(503)));
    two.poll_all().await;
    let m = two.scrape().await;
    assert_eq!(values_of(&m, Some("b")), solo_values, "b unchanged while a is down");
    assert_eq!(errors(&m, "b"), 0.0, "no error of b");
    let down: f64 = m
        .find("opretail_api_errors_total", &[("account", "a"), ("code", "http_503")])
        .iter()
        .sum();
    assert!(down > 0.0, "a's outage is counted under a");
    solo.shutdown().await.expect("solo stops");
    two.stop().await;
}

/// Series every account has its own of (health and values), by name prefix.
fn per_account(name: &str) -> bool {
    [
        "opretail_api_",
        "opretail_gateway_",
        "opretail_shop_",
        "opretail_device_",
        "opretail_target_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || matches!(
            name,
            "opretail_poll_duration_seconds"
                | "opretail_refresh_duration_seconds"
                | "opretail_refresh_requests"
                | "opretail_refresh_budget_seconds"
        )
}

#[tokio::test]
async fn every_series_of_a_named_account_carries_it_and_the_single_form_none() {
    let two = Two::start(Options::default(), |a, b| {
        named(vec![
            ("brand-a", config(a, SHOPS, DEVICES)),
            ("b.2", config(b, SHOPS, DEVICES)),
        ])
    })
    .await;
    let m = two.scrape().await;
    let mut families = BTreeSet::new();
    for (name, labels, _) in &m.samples {
        let account = labels.get("account").map(String::as_str);
        if per_account(name) {
            assert!(
                matches!(account, Some("brand-a" | "b.2")),
                "{name}{labels:?} carries its account"
            );
            families.insert(name.as_str());
        } else {
            assert_eq!(account, None, "{name}{labels:?} is process-wide");
        }
    }
    for family in [
        "opretail_shop_walk_in",
        "opretail_shop_walk_in_today",
        "opretail_shop_info",
        "opretail_shop_open",
        "opretail_device_walk_in",
        "opretail_target_up",
        "opretail_api_requests_total",
        "opretail_api_rate_limit_requests_per_second",
        "opretail_gateway_clock_skew_seconds",
        "opretail_poll_duration_seconds",
        "opretail_shop_hour_revisions_total",
    ] {
        assert!(families.contains(family), "{family} is published per account");
        for account in ["brand-a", "b.2"] {
            assert!(
                !m.find(family, &[("account", account)]).is_empty(),
                "{family} of {account}"
            );
        }
    }
    // The two accounts poll the same ids: their series differ by the account alone.
    assert_eq!(values_of(&m, Some("brand-a")), values_of(&m, Some("b.2")));
    assert_eq!(m.value("opretail_exporter_build_info", &[]), 1.0);
    two.stop().await;

    let h = Harness::start(utc(NOW), |url| config(url, SHOPS, DEVICES)).await;
    let m = h.scrape().await;
    assert!(m.find("opretail_shop_walk_in", &[]).len() > 1);
    assert!(!m.text.contains("account"), "no account anywhere in the single form");
    h.stop().await;
}

#[tokio::test]
async fn each_family_is_declared_once_with_two_accounts() {
    let two = Two::start(Options::default(), |a, b| {
        named(vec![("a", config(a, SHOPS, DEVICES)), ("b", config(b, SHOPS, DEVICES))])
    })
    .await;
    let m = two.scrape().await;
    let mut help = BTreeMap::new();
    let mut kind = BTreeMap::new();
    for line in m.text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            *help.entry(rest.split(' ').next().unwrap_or_default()).or_insert(0) += 1;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            *kind.entry(rest.split(' ').next().unwrap_or_default()).or_insert(0) += 1;
        }
    }
    assert!(help.len() > 30, "{} families", help.len());
    assert!(help.values().all(|&n| n == 1), "HELP once per family: {help:?}");
    assert!(kind.values().all(|&n| n == 1), "TYPE once per family: {kind:?}");
    // The series of one family stay together: a family's name, once left, does not come back.
    let mut done = BTreeSet::new();
    let mut current = "";
    for (name, _, _) in &m.samples {
        let family = name
            .trim_end_matches("_bucket")
            .trim_end_matches("_sum")
            .trim_end_matches("_count");
        if family != current {
            assert!(done.insert(family), "{family} is split");
            current = family;
        }
    }
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(m.text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool runs");
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => eprintln!("promtool is not installed ({e}): the exposition was not checked by it"),
    }
    two.stop().await;
}

#[tokio::test]
async fn a_reload_adds_and_removes_accounts() {
    let dir = common::temp_dir("accounts-reload");
    let options = Options {
        config_file: Some(dir.join("never-read.yaml")),
        ..Options::default()
    };
    let urls = std::sync::Mutex::new(Vec::new());
    let two = Two::start(options, |a, b| {
        urls.lock().unwrap().extend([a.to_string(), b.to_string()]);
        named(vec![("a", config(a, SHOPS, DEVICES)), ("b", config(b, SHOPS, DEVICES))])
    })
    .await;
    let urls = urls.into_inner().unwrap();
    let reloader = two.exporter.reloader.clone().expect("reloader");
    let m = two.scrape().await;
    assert!(!m.find("opretail_shop_walk_in", &[("account", "a")]).is_empty());
    assert_eq!(two.get("/-/ready").await.0, 200);

    // c joins (against a's simulator), a leaves, b stays with fewer shops.
    reloader
        .apply(named(vec![
            ("b", config(&urls[1], &["S_9603"], &[])),
            ("c", config(&urls[0], SHOPS, DEVICES)),
        ]))
        .await
        .expect("reload applies");
    assert!(two.exporter.poller_of(Some("a")).is_none(), "a's poller is gone");
    let c = two.exporter.poller_of(Some("c")).expect("c is polled");
    let m = two.scrape().await;
    assert!(
        !m.text.contains("account=\"a\""),
        "every series of a vanished at once:\n{}",
        m.text
            .lines()
            .filter(|l| l.contains("account=\"a\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(two.get("/-/ready").await.0, 503, "not ready until c has polled");
    assert!(m.find("opretail_target_up", &[("account", "c")]).is_empty());
    c.poll_once().await;
    two.exporter.poller_of(Some("b")).expect("b").poll_once().await;
    assert_eq!(two.get("/-/ready").await.0, 200);
    let m = two.scrape().await;
    assert_eq!(
        m.value("opretail_target_up", &[("account", "c"), ("target", "O_1002")]),
        1.0
    );
    assert!(!m.find("opretail_api_requests_total", &[("account", "c")]).is_empty());
    assert_eq!(
        m.label_values("opretail_target_up", "target").len(),
        5,
        "c's four targets and b's S_9603"
    );
    assert!(m
        .get("opretail_target_up", &[("account", "b"), ("target", "O_1002")])
        .is_none());
    assert_eq!(m.value("opretail_config_last_reload_successful", &[]), 1.0);

    // The single-account form needs a restart; nothing changes.
    let err = reloader
        .apply(Accounts::single(config(&urls[1], SHOPS, DEVICES)))
        .await
        .expect_err("a switch of form is refused");
    assert!(matches!(err, ReloadError::Form), "{err}");
    assert!(err.to_string().contains("restart"), "{err}");
    let after = two.scrape().await;
    assert_eq!(after.value("opretail_config_last_reload_successful", &[]), 0.0);
    assert_eq!(values_of(&after, Some("c")), values_of(&m, Some("c")));
    two.stop().await;
}

#[tokio::test]
async fn two_sharded_replicas_cover_every_target_of_both_accounts_once() {
    let shops: Vec<String> = (9601..=9620).map(|d| format!("S_{d}")).collect();
    let shop_refs: Vec<&str> = shops.iter().map(String::as_str).collect();
    let macs: Vec<String> = (1..=10).map(|n| format!("d47c44906f{n:02x}")).collect();
    let devices: Vec<(&str, &str, &str)> = macs.iter().map(|m| (m.as_str(), "", "")).collect();
    let mut seen = BTreeSet::new();
    for index in 0..2 {
        let options = Options {
            shard: Some(Shard::new(index, 2).expect("shard")),
            ..Options::default()
        };
        let two = Two::start(options, |a, b| {
            named(vec![
                ("a", config(a, &shop_refs, &devices)),
                ("b", config(b, &shop_refs, &devices)),
            ])
        })
        .await;
        let m = two.scrape().await;
        for account in ["a", "b"] {
            let mine = m.find("opretail_target_up", &[("account", account)]);
            assert!(!mine.is_empty(), "shard {index} polls some of {account}");
        }
        for (name, labels, _) in &m.samples {
            if name == "opretail_target_up" {
                let key = (labels["account"].clone(), labels["target"].clone());
                assert!(seen.insert(key.clone()), "{key:?} polled by two shards");
            }
        }
        two.stop().await;
    }
    assert_eq!(seen.len(), 60, "every target of both accounts once");
}

#[tokio::test]
async fn the_status_page_and_its_json_show_one_account_when_asked() {
    let two = Two::start(Options::default(), |a, b| {
        let mut bad = config(a, SHOPS, DEVICES);
        bad.gateway.app_secret = "not-the-secret".to_string().into();
        named(vec![("a", bad), ("b", config(b, SHOPS, DEVICES))])
    })
    .await;
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).expect("json");
    for (query, account, up, failed) in [("?account=a", "a", false, true), ("?account=b", "b", true, false)] {
        let (status, body) = two.get(&format!("/api/v1/targets{query}")).await;
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert_eq!(v["account"], account, "{query}");
        assert_eq!(v["accounts"], serde_json::json!(["a", "b"]));
        let rows = v["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 4, "{query}");
        for row in rows {
            assert_eq!(row["account"], account, "{row}");
            assert_eq!(row["up"], up, "{row}");
        }
        let summary = &v["summary"];
        assert_eq!(
            summary["last_hour"]["failed"].as_u64().expect("failed") > 0,
            failed,
            "{query}: {summary}"
        );
        assert_eq!(summary["rate_limit"], 10_000.0);
    }
    let (status, body) = two.get("/api/v1/targets?account=nobody").await;
    assert_eq!(status, 400);
    assert!(
        json(&body)["error"].as_str().expect("error").contains("\"nobody\""),
        "{body}"
    );
    let (status, page) = two.get("/?account=b").await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("<td class=\"account\">b</td>").count(), 4, "{page}");
    assert!(page.contains("<a href=\"/?account=a\">a</a>"), "a link to a");
    assert!(!page.contains("not-the-secret"));
    two.stop().await;

    let h = Harness::start(utc(NOW), |url| config(url, SHOPS, DEVICES)).await;
    let (_, body) = h.get("/api/v1/targets").await;
    assert!(!body.contains("account"), "{body}");
    let (_, page) = h.get("/").await;
    assert!(!page.contains("ccount"), "no account on the single form's page");
    assert_eq!(h.get("/api/v1/targets?account=a").await.0, 400);
    h.stop().await;
}

#[tokio::test]
async fn without_an_account_the_status_page_and_its_json_show_all_accounts_merged() {
    let two = Two::start(Options::default(), |a, b| {
        let mut bad = config(b, SHOPS, DEVICES);
        bad.gateway.app_secret = "not-the-secret".to_string().into();
        // b is listed first and fine; a, listed second, fails: its rows still come first.
        named(vec![("b", config(a, SHOPS, DEVICES)), ("a", bad)])
    })
    .await;
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).expect("json");
    for query in ["", "?account=", "?account=&page=1"] {
        let (status, body) = two.get(&format!("/api/v1/targets{query}")).await;
        assert_eq!(status, 200, "{body}");
        let v = json(&body);
        assert!(v["account"].is_null(), "{query}: {body}");
        assert_eq!(v["accounts"], serde_json::json!(["b", "a"]));
        assert_eq!(v["total"], 8, "4 targets of each account");
        let rows: Vec<(&str, &str, bool)> = v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["account"].as_str().expect("account"),
                    r["id"].as_str().expect("id"),
                    r["up"].as_bool().expect("up"),
                )
            })
            .collect();
        assert_eq!(rows.len(), 8);
        assert!(
            rows[..4].iter().all(|(account, _, up)| *account == "a" && !up),
            "{rows:?}"
        );
        assert!(
            rows[4..].iter().all(|(account, _, up)| *account == "b" && *up),
            "{rows:?}"
        );
        assert_eq!(rows[0].1, "S_9603", "a's failing shop first");
        assert!(v["rows"][0]["error"]["code"].is_string(), "{body}");
        let summary = &v["summary"];
        assert_eq!(
            (summary["targets"].as_u64(), summary["down"].as_u64()),
            (Some(8), Some(4))
        );
        let accounts = summary["accounts"].as_array().expect("accounts");
        let figures: Vec<(&str, bool)> = accounts
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().expect("name"),
                    a["failed"].as_u64().expect("failed") > 0,
                )
            })
            .collect();
        assert_eq!(figures, [("b", false), ("a", true)]);
        assert_eq!(accounts[0]["rate_limit"], 10_000.0);
        let sum = |key: &str| accounts.iter().map(|a| a[key].as_u64().expect("count")).sum::<u64>();
        assert_eq!(summary["last_hour"]["requests"].as_u64(), Some(sum("requests")));
        assert_eq!(summary["last_hour"]["failed"].as_u64(), Some(sum("failed")));
        assert!(summary["rate_limit"].is_null(), "a rate is an account's own");
    }
    let (_, body) = two.get("/api/v1/targets?status=up&q=s_9603").await;
    let v = json(&body);
    assert_eq!(v["total"], 1, "{body}");
    assert_eq!(v["rows"][0]["account"], "b");
    let (_, body) = two.get("/api/v1/targets?account=b").await;
    let v = json(&body);
    assert_eq!((v["account"].as_str(), v["total"].as_u64()), (Some("b"), Some(4)));
    assert!(v["rows"].as_array().expect("rows").iter().all(|r| r["account"] == "b"));
    assert!(
        v["summary"].get("accounts").is_none(),
        "one account's summary is its own"
    );

    let (status, page) = two.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<a class=\"current\" aria-current=\"page\" href=\"/\">All accounts</a><a href=\"/?account=b\">b</a><a href=\"/?account=a\">a</a>"),
        "{page}"
    );
    assert_eq!(
        page.matches("<td class=\"account\"><a href=\"/?account=a\">a</a></td>")
            .count(),
        4
    );
    assert_eq!(
        page.matches("<td class=\"account\"><a href=\"/?account=b\">b</a></td>")
            .count(),
        4
    );
    let first_a = page
        .find("<td class=\"account\"><a href=\"/?account=a\">")
        .expect("a row");
    let first_b = page
        .find("<td class=\"account\"><a href=\"/?account=b\">")
        .expect("b row");
    assert!(first_a < first_b, "a's failing rows first");
    assert!(
        page.contains("<dd id=\"targets-up\" class=\"bad\">4 of 8</dd>"),
        "{page}"
    );
    assert!(page.contains("<table id=\"account-summary\">"));
    assert!(!page.contains("not-the-secret"));
    two.stop().await;
}

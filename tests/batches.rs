//! How shop calls are packed and split against gateways that refuse what they are asked: a
//! gateway refusing long `id` lists, answers over the size cap, organisations too big for one
//! call, and one bad id among good ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use opretail_exporter::client::{Client, METHOD_SHOPS};
use opretail_exporter::simulator::PARAM_TOO_LONG;

/// The gateway's success code.
const SUCCESS: i64 = 0;

const NOW: &str = "2024-05-01T06:30:00Z";

/// The demo's 20 shops as `S_` ids.
fn every_shop() -> Vec<String> {
    (9601..=9620).map(|d| format!("S_{d}")).collect()
}

fn refs(ids: &[String]) -> Vec<&str> {
    ids.iter().map(String::as_str).collect()
}

fn walk_ins(m: &Exposition) -> usize {
    m.find("opretail_shop_walk_in", &[]).len()
}

fn splits(m: &Exposition) -> f64 {
    m.get("opretail_api_batch_splits_total", &[("method", METHOD_SHOPS)])
        .unwrap_or(0.0)
}

/// Against a gateway that refuses `id` lists over 100 characters, every shop is served, and
/// the next poll asks in the parts that worked: no failed call.
#[tokio::test]
async fn a_gateway_refusing_long_id_lists_still_serves_every_shop() {
    let shops = every_shop();
    let h = Harness::start_manual_with(
        utc(NOW),
        |sim| sim.max_id_chars = Some(100),
        |url| config(url, &refs(&shops), &[]),
    )
    .await;
    // 20 ids of 6 characters and 19 commas: 139 characters, refused; halves of 69 work. The
    // batch's hourly call and its day-figure call are both refused once and split.
    assert_eq!(h.sim.sim.answered(PARAM_TOO_LONG), 2);
    let m = h.scrape().await;
    assert_eq!(walk_ins(&m), 20, "every shop has values");
    assert_eq!(
        m.find("opretail_shop_walk_in_today", &[]).len(),
        20,
        "and its day figures"
    );
    assert_eq!(splits(&m), 2.0);
    for id in &shops {
        assert_eq!(m.value("opretail_target_up", &[("target", id)]), 1.0, "{id}");
    }
    let errors = m.value(
        "opretail_api_errors_total",
        &[("method", METHOD_SHOPS), ("code", &PARAM_TOO_LONG.to_string())],
    );
    assert_eq!(errors, 2.0, "the refusals are counted by their code");

    let ok = h.sim.sim.answered(SUCCESS);
    let report = h.poll().await;
    assert_eq!((report.calls, report.failed_calls, report.splits), (2, 0, 0));
    assert_eq!(
        h.sim.sim.answered(PARAM_TOO_LONG),
        2,
        "the second poll makes no failed call"
    );
    assert_eq!(h.sim.sim.answered(SUCCESS) - ok, 2);
    assert_eq!(walk_ins(&h.scrape().await), 20);
    h.stop().await;
}

/// One bad id among good ones: the batch is split down to it, the others are served, and it
/// is down with its code, alone, on the next poll too.
#[tokio::test]
async fn one_id_the_gateway_refuses_does_not_black_out_its_batch() {
    // An 18-digit shop id: 20 characters, longer than the gateway takes even alone.
    let long = format!("S_{}", "9".repeat(18));
    let mut shops = every_shop()[..8].to_vec();
    shops.insert(3, long.clone());
    let h = Harness::start_manual_with(
        utc(NOW),
        |sim| sim.max_id_chars = Some(19),
        |url| {
            let mut c = config(url, &refs(&shops), &[]);
            c.gateway.max_id_chars = 1000;
            c
        },
    )
    .await;
    let m = h.scrape().await;
    assert_eq!(walk_ins(&m), 8, "the eight good shops are served");
    assert_eq!(m.value("opretail_target_up", &[("target", &long)]), 0.0);
    assert_eq!(m.value("opretail_target_up", &[("target", "S_9601")]), 1.0);

    let refused = h.sim.sim.answered(PARAM_TOO_LONG);
    let report = h.poll().await;
    assert_eq!(report.failed_calls, 1, "only the bad id fails: {report:?}");
    assert_eq!(report.splits, 0, "the working split is remembered");
    assert_eq!(h.sim.sim.answered(PARAM_TOO_LONG) - refused, 1);
    assert_eq!(walk_ins(&h.scrape().await), 8);
    h.stop().await;
}

/// Organisations are asked alone until their size is known, then packed by rows; one too
/// big for `max_rows_per_call` is polled through its shops, and every shop keeps its values.
#[tokio::test]
async fn an_organisation_too_big_for_one_call_is_polled_through_its_shops() {
    let h = Harness::start_manual(utc(NOW), |url| {
        let mut c = config(url, &["O_1001", "O_1002", "S_9601"], &[]);
        c.gateway.max_rows_per_call = 10;
        c
    })
    .await;
    let m = h.scrape().await;
    assert_eq!(walk_ins(&m), 20);
    let first = h.sim.sim.requests();

    let report = h.poll().await;
    // O_1001 (12 shops) through its shops, S_9601 once: S_9601..S_9610 (10 rows), then
    // S_9611,S_9612 with O_1002 (8 shops) as itself (10 rows).
    assert_eq!((report.calls, report.failed_calls), (2, 0), "{report:?}");
    assert_eq!(h.sim.sim.requests() - first, 2);
    let m = h.scrape().await;
    assert_eq!(walk_ins(&m), 20, "every shop keeps its values");
    for target in ["O_1001", "O_1002", "S_9601"] {
        assert_eq!(m.value("opretail_target_up", &[("target", target)]), 1.0, "{target}");
    }
    h.stop().await;
}

/// Answers over `max_response_bytes`: a batch of organisations is split, and an organisation
/// too large alone is asked through the shops its last answer named; the next poll asks the
/// parts that worked.
#[tokio::test]
async fn answers_too_large_are_asked_in_parts() {
    let h = Harness::start_manual(utc(NOW), |url| config(url, &["O_1001", "O_1002"], &[])).await;
    assert_eq!(walk_ins(&h.scrape().await), 20);

    // The same targets with answers capped: 12 or 8 shops an answer are too much, 6 or 4 fit.
    let mut config = (*h.exporter.poller.config()).clone();
    config.gateway.max_response_bytes = 2000;
    let client = Client::new(&config.gateway, h.clock.clone(), h.exporter.store.api().clone()).unwrap();
    h.exporter.poller.replace(std::sync::Arc::new(config), client);
    let report = h.poll().await;
    assert!(report.splits >= 3, "{report:?}");
    let m = h.scrape().await;
    assert_eq!(walk_ins(&m), 20, "every shop served");
    for target in ["O_1001", "O_1002"] {
        assert_eq!(m.value("opretail_target_up", &[("target", target)]), 1.0, "{target}");
    }
    let report = h.poll().await;
    assert_eq!((report.failed_calls, report.splits), (0, 0), "{report:?}");
    assert_eq!(walk_ins(&h.scrape().await), 20);
    h.stop().await;
}

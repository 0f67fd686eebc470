//! The status page (`GET /`) and its JSON (`GET /api/v1/targets`) against the simulator: a shop
//! the gateway refuses is down and listed first with its error code, name and `stat.cid`; a
//! hostile shop name is shown as text; the text and status filters and the pages select the
//! right rows; the page and the API agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use common::{config, utc, Harness};
use opretail_exporter::exporter::Options;
use opretail_exporter::simulator::{Fault, SimConfig, ID_NOT_ALLOWED};
use serde_json::Value;

const NOW: &str = "2024-05-01T06:30:00Z";
const HOSTILE: &str = "万店掌 \"旗舰\" \\ 店<script>alert(1)</script>";

/// Starts the simulator (adjusted by `adjust`) and an exporter polling `shops` and `devices`
/// by hand, lets `faults` fail their targets, and runs the first round.
async fn start(
    adjust: impl FnOnce(&mut SimConfig),
    shops: &[&str],
    devices: &[(&str, &str, &str)],
    faults: &[(&str, Fault)],
) -> Harness {
    let options = Options {
        manual_polling: true,
        ..Options::default()
    };
    let h = Harness::start_full_with(utc(NOW), adjust, |sim| config(&sim.url(), shops, devices), options).await;
    for (target, fault) in faults {
        h.sim.sim.set_target_fault(target, Some(*fault));
    }
    h.poll().await;
    h.wait_ready().await;
    h
}

async fn json(h: &Harness, query: &str) -> Value {
    let (status, body) = h.get(&format!("/api/v1/targets{query}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn ids(v: &Value) -> Vec<String> {
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// The `data-target` of every row of the page's targets table, in order.
fn page_ids(html: &str) -> Vec<String> {
    let start = html.find("<table id=\"targets\">").expect("targets table");
    let body = &html[start..];
    let body = &body[body.find("<tbody>").expect("tbody")..body.find("</tbody>").expect("end of tbody")];
    body.split("<tr ")
        .skip(1)
        .map(|row| {
            let at = row.find("data-target=\"").expect("data-target") + "data-target=\"".len();
            row[at..at + row[at..].find('"').expect("quote")].to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_failing_shop_is_listed_first_with_its_error_and_the_json_agrees() {
    let shops = ["S_9601", "S_9602", "S_9603", "S_9604", "O_1002"];
    let devices = [("d47c44906f01", "Entrance A", "9601"), ("d47c44906f02", "", "")];
    let faults = [
        ("S_9604", Fault::Code(ID_NOT_ALLOWED)),
        ("d47c44906f02", Fault::Http(503)),
    ];
    let h = start(
        |c| c.orgs[0].shops[2].name = HOSTILE.to_string(),
        &shops,
        &devices,
        &faults,
    )
    .await;

    let v = json(&h, "").await;
    assert_eq!(v["total"], 7);
    assert_eq!(
        (v["summary"]["up"].as_u64(), v["summary"]["down"].as_u64()),
        (Some(5), Some(2))
    );
    assert_eq!(ids(&v)[..2], ["S_9604", "d47c44906f02"]);
    let first = &v["rows"][0];
    assert_eq!(first["up"], false);
    assert_eq!(first["kind"], "shop");
    assert_eq!(first["error"]["code"], "400003");
    assert_eq!(first["error"]["name"], "ID_NOT_ALLOWED");
    let cid = first["error"]["cid"].as_str().expect("cid").to_string();
    assert_eq!(cid.len(), 36, "the simulator's cid is a uuid: {cid}");
    let device = &v["rows"][1];
    assert_eq!(device["error"]["code"], "http_503");
    assert_eq!(device["error"]["name"], "HTTP 503 Service Unavailable");
    assert_eq!(device["error"]["cid"], "", "no envelope, no cid");
    // The gateway's last hour counts the codes it answered, each by the name the gateway's
    // answer gave it (the simulator's stand-in 400003 is not in the documented table).
    let errors = v["summary"]["last_hour"]["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e["code"] == "400003" && e["name"] == "ID_NOT_ALLOWED" && e["requests"].as_u64() >= Some(1)),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["code"] == "http_503" && e["name"] == "HTTP 503 Service Unavailable"),
        "{errors:?}"
    );
    assert!(v["summary"]["last_hour"]["requests"].as_u64() > Some(3));
    // The hostile shop: exact in JSON, with its values.
    let hostile = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "S_9603")
        .expect("S_9603");
    assert_eq!(hostile["name"], HOSTILE);
    assert!(hostile["hour"]["walk_in"].is_number(), "{hostile}");
    assert!(hostile["data_hour_age_seconds"].as_f64() >= Some(3600.0), "{hostile}");
    let org = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "O_1002")
        .expect("O_1002");
    assert_eq!(org["shops"], 8);

    // The page: the same rows in the same order, the error and cid shown, the name as text.
    let (status, html) = h.get("/").await;
    assert_eq!(status, 200);
    assert_eq!(page_ids(&html), ids(&v));
    assert!(
        html.contains("<dd id=\"targets-up\" class=\"bad\">5 of 7</dd>"),
        "{html}"
    );
    let first_row = &html[html.find("data-target=\"S_9604\"").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(
        first_row.contains("DOWN") && first_row.contains("<code>400003</code>"),
        "{first_row}"
    );
    assert!(
        first_row.contains(">ID_NOT_ALLOWED</td>") && first_row.contains(&cid),
        "{first_row}"
    );
    assert!(!html.contains("<script>"), "no vendor markup");
    assert!(html.contains("万店掌 &quot;旗舰&quot; \\ 店&lt;script&gt;alert(1)&lt;/script&gt;"));
    for link in ["/metrics", "/-/healthy", "/-/ready", "/api/v1/targets"] {
        assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
    }

    // Filters, on the page and in the API alike.
    for (query, expected) in [
        ("?status=down", vec!["S_9604", "d47c44906f02"]),
        ("?q=%E6%97%97%E8%88%B0", vec!["S_9603"]),
        ("?q=id_not_allowed", vec!["S_9604"]),
        ("?q=entrance&status=up", vec!["d47c44906f01"]),
        ("?q=d47c&status=down", vec!["d47c44906f02"]),
    ] {
        let v = json(&h, query).await;
        assert_eq!(ids(&v), expected, "{query}");
        assert_eq!(v["total"].as_u64(), Some(expected.len() as u64), "{query}");
        let (_, html) = h.get(&format!("/{query}")).await;
        assert_eq!(page_ids(&html), expected, "{query}");
    }
    assert_eq!(json(&h, "?status=up").await["total"], 5);
    for bad in ["?status=sideways", "?page=0", "?page=x"] {
        assert_eq!(h.get(&format!("/{bad}")).await.0, 400, "{bad}");
        assert_eq!(h.get(&format!("/api/v1/targets{bad}")).await.0, 400, "{bad}");
    }

    // The fault cleared: every target up; the shop keeps its last error, no longer first.
    h.sim.sim.set_target_fault("S_9604", None);
    h.sim.sim.set_target_fault("d47c44906f02", None);
    h.poll().await;
    let v = json(&h, "").await;
    assert_eq!(v["summary"]["down"], 0);
    assert_eq!(ids(&v)[0], "S_9601");
    let kept = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "S_9604")
        .unwrap();
    assert_eq!(
        (kept["up"].as_bool(), kept["error"]["cid"].as_str()),
        (Some(true), Some(cid.as_str()))
    );
    h.stop().await;
}

#[tokio::test]
async fn pages_of_a_large_tenant_link_to_each_other() {
    let ids_configured: Vec<String> = (100_001..=100_250).map(|d| format!("S_{d}")).collect();
    let refs: Vec<&str> = ids_configured.iter().map(String::as_str).collect();
    let h = start(
        |c| *c = SimConfig::large(c.clock.clone(), 250, 0, 100),
        &refs,
        &[],
        &[("S_100200", Fault::Code(ID_NOT_ALLOWED))],
    )
    .await;
    let v = json(&h, "").await;
    assert_eq!((v["total"].as_u64(), v["pages"].as_u64()), (Some(250), Some(3)));
    assert_eq!(ids(&v).len(), 100);
    assert_eq!(ids(&v)[0], "S_100200", "the failing shop first");
    assert_eq!(ids(&v)[1], "S_100001");
    let last = json(&h, "?page=3").await;
    assert_eq!(ids(&last).len(), 50);
    assert_eq!(ids(&last)[49], "S_100250");
    assert_eq!(ids(&json(&h, "?page=4").await).len(), 0);

    let (_, html) = h.get("/?page=2").await;
    let rows = page_ids(&html);
    assert_eq!(rows.len(), 100);
    assert_eq!(
        rows[0], "S_100100",
        "page 2 goes on after the failing shop and 99 others"
    );
    assert!(html.contains("100 of 250 matching targets shown (page 2 of 3)"));
    assert!(html.contains("<a rel=\"prev\" href=\"/?\">"), "{html}");
    assert!(html.contains("<a rel=\"next\" href=\"/?page=3\">"));
    let (_, html) = h.get("/?q=S_1002&page=1").await;
    assert_eq!(page_ids(&html).len(), 51, "S_100200..=S_100250");
    h.stop().await;
}

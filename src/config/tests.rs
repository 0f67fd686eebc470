//! Tests of the whole configuration as read from YAML: every key, its default, and every error
//! path and message (the messages are part of the interface: `check-config` prints them).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use secrecy::ExposeSecret;

use super::*;
use crate::model::{normalize_mac, SignMethod, TargetId};

// The defaults as documented in config.example.yaml.
const DEFAULT_AID: &str = "S107";
const DEFAULT_SIGN_METHOD: SignMethod = SignMethod::Md5;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_IDS_PER_REQUEST: usize = 50;
const DEFAULT_MAX_IN_FLIGHT: usize = 4;
const DEFAULT_REQUESTS_PER_SECOND: f64 = 5.0;
const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Shanghai;
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5 * 60);

const FULL: &str = r#"
gateway:
  url: https://openapi.opretail.com/m.api
  app_key: ${OPRETAIL_APP_KEY}
  app_secret: ${OPRETAIL_APP_SECRET}
  aid: S107
  sign_method: md5
  timeout: 10s
  max_ids_per_request: 50
  max_in_flight: 4
timezone: Asia/Shanghai
poll_interval: 5m
shops:
  - id: S_9642
  - id: O_1834
devices:
  - mac: d47c44906f14
    name: Main entrance
    shop_id: "9642"
"#;

const MINIMAL: &str = "
gateway:
  url: http://gw.example/m.api
  app_key: key
  app_secret: hunter2-secret
shops:
  - id: S_1
";

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

fn std_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[("OPRETAIL_APP_KEY", "the-key"), ("OPRETAIL_APP_SECRET", "s3cr3t-value")])
}

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::from_yaml_str(text, &std_env())
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(e) => e.0,
    }
}

/// Asserts there is an error at `path` whose message contains `word`.
fn assert_error(errs: &[ConfigError], path: &str, word: &str) {
    assert!(
        errs.iter().any(|e| e.path == path && e.message.contains(word)),
        "no error at {path} containing {word:?} in:\n{}",
        ConfigErrors(errs.to_vec())
    );
}

#[test]
fn reliability_defaults() {
    let c = parse(MINIMAL).unwrap();
    let g = &c.gateway;
    assert_eq!(g.requests_per_second, DEFAULT_REQUESTS_PER_SECOND);
    assert_eq!(g.max_response_bytes, 16 * 1024 * 1024);
    assert_eq!(g.max_retries, 3);
    assert_eq!(g.retry_backoff, Duration::from_millis(500));
    assert_eq!(g.retry_backoff_max, Duration::from_secs(30));
    assert!(matches!(g.auth, GatewayAuth::None));
    assert_eq!(c.stale_after, Duration::from_secs(7200));
}

#[test]
fn reliability_keys_parse() {
    let text = minimal_with(
        "  app_secret: hunter2-secret\n",
        "  app_secret: hunter2-secret\n  requests_per_second: 0.5\n  max_response_bytes: 512KiB\n  max_retries: 0\n  retry_backoff: 100ms\n  retry_backoff_max: 2s\n  token: ${TOK}\n",
    ) + "stale_after: 30m\n";
    let c = Config::from_yaml_str(&text, &env_of(&[("TOK", "tok-123")])).unwrap();
    assert_eq!(c.gateway.requests_per_second, 0.5);
    assert_eq!(c.gateway.max_response_bytes, 512 * 1024);
    assert_eq!(c.gateway.max_retries, 0);
    assert_eq!(c.gateway.retry_backoff, Duration::from_millis(100));
    assert_eq!(c.gateway.retry_backoff_max, Duration::from_secs(2));
    assert!(matches!(&c.gateway.auth, GatewayAuth::Token(t) if t.expose_secret() == "tok-123"));
    assert_eq!(c.stale_after, Duration::from_secs(1800));
    assert!(!format!("{c:?}").contains("tok-123"), "the token is redacted in Debug");
    for (size, bytes) in [
        ("1048576", 1_048_576),
        ("16MiB", 16 << 20),
        ("2MB", 2_000_000),
        ("64 KiB", 65_536),
    ] {
        let text = minimal_with(
            "  app_key: key\n",
            &format!("  app_key: key\n  max_response_bytes: {size}\n"),
        );
        assert_eq!(parse(&text).unwrap().gateway.max_response_bytes, bytes, "{size}");
    }
}

#[test]
fn reliability_keys_reject_bad_values() {
    let text = minimal_with(
        "  app_key: key\n",
        "  app_key: key\n  requests_per_second: 0\n  max_response_bytes: lots\n  max_retries: 11\n  retry_backoff: soon\n",
    ) + "stale_after: 0s\n";
    let errs = errors(&text);
    assert_error(&errs, "gateway.requests_per_second", "above 0");
    assert_error(&errs, "gateway.max_response_bytes", "size");
    assert_error(&errs, "gateway.max_retries", "between 0 and 10");
    assert_error(&errs, "gateway.retry_backoff", "duration");
    assert_error(&errs, "stale_after", "greater than zero");
    let tiny = minimal_with("  app_key: key\n", "  app_key: key\n  max_response_bytes: 10\n");
    assert_error(&errors(&tiny), "gateway.max_response_bytes", "between 1024");
}

#[test]
fn login_with_password_or_password_file() {
    let dir = crate::test_dir("config-login");
    let file = dir.join("password");
    std::fs::write(&file, "pa55-from-file\n").unwrap();
    let inline = minimal_with(
        "  app_key: key\n",
        "  app_key: key\n  login:\n    username: ops\n    password: pa55-inline\n",
    );
    let c = parse(&inline).unwrap();
    assert!(
        matches!(&c.gateway.auth, GatewayAuth::Login { username, password } if username == "ops" && password.expose_secret() == "pa55-inline")
    );
    assert!(!format!("{c:?}").contains("pa55-inline"));
    let from_file = minimal_with(
        "  app_key: key\n",
        &format!(
            "  app_key: key\n  login:\n    username: ops\n    password_file: {}\n",
            file.display()
        ),
    );
    let c = parse(&from_file).unwrap();
    assert!(
        matches!(&c.gateway.auth, GatewayAuth::Login { password, .. } if password.expose_secret() == "pa55-from-file")
    );
    let both = minimal_with(
        "  app_key: key\n",
        &format!(
            "  app_key: key\n  login:\n    username: ops\n    password: x\n    password_file: {}\n",
            file.display()
        ),
    );
    assert_error(&errors(&both), "gateway.login.password_file", "not both");
    let neither = minimal_with("  app_key: key\n", "  app_key: key\n  login:\n    username: ops\n");
    assert_error(&errors(&neither), "gateway.login.password", "missing");
    let with_token = minimal_with(
        "  app_key: key\n",
        "  app_key: key\n  token: t\n  login:\n    username: ops\n    password: x\n",
    );
    assert_error(&errors(&with_token), "gateway.token", "not both");
    let unknown = minimal_with(
        "  app_key: key\n",
        "  app_key: key\n  login:\n    user: ops\n    password: x\n",
    );
    assert_error(&errors(&unknown), "gateway.login.user", "unknown key");
}

#[test]
fn app_secret_from_a_file() {
    let dir = crate::test_dir("config-secret");
    let file = dir.join("secret");
    std::fs::write(&file, "file-secret-value\r\n").unwrap();
    let text = MINIMAL.replace(
        "  app_secret: hunter2-secret\n",
        &format!("  app_secret_file: {}\n", file.display()),
    );
    let c = parse(&text).unwrap();
    assert_eq!(c.gateway.app_secret.expose_secret(), "file-secret-value");
    let both = minimal_with(
        "  app_secret: hunter2-secret\n",
        &format!("  app_secret: x\n  app_secret_file: {}\n", file.display()),
    );
    assert_error(&errors(&both), "gateway.app_secret_file", "not both");
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let text = MINIMAL.replace(
        "  app_secret: hunter2-secret\n",
        &format!("  app_secret_file: {}\n", empty.display()),
    );
    assert_error(&errors(&text), "gateway.app_secret_file", "empty");
    let errs = errors(&MINIMAL.replace("  app_secret: hunter2-secret\n", ""));
    assert_error(&errs, "gateway.app_secret", "missing");
}

#[test]
fn sharding_and_hour_delay() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!((c.sharding, c.hour_delay), (None, Duration::from_secs(60)));
    let c = parse(&format!(
        "{MINIMAL}sharding:\n  index: 1\n  total: 3\nhour_delay: 30s\n"
    ))
    .unwrap();
    assert_eq!(c.sharding, Some(Shard { index: 1, total: 3 }));
    assert_eq!(c.hour_delay, Duration::from_secs(30));
    assert_error(
        &errors(&format!("{MINIMAL}sharding:\n  index: 3\n  total: 3\n")),
        "sharding.index",
        "below",
    );
    assert_error(
        &errors(&format!("{MINIMAL}sharding:\n  total: 3\n")),
        "sharding.index",
        "missing",
    );
    assert_error(
        &errors(&format!("{MINIMAL}sharding:\n  index: 0\n  total: 0\n")),
        "sharding.total",
        "between 1",
    );
}

/// MINIMAL with `from` replaced by `to`.
fn minimal_with(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "{from:?} not in MINIMAL");
    MINIMAL.replacen(from, to, 1)
}

#[test]
fn full_example_parses_with_every_value() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.gateway.url.as_str(), "https://openapi.opretail.com/m.api");
    assert_eq!(c.gateway.app_key, "the-key");
    assert_eq!(c.gateway.app_secret.expose_secret(), "s3cr3t-value");
    assert_eq!(c.gateway.aid, "S107");
    assert_eq!(c.gateway.sign_method, SignMethod::Md5);
    assert_eq!(c.gateway.timeout, Duration::from_secs(10));
    assert_eq!(c.gateway.max_ids_per_request, 50);
    assert_eq!(c.gateway.max_in_flight, 4);
    assert_eq!(c.timezone, chrono_tz::Asia::Shanghai);
    assert_eq!(c.poll_interval, Duration::from_secs(300));
    assert_eq!(
        c.shops.to_vec(),
        vec![
            ShopTarget::new(TargetId::Shop(9642)),
            ShopTarget::new(TargetId::Org(1834))
        ]
    );
    assert_eq!(
        c.devices,
        vec![DeviceTarget {
            mac: "d47c44906f14".into(),
            name: Some("Main entrance".into()),
            shop_id: Some("9642".into()),
        }]
    );
}

#[test]
fn non_default_values() {
    let text = "
gateway:
  url: https://cloudapi.ovopark.com/m.api
  app_key: k
  app_secret: s
  aid: DC-000698
  sign_method: SHA1
  timeout: 1m 30s
  max_ids_per_request: \"1000\"
  max_in_flight: 64
timezone: Europe/Berlin
poll_interval: 30s
devices:
  - mac: D4:7C:44:90:6F:14
    shop_id: 9642
";
    let c = parse(text).unwrap();
    assert_eq!(c.gateway.aid, "DC-000698");
    assert_eq!(c.gateway.sign_method, SignMethod::Sha1);
    assert_eq!(c.gateway.timeout, Duration::from_secs(90));
    assert_eq!(c.gateway.max_ids_per_request, 1000);
    assert_eq!(c.gateway.max_in_flight, 64);
    assert_eq!(c.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(c.poll_interval, Duration::from_secs(30));
    assert!(c.shops.is_empty());
    assert_eq!(c.devices[0].shop_id.as_deref(), Some("9642"));
    assert_eq!(c.devices[0].name, None);
}

#[test]
fn defaults_fill_in() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.gateway.aid, DEFAULT_AID);
    assert_eq!(c.gateway.sign_method, SignMethod::Md5);
    assert_eq!(c.gateway.timeout, DEFAULT_TIMEOUT);
    assert_eq!(c.gateway.max_ids_per_request, DEFAULT_MAX_IDS_PER_REQUEST);
    assert_eq!(c.gateway.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(c.timezone, DEFAULT_TIMEZONE);
    assert_eq!(c.poll_interval, DEFAULT_POLL_INTERVAL);
    assert!(c.devices.is_empty());
    // null means default too
    let c = parse(&minimal_with("app_key: key", "app_key: key\n  timeout:\n  aid: ~")).unwrap();
    assert_eq!(c.gateway.timeout, DEFAULT_TIMEOUT);
    assert_eq!(c.gateway.aid, DEFAULT_AID);
}

#[test]
fn gateway_config_new_fills_defaults() {
    let url = Url::parse("http://127.0.0.1:9/m.api").unwrap();
    let g = GatewayConfig::new(url, "k".into(), "s".into());
    assert_eq!(g.aid, DEFAULT_AID);
    assert_eq!(g.sign_method, DEFAULT_SIGN_METHOD);
    assert_eq!(g.timeout, DEFAULT_TIMEOUT);
    assert_eq!(g.max_ids_per_request, DEFAULT_MAX_IDS_PER_REQUEST);
    assert_eq!(g.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert_eq!(g.app_secret.expose_secret(), "s");
}

#[test]
fn env_substitution_multiple_and_dollar_dollar() {
    let text = minimal_with("http://gw.example/m.api", "https://${HOST}:${PORT}/m.api").replacen(
        "app_key: key",
        "app_key: a$$b${USER}$x",
        1,
    );
    let env = env_of(&[("HOST", "gw.example"), ("PORT", "8443"), ("USER", "u1")]);
    let c = Config::from_yaml_str(&text, &env).unwrap();
    assert_eq!(c.gateway.url.as_str(), "https://gw.example:8443/m.api");
    assert_eq!(c.gateway.app_key, "a$bu1$x");
}

#[test]
fn env_values_are_not_expanded_again_and_keys_are_not_expanded() {
    let text = minimal_with("app_key: key", "app_key: ${K}");
    let env = env_of(&[("K", "${NOPE}")]);
    let c = Config::from_yaml_str(&text, &env).unwrap();
    assert_eq!(c.gateway.app_key, "${NOPE}");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  ${X}: 1"));
    assert_error(&errs, "gateway.${X}", "unknown key");
}

#[test]
fn unset_var_names_field_and_var() {
    let errs = Config::from_yaml_str(FULL, &env_of(&[("OPRETAIL_APP_SECRET", "x")]))
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "gateway.app_key: environment variable OPRETAIL_APP_KEY is not set"
    );
}

#[test]
fn unterminated_and_invalid_var() {
    let errs = errors(&minimal_with("app_key: key", "app_key: abc${OOPS"));
    assert_error(&errs, "gateway.app_key", "unterminated");
    let errs = errors(&minimal_with("app_key: key", "app_key: ${}"));
    assert_error(&errs, "gateway.app_key", "invalid environment variable name");
}

#[test]
fn missing_keys() {
    let errs = errors("gateway:\n  app_key: k\nshops: [{id: S_1}]\n");
    assert_error(&errs, "gateway.url", "missing");
    assert_error(&errs, "gateway.app_secret", "missing");
    assert_eq!(errs.len(), 2, "{errs:?}");
    let errs = errors("shops: [{id: S_1}]\n");
    assert_error(&errs, "gateway", "missing");
    let errs = errors(&minimal_with("- id: S_1", "- {}"));
    assert_error(&errs, "shops[0].id", "missing");
}

#[test]
fn unknown_keys_top_level_and_nested() {
    let errs = errors(&format!("{MINIMAL}color: blue\n"));
    assert_error(&errs, "color", "unknown key");
    assert_error(&errs, "color", "gateway, timezone");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  foo: 1"));
    assert_error(&errs, "gateway.foo", "unknown key (expected one of url, app_key,");
    let errs = errors(&minimal_with("- id: S_1", "- id: S_1\n    label: x"));
    assert_error(&errs, "shops[0].label", "unknown key");
}

#[test]
fn wrong_types() {
    let errs = errors(&minimal_with("shops:\n  - id: S_1", "shops: S_1"));
    assert_error(&errs, "shops", "expected a list");
    let errs = errors(&format!("{MINIMAL}devices: {{mac: x}}\n"));
    assert_error(&errs, "devices", "expected a list");
    let errs = errors("gateway: hello\nshops: [{id: S_1}]\n");
    assert_error(&errs, "gateway", "expected a mapping");
    let errs = errors("- a\n- b\n");
    assert_error(&errs, "<yaml>", "expected a mapping");
    let errs = errors(&minimal_with("app_key: key", "app_key: 12345"));
    assert_error(&errs, "gateway.app_key", "expected a string");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: true"));
    assert_error(&errs, "gateway.max_in_flight", "whole number");
}

#[test]
fn yaml_syntax_error_and_empty_document() {
    let errs = errors("gateway: [unclosed\n");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "<yaml>");
    assert!(errs[0].message.contains("line"), "{}", errs[0].message);
    let errs = errors(&format!("{MINIMAL}timezone: UTC\ntimezone: UTC\n"));
    assert_eq!(errs.len(), 1);
    assert_error(&errs, "<yaml>", "duplicate");
    for empty in ["", "   \n", "# only a comment\n", "~\n"] {
        let errs = errors(empty);
        assert_error(&errs, "<yaml>", "empty");
    }
}

#[test]
fn bad_durations() {
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: ten"));
    assert_error(&errs, "gateway.timeout", "invalid duration");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: 0s"));
    assert_error(&errs, "gateway.timeout", "greater than zero");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  timeout: 10"));
    assert_error(&errs, "gateway.timeout", "expected a duration");
    let errs = errors(&format!("{MINIMAL}poll_interval: 500ms\n"));
    assert_error(&errs, "poll_interval", "at least 1s");
    let errs = errors(&format!("{MINIMAL}poll_interval: 5\n"));
    assert_error(&errs, "poll_interval", "duration");
}

#[test]
fn timezones() {
    let errs = errors(&format!("{MINIMAL}timezone: Mars/Olympus\n"));
    assert_error(&errs, "timezone", "unknown time zone");
    let c = parse(&format!("{MINIMAL}timezone: Etc/GMT+4\n")).unwrap();
    assert_eq!(c.timezone, chrono_tz::Etc::GMTPlus4);
}

#[test]
fn bad_macs() {
    for bad in ["zz7c44906f14", "d47c44906f", "d47c44906f1400"] {
        let errs = errors(&format!("{MINIMAL}devices:\n  - mac: {bad}\n"));
        assert_error(&errs, "devices[0].mac", "12 hex digits");
    }
}

#[test]
fn mac_normalisation() {
    for good in ["D4:7C:44:90:6F:14", "d4-7c-44-90-6f-14", "d47c44906f14", "D47C44906F14"] {
        assert_eq!(normalize_mac(good).unwrap(), "d47c44906f14");
    }
    let c = parse(&format!(
        "{MINIMAL}devices:\n  - mac: \"D4:7C:44:90:6F:14\"\n  - mac: d4-7c-44-90-6f-15\n"
    ))
    .unwrap();
    assert_eq!(c.devices[0].mac, "d47c44906f14");
    assert_eq!(c.devices[1].mac, "d47c44906f15");
}

#[test]
fn target_ids() {
    assert_eq!("S_9642".parse::<TargetId>().unwrap(), TargetId::Shop(9642));
    assert_eq!("O_1834".parse::<TargetId>().unwrap(), TargetId::Org(1834));
    assert_eq!(TargetId::Shop(9642).to_string(), "S_9642");
    assert_eq!(TargetId::Org(1834).to_string(), "O_1834");
    for bad in ["S_0", "S_", "S_-1", "S_+1", "s_1"] {
        assert!(bad.parse::<TargetId>().is_err(), "{bad}");
    }
    let errs = errors(&minimal_with("S_1", "X_1"));
    assert_error(&errs, "shops[0].id", "S_ or O_");
    let errs = errors(&minimal_with("S_1", "S_abc"));
    assert_error(&errs, "shops[0].id", "positive integer");
}

#[test]
fn device_labels() {
    let errs = errors(&format!(
        "{MINIMAL}devices:\n  - mac: d47c44906f14\n    shop_id: S_9642\n"
    ));
    assert_error(&errs, "devices[0].shop_id", "depId");
    let errs = errors(&format!("{MINIMAL}devices:\n  - mac: d47c44906f14\n    name: [a]\n"));
    assert_error(&errs, "devices[0].name", "expected a string");
}

#[test]
fn nothing_to_poll() {
    let gateway = "gateway:\n  url: http://gw.example/m.api\n  app_key: k\n  app_secret: s\n";
    for tail in ["", "shops:\ndevices:\n", "shops: []\ndevices: []\n"] {
        let errs = errors(&format!("{gateway}{tail}"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_error(&errs, "shops", "nothing to poll");
    }
}

#[test]
fn bad_urls() {
    let errs = errors(&minimal_with("http://gw.example/m.api", "ftp://gw.example/m.api"));
    assert_error(&errs, "gateway.url", "http or https");
    let errs = errors(&minimal_with("http://gw.example/m.api", "not a url"));
    assert_error(&errs, "gateway.url", "invalid URL");
}

#[test]
fn bad_sign_method() {
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  sign_method: sha256"));
    assert_error(&errs, "gateway.sign_method", "sign method");
}

#[test]
fn integer_ranges() {
    let errs = errors(&minimal_with(
        "app_key: key",
        "app_key: key\n  max_ids_per_request: 0\n  max_in_flight: 65",
    ));
    assert_error(&errs, "gateway.max_ids_per_request", "between 1 and 1000");
    assert_error(&errs, "gateway.max_in_flight", "between 1 and 64");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: -1"));
    assert_error(&errs, "gateway.max_in_flight", "whole number");
    let errs = errors(&minimal_with("app_key: key", "app_key: key\n  max_in_flight: 2.5"));
    assert_error(&errs, "gateway.max_in_flight", "whole number");
}

#[test]
fn duplicates() {
    let errs = errors(&minimal_with("- id: S_1", "- id: S_1\n  - id: O_1\n  - id: S_1"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_error(&errs, "shops[2].id", "duplicate");
    let errs = errors(&format!(
        "{MINIMAL}devices:\n  - mac: d47c44906f14\n  - mac: D4-7C-44-90-6F-14\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_error(&errs, "devices[1].mac", "duplicate");
}

#[test]
fn three_problems_reported_at_once() {
    let text = "
gateway:
  url: https://openapi.opretail.com/m.api
  app_secret: s
timezone: Mars/Olympus
devices:
  - mac: zz7c44906f14
";
    let errs = errors(text);
    assert_eq!(errs.len(), 3, "{}", ConfigErrors(errs.clone()));
    assert_error(&errs, "gateway.app_key", "missing");
    assert_error(&errs, "timezone", "unknown time zone");
    assert_error(&errs, "devices[0].mac", "hex");
    let shown = ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 3);
}

#[test]
fn secret_never_in_debug_or_errors() {
    let c = parse(MINIMAL).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("gateway"));

    let errs = errors(&minimal_with("hunter2-secret", "hunter2-secret${UNCLOSED"));
    assert_error(&errs, "gateway.app_secret", "unterminated");
    let errs = errors(&minimal_with("hunter2-secret", "hunter2-secret${bad name}"));
    assert_error(&errs, "gateway.app_secret", "invalid");
    let errs2 = errors(&minimal_with("hunter2-secret", "987654321"));
    assert_error(&errs2, "gateway.app_secret", "expected a string");
    let errs3 = errors(&minimal_with("hunter2-secret", "[hunter2]"));
    for e in errs.iter().chain(&errs2).chain(&errs3) {
        let shown = e.to_string();
        assert!(!shown.contains("hunter2") && !shown.contains("987654321"), "{shown}");
    }
}

#[test]
fn load_reports_read_errors_with_the_file_path() {
    let path = Path::new("/nonexistent/dir/opretail.yaml");
    let errs = Config::load(path).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "/nonexistent/dir/opretail.yaml");
}

#[test]
fn example_file_parses() {
    let c = parse(include_str!("../../config.example.yaml")).unwrap();
    assert_eq!(c.gateway.app_key, "the-key");
    assert_eq!(c.shops.len(), 2);
    assert_eq!(c.devices.len(), 1);
    assert_eq!(c.baseline.weeks, 4);
}

#[test]
fn baseline_weeks_default_to_four_and_take_zero_to_eight() {
    assert_eq!(parse(MINIMAL).unwrap().baseline.weeks, 4);
    for weeks in [0, 1, 8] {
        let c = parse(&format!("{MINIMAL}baseline:\n  weeks: {weeks}\n")).unwrap();
        assert_eq!(c.baseline.weeks, weeks);
    }
    // Out of range, and an unknown key beside a bad timezone: every problem at once, by path.
    let errs = errors(&format!(
        "{MINIMAL}baseline:\n  weeks: 9\n  days: 3\ntimezone: Mars/Olympus\n"
    ));
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"baseline.weeks"), "{errs:?}");
    assert!(paths.contains(&"timezone"), "{errs:?}");
    assert!(paths.contains(&"baseline.days"), "{errs:?}");
    let weeks = errs.iter().find(|e| e.path == "baseline.weeks").unwrap();
    assert!(weeks.message.contains('9'), "{weeks:?}");
    let errs = errors(&format!("{MINIMAL}baseline:\n  weeks: -1\n"));
    assert_eq!(errs[0].path, "baseline.weeks");
    let errs = errors(&format!("{MINIMAL}baseline: 4\n"));
    assert_eq!(errs[0].path, "baseline");
}

/// Whether `example` documents `key`: a line, commented out or not, that starts with `key:`
/// (after its indentation, `#` and `-` list markers).
fn documents(example: &str, key: &str) -> bool {
    example.lines().any(|line| {
        line.trim_start_matches([' ', '#', '-'])
            .strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[test]
fn every_declared_key_is_documented_in_the_example() {
    let example = include_str!("../../config.example.yaml");
    let sections: [(&str, Vec<&str>); 9] = [
        ("top level", Config::keys()),
        ("baseline", BaselineConfig::keys()),
        ("gateway", GatewayConfig::keys()),
        ("gateway.login", gateway::LOGIN_KEYS.to_vec()),
        ("sharding", shard::SHARDING_KEYS.to_vec()),
        ("shops[]", targets::SHOP_KEYS.to_vec()),
        ("shop_overrides[]", targets::OVERRIDE_KEYS.to_vec()),
        ("calendar", calendar::CALENDAR_KEYS.to_vec()),
        ("devices[]", targets::DEVICE_KEYS.to_vec()),
    ];
    for (section, keys) in sections {
        assert!(!keys.is_empty(), "{section}");
        for key in keys {
            assert!(
                documents(example, key),
                "{section} key {key:?} is not in config.example.yaml"
            );
        }
    }
    assert!(!documents(example, "no_such_key"));
}

/// Whether `keys` holds each of `expected` once, in that order (other keys may come between).
fn in_order(keys: &[&str], expected: &[&str]) -> bool {
    let unique = keys.iter().all(|k| keys.iter().filter(|o| *o == k).count() == 1);
    let mut rest = keys.iter();
    unique && expected.iter().all(|e| rest.any(|k| k == e))
}

#[test]
fn declared_keys_are_unique_and_keep_their_order() {
    // The order of "unknown key (expected one of …)".
    let top = [
        "gateway",
        "timezone",
        "poll_interval",
        "stale_after",
        "hour_delay",
        "sharding",
        "shops",
        "devices",
    ];
    assert!(in_order(&Config::keys(), &top), "{:?}", Config::keys());
    let gateway = [
        "url",
        "app_key",
        "app_secret",
        "app_secret_file",
        "aid",
        "sign_method",
        "timeout",
        "max_ids_per_request",
        "max_in_flight",
        "requests_per_second",
        "max_response_bytes",
        "max_retries",
        "retry_backoff",
        "retry_backoff_max",
        "login",
        "token",
    ];
    assert!(
        in_order(&GatewayConfig::keys(), &gateway),
        "{:?}",
        GatewayConfig::keys()
    );
    assert!(!in_order(&["a", "b"], &["b", "a"]) && !in_order(&["a", "a"], &["a"]));
}

#[test]
fn the_example_sets_every_key_it_shows_to_its_default() {
    // The example's values are the defaults; they must read back as GatewayConfig::new's.
    let c = parse(include_str!("../../config.example.yaml")).unwrap();
    let d = GatewayConfig::new(c.gateway.url.clone(), "k".into(), "s".into());
    let g = &c.gateway;
    assert_eq!(
        (&g.aid, g.sign_method, g.timeout, g.max_ids_per_request, g.max_in_flight),
        (&d.aid, d.sign_method, d.timeout, d.max_ids_per_request, d.max_in_flight)
    );
    assert_eq!(
        (
            g.requests_per_second,
            g.max_response_bytes,
            g.max_retries,
            g.retry_backoff,
            g.retry_backoff_max
        ),
        (
            d.requests_per_second,
            d.max_response_bytes,
            d.max_retries,
            d.retry_backoff,
            d.retry_backoff_max
        )
    );
    assert!(matches!(g.auth, GatewayAuth::None));
    assert_eq!(c.timezone, DEFAULT_TIMEZONE);
    assert_eq!(c.poll_interval, DEFAULT_POLL_INTERVAL);
    assert_eq!(c.stale_after, DEFAULT_STALE_AFTER);
    assert_eq!(c.hour_delay, DEFAULT_HOUR_DELAY);
    assert_eq!(c.sharding, None);
}

/// MINIMAL with one device (`lines` under `- mac: d47c44906f14`).
fn with_device(lines: &str) -> String {
    format!("{MINIMAL}devices:\n  - mac: d47c44906f14\n{lines}")
}

#[test]
fn a_label_with_a_variable_is_refused_naming_the_field_and_where_variables_work() {
    // On /metrics, a label would publish the secret to every scraper.
    let errs = errors(&with_device("    name: \"Entrance ${OPRETAIL_APP_SECRET}\"\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_error(&errs, "devices[0].name", "not expanded here");
    let shown = errs[0].to_string();
    for field in EXPANDED_FIELDS {
        assert!(shown.contains(field), "{field} not listed in {shown}");
    }
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    // Unterminated, or an invalid name: refused the same.
    for name in ["\"Entrance ${OPRETAIL_APP_SECRET\"", "\"Entrance ${}\""] {
        let errs = errors(&with_device(&format!("    name: {name}\n")));
        assert_error(&errs, "devices[0].name", "not expanded here");
    }
}

#[test]
fn settings_refuse_variables_too() {
    let env = env_of(&[
        ("OPRETAIL_APP_SECRET", "s3cr3t-value"),
        ("X", "5"),
        ("TZ_NAME", "Asia/Shanghai"),
    ]);
    let cases: [(String, &str); 16] = [
        (format!("{MINIMAL}poll_interval: ${{X}}m\n"), "poll_interval"),
        (format!("{MINIMAL}stale_after: \"${{X}}h\"\n"), "stale_after"),
        (format!("{MINIMAL}timezone: ${{TZ_NAME}}\n"), "timezone"),
        (
            format!("{MINIMAL}max_catch_up_hours: \"${{X}}\"\n"),
            "max_catch_up_hours",
        ),
        (
            format!("{MINIMAL}sharding:\n  index: \"${{X}}\"\n  total: 9\n"),
            "sharding.index",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  timeout: ${X}s"),
            "gateway.timeout",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  max_retries: \"${X}\""),
            "gateway.max_retries",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  requests_per_second: \"${X}\""),
            "gateway.requests_per_second",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  max_response_bytes: ${X}MiB"),
            "gateway.max_response_bytes",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  aid: S${X}"),
            "gateway.aid",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  sign_method: ${X}"),
            "gateway.sign_method",
        ),
        (
            minimal_with("app_key: key", "app_key: key\n  row_time: ${X}"),
            "gateway.row_time",
        ),
        (
            minimal_with("  app_secret: hunter2-secret\n", "  app_secret_file: /run/${X}\n"),
            "gateway.app_secret_file",
        ),
        (minimal_with("- id: S_1", "- id: S_${X}"), "shops[0].id"),
        (
            format!("{MINIMAL}devices:\n  - mac: d47c4490${{X}}\n"),
            "devices[0].mac",
        ),
        (with_device("    shop_id: \"${X}\"\n"), "devices[0].shop_id"),
    ];
    for (text, path) in cases {
        let errs = Config::from_yaml_str(&text, &env).unwrap_err().0;
        assert_error(&errs, path, "not expanded here");
        assert!(errs.iter().all(|e| !e.to_string().contains("s3cr3t-value")), "{errs:?}");
    }
}

#[test]
fn the_credentials_and_the_url_still_expand() {
    let env = env_of(&[
        ("HOST", "gw.example"),
        ("KEY", "key-1"),
        ("SECRET", "secret-1"),
        ("TOK", "token-1"),
        ("USER", "ops"),
        ("PASS", "pass-1"),
    ]);
    let text = "gateway:\n  url: https://${HOST}/m.api\n  app_key: ${KEY}\n  app_secret: ${SECRET}\n  token: ${TOK}\nshops:\n  - id: S_1\n";
    let c = Config::from_yaml_str(text, &env).unwrap();
    assert_eq!(c.gateway.url.as_str(), "https://gw.example/m.api");
    assert_eq!(c.gateway.app_key, "key-1");
    assert_eq!(c.gateway.app_secret.expose_secret(), "secret-1");
    assert!(matches!(&c.gateway.auth, GatewayAuth::Token(t) if t.expose_secret() == "token-1"));
    let text = text.replace(
        "  token: ${TOK}\n",
        "  login:\n    username: ${USER}\n    password: pre-${PASS}\n",
    );
    let c = Config::from_yaml_str(&text, &env).unwrap();
    assert!(matches!(&c.gateway.auth, GatewayAuth::Login { username, password }
        if username == "ops" && password.expose_secret() == "pre-pass-1"));
    // The fields read as secrets are the fields that expand, and only they (with the URL).
    assert_eq!(
        EXPANDED_FIELDS,
        [
            "gateway.url",
            "gateway.app_key",
            "gateway.app_secret",
            "gateway.token",
            "gateway.login.username",
            "gateway.login.password"
        ]
    );
}

#[test]
fn an_expanded_url_is_echoed_as_written() {
    let env = env_of(&[("OPRETAIL_APP_SECRET", "s3cr3t-value")]);
    let text = minimal_with("http://gw.example/m.api", "${OPRETAIL_APP_SECRET}");
    let errs = Config::from_yaml_str(&text, &env).unwrap_err().0;
    assert_error(&errs, "gateway.url", "invalid URL \"${OPRETAIL_APP_SECRET}\"");
    assert!(!errs[0].to_string().contains("s3cr3t-value"), "{errs:?}");
}

#[test]
fn dollar_dollar_is_a_literal_dollar_everywhere() {
    let c = parse(&with_device("    name: \"Price $$5, $${X}\"\n")).unwrap();
    assert_eq!(c.devices[0].name.as_deref(), Some("Price $5, ${X}"));
    let c = parse(&minimal_with("app_key: key", "app_key: key\n  aid: A$")).unwrap();
    assert_eq!(c.gateway.aid, "A$", "a lone $ is kept");
}

#[test]
fn an_http_gateway_elsewhere_is_warned_about() {
    let warnings = |url: &str| parse(&minimal_with("http://gw.example/m.api", url)).unwrap().warnings();
    let w = warnings("http://user:pw@gw.example/m.api?k=v");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("gateway.url is http://gw.example:80"), "{}", w[0]);
    assert!(w[0].contains("in clear") && w[0].contains("https://"), "{}", w[0]);
    assert!(
        !w[0].contains("user:") && !w[0].contains("pw@") && !w[0].contains("k=v"),
        "{}",
        w[0]
    );
    assert_eq!(warnings("http://10.0.0.5:8080/m.api").len(), 1);
    assert_eq!(
        warnings("http://127.0.0.2.example/m.api").len(),
        1,
        "a name is not an address"
    );
    for quiet in [
        "https://gw.example/m.api",
        "http://127.0.0.1:9/m.api",
        "http://127.1.2.3/m.api",
        "http://[::1]:8080/m.api",
        "http://[::ffff:127.0.0.1]/m.api",
        "http://localhost:8080/m.api",
        "http://LOCALHOST./m.api",
    ] {
        assert_eq!(warnings(quiet), Vec::<String>::new(), "{quiet}");
    }
}

#[test]
fn load_logs_each_warning_once() {
    let dir = crate::test_dir("config-warn");
    let path = dir.join("config.yaml");
    let log = crate::test_log::logged(|| {
        std::fs::write(
            &path,
            minimal_with("http://gw.example/m.api", "http://gw.example/m.api?q=1"),
        )
        .unwrap();
        // Only its owner reads it (its secret is written out): that warning is not this one.
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        Config::load(&path).unwrap();
        std::fs::write(&path, MINIMAL.replace("http://gw.example", "http://127.0.0.1:9")).unwrap();
        Config::load(&path).unwrap();
    });
    let warned: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("gateway.url is http://gw.example:80, not this machine"),
        "{log}"
    );
    assert!(!log.contains("q=1"), "{log}");
}

#[test]
fn a_file_others_can_read_is_warned_about_only_when_it_holds_a_secret_as_written() {
    let env = |name: &str| (name == "SECRET").then(|| "s3cret".to_string());
    let text = |secret: &str| {
        format!(
            "gateway:\n  url: https://gw.example/m.api\n  app_key: k\n  app_secret: {secret}\nshops:\n  - id: S_1\n"
        )
    };
    let (_, literal) = Config::parse(&text("written-out"), &env).expect("valid");
    assert_eq!(literal, ["gateway.app_secret"]);
    let warning = super::readable_secrets(0o100644, &literal).expect("a warning");
    assert!(
        warning.contains("gateway.app_secret") && warning.contains("644"),
        "{warning}"
    );
    assert!(!warning.contains("written-out"), "the secret itself: {warning}");
    assert_eq!(
        super::readable_secrets(0o100600, &literal),
        None,
        "only the owner reads it"
    );
    let (_, literal) = Config::parse(&text("${SECRET}"), &env).expect("valid");
    assert!(literal.is_empty(), "{literal:?}");
    assert_eq!(
        super::readable_secrets(0o100644, &literal),
        None,
        "nothing secret in the file"
    );
}

#[test]
fn the_environment_can_pin_the_gateway_host() {
    let pinned = |hosts: &str| env_of(&[("OPRETAIL_ALLOWED_GATEWAY_HOSTS", hosts)]);
    let config = Config::from_yaml_str(MINIMAL, &pinned("openapi.opretail.com, GW.example"));
    assert!(config.is_ok(), "the host is listed (without case): {config:?}");
    let refused = Config::from_yaml_str(MINIMAL, &pinned("openapi.opretail.com,openapi.ovopark.com"))
        .expect_err("another host is refused");
    assert_eq!(refused.0.len(), 1, "{refused}");
    assert_eq!(refused.0[0].path, "gateway.url");
    assert!(
        refused.0[0]
            .message
            .contains("gw.example is not one OPRETAIL_ALLOWED_GATEWAY_HOSTS allows"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("hunter2"), "{refused}");
    assert!(Config::from_yaml_str(MINIMAL, &env_of(&[])).is_ok(), "unset: any host");
}

const CALENDARS: &str = r#"
gateway:
  url: http://gw.example/m.api
  app_key: key
  app_secret: s
calendar:
  hours: {all: "10:00-22:00", sun: "11:00-20:00"}
  closed_dates: ["2026-12-25"]
shops:
  - id: O_1834
    labels: {region: east, city: Shanghai}
    calendar:
      hours: {sun: closed}
      closed_dates: ["2026-12-26"]
  - id: S_9642
    labels: {region: north, manager: "Li Wei"}
    calendar: {hours: {all: 24h}}
shop_overrides:
  - shop_id: "9700"
    labels: {manager: Zhang, region: south}
    calendar: {hours: {mon-fri: "08:00-20:00"}, closed_dates: ["2026-11-20/2026-12-05"]}
"#;

#[test]
fn a_shop_takes_the_top_level_then_its_organisation_then_its_own() {
    use chrono::{NaiveDate, Weekday};
    let c = parse(CALENDARS).unwrap();
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    let labels = |l: Labels| -> Vec<(String, String)> { l.to_vec() };
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());

    // A shop of O_1834 without an override: the organisation's Sunday and dates, the top
    // level's other days and dates.
    let org_shop = c.calendar_for("9601", Some("O_1834"));
    assert_eq!(org_shop.hours(Weekday::Sun), DayHours::Closed);
    assert_eq!(org_shop.hours(Weekday::Mon), DayHours::Open { start: 600, end: 1320 });
    assert!(org_shop.is_closed_date(day(25)) && org_shop.is_closed_date(day(26)));
    assert_eq!(
        labels(c.labels_for("9601", Some("O_1834"))),
        [pair("city", "Shanghai"), pair("region", "east")]
    );

    // Its override: weekdays replaced, dates added, labels merged (the shop's value wins).
    let overridden = c.calendar_for("9700", Some("O_1834"));
    assert_eq!(overridden.hours(Weekday::Fri), DayHours::Open { start: 480, end: 1200 });
    assert_eq!(overridden.hours(Weekday::Sat), DayHours::Open { start: 600, end: 1320 });
    assert_eq!(overridden.hours(Weekday::Sun), DayHours::Closed);
    assert!(overridden.is_closed_date(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()));
    assert!(overridden.is_closed_date(day(26)));
    assert_eq!(
        labels(c.labels_for("9700", Some("O_1834"))),
        [
            pair("city", "Shanghai"),
            pair("manager", "Zhang"),
            pair("region", "south")
        ]
    );

    // A shop listed by its own id: the top level, then its entry.
    let own = c.calendar_for("9642", None);
    assert_eq!(own.hours(Weekday::Sun), DayHours::Open { start: 0, end: 1440 });
    assert!(own.is_closed_date(day(25)) && !own.is_closed_date(day(26)));
    assert_eq!(
        labels(c.labels_for("S_9642", None)),
        [pair("manager", "Li Wei"), pair("region", "north")]
    );

    // A shop nobody configured: the top level only.
    let other = c.calendar_for("1", None);
    assert_eq!(other.hours(Weekday::Sun), DayHours::Open { start: 660, end: 1200 });
    assert!(c.labels_for("1", None).is_empty());
    // Without any calendar: 10:00-22:00.
    let minimal = parse(MINIMAL).unwrap();
    assert_eq!(minimal.calendar_for("1", None), ShopCalendar::default());
    assert_eq!(
        minimal.calendar_for("1", None).hours(Weekday::Sun),
        DayHours::Open { start: 600, end: 1320 }
    );
}

#[test]
fn calendar_and_label_problems_are_reported_at_once_with_their_paths() {
    let text = CALENDARS
        .replace("sun: \"11:00-20:00\"", "sun: \"11:00-11:00\"")
        .replace("{sun: closed}", "{sunday: closed}")
        .replace("city: Shanghai", "job: Shanghai")
        .replace("manager: \"Li Wei\"", "__manager: \"Li Wei\"")
        .replace("mon-fri: \"08:00-20:00\"", "mon-fri: \"08:00-20:00\", fri-sun: closed")
        .replace("2026-11-20/2026-12-05", "2026-12-05/2026-11-20")
        .replace("closed_dates: [\"2026-12-25\"]", "closed_dates: [\"2026-13-25\"]")
        + "  - shop_id: \"9642\"\n    labels: {floor: 3}\n";
    let errs = errors(&text);
    assert_error(&errs, "calendar.hours.sun", "the end equals the start");
    assert_error(&errs, "calendar.closed_dates[0]", "invalid date \"2026-13-25\"");
    assert_error(&errs, "shops[0].calendar.hours.sunday", "unknown key");
    assert_error(&errs, "shops[0].labels.job", "reserved label name");
    assert_error(&errs, "shops[1].labels.__manager", "reserved for Prometheus");
    assert_error(
        &errs,
        "shop_overrides[0].calendar.hours.fri-sun",
        "fri is also named by mon-fri",
    );
    assert_error(
        &errs,
        "shop_overrides[0].calendar.closed_dates[0]",
        "ends before it starts",
    );
    assert_error(&errs, "shop_overrides[1].labels.floor", "expected a string");
    assert_eq!(errs.len(), 8, "{}", ConfigErrors(errs.clone()));

    // An override listed twice.
    let errs = errors(&(CALENDARS.to_string() + "  - shop_id: 9700\n"));
    assert_error(
        &errs,
        "shop_overrides[1].shop_id",
        "duplicate shop_id 9700 (first listed at shop_overrides[0].shop_id)",
    );

    // An override for a shop listed by its own id.
    let errs = errors(&(CALENDARS.to_string() + "  - shop_id: 9642\n"));
    assert_error(
        &errs,
        "shop_overrides[1].shop_id",
        "shop 9642 is listed by its own id at shops[1]",
    );
    // Unknown keys of an entry and of an override; a label listed twice.
    let errs = errors(&CALENDARS.replace(
        "    labels: {manager: Zhang",
        "    tags: {}\n    labels: {manager: Zhang",
    ));
    assert_error(
        &errs,
        "shop_overrides[0].tags",
        "unknown key (expected one of shop_id, labels, calendar)",
    );
    let errs = errors(&CALENDARS.replace("city: Shanghai}", "city: Shanghai, region: west}"));
    assert!(
        errs.iter()
            .any(|e| e.message.contains("duplicate") && e.message.contains("region")),
        "{}",
        ConfigErrors(errs.clone())
    );
}

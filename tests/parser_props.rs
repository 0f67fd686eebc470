//! Property tests of the gateway answer parser: random bytes, random JSON in the shapes the
//! gateway uses, and random mutations of real answers never panic, and whatever parses obeys
//! the parser's promises (finite numbers, a readable hour on every row).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use opretail_exporter::client::{parse_devices_answer, parse_shops_answer};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const KEYS: &[&str] = &[
    "stat",
    "code",
    "codename",
    "result",
    "data",
    "dataList",
    "list",
    "rows",
    "time",
    "name",
    "depId",
    "shopId",
    "passengerFlow",
    "passPassengerFlow",
    "outSidePassengerFlow",
    "outsidePassengerFlow",
    "inShopRate",
    "outFlowCount",
    "dressingRate",
    "duplicatedFlow",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[0-9.eE+-]{0,12}".prop_map(Value::String),
        "20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}".prop_map(Value::String),
        ".{0,16}".prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_string), 1 => ".{0,8}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A success envelope around `data`, with `code` as a number or a string.
fn envelope(code: Value, data: Value) -> Vec<u8> {
    json!({"stat": {"cid": "x", "code": code, "codename": "SUCCESS", "systime": 0}, "result": "", "data": data})
        .to_string()
        .into_bytes()
}

fn real_shops_answer() -> Vec<u8> {
    envelope(
        json!(0),
        json!([{"name": "Test store", "depId": 9642, "shopId": "", "dataList": [
            {"time": "2024-05-01 10:00:00", "passengerFlow": 12, "passPassengerFlow": 135, "outSidePassengerFlow": 147,
             "inShopRate": 8.16, "outFlowCount": 11, "dressingRate": 25.0, "duplicatedFlow": 0},
            {"time": "2024-05-01 11:00:00", "passengerFlow": "7", "passPassengerFlow": "3", "outSidePassengerFlow": "10",
             "inShopRate": "70.00", "outFlowCount": "6"}
        ]}]),
    )
}

fn real_devices_answer() -> Vec<u8> {
    envelope(
        json!("0"),
        json!({"dataList": [{"time": "2024-05-01 10:00:00", "passengerFlow": 5, "outFlowCount": 4}]}),
    )
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0usize..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'{'), Just(b']'), Just(b','), any::<u8>()],
                1..8
            )
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(i, b) => {
                if let Some(x) = bytes.get_mut(i % len) {
                    *x = *b;
                }
            }
            Mutation::Delete(i, n) => {
                let start = (i % len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Insert(i, v) => {
                let at = (i % len).min(bytes.len());
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

/// Whatever parses keeps the parser's promises.
fn check(bytes: &[u8]) {
    if let Ok(shops) = parse_shops_answer(bytes) {
        for shop in shops {
            assert!(!shop.dep_id.is_empty());
            for row in shop.rows {
                let v = row.values;
                for x in [
                    v.walk_in,
                    v.passing,
                    v.outside,
                    v.walk_in_rate,
                    v.walk_out,
                    v.fitting_rate,
                ]
                .into_iter()
                .flatten()
                {
                    assert!(x.is_finite());
                }
            }
        }
    }
    if let Ok(rows) = parse_devices_answer(bytes) {
        for row in rows {
            for x in [row.values.walk_in, row.values.walk_out].into_iter().flatten() {
                assert!(x.is_finite());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn random_json_never_panics(doc in json_value()) {
        check(doc.to_string().as_bytes());
    }

    #[test]
    fn random_data_in_a_success_envelope_never_panics(data in json_value(), code in prop_oneof![Just(json!(0)), Just(json!("0")), leaf()]) {
        check(&envelope(code, data));
    }

    #[test]
    fn mutated_real_answers_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        check(&mutate(real_shops_answer(), &mutations));
        check(&mutate(real_devices_answer(), &mutations));
    }
}

#[test]
fn the_unmutated_answers_parse() {
    let shops = parse_shops_answer(&real_shops_answer()).expect("parses");
    assert_eq!(shops[0].rows.len(), 2);
    assert_eq!(shops[0].rows[1].values.walk_in_rate, Some(0.7));
    let rows = parse_devices_answer(&real_devices_answer()).expect("parses");
    assert_eq!(rows[0].values.walk_in, Some(5.0));
}

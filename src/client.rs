//! The only code that talks to the Opretail gateway: request signing, the signed form POST,
//! limits on time and size, the response envelope, and the conversion of the gateway's loosely
//! typed JSON into the exporter's own types ([`crate::model`]).
//!
//! Every call is counted in the API metrics here, because only here is it known how long it took
//! and how it ended. Errors are [`ApiError`], each with a short `code` label for
//! `opretail_api_errors_total`; no error text ever carries the secret, the token or `_sig`.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use sha1::Sha1;

/// Gateway method: hourly passenger indicators of many shops / organisations in one call.
pub const METHOD_SHOPS: &str = "open.passengerflow.getManyShopsPassengerIndicatorData";
/// Gateway method: hourly walk-in / walk-out of one counting device.
pub const METHOD_DEVICES: &str = "open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator";
/// `_timestamp` format (wall clock of [`GATEWAY_TZ`]).
pub const TIMESTAMP_FORMAT: &str = "%Y%m%d%H%M%S";
/// `startTime` / `endTime` / row `time` format.
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// The zone the gateway reads `_timestamp` in.
pub const GATEWAY_TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// The `_sm` signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    #[default]
    Md5,
    Sha1,
}

impl SignMethod {
    /// The value sent as `_sm`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::Sha1 => "sha1",
        }
    }
}

impl fmt::Display for SignMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "md5" => Ok(SignMethod::Md5),
            "sha1" => Ok(SignMethod::Sha1),
            other => Err(format!("unknown sign method {other:?} (expected md5 or sha1)")),
        }
    }
}

/// Computes `_sig` for `params` (every parameter that is sent except `_sig`, empty values
/// included): sort by name in byte order, concatenate `name value` pairs, wrap in the secret
/// on both ends, hash, upper-case hex.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)], secret: &str, method: SignMethod) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = String::with_capacity(secret.len() * 2 + sorted.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    text.push_str(secret);
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
    }
    text.push_str(secret);
    match method {
        SignMethod::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
        SignMethod::Sha1 => hex::encode_upper(Sha1::digest(text.as_bytes())),
    }
}

#[cfg(test)]
mod sign_tests {
    use super::*;

    fn vector() -> Vec<(&'static str, &'static str)> {
        vec![
            ("_aid", "S107"),
            ("orgid", "1"),
            ("_akey", "test"),
            ("_requestMode", "post"),
            ("_mt", "open.demo.queryOpenAccount"),
            ("_sm", "md5"),
            ("_version", "v1"),
            ("_timestamp", "20171221132407"),
        ]
    }

    #[test]
    fn official_md5_vector() {
        assert_eq!(sign(&vector(), "test", SignMethod::Md5), "5489704B80A47394025527D6D51FB582");
    }

    #[test]
    fn sha1_signs_the_same_string() {
        let text = "test_aidS107_akeytest_mtopen.demo.queryOpenAccount_requestModepost_smmd5_timestamp20171221132407_versionv1orgid1test";
        let expected = hex::encode_upper(Sha1::digest(text.as_bytes()));
        assert_eq!(expected.len(), 40);
        assert_eq!(sign(&vector(), "test", SignMethod::Sha1), expected);
    }

    #[test]
    fn byte_order_and_empty_values_count() {
        // `startTime` sorts before `starthour` (upper case 'T' < 's'); empty values are signed.
        let a = sign(&[("starthour", "0"), ("startTime", "x"), ("e", "")], "s", SignMethod::Md5);
        let text = "sestartTimexstarthour0s";
        assert_eq!(a, hex::encode_upper(Md5::digest(text.as_bytes())));
    }
}

//! The simulator's own check of `_sig`, written from the gateway's published rules (the
//! vendor's SDKs and README, summarised in FACTS.md) and not from the exporter's client: a fake
//! gateway that asked the client's signing code whether a request is signed right would agree
//! with every mistake the client makes. The rules: every parameter except `_sig`, empty values
//! included, sorted by name in byte order; `name` and `value` concatenated with no separators;
//! the app secret at both ends; MD5 (`_sm=md5`) or SHA-1 (`_sm=sha1`) of the UTF-8 bytes,
//! written as upper-case hex.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use sha1::Sha1;

/// A `_sm` algorithm the gateway knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Sha1,
}

impl Algorithm {
    /// The algorithm `_sm` names (any case); `None` for one the gateway does not know.
    pub(crate) fn from_sm(sm: &str) -> Option<Self> {
        if sm.eq_ignore_ascii_case("md5") {
            Some(Algorithm::Md5)
        } else if sm.eq_ignore_ascii_case("sha1") {
            Some(Algorithm::Sha1)
        } else {
            None
        }
    }
}

/// The text that is hashed: `secret`, then `name value` of every pair sorted by name in byte
/// order (pairs with the same name keep their order), then `secret`.
fn signed_text<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret: &str) -> String {
    let mut sorted: Vec<(&str, &str)> = params.into_iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text = String::from(secret);
    for (name, value) in sorted {
        text.push_str(name);
        text.push_str(value);
    }
    text.push_str(secret);
    text
}

/// The `_sig` of `params` (which must not include `_sig` itself).
pub(crate) fn signature<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    secret: &str,
    algorithm: Algorithm,
) -> String {
    let text = signed_text(params, secret);
    let digest: Vec<u8> = match algorithm {
        Algorithm::Md5 => Md5::digest(text.as_bytes()).to_vec(),
        Algorithm::Sha1 => Sha1::digest(text.as_bytes()).to_vec(),
    };
    upper_hex(&digest)
}

/// Whether `sig` is the signature of the request `params` (its `_sig` left out), exactly: the
/// comparison is case-sensitive, as the gateway's is.
pub(crate) fn is_signed(params: &[(String, String)], secret: &str, algorithm: Algorithm, sig: &str) -> bool {
    let signed = params
        .iter()
        .filter(|(name, _)| name != "_sig")
        .map(|(name, value)| (name.as_str(), value.as_str()));
    signature(signed, secret, algorithm) == sig
}

fn upper_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendor README's example request, signed with the secret `test`.
    fn official(sm: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("_aid", "S107"),
            ("orgid", "1"),
            ("_akey", "test"),
            ("_requestMode", "post"),
            ("_mt", "open.demo.queryOpenAccount"),
            ("_sm", sm),
            ("_version", "v1"),
            ("_timestamp", "20171221132407"),
        ]
    }

    #[test]
    fn the_official_test_vector() {
        assert_eq!(
            signed_text(official("md5"), "test"),
            "test_aidS107_akeytest_mtopen.demo.queryOpenAccount_requestModepost_smmd5_timestamp20171221132407_versionv1orgid1test"
        );
        assert_eq!(
            signature(official("md5"), "test", Algorithm::Md5),
            "5489704B80A47394025527D6D51FB582"
        );
        // The same request with `_sm=sha1` (digest from coreutils' sha1sum of the signed text).
        assert_eq!(
            signature(official("sha1"), "test", Algorithm::Sha1),
            "B2E75E1629DFD7058F414AB09A38B8F759CCE6C4"
        );
    }

    #[test]
    fn byte_order_empty_values_and_the_sig_itself() {
        // `T` (0x54) sorts before `h` (0x68): startTime before starthour.
        assert_eq!(
            signed_text([("starthour", "1"), ("startTime", "2"), ("empty", "")], "s"),
            "semptystartTime2starthour1s"
        );
        let params: Vec<(String, String)> = official("md5")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain([("_sig".to_owned(), "5489704B80A47394025527D6D51FB582".to_owned())])
            .collect();
        assert!(is_signed(
            &params,
            "test",
            Algorithm::Md5,
            "5489704B80A47394025527D6D51FB582"
        ));
        assert!(!is_signed(
            &params,
            "test",
            Algorithm::Md5,
            "5489704b80a47394025527d6d51fb582"
        ));
        assert!(!is_signed(
            &params,
            "other",
            Algorithm::Md5,
            "5489704B80A47394025527D6D51FB582"
        ));
    }

    #[test]
    fn sm_names() {
        assert_eq!(Algorithm::from_sm("md5"), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_sm("SHA1"), Some(Algorithm::Sha1));
        assert_eq!(Algorithm::from_sm("sha256"), None);
        assert_eq!(Algorithm::from_sm(""), None);
    }
}

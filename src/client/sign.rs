//! The request signature `_sig`, exactly as the gateway's pages define it; the official test
//! vector anchors it.

use md5::{Digest, Md5};
use sha1::Sha1;

use crate::model::SignMethod;

/// Computes `_sig` for `params` (every parameter that is sent except `_sig`, empty values
/// included): sort by name in byte order, concatenate `name value` pairs, wrap in the secret
/// on both ends, hash, upper-case hex.
pub(crate) fn sign<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)], secret: &str, method: SignMethod) -> String {
    let mut sorted: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut text =
        String::with_capacity(secret.len() * 2 + sorted.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
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
        assert_eq!(
            sign(&vector(), "test", SignMethod::Md5),
            "5489704B80A47394025527D6D51FB582"
        );
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
        let a = sign(
            &[("starthour", "0"), ("startTime", "x"), ("e", "")],
            "s",
            SignMethod::Md5,
        );
        let text = "sestartTimexstarthour0s";
        assert_eq!(a, hex::encode_upper(Md5::digest(text.as_bytes())));
    }
}

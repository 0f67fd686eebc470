//! The web configuration file (`--web.config.file`): TLS and basic authentication for the
//! exporter's own HTTP server, in the YAML shape of the Prometheus exporter-toolkit
//! (`tls_server_config`, `basic_auth_users`). This module owns the document: its raw serde
//! shape, reading it, and turning it into a validated [`WebConfig`] once at start-up. Every key
//! the toolkit knows is part of the raw shape, so that the ones this exporter does not implement
//! are refused as "not supported" rather than called unknown or silently ignored. Errors name
//! the field (`tls_server_config.key_file`, `basic_auth_users.alice`) and never echo a hash or a
//! key; neither does `Debug`. The sections are built next door: `tls` loads certificates and
//! keys into a rustls server configuration, `basic_auth` checks `Authorization` headers.

mod basic_auth;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use basic_auth::BasicAuth;
pub(crate) use basic_auth::REALM;
use tls::TlsConfig;

/// A problem with the web configuration file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file itself could not be read.
    #[error("cannot read web config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Not YAML of the expected shape (unknown keys, wrong types); the message names the field.
    #[error("{0}")]
    Syntax(String),
    /// A field's value is wrong.
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

/// A [`WebConfigError::Field`] for `field`.
fn field_error(field: impl Into<String>, message: impl Into<String>) -> WebConfigError {
    WebConfigError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// The error for a key the exporter-toolkit knows but this exporter does not implement.
fn not_supported(field: &str) -> WebConfigError {
    field_error(field, "not supported by this exporter")
}

/// The validated web configuration.
pub struct WebConfig {
    /// Serve HTTPS with this, or plain HTTP if `None`.
    pub(crate) tls: Option<TlsConfig>,
    /// Require these users on every path, or nobody if `None`.
    pub basic_auth: Option<Arc<BasicAuth>>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls)
            .field("basic_auth", &self.basic_auth)
            .finish()
    }
}

/// The raw document; every key the exporter-toolkit knows is listed so that the ones not
/// implemented here are refused by name instead of being called unknown.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    http_server_config: Option<serde_yaml::Value>,
}

/// The raw `tls_server_config` section, validated by `tls`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    // Known to the exporter-toolkit, not implemented here.
    cert: Option<serde_yaml::Value>,
    key: Option<serde_yaml::Value>,
    client_ca: Option<serde_yaml::Value>,
    max_version: Option<serde_yaml::Value>,
    cipher_suites: Option<serde_yaml::Value>,
    curve_preferences: Option<serde_yaml::Value>,
    prefer_server_cipher_suites: Option<serde_yaml::Value>,
    client_allowed_sans: Option<serde_yaml::Value>,
}

impl WebConfig {
    /// Reads and validates the file at `path`; relative file names in it are taken from the
    /// file's directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, dir)
    }

    /// Validates the document `text`, resolving relative file names against `dir`.
    pub(crate) fn from_yaml(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let raw = parse(text)?;
        if raw.http_server_config.is_some() {
            return Err(not_supported("http_server_config"));
        }
        let tls = raw.tls_server_config.map(|t| TlsConfig::from_raw(t, dir)).transpose()?;
        let basic_auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
            _ => None,
        };
        Ok(WebConfig { tls, basic_auth })
    }
}

/// The raw document of `text`; an empty file (or a bare `---`) is an empty document.
fn parse(text: &str) -> Result<RawWebConfig, WebConfigError> {
    if text.trim().is_empty() {
        return Ok(RawWebConfig::default());
    }
    serde_yaml::from_str::<Option<RawWebConfig>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| WebConfigError::Syntax(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::tls::{ClientAuth, TlsVersion};
    use super::*;

    fn tmp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("opretail-webcfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn err(text: &str) -> String {
        WebConfig::from_yaml(text, &tmp_dir("err"))
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn empty_file_means_plain_http_without_auth() {
        let c = WebConfig::from_yaml("", Path::new(".")).expect("valid");
        assert!(c.tls.is_none() && c.basic_auth.is_none());
        let c = WebConfig::from_yaml("basic_auth_users: {}\n", Path::new(".")).expect("valid");
        assert!(c.basic_auth.is_none());
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = err("tls_server_config:\n  cert_file: a\n  certfile: b\n");
        assert!(e.contains("certfile"), "{e}");
        let e = err("basic_auth: {}\n");
        assert!(e.contains("basic_auth"), "{e}");
    }

    #[test]
    fn toolkit_keys_not_implemented_are_refused_as_not_supported() {
        let e = err("http_server_config:\n  http2: false\n");
        assert_eq!(e, "http_server_config: not supported by this exporter");
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n");
        assert_eq!(e, "tls_server_config.cipher_suites: not supported by this exporter");
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n");
        assert!(
            e.starts_with("tls_server_config.min_version: TLS10 is not supported"),
            "{e}"
        );
        let e = err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n");
        assert!(
            e.starts_with("tls_server_config.client_auth_type: RequireAnyClientCert is not supported"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_unreadable_files_are_named() {
        let e = err("tls_server_config:\n  key_file: server.key\n");
        assert_eq!(e, "tls_server_config.cert_file: required with tls_server_config");
        let e = err("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n");
        assert!(e.starts_with("tls_server_config.cert_file: cannot read "), "{e}");
        assert!(e.contains("nope.crt"), "{e}");
        let e =
            err("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n");
        assert!(e.starts_with("tls_server_config.client_ca_file: required"), "{e}");
    }

    #[test]
    fn bad_pem_is_named_without_echoing_the_key() {
        let dir = tmp_dir("pem");
        std::fs::write(dir.join("bad.crt"), "not a certificate\n").expect("write");
        std::fs::write(
            dir.join("bad.key"),
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==!!\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let e = WebConfig::from_yaml("tls_server_config:\n  cert_file: bad.crt\n  key_file: bad.key\n", &dir)
            .expect_err("bad cert")
            .to_string();
        assert!(e.starts_with("tls_server_config.cert_file: "), "{e}");
        assert!(e.contains("bad.crt") && e.contains("no PEM CERTIFICATE"), "{e}");

        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("good.crt"), cert.cert.pem()).expect("write");
        let e = WebConfig::from_yaml("tls_server_config:\n  cert_file: good.crt\n  key_file: bad.key\n", &dir)
            .expect_err("bad key")
            .to_string();
        assert!(e.starts_with("tls_server_config.key_file: "), "{e}");
        assert!(e.contains("bad.key"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "key material leaked: {e}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let dir = tmp_dir("example");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("server.key"), cert.key_pair.serialize_pem()).expect("write");
        let text = include_str!("../../web-config.example.yml");
        let c = WebConfig::from_yaml(text, &dir).expect("example is valid");
        let tls = c.tls.expect("tls");
        assert_eq!(tls.cert_file, dir.join("server.crt"));
        assert_eq!(
            (tls.client_auth, tls.min_version),
            (ClientAuth::None, TlsVersion::Tls12)
        );
        let auth = c.basic_auth.expect("basic auth");
        assert_eq!(auth.users().collect::<Vec<_>>(), ["prometheus"]);
        assert!(
            auth.check("prometheus", "change-me"),
            "the example hash is of change-me"
        );
    }

    #[test]
    fn a_non_bcrypt_hash_is_named_but_not_echoed() {
        let e = err("basic_auth_users:\n  alice: plaintext-password\n");
        assert!(e.starts_with("basic_auth_users.alice: not a bcrypt hash"), "{e}");
        assert!(!e.contains("plaintext-password"), "{e}");
    }

    #[test]
    fn debug_never_shows_hashes() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let c = WebConfig::from_yaml(&format!("basic_auth_users:\n  alice: {hash}\n"), Path::new(".")).expect("valid");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("alice"), "{dbg}");
        assert!(!dbg.contains(&hash[7..]), "{dbg}");
    }
}

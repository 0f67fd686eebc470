//! The web configuration file (`--web.config.file`): TLS and basic authentication for the
//! exporter's own HTTP server, in the YAML shape of the Prometheus exporter-toolkit
//! (`tls_server_config`, `basic_auth_users`). This module owns the document: its raw serde
//! shape, reading it, turning it into a validated [`WebConfig`], and the guard-rail warnings
//! about a valid but risky one (a key file others may read, optional client certificates
//! without basic auth, the example password), logged at every load and kept in
//! [`WebConfig::warnings`]. Every key the toolkit knows is part of the raw shape, so that the
//! ones this exporter does not implement are refused as "not supported" rather than called
//! unknown or silently ignored. Errors and warnings name the field (`tls_server_config.key_file`,
//! `basic_auth_users.alice`) and never echo a hash or a key; neither does `Debug`. The sections
//! are built next door: `tls` loads certificates and keys into a rustls server configuration,
//! `basic_auth` checks `Authorization` headers; `live` keeps a [`LiveWebConfig`] that re-reads
//! the file, and the files it names, when they change.

mod basic_auth;
mod bcrypt_thread;
mod live;
mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

#[doc(hidden)]
pub use basic_auth::AuthStats;
pub(crate) use basic_auth::REALM;
pub use basic_auth::{AuthOutcome, BasicAuth, MAX_COST, MAX_WAITING};
pub use live::LiveWebConfig;
use live::Sources;
use tls::{ClientAuth, TlsConfig};

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
    /// What is valid but risky in this configuration, one sentence each.
    warnings: Vec<String>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls)
            .field("basic_auth", &self.basic_auth)
            .field("warnings", &self.warnings)
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
    /// Reads and validates the file at `path`, and logs its warnings; relative file names in
    /// it are taken from the file's directory.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let config = Self::read(path, None, &mut Sources::default())?;
        config.log_warnings(path);
        Ok(config)
    }

    /// Reads and validates the file at `path`, recording every file read in `sources`; the
    /// basic auth of `previous` is kept if its users and hashes are unchanged (its caches
    /// stay valid), and otherwise lends what it knows (see [`BasicAuth::new`]).
    fn read(path: &Path, previous: Option<&WebConfig>, sources: &mut Sources) -> Result<WebConfig, WebConfigError> {
        let bytes = sources.read(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| WebConfigError::Syntax(format!("{}: not UTF-8 text", path.display())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::build(&text, dir, previous, sources)
    }

    /// Validates the document `text`, resolving relative file names against `dir`.
    #[cfg(test)]
    pub(crate) fn from_yaml(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        Self::build(text, dir, None, &mut Sources::default())
    }

    fn build(
        text: &str,
        dir: &Path,
        previous: Option<&WebConfig>,
        sources: &mut Sources,
    ) -> Result<WebConfig, WebConfigError> {
        let raw = parse(text)?;
        if raw.http_server_config.is_some() {
            return Err(not_supported("http_server_config"));
        }
        let tls = raw
            .tls_server_config
            .map(|t| TlsConfig::from_raw(t, dir, sources))
            .transpose()?;
        let previous_auth = previous.and_then(|p| p.basic_auth.as_ref());
        let basic_auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => match previous_auth {
                Some(old) if old.same_users(&users) => Some(Arc::clone(old)),
                _ => Some(Arc::new(BasicAuth::new(users, previous_auth.map(|a| &**a))?)),
            },
            _ => None,
        };
        let warnings = guard_rails(tls.as_ref(), basic_auth.as_deref());
        Ok(WebConfig {
            tls,
            basic_auth,
            warnings,
        })
    }

    /// What is valid but risky in this configuration: a private key file others may read,
    /// optional client certificates without basic auth, users with the example password.
    /// Each names the field and never quotes a secret.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The rustls configuration for the next handshake, when serving TLS.
    pub fn tls_server_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.as_ref().map(|t| Arc::clone(&t.server_config))
    }

    /// Logs each warning, naming the file.
    fn log_warnings(&self, path: &Path) {
        for warning in &self.warnings {
            tracing::warn!(file = %path.display(), "web config: {warning}");
        }
    }
}

/// The guard-rail warnings of a valid configuration.
fn guard_rails(tls: Option<&TlsConfig>, basic_auth: Option<&BasicAuth>) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(tls) = tls {
        warnings.extend(tls::key_file_warning(&tls.key_file));
        if matches!(tls.client_auth, ClientAuth::VerifyIfGiven { .. }) && basic_auth.is_none() {
            warnings.push(
                "tls_server_config.client_auth_type: VerifyClientCertIfGiven without basic_auth_users \
                 lets a client without a certificate in unauthenticated: use RequireAndVerifyClientCert, \
                 or add basic_auth_users"
                    .to_string(),
            );
        }
    }
    if let Some(auth) = basic_auth {
        warnings.extend(auth.warnings());
    }
    warnings
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

    fn err(text: &str) -> String {
        WebConfig::from_yaml(text, &crate::test_dir("err"))
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
        let dir = crate::test_dir("pem");
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
        let dir = crate::test_dir("example");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("server.key"), cert.key_pair.serialize_pem()).expect("write");
        let text = include_str!("../../web-config.example.yml");
        let c = WebConfig::from_yaml(text, &dir).expect("example is valid");
        let tls = c.tls.as_ref().expect("tls");
        assert_eq!(tls.cert_file, dir.join("server.crt"));
        assert_eq!(
            (tls.client_auth.clone(), tls.min_version),
            (ClientAuth::None, TlsVersion::Tls12)
        );
        let auth = c.basic_auth.as_ref().expect("basic auth");
        assert_eq!(auth.users().collect::<Vec<_>>(), ["prometheus"]);
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.starts_with("basic_auth_users.prometheus: ") && w.contains("example password")),
            "the example hash is of change-me: {:?}",
            c.warnings()
        );
    }

    #[test]
    fn a_non_bcrypt_hash_is_named_but_not_echoed() {
        let e = err("basic_auth_users:\n  alice: plaintext-password\n");
        assert!(e.starts_with("basic_auth_users.alice: not a bcrypt hash"), "{e}");
        assert!(!e.contains("plaintext-password"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_warned_about() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = crate::test_dir("key-mode");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write");
        let key = dir.join("server.key");
        std::fs::write(&key, cert.key_pair.serialize_pem()).expect("write");
        let yaml = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let c = WebConfig::from_yaml(yaml, &dir).expect("valid");
        assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
        let w = &c.warnings()[0];
        assert!(
            w.starts_with("tls_server_config.key_file: ") && w.contains("server.key"),
            "{w}"
        );
        assert!(w.contains("mode 640"), "{w}");
        assert!(!w.contains("PRIVATE KEY"), "{w}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let c = WebConfig::from_yaml(yaml, &dir).expect("valid");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[cfg(unix)]
    #[test]
    fn optional_client_certificates_without_basic_auth_are_warned_about() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = crate::test_dir("if-given");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("ca.crt"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("server.key"), cert.key_pair.serialize_pem()).expect("write");
        std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
                   client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n";
        let c = WebConfig::from_yaml(tls, &dir).expect("valid");
        assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
        assert!(
            c.warnings()[0]
                .starts_with("tls_server_config.client_auth_type: VerifyClientCertIfGiven without basic_auth_users"),
            "{:?}",
            c.warnings()
        );
        let hash = bcrypt::hash("own password", 4).expect("hash");
        let c = WebConfig::from_yaml(&format!("{tls}basic_auth_users:\n  alice: {hash}\n"), &dir).expect("valid");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        let required = tls.replace("VerifyClientCertIfGiven", "RequireAndVerifyClientCert");
        let c = WebConfig::from_yaml(&required, &dir).expect("valid");
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn the_example_password_is_warned_about_without_the_hash() {
        let hash = bcrypt::hash("change-me", 4).expect("hash");
        let own = bcrypt::hash("own password", 4).expect("hash");
        let c = WebConfig::from_yaml(
            &format!("basic_auth_users:\n  alice: {hash}\n  bob: {own}\n"),
            Path::new("."),
        )
        .expect("valid");
        assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
        let w = &c.warnings()[0];
        assert!(
            w.starts_with("basic_auth_users.alice: the hash is of the example password"),
            "{w}"
        );
        assert!(!w.contains(&hash[7..]), "{w}");
    }

    #[test]
    fn a_bcrypt_cost_above_12_is_refused_with_the_field() {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        let e = err(&format!("basic_auth_users:\n  alice: $2b$13{}\n", &hash[6..]));
        assert!(
            e.starts_with("basic_auth_users.alice: bcrypt cost 13 is above the ceiling of 12"),
            "{e}"
        );
        assert!(e.contains("htpasswd -nBC 10 alice"), "{e}");
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

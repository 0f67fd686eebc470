//! The web configuration file (`--web.config.file`): TLS and basic authentication for the
//! exporter's own HTTP server, in the YAML shape of the Prometheus exporter-toolkit
//! (`tls_server_config`, `basic_auth_users`). The file is read and validated once at start-up
//! into a [`WebConfig`]: certificate and key are loaded into a ready rustls (ring provider)
//! server configuration, relative paths are taken from the file's own directory, every bcrypt
//! hash is checked, and keys the toolkit knows but this exporter does not implement are refused
//! as "not supported" rather than ignored. Errors name the field (`tls_server_config.key_file`,
//! `basic_auth_users.alice`) and never echo a hash or a key; neither does `Debug`.
//! [`BasicAuth`] checks `Authorization` headers, remembering recent successful checks under an
//! HMAC with a per-process key so that regular scrapes do not pay bcrypt every time.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The realm sent in `WWW-Authenticate`.
pub const REALM: &str = "opretail-exporter";

/// Successful checks remembered by [`BasicAuth`] (oldest forgotten first).
const AUTH_CACHE_SIZE: usize = 64;

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

fn field_error(field: impl Into<String>, message: impl Into<String>) -> WebConfigError {
    WebConfigError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// The validated web configuration.
pub struct WebConfig {
    /// Serve HTTPS with this, or plain HTTP if `None`.
    pub tls: Option<TlsConfig>,
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

/// TLS settings, loaded into a rustls server configuration.
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    /// Ready to hand to an acceptor.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("client_auth", &self.client_auth)
            .field("min_version", &self.min_version)
            .finish_non_exhaustive()
    }
}

/// `tls_server_config.client_auth_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but checked against the CA if sent.
    VerifyIfGiven { ca_file: PathBuf },
    /// `RequireAndVerifyClientCert`.
    RequireAndVerify { ca_file: PathBuf },
}

/// `tls_server_config.min_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
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
    pub fn from_yaml(text: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml::from_str::<Option<RawWebConfig>>(text)
                .map_err(|e| WebConfigError::Syntax(e.to_string()))?
                .unwrap_or_default()
        };
        if raw.http_server_config.is_some() {
            return Err(not_supported("http_server_config"));
        }
        let tls = raw.tls_server_config.map(|t| build_tls(t, dir)).transpose()?;
        let basic_auth = match raw.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
            _ => None,
        };
        Ok(WebConfig { tls, basic_auth })
    }
}

fn not_supported(field: &str) -> WebConfigError {
    field_error(field, "not supported by this exporter")
}

fn resolve(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

fn read_file(field: &str, path: &Path) -> Result<Vec<u8>, WebConfigError> {
    std::fs::read(path).map_err(|e| field_error(field, format!("cannot read {}: {e}", path.display())))
}

/// A PEM problem in words, without echoing any of the file's content.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        Error::Base64Decode(_) => "a PEM section is not valid base64",
        Error::NoItemsFound => "no PEM section of the expected kind",
        Error::SectionTooLarge => "a PEM section is too large",
        _ => "not valid PEM",
    }
}

fn load_certs(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let bytes = read_file(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| field_error(field, format!("{}: {}", path.display(), pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(field_error(
            field,
            format!("{}: no PEM CERTIFICATE found", path.display()),
        ));
    }
    Ok(certs)
}

fn load_key(field: &str, path: &Path) -> Result<PrivateKeyDer<'static>, WebConfigError> {
    let bytes = read_file(field, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        field_error(
            field,
            format!(
                "{}: no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {}",
                path.display(),
                pem_problem(&e)
            ),
        )
    })
}

fn build_tls(raw: RawTls, dir: &Path) -> Result<TlsConfig, WebConfigError> {
    const F: &str = "tls_server_config";
    for (present, key) in [
        (raw.cert.is_some(), "cert"),
        (raw.key.is_some(), "key"),
        (raw.client_ca.is_some(), "client_ca"),
        (raw.max_version.is_some(), "max_version"),
        (raw.cipher_suites.is_some(), "cipher_suites"),
        (raw.curve_preferences.is_some(), "curve_preferences"),
        (raw.prefer_server_cipher_suites.is_some(), "prefer_server_cipher_suites"),
        (raw.client_allowed_sans.is_some(), "client_allowed_sans"),
    ] {
        if present {
            return Err(not_supported(&format!("{F}.{key}")));
        }
    }
    let cert_file = match raw.cert_file.as_deref() {
        Some(f) if !f.is_empty() => resolve(dir, f),
        _ => return Err(field_error(format!("{F}.cert_file"), "required with tls_server_config")),
    };
    let key_file = match raw.key_file.as_deref() {
        Some(f) if !f.is_empty() => resolve(dir, f),
        _ => return Err(field_error(format!("{F}.key_file"), "required with tls_server_config")),
    };
    let min_version = match raw.min_version.as_deref() {
        None | Some("") | Some("TLS12") => TlsVersion::Tls12,
        Some("TLS13") => TlsVersion::Tls13,
        Some(v @ ("TLS10" | "TLS11")) => {
            return Err(field_error(
                format!("{F}.min_version"),
                format!("{v} is not supported (TLS 1.2 and 1.3 only)"),
            ))
        }
        Some(other) => {
            return Err(field_error(
                format!("{F}.min_version"),
                format!("{other:?} is not one of TLS12, TLS13"),
            ))
        }
    };
    let ca_file = raw
        .client_ca_file
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(|f| resolve(dir, f));
    let client_auth = match (raw.client_auth_type.as_deref(), ca_file) {
        (None | Some("") | Some("NoClientCert"), None) => ClientAuth::None,
        (None | Some("") | Some("NoClientCert"), Some(_)) => {
            return Err(field_error(
                format!("{F}.client_ca_file"),
                "set, but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven",
            ))
        }
        (Some("RequireAndVerifyClientCert"), Some(ca_file)) => ClientAuth::RequireAndVerify { ca_file },
        (Some("VerifyClientCertIfGiven"), Some(ca_file)) => ClientAuth::VerifyIfGiven { ca_file },
        (Some(t @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")), None) => {
            return Err(field_error(
                format!("{F}.client_ca_file"),
                format!("required with client_auth_type {t}"),
            ))
        }
        (Some(t @ ("RequestClientCert" | "RequireAnyClientCert")), _) => {
            return Err(field_error(
                format!("{F}.client_auth_type"),
                format!("{t} is not supported (use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
            ))
        }
        (Some(other), _) => {
            return Err(field_error(
                format!("{F}.client_auth_type"),
                format!("{other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
            ))
        }
    };

    let certs = load_certs(&format!("{F}.cert_file"), &cert_file)?;
    let key = load_key(&format!("{F}.key_file"), &key_file)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| field_error(format!("{F}.min_version"), e.to_string()))?;
    let builder = match &client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::VerifyIfGiven { ca_file } | ClientAuth::RequireAndVerify { ca_file } => {
            let field = format!("{F}.client_ca_file");
            let mut roots = rustls::RootCertStore::empty();
            for ca in load_certs(&field, ca_file)? {
                roots
                    .add(ca)
                    .map_err(|e| field_error(&field, format!("{}: {e}", ca_file.display())))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if matches!(client_auth, ClientAuth::VerifyIfGiven { .. }) {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| field_error(&field, format!("{}: {e}", ca_file.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server_config = builder.with_single_cert(certs, key).map_err(|e| {
        field_error(
            F,
            format!(
                "the key in {} does not fit the certificate in {}: {e}",
                key_file.display(),
                cert_file.display()
            ),
        )
    })?;
    // The router speaks HTTP/1.1 only.
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfig {
        cert_file,
        key_file,
        client_auth,
        min_version,
        server_config: Arc::new(server_config),
    })
}

/// Basic authentication against bcrypt hashes.
pub struct BasicAuth {
    /// user → bcrypt hash
    users: BTreeMap<String, String>,
    /// Verified when the user is unknown, so that an unknown name costs as much as a known one.
    dummy_hash: String,
    /// Keys the cache entries; fresh for every process.
    cache_key: ring::hmac::Key,
    /// HMACs of recent successful (user, password) pairs, oldest first.
    cache: Mutex<Vec<ring::hmac::Tag>>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash; `users` maps user names to bcrypt hashes.
    pub fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, WebConfigError> {
        let mut dummy_hash = None;
        for (user, hash) in &users {
            let field = format!("basic_auth_users.{user}");
            if user.is_empty() || user.contains(':') {
                return Err(field_error(field, "a user name must be non-empty and without ':'"));
            }
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e| field_error(&field, format!("not a bcrypt hash ({e})")))?;
            if !(4..=31).contains(&parts.get_cost()) {
                return Err(field_error(&field, "not a bcrypt hash (cost outside 4..31)"));
            }
            dummy_hash.get_or_insert_with(|| hash.clone());
        }
        let dummy_hash = dummy_hash.ok_or_else(|| field_error("basic_auth_users", "no users"))?;
        let rng = ring::rand::SystemRandom::new();
        let cache_key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| field_error("basic_auth_users", "no randomness for the credential cache"))?;
        Ok(BasicAuth {
            users,
            dummy_hash,
            cache_key,
            cache: Mutex::new(Vec::with_capacity(AUTH_CACHE_SIZE)),
        })
    }

    /// The configured user names.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Whether an `Authorization` header value carries a configured user and its password.
    /// Runs bcrypt on a blocking thread unless the pair was verified recently.
    pub async fn check_header(self: &Arc<Self>, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.check(&user, &password))
            .await
            .unwrap_or(false)
    }

    /// Whether `password` is `user`'s (blocking: may run bcrypt).
    pub fn check(&self, user: &str, password: &str) -> bool {
        let tag = self.cache_tag(user, password);
        if self.cached(&tag) {
            return true;
        }
        let known = self.users.get(user);
        let hash = known.unwrap_or(&self.dummy_hash);
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if ok {
            self.remember(tag);
        }
        ok
    }

    fn cache_tag(&self, user: &str, password: &str) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(&self.cache_key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        ctx.sign()
    }

    fn cached(&self, tag: &ring::hmac::Tag) -> bool {
        let Ok(cache) = self.cache.lock() else {
            return false;
        };
        // Compare against every entry, each in constant time.
        cache
            .iter()
            .fold(subtle::Choice::from(0), |found, t| {
                found | t.as_ref().ct_eq(tag.as_ref())
            })
            .into()
    }

    fn remember(&self, tag: ring::hmac::Tag) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= AUTH_CACHE_SIZE {
                cache.remove(0);
            }
            cache.push(tag);
        }
    }

    /// How many successful checks are remembered (for tests).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
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
        let text = include_str!("../web-config.example.yml");
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

    #[test]
    fn checks_passwords_and_caches_only_successes() {
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), bcrypt::hash("right", 4).expect("hash"));
        let auth = BasicAuth::new(users).expect("valid");
        assert!(!auth.check("alice", "wrong"));
        assert!(!auth.check("bob", "right"));
        assert_eq!(auth.cached_len(), 0);
        assert!(auth.check("alice", "right"));
        assert_eq!(auth.cached_len(), 1);
        assert!(auth.check("alice", "right"));
        assert_eq!(auth.cached_len(), 1);
        assert!(!auth.check("alice", "righ"));
    }

    #[test]
    fn parses_basic_headers() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(parse_basic(h.as_bytes()), Some(("alice".into(), "pa:ss".into())));
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }
}

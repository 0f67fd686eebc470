//! The `tls_server_config` section: checks its settings, loads the certificate chain, the
//! private key and the client CA from PEM files (relative names taken from the web config
//! file's directory), and builds the rustls server configuration (ring provider, HTTP/1.1 by
//! ALPN) that the listener hands to every handshake. It is built whenever the web config is
//! loaded, at start-up and again when `live` sees one of the files change; every file is read
//! through [`Sources`], so that what was parsed is what is watched. Each step is a function of
//! its own and reports the field it concerns; PEM problems are described in words, never by
//! echoing the file. It also notices a private key file that others may read.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::SupportedProtocolVersion;

use super::live::Sources;
use super::{field_error, not_supported, RawTls, WebConfigError};

/// The section's name, the prefix of its fields in errors.
const SECTION: &str = "tls_server_config";

/// What `min_version: TLS12` allows, preferred first.
static TLS12_AND_TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
/// What `min_version: TLS13` allows.
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// TLS settings, loaded into a rustls server configuration.
pub(crate) struct TlsConfig {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) client_auth: ClientAuth,
    pub(crate) min_version: TlsVersion,
    /// Ready to hand to an acceptor.
    pub(crate) server_config: Arc<rustls::ServerConfig>,
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
pub(crate) enum ClientAuth {
    /// `NoClientCert` (the default).
    None,
    /// `VerifyClientCertIfGiven`: a certificate is optional, but checked against the CA if sent.
    VerifyIfGiven { ca_file: PathBuf },
    /// `RequireAndVerifyClientCert`.
    RequireAndVerify { ca_file: PathBuf },
}

/// `tls_server_config.min_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsConfig {
    /// Validates the section and loads its files; relative names are taken from `dir`.
    pub(super) fn from_raw(raw: RawTls, dir: &Path, sources: &mut Sources) -> Result<TlsConfig, WebConfigError> {
        refuse_unsupported(&raw)?;
        let cert_file = required_file(dir, raw.cert_file.as_deref(), "cert_file")?;
        let key_file = required_file(dir, raw.key_file.as_deref(), "key_file")?;
        let min_version = parse_min_version(raw.min_version.as_deref())?;
        let ca_file = optional_file(dir, raw.client_ca_file.as_deref());
        let client_auth = parse_client_auth(raw.client_auth_type.as_deref(), ca_file)?;
        let server_config = server_config(&cert_file, &key_file, &client_auth, min_version, sources)?;
        Ok(TlsConfig {
            cert_file,
            key_file,
            client_auth,
            min_version,
            server_config,
        })
    }
}

/// `tls_server_config.<key>`, for errors.
fn field(key: &str) -> String {
    format!("{SECTION}.{key}")
}

/// Refuses the first key the exporter-toolkit knows but this exporter does not implement.
fn refuse_unsupported(raw: &RawTls) -> Result<(), WebConfigError> {
    let unsupported = [
        (raw.cert.is_some(), "cert"),
        (raw.key.is_some(), "key"),
        (raw.client_ca.is_some(), "client_ca"),
        (raw.max_version.is_some(), "max_version"),
        (raw.cipher_suites.is_some(), "cipher_suites"),
        (raw.curve_preferences.is_some(), "curve_preferences"),
        (raw.prefer_server_cipher_suites.is_some(), "prefer_server_cipher_suites"),
        (raw.client_allowed_sans.is_some(), "client_allowed_sans"),
    ];
    match unsupported.into_iter().find(|(present, _)| *present) {
        Some((_, key)) => Err(not_supported(&field(key))),
        None => Ok(()),
    }
}

/// The file named by `key`, which the section requires.
fn required_file(dir: &Path, name: Option<&str>, key: &str) -> Result<PathBuf, WebConfigError> {
    optional_file(dir, name).ok_or_else(|| field_error(field(key), "required with tls_server_config"))
}

/// The file named by an optional key (an empty name counts as none).
fn optional_file(dir: &Path, name: Option<&str>) -> Option<PathBuf> {
    name.filter(|f| !f.is_empty()).map(|f| resolve(dir, f))
}

/// `file` as given if absolute, else below `dir`.
fn resolve(dir: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// `min_version`: TLS 1.2 unless `TLS13`; the toolkit's older versions are refused.
fn parse_min_version(value: Option<&str>) -> Result<TlsVersion, WebConfigError> {
    match value {
        None | Some("") | Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(v @ ("TLS10" | "TLS11")) => Err(field_error(
            field("min_version"),
            format!("{v} is not supported (TLS 1.2 and 1.3 only)"),
        )),
        Some(other) => Err(field_error(
            field("min_version"),
            format!("{other:?} is not one of TLS12, TLS13"),
        )),
    }
}

/// `client_auth_type` together with `client_ca_file`: a CA file exactly when certificates are
/// verified.
fn parse_client_auth(kind: Option<&str>, ca_file: Option<PathBuf>) -> Result<ClientAuth, WebConfigError> {
    match (kind, ca_file) {
        (None | Some("") | Some("NoClientCert"), None) => Ok(ClientAuth::None),
        (None | Some("") | Some("NoClientCert"), Some(_)) => Err(field_error(
            field("client_ca_file"),
            "set, but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert or VerifyClientCertIfGiven",
        )),
        (Some("RequireAndVerifyClientCert"), Some(ca_file)) => Ok(ClientAuth::RequireAndVerify { ca_file }),
        (Some("VerifyClientCertIfGiven"), Some(ca_file)) => Ok(ClientAuth::VerifyIfGiven { ca_file }),
        (Some(t @ ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven")), None) => Err(field_error(
            field("client_ca_file"),
            format!("required with client_auth_type {t}"),
        )),
        (Some(t @ ("RequestClientCert" | "RequireAnyClientCert")), _) => Err(field_error(
            field("client_auth_type"),
            format!("{t} is not supported (use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"),
        )),
        (Some(other), _) => Err(field_error(
            field("client_auth_type"),
            format!("{other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"),
        )),
    }
}

/// The rustls server configuration: certificate and key from their files, the protocol
/// versions from `min_version`, client certificates as `client_auth` says, HTTP/1.1 only.
fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_auth: &ClientAuth,
    min_version: TlsVersion,
    sources: &mut Sources,
) -> Result<Arc<rustls::ServerConfig>, WebConfigError> {
    let certs = load_certs(&field("cert_file"), cert_file, sources)?;
    let key = load_key(&field("key_file"), key_file, sources)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(protocol_versions(min_version))
        .map_err(|e| field_error(field("min_version"), e.to_string()))?;
    let builder = match client_verifier(client_auth, provider, sources)? {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        field_error(
            SECTION,
            format!(
                "the key in {} does not fit the certificate in {}: {e}",
                key_file.display(),
                cert_file.display()
            ),
        )
    })?;
    // The router speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The protocol versions `min_version` allows.
fn protocol_versions(min_version: TlsVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min_version {
        TlsVersion::Tls12 => TLS12_AND_TLS13,
        TlsVersion::Tls13 => TLS13_ONLY,
    }
}

/// The verifier of client certificates, or `None` when they are not asked for.
fn client_verifier(
    client_auth: &ClientAuth,
    provider: Arc<CryptoProvider>,
    sources: &mut Sources,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, WebConfigError> {
    let (ca_file, optional) = match client_auth {
        ClientAuth::None => return Ok(None),
        ClientAuth::VerifyIfGiven { ca_file } => (ca_file, true),
        ClientAuth::RequireAndVerify { ca_file } => (ca_file, false),
    };
    let field = field("client_ca_file");
    let roots = load_roots(&field, ca_file, sources)?;
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if optional {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    builder
        .build()
        .map(Some)
        .map_err(|e| field_error(&field, format!("{}: {e}", ca_file.display())))
}

/// The CA certificates in `path`, as trust roots.
fn load_roots(field: &str, path: &Path, sources: &mut Sources) -> Result<rustls::RootCertStore, WebConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(field, path, sources)? {
        roots
            .add(ca)
            .map_err(|e| field_error(field, format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// Every PEM certificate in `path` (at least one).
fn load_certs(field: &str, path: &Path, sources: &mut Sources) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let bytes = read_file(field, path, sources)?;
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

/// The first PEM private key in `path`.
fn load_key(field: &str, path: &Path, sources: &mut Sources) -> Result<PrivateKeyDer<'static>, WebConfigError> {
    let bytes = read_file(field, path, sources)?;
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

/// The bytes of `path` (watched from now on), or an error naming `field` and the file.
fn read_file(field: &str, path: &Path, sources: &mut Sources) -> Result<Vec<u8>, WebConfigError> {
    sources
        .read(path)
        .map_err(|e| field_error(field, format!("cannot read {}: {e}", path.display())))
}

/// A warning when the private key file may be read by its group or by others.
pub(super) fn key_file_warning(key_file: &Path) -> Option<String> {
    let mode = crate::config::file_mode(key_file)? & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{}: {} is readable by group or others (mode {mode:03o}): restrict it, e.g. chmod 600",
            field("key_file"),
            key_file.display()
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_version_defaults_to_tls12() {
        for value in [None, Some(""), Some("TLS12")] {
            assert_eq!(parse_min_version(value).expect("valid"), TlsVersion::Tls12);
        }
        assert_eq!(parse_min_version(Some("TLS13")).expect("valid"), TlsVersion::Tls13);
        let e = parse_min_version(Some("tls13")).expect_err("case matters").to_string();
        assert_eq!(e, "tls_server_config.min_version: \"tls13\" is not one of TLS12, TLS13");
    }

    #[test]
    fn a_ca_file_goes_with_verifying_client_auth_only() {
        let ca = || Some(PathBuf::from("ca.crt"));
        assert_eq!(parse_client_auth(None, None).expect("valid"), ClientAuth::None);
        assert_eq!(
            parse_client_auth(Some("VerifyClientCertIfGiven"), ca()).expect("valid"),
            ClientAuth::VerifyIfGiven {
                ca_file: PathBuf::from("ca.crt")
            }
        );
        let e = parse_client_auth(Some("NoClientCert"), ca()).expect_err("CA without verification");
        assert!(
            e.to_string().starts_with("tls_server_config.client_ca_file: set, but"),
            "{e}"
        );
    }

    #[test]
    fn relative_files_are_taken_from_the_config_directory() {
        let dir = Path::new("/etc/opretail");
        assert_eq!(optional_file(dir, Some("a.crt")), Some(dir.join("a.crt")));
        assert_eq!(
            optional_file(dir, Some("/abs/a.crt")),
            Some(PathBuf::from("/abs/a.crt"))
        );
        assert_eq!(optional_file(dir, Some("")), None);
    }
}

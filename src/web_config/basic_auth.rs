//! The `basic_auth_users` section: user names and bcrypt hashes, checked once when the file is
//! loaded, and the check of each request's `Authorization` header against them. bcrypt is slow
//! on purpose, and Prometheus scrapes with the same credentials every few seconds, so recent
//! successful checks are remembered as HMACs under a key drawn fresh for every process: the
//! cache never holds a password, and an entry means nothing to another process. An unknown user
//! costs a bcrypt verification too, so timing does not tell which names exist.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{field_error, WebConfigError};

/// The realm sent in `WWW-Authenticate`.
pub(crate) const REALM: &str = "opretail-exporter";

/// Successful checks remembered by [`BasicAuth`] (oldest forgotten first).
const AUTH_CACHE_SIZE: usize = 64;

/// Basic authentication against bcrypt hashes.
pub struct BasicAuth {
    /// user → bcrypt hash
    users: BTreeMap<String, String>,
    /// Verified when the user is unknown, so that an unknown name costs as much as a known one.
    dummy_hash: String,
    /// Recent successful (user, password) pairs.
    cache: CredentialCache,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash; `users` maps user names to bcrypt hashes.
    pub(crate) fn new(users: BTreeMap<String, String>) -> Result<BasicAuth, WebConfigError> {
        for (user, hash) in &users {
            check_user(user, hash)?;
        }
        let dummy_hash = users
            .values()
            .next()
            .cloned()
            .ok_or_else(|| field_error("basic_auth_users", "no users"))?;
        Ok(BasicAuth {
            users,
            dummy_hash,
            cache: CredentialCache::new()?,
        })
    }

    /// The configured user names.
    pub(crate) fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Whether an `Authorization` header value carries a configured user and its password.
    /// Runs bcrypt on a blocking thread unless the pair was verified recently.
    pub(crate) async fn check_header(self: &Arc<Self>, header: Option<&[u8]>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.check(&user, &password))
            .await
            .unwrap_or(false)
    }

    /// Whether `password` is `user`'s (blocking: may run bcrypt).
    pub(crate) fn check(&self, user: &str, password: &str) -> bool {
        let tag = self.cache.tag(user, password);
        if self.cache.contains(&tag) {
            return true;
        }
        let known = self.users.get(user);
        let hash = known.unwrap_or(&self.dummy_hash);
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if ok {
            self.cache.remember(tag);
        }
        ok
    }

    /// How many successful checks are remembered (for tests).
    pub fn cached_len(&self) -> usize {
        self.cache.len()
    }
}

/// A user name fit for the header and a bcrypt hash of a cost bcrypt accepts.
fn check_user(user: &str, hash: &str) -> Result<(), WebConfigError> {
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
    Ok(())
}

/// HMACs of recent successful (user, password) pairs, oldest first, under a per-process key.
struct CredentialCache {
    key: ring::hmac::Key,
    tags: Mutex<Vec<ring::hmac::Tag>>,
}

impl CredentialCache {
    fn new() -> Result<CredentialCache, WebConfigError> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| field_error("basic_auth_users", "no randomness for the credential cache"))?;
        Ok(CredentialCache {
            key,
            tags: Mutex::new(Vec::with_capacity(AUTH_CACHE_SIZE)),
        })
    }

    /// The HMAC of the pair; the user's length goes first so that no two pairs share an input.
    fn tag(&self, user: &str, password: &str) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        ctx.sign()
    }

    fn contains(&self, tag: &ring::hmac::Tag) -> bool {
        let Ok(tags) = self.tags.lock() else {
            return false;
        };
        // Compare against every entry, each in constant time.
        tags.iter()
            .fold(subtle::Choice::from(0), |found, t| {
                found | t.as_ref().ct_eq(tag.as_ref())
            })
            .into()
    }

    fn remember(&self, tag: ring::hmac::Tag) {
        if let Ok(mut tags) = self.tags.lock() {
            if tags.len() >= AUTH_CACHE_SIZE {
                tags.remove(0);
            }
            tags.push(tag);
        }
    }

    /// How many successful checks are remembered.
    fn len(&self) -> usize {
        self.tags.lock().map(|c| c.len()).unwrap_or(0)
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

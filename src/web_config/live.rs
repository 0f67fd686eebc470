//! The web configuration in force, re-read while the exporter runs: a [`LiveWebConfig`] holds
//! the current [`WebConfig`] and, at most once per check interval (a second), looks whether the
//! file or any file it names (certificate, key, client CA) changed, by a SHA-256 of the bytes
//! that were parsed ([`Sources`]); if so it loads the file again, on a blocking thread. A new
//! configuration takes over for the requests and handshakes that follow. A bad one, or one that
//! turns TLS on or off (the listener is either plain or TLS, chosen at start-up), leaves the
//! previous one in force and is logged once, naming the field. Two gauges tell how the last
//! reload went.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, Registry};

use super::{field_error, WebConfig, WebConfigError};

/// How often, at most, the files are looked at.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The files a load read, each with a digest of what was read and its permission bits (`None`:
/// could not be read). A changed mode counts as a change, so that a `chmod 600` of the key file
/// takes its warning away without waiting for other edits.
#[derive(Default)]
pub(crate) struct Sources {
    files: Vec<(PathBuf, Option<Fingerprint>)>,
}

/// What a file read as: a digest of its bytes, and its mode where the platform has one.
struct Fingerprint {
    digest: ring::digest::Digest,
    mode: Option<u32>,
}

impl Fingerprint {
    fn of(path: &Path, bytes: &[u8]) -> Fingerprint {
        Fingerprint {
            digest: ring::digest::digest(&ring::digest::SHA256, bytes),
            mode: crate::config::file_mode(path),
        }
    }

    fn same(&self, other: &Fingerprint) -> bool {
        self.digest.as_ref() == other.digest.as_ref() && self.mode == other.mode
    }
}

impl Sources {
    /// The bytes of `path`, recorded with their fingerprint (or the error's absence of one).
    pub(crate) fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let read = std::fs::read(path);
        let fingerprint = read.as_ref().ok().map(|b| Fingerprint::of(path, b));
        self.files.push((path.to_path_buf(), fingerprint));
        read
    }

    /// Whether any recorded file now reads differently (or now reads, or no longer does), or
    /// has another mode.
    fn changed(&self) -> bool {
        self.files.iter().any(|(path, then)| {
            let now = std::fs::read(path).ok().map(|b| Fingerprint::of(path, &b));
            match (then, &now) {
                (Some(a), Some(b)) => !a.same(b),
                (None, None) => false,
                _ => true,
            }
        })
    }
}

/// The web configuration in force, re-read when its files change. Share it as
/// `Arc<LiveWebConfig>`; [`LiveWebConfig::current`] is cheap enough for every request and
/// handshake.
pub struct LiveWebConfig {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    current: RwLock<Arc<WebConfig>>,
    /// What the last load (good or bad) read.
    watched: Mutex<Sources>,
    interval: Duration,
    /// The origin of `next_check_ms`.
    epoch: Instant,
    /// Milliseconds after `epoch` before which the files are not looked at.
    next_check_ms: AtomicU64,
    /// A check is running.
    checking: AtomicBool,
    successful: Gauge,
    success_timestamp: Gauge,
}

impl std::fmt::Debug for LiveWebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveWebConfig")
            .field("path", &self.inner.path)
            .field("current", &*self.inner.config())
            .finish_non_exhaustive()
    }
}

impl LiveWebConfig {
    /// Reads and validates the file at `path` (an error if it is bad, as at start-up), logs
    /// its warnings, and watches it and the files it names from now on.
    pub fn load(path: &Path) -> Result<LiveWebConfig, WebConfigError> {
        Self::load_checking_every(path, CHECK_INTERVAL)
    }

    /// Like [`LiveWebConfig::load`], looking at the files at most every `interval`.
    #[doc(hidden)]
    pub fn load_checking_every(path: &Path, interval: Duration) -> Result<LiveWebConfig, WebConfigError> {
        let mut sources = Sources::default();
        let config = WebConfig::read(path, None, &mut sources)?;
        config.log_warnings(path);
        let successful = Gauge::new(
            "opretail_web_config_last_reload_successful",
            "Whether the last load of the web config file succeeded (1) or was refused (0).",
        )
        .map_err(metric_error)?;
        let success_timestamp = Gauge::new(
            "opretail_web_config_last_reload_success_timestamp_seconds",
            "When the web config file was last loaded successfully (Unix time).",
        )
        .map_err(metric_error)?;
        successful.set(1.0);
        success_timestamp.set(unix_now());
        let epoch = Instant::now();
        Ok(LiveWebConfig {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                current: RwLock::new(Arc::new(config)),
                watched: Mutex::new(sources),
                interval,
                epoch,
                next_check_ms: AtomicU64::new(millis(interval)),
                checking: AtomicBool::new(false),
                successful,
                success_timestamp,
            }),
        })
    }

    /// The configuration in force. When the check interval has passed, also starts a look at
    /// the files (on a blocking thread inside a tokio runtime, here otherwise); a changed
    /// configuration is what later calls return once loaded.
    pub fn current(&self) -> Arc<WebConfig> {
        Inner::maybe_check(&self.inner);
        self.inner.config()
    }

    /// Looks at the files now and reloads if they changed, whatever the interval; returns
    /// whether a changed configuration was taken over.
    pub fn check_now(&self) -> bool {
        self.inner.check()
    }

    /// Registers `opretail_web_config_last_reload_successful` and
    /// `opretail_web_config_last_reload_success_timestamp_seconds` into `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.inner.successful.clone()))?;
        registry.register(Box::new(self.inner.success_timestamp.clone()))
    }

    /// Whether the last load succeeded (the value of the first gauge).
    pub fn last_reload_successful(&self) -> bool {
        self.inner.successful.get() == 1.0
    }
}

impl Inner {
    fn config(&self) -> Arc<WebConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Starts a check if one is due and none is running.
    fn maybe_check(this: &Arc<Inner>) {
        let now = millis(this.epoch.elapsed());
        if now < this.next_check_ms.load(Ordering::Acquire) || this.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        this.next_check_ms
            .store(now.saturating_add(millis(this.interval)), Ordering::Release);
        let run = {
            let this = Arc::clone(this);
            move || {
                let _done = CheckDone(&this.checking);
                this.check();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(run);
            }
            Err(_) => run(),
        }
    }

    /// Reloads if a watched file changed; whether the new configuration was taken over.
    fn check(&self) -> bool {
        let mut watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if !watched.changed() {
            return false;
        }
        let old = self.config();
        let mut sources = Sources::default();
        let loaded = WebConfig::read(&self.path, Some(&old), &mut sources).and_then(|new| {
            if new.tls.is_some() == old.tls.is_some() {
                Ok(new)
            } else {
                Err(field_error(
                    "tls_server_config",
                    "turning TLS on or off needs a restart (the listener serves either plain HTTP or TLS)",
                ))
            }
        });
        // Whatever the outcome, the files just read are the ones watched: an unchanged bad
        // file is reported once.
        *watched = sources;
        match loaded {
            Ok(new) => {
                new.log_warnings(&self.path);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
                self.successful.set(1.0);
                self.success_timestamp.set(unix_now());
                tracing::info!(file = %self.path.display(), "web config reloaded");
                true
            }
            Err(e) => {
                self.successful.set(0.0);
                tracing::error!(
                    file = %self.path.display(),
                    "web config not reloaded, the previous one stays in force: {e}"
                );
                false
            }
        }
    }
}

/// Marks the end of a check, also if it panicked.
struct CheckDone<'a>(&'a AtomicBool);

impl Drop for CheckDone<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn metric_error(e: prometheus::Error) -> WebConfigError {
    field_error("web config metrics", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(password: &str) -> String {
        format!(
            "basic_auth_users:\n  alice: {}\n",
            bcrypt::hash(password, 4).expect("hash")
        )
    }

    #[test]
    fn sources_notice_changed_bytes_of_the_same_length_and_vanished_files() {
        let dir = crate::test_dir("sources");
        let path = dir.join("a.pem");
        std::fs::write(&path, "aaaa").expect("write");
        let mut sources = Sources::default();
        assert_eq!(sources.read(&path).expect("read"), b"aaaa");
        assert!(sources.read(&dir.join("missing.pem")).is_err());
        assert!(!sources.changed());
        std::fs::write(&path, "aaaa").expect("write");
        assert!(!sources.changed(), "rewritten with the same bytes");
        std::fs::write(&path, "aaab").expect("write");
        assert!(sources.changed());
        std::fs::write(&path, "aaaa").expect("write");
        std::fs::write(dir.join("missing.pem"), "now here").expect("write");
        assert!(sources.changed(), "a file that could not be read now can");
    }

    #[cfg(unix)]
    #[test]
    fn sources_notice_a_changed_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = crate::test_dir("mode");
        let path = dir.join("key.pem");
        std::fs::write(&path, "key").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let mut sources = Sources::default();
        sources.read(&path).expect("read");
        assert!(!sources.changed());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(sources.changed(), "chmod 600 alone is a change");
    }

    #[test]
    fn keeps_the_basic_auth_of_unchanged_users_and_refuses_turning_tls_on() {
        let dir = crate::test_dir("keep");
        let path = dir.join("web.yml");
        let yaml = users("pw");
        std::fs::write(&path, &yaml).expect("write");
        let live = LiveWebConfig::load_checking_every(&path, Duration::from_secs(3600)).expect("valid");
        let first = live.current();
        assert!(!live.check_now(), "nothing changed");

        // A comment only: reloaded, with the same users (and their caches).
        std::fs::write(&path, format!("# rotated\n{yaml}")).expect("write");
        assert!(live.check_now());
        let second = live.current();
        assert!(!Arc::ptr_eq(&first, &second));
        let (a, b) = (first.basic_auth.as_ref(), second.basic_auth.as_ref());
        assert!(Arc::ptr_eq(a.expect("auth"), b.expect("auth")));

        // Turning TLS on needs a restart: refused once, the old configuration stays.
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write");
        std::fs::write(dir.join("server.key"), cert.key_pair.serialize_pem()).expect("write");
        std::fs::write(
            &path,
            format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{yaml}"),
        )
        .expect("write");
        assert!(!live.check_now());
        assert!(!live.last_reload_successful());
        assert!(live.current().tls.is_none());
        assert!(Arc::ptr_eq(&live.current(), &second));
        assert!(!live.check_now(), "the same refused file is not tried again");

        std::fs::write(&path, users("new")).expect("write");
        assert!(live.check_now());
        assert!(live.last_reload_successful());
        let third = live.current();
        assert!(!Arc::ptr_eq(
            second.basic_auth.as_ref().expect("auth"),
            third.basic_auth.as_ref().expect("auth")
        ));
    }

    #[test]
    fn current_looks_at_the_files_once_the_interval_has_passed() {
        let dir = crate::test_dir("interval");
        let path = dir.join("web.yml");
        std::fs::write(&path, users("pw")).expect("write");
        let live = LiveWebConfig::load_checking_every(&path, Duration::from_millis(20)).expect("valid");
        let first = live.current();
        std::fs::write(&path, "").expect("write");
        // Outside a runtime the check runs inside `current`.
        let deadline = Instant::now() + Duration::from_secs(10);
        while live.current().basic_auth.is_some() {
            assert!(Instant::now() < deadline, "not reloaded");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(first.basic_auth.is_some());
        assert!(live.last_reload_successful());
    }
}

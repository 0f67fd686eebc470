//! The `basic_auth_users` section: user names and bcrypt hashes, checked when the file is
//! loaded, and the check of each request's `Authorization` header against them, built so that
//! clients without the password cannot spend the exporter's CPU.
//!
//! bcrypt is slow on purpose, so a check first looks in two caches, in the async context: the
//! pairs recently verified (Prometheus scrapes with the same credentials every few seconds) and
//! the pairs recently refused. Both hold HMAC tags under a key drawn fresh for every
//! [`BasicAuth`], never a password; a reloaded configuration starts with empty caches, so a
//! revoked password stops working at once. A pair in neither cache waits, asynchronously, for
//! the single right to run bcrypt: one verification at a time, on the low-priority thread of
//! [`super::bcrypt_thread`], to completion. The wait is bounded ([`MAX_WAITING`]); beyond it a request is answered
//! [`AuthOutcome::Busy`] at once, and a client that hangs up while waiting leaves the queue
//! without costing a verification. Hashes above cost [`MAX_COST`] are refused at load.
//!
//! Timing does not tell which user names exist: an unknown user is verified against a decoy
//! hash of the highest configured cost, and every refusal after a verification or a cached
//! refusal is padded, with an async sleep (no CPU, no permit held), to half as much again as one
//! verification at that cost takes (the margin covers a machine busier than when measured): as
//! measured when the section was loaded, or as observed since (a moving average, so that a
//! busier machine does not make the slowest users stand out), whichever is longer. Loading also notes which users still have the example password.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{field_error, WebConfigError};

/// The realm sent in `WWW-Authenticate`.
pub(crate) const REALM: &str = "opretail-exporter";

/// Successful checks remembered (oldest forgotten first).
const SUCCESS_CACHE_SIZE: usize = 64;
/// Refused checks remembered (oldest forgotten first).
const FAILURE_CACHE_SIZE: usize = 1024;
/// Requests that may wait for the right to run bcrypt; further ones are answered busy.
pub const MAX_WAITING: usize = 32;
/// The highest bcrypt cost accepted: at 13 and above, each failed login costs seconds of CPU.
pub const MAX_COST: u32 = 12;
/// A refusal is padded to this many halves of one verification at the highest cost.
const PADDING_HALVES: u32 = 3;
/// The weight of a new observation in the moving average of verification times (1/4).
const AVERAGE_SHIFT: u32 = 2;
/// The password of the README's and the example file's hash.
const EXAMPLE_PASSWORD: &str = "change-me";

/// The answer to a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A configured user with its password.
    Allowed,
    /// No credentials, or wrong ones: ask again (`401`).
    Refused,
    /// Too many checks are waiting for bcrypt; nothing was verified (`503`, retry later).
    Busy,
}

/// Counters of the bcrypt verifications, for tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Verifications started.
    pub verifications: u64,
    /// The most verifications ever running at once.
    pub max_concurrent: usize,
    /// Checks waiting for the right to run bcrypt now.
    pub waiting: usize,
}

/// An HMAC-SHA256 tag of a (user, password) pair.
type Tag = [u8; 32];

/// Basic authentication against bcrypt hashes.
pub struct BasicAuth {
    /// user → bcrypt hash
    users: BTreeMap<String, String>,
    /// What unknown users are verified against, and how long a refusal takes.
    decoy: Decoy,
    /// Users whose hash is of [`EXAMPLE_PASSWORD`].
    example_password: BTreeSet<String>,
    /// The key of both caches' tags, drawn for this configuration alone.
    key: ring::hmac::Key,
    successes: TagCache,
    failures: TagCache,
    /// One permit: bcrypt runs one verification at a time.
    verifier: Arc<Semaphore>,
    /// Checks waiting for the permit.
    waiting: AtomicUsize,
    verifications: AtomicU64,
    running: AtomicUsize,
    max_running: AtomicUsize,
    /// Moving average of the verifications at the highest cost, in nanoseconds.
    observed_nanos: AtomicU64,
}

/// A hash of a random password at the highest configured cost, and the time one verification
/// at that cost took.
#[derive(Clone)]
struct Decoy {
    hash: String,
    cost: u32,
    verify_time: Duration,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash (a user name fit for the header, a bcrypt hash of cost 4 to
    /// [`MAX_COST`]), notes the users with the example password and makes the decoy. What
    /// `previous` already knows (the example-password check of an unchanged hash, a decoy of
    /// the same cost) is taken from it; its caches are not.
    pub(crate) fn new(
        users: BTreeMap<String, String>,
        previous: Option<&BasicAuth>,
    ) -> Result<BasicAuth, WebConfigError> {
        let mut max_cost = None;
        for (user, hash) in &users {
            let cost = check_user(user, hash)?;
            max_cost = max_cost.max(Some(cost));
        }
        let max_cost = max_cost.ok_or_else(|| field_error("basic_auth_users", "no users"))?;
        let example_password = users
            .iter()
            .filter(|(user, hash)| match previous {
                Some(p) if p.users.get(*user) == Some(*hash) => p.example_password.contains(*user),
                _ => bcrypt::verify(EXAMPLE_PASSWORD, hash).unwrap_or(false),
            })
            .map(|(user, _)| user.clone())
            .collect();
        let decoy = match previous {
            Some(p) if p.decoy.cost == max_cost => p.decoy.clone(),
            _ => Decoy::new(max_cost)?,
        };
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| field_error("basic_auth_users", "no randomness for the credential cache"))?;
        Ok(BasicAuth {
            users,
            example_password,
            key,
            successes: TagCache::new(SUCCESS_CACHE_SIZE),
            failures: TagCache::new(FAILURE_CACHE_SIZE),
            verifier: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            verifications: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            observed_nanos: AtomicU64::new(nanos(decoy.verify_time)),
            decoy,
        })
    }

    /// The configured user names.
    pub(crate) fn users(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// Whether both configure the same users with the same hashes.
    pub(crate) fn same_users(&self, users: &BTreeMap<String, String>) -> bool {
        &self.users == users
    }

    /// The guard-rail warnings of this section: users with the example password.
    pub(crate) fn warnings(&self) -> impl Iterator<Item = String> + '_ {
        self.example_password.iter().map(|user| {
            format!(
                "basic_auth_users.{user}: the hash is of the example password \"{EXAMPLE_PASSWORD}\" \
                 from the documentation; anyone who has read it can log in: set a password of your own"
            )
        })
    }

    /// The answer to an `Authorization` header value. Cached pairs are answered at once; any
    /// other pair waits (asynchronously, at most [`MAX_WAITING`] at a time, else
    /// [`AuthOutcome::Busy`]) for its turn to run bcrypt on the low-priority thread. A refusal after a
    /// verification or a cached refusal takes at least [`BasicAuth::refusal_time`].
    pub async fn check_header(self: &Arc<Self>, header: Option<&[u8]>) -> AuthOutcome {
        let started = tokio::time::Instant::now();
        let Some((user, password)) = header.and_then(parse_basic) else {
            return AuthOutcome::Refused;
        };
        let tag = self.tag(&user, &password);
        if self.successes.contains(&tag) {
            return AuthOutcome::Allowed;
        }
        if !self.failures.contains(&tag) {
            match self.verify_in_turn(user, password, tag).await {
                None => return AuthOutcome::Busy,
                Some(true) => return AuthOutcome::Allowed,
                Some(false) => {}
            }
        }
        tokio::time::sleep_until(started + self.refusal_time()).await;
        AuthOutcome::Refused
    }

    /// Waits for the permit to run bcrypt, then verifies on the low-priority thread; `None` when the
    /// queue is full. Dropping the future while it waits leaves the queue; once bcrypt has
    /// started, it finishes (and its answer is cached) whatever happens to the request.
    async fn verify_in_turn(self: &Arc<Self>, user: String, password: String, tag: Tag) -> Option<bool> {
        let permit = {
            let _place = self.queue_place()?;
            Arc::clone(&self.verifier).acquire_owned().await.ok()?
        };
        // Another request may have settled the same pair meanwhile.
        if self.successes.contains(&tag) {
            return Some(true);
        }
        if self.failures.contains(&tag) {
            return Some(false);
        }
        let this = Arc::clone(self);
        let verified = super::bcrypt_thread::run(move || {
            let _permit = permit;
            this.verify(&user, &password, tag)
        })
        .await;
        Some(verified.unwrap_or(false))
    }

    /// A place in the queue for the permit, given back when dropped; `None` when full.
    fn queue_place(&self) -> Option<QueuePlace<'_>> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WAITING).then_some(n + 1)
            })
            .ok()
            .map(|_| QueuePlace(&self.waiting))
    }

    /// Runs bcrypt (blocking) on the pair and caches the answer. An unknown user is verified
    /// against the decoy, so that it costs what a known user of the highest cost costs.
    fn verify(&self, user: &str, password: &str, tag: Tag) -> bool {
        let known = self.users.get(user);
        let hash = known.unwrap_or(&self.decoy.hash);
        self.verifications.fetch_add(1, Ordering::SeqCst);
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(running, Ordering::SeqCst);
        let started = Instant::now();
        let ok = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        let took = started.elapsed();
        self.running.fetch_sub(1, Ordering::SeqCst);
        if known.is_none() || cost_of(hash) == Some(self.decoy.cost) {
            self.observe(took);
        }
        if ok {
            self.successes.remember(tag);
        } else {
            self.failures.remember(tag);
        }
        ok
    }

    /// The HMAC of the pair; the user's length goes first so that no two pairs share an input.
    fn tag(&self, user: &str, password: &str) -> Tag {
        let mut ctx = ring::hmac::Context::with_key(&self.key);
        ctx.update(&(user.len() as u64).to_be_bytes());
        ctx.update(user.as_bytes());
        ctx.update(password.as_bytes());
        let mut tag = [0u8; 32];
        for (t, b) in tag.iter_mut().zip(ctx.sign().as_ref()) {
            *t = *b;
        }
        tag
    }

    /// Adds the time of a verification at the highest cost to the moving average.
    fn observe(&self, took: Duration) {
        let sample = nanos(took);
        let _ = self
            .observed_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |average| {
                Some(average - (average >> AVERAGE_SHIFT) + (sample >> AVERAGE_SHIFT))
            });
    }

    /// How long a refusal takes at least: half as much again as one verification at the
    /// highest configured cost, as measured when the section was loaded or as observed since,
    /// whichever is longer.
    pub fn refusal_time(&self) -> Duration {
        let observed = Duration::from_nanos(self.observed_nanos.load(Ordering::Acquire));
        self.decoy.verify_time.max(observed) * PADDING_HALVES / 2
    }

    /// How many successful checks are remembered (for tests).
    pub fn cached_len(&self) -> usize {
        self.successes.len()
    }

    /// Counters of the verifications (for tests).
    #[doc(hidden)]
    pub fn stats(&self) -> AuthStats {
        AuthStats {
            verifications: self.verifications.load(Ordering::SeqCst),
            max_concurrent: self.max_running.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
        }
    }

    /// Takes the right to run bcrypt until the permit is dropped, so that tests can keep
    /// checks waiting.
    #[doc(hidden)]
    pub async fn hold_verifier(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.verifier).acquire_owned().await.ok()
    }
}

/// A place in [`BasicAuth`]'s queue; leaves it when dropped.
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Decoy {
    /// Hashes a random password at `cost`, and times that and a verification against the
    /// result: the longer is the time one verification at `cost` takes.
    fn new(cost: u32) -> Result<Decoy, WebConfigError> {
        let mut secret = [0u8; 18];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
            .map_err(|_| field_error("basic_auth_users", "no randomness for the decoy hash"))?;
        let password = base64::engine::general_purpose::STANDARD.encode(secret);
        let started = Instant::now();
        let hash = bcrypt::hash(&password, cost)
            .map_err(|e| field_error("basic_auth_users", format!("cannot make the decoy hash: {e}")))?;
        let hashing = started.elapsed();
        let started = Instant::now();
        let _ = bcrypt::verify("", &hash);
        let verifying = started.elapsed();
        Ok(Decoy {
            hash,
            cost,
            verify_time: hashing.max(verifying),
        })
    }
}

/// The cost of a bcrypt hash.
fn cost_of(hash: &str) -> Option<u32> {
    hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

/// Nanoseconds of `d`, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A user name fit for the header and a bcrypt hash of a cost from 4 to [`MAX_COST`]; returns
/// the cost.
fn check_user(user: &str, hash: &str) -> Result<u32, WebConfigError> {
    let field = format!("basic_auth_users.{user}");
    if user.is_empty() || user.contains(':') {
        return Err(field_error(field, "a user name must be non-empty and without ':'"));
    }
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e| field_error(&field, format!("not a bcrypt hash ({e})")))?;
    let cost = parts.get_cost();
    if cost < 4 {
        return Err(field_error(&field, "not a bcrypt hash (cost below 4)"));
    }
    if cost > MAX_COST {
        return Err(field_error(
            &field,
            format!(
                "bcrypt cost {cost} is above the ceiling of {MAX_COST}: each failed login would take seconds of CPU; \
                 re-hash the password with a lower cost, e.g. `htpasswd -nBC 10 {user}`"
            ),
        ));
    }
    Ok(cost)
}

/// Recent tags, oldest first. The tags are HMACs under a key no client knows, so neither a
/// lookup's answer nor its time says anything a client could steer.
struct TagCache {
    capacity: usize,
    tags: Mutex<(HashSet<Tag>, VecDeque<Tag>)>,
}

impl TagCache {
    fn new(capacity: usize) -> TagCache {
        TagCache {
            capacity,
            tags: Mutex::new((HashSet::new(), VecDeque::new())),
        }
    }

    fn contains(&self, tag: &Tag) -> bool {
        self.tags.lock().unwrap_or_else(PoisonError::into_inner).0.contains(tag)
    }

    fn remember(&self, tag: Tag) {
        let mut guard = self.tags.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if !set.insert(tag) {
            return;
        }
        order.push_back(tag);
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }

    fn len(&self) -> usize {
        self.tags.lock().unwrap_or_else(PoisonError::into_inner).1.len()
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

    fn header(user: &str, password: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}").into_bytes()
    }

    fn auth(users: &[(&str, &str, u32)]) -> Arc<BasicAuth> {
        let users = users
            .iter()
            .map(|(u, p, cost)| (u.to_string(), bcrypt::hash(p, *cost).expect("hash")))
            .collect();
        Arc::new(BasicAuth::new(users, None).expect("valid"))
    }

    /// A hash of `cost` that parses but was never computed (costs above the ceiling are
    /// refused before any bcrypt runs).
    fn forged(cost: u32) -> String {
        let hash = bcrypt::hash("pw", 4).expect("hash");
        format!("$2b${cost:02}{}", &hash[6..])
    }

    #[tokio::test]
    async fn checks_passwords_and_caches_both_answers() {
        let auth = auth(&[("alice", "right", 4)]);
        let check = |user: &str, password: &str| {
            let auth = Arc::clone(&auth);
            let h = header(user, password);
            async move { auth.check_header(Some(&h)).await }
        };
        assert_eq!(check("alice", "wrong").await, AuthOutcome::Refused);
        assert_eq!(check("bob", "right").await, AuthOutcome::Refused);
        assert_eq!(auth.cached_len(), 0);
        assert_eq!(auth.stats().verifications, 2);
        assert_eq!(check("alice", "right").await, AuthOutcome::Allowed);
        assert_eq!(auth.cached_len(), 1);
        assert_eq!(check("alice", "right").await, AuthOutcome::Allowed);
        assert_eq!(check("alice", "wrong").await, AuthOutcome::Refused);
        assert_eq!(check("bob", "right").await, AuthOutcome::Refused);
        assert_eq!(auth.stats().verifications, 3, "repeats are answered from the caches");
        assert_eq!(check("alice", "righ").await, AuthOutcome::Refused);
        assert_eq!(auth.stats().verifications, 4);
        assert_eq!(auth.check_header(None).await, AuthOutcome::Refused);
        assert_eq!(auth.check_header(Some(b"Bearer x")).await, AuthOutcome::Refused);
        assert_eq!(auth.stats().verifications, 4);
    }

    #[tokio::test]
    async fn the_failure_cache_is_bounded() {
        let auth = auth(&[("alice", "right", 4)]);
        for i in 0..FAILURE_CACHE_SIZE + 10 {
            auth.failures.remember(auth.tag("alice", &i.to_string()));
        }
        assert_eq!(auth.failures.len(), FAILURE_CACHE_SIZE);
        assert!(!auth.failures.contains(&auth.tag("alice", "0")), "oldest forgotten");
        let newest = (FAILURE_CACHE_SIZE + 9).to_string();
        assert!(auth.failures.contains(&auth.tag("alice", &newest)));
    }

    #[tokio::test]
    async fn a_full_queue_is_busy_without_bcrypt() {
        let auth = auth(&[("alice", "right", 4)]);
        let held = auth.hold_verifier().await.expect("permit");
        let mut waiting = Vec::new();
        for i in 0..MAX_WAITING {
            let auth = Arc::clone(&auth);
            let h = header("alice", &format!("guess-{i}"));
            waiting.push(tokio::spawn(async move { auth.check_header(Some(&h)).await }));
        }
        while auth.stats().waiting < MAX_WAITING {
            tokio::task::yield_now().await;
        }
        let h = header("alice", "one more");
        assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Busy);
        // A cached pair needs no place in the queue.
        auth.successes.remember(auth.tag("alice", "right"));
        let h = header("alice", "right");
        assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Allowed);
        assert_eq!(auth.stats().verifications, 0);
        drop(held);
        for w in waiting {
            assert_eq!(w.await.expect("task"), AuthOutcome::Refused);
        }
        let stats = auth.stats();
        assert_eq!((stats.verifications, stats.max_concurrent, stats.waiting), (32, 1, 0));
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue_without_bcrypt() {
        let auth = auth(&[("alice", "right", 4)]);
        let held = auth.hold_verifier().await.expect("permit");
        let waiter = {
            let auth = Arc::clone(&auth);
            let h = header("alice", "guess");
            tokio::spawn(async move { auth.check_header(Some(&h)).await })
        };
        while auth.stats().waiting < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        assert!(waiter.await.is_err(), "aborted");
        assert_eq!(auth.stats().waiting, 0);
        drop(held);
        let h = header("alice", "right");
        assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Allowed);
        assert_eq!(auth.stats().verifications, 1, "only the later check ran bcrypt");
    }

    #[tokio::test]
    async fn refusals_are_padded_to_one_verification_at_the_highest_cost() {
        let auth = auth(&[("alice", "right", 4), ("bob", "right", 6)]);
        let pad = auth.refusal_time();
        assert!(pad > Duration::ZERO);
        for (user, password) in [("alice", "wrong"), ("alice", "wrong"), ("mallory", "x"), ("bob", "y")] {
            let started = Instant::now();
            let h = header(user, password);
            assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Refused);
            assert!(started.elapsed() >= pad, "{user}: {:?} < {pad:?}", started.elapsed());
        }
        let h = header("alice", "right");
        assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Allowed);
        let started_cached = Instant::now();
        assert_eq!(auth.check_header(Some(&h)).await, AuthOutcome::Allowed);
        assert!(started_cached.elapsed() < pad, "a cached success is not padded");
    }

    #[test]
    fn the_decoy_has_the_highest_cost() {
        let auth = auth(&[("alice", "right", 4), ("bob", "right", 5)]);
        let parts: bcrypt::HashParts = auth.decoy.hash.parse().expect("decoy is a hash");
        assert_eq!(parts.get_cost(), 5);
        assert!(!auth.users.values().any(|h| *h == auth.decoy.hash));
    }

    #[test]
    fn costs_above_the_ceiling_are_refused_with_the_field_and_a_remedy() {
        let hash = forged(13);
        let e = check_user("alice", &hash).expect_err("cost 13").to_string();
        assert!(
            e.starts_with("basic_auth_users.alice: bcrypt cost 13 is above the ceiling of 12"),
            "{e}"
        );
        assert!(
            e.contains("seconds of CPU") && e.contains("htpasswd -nBC 10 alice"),
            "{e}"
        );
        assert!(!e.contains(&hash[7..]), "hash echoed: {e}");
        assert_eq!(check_user("alice", &forged(12)).expect("cost 12"), 12);
        let users = BTreeMap::from([("bob".to_string(), forged(31))]);
        let e = BasicAuth::new(users, None).expect_err("cost 31").to_string();
        assert!(e.starts_with("basic_auth_users.bob: bcrypt cost 31"), "{e}");
    }

    #[test]
    fn the_example_password_is_noticed() {
        let auth = auth(&[("alice", EXAMPLE_PASSWORD, 4), ("bob", "own", 4)]);
        let warnings: Vec<String> = auth.warnings().collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("basic_auth_users.alice: "), "{warnings:?}");
        // Carried over from the previous configuration for an unchanged hash.
        let again = BasicAuth::new(auth.users.clone(), Some(&auth)).expect("valid");
        assert_eq!(again.warnings().collect::<Vec<_>>(), warnings);
        assert_eq!(again.decoy.hash, auth.decoy.hash);
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

//! The gateway's two memories that refuse a request with -100 API_CALL_REPEAT: the `_nonce`
//! values already used (a bounded memory, so a long-running simulator does not grow without
//! end) and the request budget (a token bucket or a per-second count, when the tenant has a
//! rate limit). Both only
//! answer yes or no; the request core decides where in the order of checks they apply.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// How many `_nonce` values are remembered for replay detection.
const NONCE_MEMORY: usize = 100_000;

/// A bounded memory of nonces already used.
#[derive(Default)]
pub(crate) struct Nonces {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Nonces {
    /// Remembers `nonce`; false if it was already seen.
    pub(crate) fn insert(&mut self, nonce: &str) -> bool {
        if self.set.contains(nonce) {
            return false;
        }
        if self.order.len() >= NONCE_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(nonce.to_owned());
        self.order.push_back(nonce.to_owned());
        true
    }
}

/// How a gateway with a request budget counts: the vendor does not say, so both readings of
/// "`rate` requests per second" are simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateRule {
    /// A token bucket: `rate` a second on average, bursts of one second's worth (so up to twice
    /// the rate in the first second after a quiet spell).
    #[default]
    TokenBucket,
    /// At most ⌊rate⌋ requests (at least one) in any window of one second (of `1/rate` seconds
    /// below one a second).
    PerSecond,
}

/// A window's allowance for request times jittered on their way in (the network, and a busy
/// machine delaying one request more than the next).
const JITTER: std::time::Duration = std::time::Duration::from_millis(100);

/// The gateway's request budget under its [`RateRule`], or no limit.
pub(crate) struct RateBudget {
    rate: Option<f64>,
    rule: RateRule,
    /// Token bucket: tokens left and when they were counted.
    bucket: Mutex<(f64, Instant)>,
    /// Per second: the times of the requests let through in the last window.
    recent: Mutex<VecDeque<Instant>>,
}

impl RateBudget {
    pub(crate) fn new(rate: Option<f64>, rule: RateRule) -> Self {
        let burst = rate.unwrap_or(1.0).max(1.0);
        RateBudget {
            rate,
            rule,
            bucket: Mutex::new((burst, Instant::now())),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes a place in the budget; false when the request is over it.
    pub(crate) fn take(&self) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        match self.rule {
            RateRule::TokenBucket => self.take_token(rate),
            RateRule::PerSecond => self.take_place(rate),
        }
    }

    fn take_token(&self, rate: f64) -> bool {
        let burst = rate.max(1.0);
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
        // Half a token of tolerance: requests paced exactly at the rate arrive with jitter.
        if tokens >= 0.5 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }

    fn take_place(&self, rate: f64) -> bool {
        let (places, window) = if rate >= 1.0 {
            (rate.floor() as usize, std::time::Duration::from_secs(1))
        } else {
            let window = std::time::Duration::try_from_secs_f64(1.0 / rate).unwrap_or(std::time::Duration::MAX);
            (1, window)
        };
        // Requests a little more than a window apart may have been sent a window apart.
        let window = window.saturating_sub(JITTER);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while recent.front().is_some_and(|t| now.duration_since(*t) >= window) {
            recent.pop_front();
        }
        if recent.len() >= places {
            return false;
        }
        recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once() {
        let mut nonces = Nonces::default();
        assert!(nonces.insert("a"));
        assert!(nonces.insert("b"));
        assert!(!nonces.insert("a"));
    }

    #[test]
    fn no_rate_means_no_limit() {
        let budget = RateBudget::new(None, RateRule::default());
        assert!((0..1000).all(|_| budget.take()));
    }

    #[test]
    fn per_second_lets_the_rate_through_in_any_second_and_no_more() {
        let budget = RateBudget::new(Some(3.0), RateRule::PerSecond);
        assert_eq!(
            (0..5).filter(|_| budget.take()).count(),
            3,
            "a burst of three, then none"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(!budget.take(), "still within the second");
        std::thread::sleep(std::time::Duration::from_millis(520));
        assert_eq!((0..5).filter(|_| budget.take()).count(), 3, "the next second");
    }

    #[test]
    fn a_token_bucket_lets_twice_the_rate_through_in_the_first_second() {
        let budget = RateBudget::new(Some(3.0), RateRule::TokenBucket);
        assert_eq!((0..5).filter(|_| budget.take()).count(), 3);
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert_eq!(
            (0..5).filter(|_| budget.take()).count(),
            2,
            "refilled within the second"
        );
    }
}

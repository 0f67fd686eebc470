//! The gateway's two memories that refuse a request with -100 API_CALL_REPEAT: the `_nonce`
//! values already used (a bounded memory, so a long-running simulator does not grow without
//! end) and the request budget (a token bucket, when the tenant has a rate limit). Both only
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

/// The gateway's request budget: `rate` requests per second in bursts of one second's worth
/// (at least one request), or no limit.
pub(crate) struct RateBudget {
    rate: Option<f64>,
    /// Tokens left and when they were counted.
    bucket: Mutex<(f64, Instant)>,
}

impl RateBudget {
    pub(crate) fn new(rate: Option<f64>) -> Self {
        let burst = rate.unwrap_or(1.0).max(1.0);
        RateBudget {
            rate,
            bucket: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token from the bucket; false when the request is over the budget.
    pub(crate) fn take(&self) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
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
        let budget = RateBudget::new(None);
        assert!((0..1000).all(|_| budget.take()));
    }
}

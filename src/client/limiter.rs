//! The client's token bucket: at most `rate` requests a second on average, bursts of up to one
//! second's worth, and a temporary slow-down when the gateway says `-100 API_CALL_REPEAT`.

use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

/// The slowest the limiter goes after repeated `-100` answers, as a fraction of the rate.
const MIN_FACTOR: f64 = 1.0 / 16.0;
/// How much of the configured rate each success wins back after a slow-down.
const RECOVERY: f64 = 1.1;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Tokens available; negative when requests are queued for future tokens.
    tokens: f64,
    last: Instant,
    /// Fraction of `rate` in force (1 unless the gateway asked us to slow down).
    factor: f64,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 };
        let burst = rate.max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
                factor: 1.0,
            }),
        }
    }

    /// Waits for a token. Callers are served in the order they asked.
    pub(crate) async fn acquire(&self) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let rate = self.rate * s.factor;
            s.tokens = (s.tokens + now.duration_since(s.last).as_secs_f64() * rate).min(self.burst);
            s.last = now;
            s.tokens -= 1.0;
            if s.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-s.tokens / rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The gateway said we call too fast: halve the rate (down to 1/16 of it).
    pub(crate) fn slow_down(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.factor = (s.factor / 2.0).max(MIN_FACTOR);
    }

    /// A success: win back some of the rate lost to slow-downs.
    pub(crate) fn recover(&self) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.factor = (s.factor * RECOVERY).min(1.0);
    }

    /// Requests per second in force now.
    pub(crate) fn current_rate(&self) -> f64 {
        self.rate * self.state.lock().unwrap_or_else(PoisonError::into_inner).factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn time_for(limiter: &RateLimiter, n: usize) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            limiter.acquire().await;
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(5.0);
        // 5 at once (the burst), then 15 more at 5/s.
        let took = time_for(&limiter, 20).await;
        assert!((took.as_secs_f64() - 3.0).abs() < 0.01, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_rates_allow_one_at_a_time() {
        let limiter = RateLimiter::new(0.5);
        let took = time_for(&limiter, 3).await;
        assert!((took.as_secs_f64() - 4.0).abs() < 0.01, "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn slows_down_on_repeat_and_recovers() {
        let limiter = RateLimiter::new(4.0);
        limiter.slow_down();
        assert_eq!(limiter.current_rate(), 2.0);
        for _ in 0..10 {
            limiter.slow_down();
        }
        assert_eq!(limiter.current_rate(), 4.0 / 16.0);
        for _ in 0..100 {
            limiter.recover();
        }
        assert_eq!(limiter.current_rate(), 4.0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..30)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 10 at once, 20 more at 10/s.
        assert!(
            (start.elapsed().as_secs_f64() - 2.0).abs() < 0.01,
            "{:?}",
            start.elapsed()
        );
    }
}

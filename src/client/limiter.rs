//! The client's request rate: never more than the rate in force in any window of one second,
//! bursts included, and a temporary slow-down when the gateway says `-100 API_CALL_REPEAT`.
//!
//! A token bucket with a burst of one second's worth lets twice the rate through in the first
//! second (a full bucket, then its refill), which a gateway counting requests per second refuses.
//! So each request reserves a send time instead: no earlier than the one before it (callers are
//! served in the order they asked), and at least one window after the request `n` places
//! earlier, where `n` requests fit in a window. At `rate` ≥ 1 the window is one second and `n`
//! is ⌊rate⌋ (2.5/s sends 2 a second); below 1 it is one request every `1/rate` seconds.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

/// The slowest the limiter goes after repeated `-100` answers, as a fraction of the rate.
const MIN_FACTOR: f64 = 1.0 / 16.0;
/// How much of the configured rate each success wins back after a slow-down.
const RECOVERY: f64 = 1.1;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The send times of the latest requests, oldest first (some may lie ahead).
    sent: VecDeque<Instant>,
    /// Fraction of `rate` in force (1 unless the gateway asked us to slow down).
    factor: f64,
}

/// How many requests fit in how long a window at `rate` requests a second.
fn window(rate: f64) -> (usize, Duration) {
    if rate >= 1.0 {
        (rate.floor() as usize, Duration::from_secs(1))
    } else {
        (
            1,
            Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::from_secs(3600)),
        )
    }
}

impl RateLimiter {
    pub(crate) fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 1.0 };
        Self {
            rate,
            state: Mutex::new(State {
                sent: VecDeque::new(),
                factor: 1.0,
            }),
        }
    }

    /// A limiter at `rate` that knows the send times `earlier` reserved: a client replacing
    /// another (on reload) starts where the old one left off, instead of with a fresh second's
    /// worth that a gateway counting per second would refuse.
    pub(crate) fn after(rate: f64, earlier: &RateLimiter) -> Self {
        let limiter = RateLimiter::new(rate);
        let sent = earlier
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sent
            .clone();
        limiter.state.lock().unwrap_or_else(PoisonError::into_inner).sent = sent;
        limiter
    }

    /// Waits for this request's send time. Callers are served in the order they asked.
    pub(crate) async fn acquire(&self) {
        let at = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (n, length) = window(self.rate * s.factor);
            let mut at = Instant::now();
            if let Some(last) = s.sent.back() {
                at = at.max(*last);
            }
            if s.sent.len() >= n {
                at = at.max(s.sent[s.sent.len() - n] + length);
            }
            s.sent.push_back(at);
            while s.sent.len() > n {
                s.sent.pop_front();
            }
            at
        };
        tokio::time::sleep_until(at).await;
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
    async fn a_successor_goes_on_where_its_predecessor_left_off() {
        let old = RateLimiter::new(5.0);
        assert!(
            time_for(&old, 5).await < Duration::from_millis(1),
            "a second's worth at once"
        );
        let new = RateLimiter::after(5.0, &old);
        let took = time_for(&new, 5).await;
        assert!(
            (took.as_secs_f64() - 1.0).abs() < 0.01,
            "the next five wait for the second: {took:?}"
        );
        let fresh = RateLimiter::new(5.0);
        assert!(time_for(&fresh, 5).await < Duration::from_millis(1));
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

    /// The send times of `n` requests from `callers` concurrent tasks.
    async fn send_times(rate: f64, callers: usize, n: usize) -> Vec<Instant> {
        let limiter = std::sync::Arc::new(RateLimiter::new(rate));
        let times = std::sync::Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..callers)
            .map(|c| {
                let (l, times) = (limiter.clone(), times.clone());
                tokio::spawn(async move {
                    for _ in (c..n).step_by(callers) {
                        l.acquire().await;
                        times.lock().unwrap().push(Instant::now());
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = times.lock().unwrap().clone();
        times.sort();
        times
    }

    /// The most requests in any window of `length` starting at a request.
    fn most_in_any_window(times: &[Instant], length: Duration) -> usize {
        (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| **t < times[i] + length).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_rate_in_any_second_bursts_included() {
        for (rate, most) in [(400.0, 400), (5.0, 5), (2.5, 2), (1.0, 1)] {
            for callers in [1, 4, 64] {
                let start = Instant::now();
                let times = send_times(rate, callers, 3 * most + 1).await;
                assert_eq!(
                    most_in_any_window(&times, Duration::from_secs(1)),
                    most,
                    "{rate}/s, {callers} callers"
                );
                // And no slower than that: three windows full, the next request as the fourth begins.
                let took = times.last().map(|t| *t - start).unwrap_or_default();
                assert!((took.as_secs_f64() - 3.0).abs() < 0.01, "{rate}/s: {took:?}");
            }
        }
        let times = send_times(0.5, 3, 4).await;
        assert_eq!(
            most_in_any_window(&times, Duration::from_secs(2)),
            1,
            "0.5/s: one in any 2 s"
        );
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

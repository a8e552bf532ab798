//! Reconnect delays: exponential growth with full jitter, so that a hub
//! restart does not bring every terminal back in the same second.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base: base.max(Duration::from_millis(1)),
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The upper bound of the next delay: `base * 2^attempt`, at most `cap`.
    pub fn ceiling(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(20));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, uniformly random between a tenth of the ceiling and the ceiling.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let low = ceiling / 10;
        let span = ceiling.saturating_sub(low).as_millis().max(1) as u64;
        low + Duration::from_millis(rng.gen_range(0..=span))
    }

    /// After a good connection the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_to_the_cap_and_reset() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let ceiling = b.ceiling();
            let delay = b.next_delay(&mut rng);
            assert!(
                delay <= ceiling && delay >= ceiling / 10,
                "{delay:?} within {ceiling:?}"
            );
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
    }

    #[test]
    fn many_terminals_spread_their_reconnects() {
        // 1000 terminals losing the hub at once: their first retries spread over the window.
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut per_100ms = [0u32; 11];
        for _ in 0..1000 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
            let d = b.next_delay(&mut rng);
            per_100ms[(d.as_millis() / 100) as usize] += 1;
        }
        let busiest = per_100ms.iter().max().copied().unwrap_or(0);
        assert!(
            busiest < 200,
            "no 100 ms slot takes a fifth of the terminals: {per_100ms:?}"
        );
    }
}

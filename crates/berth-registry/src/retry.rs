//! Bounded exponential backoff with jitter.

use std::time::Duration;

/// How often and how patiently to retry. `max_attempts` counts the first try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A server-requested delay (`Retry-After`) longer than this is not waited for: the error is
    /// returned instead (Docker Hub's rate-limit resets are hours away).
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_server_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The delay before retry number `attempt` (1 = first retry), or `None` when the server asked
    /// for longer than `max_server_delay`.
    pub fn delay(&self, attempt: u32, server: Option<Duration>) -> Option<Duration> {
        if let Some(s) = server {
            return (s <= self.max_server_delay).then_some(s);
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        // Up to 25 % jitter so parallel layer downloads do not retry in lockstep.
        let jitter = capped.mul_f64(0.25 * random_unit());
        Some(capped.saturating_sub(jitter))
    }
}

fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() % 10_000) as f64 / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        let d1 = p.delay(1, None).unwrap();
        assert!(d1 <= Duration::from_millis(250) && d1 >= Duration::from_millis(187), "{d1:?}");
        assert!(p.delay(30, None).unwrap() <= Duration::from_secs(10));
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(p.delay(1, Some(Duration::from_secs(3600))), None);
    }
}

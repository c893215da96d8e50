//! Sign-in throttling: password guessing against one username slows to a crawl.
//!
//! After [`FAILURES_BEFORE_LOCKOUT`] failed sign-ins in a row for a username (known or not, so
//! the answer tells nothing about which names exist), that username is locked for
//! [`FIRST_LOCKOUT`], doubling with each further failure up to [`LONGEST_LOCKOUT`]; while it
//! is locked even the right password is refused. A success forgets the failures, and so does
//! [`FORGET_AFTER`] without one. The state is in memory, per server node: a restart forgets
//! it, and each node of a PostgreSQL cluster counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const FAILURES_BEFORE_LOCKOUT: u32 = 5;
pub(crate) const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
pub(crate) const LONGEST_LOCKOUT: Duration = Duration::from_secs(15 * 60);
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Usernames tracked at most: past this, stale ones are dropped, and if none are stale a new
/// name is not tracked (names already tracked, the ones under attack, stay locked).
const MAXIMUM_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct SignInThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

impl SignInThrottle {
    /// `Err(wait)` while `username` is locked.
    pub(crate) fn check(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match failures
            .get(&username.to_lowercase())
            .and_then(|entry| entry.locked_until)
        {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    pub(crate) fn record_failure(&self, username: &str, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = username.to_lowercase();
        if !failures.contains_key(&key) && failures.len() >= MAXIMUM_TRACKED {
            failures.retain(|_, entry| now.saturating_duration_since(entry.last) < FORGET_AFTER);
            if failures.len() >= MAXIMUM_TRACKED {
                return;
            }
        }
        let entry = failures.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.saturating_duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count >= FAILURES_BEFORE_LOCKOUT {
            let doublings = (entry.count - FAILURES_BEFORE_LOCKOUT).min(16);
            let lockout = FIRST_LOCKOUT
                .saturating_mul(1 << doublings)
                .min(LONGEST_LOCKOUT);
            entry.locked_until = Some(now + lockout);
        }
    }

    pub(crate) fn record_success(&self, username: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&username.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_a_username_for_longer_and_longer() {
        let throttle = SignInThrottle::default();
        let start = Instant::now();
        for _ in 1..FAILURES_BEFORE_LOCKOUT {
            throttle.record_failure("Admin", start);
            assert_eq!(throttle.check("admin", start), Ok(()));
        }
        throttle.record_failure("admin", start);
        assert_eq!(throttle.check("ADMIN", start), Err(FIRST_LOCKOUT));
        assert_eq!(throttle.check("someone else", start), Ok(()));
        let later = start + FIRST_LOCKOUT;
        assert_eq!(throttle.check("admin", later), Ok(()));
        throttle.record_failure("admin", later);
        assert_eq!(throttle.check("admin", later), Err(FIRST_LOCKOUT * 2));
        for _ in 0..20 {
            throttle.record_failure("admin", later);
        }
        assert_eq!(throttle.check("admin", later), Err(LONGEST_LOCKOUT));

        throttle.record_success("Admin");
        assert_eq!(throttle.check("admin", later), Ok(()));
    }

    #[test]
    fn failures_long_ago_are_forgotten() {
        let throttle = SignInThrottle::default();
        let start = Instant::now();
        for _ in 1..FAILURES_BEFORE_LOCKOUT {
            throttle.record_failure("admin", start);
        }
        let much_later = start + FORGET_AFTER;
        throttle.record_failure("admin", much_later);
        assert_eq!(throttle.check("admin", much_later), Ok(()));
    }
}

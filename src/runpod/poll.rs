//! When to poll `/status` next, and how long to wait before retrying a failed request.
//!
//! Why adaptive: a job waiting `IN_QUEUE` for a cold worker can sit there for minutes, and polling
//! it twice a second only burns rate limit; a job that is `IN_PROGRESS` can finish any moment, and
//! every second between "COMPLETED" and our next poll is latency the user waits for nothing (the
//! old Python client polled every 10 s: ~5 s lost per job on average). So the interval grows while
//! queued and shrinks once the job runs, growing only slowly for long jobs.

use rand::Rng;
use std::time::Duration;

/// First poll delay after submitting.
const START: Duration = Duration::from_millis(500);
/// Longest delay between polls while the job waits in the queue.
const QUEUE_MAX: Duration = Duration::from_secs(4);
/// Delay right after the job starts running.
const RUN_MIN: Duration = Duration::from_millis(250);
/// Longest delay between polls while running (long video jobs).
const RUN_MAX: Duration = Duration::from_millis(1000);

/// Poll interval state machine. `--poll-interval` makes it constant.
#[derive(Debug, Clone)]
pub struct Schedule {
    fixed: Option<Duration>,
    queue_delay: Duration,
    running_polls: u32,
}

impl Schedule {
    pub fn new(fixed: Option<Duration>) -> Self {
        Schedule {
            fixed,
            queue_delay: START,
            running_polls: 0,
        }
    }

    /// The delay before the next poll, given the status the last poll returned.
    pub fn next(&mut self, status: &str) -> Duration {
        if let Some(f) = self.fixed {
            return f;
        }
        match status {
            "IN_PROGRESS" | "RUNNING" => {
                // 250 ms for the first ~20 s of running, then +10 ms per poll up to 1 s.
                self.running_polls = self.running_polls.saturating_add(1);
                let extra = u64::from(self.running_polls.saturating_sub(80)) * 10;
                (RUN_MIN + Duration::from_millis(extra)).min(RUN_MAX)
            }
            _ => {
                let d = self.queue_delay;
                self.queue_delay = (self.queue_delay.mul_f64(1.5)).min(QUEUE_MAX);
                d
            }
        }
    }
}

/// Exponential backoff with full jitter for retries: attempt 0 waits up to 250 ms, then 500 ms,
/// 1 s, ... capped at 10 s. Jitter spreads retries of many cron jobs hitting one endpoint.
pub fn backoff(attempt: u32) -> Duration {
    let cap_ms = 250u64.saturating_mul(1u64 << attempt.min(6)).min(10_000);
    let ms = rand::thread_rng().gen_range(cap_ms / 2..=cap_ms);
    Duration::from_millis(ms)
}

/// Longest wait a `Retry-After` may ask for; past it, comfyctl asks again anyway.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(120);

/// Parses a `Retry-After` header: seconds (the form RunPod and most proxies use) or an HTTP date
/// (RFC 9110 allows both), capped at 2 minutes. A date in the past means "now".
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    retry_after_at(value, std::time::SystemTime::now())
}

fn retry_after_at(value: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(secs).min(RETRY_AFTER_MAX));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_backs_off_and_running_tightens() {
        let mut s = Schedule::new(None);
        let q: Vec<_> = (0..8).map(|_| s.next("IN_QUEUE")).collect();
        assert_eq!(q[0], START);
        assert!(q.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*q.last().unwrap(), QUEUE_MAX);
        assert_eq!(s.next("IN_PROGRESS"), RUN_MIN);
        for _ in 0..500 {
            s.next("IN_PROGRESS");
        }
        assert_eq!(s.next("IN_PROGRESS"), RUN_MAX);
    }

    #[test]
    fn fixed_interval_wins() {
        let mut s = Schedule::new(Some(Duration::from_secs(7)));
        assert_eq!(s.next("IN_QUEUE"), Duration::from_secs(7));
        assert_eq!(s.next("IN_PROGRESS"), Duration::from_secs(7));
    }

    #[test]
    fn backoff_is_bounded() {
        for a in 0..40 {
            let d = backoff(a);
            assert!(d <= Duration::from_secs(10), "{d:?}");
            assert!(d >= Duration::from_millis(125), "{d:?}");
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        assert_eq!(retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some(" 0.5 ")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("99999")), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(retry_after(Some("soon")), None);
        assert_eq!(retry_after(None), None);
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |v| retry_after_at(Some(v), now);
        assert_eq!(
            at("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Wed, 21 Oct 2015 07:27:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("Thu, 22 Oct 2015 07:28:00 GMT"), Some(RETRY_AFTER_MAX));
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert_eq!(
            at("Wednesday, 21-Oct-15 07:28:10 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(at("Wed Oct 21 07:28:05 2015"), Some(Duration::from_secs(5)));
    }
}

//! When to poll `/status` next, and how long to wait before retrying a failed request.
//!
//! Why adaptive: a job waiting `IN_QUEUE` for a cold worker can sit there for minutes, and polling
//! it twice a second only burns rate limit; a job that is `IN_PROGRESS` can finish any moment, and
//! every second between "COMPLETED" and our next poll is latency the user waits for nothing (the
//! old Python client polled every 10 s: ~5 s lost per job on average). So the interval grows while
//! queued and shrinks once the job runs, growing only slowly for long jobs.

use std::time::Duration;

/// First poll delay after submitting: a job that needs no worker start can be done in a tenth of
/// a second. The queue delay grows 1.5x per poll from here, so a job that waits pays about four
/// more polls than with a 0.5 s start (the first ten span ~11 s), well within RunPod's rate limits.
const START: Duration = Duration::from_millis(100);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_backs_off_and_running_tightens() {
        let mut s = Schedule::new(None);
        let q: Vec<_> = (0..12).map(|_| s.next("IN_QUEUE")).collect();
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
}

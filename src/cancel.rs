//! The async runtime of the network commands, and one cancellation for a whole run: Ctrl-C (SIGINT), SIGTERM (cron's `timeout`, systemd),
//! SIGHUP (the terminal closed) and the `--timeout` deadline all cancel one
//! [`CancellationToken`]; whoever holds the token stops, and the engine cancels the remote job.
//!
//! A second signal while the remote cancel is still under way (a server that does not answer)
//! exits at once, saying what may still be running remotely ([`Cancel::set_remote`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A small multi-threaded runtime for the network commands.
pub fn runtime() -> crate::error::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| crate::error::Error::io("starting the async runtime", e))
}

/// Why a run was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A signal: `Ctrl-C`, `SIGTERM`, `SIGHUP`.
    Signal(&'static str),
    /// The deadline (`--timeout`) ran out.
    Timeout(Duration),
}

impl Reason {
    /// The error a cancelled job ends with; `what` says what became of the remote job.
    pub fn into_error(self, what: &str) -> crate::error::Error {
        match self {
            Reason::Timeout(d) => crate::error::Error::Timeout(format!(
                "--timeout {} ran out; {what}",
                humantime::format_duration(d)
            )),
            Reason::Signal(s) => crate::error::Error::Interrupted(format!("{s}; {what}")),
        }
    }
}

/// The run's cancellation: a token, the reason once cancelled, and what may still run remotely.
#[derive(Debug, Clone)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Reason>>>,
    remote: Arc<Mutex<Option<String>>>,
}

impl Cancel {
    /// A cancellation that only [`Cancel::cancel`] triggers (tests, nested work).
    pub fn manual() -> Self {
        Cancel {
            token: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            remote: Arc::new(Mutex::new(None)),
        }
    }

    /// Listens for SIGINT, SIGTERM and SIGHUP, and for the deadline when there is one. Must be
    /// called inside the tokio runtime.
    pub fn install(deadline: Option<Duration>) -> Self {
        let c = Cancel::manual();
        let signals = c.clone();
        tokio::spawn(async move {
            let first = next_signal().await;
            signals.cancel(Reason::Signal(first));
            let second = next_signal().await;
            let remote = signals.remote.lock().expect("not poisoned").clone();
            eprintln!(
                "comfyctl: {second} again: exiting without waiting for the remote cancel{}",
                remote
                    .map(|r| format!("; {r} may still be running"))
                    .unwrap_or_default()
            );
            std::process::exit(crate::error::exit::INTERRUPTED);
        });
        if let Some(d) = deadline {
            let t = c.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(d) => t.cancel(Reason::Timeout(d)),
                    _ = t.token.cancelled() => {}
                }
            });
        }
        c
    }

    /// Cancels with `reason` (the first reason wins).
    pub fn cancel(&self, reason: Reason) {
        let mut r = self.reason.lock().expect("not poisoned");
        if r.is_none() {
            *r = Some(reason);
        }
        self.token.cancel();
    }

    /// Resolves once cancelled, with the reason.
    pub async fn cancelled(&self) -> Reason {
        self.token.cancelled().await;
        self.reason().unwrap_or(Reason::Signal("cancelled"))
    }

    pub fn reason(&self) -> Option<Reason> {
        self.reason.lock().expect("not poisoned").clone()
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Names what runs remotely now (`job abc at URL`), for a second Ctrl-C's message.
    pub fn set_remote(&self, what: Option<String>) {
        *self.remote.lock().expect("not poisoned") = what;
    }
}

/// The next SIGINT, SIGTERM or SIGHUP, by name.
async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let hup = signal(SignalKind::hangup());
        match (term, hup) {
            (Ok(mut term), Ok(mut hup)) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_reason_wins_and_the_deadline_cancels() {
        let c = Cancel::install(Some(Duration::from_millis(20)));
        assert_eq!(
            c.cancelled().await,
            Reason::Timeout(Duration::from_millis(20))
        );
        c.cancel(Reason::Signal("Ctrl-C"));
        assert_eq!(c.reason(), Some(Reason::Timeout(Duration::from_millis(20))));
        let m = Cancel::manual();
        assert!(!m.is_cancelled());
        m.cancel(Reason::Signal("SIGTERM"));
        assert_eq!(m.cancelled().await, Reason::Signal("SIGTERM"));
    }
}

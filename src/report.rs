//! Progress and messages on standard error.
//!
//! Three modes: an indicatif bar when stderr is a terminal, plain timestamped lines when it is not
//! (cron logs, pipes), and nothing but errors with `-q`. Standard output is reserved for results
//! (`--json`, normalized JSON), so a script can always parse it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Plain,
    Bar,
}

/// Reports progress and messages. Cheap to share by reference; internally synchronized.
#[derive(Debug)]
pub struct Reporter {
    mode: Mode,
    verbose: u8,
    start: Instant,
    bar: Option<ProgressBar>,
    last_plain: Mutex<(String, Option<Instant>)>,
}

impl Reporter {
    /// Chooses the mode from `-q` and whether stderr is a terminal.
    pub fn new(quiet: bool, verbose: u8) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal()
            && std::env::var_os("COMFYCTL_NO_PROGRESS").is_none()
        {
            Mode::Bar
        } else {
            Mode::Plain
        };
        Self::with_mode(mode, verbose)
    }

    pub fn with_mode(mode: Mode, verbose: u8) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            pb.set_style(spinner_style());
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        Reporter {
            mode,
            verbose,
            start: Instant::now(),
            bar,
            last_plain: Mutex::new((String::new(), None)),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn verbose(&self) -> u8 {
        self.verbose
    }

    fn line(&self, msg: &str) {
        let msg = crate::redacted::for_terminal(msg);
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    /// A message worth seeing in normal runs.
    pub fn info(&self, msg: impl AsRef<str>) {
        if self.mode != Mode::Quiet {
            self.line(msg.as_ref());
        }
    }

    /// A warning: shown unless `-q`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.mode != Mode::Quiet {
            self.line(&format!("warning: {}", msg.as_ref()));
        }
    }

    /// Detail for `-v` (level 1) or `-vv` (level 2).
    pub fn debug(&self, level: u8, msg: impl AsRef<str>) {
        if self.mode != Mode::Quiet && self.verbose >= level {
            self.line(msg.as_ref());
        }
    }

    /// The current activity ("queued, position 2", "KSampler (ksampler_1)"). On a terminal it
    /// replaces the bar's message; in plain mode a line is printed only when it changes.
    pub fn status(&self, msg: impl Into<String>) {
        let msg = crate::redacted::for_terminal(&msg.into());
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(b) = &self.bar {
                    // A new activity starts without steps: no empty "0/0" bar until it reports some.
                    if b.message() != msg {
                        b.set_style(spinner_style());
                        b.set_length(0);
                        b.set_position(0);
                    }
                    b.set_message(msg);
                }
            }
            Mode::Plain => {
                let mut last = self.last_plain.lock().expect("not poisoned");
                if last.0 != msg {
                    eprintln!("[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
                    last.0 = msg;
                    last.1 = None;
                }
            }
        }
    }

    /// Step progress (`value` of `max`). Plain mode prints at most every 10 seconds, and the last step.
    pub fn progress(&self, value: u64, max: u64) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bar => {
                if let Some(b) = &self.bar {
                    if b.length() != Some(max) {
                        b.set_style(bar_style());
                        b.set_length(max);
                    }
                    b.set_position(value);
                }
            }
            Mode::Plain => {
                let mut last = self.last_plain.lock().expect("not poisoned");
                let due = last
                    .1
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                if due || value == max {
                    eprintln!(
                        "[{:>6.1}s] {} step {value}/{max}",
                        self.start.elapsed().as_secs_f64(),
                        last.0
                    );
                    last.1 = Some(Instant::now());
                }
            }
        }
    }

    /// Removes the bar (call before printing the final summary).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Spinner, elapsed time and the current activity.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").expect("valid template")
}

/// The same plus a step bar, for activities that report steps (sampler steps, upscales).
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} {bar:30} {pos}/{len}")
        .expect("valid template")
        .progress_chars("=> ")
}

/// `1.2 MB`, `340 kB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints `text` and a newline on standard output. A closed pipe (`comfyctl … | head -1`) ends
/// the program quietly, as in cargo and ripgrep: the reader has what it wanted.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let r = out
        .write_all(text.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    if let Err(e) = r {
        exit_on_broken_pipe(&e);
    }
}

/// Ends the process quietly when `e` is a closed standard output.
pub fn exit_on_broken_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

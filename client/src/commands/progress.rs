//! Shows a job's progress on stderr, and turns its end into an exit code.
//!
//! On a terminal: one line redrawn in place (indicatif) with the state and
//! each vertex's task counts. On a pipe or a file: one line per change of the
//! job's state and nothing else, so logs and scripts see `RUNNING`, then the
//! end, not every subtask's step.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use am::dispatcher::JobDetails;
use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    /// `Some` on a terminal.
    bar: Option<ProgressBar>,
    last_state: String,
}

/// Whether stderr is a terminal a line can be redrawn on.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// What one progress line says: the state, then each vertex's task counts.
pub fn line(d: &JobDetails) -> String {
    let vertices: Vec<String> = d
        .vertices
        .iter()
        .map(|v| {
            let counts: Vec<String> =
                v.tasks.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{n} {s}")).collect();
            format!("{}[{}]", v.name, counts.join(", "))
        })
        .collect();
    format!("{:<10} {}", d.state, vertices.join("  "))
}

impl Progress {
    pub fn new() -> Self {
        Self::with_terminal(on_terminal())
    }

    pub fn with_terminal(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .unwrap_or(ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Self { bar, last_state: String::new() }
    }

    pub fn show(&mut self, d: &JobDetails) {
        match &self.bar {
            Some(bar) => bar.set_message(line(d)),
            None if d.state != self.last_state => eprintln!("{}", line(d)),
            None => {}
        }
        self.last_state.clone_from(&d.state);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// An upload's bar on a terminal (`None` elsewhere: the summary line says it all).
pub fn upload_bar(name: &str, total: u64) -> Option<ProgressBar> {
    on_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or(ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(name.to_owned());
        bar
    })
}

pub fn finish(d: &JobDetails) -> ExitCode {
    let secs = d.duration as f64 / 1000.0;
    let restarts = match d.restarts {
        0 => String::new(),
        1 => " (after 1 restart)".to_owned(),
        n => format!(" (after {n} restarts)"),
    };
    match d.state.as_str() {
        "FINISHED" => {
            eprintln!("Job {} ({}) FINISHED in {secs:.2} s{restarts}", d.jid, d.name);
            ExitCode::SUCCESS
        }
        state => {
            eprintln!("Job {} ({}) {state} after {secs:.2} s{restarts}", d.jid, d.name);
            if let Some(e) = &d.error {
                eprintln!("cause: {e}");
            }
            ExitCode::from(1)
        }
    }
}

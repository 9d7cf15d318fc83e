//! Shows a job's progress on stderr as its state changes, and turns its end
//! into an exit code.

use std::process::ExitCode;

use am::dispatcher::JobDetails;

/// One line per change: state and task counts per vertex.
pub struct Progress {
    last: String,
}

impl Progress {
    pub fn new() -> Self {
        Self { last: String::new() }
    }

    pub fn show(&mut self, d: &JobDetails) {
        let vertices: Vec<String> = d
            .vertices
            .iter()
            .map(|v| {
                let counts: Vec<String> =
                    v.tasks.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{n} {s}")).collect();
                format!("{}[{}]", v.name, counts.join(", "))
            })
            .collect();
        let line = format!("{:<10} {}", d.state, vertices.join("  "));
        if line != self.last {
            eprintln!("{line}");
            self.last = line;
        }
    }
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

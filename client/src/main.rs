//! `yarn-flink`: one binary for every role. `main` parses the flags, runs the
//! command, prints one error with its causes, and picks the exit code — no
//! policy lives here.

use std::process::ExitCode;

use client::{cli, commands};

fn main() -> ExitCode {
    let args = cli::parse();
    init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("yarn-flink: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(args)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("yarn-flink: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

/// Logs go to stderr (the TaskManager's stderr is its log file, which YARN
/// collects as a container log). RUST_LOG overrides the default level.
fn init_logging(args: &cli::Cli) {
    let default = if args.verbose { "debug" } else { args.command.default_log_level() };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a terminal: TaskManager and AM logs are files (YARN collects them).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

//! Job specs and bundles: `job.toml` in, a validated [`JobSpec`] out.
//!
//! - `model`: the validated JobGraph types everything downstream takes.
//! - `parse`: `job.toml` -> [`JobSpec`] (the format is documented there and in `docs/job-spec.md`).
//! - `bundle`: [`Bundle::load`] for directories, `.tar.gz` archives and spec files.
//! - `error`: [`SpecError`] and [`BundleError`], each naming the file, the place and the fix.

mod bundle;
mod error;
mod model;
mod parse;
#[cfg(test)]
mod tests;

pub use bundle::{BundleLimits, JOB_SPEC_FILE};
pub use error::{BundleError, LimitKind, Position, SpecError, SpecErrorKind};
pub use model::*;
pub use parse::{
    parse_duration, parse_job_spec, read_job_spec, DEFAULT_RESTART, MAX_PARALLELISM, MAX_RESTART_ATTEMPTS,
};

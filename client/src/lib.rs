//! The `yarn-flink` binary's commands, as a library so that the fuzz targets
//! (`fuzz/`) can reach the decoders that live here (the RM REST client).

pub mod cli;
pub mod commands;
pub mod kubernetes;
mod rest_client;
pub mod yarn;

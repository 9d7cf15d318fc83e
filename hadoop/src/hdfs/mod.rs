//! HDFS: delegation tokens.
pub mod delegation;

//! A YARN cluster's client-facing side for tests: the ResourceManager REST API
//! ([`rest`]) that starts AM containers as local processes through the
//! NodeManager double's launcher, each application with its own scheduler
//! from [`crate::hadoop_ipc_server::yarn`]; [`mini`] wires a whole cluster
//! (RM REST double, NodeManager doubles, client configuration) for tests.

pub mod mini;
pub mod node_web;
pub mod proxy;
pub mod rest;

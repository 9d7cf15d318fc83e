//! Test support: test doubles and helpers shared by the end-to-end tests.

pub mod files;
pub mod gssapi_acceptor;
pub mod hadoop_ipc_server;
pub mod hdfs_double;
pub mod kdc;
pub mod kube_double;
pub mod mesos_double;
pub mod yarn_double;
pub mod zookeeper;

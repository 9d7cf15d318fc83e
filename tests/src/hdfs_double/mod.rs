//! A minimal, wire-faithful HDFS for tests: a NameNode answering
//! `org.apache.hadoop.hdfs.protocol.ClientProtocol` over Hadoop IPC (the
//! framing and SIMPLE auth of [`crate::hadoop_ipc_server`]) with an in-memory
//! namespace, and one DataNode speaking DataTransferProtocol version 28
//! (READ_BLOCK / WRITE_BLOCK, packets with CRC32C per 512-byte chunk, pipeline
//! acks) that keeps blocks in memory. Just enough for `hdfs-native` to list,
//! read, write, rename and delete files; the messages are our own subsets of
//! Hadoop 3.3.6's protos (`tests/proto/`).
//!
//! `HdfsDouble::start().await` binds both on 127.0.0.1:0; `url()` is the
//! `hdfs://127.0.0.1:<port>` to give clients. Dropping it stops both.

mod datanode;
mod namenode;
pub mod tokens;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::hadoop_ipc_server::{self as ipc, ServerConfig, ServerHandle};

/// The prost types of `tests/proto/`.
pub mod proto {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/hadoop.hdfs.rs"));
}

/// The IPC protocol name hdfs-native (and Hadoop's DFSClient) call.
pub const CLIENT_PROTOCOL: &str = "org.apache.hadoop.hdfs.protocol.ClientProtocol";

/// Block id -> bytes, shared by the NameNode (for lengths) and the DataNode.
pub(crate) type Blocks = Arc<Mutex<HashMap<u64, Vec<u8>>>>;

/// Sizes the double announces in `getServerDefaults`, and its security.
#[derive(Clone, Debug)]
pub struct HdfsDoubleConfig {
    /// Small by default so that modest test files span several blocks.
    pub block_size: u64,
    pub bytes_per_checksum: u32,
    /// `None`: SIMPLE authentication, as on an unsecured cluster.
    pub security: Option<HdfsSecurity>,
}

/// A Kerberized NameNode: SIMPLE is refused; clients authenticate with a
/// delegation token (DIGEST-MD5, offered first, as a real NameNode does) or
/// with Kerberos as `nn/localhost` (GSSAPI). The DataNode checks no block
/// tokens (`dfs.block.access.token.enable=false`: *unverified*, a simplification).
#[derive(Clone, Debug)]
pub struct HdfsSecurity {
    /// The keytab of `nn/localhost` (the test KDC's `nn.keytab`).
    pub nn_keytab: std::path::PathBuf,
    pub lifetimes: tokens::TokenLifetimes,
}

impl Default for HdfsDoubleConfig {
    fn default() -> Self {
        Self { block_size: 1 << 20, bytes_per_checksum: 512, security: None }
    }
}

pub struct HdfsDouble {
    namenode: ServerHandle,
    datanode: datanode::DataNodeHandle,
    namespace: Arc<namenode::NameNode>,
}

impl HdfsDouble {
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(HdfsDoubleConfig::default()).await
    }

    pub async fn start_with(config: HdfsDoubleConfig) -> std::io::Result<Self> {
        let blocks: Blocks = Arc::default();
        let datanode = datanode::start(blocks.clone()).await?;
        let tokens = config.security.as_ref().map(|s| tokens::TokenStore::new(s.lifetimes.clone()));
        let mut server = ServerConfig::default();
        match (&config.security, &tokens) {
            (Some(security), Some(tokens)) => {
                server = server
                    .with_sasl(tokens.secrets().digest_md5())
                    .with_sasl(crate::gssapi_acceptor::gssapi_server(&security.nn_keytab, "nn", "localhost"));
            }
            _ => server.allow_simple = true,
        }
        let namespace = Arc::new(namenode::NameNode::new(config, blocks, datanode.addr(), tokens));
        let server = server.with_handler(CLIENT_PROTOCOL, namespace.clone());
        let namenode = ipc::start(server).await?;
        Ok(Self { namenode, datanode, namespace })
    }

    /// `hdfs://127.0.0.1:<port>`, the file system URL for clients.
    pub fn url(&self) -> String {
        format!("hdfs://{}", self.namenode.addr())
    }

    pub fn namenode_addr(&self) -> SocketAddr {
        self.namenode.addr()
    }

    pub fn datanode_addr(&self) -> SocketAddr {
        self.datanode.addr()
    }

    /// The contents of a complete file, straight from the double's memory.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.namespace.contents(path)
    }

    /// A path's permission bits (e.g. `0o400` after a keytab was made private).
    pub fn permission(&self, path: &str) -> Option<u32> {
        self.namespace.permission(path)
    }

    /// Every path in the namespace (directories too), sorted.
    pub fn paths(&self) -> Vec<String> {
        self.namespace.paths()
    }

    /// Method names the NameNode was called with that it does not implement.
    pub fn unknown_methods(&self) -> Vec<String> {
        self.namespace.unknown_methods()
    }
}

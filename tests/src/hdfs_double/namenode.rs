//! The double's NameNode: `ClientProtocol` calls on an in-memory namespace.
//! Errors are the Java exception classes a real NameNode throws, so that the
//! client maps them as it would in production (e.g. `FileNotFoundException`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hadoop::RemoteException;
use prost::Message;

use super::proto as pb;
use super::tokens::TokenStore;
use super::{Blocks, HdfsDoubleConfig};
use crate::hadoop_ipc_server::{CallContext, CallHandler, HandlerFuture};

const POOL: &str = "BP-hdfs-double";
const FILE_NOT_FOUND: &str = "java.io.FileNotFoundException";
const EXISTS: &str = "org.apache.hadoop.fs.FileAlreadyExistsException";

#[derive(Clone, Debug)]
struct Inode {
    dir: bool,
    file_id: u64,
    mtime: u64,
    /// Block ids, in file order (files only).
    blocks: Vec<u64>,
    complete: bool,
    /// Set by setPermission; the defaults are 0755 (dirs) and 0644 (files).
    perm: Option<u32>,
}

#[derive(Default)]
struct State {
    nodes: BTreeMap<String, Inode>,
    next_id: u64,
    unknown: Vec<String>,
}

pub(crate) struct NameNode {
    config: HdfsDoubleConfig,
    blocks: Blocks,
    datanode: SocketAddr,
    state: Mutex<State>,
    /// Security on: the delegation tokens.
    tokens: Option<TokenStore>,
}

fn remote(class: &str, message: String) -> RemoteException {
    RemoteException { class: class.into(), message, fatal: false }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// `/a/b/` -> `/a/b`; the root stays `/`.
fn normalize(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        "/".into()
    } else if p.starts_with('/') {
        p.into()
    } else {
        format!("/{p}")
    }
}

fn parent(path: &str) -> Option<String> {
    match path.rfind('/') {
        _ if path == "/" => None,
        Some(0) => Some("/".into()),
        Some(i) => Some(path[..i].into()),
        None => None,
    }
}

/// `path` itself and everything below it.
fn subtree<'a>(nodes: &'a BTreeMap<String, Inode>, path: &'a str) -> impl Iterator<Item = &'a String> + 'a {
    let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
    nodes.keys().filter(move |k| k.as_str() == path || k.starts_with(&prefix))
}

impl NameNode {
    pub(crate) fn new(
        config: HdfsDoubleConfig,
        blocks: Blocks,
        datanode: SocketAddr,
        tokens: Option<TokenStore>,
    ) -> Self {
        let mut state = State { next_id: 16386, ..Default::default() };
        state.nodes.insert(
            "/".into(),
            Inode { dir: true, file_id: 16385, mtime: now_ms(), blocks: vec![], complete: true, perm: None },
        );
        Self { config, blocks, datanode, state: Mutex::new(state), tokens }
    }

    fn block_len(&self, id: u64) -> u64 {
        self.blocks.lock().unwrap().get(&id).map_or(0, |b| b.len() as u64)
    }

    pub(crate) fn contents(&self, path: &str) -> Option<Vec<u8>> {
        let state = self.state.lock().unwrap();
        let node = state.nodes.get(&normalize(path)).filter(|n| !n.dir && n.complete)?;
        let blocks = self.blocks.lock().unwrap();
        Some(node.blocks.iter().flat_map(|b| blocks.get(b).cloned().unwrap_or_default()).collect())
    }

    pub(crate) fn permission(&self, path: &str) -> Option<u32> {
        let state = self.state.lock().unwrap();
        state.nodes.get(&normalize(path)).map(|n| n.perm.unwrap_or(if n.dir { 0o755 } else { 0o644 }))
    }

    pub(crate) fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().nodes.keys().cloned().collect()
    }

    pub(crate) fn unknown_methods(&self) -> Vec<String> {
        self.state.lock().unwrap().unknown.clone()
    }

    fn status(&self, state: &State, path: &str, name: &str, node: &Inode) -> pb::HdfsFileStatusProto {
        use pb::hdfs_file_status_proto::FileType;
        let children = if node.dir {
            let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
            state.nodes.keys().filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/')).count() as i32
        } else {
            -1
        };
        pb::HdfsFileStatusProto {
            file_type: if node.dir { FileType::IsDir } else { FileType::IsFile } as i32,
            path: name.as_bytes().to_vec(),
            length: node.blocks.iter().map(|b| self.block_len(*b)).sum(),
            permission: pb::FsPermissionProto { perm: node.perm.unwrap_or(if node.dir { 0o755 } else { 0o644 }) },
            owner: "hdfs-double".into(),
            group: "supergroup".into(),
            modification_time: node.mtime,
            access_time: node.mtime,
            block_replication: Some(if node.dir { 0 } else { 1 }),
            blocksize: Some(if node.dir { 0 } else { self.config.block_size }),
            file_id: Some(node.file_id),
            children_num: Some(children),
        }
    }

    fn datanode_info(&self) -> pb::DatanodeInfoProto {
        pb::DatanodeInfoProto {
            id: pb::DatanodeIdProto {
                ip_addr: self.datanode.ip().to_string(),
                host_name: "localhost".into(),
                datanode_uuid: "hdfs-double-datanode".into(),
                xfer_port: u32::from(self.datanode.port()),
                info_port: 0,
                ipc_port: 0,
            },
        }
    }

    fn located(&self, id: u64, offset: u64) -> pb::LocatedBlockProto {
        pb::LocatedBlockProto {
            b: pb::ExtendedBlockProto {
                pool_id: POOL.into(),
                block_id: id,
                generation_stamp: 1001,
                num_bytes: Some(self.block_len(id)),
            },
            offset,
            locs: vec![self.datanode_info()],
            corrupt: false,
            storage_types: vec![pb::StorageTypeProto::Disk as i32],
            storage_i_ds: vec!["DS-hdfs-double".into()],
        }
    }

    fn mkdirs(state: &mut State, path: &str) {
        let mut at = Some(path.to_string());
        while let Some(p) = at {
            if state.nodes.contains_key(&p) {
                break;
            }
            state.next_id += 1;
            let id = state.next_id;
            state.nodes.insert(
                p.clone(),
                Inode { dir: true, file_id: id, mtime: now_ms(), blocks: vec![], complete: true, perm: None },
            );
            at = parent(&p);
        }
    }

    fn remove(&self, state: &mut State, path: &str) {
        let doomed: Vec<String> = subtree(&state.nodes, path).cloned().collect();
        let mut blocks = self.blocks.lock().unwrap();
        for p in doomed {
            if let Some(node) = state.nodes.remove(&p) {
                for b in node.blocks {
                    blocks.remove(&b);
                }
            }
        }
    }

    /// Moves `src` (and its subtree) to `dst`. `Ok(false)`: `src` is missing.
    fn rename(&self, state: &mut State, src: &str, dst: &str, overwrite: bool) -> Result<bool, RemoteException> {
        if !state.nodes.contains_key(src) || src == "/" {
            return Ok(false);
        }
        let dst_parent = parent(dst).unwrap_or_else(|| "/".into());
        if !state.nodes.get(&dst_parent).is_some_and(|n| n.dir) {
            return Err(remote(FILE_NOT_FOUND, format!("rename destination parent {dst_parent} not found.")));
        }
        if let Some(existing) = state.nodes.get(dst) {
            if !overwrite || existing.dir {
                return Err(remote(EXISTS, format!("rename destination {dst} already exists.")));
            }
            self.remove(state, dst);
        }
        let moved: Vec<String> = subtree(&state.nodes, src).cloned().collect();
        for old in moved {
            if let Some(node) = state.nodes.remove(&old) {
                state.nodes.insert(format!("{dst}{}", &old[src.len()..]), node);
            }
        }
        Ok(true)
    }

    fn handle(&self, method: &str, payload: &[u8]) -> Result<Vec<u8>, RemoteException> {
        let bad = |e: prost::DecodeError| remote("java.io.IOException", format!("cannot parse {method}: {e}"));
        let mut state = self.state.lock().unwrap();
        let state = &mut *state;
        let not_found = |p: &str| remote(FILE_NOT_FOUND, format!("File does not exist: {p}"));
        Ok(match method {
            "getServerDefaults" => pb::GetServerDefaultsResponseProto {
                server_defaults: pb::FsServerDefaultsProto {
                    block_size: self.config.block_size,
                    bytes_per_checksum: self.config.bytes_per_checksum,
                    write_packet_size: 64 * 1024,
                    replication: 1,
                    file_buffer_size: 4096,
                    encrypt_data_transfer: Some(false),
                    trash_interval: Some(0),
                    checksum_type: Some(pb::ChecksumTypeProto::ChecksumCrc32c as i32),
                },
            }
            .encode_to_vec(),
            "getFileInfo" => {
                let req = pb::GetFileInfoRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let fs = state.nodes.get(&path).map(|n| self.status(state, &path, "", n));
                pb::GetFileInfoResponseProto { fs }.encode_to_vec()
            }
            "getListing" => {
                let req = pb::GetListingRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let Some(node) = state.nodes.get(&path) else {
                    return Ok(pb::GetListingResponseProto { dir_list: None }.encode_to_vec());
                };
                let after = String::from_utf8_lossy(&req.start_after).into_owned();
                let listing = if node.dir {
                    let prefix = if path == "/" { "/".to_string() } else { format!("{path}/") };
                    state
                        .nodes
                        .iter()
                        .filter(|(k, _)| k.starts_with(&prefix) && k.len() > prefix.len())
                        .map(|(k, n)| (&k[prefix.len()..], k, n))
                        .filter(|(name, _, _)| !name.contains('/') && *name > after.as_str())
                        .map(|(name, k, n)| self.status(state, k, name, n))
                        .collect()
                } else {
                    vec![self.status(state, &path, "", node)]
                };
                pb::GetListingResponseProto {
                    dir_list: Some(pb::DirectoryListingProto { partial_listing: listing, remaining_entries: 0 }),
                }
                .encode_to_vec()
            }
            "getBlockLocations" => {
                let req = pb::GetBlockLocationsRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let node = state.nodes.get(&path).filter(|n| !n.dir).ok_or_else(|| not_found(&path))?;
                let mut offset = 0;
                let mut blocks = Vec::new();
                for &id in &node.blocks {
                    blocks.push(self.located(id, offset));
                    offset += self.block_len(id);
                }
                pb::GetBlockLocationsResponseProto {
                    locations: Some(pb::LocatedBlocksProto {
                        file_length: offset,
                        last_block: blocks.last().cloned(),
                        blocks,
                        under_construction: !node.complete,
                        is_last_block_complete: node.complete,
                    }),
                }
                .encode_to_vec()
            }
            "create" => {
                let req = pb::CreateRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                const OVERWRITE: u32 = 0x02;
                match state.nodes.get(&path) {
                    Some(n) if n.dir => return Err(remote(EXISTS, format!("{path} already exists as a directory"))),
                    Some(_) if req.create_flag & OVERWRITE == 0 => {
                        return Err(remote(EXISTS, format!("{path} for client {} already exists", req.client_name)))
                    }
                    Some(_) => self.remove(state, &path),
                    None => {}
                }
                let dir = parent(&path).unwrap_or_else(|| "/".into());
                match state.nodes.get(&dir) {
                    Some(n) if n.dir => {}
                    Some(_) => return Err(remote(EXISTS, format!("parent {dir} is a file"))),
                    None if req.create_parent => Self::mkdirs(state, &dir),
                    None => return Err(remote(FILE_NOT_FOUND, format!("Parent directory doesn't exist: {dir}"))),
                }
                state.next_id += 1;
                let node = Inode {
                    dir: false,
                    file_id: state.next_id,
                    mtime: now_ms(),
                    blocks: vec![],
                    complete: false,
                    perm: None,
                };
                state.nodes.insert(path.clone(), node.clone());
                pb::CreateResponseProto { fs: Some(self.status(state, &path, "", &node)) }.encode_to_vec()
            }
            "addBlock" => {
                let req = pb::AddBlockRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                state.next_id += 1;
                let id = state.next_id;
                let node = state.nodes.get_mut(&path).filter(|n| !n.dir).ok_or_else(|| not_found(&path))?;
                let offset: u64 = node.blocks.iter().map(|b| self.block_len(*b)).sum();
                node.blocks.push(id);
                self.blocks.lock().unwrap().insert(id, Vec::new());
                pb::AddBlockResponseProto { block: self.located(id, offset) }.encode_to_vec()
            }
            "complete" => {
                let req = pb::CompleteRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let node = state.nodes.get_mut(&path).filter(|n| !n.dir).ok_or_else(|| not_found(&path))?;
                node.complete = true;
                node.mtime = now_ms();
                pb::CompleteResponseProto { result: true }.encode_to_vec()
            }
            "rename2" => {
                let req = pb::Rename2RequestProto::decode(payload).map_err(bad)?;
                let (src, dst) = (normalize(&req.src), normalize(&req.dst));
                if !self.rename(state, &src, &dst, req.overwrite_dest)? {
                    return Err(not_found(&src));
                }
                pb::Rename2ResponseProto {}.encode_to_vec()
            }
            "rename" => {
                let req = pb::RenameRequestProto::decode(payload).map_err(bad)?;
                let (src, dst) = (normalize(&req.src), normalize(&req.dst));
                let result = self.rename(state, &src, &dst, false).unwrap_or(false);
                pb::RenameResponseProto { result }.encode_to_vec()
            }
            "delete" => {
                let req = pb::DeleteRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let result = match state.nodes.get(&path) {
                    None => false,
                    Some(n) if n.dir && !req.recursive && subtree(&state.nodes, &path).count() > 1 => {
                        return Err(remote(
                            "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException",
                            format!("`{path} is non empty': Directory is not empty"),
                        ))
                    }
                    Some(_) => {
                        self.remove(state, &path);
                        true
                    }
                };
                pb::DeleteResponseProto { result }.encode_to_vec()
            }
            "setPermission" => {
                let req = pb::SetPermissionRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                let Some(node) = state.nodes.get_mut(&path) else {
                    return Err(remote(FILE_NOT_FOUND, format!("File does not exist: {path}")));
                };
                node.perm = Some(req.permission.perm & 0o7777);
                pb::SetPermissionResponseProto {}.encode_to_vec()
            }
            "mkdirs" => {
                let req = pb::MkdirsRequestProto::decode(payload).map_err(bad)?;
                let path = normalize(&req.src);
                if state.nodes.get(&path).is_some_and(|n| !n.dir) {
                    return Err(remote(EXISTS, format!("Path is not a directory: {path}")));
                }
                let dir = parent(&path).unwrap_or_else(|| "/".into());
                if !req.create_parent && !state.nodes.contains_key(&dir) {
                    return Err(remote(FILE_NOT_FOUND, format!("Parent directory doesn't exist: {dir}")));
                }
                Self::mkdirs(state, &path);
                pb::MkdirsResponseProto { result: true }.encode_to_vec()
            }
            "renewLease" => {
                pb::RenewLeaseRequestProto::decode(payload).map_err(bad)?;
                pb::RenewLeaseResponseProto {}.encode_to_vec()
            }
            "fsync" => {
                pb::FsyncRequestProto::decode(payload).map_err(bad)?;
                pb::FsyncResponseProto {}.encode_to_vec()
            }
            other => {
                tracing::warn!(
                    method = other,
                    "HDFS double: the NameNode does not implement this ClientProtocol method"
                );
                state.unknown.push(other.to_string());
                return Err(remote(
                    "org.apache.hadoop.ipc.RpcNoSuchMethodException",
                    format!("the HDFS test double does not implement ClientProtocol.{other}"),
                ));
            }
        })
    }
}

impl CallHandler for NameNode {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        let result = match self.tokens.as_ref().and_then(|t| t.call(&ctx, &method, &payload)) {
            Some(r) => r,
            None => self.handle(&method, &payload),
        };
        Box::pin(async move { result })
    }
}

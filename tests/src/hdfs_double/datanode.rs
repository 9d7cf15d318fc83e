//! The double's DataNode: DataTransferProtocol (version 28) READ_BLOCK and
//! WRITE_BLOCK on blocks kept in memory.
//!
//! Wire: an op is `u16 version | u8 opcode | varint-delimited Op*Proto`; the
//! reply a varint-delimited `BlockOpResponseProto`. Data moves in packets:
//! `u32 payload length (4 + checksums + data) | u16 header length |
//! PacketHeaderProto | CRC32C per 512-byte chunk (big endian) | data`. A read
//! ends with an empty last packet and the client's `ClientReadStatusProto`;
//! every written packet is answered with a `PipelineAckProto`. Several ops may
//! follow on one connection (clients cache them).

use std::net::SocketAddr;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::proto as pb;
use super::Blocks;

const VERSION: u16 = 28;
const OP_WRITE_BLOCK: u8 = 80;
const OP_READ_BLOCK: u8 = 81;
const CHUNK: usize = 512;
const PACKET_DATA: usize = 64 * 1024;
/// Bounds what a peer can make us allocate.
const MAX_MESSAGE: usize = 1 << 20;
const MAX_PACKET: usize = 16 << 20;

pub(crate) struct DataNodeHandle {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DataNodeHandle {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DataNodeHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn start(blocks: Blocks) -> std::io::Result<DataNodeHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let blocks = blocks.clone();
            connections.spawn(async move {
                if let Err(e) = serve(stream, blocks).await {
                    tracing::debug!(%peer, error = %e, "HDFS double: DataNode connection ended");
                }
            });
        }
    });
    Ok(DataNodeHandle { addr, task })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// CRC32C (Castagnoli, reflected 0x82F63B78), as Hadoop's `DataChecksum.Type.CRC32C`.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !data.iter().fold(!0u32, |c, &b| TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

fn checksums(data: &[u8]) -> Vec<u8> {
    data.chunks(CHUNK).flat_map(|c| crc32c(c).to_be_bytes()).collect()
}

async fn read_varint(stream: &mut TcpStream) -> Result<u64, BoxError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = stream.read_u8().await?;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

async fn read_delimited<M: Message + Default>(stream: &mut TcpStream) -> Result<M, BoxError> {
    let len = read_varint(stream).await? as usize;
    if len > MAX_MESSAGE {
        return Err(format!("message of {len} bytes is over the limit").into());
    }
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    Ok(M::decode(buf.as_slice())?)
}

async fn serve(mut stream: TcpStream, blocks: Blocks) -> Result<(), BoxError> {
    loop {
        let mut head = [0u8; 3];
        match stream.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let version = u16::from_be_bytes([head[0], head[1]]);
        if version != VERSION {
            return Err(format!("DataTransferProtocol version {version}, expected {VERSION}").into());
        }
        match head[2] {
            OP_READ_BLOCK => read_block(&mut stream, &blocks).await?,
            OP_WRITE_BLOCK => write_block(&mut stream, &blocks).await?,
            op => {
                tracing::warn!(op, "HDFS double: the DataNode does not implement this op");
                let reply = pb::BlockOpResponseProto {
                    status: pb::Status::ErrorUnsupported as i32,
                    message: Some(format!("the HDFS test double does not implement op {op}")),
                    ..Default::default()
                };
                stream.write_all(&reply.encode_length_delimited_to_vec()).await?;
                return Ok(());
            }
        }
    }
}

async fn send_packet(stream: &mut TcpStream, offset: u64, seqno: i64, data: &[u8], last: bool) -> std::io::Result<()> {
    let header = pb::PacketHeaderProto {
        offset_in_block: offset as i64,
        seqno,
        last_packet_in_block: last,
        data_len: data.len() as i32,
        sync_block: Some(false),
    }
    .encode_to_vec();
    let sums = checksums(data);
    let mut frame = Vec::with_capacity(6 + header.len() + sums.len() + data.len());
    frame.extend_from_slice(&((4 + sums.len() + data.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&(header.len() as u16).to_be_bytes());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(&sums);
    frame.extend_from_slice(data);
    stream.write_all(&frame).await
}

async fn read_block(stream: &mut TcpStream, blocks: &Blocks) -> Result<(), BoxError> {
    let op: pb::OpReadBlockProto = read_delimited(stream).await?;
    let id = op.header.base_header.block.block_id;
    let Some(data) = blocks.lock().unwrap().get(&id).cloned() else {
        let reply = pb::BlockOpResponseProto {
            status: pb::Status::Error as i32,
            message: Some(format!("replica for block {id} not found")),
            ..Default::default()
        };
        stream.write_all(&reply.encode_length_delimited_to_vec()).await?;
        return Ok(());
    };
    let len = data.len() as u64;
    let start = op.offset.min(len);
    let end = op.offset.saturating_add(op.len).min(len);
    // Reads start at a chunk boundary, so the client can check the first chunk's checksum.
    let chunk_offset = start - start % CHUNK as u64;
    let reply = pb::BlockOpResponseProto {
        status: pb::Status::Success as i32,
        read_op_checksum_info: Some(pb::ReadOpChecksumInfoProto {
            checksum: pb::ChecksumProto {
                r#type: pb::ChecksumTypeProto::ChecksumCrc32c as i32,
                bytes_per_checksum: CHUNK as u32,
            },
            chunk_offset,
        }),
        ..Default::default()
    };
    stream.write_all(&reply.encode_length_delimited_to_vec()).await?;
    let (mut at, mut seqno) = (chunk_offset, 0i64);
    while at < end {
        let to = (at + PACKET_DATA as u64).min(end);
        // Whole chunks only, except at the end of the block.
        let to = if to < len { to.div_ceil(CHUNK as u64) * CHUNK as u64 } else { to }.min(len);
        send_packet(stream, at, seqno, &data[at as usize..to as usize], false).await?;
        at = to;
        seqno += 1;
    }
    send_packet(stream, at, seqno, &[], true).await?;
    let _status: pb::ClientReadStatusProto = read_delimited(stream).await?;
    Ok(())
}

async fn write_block(stream: &mut TcpStream, blocks: &Blocks) -> Result<(), BoxError> {
    let op: pb::OpWriteBlockProto = read_delimited(stream).await?;
    let id = op.header.base_header.block.block_id;
    blocks.lock().unwrap().entry(id).or_default();
    let reply = pb::BlockOpResponseProto {
        status: pb::Status::Success as i32,
        first_bad_link: Some(String::new()),
        ..Default::default()
    };
    stream.write_all(&reply.encode_length_delimited_to_vec()).await?;
    let per_chunk = op.requested_checksum.bytes_per_checksum.max(1) as usize;
    loop {
        let payload_len = stream.read_u32().await? as usize;
        let header_len = stream.read_u16().await? as usize;
        if !(4..=MAX_PACKET).contains(&payload_len) {
            return Err(format!("packet payload length {payload_len} is out of bounds").into());
        }
        let mut header = vec![0; header_len];
        stream.read_exact(&mut header).await?;
        let header = pb::PacketHeaderProto::decode(header.as_slice())?;
        let mut body = vec![0; payload_len - 4];
        stream.read_exact(&mut body).await?;
        let data_len = usize::try_from(header.data_len).map_err(|_| "negative packet data length")?;
        let Some(sums_len) = body.len().checked_sub(data_len) else {
            return Err("packet data longer than its payload".into());
        };
        let (sums, data) = body.split_at(sums_len);
        let good = sums.len() == data.len().div_ceil(per_chunk) * 4
            && data.chunks(per_chunk).zip(sums.chunks(4)).all(|(c, s)| crc32c(c).to_be_bytes() == s);
        let status = if good { pb::Status::Success } else { pb::Status::ErrorChecksum };
        if good && !data.is_empty() {
            let mut blocks = blocks.lock().unwrap();
            let block = blocks.entry(id).or_default();
            let at = usize::try_from(header.offset_in_block).map_err(|_| "negative packet offset")?;
            block.truncate(at);
            block.resize(at, 0);
            block.extend_from_slice(data);
        }
        let ack = pb::PipelineAckProto {
            seqno: header.seqno,
            reply: vec![status as i32],
            downstream_ack_time_nanos: Some(0),
            flag: vec![],
        };
        stream.write_all(&ack.encode_length_delimited_to_vec()).await?;
        if !good {
            return Err(format!("checksum mismatch in packet {} of block {id}", header.seqno).into());
        }
        if header.last_packet_in_block {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }
}

//! YARN's aggregated container logs: once an application ends, each
//! NodeManager uploads its containers' logs into one file per node, a TFile
//! (Hadoop's `io.file.tfile`, on BCFile) of `AggregatedLogFormat` records.
//!
//! No capture of an aggregated log file exists here: this follows Hadoop
//! 3.3's `BCFile`, `TFile`, `Chunk`, `Utils` (the TFile VLong) and
//! `AggregatedLogFormat` sources and docs, and is *unverified* against a file
//! a real NodeManager wrote (docs/yarn.md). The layout:
//! - BCFile: data blocks, meta blocks, the meta index at `offsetIndexMeta`,
//!   then the tail: that offset (8 bytes), the version (2 + 2 bytes), a
//!   16-byte magic. Meta block `BCFile.index` lists the data blocks; blocks
//!   are `none` or `gz` (zlib) compressed.
//! - TFile records in the data blocks: a key (VInt length, bytes), a value in
//!   chunks (VInt length, negative for all but the last chunk).
//! - `AggregatedLogFormat`: keys are `DataOutput.writeUTF` strings: `VERSION`,
//!   `APPLICATION_ACL`, `APPLICATION_OWNER`, then one per container id, whose
//!   value is, per log file, `writeUTF(name)`, `writeUTF(length as text)`,
//!   the bytes.
//!
//! Every length is checked against what is left: a corrupt or hostile file
//! is an [`AggregatedLogError`], never a panic or an allocation it does not hold.

use std::io::Read;

const MAGIC: [u8; 16] =
    [0xd1, 0x11, 0xd3, 0x68, 0x91, 0xb5, 0xd7, 0xb6, 0x39, 0xdf, 0x41, 0x40, 0x92, 0xba, 0xe1, 0x50];
/// What one decompressed block may hold (TFile blocks are ~256 KB–1 MB).
const MAX_BLOCK: u64 = 256 << 20;
const KEY_VERSION: &str = "VERSION";
const KEY_ACL: &str = "APPLICATION_ACL";
const KEY_OWNER: &str = "APPLICATION_OWNER";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a readable aggregated log file ({0}); was it written by a NodeManager's TFile log aggregation (yarn.log-aggregation.file-formats)?")]
pub struct AggregatedLogError(pub String);

fn bad(s: impl Into<String>) -> AggregatedLogError {
    AggregatedLogError(s.into())
}

/// One container's logs in an aggregated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerLogs {
    pub container: String,
    /// (file name, its bytes), in the order the NodeManager wrote them.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What one node's aggregated file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AggregatedLogs {
    pub owner: Option<String>,
    pub containers: Vec<ContainerLogs>,
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AggregatedLogError> {
        if self.b.len() < n {
            return Err(bad(format!("{what} needs {n} bytes, {} left", self.b.len())));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn i8(&mut self, what: &str) -> Result<i64, AggregatedLogError> {
        Ok(i64::from(self.take(1, what)?[0] as i8))
    }
    fn be(&mut self, n: usize, what: &str) -> Result<u64, AggregatedLogError> {
        Ok(self.take(n, what)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
    /// TFile's `Utils.readVLong` (not WritableUtils').
    fn vlong(&mut self, what: &str) -> Result<i64, AggregatedLogError> {
        let first = self.i8(what)?;
        if first >= -32 {
            return Ok(first);
        }
        Ok(match (first + 128) / 8 {
            7..=11 => ((first + 52) << 8) | self.be(1, what)? as i64,
            3..=6 => ((first + 88) << 16) | self.be(2, what)? as i64,
            1 | 2 => ((first + 112) << 24) | self.be(3, what)? as i64,
            0 => {
                let len = (first + 129) as usize;
                if !(4..=8).contains(&len) {
                    return Err(bad(format!("{what}: corrupted VLong encoding")));
                }
                // Sign-extend the big-endian integer of `len` bytes.
                let raw = self.be(len, what)?;
                let shift = 64 - 8 * len as u32;
                ((raw << shift) as i64) >> shift
            }
            _ => return Err(bad(format!("{what}: corrupted VLong encoding"))),
        })
    }
    /// A non-negative length that fits in what is left.
    fn len(&mut self, what: &str) -> Result<usize, AggregatedLogError> {
        let n = self.vlong(what)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.b.len())
            .ok_or_else(|| bad(format!("{what}: length {n} with {} bytes left", self.b.len())))
    }
    fn string(&mut self, what: &str) -> Result<String, AggregatedLogError> {
        let n = self.len(what)?;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }
    /// `DataInput.readUTF`: a 16-bit length, then (modified) UTF-8.
    fn utf(&mut self, what: &str) -> Result<String, AggregatedLogError> {
        let n = self.be(2, what)? as usize;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }
}

/// (offset, compressed size, raw size)
type Region = (usize, usize, u64);

fn region(c: &mut Cursor, file_len: usize) -> Result<Region, AggregatedLogError> {
    let (off, size, raw) = (c.vlong("block offset")?, c.vlong("block size")?, c.vlong("block raw size")?);
    let (off, size) = (usize::try_from(off).ok(), usize::try_from(size).ok());
    match (off, size) {
        (Some(o), Some(s)) if o.checked_add(s).is_some_and(|e| e <= file_len) && raw >= 0 => Ok((o, s, raw as u64)),
        _ => Err(bad("a block region lies outside the file")),
    }
}

fn block(file: &[u8], (off, size, raw): Region, compression: &str) -> Result<Vec<u8>, AggregatedLogError> {
    let bytes = &file[off..off + size];
    match compression {
        "none" => Ok(bytes.to_vec()),
        // TFile's "gz" is Hadoop's DefaultCodec: zlib, not gzip.
        "gz" => {
            let limit = raw.min(MAX_BLOCK);
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(bytes)
                .take(limit + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(format!("a gz block does not inflate: {e}")))?;
            if out.len() as u64 > limit {
                return Err(bad(format!("a block inflates past its stated size of {raw} bytes")));
            }
            Ok(out)
        }
        other => Err(bad(format!("blocks compressed with {other:?}; only none and gz can be read"))),
    }
}

/// A TFile record: (key, value).
pub type Record = (Vec<u8>, Vec<u8>);

/// The key-value records of a TFile, in order.
pub fn tfile_records(file: &[u8]) -> Result<Vec<Record>, AggregatedLogError> {
    let tail = MAGIC.len() + 4 + 8;
    if file.len() < tail || file[file.len() - MAGIC.len()..] != MAGIC {
        return Err(bad("no BCFile magic at its end"));
    }
    let mut t = Cursor { b: &file[file.len() - tail..] };
    let index_at = t.be(8, "meta index offset")? as usize;
    let (major, _minor) = (t.be(2, "version")?, t.be(2, "version")?);
    if major != 1 {
        return Err(bad(format!("BCFile version {major}, not 1")));
    }
    let Some(index) = file.get(index_at..file.len() - tail) else {
        return Err(bad("the meta index offset lies outside the file"));
    };
    let mut m = Cursor { b: index };
    let count = m.vlong("meta index count")?;
    if count < 0 || count as usize > index.len() {
        return Err(bad(format!("{count} meta blocks")));
    }
    let mut data_index = None;
    for _ in 0..count {
        let name = m.string("meta block name")?;
        let compression = m.string("meta block compression")?;
        let r = region(&mut m, file.len())?;
        if name == "data:BCFile.index" {
            data_index = Some((compression, r));
        }
    }
    let (compression, r) = data_index.ok_or_else(|| bad("no BCFile.index meta block"))?;
    let index = block(file, r, &compression)?;
    let mut d = Cursor { b: &index };
    let data_compression = d.string("data compression")?;
    let blocks = d.vlong("data block count")?;
    if blocks < 0 || blocks as usize > index.len() {
        return Err(bad(format!("{blocks} data blocks")));
    }
    let mut records = Vec::new();
    for _ in 0..blocks {
        let r = region(&mut d, file.len())?;
        let data = block(file, r, &data_compression)?;
        let mut c = Cursor { b: &data };
        while !c.b.is_empty() {
            let n = c.len("key length")?;
            let key = c.take(n, "key")?.to_vec();
            let mut value = Vec::new();
            loop {
                let n = c.vlong("value chunk length")?;
                let last = n >= 0;
                let n = usize::try_from(n.unsigned_abs()).ok().filter(|&n| n <= c.b.len());
                let n = n.ok_or_else(|| bad("a value chunk runs past its block"))?;
                value.extend_from_slice(c.take(n, "value chunk")?);
                if last {
                    break;
                }
            }
            records.push((key, value));
        }
    }
    Ok(records)
}

/// One node's aggregated log file, decoded.
pub fn parse(file: &[u8]) -> Result<AggregatedLogs, AggregatedLogError> {
    let mut out = AggregatedLogs::default();
    for (key, value) in tfile_records(file)? {
        let key = Cursor { b: &key }.utf("record key")?;
        let mut v = Cursor { b: &value };
        match key.as_str() {
            KEY_VERSION | KEY_ACL => {}
            KEY_OWNER => out.owner = Some(v.utf("application owner")?),
            container => {
                let mut files = Vec::new();
                while !v.b.is_empty() {
                    let name = v.utf("log file name")?;
                    let len = v.utf("log file length")?;
                    let len: usize = len.trim().parse().map_err(|_| bad(format!("log file length {len:?}")))?;
                    files.push((name, v.take(len, "log file bytes")?.to_vec()));
                }
                out.containers.push(ContainerLogs { container: container.to_owned(), files });
            }
        }
    }
    Ok(out)
}

/// Where a NodeManager aggregates an application's logs, most recent layout
/// first (Hadoop 3.3: `<remote-app-log-dir>/<user>/bucket-<suffix>/<nnnn>/<app>`;
/// before: `<remote-app-log-dir>/<user>/<suffix>/<app>`), for each suffix the
/// TFile controller may use (`<suffix>-tfile`, then the plain one).
pub fn app_log_dirs(conf: &crate::conf::HadoopConf, user: &str, app_id: &str) -> Vec<String> {
    let root = conf.get("yarn.nodemanager.remote-app-log-dir").ok().flatten().unwrap_or_else(|| "/tmp/logs".into());
    let root = root.trim_end_matches('/');
    let base = conf.get("yarn.nodemanager.remote-app-log-dir-suffix").ok().flatten().unwrap_or_else(|| "logs".into());
    let mut suffixes: Vec<String> = Vec::new();
    if let Ok(Some(s)) = conf.get("yarn.log-aggregation.TFile.remote-app-log-dir-suffix") {
        suffixes.push(s);
    }
    suffixes.push(format!("{base}-tfile"));
    suffixes.push(base);
    let bucket = app_id.rsplit('_').next().and_then(|n| n.parse::<u64>().ok()).map(|n| format!("{:04}", n % 10000));
    let mut dirs = Vec::new();
    for s in &suffixes {
        if let Some(b) = &bucket {
            dirs.push(format!("{root}/{user}/bucket-{s}/{b}/{app_id}"));
        }
        dirs.push(format!("{root}/{user}/{s}/{app_id}"));
    }
    dirs.dedup();
    dirs
}

/// TFile's `Utils.writeVLong`, its fall-through cases unrolled.
fn vlong(out: &mut Vec<u8>, n: i64) {
    if (-32..128).contains(&n) {
        out.push(n as u8);
        return;
    }
    let be = |out: &mut Vec<u8>, v: i64, bytes: usize| {
        for i in (0..bytes).rev() {
            out.push((v >> (8 * i)) as u8);
        }
    };
    let un = if n < 0 { !n } else { n };
    let len = (64 - un.leading_zeros() as usize) / 8 + 1;
    let mut first = n >> ((len - 1) * 8);
    if len <= 2 {
        if len == 1 {
            first >>= 8;
        }
        if (-20..20).contains(&first) {
            out.push((first - 52) as u8);
            be(out, n, 1);
            return;
        }
        first >>= 8;
    }
    if len <= 3 {
        if (-16..16).contains(&first) {
            out.push((first - 88) as u8);
            be(out, n, 2);
            return;
        }
        first >>= 8;
    }
    if len <= 4 && (-8..8).contains(&first) {
        out.push((first - 112) as u8);
        be(out, n, 3);
        return;
    }
    out.push((len as i64 - 129) as u8);
    be(out, n, len.max(4));
}

/// Writes what a NodeManager's `AggregatedLogFormat.LogWriter` writes, as a
/// TFile of one data block (what the YARN double aggregates, and what the
/// reader's tests read back); `gz` compresses it as `yarn.nodemanager.
/// log-aggregation.compression-type=gz` would.
pub fn write(owner: &str, containers: &[ContainerLogs]) -> Vec<u8> {
    write_with(owner, containers, false)
}

fn write_with(owner: &str, containers: &[ContainerLogs], gz: bool) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        vlong(out, s.len() as i64);
        out.extend_from_slice(s.as_bytes());
    }
    fn utf(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut records: Vec<Record> = Vec::new();
    let key = |k: &str| {
        let mut b = Vec::new();
        utf(&mut b, k);
        b
    };
    records.push((key(KEY_VERSION), 1i32.to_be_bytes().to_vec()));
    let mut o = Vec::new();
    utf(&mut o, owner);
    records.push((key(KEY_OWNER), o));
    records.push((key(KEY_ACL), Vec::new()));
    for c in containers {
        let mut v = Vec::new();
        for (name, bytes) in &c.files {
            utf(&mut v, name);
            utf(&mut v, &bytes.len().to_string());
            v.extend_from_slice(bytes);
        }
        records.push((key(&c.container), v));
    }
    let mut file = Vec::new();
    // The data block: each value as one last chunk (what an unknown-length
    // value shorter than the chunk buffer becomes).
    for (k, v) in &records {
        vlong(&mut file, k.len() as i64);
        file.extend_from_slice(k);
        vlong(&mut file, v.len() as i64);
        file.extend_from_slice(v);
    }
    let data_compression = if gz { "gz" } else { "none" };
    let raw_len = file.len();
    if gz {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = std::io::Write::write_all(&mut z, &file);
        file = z.finish().unwrap_or_default();
    }
    let data = (0, file.len());
    let mut meta: Vec<(&str, (usize, usize))> = Vec::new();
    // TFile.meta: version 1.0, record count, comparator ("" = unsorted).
    let at = file.len();
    file.extend_from_slice(&[0, 1, 0, 0]);
    vlong(&mut file, records.len() as i64);
    string(&mut file, "");
    meta.push(("data:TFile.meta", (at, file.len() - at)));
    // TFile.index: no first key (unsorted), no entries.
    let at = file.len();
    vlong(&mut file, 0);
    meta.push(("data:TFile.index", (at, file.len() - at)));
    // BCFile.index: compression, one data block.
    let at = file.len();
    string(&mut file, data_compression);
    vlong(&mut file, 1);
    for n in [data.0, data.1, raw_len] {
        vlong(&mut file, n as i64);
    }
    meta.push(("data:BCFile.index", (at, file.len() - at)));
    let index_at = file.len();
    vlong(&mut file, meta.len() as i64);
    meta.sort_by_key(|(name, _)| *name);
    for (name, (off, len)) in meta {
        string(&mut file, name);
        string(&mut file, "none");
        for n in [off, len, len] {
            vlong(&mut file, n as i64);
        }
    }
    file.extend_from_slice(&(index_at as u64).to_be_bytes());
    file.extend_from_slice(&[0, 1, 0, 0]);
    file.extend_from_slice(&MAGIC);
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs() -> Vec<ContainerLogs> {
        vec![
            ContainerLogs {
                container: "container_1_0001_01_000001".into(),
                files: vec![
                    ("appmaster.err".into(), b"JobMaster started\n".to_vec()),
                    ("prelaunch.out".into(), vec![]),
                ],
            },
            ContainerLogs {
                container: "container_1_0001_01_000002".into(),
                files: vec![("taskmanager.err".into(), vec![b'x'; 70_000])],
            },
        ]
    }

    #[test]
    fn an_aggregated_file_reads_back_as_written() {
        let file = write("alice", &logs());
        let got = parse(&file).unwrap();
        assert_eq!(got.owner.as_deref(), Some("alice"));
        assert_eq!(got.containers, logs());
    }

    /// The TFile VLong of Hadoop's `Utils`: the documented byte forms, and
    /// the writer's output at every width's edges read back.
    #[test]
    fn vlongs_decode_as_documented_and_round_trip_at_every_width() {
        // Utils.readVLong's javadoc: FB >= -32 is the value; FB in [-72,-33]:
        // (FB+52)<<8 + NB[0]; [-104,-73]: (FB+88)<<16 + NB[0..2];
        // [-120,-105]: (FB+112)<<24 + NB[0..3]; [-128,-121]: NB[FB+129] big-endian.
        let read = |bytes: &[u8]| Cursor { b: bytes }.vlong("t").unwrap();
        assert_eq!(read(&[5]), 5);
        assert_eq!(read(&[0xe0]), -32);
        assert_eq!(read(&[(-52i8 + 1) as u8, 0x10]), (1 << 8) | 0x10);
        assert_eq!(read(&[(-88i8 + 2) as u8, 0x00, 0x01]), (2 << 16) | 1);
        assert_eq!(read(&[(-112i8 - 1) as u8, 0xff, 0xff, 0xff]), -1);
        assert_eq!(read(&[(4 - 129) as u8, 0x7f, 0xff, 0xff, 0xff]), i64::from(i32::MAX));
        assert_eq!(read(&[(8 - 129) as u8, 0x80, 0, 0, 0, 0, 0, 0, 0]), i64::MIN);
        let mut edges = vec![0i64, -1, i64::MAX, i64::MIN];
        for bits in 5..63 {
            for v in [1i64 << bits, (1i64 << bits) - 1, -(1i64 << bits), -(1i64 << bits) - 1] {
                edges.push(v);
            }
        }
        for n in edges {
            let mut out = Vec::new();
            vlong(&mut out, n);
            let mut c = Cursor { b: &out };
            assert_eq!(c.vlong("t").unwrap(), n, "{n} as {out:02x?}");
            assert!(c.b.is_empty(), "{n}: {} bytes left", c.b.len());
        }
    }

    #[test]
    fn every_truncation_or_corruption_is_an_error_not_a_panic() {
        let file = write("alice", &logs());
        for n in 0..file.len() {
            assert!(parse(&file[..n]).is_err() || n == file.len());
        }
        for i in (0..file.len()).step_by(97) {
            let mut f = file.clone();
            f[i] ^= 0x5a;
            let _ = parse(&f);
        }
    }

    #[test]
    fn a_gz_data_block_inflates_and_a_lying_raw_size_is_refused() {
        let file = write_with("alice", &logs(), true);
        assert_eq!(parse(&file).unwrap().containers, logs());
        assert!(file.len() < write("alice", &logs()).len(), "70,000 x compresses");
        // A block that inflates past its stated raw size (a zip bomb) is refused.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut z, &[0u8; 4096]).unwrap();
        let bomb = z.finish().unwrap();
        let err = block(&bomb, (0, bomb.len(), 16), "gz").unwrap_err();
        assert!(err.0.contains("past its stated size"), "{err}");
    }

    #[test]
    fn the_app_dirs_follow_the_bucketed_layout_first() {
        let mut conf = crate::conf::HadoopConf::new();
        conf.set("yarn.nodemanager.remote-app-log-dir", "hdfs://nn:9000/app-logs/");
        let dirs = app_log_dirs(&conf, "alice", "application_1795750141222_12345");
        assert_eq!(dirs[0], "hdfs://nn:9000/app-logs/alice/bucket-logs-tfile/2345/application_1795750141222_12345");
        assert_eq!(dirs[1], "hdfs://nn:9000/app-logs/alice/logs-tfile/application_1795750141222_12345");
        assert!(dirs.contains(&"hdfs://nn:9000/app-logs/alice/logs/application_1795750141222_12345".to_string()));
    }
}

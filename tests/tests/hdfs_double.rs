//! The HDFS test double against the real client (hdfs-native), then the data
//! plane's HDFS source and sink and the HDFS commit/abort against the double.

use std::path::PathBuf;

use common::ids::JobId;
use common::output;
use hdfs_native::{ClientBuilder, WriteOptions};
use integration_tests::hdfs_double::HdfsDouble;
use taskmanager::data_plane::{hdfs_io, source};

/// Lines of varied lengths (empty ones too), so that splits land mid-line.
fn corpus(lines: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut x = seed;
    for i in 0..lines {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (x >> 33) as usize % 300;
        out.extend_from_slice(format!("{i}:").as_bytes());
        out.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
        out.push(b'\n');
    }
    out
}

async fn put(hdfs: &HdfsDouble, path: &str, data: &[u8]) {
    let client = ClientBuilder::new().with_url(hdfs.url()).build().unwrap();
    let opts = WriteOptions { create_parent: true, ..Default::default() };
    let mut w = client.create(path, opts).await.unwrap();
    // Several writes, so packets and blocks do not line up with them.
    for piece in data.chunks(100_003) {
        w.write_bytes(bytes::Bytes::copy_from_slice(piece)).await.unwrap();
    }
    w.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_native_writes_lists_reads_renames_and_deletes_through_the_double() {
    let hdfs = HdfsDouble::start().await.unwrap();
    // Over two 1 MiB blocks.
    let data = corpus(16_000, 1);
    assert!(data.len() > 2 << 20, "{}", data.len());
    put(&hdfs, "/in/big.txt", &data).await;
    assert_eq!(hdfs.read("/in/big.txt").as_deref(), Some(data.as_slice()));

    let client = ClientBuilder::new().with_url(hdfs.url()).build().unwrap();
    let st = client.get_file_info("/in/big.txt").await.unwrap();
    assert_eq!((st.length, st.isdir), (data.len(), false));
    let listed = client.list_status("/in", false).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["/in/big.txt"]);

    let reader = client.read("/in/big.txt").await.unwrap();
    assert_eq!(reader.read_range(0, data.len()).await.unwrap(), data);
    // A range across the block boundary, not chunk aligned.
    let (at, len) = ((1 << 20) - 777, 5_000);
    assert_eq!(reader.read_range(at, len).await.unwrap(), data[at..at + len]);

    client.rename("/in/big.txt", "/in/moved.txt", false).await.unwrap();
    assert!(matches!(client.get_file_info("/in/big.txt").await, Err(hdfs_native::HdfsError::FileNotFound(_))));
    assert!(client.delete("/in", true).await.unwrap());
    assert_eq!(hdfs.paths(), ["/"]);
    assert!(hdfs.unknown_methods().is_empty(), "{:?}", hdfs.unknown_methods());
}

/// Every split of `url` for `parallelism` subtasks, concatenated in subtask order.
async fn read_all_splits(url: &str, parallelism: u32) -> Vec<u8> {
    let (client, files) = hdfs_io::list_input_files(url).await.unwrap();
    let total = files.iter().map(|f| f.1).sum();
    let mut all = Vec::new();
    for i in 0..parallelism {
        let (start, end) = source::split_range(total, parallelism, i);
        let (client, files) = (client.clone(), files.clone());
        let handle = tokio::runtime::Handle::current();
        let part = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            hdfs_io::read_split(&handle, &client, &files, start, end, 8192, 1 << 20, &mut |c| {
                assert!(c.ends_with(b"\n"));
                out.extend_from_slice(&c);
                true
            })
            .map(|()| out)
        })
        .await
        .unwrap()
        .unwrap();
        all.extend(part);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hdfs_source_reads_every_line_exactly_once_for_any_parallelism() {
    let hdfs = HdfsDouble::start().await.unwrap();
    let a = corpus(9_000, 2);
    let mut b = corpus(50, 3);
    b.pop(); // a last line without a newline
    put(&hdfs, "/data/a.txt", &a).await;
    put(&hdfs, "/data/b.txt", &b).await;
    put(&hdfs, "/data/_SUCCESS", b"").await;
    put(&hdfs, "/data/notes.log", b"not text input\n").await;

    let mut expected = a.clone();
    expected.extend_from_slice(&b);
    expected.push(b'\n');
    let dir = format!("{}/data", hdfs.url());
    let glob = format!("{}/data/*.txt", hdfs.url());
    for parallelism in [1, 2, 3, 7] {
        assert_eq!(read_all_splits(&glob, parallelism).await, expected, "glob, parallelism {parallelism}");
    }
    // A directory: visible files only (`_SUCCESS` is skipped), sorted.
    let mut with_log = expected.clone();
    with_log.extend_from_slice(b"not text input\n");
    assert_eq!(read_all_splits(&dir, 4).await, with_log);
    // One file.
    assert_eq!(read_all_splits(&format!("{}/data/a.txt", hdfs.url()), 5).await, a);

    let err = hdfs_io::list_input_files(&format!("{}/nothing", hdfs.url())).await.err().unwrap();
    assert!(err.to_string().contains("found no input"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hdfs_sink_stages_commits_idempotently_and_aborts() {
    let hdfs = HdfsDouble::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let sink = PathBuf::from(format!("{}/out", hdfs.url()));
    let job = JobId::from_u128(42);
    let stage = |subtask: u32, attempt: u32, text: &'static str| {
        let (tmp, sink) = (tmp.path().to_path_buf(), sink.clone());
        async move {
            let url = output::staging_file(&sink, job, subtask, attempt);
            let local = hdfs_io::local_staging(&tmp, &url);
            std::fs::create_dir_all(local.parent().unwrap()).unwrap();
            std::fs::write(&local, text).unwrap();
            hdfs_io::upload_staged(&local, &url).await.unwrap();
            assert!(!local.exists(), "the local copy is removed once uploaded");
        }
    };
    stage(0, 0, "a\n").await;
    stage(1, 0, "stale\n").await;
    stage(1, 1, "b\n").await;
    assert_eq!(hdfs.read(&format!("/out/.staging/{job}/part-00001-1")).as_deref(), Some(&b"b\n"[..]));

    let commit = |parts: Vec<(u32, u32)>| {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || output::commit(&sink, job, &parts))
    };
    commit(vec![(0, 0), (1, 1)]).await.unwrap().unwrap();
    assert_eq!(hdfs.read("/out/part-00000").as_deref(), Some(&b"a\n"[..]));
    assert_eq!(hdfs.read("/out/part-00001").as_deref(), Some(&b"b\n"[..]));
    assert_eq!(hdfs.read("/out/_SUCCESS").as_deref(), Some(&b""[..]));
    assert!(!hdfs.paths().iter().any(|p| p.contains(".staging")), "{:?}", hdfs.paths());
    // Again, as after a crash mid-commit: every part is in place already.
    commit(vec![(0, 0), (1, 1)]).await.unwrap().unwrap();
    assert_eq!(hdfs.read("/out/part-00001").as_deref(), Some(&b"b\n"[..]));
    // A part nobody staged is named.
    let err = commit(vec![(5, 0)]).await.unwrap().unwrap_err();
    assert!(matches!(err, output::OutputError::MissingPart { subtask: 5, .. }), "{err}");

    // Abort: only this job's staging goes.
    let other = JobId::from_u128(43);
    let staged = |job: JobId| format!("/out/.staging/{job}/part-00000-0");
    for j in [job, other] {
        let url = output::staging_file(&sink, j, 0, 0);
        let local = tmp.path().join(format!("x-{j}"));
        std::fs::write(&local, "x\n").unwrap();
        hdfs_io::upload_staged(&local, &url).await.unwrap();
    }
    let abort = |j: JobId| {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || output::abort(&sink, j))
    };
    abort(job).await.unwrap().unwrap();
    abort(job).await.unwrap().unwrap();
    assert_eq!(hdfs.read(&staged(job)), None);
    assert_eq!(hdfs.read(&staged(other)).as_deref(), Some(&b"x\n"[..]));
    assert!(hdfs.unknown_methods().is_empty(), "{:?}", hdfs.unknown_methods());
}

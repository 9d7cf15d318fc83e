//! End to end with HDFS input and output: `yarn-flink run` of a word count
//! whose built-in source and sink are `hdfs://` paths on the HDFS test double
//! (a real NameNode/DataNode wire), giving the same counts as the same job on
//! local paths.

mod support;

use hdfs_native::{ClientBuilder, WriteOptions};
use integration_tests::hdfs_double::HdfsDouble;
use support::*;

fn job(input: &str, output: &str) -> String {
    format!(
        r#"
[job]
name = "wordcount-hdfs"

[[vertex]]
name = "read"
parallelism = 3
source = {{ type = "text", path = "{input}" }}

[[vertex]]
name = "tokenize"
parallelism = 2
shell = "tr -s ' ' '\n' | grep -v '^$'"

[[vertex]]
name = "count"
parallelism = 2
shell = "awk '{{ n[$1]++ }} END {{ for (w in n) print w \"\t\" n[w] }}'"

[[vertex]]
name = "write"
parallelism = 2
sink = {{ type = "text", path = "{output}" }}

[[edge]]
from = "read"
to = "tokenize"
partitioning = "rebalance"

[[edge]]
from = "tokenize"
to = "count"
partitioning = "hash"

[[edge]]
from = "count"
to = "write"
partitioning = "forward"
"#
    )
}

fn text_input() -> String {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
    let mut out = String::new();
    for i in 0..4000usize {
        let n = 1 + i % 9;
        let line: Vec<&str> = (0..n).map(|j| words[(i * 7 + j * 3) % words.len()]).collect();
        out.push_str(&line.join(" "));
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_count_reads_and_writes_hdfs_like_the_local_one() {
    let hdfs = HdfsDouble::start().await.unwrap();
    let input = text_input();
    let (first, second) = input.split_at(input.len() / 3 + 5);
    let client = ClientBuilder::new().with_url(hdfs.url()).build().unwrap();
    for (name, data) in [("/in/a.txt", first), ("/in/b.txt", second)] {
        let opts = WriteOptions { create_parent: true, ..Default::default() };
        let mut w = client.create(name, opts).await.unwrap();
        w.write_bytes(bytes::Bytes::copy_from_slice(data.as_bytes())).await.unwrap();
        w.close().await.unwrap();
    }

    let tmp = tempfile::tempdir().unwrap();
    let local = bundle(&tmp.path().join("local"), &job("in", "out"), &[("in/a.txt", first), ("in/b.txt", second)]);
    let remote =
        bundle(&tmp.path().join("remote"), &job(&format!("{}/in", hdfs.url()), &format!("{}/out", hdfs.url())), &[]);
    let state = tmp.path().to_path_buf();
    let (l, r) = (local.clone(), remote.clone());
    let (lo, ro) = tokio::task::spawn_blocking(move || {
        (run(&state, &["run", l.to_str().unwrap()]), run(&state, &["run", r.to_str().unwrap()]))
    })
    .await
    .unwrap();
    assert!(lo.status.success(), "{}", text(&lo));
    assert!(ro.status.success(), "{}", text(&ro));

    let expected = output_lines(&local.join("out"));
    assert_eq!(expected.len(), 7, "{expected:?}");
    let mut got: Vec<String> = Vec::new();
    for part in ["/out/part-00000", "/out/part-00001"] {
        let bytes = hdfs.read(part).unwrap_or_else(|| panic!("{part} missing; namespace: {:?}", hdfs.paths()));
        got.extend(String::from_utf8(bytes).unwrap().lines().map(str::to_owned));
    }
    got.sort();
    assert_eq!(got, expected);
    assert!(hdfs.read("/out/_SUCCESS").is_some());
    assert!(!hdfs.paths().iter().any(|p| p.contains(".staging")), "{:?}", hdfs.paths());
    assert!(hdfs.unknown_methods().is_empty(), "{:?}", hdfs.unknown_methods());
}

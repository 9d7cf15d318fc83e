//! Compiles the HDFS test double's own minimal .proto files (tests/proto/)
//! with protox (pure Rust, no system `protoc`) into prost types.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/hdfs.proto", "proto/ClientNamenodeProtocol.proto", "proto/datatransfer.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

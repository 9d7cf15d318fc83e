//! Compiles our own minimal copies of Hadoop's .proto files with protox (pure
//! Rust, so no system `protoc` is needed) and generates prost types from them.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/hadoop_common.proto", "proto/yarn.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}

//! `fuzz-seeds <dir>`: writes every target's seeds to `<dir>/<target>/`, for
//! libFuzzer to start from (`scripts/fuzz`).

use std::path::PathBuf;

use yarn_flink_fuzz::seeds::{self, Sources, TARGETS};

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz-seeds <dir>");
        std::process::exit(2);
    };
    let src = Sources::beside(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."));
    for target in TARGETS {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir)?;
        let seeds = seeds::seeds(target, &src);
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}

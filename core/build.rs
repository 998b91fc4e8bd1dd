//! Generates the gRPC types from `proto/` with protox, so no system `protoc`
//! is needed, and writes the file descriptor set used by server reflection.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let files = ["registry.proto", "r.proto"];
    for f in &files {
        println!("cargo:rerun-if-changed={}", proto_dir.join(f).display());
    }
    let fds = protox::compile(files, [&proto_dir])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("registry_descriptor.bin"), fds.encode_to_vec())?;
    // Every service and client decodes through `wire::Codec` (a string that
    // is not UTF-8 is INVALID_ARGUMENT, not INTERNAL).
    tonic_prost_build::configure()
        .btree_map(".")
        .codec_path("crate::wire::Codec")
        .compile_fds(fds)?;
    Ok(())
}

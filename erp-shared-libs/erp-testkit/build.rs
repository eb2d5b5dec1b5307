//! Compiles the probe contract (test-only) against the mesh's shared protos; the shared
//! packages map to erp-proto's generated types instead of being generated again.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let own_protos = manifest_dir.join("proto");
    let shared_protos = manifest_dir.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", own_protos.display());

    let mut compiler = protox::Compiler::new([&own_protos, &shared_protos])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_file("erp/testkit/v1/probe.proto")?;
    fs::write(
        out_dir.join("probe_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".erp.common.v1", "::erp_proto::erp::common::v1")
        .extern_path(".google.api", "::erp_proto::google::api")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

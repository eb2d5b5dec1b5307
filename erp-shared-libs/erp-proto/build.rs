//! Compiles every contract under `proto/` with protox (no protoc needed) and
//! generates prost messages plus tonic clients and servers, one module per package.

use std::{
    env, fs,
    path::{Path, PathBuf},
};

const DESCRIPTOR_FILE: &str = "erp_descriptor.bin";
const DOCUMENTED_DESCRIPTOR_FILE: &str = "erp_descriptor_documented.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let mut files = Vec::new();
    collect_protos(&proto_root.join("erp"), &mut files)?;
    files.sort();
    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    for file in &files {
        compiler.open_file(file.strip_prefix(&proto_root)?)?;
    }

    // The descriptor bytes are written from protox's own pool: encoding prost_types'
    // FileDescriptorSet would drop the custom method options (access, http) we read at runtime.
    // Two copies: with the proto comments (the gateway's OpenAPI descriptions) and without
    // (every service decodes it at start; comments would only cost memory there).
    fs::write(
        out_dir.join(DOCUMENTED_DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;
    compiler.include_source_info(false);
    fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;
    compiler.include_source_info(true);

    // Type names (`prost::Name`) let the event outbox find a payload's topic by its type.
    let mut prost_config = tonic_prost_build::Config::new();
    prost_config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(compiler.file_descriptor_set(), prost_config)?;
    Ok(())
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}

//! Compiles `proto/*.proto` with protox (pure Rust; no `protoc`), writes the
//! encoded `FileDescriptorSet` to `OUT_DIR` for `FILE_DESCRIPTOR_SET`, and
//! generates prost messages plus tonic clients and servers from it.

use std::env;
use std::error::Error;
use std::fs;
use std::path::PathBuf;

/// Every .proto file of the contract, relative to `proto/`.
const PROTOS: &[&str] = &["storage.proto", "cluster.proto", "raft.proto"];

/// File name (in `OUT_DIR`) of the encoded descriptor set; `src/lib.rs`
/// includes it.
const DESCRIPTOR_FILE: &str = "sutra_descriptor.bin";

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR unset")?);
    let proto_dir = manifest_dir.join("proto");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(file).display());
    }

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    // Source info keeps the .proto comments: prost turns them into rustdoc,
    // and reflection clients (grpcurl describe) show them.
    compiler.include_source_info(true).include_imports(true);
    if let Err(err) = compiler.open_files(PROTOS) {
        // protox's Display is terse; Debug carries the file, line and span.
        return Err(format!("protox failed to compile {PROTOS:?}: {err:?}").into());
    }

    fs::write(
        out_dir.join(DESCRIPTOR_FILE),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect()` helper: it would need tonic's "transport" feature here.
        // Explicit, so that feature unification on tonic-build cannot turn it on.
        .build_transport(false)
        // BTreeMap for every map field: deterministic encoding and iteration
        // (openraft's Membership is BTreeMap-based too).
        .btree_map(".")
        .compile_fds(compiler.file_descriptor_set())?;

    Ok(())
}

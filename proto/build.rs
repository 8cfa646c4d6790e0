//! Generates the tonic/prost code with a vendored `protoc`, so building Cairn
//! needs no protobuf compiler on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // Build scripts are single-threaded, so setting the variable is sound.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PROTOC", protoc)
    };
    tonic_prost_build::configure().bytes(".").compile_protos(
        &[
            "proto/cairn/raft.proto",
            "proto/cairn/kv.proto",
            "proto/cairn/admin.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}

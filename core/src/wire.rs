//! Generated gRPC types for `proto/` and their conversions to core types.

/// `registry.v1`: the registry's own service and messages.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("registry.v1");
}

/// The package-less compatibility service `R` of werbenhu/registry.
#[allow(missing_docs, clippy::all)]
pub mod compat {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// Encoded `FileDescriptorSet` of every proto file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/registry_descriptor.bin"));

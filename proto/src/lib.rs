//! Generated gRPC types and services of the Tandem API (`proto/tandem.proto`).
//!
//! Wire structs only: the server and the device convert them into validated domain types at
//! the boundary.

#![allow(missing_debug_implementations, clippy::unwrap_used)] // generated code

/// Version 1 of the API.
pub mod v1 {
    tonic::include_proto!("tandem.v1");
}

//! Tandem server: the device gRPC API, the relying-party gRPC and REST APIs, the signing
//! core, lockout and clone detection, SQLite storage, PKCS#11 HSM access, the CA, and the
//! test accounts a running server provisions. A library: the `tandem` binary (operator
//! tools, device simulator, RP clients, demo, load generator) is the `tandem-cli` crate,
//! which runs the server through [`run`]. Nothing here refers to the command line.
//!
//! ```text
//!   device (client-core) ──gRPC/TLS──▶ service::DeviceService ─┐
//!   relying party ─────────gRPC/TLS──▶ service::RelyingParty  ─┤
//!                                                              ▼
//!                    store (SQLite, WAL) ◀── signing core ──▶ hsm (PKCS#11: KEK,
//!                    lockout gate, replies,   (d1'' share,     transport key, d2)
//!                    audit chain)              CRT combine)
//! ```
//!
//! The REST API (`rest`) answers with the RP API v3 wire types of the relying-party library
//! (crate `tandem-rp`), which also holds the RP client that `tandem rp-api` drives.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bn;
pub mod ca;
pub mod config;
pub mod core;
pub mod fs_mode;
pub mod hsm;
pub mod http;
pub mod lockout;
pub mod pki;
pub mod rest;
pub mod rp_cert_queue;
pub mod run;
pub mod service;
pub mod signing;
pub mod store;
pub mod test_accounts;
pub mod tls;

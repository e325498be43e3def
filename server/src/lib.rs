//! Tandem server: the device gRPC API, the relying-party gRPC API, the signing core,
//! lockout and clone detection, SQLite storage, PKCS#11 HSM access, and the `tandem`
//! command line (operator tools, device simulator, demo).
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
pub mod cli;
pub mod config;
pub mod fs_mode;
pub mod hsm;
pub mod http;
pub mod lockout;
pub mod pki;
pub mod rest;
pub mod run;
pub mod service;
pub mod signing;
pub mod store;
pub mod test_accounts;
pub mod tls;

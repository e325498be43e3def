//! hsm-sim: a simulated HSM that is a real PKCS#11 v2.40 module.
//!
//! Built as a `cdylib` (`libtandem_hsm_sim.so`), it is loaded by any PKCS#11 consumer
//! (the Tandem server through `cryptoki`, OpenSC `pkcs11-tool --module`). It has one slot
//! (id 0) with one token, whose token objects live in the directory named by
//! `TANDEM_HSM_SIM_DIR` (default `./hsm-sim-tokens`); see [`store`].
//!
//! ```text
//!  PKCS#11 caller ──C ABI──▶ ffi (unsafe, pointer checks, panics caught)
//!                                │ slices, templates
//!                                ▼
//!                            module (global Mutex<Option<Module>>: sessions, login, objects)
//!                             │            │
//!                             ▼            ▼
//!                          crypto       store (token directory, AES-256-GCM for
//!                          (OpenSSL,           private objects under the token key)
//!                           tandem_modexp)
//! ```
//!
//! Every entry point first consults [`fault`] (off unless `TANDEM_HSM_SIM_FAULTS` names a
//! fault file). Tandem's vendor-defined key type and mechanism are in [`vendor`].
//!
//! The share exponentiation runs on AVX-512 IFMA where the CPU has it (`tandem_modexp`,
//! about twice as fast as OpenSSL's constant-time exponentiation), on OpenSSL otherwise or
//! when `TANDEM_MODEXP=openssl`.
//!
//! Only [`ffi`] contains `unsafe` code; everything else is safe Rust.
#![deny(unsafe_code)]

pub mod crypto;
pub mod error;
pub mod fault;
pub mod ffi;
pub mod mechanism;
pub mod module;
pub mod object;
pub mod session;
pub mod store;
pub mod token;
pub mod vendor;

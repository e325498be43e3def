//! Tandem's relying-party library: what an e-service (a bank, a web shop, a public service)
//! adds to its `Cargo.toml` to authenticate users and have them sign through a Smart-ID RP
//! API v3 compatible server (Tandem's, or any other that speaks the same wire format).
//!
//! It brings none of the server: no PKCS#11, no database, no HTTP server, no gRPC.
//!
//! ```text
//!  e-service backend                                          RP API server (HTTPS)
//!  ─────────────────                                          ─────────────────────
//!  api::types::*Request ─validate()─▶ client::RpApiClient ──POST /v3/…─────────────▶
//!   (rpChallenge, interactions,          │ TLS: web PKI + own roots, pinned keys
//!    certificate level)                  ◀── sessionID (+ sessionToken, sessionSecret) ──
//!  client::DeviceLinkSession ─▶ QR code every second / Web2App / App2App link
//!   (api::device_link: authCode = HMAC-SHA256 over the link, keyed by sessionSecret)
//!  client::RpApiClient::wait_for_completion ──GET /v3/session/{id} (long poll)──▶
//!                                        ◀── api::types::SessionStatusResponse ──
//!  client::verify::verify_{authentication,signature,certificate_choice}
//!   (pure: ACSP_V2 payload (api::acsp), signature, certificate chain, policies, level,
//!    identity against the e-service's trust anchors and clock) ─▶ report or failed step
//!  client::revocation::check_chain_revocation ──OCSP, CRL as fallback──▶ CA
//! ```
//!
//! - [`api`]: the wire format, sans-IO: request and response types with the spec's
//!   validation, device links and their authCode, the ACSP_V2 payload, the verification
//!   code, certificate levels, RFC 9457 problem documents. Tandem's server uses the same
//!   types to answer.
//! - [`client`]: the HTTP client ([`client::RpApiClient`]), device-link sessions and QR
//!   codes, same-device callback checks, response verification and revocation checks.
//! - [`documents`]: document signatures made through the RP API: detached CAdES-B-B
//!   (`.p7s`) in two steps around a RAW_DIGEST_SIGNATURE session.
//! - [`report`]: the verification report (green / yellow / red per signature, ETSI
//!   indications, proof of origin, summary note) as a typed model, JSON and HTML.
//! - [`signing`]: remote document signing as steps a caller drives: the signer, the
//!   signing session (start → verification code → finish), CAdES and PAdES B-B/B-T/B-LT.
//! - [`validation`]: validation of detached CAdES signatures, PDFs and packages (ETSI EN
//!   319 102-1 in its essentials), filling the report; [`validation::file`] for a file as
//!   a user hands it in.
//! - [`oids`]: the object identifiers of the certificates, CRLs and OCSP messages involved.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod client;
pub mod documents;
pub mod oids;
pub mod report;
pub mod signing;
pub mod validation;

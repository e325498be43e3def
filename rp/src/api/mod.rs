//! Pure (sans-IO) protocol core of the Smart-ID RP API v3 compatible REST API.
//!
//! Nothing in here touches sockets, files, clocks or the database: randomness comes in as
//! an RNG argument, time as "seconds since the session was created", and every function
//! returns bytes, strings or typed values for the HTTP layer to send.
//!
//! ```text
//!  RP ──JSON──▶ types::*Request ──validate()──▶ session core (HTTP/DB wiring, not here)
//!                                                  │  serverRandom / sessionToken / secret
//!  RP ◀─JSON── types::*Response ◀──────────────────┤
//!  RP builds link ─▶ device_link::build_device_link  (HMAC-SHA256 authCode)
//!  app scans link ─▶ device_link::ParsedLink::parse ─▶ .verify() ─▶ VerifiedLink
//!  app signs      ─▶ acsp::acsp_v2_digest (ACSP_V2) / the RP's digest (RAW_DIGEST_SIGNATURE)
//!  errors         ─▶ problem::Problem (RFC 9457, application/problem+json)
//! ```
//!
//! Reference: `shared/reference/smart-id-rp-api-v3/` (openapi.yml, signature_protocols,
//! authcode, device_link_flows, notification_based_flows, interactions, api_details).

pub mod acsp;
pub mod callback_url;
pub mod device_link;
pub mod level;
pub mod portal;
pub mod problem;
pub mod rp_certs;
pub mod rp_name;
pub mod session;
pub mod types;
pub mod vc;

pub use types::ValidationError;

//! What the server keeps of a REST session besides its transaction: the request values
//! the app and the status response need (`SessionParams`, stored as JSON with the
//! session), and what the app answered (`TargetOutcome`, stored per answering account).

use serde::{Deserialize, Serialize};

use super::level::CertificateLevel;
use super::types::{FlowType, HashAlgorithm, InteractionType, SignatureAlgorithm};

/// `auth`, `sign` or `cert` (also the device link's `sessionType`).
pub const AUTH: &str = "auth";
/// Signing session.
pub const SIGN: &str = "sign";
/// Certificate choice session.
pub const CERT: &str = "cert";

/// Flow names stored with a session.
pub const FLOW_DEVICE_LINK: &str = "DEVICE_LINK";
/// Notification-based flow.
pub const FLOW_NOTIFICATION: &str = "NOTIFICATION";
/// Linked notification signing (after a device-link certificate choice).
pub const FLOW_LINKED: &str = "LINKED";

/// Request values of one session, exactly as the relying party sent them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionParams {
    /// `ACSP_V2`, `RAW_DIGEST_SIGNATURE`; `None` for certificate choice.
    pub signature_protocol: Option<String>,
    /// ACSP_V2: Base64 as sent.
    pub rp_challenge: Option<String>,
    /// ACSP_V2: generated at start.
    pub server_random: Option<String>,
    /// RAW_DIGEST_SIGNATURE: Base64 as sent.
    pub digest: Option<String>,
    pub signature_algorithm: Option<SignatureAlgorithm>,
    pub hash_algorithm: Option<HashAlgorithm>,
    pub relying_party_name: String,
    /// Base64 JSON as sent; empty for certificate choice.
    pub interactions: String,
    pub initial_callback_url: Option<String>,
    /// Requested level (stored as its wire name: `ADVANCED`, `QUALIFIED`, `QSCD`).
    pub certificate_level: CertificateLevel,
    /// `requestProperties.shareMdClientIpAddress`.
    pub share_ip: bool,
    /// Unsupported `requestProperties`, reported back.
    pub ignored_properties: Vec<String>,
    /// Linked signing: the device-link certificate choice it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_session_id: Option<String>,
}

/// What the answering app reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetOutcome {
    pub flow_type: Option<FlowType>,
    pub user_challenge: Option<String>,
    pub interaction_type_used: Option<InteractionType>,
    pub device_ip_address: Option<String>,
}

impl TargetOutcome {
    /// Parses the stored JSON (absent or empty: nothing reported yet).
    pub fn parse(json: Option<&str>) -> Self {
        json.and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }

    /// The JSON to store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl SessionParams {
    /// Parses the stored JSON.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The JSON to store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

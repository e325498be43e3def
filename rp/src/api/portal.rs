//! The self-service portal's endpoints (a Tandem extension beside the RP API v3): the
//! request and answer types the server and [`crate::client::http::RpApiClient`] share.
//!
//! ```text
//!  portal RP ── AUTH session (RP API v3) ──▶ holder confirms on the phone ──▶ COMPLETE / OK
//!  portal RP ── POST /tandem/v1/portal/overview {authSessionId} ──▶ PortalOverview
//!  portal RP ── POST /tandem/v1/portal/delete-account {authSessionId, documentNumber}
//!           ──▶ AccountDeleted (certificates revoked, secrets destroyed)
//! ```
//!
//! Only relying parties with the operator's `portal` permission may call them
//! (`tandem operator rp-portal UUID allow`); docs/RP_API.md, "Portal endpoints".

use serde::{Deserialize, Serialize};

use crate::report::UtcTime;

/// Path of the overview endpoint on the RP API listener (beside the `/v3` base path).
pub const OVERVIEW_PATH: &str = "/tandem/v1/portal/overview";
/// Path of the deletion endpoint on the RP API listener.
pub const DELETE_ACCOUNT_PATH: &str = "/tandem/v1/portal/delete-account";
/// At most this many transactions are listed (newest first).
pub const MAX_TRANSACTIONS: usize = 50;
/// Longest document number accepted in a request.
const MAX_DOCUMENT_NUMBER_CHARS: usize = 100;

/// `POST /tandem/v1/portal/overview`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalOverviewRequest {
    /// relyingPartyUUID (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName (as in the RP API v3).
    pub relying_party_name: String,
    /// An AUTH session this relying party started, completed with OK.
    pub auth_session_id: String,
}

impl PortalOverviewRequest {
    /// Checks the form of the session id (the session itself is the server's decision).
    pub fn validate(&self) -> Result<(), String> {
        session_id(&self.auth_session_id)
    }
}

/// `POST /tandem/v1/portal/delete-account`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalDeleteAccountRequest {
    /// relyingPartyUUID (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName (as in the RP API v3).
    pub relying_party_name: String,
    /// A fresh AUTH session (completed OK no longer than `rp_api.max_auth_age_seconds`
    /// ago) that has not been used for a deletion yet.
    pub auth_session_id: String,
    /// The account to delete: one of the holder's.
    pub document_number: String,
}

impl PortalDeleteAccountRequest {
    /// Checks the forms of the session id and the document number.
    pub fn validate(&self) -> Result<(), String> {
        session_id(&self.auth_session_id)?;
        let n = self.document_number.chars().count();
        if n == 0
            || n > MAX_DOCUMENT_NUMBER_CHARS
            || self.document_number.chars().any(char::is_control)
        {
            return Err(format!(
                "documentNumber: 1 to {MAX_DOCUMENT_NUMBER_CHARS} characters, no control characters"
            ));
        }
        Ok(())
    }
}

fn session_id(id: &str) -> Result<(), String> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| "authSessionId: not a session id".into())
}

/// The answer of the overview: the holder, their accounts, recent transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalOverview {
    /// The person the AUTH session identified.
    pub holder: Holder,
    /// Every account of the person that is not deleted (deleted accounts are not listed:
    /// their secrets are gone and their certificates revoked), oldest first.
    pub accounts: Vec<PortalAccount>,
    /// Transactions addressed to these accounts, newest first, at most
    /// [`MAX_TRANSACTIONS`].
    pub transactions: Vec<PortalTransaction>,
}

/// The account holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Holder {
    /// Given name.
    pub given_name: String,
    /// Surname.
    pub surname: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// National identity number.
    pub national_identity_number: String,
}

/// An account's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountState {
    /// In use (its keys may still be locked or disabled, see [`PortalKey`]).
    Active,
}

/// One account of the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalAccount {
    /// Document number, e.g. `PNOEE-30303039914-AB12-Q`.
    pub document_number: String,
    /// State.
    pub state: AccountState,
    /// When the account was created (the device registered).
    pub created: UtcTime,
    /// When the account expires.
    pub expires: UtcTime,
    /// The device.
    pub device: PortalDevice,
    /// The key pairs (AUTH, SIGN).
    pub keys: Vec<PortalKey>,
    /// The certificates, newest first.
    pub certificates: Vec<PortalCertificate>,
}

/// What the server knows of an account's device (it keeps no model or label).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalDevice {
    /// When the device registered.
    pub registered: UtcTime,
    /// The last time it answered a transaction (any result), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<UtcTime>,
}

/// Which key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyPurpose {
    /// Authentication (PIN1).
    Auth,
    /// Signing (PIN2).
    Sign,
}

/// A key's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Locked after wrong PINs until [`PortalKey::locked_until`].
    Locked,
    /// Disabled for good (PIN lockout, a cloned device, the operator).
    Disabled,
}

/// One key pair of an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalKey {
    /// AUTH or SIGN.
    pub purpose: KeyPurpose,
    /// Active, locked or disabled.
    pub status: KeyStatus,
    /// End of the lock (only when locked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<UtcTime>,
    /// Wrong PINs in a row so far.
    pub wrong_pin_attempts: u32,
    /// Wrong PINs left before the next lock or the disable (0 when disabled).
    pub attempts_left: u32,
}

/// A certificate's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateLevel {
    /// Qualified (ETSI QC statements).
    Qualified,
    /// Advanced.
    Advanced,
}

/// A certificate of an account, as the server's records have it (the portal asks OCSP
/// itself for the current status, as any relying party would).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalCertificate {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// AUTH or SIGN.
    pub purpose: KeyPurpose,
    /// QUALIFIED or ADVANCED.
    pub level: CertificateLevel,
    /// The subject (RFC 4514).
    pub subject: String,
    /// notBefore.
    pub not_before: UtcTime,
    /// notAfter.
    pub not_after: UtcTime,
    /// The revocation on record, if revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// The certificate, DER in standard Base64.
    pub der: String,
}

/// A revocation on record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revocation {
    /// When.
    pub time: UtcTime,
    /// RFC 5280 CRLReason code (0 unspecified, 1 keyCompromise, 5 cessationOfOperation).
    pub reason: i64,
}

/// What a transaction asked of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionKind {
    /// A login.
    Authentication,
    /// A signature.
    Signature,
    /// A signing-certificate choice.
    CertificateChoice,
}

/// The API a relying party used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionApi {
    /// Tandem's gRPC relying-party service.
    Grpc,
    /// The REST RP API v3.
    RpApiV3,
}

/// How a transaction ended (the server's end results; `RUNNING` while open).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionResult {
    /// Still waiting for the device.
    Running,
    /// Confirmed.
    Ok,
    /// Refused on the device.
    UserRefused,
    /// One interaction refused on the device.
    UserRefusedInteraction,
    /// A certificate choice cancelled on the device.
    UserRefusedCertChoice,
    /// Nobody answered in time.
    Timeout,
    /// The wrong verification code was chosen.
    WrongVc,
    /// The key was locked or disabled (after wrong PINs, a clone) or the account gone: a
    /// wrong PIN that locks the key ends its transaction so; a wrong PIN that leaves
    /// attempts lets the device try again in the same transaction.
    DocumentUnusable,
    /// The app supports none of the interactions.
    RequiredInteractionNotSupportedByApp,
    /// App and server disagreed on the protocol.
    ProtocolFailure,
    /// The app expected the linked signing session.
    ExpectedLinkedSession,
    /// The server failed.
    ServerError,
}

/// One transaction addressed to the holder's accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalTransaction {
    /// When the relying party started it.
    pub time: UtcTime,
    /// When it ended, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<UtcTime>,
    /// The relying party's name as the request gave it.
    pub relying_party_name: String,
    /// What it asked.
    pub kind: TransactionKind,
    /// Over which API.
    pub api: TransactionApi,
    /// How it ended.
    pub result: TransactionResult,
    /// The account that answered, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<String>,
}

/// The answer of the deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountDeleted {
    /// The deleted account's document number.
    pub deleted: String,
    /// Serials (lower-case hex) of the certificates this deletion revoked.
    pub revoked_certificates: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_are_screaming_snake_strings_and_fields_camel_case() {
        let t = PortalTransaction {
            time: UtcTime::from_unix_secs(1_800_000_000).unwrap(),
            completed: None,
            relying_party_name: "Demo Bank".into(),
            kind: TransactionKind::CertificateChoice,
            api: TransactionApi::RpApiV3,
            result: TransactionResult::WrongVc,
            document_number: None,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["kind"], "CERTIFICATE_CHOICE");
        assert_eq!(v["api"], "RP_API_V3");
        assert_eq!(v["result"], "WRONG_VC");
        assert_eq!(v["relyingPartyName"], "Demo Bank");
        assert_eq!(v["time"], "2027-01-15T08:00:00Z");
        assert!(v.get("completed").is_none());
        let back: PortalTransaction = serde_json::from_value(v).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn requests_are_checked_before_sending() {
        let mut r = PortalDeleteAccountRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
            relying_party_name: "Portal".into(),
            auth_session_id: "not-a-uuid".into(),
            document_number: "PNOEE-1".into(),
        };
        assert!(r.validate().unwrap_err().contains("authSessionId"));
        r.auth_session_id = "9b5a1c3e-0f4e-4b8e-8c1a-2f2d9d1e7a10".into();
        assert!(r.validate().is_ok());
        r.document_number = String::new();
        assert!(r.validate().unwrap_err().contains("documentNumber"));
        let wire =
            r#"{"relyingPartyUUID":"u","relyingPartyName":"n","authSessionId":"s","extra":1}"#;
        assert!(serde_json::from_str::<PortalOverviewRequest>(wire).is_err());
    }
}

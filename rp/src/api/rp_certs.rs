//! Software certificates for relying parties (a Tandem extension beside the RP API v3): the
//! request and answer types the server, the portal, the CLI and
//! [`crate::client::http::RpApiClient`] share, and the label rule all of them apply.
//!
//! ```text
//!  operator ── rp-credit --rp B --add N, rp-admin --rp B add PNOEE-… ──▶ B has N credits
//!  admin logs in with Tandem (an AUTH session of the calling relying party A)
//!  A ── POST /tandem/v1/rp-certs/create {authSessionId, targetRelyingPartyUUID: B,
//!        certificates: [{label, csr}]}  ──▶ queued (one credit each)
//!  server's bounded pool: queued ──▶ creating (hourglass) ──▶ ready (signed by the CA in the HSM)
//!  A ── cancel (queued or creating) ──▶ a voucher code; redeem ──▶ one credit again (once)
//!  A ── certificate {id} ──▶ the certificate and its chain; the key never left the client
//! ```
//!
//! The caller is either the target relying party itself (its own scripts: `tandem rp-cert`)
//! or a relying party with the operator's `portal` permission (the portal); in both cases
//! the person of the AUTH session must be one of the target's administrators. docs/RP_API.md,
//! "Software certificates".

use serde::{Deserialize, Serialize};

use crate::report::UtcTime;

/// `POST`: the relying parties the person administers, with credits, vouchers and
/// certificates.
pub const LIST_PATH: &str = "/tandem/v1/rp-certs/list";
/// `POST`: queue certificates (one credit each).
pub const CREATE_PATH: &str = "/tandem/v1/rp-certs/create";
/// `POST`: cancel a queued or running creation; answers the voucher.
pub const CANCEL_PATH: &str = "/tandem/v1/rp-certs/cancel";
/// `POST`: redeem a voucher; answers the credits.
pub const REDEEM_PATH: &str = "/tandem/v1/rp-certs/redeem";
/// `POST`: revoke a ready certificate.
pub const REVOKE_PATH: &str = "/tandem/v1/rp-certs/revoke";
/// `POST`: a ready certificate with its chain.
pub const CERTIFICATE_PATH: &str = "/tandem/v1/rp-certs/certificate";

/// Longest label, in characters (the seed: "maximal 74 Zeichen").
pub const MAX_LABEL_CHARS: usize = 74;
/// Characters a label must not contain (the seed's list, and TAB).
pub const FORBIDDEN_LABEL_CHARS: [char; 14] = [
    '"', '!', '$', '%', '+', ';', '[', ']', '^', '`', '{', '}', '~', '\t',
];
/// Most certificates one create request may queue.
pub const MAX_CREATE: usize = 1000;
/// Longest certificate request accepted (DER bytes).
pub const MAX_CSR_BYTES: usize = 8192;

/// Why a label is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    /// Empty or only spaces.
    Empty,
    /// Longer than [`MAX_LABEL_CHARS`]; the number of characters it has.
    TooLong(usize),
    /// Contains one of [`FORBIDDEN_LABEL_CHARS`]: the first one found.
    Forbidden(char),
    /// Contains a control character other than TAB (line breaks and the like).
    Control,
}

impl LabelError {
    /// How the character is named in messages: `TAB` for the tabulator, the character
    /// itself otherwise.
    pub fn char_name(c: char) -> String {
        if c == '\t' {
            "TAB".into()
        } else {
            c.to_string()
        }
    }
}

impl std::fmt::Display for LabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "the label is empty"),
            Self::TooLong(n) => write!(
                f,
                "the label has {n} characters; at most {MAX_LABEL_CHARS} are allowed"
            ),
            Self::Forbidden(c) => write!(
                f,
                "the label contains the character {} that is not allowed",
                Self::char_name(*c)
            ),
            Self::Control => write!(f, "the label contains a control character"),
        }
    }
}

impl std::error::Error for LabelError {}

/// Checks a certificate label: 1 to [`MAX_LABEL_CHARS`] characters, none of
/// [`FORBIDDEN_LABEL_CHARS`], no control characters. The forbidden characters are looked
/// for before the length, so a long label with a `$` is refused for the `$`.
pub fn check_label(label: &str) -> Result<(), LabelError> {
    if let Some(c) = label.chars().find(|c| FORBIDDEN_LABEL_CHARS.contains(c)) {
        return Err(LabelError::Forbidden(c));
    }
    if label.chars().any(char::is_control) {
        return Err(LabelError::Control);
    }
    if label.trim().is_empty() {
        return Err(LabelError::Empty);
    }
    let n = label.chars().count();
    if n > MAX_LABEL_CHARS {
        return Err(LabelError::TooLong(n));
    }
    Ok(())
}

/// The download's file name for a certificate: `tandem-<label>-<serial>.p12`, the label
/// made safe for file systems (letters, digits, `-`, `_` and `.` kept, anything else
/// becomes `_`, no leading dot, at most 74 characters of it).
pub fn p12_file_name(label: &str, serial_hex: &str) -> String {
    let mut safe: String = label
        .chars()
        .take(MAX_LABEL_CHARS)
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while safe.starts_with('.') {
        safe.remove(0);
    }
    let serial: String = serial_hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(40)
        .collect();
    if safe.is_empty() {
        format!("tandem-{serial}.p12")
    } else {
        format!("tandem-{safe}-{serial}.p12")
    }
}

/// What every request carries: the caller, the administrator's AUTH session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// relyingPartyUUID of the caller (as in the RP API v3).
    pub relying_party_uuid: String,
    /// relyingPartyName of the caller.
    pub relying_party_name: String,
    /// An AUTH session the caller started, completed OK, recent (the portal's rule): it
    /// names the administrator.
    pub auth_session_id: String,
}

impl Caller {
    /// Checks the form of the session id.
    pub fn validate(&self) -> Result<(), String> {
        uuid::Uuid::parse_str(&self.auth_session_id)
            .map(|_| ())
            .map_err(|_| "authSessionId: not a session id".into())
    }
}

/// The caller's fields of a request, as a [`Caller`].
macro_rules! caller_of {
    ($($t:ty),*) => {$(
        impl $t {
            /// The caller and the administrator's session.
            pub fn caller(&self) -> Caller {
                Caller {
                    relying_party_uuid: self.relying_party_uuid.clone(),
                    relying_party_name: self.relying_party_name.clone(),
                    auth_session_id: self.auth_session_id.clone(),
                }
            }
        }
    )*};
}
caller_of!(
    ListRequest,
    CreateRequest,
    CertificateRequest,
    RedeemRequest
);

fn target(uuid: &str) -> Result<(), String> {
    uuid::Uuid::parse_str(uuid)
        .map(|_| ())
        .map_err(|_| "targetRelyingPartyUUID: not a UUID".into())
}

fn certificate_id(id: &str) -> Result<(), String> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| "certificateId: not a certificate id".into())
}

/// `POST /tandem/v1/rp-certs/list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListRequest {
    /// relyingPartyUUID of the caller (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName of the caller.
    pub relying_party_name: String,
    /// The administrator's AUTH session (see [`Caller`]).
    pub auth_session_id: String,
    /// Only this relying party; all the person administers (and the caller may manage)
    /// when absent.
    #[serde(
        rename = "targetRelyingPartyUUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_relying_party_uuid: Option<String>,
}

impl ListRequest {
    /// Checks the forms of the fields.
    pub fn validate(&self) -> Result<(), String> {
        self.caller().validate()?;
        self.target_relying_party_uuid
            .as_deref()
            .map_or(Ok(()), target)
    }
}

/// The answer of the list: one entry per administered relying party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RpCertOverview {
    /// The relying parties, by name.
    pub relying_parties: Vec<AdministeredRp>,
}

/// A relying party the person administers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdministeredRp {
    /// relyingPartyUUID.
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// Its first name (the one in its certificates' subject).
    pub relying_party_name: String,
    /// Credits left: certificates it may still queue.
    pub credits: u32,
    /// Whether the operator requires mutual TLS on the RP API for it.
    pub mtls_required: bool,
    /// Vouchers from cancelled creations, not yet redeemed, oldest first.
    pub vouchers: Vec<Voucher>,
    /// Its certificates and creations, newest first (cancelled ones are not listed: their
    /// voucher is).
    pub certificates: Vec<RpCert>,
}

/// A voucher: one credit, redeemable once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Voucher {
    /// The code, e.g. `TV-7KQ2-M9XD-4HPA`.
    pub code: String,
    /// When it was issued.
    pub issued: UtcTime,
}

/// State of a certificate creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RpCertState {
    /// Waiting for the pool.
    Queued,
    /// Being signed by the CA (the hourglass).
    Creating,
    /// Issued: serial and expiry known, downloadable.
    Ready,
    /// Revoked by an administrator or the operator.
    Revoked,
    /// Past its notAfter.
    Expired,
    /// Cancelled before it was issued (its credit became a voucher).
    Cancelled,
}

/// One certificate (or its creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RpCert {
    /// The creation's id (a UUID).
    pub id: String,
    /// The label.
    pub label: String,
    /// State.
    pub state: RpCertState,
    /// When it was queued.
    pub queued: UtcTime,
    /// Serial number, lower-case hex, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// End of validity, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<UtcTime>,
    /// Revocation time, if revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<UtcTime>,
}

/// One certificate to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRpCert {
    /// Its label ([`check_label`]).
    pub label: String,
    /// The PKCS#10 certificate request, base64 (standard, padded) of its DER; RSA 2048 to
    /// 4096 bits, signed with SHA-256 (proof of possession). The server keeps only the
    /// public key; it sets the subject itself.
    pub csr: String,
}

/// `POST /tandem/v1/rp-certs/create`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    /// relyingPartyUUID of the caller (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName of the caller.
    pub relying_party_name: String,
    /// The administrator's AUTH session (see [`Caller`]).
    pub auth_session_id: String,
    /// The relying party the certificates are for.
    #[serde(rename = "targetRelyingPartyUUID")]
    pub target_relying_party_uuid: String,
    /// 1 to [`MAX_CREATE`] certificates; all or none are queued.
    pub certificates: Vec<NewRpCert>,
}

impl CreateRequest {
    /// Checks the forms of the fields and every label (the first bad one is named by its
    /// position, from 1).
    pub fn validate(&self) -> Result<(), String> {
        self.caller().validate()?;
        target(&self.target_relying_party_uuid)?;
        if self.certificates.is_empty() || self.certificates.len() > MAX_CREATE {
            return Err(format!("certificates: 1 to {MAX_CREATE} entries"));
        }
        for (i, c) in self.certificates.iter().enumerate() {
            check_label(&c.label).map_err(|e| format!("certificates[{}]: {e}", i + 1))?;
            if c.csr.is_empty() || c.csr.len() > MAX_CSR_BYTES * 4 / 3 + 4 {
                return Err(format!("certificates[{}]: csr: missing or too long", i + 1));
            }
        }
        Ok(())
    }
}

/// The answer of create: the queued creations, in the request's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Created {
    /// The creations, state QUEUED.
    pub certificates: Vec<RpCert>,
    /// Credits left afterwards.
    pub credits: u32,
}

/// `POST /tandem/v1/rp-certs/cancel`, `/revoke` and `/certificate`: one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateRequest {
    /// relyingPartyUUID of the caller (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName of the caller.
    pub relying_party_name: String,
    /// The administrator's AUTH session (see [`Caller`]).
    pub auth_session_id: String,
    /// The relying party the certificate is for.
    #[serde(rename = "targetRelyingPartyUUID")]
    pub target_relying_party_uuid: String,
    /// The creation's id.
    pub certificate_id: String,
}

impl CertificateRequest {
    /// Checks the forms of the fields.
    pub fn validate(&self) -> Result<(), String> {
        self.caller().validate()?;
        target(&self.target_relying_party_uuid)?;
        certificate_id(&self.certificate_id)
    }
}

/// The answer of cancel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cancelled {
    /// The voucher that replaces the spent credit.
    pub voucher: Voucher,
}

/// `POST /tandem/v1/rp-certs/redeem`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeemRequest {
    /// relyingPartyUUID of the caller (as in the RP API v3).
    #[serde(rename = "relyingPartyUUID")]
    pub relying_party_uuid: String,
    /// relyingPartyName of the caller.
    pub relying_party_name: String,
    /// The administrator's AUTH session (see [`Caller`]).
    pub auth_session_id: String,
    /// The relying party whose voucher it is.
    #[serde(rename = "targetRelyingPartyUUID")]
    pub target_relying_party_uuid: String,
    /// The voucher code (case and spaces ignored).
    pub voucher_code: String,
}

impl RedeemRequest {
    /// Checks the forms of the fields.
    pub fn validate(&self) -> Result<(), String> {
        self.caller().validate()?;
        target(&self.target_relying_party_uuid)?;
        let n = self.voucher_code.chars().count();
        if n == 0 || n > 64 || self.voucher_code.chars().any(char::is_control) {
            return Err("voucherCode: 1 to 64 characters".into());
        }
        Ok(())
    }
}

/// The answer of redeem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redeemed {
    /// Credits afterwards.
    pub credits: u32,
}

/// The answer of `/certificate`: a ready (or revoked, or expired) certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuedRpCert {
    /// The entry, as listed.
    pub certificate: RpCert,
    /// The certificate, base64 of its DER.
    pub der: String,
    /// The chain above it, base64 DER each: the issuing CA, then the root.
    pub chain: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_seed() {
        assert_eq!(check_label("Kanzlei Müller 2026"), Ok(()));
        assert_eq!(check_label(&"a".repeat(74)), Ok(()));
        assert_eq!(check_label(&"a".repeat(75)), Err(LabelError::TooLong(75)));
        assert_eq!(check_label(""), Err(LabelError::Empty));
        assert_eq!(check_label("   "), Err(LabelError::Empty));
        assert_eq!(check_label("a\nb"), Err(LabelError::Control));
        for c in FORBIDDEN_LABEL_CHARS {
            let label = format!("ab{c}cd");
            assert_eq!(check_label(&label), Err(LabelError::Forbidden(c)), "{c:?}");
        }
        assert_eq!(
            LabelError::Forbidden('\t').to_string(),
            "the label contains the character TAB that is not allowed"
        );
        // Umlauts, dots, dashes, slashes and other punctuation are allowed.
        assert_eq!(check_label("Büro/Köln (2) #1 & co. - test@x, ok?"), Ok(()));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            p12_file_name("Büro Köln/2", "0a1B"),
            "tandem-Büro_Köln_2-0a1B.p12"
        );
        assert_eq!(p12_file_name("../..", "ff"), "tandem-_..-ff.p12");
        assert_eq!(p12_file_name("...", "ff"), "tandem-ff.p12");
        assert!(!p12_file_name("a\\b:c*d?e", "01").contains(['\\', ':', '*', '?', '/']));
    }

    #[test]
    fn requests_round_trip_and_refuse_unknown_fields() {
        let req = CreateRequest {
            relying_party_uuid: "00000000-0000-4000-8000-000000000000".into(),
            relying_party_name: "DEMO".into(),
            auth_session_id: "11111111-1111-4111-8111-111111111111".into(),
            target_relying_party_uuid: "22222222-2222-4222-8222-222222222222".into(),
            certificates: vec![NewRpCert {
                label: "one".into(),
                csr: "MIIB".into(),
            }],
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json["relyingPartyUUID"],
            "00000000-0000-4000-8000-000000000000"
        );
        assert_eq!(
            json["targetRelyingPartyUUID"],
            "22222222-2222-4222-8222-222222222222"
        );
        let back: CreateRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, req);
        assert_eq!(req.validate(), Ok(()));
        let mut bad = req.clone();
        bad.certificates[0].label = "a$b".into();
        assert!(bad.validate().unwrap_err().contains("certificates[1]"));
        let unknown = serde_json::json!({"relyingPartyUUID": "x", "relyingPartyName": "y",
            "authSessionId": "z", "targetRelyingPartyUUID": "w", "certificates": [], "extra": 1});
        assert!(serde_json::from_value::<CreateRequest>(unknown).is_err());
    }
}

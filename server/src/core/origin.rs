//! The proof of origin: whether a relying party may have one for an AUTH session, the
//! statement, and the record that the session has been used.
//!
//! ```text
//!  request (RP admitted, body validated) ─▶ issue ─▶ the session: this RP's, AUTH,
//!     COMPLETE with OK, completed ≤ max_auth_age ago ─▶ sender from its AUTH certificate
//!     ─▶ statement ─▶ sign (the HSM, passed in) ─▶ record (one per session, audited)
//! ```
//! The signature is made before the record is written: a request that loses the race for
//! a session gets `AlreadyUsed` and its proof is dropped, so at most one proof per session
//! leaves the server.

use der::Decode;
use tandem_client_core::types::KeyType;
use tandem_rp::documents::origin::{
    OriginStatement, ProofOfOriginRequest, STATEMENT_VERSION, Sender, StatementRelyingParty,
};
use tandem_rp::report::UtcTime;
use x509_cert::Certificate;

use super::auth_session::{AuthSessionRefused, RecentAuthentication, recent_authentication};
use super::{Clock, Rng, random_uuid};
use crate::pki::oids;
use crate::store::{Store, StoreError};

/// The audit event of an issued proof.
pub const AUDIT_EVENT: &str = "origin.proof";

/// What the decision needs besides the request.
#[derive(Debug, Clone)]
pub struct OriginSettings {
    /// `rp_api.max_auth_age_seconds`.
    pub max_auth_age_seconds: i64,
    /// The statement's `issuer`: the service's name.
    pub issuer: String,
}

/// A proof issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The statement's message id.
    pub message_id: String,
    /// The proof (DER `ContentInfo`).
    pub proof: Vec<u8>,
}

/// Why no proof was issued.
#[derive(Debug, thiserror::Error)]
pub enum OriginRefused {
    /// The session does not vouch for anyone ([`super::auth_session`]).
    #[error(transparent)]
    Session(#[from] AuthSessionRefused),
    /// A proof was already issued for the session.
    #[error("a proof of origin was already issued for this session")]
    AlreadyUsed,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The authentication certificate could not be read, or signing failed.
    #[error("{0}")]
    Internal(String),
}

/// Signs a statement: its bytes in, the DER proof out (the HSM in production).
pub type SignStatement<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

/// Issues a proof of origin for `req` of the relying party `rp_uuid` (already admitted)
/// at `clock`'s time, signing the statement with `sign` (statement bytes → DER proof).
pub fn issue(
    store: &dyn Store,
    settings: &OriginSettings,
    rp_uuid: &str,
    req: &ProofOfOriginRequest,
    clock: &dyn Clock,
    rng: Rng<'_>,
    sign: SignStatement<'_>,
) -> Result<Issued, OriginRefused> {
    let now = clock.now();
    let id = req.auth_session_id.as_str();
    let RecentAuthentication {
        account_id,
        completed_at,
    } = recent_authentication(store, rp_uuid, id, settings.max_auth_age_seconds, now)?;
    let cert = super::certificate::latest_certificate(store, &account_id, KeyType::Auth, false)?
        .ok_or_else(|| OriginRefused::Internal("account without AUTH certificate".into()))?;
    let (name, identifier) = sender_of(&cert.der).map_err(OriginRefused::Internal)?;
    let time = |secs: i64| {
        UtcTime::from_unix_secs(u64::try_from(secs).unwrap_or(0))
            .map_err(|e| OriginRefused::Internal(e.to_string()))
    };
    let statement = OriginStatement {
        version: STATEMENT_VERSION,
        message_id: req.message_id.clone().unwrap_or_else(|| random_uuid(rng)),
        issued_at: time(now)?,
        issuer: settings.issuer.clone(),
        relying_party: StatementRelyingParty {
            uuid: rp_uuid.to_owned(),
            name: req.relying_party_name.clone(),
        },
        sender: Sender {
            name,
            identifier,
            authenticated_at: time(completed_at)?,
            auth_session_id: id.to_owned(),
        },
        recipient: req.recipient.clone(),
        sender_reference: req.sender_reference.clone(),
        recipient_reference: req.recipient_reference.clone(),
        documents: req.documents.clone(),
    };
    let proof = sign(&statement.to_json()).map_err(OriginRefused::Internal)?;
    let details = serde_json::json!({
        "authSessionId": id,
        "rpUuid": rp_uuid,
        "messageId": statement.message_id,
        "sender": statement.sender.identifier,
        "recipient": statement.recipient.identifier,
        "documents": statement.documents.len(),
    });
    if !store.record_origin_proof(
        id,
        rp_uuid,
        &statement.message_id,
        now,
        AUDIT_EVENT,
        Some(&account_id),
        &details,
    )? {
        return Err(OriginRefused::AlreadyUsed);
    }
    Ok(Issued {
        message_id: statement.message_id,
        proof,
    })
}

/// The sender's full name (given name and surname, else the common name) and the subject's
/// serialNumber (`PNOEE-…`) from an AUTH certificate.
fn sender_of(cert_der: &[u8]) -> Result<(String, String), String> {
    let cert = Certificate::from_der(cert_der).map_err(|e| format!("AUTH certificate: {e}"))?;
    let mut given = None;
    let mut surname = None;
    let mut common = None;
    let mut serial = None;
    for atv in cert.tbs_certificate().subject().iter() {
        let Some(text) = attribute_text(&atv.value) else {
            continue;
        };
        match atv.oid {
            oids::AT_GIVEN_NAME => given = Some(text),
            oids::AT_SURNAME => surname = Some(text),
            oids::AT_COMMON_NAME => common = Some(text),
            oids::AT_SERIAL_NUMBER => serial = Some(text),
            _ => {}
        }
    }
    let name = match (given, surname, common) {
        (Some(g), Some(s), _) => format!("{g} {s}"),
        (_, _, Some(c)) => c,
        _ => return Err("the AUTH certificate names nobody".into()),
    };
    let serial = serial.ok_or("the AUTH certificate has no serialNumber")?;
    Ok((name, serial))
}

/// A directory string as text (UTF8String, PrintableString or IA5String).
fn attribute_text(v: &der::asn1::Any) -> Option<String> {
    use der::{Tag, Tagged};
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(v.value()).ok().map(str::to_owned)
        }
        _ => None,
    }
}

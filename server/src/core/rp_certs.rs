//! Software certificates of relying parties: who may manage which relying party's
//! certificates, and the six operations (list, create, cancel, redeem, revoke, download).
//!
//! ```text
//!  request (caller admitted as in the RP API v3, body validated)
//!    ─▶ the AUTH session: the caller's, AUTH, COMPLETE with OK, completed ≤
//!         rp_api.portal_session_seconds ago ─▶ the person PNO<CC>-<national id>
//!    ─▶ the target: the caller itself, or any when the caller has the portal permission
//!    ─▶ the person administers the target (else the same 403 whether it exists or not)
//!    ─▶ the operation on the store (one transaction each; credits, vouchers: store/)
//! ```
//! The CSR's signature is checked here and only its public key is stored: the private key
//! never reaches the server. The worker ([`crate::rp_cert_queue`]) signs queued creations.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tandem_rp::api::rp_certs::{
    self as api, AdministeredRp, Cancelled, CertificateRequest, CreateRequest, Created,
    IssuedRpCert, ListRequest, RedeemRequest, Redeemed, RpCert, RpCertOverview, RpCertState,
    Voucher,
};
use tandem_rp::report::UtcTime;

use super::auth_session::{AuthSessionRefused, recent_authentication};
use super::{Clock, Rng, random_uuid};
use crate::pki::csr::{self, CsrError};
use crate::store::{
    NewRpCertRecord, NewVoucher, RelyingParty, RpCertRecord, RpCertStatus, Store, StoreError,
    VoucherRecord, admin_identity, voucher_code_hash,
};

/// RFC 5280 reason of a revocation by an administrator (unspecified).
const REASON_BY_ADMIN: i64 = 0;

/// What the decisions need besides the request.
#[derive(Debug, Clone)]
pub struct RpCertSettings {
    /// `rp_api.portal_session_seconds`: how old the administrator's AUTH session may be.
    pub session_seconds: i64,
}

/// Why a request is refused.
#[derive(Debug, thiserror::Error)]
pub enum RpCertsRefused {
    /// The session does not vouch for anyone ([`super::auth_session`]).
    #[error(transparent)]
    Session(#[from] AuthSessionRefused),
    /// The person does not administer the target (or the target does not exist).
    #[error("the person is not an administrator of this relying party")]
    NotAdministrator,
    /// The caller may manage only its own certificates (no portal permission).
    #[error("the caller may only manage its own certificates")]
    ForeignTarget,
    /// A request field is not acceptable (a label, a CSR): the message names it.
    #[error("{0}")]
    BadRequest(String),
    /// Too few credits.
    #[error("{0}")]
    NoCredit(String),
    /// The certificate is not in a state for this (e.g. cancel a ready one).
    #[error("{0}")]
    WrongState(String),
    /// No such certificate of the target.
    #[error("no such certificate")]
    NoSuchCertificate,
    /// No such voucher of the target.
    #[error("no such voucher")]
    NoSuchVoucher,
    /// The voucher was redeemed already.
    #[error("the voucher was redeemed already")]
    VoucherRedeemed,
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A stored record could not be read.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for RpCertsRefused {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An administrator, authenticated through the caller's AUTH session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// `PNO<CC>-<national id>`.
    pub person: String,
    /// May the caller manage other relying parties' certificates (portal permission)?
    pub caller_is_portal: bool,
    /// The caller's UUID.
    pub caller_uuid: String,
}

/// The person of the caller's AUTH session `auth_session_id` at `now`.
pub fn authenticate(
    store: &dyn Store,
    settings: &RpCertSettings,
    caller: &RelyingParty,
    auth_session_id: &str,
    now: i64,
) -> Result<Admin, RpCertsRefused> {
    let auth = recent_authentication(
        store,
        &caller.uuid,
        auth_session_id,
        settings.session_seconds,
        now,
    )?;
    let account = store.account(&auth.account_id)?;
    Ok(Admin {
        person: admin_identity(&account.identity.country, &account.identity.national_id),
        caller_is_portal: caller.portal,
        caller_uuid: caller.uuid.clone(),
    })
}

/// Whether `admin` may manage `target`: the caller is the target or has the portal
/// permission, and the person administers the (active) target.
pub fn authorise(store: &dyn Store, admin: &Admin, target: &str) -> Result<(), RpCertsRefused> {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if !admin.caller_is_portal && !same(&admin.caller_uuid, target) {
        return Err(RpCertsRefused::ForeignTarget);
    }
    let target = target.to_ascii_lowercase();
    if store.active_relying_party(&target)?.is_none()
        || !store.rp_admins(&target)?.contains(&admin.person)
    {
        return Err(RpCertsRefused::NotAdministrator);
    }
    Ok(())
}

fn time(secs: i64) -> Result<UtcTime, RpCertsRefused> {
    UtcTime::from_unix_secs(u64::try_from(secs).unwrap_or(0))
        .map_err(|_| RpCertsRefused::Internal(format!("time {secs} out of range")))
}

/// A creation as listed.
pub fn entry(rec: &RpCertRecord, now: i64) -> Result<RpCert, RpCertsRefused> {
    let state = match rec.status {
        RpCertStatus::Queued => RpCertState::Queued,
        RpCertStatus::Creating => RpCertState::Creating,
        RpCertStatus::Ready if rec.not_after.is_some_and(|t| t < now) => RpCertState::Expired,
        RpCertStatus::Ready => RpCertState::Ready,
        RpCertStatus::Revoked => RpCertState::Revoked,
        RpCertStatus::Cancelled => RpCertState::Cancelled,
    };
    let issued = matches!(rec.status, RpCertStatus::Ready | RpCertStatus::Revoked);
    Ok(RpCert {
        id: rec.id.clone(),
        label: rec.label.clone(),
        state,
        queued: time(rec.queued_at)?,
        serial_number: rec.serial_hex.clone().filter(|_| issued),
        not_after: match rec.not_after.filter(|_| issued) {
            Some(t) => Some(time(t)?),
            None => None,
        },
        revoked: match rec.revoked.filter(|_| issued) {
            Some((t, _)) => Some(time(t)?),
            None => None,
        },
    })
}

fn voucher_entry(v: &VoucherRecord) -> Result<Voucher, RpCertsRefused> {
    Ok(Voucher {
        code: v.code.clone(),
        issued: time(v.issued_at)?,
    })
}

/// `list`: the relying parties the person administers and the caller may manage (or only
/// the target), with credits, open vouchers and certificates.
pub fn list(
    store: &dyn Store,
    admin: &Admin,
    req: &ListRequest,
    clock: &dyn Clock,
) -> Result<RpCertOverview, RpCertsRefused> {
    let now = clock.now();
    let targets: Vec<String> = match &req.target_relying_party_uuid {
        Some(t) => {
            authorise(store, admin, t)?;
            vec![t.to_ascii_lowercase()]
        }
        None => store
            .administered_rps(&admin.person)?
            .into_iter()
            .filter(|t| admin.caller_is_portal || t.eq_ignore_ascii_case(&admin.caller_uuid))
            .collect(),
    };
    let mut out = Vec::with_capacity(targets.len());
    for t in targets {
        let Some(rp) = store.active_relying_party(&t)? else {
            continue;
        };
        let vouchers = store
            .rp_vouchers(&t)?
            .iter()
            .filter(|v| v.redeemed_at.is_none())
            .map(voucher_entry)
            .collect::<Result<_, _>>()?;
        let certificates = store
            .rp_certs_of(Some(&t))?
            .iter()
            .filter(|c| c.status != RpCertStatus::Cancelled)
            .map(|c| entry(c, now))
            .collect::<Result<_, _>>()?;
        out.push(AdministeredRp {
            relying_party_uuid: rp.uuid.clone(),
            relying_party_name: rp.names.first().cloned().unwrap_or_default(),
            credits: store.rp_credits(&t)?,
            mtls_required: rp.mtls_required,
            vouchers,
            certificates,
        });
    }
    out.sort_by(|a, b| a.relying_party_name.cmp(&b.relying_party_name));
    Ok(RpCertOverview {
        relying_parties: out,
    })
}

/// `create`: checks every label and CSR (the first bad one is named by its position), then
/// queues all of them, one credit each, or none.
pub fn create(
    store: &dyn Store,
    admin: &Admin,
    req: &CreateRequest,
    clock: &dyn Clock,
    rng: Rng<'_>,
) -> Result<Created, RpCertsRefused> {
    req.validate().map_err(RpCertsRefused::BadRequest)?;
    authorise(store, admin, &req.target_relying_party_uuid)?;
    let now = clock.now();
    let mut new = Vec::with_capacity(req.certificates.len());
    for (i, c) in req.certificates.iter().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("certificates[{}]: {e}", i + 1);
        api::check_label(&c.label).map_err(|e| RpCertsRefused::BadRequest(at(&e)))?;
        let der = STANDARD
            .decode(c.csr.trim())
            .map_err(|_| RpCertsRefused::BadRequest(at(&"csr: not base64")))?;
        let public_key = csr::public_key_of_csr(&der)
            .map_err(|e: CsrError| RpCertsRefused::BadRequest(at(&e)))?;
        new.push(NewRpCertRecord {
            id: random_uuid(rng),
            label: c.label.clone(),
            public_key,
        });
    }
    let target = req.target_relying_party_uuid.to_ascii_lowercase();
    let credits = store
        .queue_rp_certs(&target, &admin.person, &new, now)
        .map_err(|e| match e {
            StoreError::Conflict(m) => RpCertsRefused::NoCredit(m),
            e => e.into(),
        })?;
    let certificates = new
        .iter()
        .map(|n| {
            Ok(RpCert {
                id: n.id.clone(),
                label: n.label.clone(),
                state: RpCertState::Queued,
                queued: time(now)?,
                serial_number: None,
                not_after: None,
                revoked: None,
            })
        })
        .collect::<Result<_, RpCertsRefused>>()?;
    Ok(Created {
        certificates,
        credits,
    })
}

/// A new voucher code `TV-XXXX-XXXX-XXXX` (60 random bits, Crockford's alphabet: no I, L, O,
/// U).
pub fn new_voucher_code(rng: Rng<'_>) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut groups = Vec::with_capacity(3);
    for _ in 0..3 {
        let mut b = [0u8; 4];
        rng.fill_bytes(&mut b);
        groups.push(
            b.iter()
                .map(|x| char::from(ALPHABET[usize::from(x % 32)]))
                .collect::<String>(),
        );
    }
    format!("TV-{}", groups.join("-"))
}

fn not_found_or(e: StoreError, not_found: RpCertsRefused) -> RpCertsRefused {
    match e {
        StoreError::NotFound(_) => not_found,
        StoreError::Conflict(m) => RpCertsRefused::WrongState(m),
        e => e.into(),
    }
}

/// `cancel`: a queued or running creation becomes a voucher (listed in full until it is
/// redeemed; looked up by the hash of its normalised form).
pub fn cancel(
    store: &dyn Store,
    admin: &Admin,
    req: &CertificateRequest,
    clock: &dyn Clock,
    rng: Rng<'_>,
) -> Result<Cancelled, RpCertsRefused> {
    req.validate().map_err(RpCertsRefused::BadRequest)?;
    authorise(store, admin, &req.target_relying_party_uuid)?;
    let now = clock.now();
    let code = new_voucher_code(rng);
    let voucher = NewVoucher {
        code_hash: voucher_code_hash(&code),
        code: code.clone(),
    };
    store
        .cancel_rp_cert(
            &req.target_relying_party_uuid.to_ascii_lowercase(),
            &req.certificate_id.to_ascii_lowercase(),
            &voucher,
            &admin.person,
            now,
        )
        .map_err(|e| not_found_or(e, RpCertsRefused::NoSuchCertificate))?;
    Ok(Cancelled {
        voucher: Voucher {
            code,
            issued: time(now)?,
        },
    })
}

/// `redeem`: one credit more for a voucher of the target, once.
pub fn redeem(
    store: &dyn Store,
    admin: &Admin,
    req: &RedeemRequest,
    clock: &dyn Clock,
) -> Result<Redeemed, RpCertsRefused> {
    req.validate().map_err(RpCertsRefused::BadRequest)?;
    authorise(store, admin, &req.target_relying_party_uuid)?;
    let credits = store
        .redeem_rp_voucher(
            &req.target_relying_party_uuid.to_ascii_lowercase(),
            &voucher_code_hash(&req.voucher_code),
            &admin.person,
            clock.now(),
        )
        .map_err(|e| match e {
            StoreError::NotFound(_) => RpCertsRefused::NoSuchVoucher,
            StoreError::Conflict(_) => RpCertsRefused::VoucherRedeemed,
            e => e.into(),
        })?;
    Ok(Redeemed { credits })
}

/// `revoke`: an issued certificate of the target (a second revocation answers it as it is).
pub fn revoke(
    store: &dyn Store,
    admin: &Admin,
    req: &CertificateRequest,
    clock: &dyn Clock,
) -> Result<RpCert, RpCertsRefused> {
    req.validate().map_err(RpCertsRefused::BadRequest)?;
    authorise(store, admin, &req.target_relying_party_uuid)?;
    let now = clock.now();
    let target = req.target_relying_party_uuid.to_ascii_lowercase();
    let id = req.certificate_id.to_ascii_lowercase();
    // Only by id here (the store also takes a serial, for the operator).
    if store.rp_cert(&target, &id)?.is_none() {
        return Err(RpCertsRefused::NoSuchCertificate);
    }
    let (rec, _) = store
        .revoke_rp_cert(Some(&target), &id, REASON_BY_ADMIN, &admin.person, now)
        .map_err(|e| not_found_or(e, RpCertsRefused::NoSuchCertificate))?;
    entry(&rec, now)
}

/// `certificate`: an issued certificate with `chain` (issuing CA, root; DER each).
pub fn certificate(
    store: &dyn Store,
    admin: &Admin,
    req: &CertificateRequest,
    chain: &[Vec<u8>],
    clock: &dyn Clock,
) -> Result<IssuedRpCert, RpCertsRefused> {
    req.validate().map_err(RpCertsRefused::BadRequest)?;
    authorise(store, admin, &req.target_relying_party_uuid)?;
    let rec = store
        .rp_cert(
            &req.target_relying_party_uuid.to_ascii_lowercase(),
            &req.certificate_id.to_ascii_lowercase(),
        )?
        .ok_or(RpCertsRefused::NoSuchCertificate)?;
    match rec.status {
        RpCertStatus::Ready | RpCertStatus::Revoked => {}
        RpCertStatus::Cancelled => return Err(RpCertsRefused::NoSuchCertificate),
        RpCertStatus::Queued | RpCertStatus::Creating => {
            return Err(RpCertsRefused::WrongState(
                "the certificate is not issued yet".into(),
            ));
        }
    }
    let der = rec
        .der
        .as_deref()
        .ok_or_else(|| RpCertsRefused::Internal("an issued certificate without DER".into()))?;
    Ok(IssuedRpCert {
        certificate: entry(&rec, clock.now())?,
        der: STANDARD.encode(der),
        chain: chain.iter().map(|c| STANDARD.encode(c)).collect(),
    })
}

#[cfg(test)]
#[path = "rp_certs_tests.rs"]
mod tests;

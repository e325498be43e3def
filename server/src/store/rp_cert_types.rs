//! The domain types of relying parties' software certificates (credits, administrators,
//! vouchers, certificate creations), backend-neutral. The area trait is
//! [`super::RpCerts`].

/// State of a certificate creation as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpCertStatus {
    /// Waiting for the worker pool.
    Queued,
    /// Claimed by a worker, being signed.
    Creating,
    /// Issued.
    Ready,
    /// Cancelled before it was issued (its credit became a voucher).
    Cancelled,
    /// Issued and revoked.
    Revoked,
}

impl RpCertStatus {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Creating => "CREATING",
            Self::Ready => "READY",
            Self::Cancelled => "CANCELLED",
            Self::Revoked => "REVOKED",
        }
    }

    /// The state with this stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "QUEUED" => Self::Queued,
            "CREATING" => Self::Creating,
            "READY" => Self::Ready,
            "CANCELLED" => Self::Cancelled,
            "REVOKED" => Self::Revoked,
            _ => return None,
        })
    }
}

/// One certificate creation (and, once issued, the certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpCertRecord {
    /// The creation's id (a UUID).
    pub id: String,
    /// The relying party the certificate is for.
    pub rp_uuid: String,
    /// The label the administrator gave.
    pub label: String,
    /// State.
    pub status: RpCertStatus,
    /// When it was queued (unix seconds).
    pub queued_at: i64,
    /// The public key from the CSR (SubjectPublicKeyInfo DER).
    pub public_key: Vec<u8>,
    /// The administrator who queued it (`PNO<CC>-<national id>`).
    pub admin: String,
    /// Serial, lower-case hex without leading zero bytes, once signed.
    pub serial_hex: Option<String>,
    /// The certificate (DER), once issued.
    pub der: Option<Vec<u8>>,
    /// End of validity (unix seconds), once issued.
    pub not_after: Option<i64>,
    /// Revocation time and RFC 5280 reason code, if revoked (also a creation cancelled
    /// while it was signed: its certificate is revoked at once).
    pub revoked: Option<(i64, i64)>,
}

/// A creation to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRpCertRecord {
    /// Its id (a UUID).
    pub id: String,
    /// The label (checked already).
    pub label: String,
    /// The CSR's public key (SubjectPublicKeyInfo DER, checked already).
    pub public_key: Vec<u8>,
}

/// A certificate a worker signed for a claimed creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedRpCertRecord {
    /// The creation's id.
    pub id: String,
    /// Serial, big-endian bytes as issued.
    pub serial: Vec<u8>,
    /// The certificate (DER).
    pub der: Vec<u8>,
    /// End of validity (unix seconds).
    pub not_after: i64,
}

/// What became of a signed certificate handed to [`super::RpCerts::complete_rp_certs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpCertCompletion {
    /// Stored: the creation is READY.
    Issued,
    /// The creation was cancelled meanwhile: the certificate is recorded as revoked and
    /// never handed out.
    Discarded,
}

/// A voucher as stored (the code and the hash of its normalised form, the lookup key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherRecord {
    /// The code, e.g. `TV-7KQ2-M9XD-4HPA` (redeemable only by the relying party's
    /// administrators, so listed in full).
    pub code: String,
    /// The relying party whose credit it is.
    pub rp_uuid: String,
    /// The cancelled creation it replaces.
    pub cert_id: String,
    /// When it was issued.
    pub issued_at: i64,
    /// When it was redeemed, if it was.
    pub redeemed_at: Option<i64>,
}

/// A voucher code as the store receives it on cancellation: the code and the hash of its
/// normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVoucher {
    /// SHA-256 of the normalised code ([`voucher_code_hash`]).
    pub code_hash: Vec<u8>,
    /// The code.
    pub code: String,
}

/// A voucher code normalised for lookup: upper case, letters and digits only (`TV-7kq2 m9xd`
/// and `TV7KQ2M9XD` are the same code).
pub fn normalise_voucher_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The stored hash of a voucher code (normalised first).
pub fn voucher_code_hash(code: &str) -> Vec<u8> {
    super::secret_hash(normalise_voucher_code(code).as_bytes())
}

/// Checks the form of an administrator's identity: `PNO<CC>-<national id>` (ETSI EN 319
/// 412-1 semantics identifier, as the person's AUTH certificate names them).
pub fn check_admin_identity(person: &str) -> Result<(), String> {
    let ok = person.len() <= 64
        && person.strip_prefix("PNO").is_some_and(|rest| {
            let (cc, id) = rest.split_at_checked(2).unwrap_or(("", ""));
            cc.bytes().all(|b| b.is_ascii_uppercase())
                && cc.len() == 2
                && id.strip_prefix('-').is_some_and(|id| {
                    !id.is_empty()
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{person:?} is not an identity like PNOEE-30303039914 (PNO, country, '-', national id)"
        ))
    }
}

/// The identity of a person as an administrator: `PNO<CC>-<national id>`.
pub fn admin_identity(country: &str, national_id: &str) -> String {
    format!("PNO{country}-{national_id}")
}

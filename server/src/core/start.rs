//! Starting a transaction: one function for both relying-party APIs.
//!
//! ```text
//!  gRPC RelyingParty ─┐  StartRequest              ┌─▶ Started (id, VC, accounts to
//!                     ├─▶ (target, kind, flow, ──▶ start ──┤     notify, REST session)
//!  REST RP API v3 ────┘   message, VC rule, api)   └─▶ StartRefused (no such account,
//!                                │                          no usable key, bad linked
//!                      store, clock, RNG                    session, ...)
//! ```
//!
//! The steps, in order: an identical REST request inside the idempotency window gets its
//! session again; the target is resolved to accounts; for REST, an account needs a valid
//! certificate of the requested level, and a linked signature needs a completed device-link
//! certificate choice of the same document; the accounts whose key pair is usable (not
//! disabled, not locked, account not expired) get the message encoded for their composite
//! modulus; the verification code is derived by the request's rule; the transaction (and
//! the REST session) is stored. Where the two APIs differ (an expired account, no usable
//! key), [`Api`] says which rule applies; the differences are kept as they were.

use tandem_client_core::encoding::{self, HashAlgorithm, SignatureScheme};
use tandem_client_core::hazmat;
use tandem_client_core::types::KeyType;
use tandem_client_core::vc as core_vc;
use tandem_rp::api::level::CertificateLevel;
use tandem_rp::api::{session, vc};

use super::{Clock, Rng, random_uuid};
use crate::store::{
    AccountState, EndResult, KeyPairStatus, RpSession, Store, StoreError, TxKind, TxRecord, TxState,
};

mod rp_api;
#[cfg(test)]
mod tests;

use rp_api::{check_linked, rest_session, suitable_accounts};

/// The configured values a start depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartSettings {
    /// Lifetime of a transaction unless the request names one (`timeouts.transaction_seconds`).
    pub transaction_seconds: u32,
    /// How long an identical REST request gets the same session (`rp_api.idempotency_seconds`).
    pub idempotency_seconds: i64,
}

impl StartSettings {
    /// The start settings of a server configuration.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            transaction_seconds: config.timeouts.transaction_seconds,
            idempotency_seconds: config.rp_api.idempotency_seconds,
        }
    }
}

/// The kind of a person's national identifier (ETSI EN 319 412-1 semantics identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierType {
    /// `PNO`: national personal number; the only kind accounts are registered with.
    Pno,
    /// `PAS`: passport number (no accounts here).
    Pas,
    /// `IDC`: national identity card number (no accounts here).
    Idc,
}

/// A person, as a semantics identifier names them (`PNOEE-30303039914`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonId {
    /// PNO, PAS or IDC.
    pub id_type: IdentifierType,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// The identifier within the country.
    pub national_id: String,
}

impl PersonId {
    /// A national personal number (`PNO<country>-<national_id>`).
    pub fn pno(country: impl Into<String>, national_id: impl Into<String>) -> Self {
        Self {
            id_type: IdentifierType::Pno,
            country: country.into(),
            national_id: national_id.into(),
        }
    }
}

/// Whom a transaction is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Whoever presents the device link (REST device-link flows only).
    Anonymous,
    /// The account with this document number.
    Document(String),
    /// Every active account of a person.
    Person(PersonId),
    /// The account with this document number, after the device-link certificate choice
    /// `session_id` of the same relying party chose it (REST linked signature).
    Linked {
        /// The document number.
        document: String,
        /// The certificate choice's session id (`linkedSessionID`).
        session_id: String,
    },
}

/// How the app learns of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The accounts' apps are notified now (gRPC; REST notification flows).
    Notification,
    /// The app presents a device link (QR, Web2App, App2App) and claims the session then.
    DeviceLink,
    /// A notification signature linked to a device-link certificate choice.
    Linked,
}

impl Flow {
    /// The name stored with a REST session.
    pub(crate) fn stored_name(self) -> &'static str {
        match self {
            Self::Notification => session::FLOW_NOTIFICATION,
            Self::DeviceLink => session::FLOW_DEVICE_LINK,
            Self::Linked => session::FLOW_LINKED,
        }
    }
}

/// A digest to sign and how to encode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestToSign {
    /// The hash the digest was made with.
    pub hash: HashAlgorithm,
    /// PKCS#1 v1.5 or PSS.
    pub scheme: SignatureScheme,
    /// The digest.
    pub digest: Vec<u8>,
}

/// What the device is asked to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A digest the server encodes per key pair (gRPC; REST RAW_DIGEST_SIGNATURE).
    Digest(DigestToSign),
    /// The device builds and encodes the message itself (REST ACSP_V2 authentication):
    /// only the hash and the scheme are recorded.
    DeviceBuilt {
        /// The hash of the ACSP_V2 payload.
        hash: HashAlgorithm,
        /// PKCS#1 v1.5 or PSS.
        scheme: SignatureScheme,
    },
    /// Nothing to sign (certificate choice).
    Nothing,
}

/// How the verification code is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcRule {
    /// From the digest to sign (gRPC).
    FromDigest,
    /// From the relying party's `rpChallenge` (Base64), as the RP API v3 says for
    /// notification authentication; empty if it is not Base64.
    FromRpChallenge(String),
    /// Four random digits, returned to the relying party (REST notification signature).
    RandomNumeric4,
    /// No code (device-link flows: the app was shown the link; certificate choice).
    None,
}

impl VcRule {
    /// The RP API v3 rule for a session of `kind` in `flow`: notification authentication
    /// derives the code from the `rpChallenge`, notification signing draws four digits, and
    /// device-link, linked and certificate-choice sessions have none.
    pub fn rp_api(kind: TxKind, flow: Flow, rp_challenge: Option<&str>) -> Self {
        match (kind, flow) {
            (_, Flow::DeviceLink) => Self::None,
            (TxKind::Authentication, _) => match rp_challenge {
                Some(c) => Self::FromRpChallenge(c.to_owned()),
                None => Self::None,
            },
            (TxKind::Signature, Flow::Notification) => Self::RandomNumeric4,
            _ => Self::None,
        }
    }
}

/// The REST side of a start (RP API v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestStart {
    /// `relyingPartyUUID` of the (admitted) relying party.
    pub rp_uuid: String,
    /// Hash of the request as sent: the same hash inside the idempotency window gets the
    /// same session.
    pub request_hash: Vec<u8>,
    /// `certificateLevel`: accounts need a valid certificate reaching it.
    pub certificate_level: CertificateLevel,
    /// The request values the app and the status answer need, stored as given.
    pub params: String,
}

/// Which API starts the transaction, where their rules differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// Our gRPC RelyingParty service: an expired account counts as one whose key is not
    /// usable, and no usable key refuses the start ([`StartRefused::NoUsableKey`]).
    Grpc,
    /// The RP API v3: identical requests are idempotent, expired accounts are not found,
    /// accounts need a certificate of the requested level, and a notification session with
    /// no usable key is stored and ended at once as `DOCUMENT_UNUSABLE`.
    RpApiV3(RestStart),
}

/// A request to start a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// Authentication, signature or certificate choice. Authentication uses the AUTH key
    /// pair, the others the SIGN key pair.
    pub kind: TxKind,
    /// Whom it is for.
    pub target: Target,
    /// How the app learns of it.
    pub flow: Flow,
    /// What is signed.
    pub message: Message,
    /// How the verification code is made.
    pub vc: VcRule,
    /// Whether the app offers a choice of three codes (only when there is a code).
    pub vc_choice: bool,
    /// The relying party's name as the app shows it.
    pub relying_party_name: String,
    /// The text the app shows.
    pub display_text: String,
    /// Lifetime in seconds; `None`: [`StartSettings::transaction_seconds`].
    pub timeout_seconds: Option<u32>,
    /// Which API asks.
    pub api: Api,
}

impl StartRequest {
    /// The key pair the transaction uses.
    pub fn key_type(&self) -> KeyType {
        key_type_of(self.kind)
    }
}

/// The key pair a kind of transaction uses: AUTH for authentication, SIGN otherwise.
pub fn key_type_of(kind: TxKind) -> KeyType {
    match kind {
        TxKind::Authentication => KeyType::Auth,
        TxKind::Signature | TxKind::CertificateChoice => KeyType::Sign,
    }
}

/// A started (or, for a repeated REST request, found) transaction.
#[derive(Debug, Clone)]
pub struct Started {
    /// The transaction id (the REST `sessionID`).
    pub transaction_id: String,
    /// The verification code (empty when the rule gives none).
    pub verification_code: String,
    /// The accounts whose apps are to be notified.
    pub notify: Vec<String>,
    /// The REST session (new or repeated); `None` for gRPC.
    pub session: Option<RpSession>,
    /// Whether this is the session of an identical earlier request.
    pub repeated: bool,
    /// Set when the transaction was ended at once (`DOCUMENT_UNUSABLE`).
    pub ended: Option<EndResult>,
}

/// Why a transaction was not started. Nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartRefused {
    /// The target names no active account (REST: or only expired ones).
    #[error("no such account")]
    NoSuchAccount,
    /// No account of the target has a valid certificate of the requested level (REST).
    #[error("no certificate of the requested level")]
    NoSuitableCertificate,
    /// Every account's key pair is locked or disabled, or the account expired (gRPC).
    #[error("the {0} key is locked, disabled or expired")]
    NoUsableKey(KeyType),
    /// The linked session is not a completed device-link certificate choice of this
    /// relying party for this document.
    #[error(
        "linkedSessionID does not name a completed device-link certificate choice of this document"
    )]
    BadLinkedSession,
    /// The request combines parts that do not go together (a handler's mistake).
    #[error("inconsistent start request: {0}")]
    Inconsistent(&'static str),
    /// The digest could not be encoded for a key pair.
    #[error("encoding the message: {0}")]
    Encoding(String),
    /// A stored certificate could not be read.
    #[error("stored certificate: {0}")]
    Certificate(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a transaction (module documentation), or finds the session of an identical REST
/// request inside the idempotency window.
pub fn start(
    store: &dyn Store,
    settings: &StartSettings,
    req: &StartRequest,
    clock: &dyn Clock,
    rng: Rng<'_>,
) -> Result<Started, StartRefused> {
    check_consistent(req)?;
    let now_ms = clock.now_ms();
    let now = clock.now();
    let rest = match &req.api {
        Api::RpApiV3(rest) => Some(rest),
        Api::Grpc => None,
    };
    if let Some(rest) = rest
        && let Some(prev) = store.idempotent_session(
            &rest.rp_uuid,
            &rest.request_hash,
            now_ms - rest_window_ms(settings),
        )?
    {
        let tx = store.transaction(&prev.transaction_id, now)?;
        return Ok(Started {
            transaction_id: prev.transaction_id.clone(),
            verification_code: tx.verification_code,
            notify: Vec::new(),
            session: Some(prev),
            repeated: true,
            ended: None,
        });
    }
    let key_type = req.key_type();
    let (mut accounts, restriction) = resolve_target(store, &req.target, rest.is_some(), now)?;
    if let Some(rest) = rest
        && req.target != Target::Anonymous
    {
        // Only accounts whose certificate reaches the requested level are asked.
        accounts = suitable_accounts(store, accounts, key_type, rest.certificate_level)?;
    }
    if let (
        Some(rest),
        Target::Linked {
            document,
            session_id,
        },
    ) = (rest, &req.target)
    {
        check_linked(store, rest, document, session_id, now)?;
    }
    let mut targets = Vec::new();
    if req.flow != Flow::DeviceLink {
        for acc in &accounts {
            if acc.expires_at <= now {
                continue;
            }
            let kp = store.key_pair(&acc.id, key_type)?;
            if kp.status == KeyPairStatus::Disabled || kp.is_locked(now) {
                continue;
            }
            let x = match &req.message {
                Message::Digest(d) => encode_message(d, &kp.composite_modulus, rng)?,
                Message::DeviceBuilt { .. } | Message::Nothing => Vec::new(),
            };
            targets.push((acc.id.clone(), x));
        }
        if targets.is_empty() && rest.is_none() {
            return Err(StartRefused::NoUsableKey(key_type));
        }
    }
    let verification_code = verification_code(req, rng)?;
    let vc_choices = if req.vc_choice && !verification_code.is_empty() {
        core_vc::vc_choices(&verification_code, &mut &mut *rng)
    } else {
        Vec::new()
    };
    let id = random_uuid(rng);
    let tx = transaction_record(req, settings, &id, &verification_code, vc_choices, now);
    let session = match rest {
        None => {
            store.create_transaction(&tx, &targets)?;
            None
        }
        Some(rest) => {
            let s = rest_session(req, rest, &id, restriction, now_ms, rng);
            store.create_rp_session(&tx, &targets, &s)?;
            Some(s)
        }
    };
    let mut ended = None;
    if rest.is_some() && req.flow != Flow::DeviceLink && targets.is_empty() {
        // Every account of the person has this key locked or disabled.
        store.end_transaction(&id, EndResult::DocumentUnusable, None, now, None)?;
        ended = Some(EndResult::DocumentUnusable);
    }
    Ok(Started {
        transaction_id: id,
        verification_code,
        notify: targets.into_iter().map(|(a, _)| a).collect(),
        session,
        repeated: false,
        ended,
    })
}

/// The encoded message `x` of a digest for one composite modulus (PSS draws its salt from
/// `rng`).
pub fn encode_message(
    d: &DigestToSign,
    composite_modulus: &[u8],
    rng: Rng<'_>,
) -> Result<Vec<u8>, StartRefused> {
    let bits = hazmat::bit_length(composite_modulus);
    match d.scheme {
        SignatureScheme::Pkcs1v15 => encoding::encode_pkcs1v15(d.hash, &d.digest, bits),
        SignatureScheme::Pss => encoding::encode_pss(d.hash, &d.digest, bits, &mut &mut *rng),
    }
    .map_err(|e| StartRefused::Encoding(e.to_string()))
}

/// Combinations no handler should build: caught before anything is read or stored.
fn check_consistent(req: &StartRequest) -> Result<(), StartRefused> {
    let rest = matches!(req.api, Api::RpApiV3(_));
    let inconsistent = match (&req.target, req.flow) {
        (Target::Anonymous, Flow::DeviceLink) if rest => None,
        (Target::Anonymous, _) => Some("an anonymous target needs a REST device-link flow"),
        (Target::Linked { .. }, Flow::Linked) if rest => None,
        (Target::Linked { .. }, _) | (_, Flow::Linked) => {
            Some("a linked target needs the REST linked flow")
        }
        (_, Flow::DeviceLink) if !rest => Some("device links are a REST flow"),
        _ => None,
    };
    let inconsistent = inconsistent.or_else(|| {
        (req.vc == VcRule::FromDigest && !matches!(req.message, Message::Digest(_)))
            .then_some("a code from the digest needs a digest")
    });
    inconsistent.map_or(Ok(()), |m| Err(StartRefused::Inconsistent(m)))
}

fn rest_window_ms(settings: &StartSettings) -> i64 {
    settings.idempotency_seconds.saturating_mul(1000)
}

/// The accounts a target names, and the REST session's restriction for it. `rest`: expired
/// accounts are not found (gRPC keeps them and finds their key unusable).
fn resolve_target(
    store: &dyn Store,
    target: &Target,
    rest: bool,
    now: i64,
) -> Result<(Vec<crate::store::Account>, Option<String>), StartRefused> {
    match target {
        Target::Anonymous => Ok((Vec::new(), None)),
        Target::Document(doc) | Target::Linked { document: doc, .. } => {
            let acc = store
                .account_by_document(doc)
                .map_err(|_| StartRefused::NoSuchAccount)?;
            if acc.state != AccountState::Active || (rest && acc.expires_at <= now) {
                return Err(StartRefused::NoSuchAccount);
            }
            Ok((vec![acc], Some(format!("document:{doc}"))))
        }
        Target::Person(p) => {
            if p.id_type != IdentifierType::Pno {
                return Err(StartRefused::NoSuchAccount);
            }
            let accounts: Vec<_> = store
                .active_accounts_of(&p.country, &p.national_id)?
                .into_iter()
                .filter(|a| !rest || a.expires_at > now)
                .collect();
            if accounts.is_empty() {
                return Err(StartRefused::NoSuchAccount);
            }
            Ok((
                accounts,
                Some(format!("person:{}:{}", p.country, p.national_id)),
            ))
        }
    }
}

fn verification_code(req: &StartRequest, rng: Rng<'_>) -> Result<String, StartRefused> {
    Ok(match &req.vc {
        VcRule::FromDigest => match &req.message {
            Message::Digest(d) => core_vc::verification_code(&d.digest),
            _ => return Err(StartRefused::Inconsistent("no digest for the code")),
        },
        VcRule::FromRpChallenge(c) => vc::authentication_vc_b64(c).unwrap_or_default(),
        VcRule::RandomNumeric4 => vc::generate_numeric4(&mut &mut *rng),
        VcRule::None => String::new(),
    })
}

fn transaction_record(
    req: &StartRequest,
    settings: &StartSettings,
    id: &str,
    verification_code: &str,
    vc_choices: Vec<String>,
    now: i64,
) -> TxRecord {
    let (hash, scheme, digest) = match &req.message {
        Message::Digest(d) => (d.hash, d.scheme, d.digest.clone()),
        Message::DeviceBuilt { hash, scheme } => (*hash, *scheme, Vec::new()),
        Message::Nothing => (HashAlgorithm::Sha256, SignatureScheme::Pss, Vec::new()),
    };
    let timeout = req.timeout_seconds.unwrap_or(settings.transaction_seconds);
    TxRecord {
        id: id.to_owned(),
        kind: req.kind,
        relying_party: req.relying_party_name.clone(),
        key_type: req.key_type(),
        hash,
        scheme,
        digest,
        display_text: req.display_text.clone(),
        verification_code: verification_code.to_owned(),
        vc_choices,
        state: TxState::Running,
        end_result: None,
        signature: None,
        answered_by: None,
        created_at: now,
        expires_at: now + i64::from(timeout),
    }
}

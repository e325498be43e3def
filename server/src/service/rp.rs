//! The relying-party gRPC service: start authentication / signature transactions for a
//! document number or a person, query their status.

use std::sync::Arc;

use rand_core::OsRng;
use tandem_client_core::encoding::{self, SignatureScheme};
use tandem_client_core::types::KeyType;
use tandem_client_core::{hazmat, vc};
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_server::RelyingParty;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use super::convert::{self, ident};
use super::{ApiError, App, now};
use crate::store::{self, AccountState, KeyPairStatus, TxKind, TxRecord, TxState};

/// Longest display text (as the Smart-ID API's `displayText200`).
const MAX_DISPLAY_TEXT: usize = 200;

/// The relying-party service.
#[derive(Debug, Clone)]
pub struct RelyingPartyService {
    app: Arc<App>,
}

impl RelyingPartyService {
    /// Wraps the shared state.
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }

    async fn start(
        &self,
        req: pb::StartTransactionRequest,
        kind: &'static str,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        let key_type = if kind == "AUTHENTICATION" {
            KeyType::Auth
        } else {
            KeyType::Sign
        };
        let (response, targets) = self
            .app
            .blocking(move |app| start_transaction(app, &req, kind, key_type))
            .await
            .map_err(ApiError::into_status)?;
        for account_id in targets {
            self.app.notify(&account_id);
        }
        Ok(Response::new(response))
    }
}

/// `PNO<CC>-<national id>` → (country, national id).
pub(super) fn parse_person_id(s: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::InvalidArgument("person_id must look like PNOEE-30303039914".into());
    let rest = s.strip_prefix("PNO").ok_or_else(bad)?;
    let (cc, id) = rest.split_once('-').ok_or_else(bad)?;
    if cc.len() != 2
        || !cc.chars().all(|c| c.is_ascii_uppercase())
        || id.is_empty()
        || id.len() > 32
    {
        return Err(bad());
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    Ok((cc.to_owned(), id.to_owned()))
}

/// Whom a start request names, checked in form only.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StartTarget<'a> {
    Document(&'a str),
    Person {
        country: String,
        national_id: String,
    },
}

/// What a start request asks for, after the checks that need no lookup.
#[derive(Debug)]
pub(super) struct CheckedStart<'a> {
    pub(super) hash: tandem_client_core::encoding::HashAlgorithm,
    pub(super) scheme: SignatureScheme,
    pub(super) timeout: u32,
    pub(super) target: StartTarget<'a>,
}

/// The checks of a start request that need no lookup: names and texts, hash, digest length,
/// scheme, timeout (0: the configured default) and the form of the target.
pub(super) fn check_start<'a>(
    req: &'a pb::StartTransactionRequest,
    timeouts: &crate::config::Timeouts,
) -> Result<CheckedStart<'a>, ApiError> {
    if req.relying_party_name.trim().is_empty() || req.relying_party_name.chars().count() > 100 {
        return Err(ApiError::InvalidArgument(
            "relying_party_name must be 1 to 100 characters".into(),
        ));
    }
    if req.display_text.chars().count() > MAX_DISPLAY_TEXT {
        return Err(ApiError::InvalidArgument(format!(
            "display_text is longer than {MAX_DISPLAY_TEXT} characters"
        )));
    }
    let hash = convert::hash(req.hash)?;
    if req.digest.len() != hash.output_len() {
        return Err(ApiError::InvalidArgument(format!(
            "digest must be {} bytes for the chosen hash",
            hash.output_len()
        )));
    }
    let scheme = convert::scheme(req.scheme)?;
    let timeout = match req.timeout_seconds {
        0 => timeouts.transaction_seconds,
        t if t > timeouts.max_transaction_seconds => {
            return Err(ApiError::InvalidArgument(format!(
                "timeout_seconds must be at most {}",
                timeouts.max_transaction_seconds
            )));
        }
        t => t,
    };
    let target = match &req.target {
        Some(pb::start_transaction_request::Target::DocumentNumber(doc)) => {
            if doc.is_empty() || doc.len() > 64 {
                return Err(ApiError::InvalidArgument(
                    "document_number is malformed".into(),
                ));
            }
            StartTarget::Document(doc)
        }
        Some(pb::start_transaction_request::Target::PersonId(pid)) => {
            let (country, national_id) = parse_person_id(pid)?;
            StartTarget::Person {
                country,
                national_id,
            }
        }
        None => {
            return Err(ApiError::InvalidArgument(
                "document_number or person_id is required".into(),
            ));
        }
    };
    Ok(CheckedStart {
        hash,
        scheme,
        timeout,
        target,
    })
}

fn start_transaction(
    app: &App,
    req: &pb::StartTransactionRequest,
    kind: &'static str,
    key_type: KeyType,
) -> Result<(pb::StartTransactionResponse, Vec<String>), ApiError> {
    let CheckedStart {
        hash,
        scheme,
        timeout,
        target,
    } = check_start(req, &app.config.timeouts)?;
    let accounts = match target {
        StartTarget::Document(doc) => {
            let acc = app
                .store
                .account_by_document(doc)
                .map_err(|_| ApiError::NotFound("no account with that document number".into()))?;
            if acc.state != AccountState::Active {
                return Err(ApiError::NotFound(
                    "no account with that document number".into(),
                ));
            }
            vec![acc]
        }
        StartTarget::Person {
            country,
            national_id,
        } => app.store.active_accounts_of(&country, &national_id)?,
    };
    let now = now();
    let mut targets = Vec::new();
    for acc in &accounts {
        if acc.expires_at <= now {
            continue;
        }
        let kp = app.store.key_pair(&acc.id, key_type)?;
        if kp.status == KeyPairStatus::Disabled || kp.is_locked(now) {
            continue;
        }
        let bits = hazmat::bit_length(&kp.composite_modulus);
        let x = match scheme {
            SignatureScheme::Pkcs1v15 => encoding::encode_pkcs1v15(hash, &req.digest, bits),
            SignatureScheme::Pss => encoding::encode_pss(hash, &req.digest, bits, &mut OsRng),
        }
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        targets.push((acc.id.clone(), x));
    }
    if targets.is_empty() {
        return Err(if accounts.is_empty() {
            ApiError::NotFound("no active account for that person".into())
        } else {
            ApiError::FailedPrecondition(format!(
                "the {key_type} key is locked, disabled or expired"
            ))
        });
    }
    let verification_code = vc::verification_code(&req.digest);
    let vc_choices = if req.vc_choice {
        vc::vc_choices(&verification_code, &mut OsRng)
    } else {
        Vec::new()
    };
    let id = uuid::Uuid::new_v4().to_string();
    app.store.create_transaction(
        &TxRecord {
            id: id.clone(),
            kind: if kind == "AUTHENTICATION" {
                TxKind::Authentication
            } else {
                TxKind::Signature
            },
            relying_party: req.relying_party_name.clone(),
            key_type,
            hash,
            scheme,
            digest: req.digest.clone(),
            display_text: req.display_text.clone(),
            verification_code: verification_code.clone(),
            vc_choices,
            state: TxState::Running,
            end_result: None,
            signature: None,
            answered_by: None,
            created_at: now,
            expires_at: now + i64::from(timeout),
        },
        &targets,
    )?;
    info!(transaction_id = %id, kind, devices = targets.len(), "transaction started");
    Ok((
        pb::StartTransactionResponse {
            transaction_id: id,
            verification_code,
        },
        targets.into_iter().map(|(a, _)| a).collect(),
    ))
}

#[tonic::async_trait]
impl RelyingParty for RelyingPartyService {
    #[instrument(skip_all)]
    async fn start_authentication(
        &self,
        request: Request<pb::StartTransactionRequest>,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        self.start(request.into_inner(), "AUTHENTICATION").await
    }

    #[instrument(skip_all)]
    async fn start_signature(
        &self,
        request: Request<pb::StartTransactionRequest>,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        self.start(request.into_inner(), "SIGNATURE").await
    }

    async fn get_transaction_status(
        &self,
        request: Request<pb::GetTransactionStatusRequest>,
    ) -> Result<Response<pb::TransactionStatus>, Status> {
        let req = request.into_inner();
        self.app
            .blocking(move |app| {
                ident("transaction_id", &req.transaction_id)?;
                let t = app.store.transaction(&req.transaction_id, now())?;
                let mut status = pb::TransactionStatus {
                    state: match t.state {
                        TxState::Running => pb::TransactionState::Running,
                        TxState::Complete => pb::TransactionState::Complete,
                    } as i32,
                    end_result: t.end_result.map(convert::end_result_to_pb).unwrap_or(0),
                    scheme: convert::scheme_to_pb(t.scheme),
                    hash: convert::hash_to_pb(t.hash),
                    kind: if t.kind == TxKind::Authentication {
                        pb::TransactionKind::Authentication
                    } else {
                        pb::TransactionKind::Signature
                    } as i32,
                    ..Default::default()
                };
                if t.end_result == Some(store::EndResult::Ok)
                    && let Some(account_id) = &t.answered_by
                {
                    let acc = app.store.account(account_id)?;
                    let kp = app.store.key_pair(account_id, t.key_type)?;
                    status.signature = t.signature.clone().unwrap_or_default();
                    status.document_number = acc.document_number;
                    let certs = app.store.certificates_of(account_id)?;
                    status.key_pair = Some(convert::key_pair_info(&kp, &certs)?);
                }
                Ok(status)
            })
            .await
            .map(Response::new)
            .map_err(ApiError::into_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids() {
        assert_eq!(
            parse_person_id("PNOEE-30303039914").unwrap(),
            ("EE".into(), "30303039914".into())
        );
        for bad in [
            "",
            "PNO",
            "PNOEE",
            "PNOee-1",
            "PNOEE-",
            "XXXEE-1",
            "PNOEE-1;DROP",
        ] {
            assert!(parse_person_id(bad).is_err(), "{bad}");
        }
    }
}

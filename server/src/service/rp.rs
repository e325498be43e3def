//! The relying-party gRPC service: start authentication / signature transactions for a
//! document number or a person, query their status.

use std::sync::Arc;

use rand_core::OsRng;
use tandem_client_core::encoding::SignatureScheme;
use tandem_proto::v1 as pb;
use tandem_proto::v1::relying_party_server::RelyingParty;
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use super::convert::{self, ident};
use super::{ApiError, App, now};
use crate::core::SystemClock;
use crate::core::start::{
    self, Api, DigestToSign, Flow, Message, PersonId, StartRefused, StartRequest, StartSettings,
    Target, VcRule,
};
use crate::store::{self, TxKind, TxState};

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
        kind: TxKind,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        let (response, targets) = self
            .app
            .blocking(move |app| start_transaction(app, &req, kind))
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

/// Converts a checked request to the core's start request, starts, and maps a refusal to
/// its status: NotFound (no active account), FailedPrecondition (no usable key).
fn start_transaction(
    app: &App,
    req: &pb::StartTransactionRequest,
    kind: TxKind,
) -> Result<(pb::StartTransactionResponse, Vec<String>), ApiError> {
    let CheckedStart {
        hash,
        scheme,
        timeout,
        target,
    } = check_start(req, &app.config.timeouts)?;
    let (target, not_found) = match target {
        StartTarget::Document(doc) => (
            Target::Document(doc.to_owned()),
            "no account with that document number",
        ),
        StartTarget::Person {
            country,
            national_id,
        } => (
            Target::Person(PersonId::pno(country, national_id)),
            "no active account for that person",
        ),
    };
    let request = StartRequest {
        kind,
        target,
        flow: Flow::Notification,
        message: Message::Digest(DigestToSign {
            hash,
            scheme,
            digest: req.digest.clone(),
        }),
        vc: VcRule::FromDigest,
        vc_choice: req.vc_choice,
        relying_party_name: req.relying_party_name.clone(),
        display_text: req.display_text.clone(),
        timeout_seconds: Some(timeout),
        api: Api::Grpc,
    };
    let settings = StartSettings::of(&app.config);
    let started = start::start(&*app.store, &settings, &request, &SystemClock, &mut OsRng)
        .map_err(|e| match e {
            StartRefused::NoSuchAccount => ApiError::NotFound(not_found.into()),
            StartRefused::NoUsableKey(_) => ApiError::FailedPrecondition(e.to_string()),
            StartRefused::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        })?;
    info!(
        transaction_id = %started.transaction_id,
        kind = kind.as_str(),
        devices = started.notify.len(),
        "transaction started"
    );
    Ok((
        pb::StartTransactionResponse {
            transaction_id: started.transaction_id,
            verification_code: started.verification_code,
        },
        started.notify,
    ))
}

#[tonic::async_trait]
impl RelyingParty for RelyingPartyService {
    #[instrument(skip_all)]
    async fn start_authentication(
        &self,
        request: Request<pb::StartTransactionRequest>,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        self.start(request.into_inner(), TxKind::Authentication)
            .await
    }

    #[instrument(skip_all)]
    async fn start_signature(
        &self,
        request: Request<pb::StartTransactionRequest>,
    ) -> Result<Response<pb::StartTransactionResponse>, Status> {
        self.start(request.into_inner(), TxKind::Signature).await
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

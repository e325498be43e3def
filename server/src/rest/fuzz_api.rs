//! Entry points for the coverage-guided fuzz targets in `fuzz/` (docs/FUZZING.md). Not an
//! API: it runs the REST handlers' own parsing and validation functions on untrusted bytes,
//! in the order the handlers run them, up to the first database access.

use axum::body::Bytes;
use axum::extract::Query;
use axum::http::Uri;
use tandem_rp::api::problem::Problem;
use tandem_rp::api::session::SessionParams;
use tandem_rp::api::types as t;

use super::{
    Kind, StatusQuery, Target, TestAccountScan, check_document, core_request, parse_etsi,
    parse_start, request_hash, status_timeout,
};
use crate::core::start::Flow;
use crate::service::rp_device::raw_digest_message;
use crate::store::TxKind;

/// The session-start routes of [`super::router`]: the request kind and which path
/// parameter it has (`None`: anonymous; `Some(true)`: document number; `Some(false)`: ETSI
/// semantics identifier).
const START_ROUTES: [(Kind, Option<bool>); 12] = [
    (Kind::AuthDeviceLink, None),
    (Kind::AuthDeviceLink, Some(false)),
    (Kind::AuthDeviceLink, Some(true)),
    (Kind::AuthNotification, Some(false)),
    (Kind::AuthNotification, Some(true)),
    (Kind::SignDeviceLink, Some(false)),
    (Kind::SignDeviceLink, Some(true)),
    (Kind::SignNotification, Some(false)),
    (Kind::SignNotification, Some(true)),
    (Kind::SignLinked, Some(true)),
    (Kind::CertDeviceLink, None),
    (Kind::CertNotification, Some(false)),
];

/// Number of routes [`start_request`] can pick from (the start routes plus
/// `signature/certificate/{doc}` and `test-accounts/device-link`).
pub const ROUTES: usize = START_ROUTES.len() + 2;

/// A composite modulus length (bits) for the RAW_DIGEST_SIGNATURE encoding check.
const COMPOSITE_BITS: usize = 4096;

/// A POST body for route `route % ROUTES` with path parameter `path`: parsed and validated
/// as the handler does before it touches the store. For an accepted session start it also
/// checks what the session start would check next (document number, ETSI identifier,
/// interactions), that the session parameters survive their stored JSON form unchanged, and
/// that a signing request's digest encodes for a composite key.
///
/// # Panics
/// When a property does not hold (that is what the fuzzer looks for).
pub fn start_request(route: usize, path: &str, body: &[u8]) -> Result<(), Problem> {
    let route = route % ROUTES;
    let body = Bytes::copy_from_slice(body);
    if route == START_ROUTES.len() {
        // POST {base}/signature/certificate/{doc}
        let r: t::SigningCertificateRequest = super::parse(&body)?;
        r.validate()?;
        return check_document(path);
    }
    if route == START_ROUTES.len() + 1 {
        // POST {base}/test-accounts/device-link: the link itself is the device-link target's.
        let _: TestAccountScan = super::parse(&body)?;
        return Ok(());
    }
    let (kind, document) = START_ROUTES[route];
    let target = match document {
        None => Target::Anonymous,
        Some(true) => Target::Document(path.to_owned()),
        Some(false) => Target::Etsi(path.to_owned()),
    };
    let hash = request_hash(&format!("{kind:?}:{target:?}"), &body);
    let (uuid, _name, start) = parse_start(kind, target, &body, hash.clone())?;
    assert_eq!(uuid, start.rp_uuid);
    assert_eq!(start.request_hash, hash);
    match &start.target {
        Target::Anonymous => {}
        Target::Document(doc) | Target::Linked { document: doc, .. } => check_document(doc)?,
        Target::Etsi(id) => {
            parse_etsi(id)?;
        }
    }
    let params = &start.params;
    if !params.interactions.is_empty() {
        let flow = match start.flow {
            Flow::DeviceLink => t::InteractionFlow::DeviceLink,
            Flow::Linked => t::InteractionFlow::LinkedNotification,
            Flow::Notification => t::InteractionFlow::Notification,
        };
        // Validation accepted them, so the session start must too.
        let list = t::decode_interactions(&params.interactions, flow)
            .unwrap_or_else(|e| panic!("validated interactions refused at start: {e}"));
        assert!(!list.is_empty());
    }
    // Stored as JSON in the session row and read back for every device answer.
    let back = SessionParams::parse(&params.to_json())
        .unwrap_or_else(|e| panic!("session parameters do not read back: {e}"));
    assert_eq!(
        &back, params,
        "session parameters changed in their stored form"
    );
    // What the handler hands the core: every check above passed, so the conversion must.
    let request = core_request(&start)
        .unwrap_or_else(|e| panic!("validated request not converted for the core: {e:?}"));
    assert_eq!(request.kind, start.kind);
    if start.kind == TxKind::Signature {
        let x = raw_digest_message(params, &composite_modulus())
            .unwrap_or_else(|e| panic!("validated digest does not encode: {e:?}"));
        assert_eq!(x.len(), COMPOSITE_BITS / 8);
        assert_eq!(
            start.digest,
            base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                params.digest.as_deref().unwrap_or_default()
            )
            .unwrap_or_default()
        );
    }
    Ok(())
}

/// `GET {base}/session/{id}?{query}`: the query string as axum extracts it, then the
/// handler's `timeoutMs` rule and session id check. `Ok` is the timeout in milliseconds.
///
/// # Panics
/// When an accepted timeout lies outside 1000..=120000.
pub fn status_query(id: &str, query: &str) -> Result<u64, Problem> {
    let Ok(uri) = format!("/v3/session/{id}?{query}").parse::<Uri>() else {
        // Not a request line the HTTP layer would hand over.
        return Err(Problem::bad_request("not a URI"));
    };
    let timeout = status_timeout(Query::<StatusQuery>::try_from_uri(&uri))?;
    assert!((1000..=120_000).contains(&timeout), "timeout {timeout}");
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Problem::session_not_found());
    }
    Ok(timeout)
}

/// An odd modulus of exactly [`COMPOSITE_BITS`] bits (only its length matters here).
fn composite_modulus() -> Vec<u8> {
    let mut n = vec![0xff; COMPOSITE_BITS / 8];
    n[0] = 0xc5;
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0193e4c4-8a30-7000-8000-000000000000";

    #[test]
    fn status_query_rules() {
        assert_eq!(status_query(ID, ""), Ok(60_500));
        assert_eq!(status_query(ID, "timeoutMs=1000"), Ok(1000));
        assert_eq!(status_query(ID, "timeoutMs=120000&x=1"), Ok(120_000));
        for bad in [
            "timeoutMs=999",
            "timeoutMs=120001",
            "timeoutMs=-1",
            "timeoutMs=1e3",
        ] {
            assert_eq!(
                status_query(ID, bad).map_err(|p| p.status),
                Err(400),
                "{bad}"
            );
        }
        assert_eq!(
            status_query("not-a-uuid", "").map_err(|p| p.status),
            Err(404)
        );
    }

    #[test]
    fn start_request_accepts_a_valid_body_and_refuses_garbage() {
        let body = serde_json::json!({
            "relyingPartyUUID": "00000000-0000-4000-8000-000000000000",
            "relyingPartyName": "DEMO",
            "signatureProtocol": "RAW_DIGEST_SIGNATURE",
            "signatureProtocolParameters": {
                "digest": "eVXMeU1KaNfZGV8a6bpcgmMhtOkAk0X6bzS7G3EwVzs=",
                "signatureAlgorithm": "sha256WithRSAEncryption"
            },
            "interactions": "W3sidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2MCI6IlNpZ24ifV0="
        });
        let body = serde_json::to_vec(&body).unwrap();
        // Route 7: signature/notification/etsi/{id}.
        assert_eq!(start_request(7, "PNOEE-30303039914", &body), Ok(()));
        assert_eq!(
            start_request(7, "XYZEE-1", &body).map_err(|p| p.status),
            Err(400)
        );
        assert_eq!(start_request(0, "", b"{").map_err(|p| p.status), Err(400));
    }
}

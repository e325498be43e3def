//! OCSP requests (RFC 6960) as the responder receives them: the DER body of `POST /ocsp`
//! or the base64 path of `GET /ocsp/{request}`, parsed by `pki::parse_ocsp_request`, matched
//! against the issuing CA, and answered with a signed response (a software CA key stands in
//! for the HSM's).
//!
//! Input: `mode byte || DER request` (mode even) or `mode byte || GET path` (mode odd).
//!
//! Properties: nothing panics; an accepted request is strict DER (it re-encodes to the same
//! bytes), asks about 1..=16 certificates with serials of at most 20 bytes, and always gets
//! a signed response that parses back with one answer per certificate, each CertID
//! echoed as asked, and the nonce echoed.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use der::{Decode, Encode};
use libfuzzer_sys::fuzz_target;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use tandem_server::http::ocsp_get_request;
use tandem_server::pki::ocsp::{BasicOcspResponseAsn1, OcspRequestAsn1, OcspResponseAsn1};
use tandem_server::pki::{
    CaSigner, Certificate, OcspStatus, PkiError, RevocationReason, cert_id_matches_issuer,
    ocsp_response, oids, parse_ocsp_request, root_ca_certificate,
};

/// A software ECDSA P-256 key (SHA-384 signatures), standing in for the HSM's CA key.
struct SoftCa(PKey<Private>);

impl CaSigner for SoftCa {
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: oids::ECDSA_WITH_SHA384,
            parameters: None,
        }
    }
    fn public_key(&self) -> SubjectPublicKeyInfoOwned {
        let der = self.0.public_key_to_der().expect("public key DER");
        SubjectPublicKeyInfoOwned::from_der(&der).expect("SPKI")
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut s = openssl::sign::Signer::new(MessageDigest::sha384(), &self.0)
            .map_err(|e| PkiError::Encoding(e.to_string()))?;
        s.sign_oneshot_to_vec(data)
            .map_err(|e| PkiError::Encoding(e.to_string()))
    }
}

fn ca() -> &'static (SoftCa, Certificate) {
    static CA: OnceLock<(SoftCa, Certificate)> = OnceLock::new();
    CA.get_or_init(|| {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
        let ca = SoftCa(key);
        let now = SystemTime::now();
        let cert = root_ca_certificate(&ca, "Fuzz CA", &[1], now, now + Duration::from_secs(3600))
            .expect("CA certificate");
        (ca, cert)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let der = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let Ok(path) = std::str::from_utf8(rest) else {
            return;
        };
        match ocsp_get_request(path) {
            Some(der) => der,
            None => return,
        }
    };
    let Ok(query) = parse_ocsp_request(&der) else {
        return;
    };
    let asn1 = OcspRequestAsn1::from_der(&der).expect("accepted, so it decodes");
    assert_eq!(
        asn1.to_der().expect("re-encodes"),
        der,
        "accepted request is not strict DER"
    );
    assert!((1..=16).contains(&query.cert_ids.len()));
    for id in &query.cert_ids {
        assert!(id.serial.len() <= 20 && id.serial.first() != Some(&0) || id.serial == [0]);
    }
    if let Some(n) = &query.nonce {
        assert!((1..=32).contains(&n.len()));
    }

    let (signer, cert) = ca();
    let now = SystemTime::now();
    let answers: Vec<_> = query
        .cert_ids
        .iter()
        .map(|id| {
            let status = if !cert_id_matches_issuer(id, cert) {
                OcspStatus::Unknown
            } else if id.serial.last().is_some_and(|b| b % 2 == 1) {
                OcspStatus::Revoked {
                    at: now,
                    reason: RevocationReason::KeyCompromise,
                }
            } else {
                OcspStatus::Good
            };
            (id.clone(), status)
        })
        .collect();
    let response = ocsp_response(
        signer,
        cert,
        &answers,
        now,
        now,
        Some(now + Duration::from_secs(60)),
        query.nonce.as_deref(),
    )
    .unwrap_or_else(|e| panic!("no response for an accepted request: {e}"));
    let outer = OcspResponseAsn1::from_der(&response).expect("response parses");
    let bytes = outer.response_bytes.expect("successful response has bytes");
    let basic = BasicOcspResponseAsn1::from_der(bytes.response.as_bytes()).expect("basic");
    let singles = &basic.tbs_response_data.responses;
    assert_eq!(singles.len(), asn1.tbs_request.request_list.len());
    for (single, req) in singles.iter().zip(&asn1.tbs_request.request_list) {
        assert_eq!(single.cert_id, req.req_cert, "CertID not echoed as asked");
    }
    let echoed = basic
        .tbs_response_data
        .response_extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id == oids::PKIX_OCSP_NONCE);
    assert_eq!(echoed, query.nonce.is_some(), "nonce echo");
});

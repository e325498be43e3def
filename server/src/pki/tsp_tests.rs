//! Unit tests of the RFC 3161 encoding: golden structure checks of granted answers (decoded
//! again field by field, the signature checked with OpenSSL) and refused requests.

use der::asn1::Any;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};

use super::*;
use crate::pki::soft_signer::{Soft, rsa_key as key};

/// A self-signed certificate of `key` (the structure under test does not depend on its
/// extensions).
fn cert(key: &PKey<Private>) -> Certificate {
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "Test TSA").unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    Certificate::from_der(&b.build().to_der().unwrap()).unwrap()
}

fn policy() -> ObjectIdentifier {
    tsa_policy_oid(super::super::DEFAULT_POLICY_ARC.parse().unwrap()).unwrap()
}

fn request(hash: ObjectIdentifier, digest_len: usize) -> TimeStampReq {
    TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash,
                parameters: Some(Any::null()),
            },
            hashed_message: OctetString::new(vec![0xab; digest_len]).unwrap(),
        },
        req_policy: None,
        nonce: Some(Int::new(&[0x00, 0xfe, 0xdc, 0xba, 0x98]).unwrap()),
        cert_req: true,
        extensions: None,
    }
}

fn rejection_of(req: &TimeStampReq) -> PkiFailureInfo {
    match parse_time_stamp_request(&req.to_der().unwrap(), policy()) {
        Err(TspRequestError::Rejected { failure, .. }) => failure,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn policy_is_under_the_arc() {
    assert_eq!(policy().to_string(), "1.3.6.1.4.1.32473.1.2.1");
}

#[test]
fn granted_response_has_the_rfc3161_structure() {
    let key = key();
    let signer = Soft(key.clone());
    let cert = cert(&key);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    for cert_req in [true, false] {
        let mut req = request(oids::SHA512, 64);
        req.cert_req = cert_req;
        req.req_policy = Some(policy());
        let query = parse_time_stamp_request(&req.to_der().unwrap(), policy()).unwrap();
        assert_eq!(query.hash, TspHash::Sha512);
        let der = time_stamp_response(
            &query,
            &TsaToken {
                signer: &signer,
                certificate: &cert,
                policy: policy(),
                serial: 42,
                time,
            },
        )
        .unwrap();

        let resp = TimeStampResp::from_der(&der).unwrap();
        assert_eq!(resp.status.status, STATUS_GRANTED);
        assert!(resp.status.fail_info.is_none());
        let token = resp.time_stamp_token.unwrap();
        assert_eq!(token.content_type, ID_SIGNED_DATA);
        let sd = SignedData::from_der(&token.content.to_der().unwrap()).unwrap();
        assert_eq!(sd.version, CmsVersion::V3);
        assert_eq!(sd.encap_content_info.econtent_type, ID_CT_TST_INFO);
        assert_eq!(sd.certificates.is_some(), cert_req);
        let tst_octets =
            OctetString::from_der(&sd.encap_content_info.econtent.unwrap().to_der().unwrap())
                .unwrap();
        let tst = TstInfo::from_der(tst_octets.as_bytes()).unwrap();
        assert_eq!(tst.version, 1);
        assert_eq!(tst.policy, policy());
        assert_eq!(tst.serial_number, 42);
        assert_eq!(tst.message_imprint, req.message_imprint);
        assert_eq!(tst.nonce, req.nonce);
        assert_eq!(tst.gen_time.to_unix_duration().as_secs(), 1_800_000_000);
        assert_eq!(tst.accuracy.unwrap().seconds, Some(ACCURACY_SECONDS));

        let si = sd.signer_infos.0.get(0).unwrap();
        assert_eq!(si.digest_alg.oid, oids::SHA384);
        let attrs = si.signed_attrs.clone().unwrap();
        let value = |oid| {
            attrs
                .iter()
                .find(|a| a.oid == oid)
                .unwrap_or_else(|| panic!("signed attribute {oid} missing"))
                .values
                .get(0)
                .unwrap()
                .to_der()
                .unwrap()
        };
        assert_eq!(value(ID_CONTENT_TYPE), ID_CT_TST_INFO.to_der().unwrap());
        let digest = OctetString::from_der(&value(ID_MESSAGE_DIGEST)).unwrap();
        assert_eq!(
            digest.as_bytes(),
            &Sha384::digest(tst_octets.as_bytes())[..]
        );
        let scv2 = SigningCertificateV2::from_der(&value(ID_AA_SIGNING_CERTIFICATE_V2)).unwrap();
        assert_eq!(
            scv2.certs[0].cert_hash.as_bytes(),
            &Sha256::digest(cert.to_der().unwrap())[..]
        );

        // The signature over the DER SET of the signed attributes verifies with the key.
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha384(), &key).unwrap();
        v.update(&attrs.to_der().unwrap()).unwrap();
        assert!(v.verify(si.signature.as_bytes()).unwrap());
        // ... and fails for other bytes.
        let mut v = openssl::sign::Verifier::new(MessageDigest::sha384(), &key).unwrap();
        v.update(tst_octets.as_bytes()).unwrap();
        assert!(!v.verify(si.signature.as_bytes()).unwrap());
    }
}

#[test]
fn signer_must_match_the_certificate() {
    let query =
        parse_time_stamp_request(&request(oids::SHA256, 32).to_der().unwrap(), policy()).unwrap();
    let other = key();
    let e = time_stamp_response(
        &query,
        &TsaToken {
            signer: &Soft(key()),
            certificate: &cert(&other),
            policy: policy(),
            serial: 1,
            time: SystemTime::now(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[test]
fn refused_requests_get_the_right_failure_info() {
    assert_eq!(
        rejection_of(&request(oids::SHA1, 20)),
        PkiFailureInfo::BadAlg
    );
    assert_eq!(
        rejection_of(&request(oids::SHA256, 31)),
        PkiFailureInfo::BadDataFormat
    );
    let mut v2 = request(oids::SHA256, 32);
    v2.version = 2;
    assert_eq!(rejection_of(&v2), PkiFailureInfo::BadDataFormat);
    let mut other_policy = request(oids::SHA256, 32);
    other_policy.req_policy = Some(ObjectIdentifier::new_unwrap("1.2.3.4"));
    assert_eq!(
        rejection_of(&other_policy),
        PkiFailureInfo::UnacceptedPolicy
    );
    let mut big_nonce = request(oids::SHA256, 32);
    big_nonce.nonce = Some(Int::new(&[0x11; 33]).unwrap());
    assert_eq!(rejection_of(&big_nonce), PkiFailureInfo::BadDataFormat);
    let mut ext = request(oids::SHA384, 48);
    ext.extensions = Some(vec![Extension {
        extn_id: ObjectIdentifier::new_unwrap("1.2.3.5"),
        critical: false,
        extn_value: OctetString::new(vec![5, 0]).unwrap(),
    }]);
    assert_eq!(rejection_of(&ext), PkiFailureInfo::UnacceptedExtension);
    let mut params = request(oids::SHA256, 32);
    params.message_imprint.hash_algorithm.parameters = Some(Any::from_der(&[2, 1, 0]).unwrap());
    assert_eq!(rejection_of(&params), PkiFailureInfo::BadAlg);
}

#[test]
fn non_der_input_is_not_a_request() {
    let good = request(oids::SHA256, 32).to_der().unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    for bad in [
        vec![],
        vec![0x30, 0x00],
        vec![0xff; 10],
        good[..good.len() - 1].to_vec(),
        trailing,
        vec![0x30; MAX_TSP_REQUEST_BYTES + 1],
    ] {
        assert!(matches!(
            parse_time_stamp_request(&bad, policy()),
            Err(TspRequestError::NotATimeStampReq(_))
        ));
    }
}

#[test]
fn rejections_encode_status_and_failure_bit() {
    for (failure, bits) in [
        (PkiFailureInfo::BadAlg, (vec![0x80u8], 7u8)),
        (PkiFailureInfo::BadDataFormat, (vec![0x04], 2)),
        (PkiFailureInfo::UnacceptedPolicy, (vec![0x00, 0x01], 0)),
        (
            PkiFailureInfo::UnacceptedExtension,
            (vec![0x00, 0x00, 0x80], 7),
        ),
        (PkiFailureInfo::SystemFailure, (vec![0, 0, 0, 0x40], 6)),
    ] {
        let resp = TimeStampResp::from_der(&time_stamp_rejection(failure, "no")).unwrap();
        assert_eq!(resp.status.status, STATUS_REJECTION);
        assert!(resp.time_stamp_token.is_none());
        assert_eq!(resp.status.status_string, Some(vec!["no".to_owned()]));
        let fail = resp.status.fail_info.unwrap();
        assert_eq!((fail.raw_bytes().to_vec(), fail.unused_bits()), bits);
    }
}

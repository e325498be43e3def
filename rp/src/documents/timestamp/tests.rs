#![allow(clippy::unwrap_used)] // tests

use super::*;

fn rejection(status: u8, text: &str, bit: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 4];
    bytes[bit / 8] |= 0x80 >> (bit % 8);
    TimeStampResp {
        status: PkiStatusInfo {
            status,
            status_string: Some(vec![text.to_owned()]),
            fail_info: Some(BitString::from_bytes(&bytes).unwrap()),
        },
        time_stamp_token: None,
    }
    .to_der()
    .unwrap()
}

#[test]
fn request_is_der_with_imprint_nonce_and_cert_req() {
    let a = TimeStampRequest::new(DocumentHash::Sha384, b"signature").unwrap();
    let b = TimeStampRequest::new(DocumentHash::Sha384, b"signature").unwrap();
    let req = TimeStampReq::from_der(a.der()).unwrap();
    assert_eq!(req.version, 1);
    assert!(req.cert_req);
    assert_eq!(req.message_imprint.hash_algorithm.oid, oids::SHA384);
    assert_eq!(
        req.message_imprint.hashed_message.as_bytes(),
        DocumentHash::Sha384.digest(b"signature")
    );
    let nonce = req.nonce.unwrap();
    assert_eq!(nonce.as_bytes(), a.nonce);
    assert_eq!(nonce.as_bytes().len(), 16);
    assert_ne!(a.nonce, b.nonce, "nonces must be random");
}

#[test]
fn rejections_name_the_reason() {
    let req = TimeStampRequest::new(DocumentHash::Sha256, b"x").unwrap();
    let e = req
        .check_response(&rejection(2, "unsupported hash", 0))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the time-stamp authority refused the request (status 2: unsupported hash \
         (failInfo badAlg))"
    );
    let e = req
        .check_response(&rejection(2, "out of service", 25))
        .unwrap_err();
    assert!(e.to_string().contains("systemFailure"), "{e}");
}

#[test]
fn garbage_and_granted_without_token_are_malformed() {
    let req = TimeStampRequest::new(DocumentHash::Sha256, b"x").unwrap();
    for bad in [
        &b""[..],
        b"\x30\x03\x02\x01",
        b"garbage",
        &[0x30, 0x80, 0, 0],
    ] {
        assert!(
            matches!(req.check_response(bad), Err(TimeStampError::Malformed(_))),
            "{bad:?}"
        );
    }
    let granted_no_token = TimeStampResp {
        status: PkiStatusInfo {
            status: 0,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: None,
    }
    .to_der()
    .unwrap();
    let e = req.check_response(&granted_no_token).unwrap_err();
    assert!(e.to_string().contains("no token"), "{e}");
}

#[test]
fn not_a_cades_signature_is_refused() {
    for bad in [&b""[..], b"\x30\x00", b"not DER at all"] {
        assert!(matches!(
            signature_value(bad),
            Err(TimeStampError::Signature(_))
        ));
        assert!(add_signature_time_stamp(bad, b"\x30\x00").is_err());
    }
}

#[tokio::test]
async fn unreachable_tsa_is_a_clear_error() {
    // A port nobody listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let req = TimeStampRequest::new(DocumentHash::Sha256, b"x").unwrap();
    let e = req
        .send(&format!("http://127.0.0.1:{port}/tsa"))
        .await
        .unwrap_err();
    assert!(matches!(e, TimeStampError::Unreachable(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("the time-stamp authority is unreachable")
    );
}

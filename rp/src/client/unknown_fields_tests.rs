//! api_details.txt: "the RP must ignore unknown names (fields) in JSON response objects at any
//! location within the JSON structure." Every response shape the library reads (the spec's
//! examples, one per kind) gets an unknown member at each of its objects in turn, then at all
//! of them at once, and must read, through the same path a real answer takes
//! ([`super::http::decode_body`]), to exactly the value the plain response gives.

use reqwest::Url;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Error;
use super::http::decode_body;
use crate::api::problem::Problem;
use crate::api::types::{
    CertificateResponse, DeviceLinkSessionResponse, NotificationSigningResponse, SessionIdResponse,
    SessionStatusResponse, Signature,
};

/// One step from a JSON value to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The paths of every object in `v` (the root included), arrays descended into.
fn object_paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match v {
            Value::Object(m) => {
                out.push(at.clone());
                for (k, child) in m {
                    at.push(Step::Key(k.clone()));
                    walk(child, at, out);
                    at.pop();
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    at.push(Step::Index(i));
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

fn describe(path: &[Step]) -> String {
    let s: String = path
        .iter()
        .map(|p| match p {
            Step::Key(k) => format!("/{k}"),
            Step::Index(i) => format!("/{i}"),
        })
        .collect();
    if s.is_empty() { "/".to_owned() } else { s }
}

/// An unknown member with a nested value (objects, arrays, null), so skipping it has to skip
/// a whole subtree.
fn unknown_value(n: usize) -> Value {
    json!({"futureObject": {"level": n, "list": [1, "two", null, {"deeper": true}]}, "futureNull": null})
}

/// `v` with the member `futureField{n}` added to the object at `path`.
fn add_unknown(v: &mut Value, path: &[Step], n: usize) {
    let mut node = v;
    for p in path {
        node = match p {
            Step::Key(k) => &mut node[k.as_str()],
            Step::Index(i) => &mut node[*i],
        };
    }
    node.as_object_mut()
        .expect("paths lead to objects")
        .insert(format!("futureField{n}"), unknown_value(n));
}

fn url() -> Url {
    Url::parse("https://rp-api.example/v3/session/x").unwrap()
}

/// Reads `v` as a 200 body of `T`, then with an unknown member at each object and at all of
/// them; every read must succeed and equal the first. The plain read must carry every value
/// of `v` (it serializes back to `v`). Returns the value and the number of objects.
fn check_2xx<T>(what: &str, v: &Value) -> (T, usize)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let read = |v: &Value| decode_body::<T>(&url(), 200, &serde_json::to_vec(v).unwrap());
    let plain = read(v).unwrap_or_else(|e| panic!("{what}: the plain response: {e}"));
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        *v,
        "{what}: the plain response reads completely"
    );
    let paths = object_paths(v);
    let mut everywhere = v.clone();
    for (n, path) in paths.iter().enumerate() {
        let mut one = v.clone();
        add_unknown(&mut one, path, n);
        add_unknown(&mut everywhere, path, n);
        match read(&one) {
            Ok(got) => assert_eq!(got, plain, "{what}: unknown member at {}", describe(path)),
            Err(e) => panic!(
                "{what}: an unknown member at {} is not ignored: {e}",
                describe(path)
            ),
        }
    }
    match read(&everywhere) {
        Ok(got) => assert_eq!(got, plain, "{what}: unknown members everywhere"),
        Err(e) => panic!("{what}: unknown members at every object: {e}"),
    }
    (plain, paths.len())
}

/// The same for a problem document (an error answer, read into [`Error::Problem`]).
fn check_problem(v: &Value) -> (Problem, usize) {
    let read = |v: &Value| match decode_body::<SessionStatusResponse>(
        &url(),
        400,
        &serde_json::to_vec(v).unwrap(),
    ) {
        Err(Error::Problem { status, problem }) => {
            assert_eq!(status, 400);
            Ok(*problem)
        }
        other => Err(format!("{other:?}")),
    };
    let plain = read(v).unwrap();
    assert_eq!(serde_json::to_value(&plain).unwrap(), *v);
    let paths = object_paths(v);
    let mut everywhere = v.clone();
    for (n, path) in paths.iter().enumerate() {
        let mut one = v.clone();
        add_unknown(&mut one, path, n);
        add_unknown(&mut everywhere, path, n);
        assert_eq!(
            read(&one),
            Ok(plain.clone()),
            "problem: unknown member at {}",
            describe(path)
        );
    }
    assert_eq!(read(&everywhere), Ok(plain.clone()));
    (plain, paths.len())
}

fn pss(hash: &str) -> Value {
    json!({
        "hashAlgorithm": hash,
        "maskGenAlgorithm": {"algorithm": "id-mgf1", "parameters": {"hashAlgorithm": hash}},
        "saltLength": 64,
        "trailerField": "0xbc"
    })
}

fn ok_status(protocol: Option<&str>, signature: Value) -> Value {
    let mut v = json!({
        "state": "COMPLETE",
        "result": {"endResult": "OK", "documentNumber": "PNOEE-30001010004-BVFM-Q"},
        "signature": signature,
        "cert": {"value": "MIIFhTCC", "certificateLevel": "QUALIFIED"},
        "interactionTypeUsed": "displayTextAndPIN",
        "deviceIpAddress": "203.0.113.34",
        "ignoredProperties": ["testingIgnored"]
    });
    if let Some(p) = protocol {
        v["signatureProtocol"] = json!(p);
    }
    v
}

#[test]
fn session_status_with_each_signature_type_ignores_unknown_members() {
    // ACSP_V2 (authentication), RSASSA-PSS: 8 objects, from the root down to the MGF1
    // parameters.
    let acsp = ok_status(
        Some("ACSP_V2"),
        json!({
            "value": "Vak2Q0NiFnh6",
            "serverRandom": "+wVP2U/SMKVkVrggDjNTXFV/",
            "userChallenge": "TLSjYRH2oYw8tW2bq0it0IUb7WIFkCLgF8NTc7-4Zq4",
            "flowType": "QR",
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": pss("SHA-512")
        }),
    );
    let (s, objects) = check_2xx::<SessionStatusResponse>("ACSP_V2 session status", &acsp);
    assert_eq!(
        objects, 7,
        "root, result, signature, its parameters, MGF, MGF parameters, cert"
    );
    let Some(Signature::AcspV2(sig)) = &s.signature else {
        panic!("{s:?}")
    };
    assert_eq!(sig.server_random, "+wVP2U/SMKVkVrggDjNTXFV/");

    // RAW_DIGEST_SIGNATURE with RSASSA-PSS (SHA3-512, as in the spec's example) and with
    // PKCS#1 v1.5.
    let raw_pss = ok_status(
        Some("RAW_DIGEST_SIGNATURE"),
        json!({
            "value": "HIL63iGf",
            "flowType": "Notification",
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": pss("SHA3-512")
        }),
    );
    let (s, _) = check_2xx::<SessionStatusResponse>("RAW_DIGEST_SIGNATURE (PSS)", &raw_pss);
    assert!(
        matches!(s.signature, Some(Signature::RawDigest(_))),
        "{s:?}"
    );
    let raw_pkcs1 = ok_status(
        Some("RAW_DIGEST_SIGNATURE"),
        json!({"value": "HIL63iGf", "flowType": "Notification", "signatureAlgorithm": "sha512WithRSAEncryption"}),
    );
    let (s, _) = check_2xx::<SessionStatusResponse>("RAW_DIGEST_SIGNATURE (PKCS#1)", &raw_pkcs1);
    assert!(
        matches!(s.signature, Some(Signature::RawDigest(_))),
        "{s:?}"
    );

    // Certificate choice: no signatureProtocol, signature holds the flow type only.
    let choice = ok_status(None, json!({"flowType": "Web2App"}));
    let (s, objects) = check_2xx::<SessionStatusResponse>("certificate choice", &choice);
    assert_eq!(objects, 4);
    assert!(
        matches!(s.signature, Some(Signature::CertificateChoice(_))),
        "{s:?}"
    );
}

/// An unknown member that is a known member of another signature object does not change
/// which object it is: `signatureProtocol` decides.
#[test]
fn members_of_other_signature_objects_do_not_change_the_object() {
    let mut raw = ok_status(
        Some("RAW_DIGEST_SIGNATURE"),
        json!({"value": "HIL63iGf", "flowType": "Notification", "signatureAlgorithm": "sha512WithRSAEncryption"}),
    );
    raw["signature"]["serverRandom"] = json!("+wVP2U/SMKVkVrggDjNTXFV/");
    raw["signature"]["userChallenge"] = json!("TLSjYRH2oYw8tW2bq0it0IUb7WIFkCLgF8NTc7-4Zq4");
    let s: SessionStatusResponse = decode_body(&url(), 200, raw.to_string().as_bytes()).unwrap();
    assert!(
        matches!(s.signature, Some(Signature::RawDigest(_))),
        "{s:?}"
    );
    let mut choice = ok_status(None, json!({"flowType": "App2App"}));
    choice["signature"]["value"] = json!("HIL63iGf");
    choice["signature"]["signatureAlgorithm"] = json!("rsassa-pss");
    let s: SessionStatusResponse = decode_body(&url(), 200, choice.to_string().as_bytes()).unwrap();
    assert!(
        matches!(s.signature, Some(Signature::CertificateChoice(_))),
        "{s:?}"
    );
    // A member the named object needs is still required.
    let mut acsp = raw.clone();
    acsp["signatureProtocol"] = json!("ACSP_V2");
    acsp["signature"]
        .as_object_mut()
        .unwrap()
        .remove("serverRandom");
    let e = decode_body::<SessionStatusResponse>(&url(), 200, acsp.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing field `serverRandom`"), "{e}");
}

#[test]
fn other_session_statuses_ignore_unknown_members() {
    check_2xx::<SessionStatusResponse>("RUNNING", &json!({"state": "RUNNING"}));
    let (s, objects) = check_2xx::<SessionStatusResponse>(
        "USER_REFUSED_INTERACTION",
        &json!({
            "state": "COMPLETE",
            "result": {"endResult": "USER_REFUSED_INTERACTION", "details": {"interaction": "displayTextAndPIN"}}
        }),
    );
    assert_eq!(objects, 3);
    assert_eq!(
        s.result.unwrap().details.unwrap().interaction.as_deref(),
        Some("displayTextAndPIN")
    );
}

#[test]
fn session_start_and_certificate_responses_ignore_unknown_members() {
    let (r, _) = check_2xx::<DeviceLinkSessionResponse>(
        "device-link start",
        &json!({
            "sessionID": "fa20fd1e-e320-4c68-8315-f6a507a0b4a9",
            "sessionToken": "wGIrqveE6AuGDATZKmR1mtAZ",
            "sessionSecret": "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps=",
            "deviceLinkBase": "https://smart-id.com/device-link"
        }),
    );
    assert_eq!(r.session_token, "wGIrqveE6AuGDATZKmR1mtAZ");
    check_2xx::<SessionIdResponse>(
        "session ID",
        &json!({"sessionID": "56e1c1d0-dc07-4c71-890b-6200856b8c75"}),
    );
    let (r, objects) = check_2xx::<NotificationSigningResponse>(
        "notification signing start",
        &json!({"sessionID": "56e1c1d0-dc07-4c71-890b-6200856b8c75", "vc": {"type": "numeric4", "value": "4927"}}),
    );
    assert_eq!((r.vc.value.as_str(), objects), ("4927", 2));
    let (r, objects) = check_2xx::<CertificateResponse>(
        "signing certificate",
        &json!({"state": "OK", "cert": {"value": "MIIF", "certificateLevel": "QUALIFIED"}}),
    );
    assert_eq!((r.cert.unwrap().value.as_str(), objects), ("MIIF", 2));
    check_2xx::<CertificateResponse>(
        "unusable signing certificate",
        &json!({"state": "DOCUMENT_UNUSABLE"}),
    );
}

#[test]
fn problem_documents_ignore_unknown_members() {
    let (p, objects) = check_problem(&json!({
        "type": "about:blank",
        "status": 400,
        "title": "Bad Request",
        "detail": "Invalid request parameters found",
        "instance": "/v3/session/x",
        "errors": [
            {"detail": "Invalid initialCallbackUrl", "paramName": "initialCallbackUrl", "pointer": "/initialCallbackUrl"},
            {"code": "X", "detail": "Invalid nonce"}
        ]
    }));
    assert_eq!(objects, 3, "the document and both errors");
    assert_eq!(p.errors.unwrap()[1].code.as_deref(), Some("X"));
}

//! Helpers of the conformance walk (`rp_conformance.rs`): a collector of per-requirement
//! checks, a raw HTTP/1.1 client that keeps status, headers and body (plain or TLS, with ALPN),
//! a simulated phone, and OpenSSL command-line checks used as the independent verifier.

#![allow(dead_code)] // each test uses a part

use std::fmt::{Debug, Display};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::X509;
use serde_json::Value;
use tandem_client_core::KeyType;
use tandem_client_core::grpc as dev;
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_rp::client::{ClientConfig, RpApiClient, TrustAnchors};
use tandem_tests::{Person, TestServer, openssl, pending_session, register};

// ------------------------------------------------------------------ requirement checks

/// Records one check per requirement and fails at the end with every requirement that did
/// not hold, so that one failure does not hide the others of the same section.
pub struct Checks {
    test: &'static str,
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Checks {
    pub fn new(test: &'static str) -> Self {
        Self {
            test,
            passed: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// `requirement` holds if `ok`; `seen` says what was observed (shown on failure).
    pub fn check(&mut self, requirement: &str, ok: bool, seen: impl Display) {
        if ok {
            self.passed.push(requirement.to_owned());
        } else {
            self.failed
                .push(format!("{requirement}\n      seen: {seen}"));
        }
    }

    /// `requirement` holds if `got == want`.
    pub fn eq<T: PartialEq + Debug>(&mut self, requirement: &str, got: T, want: T) {
        let ok = got == want;
        self.check(requirement, ok, format_args!("{got:?}, expected {want:?}"));
    }

    /// `requirement` holds if the answer is an RFC 9457 problem document with `status`.
    pub fn problem(&mut self, requirement: &str, r: &Reply, status: u16) {
        let seen = r.problem_error(status);
        self.check(requirement, seen.is_none(), seen.unwrap_or_default());
    }

    /// Prints what held and panics listing what did not.
    pub fn finish(self) {
        for p in &self.passed {
            eprintln!("[{}] ok: {p}", self.test);
        }
        if !self.failed.is_empty() {
            panic!(
                "{}: {} of {} requirements do not hold:\n  - {}",
                self.test,
                self.failed.len(),
                self.failed.len() + self.passed.len(),
                self.failed.join("\n  - ")
            );
        }
    }
}

// ------------------------------------------------------------------ raw HTTP

/// One HTTP answer as it came over the wire.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `None` if this is an RFC 9457 problem document (`application/problem+json`, with the
    /// members `type`, `title`, `status` = `status` and `detail` that openapi.yml's
    /// `ExtendedProblemDetailsJson` requires); otherwise what differs.
    pub fn problem_error(&self, status: u16) -> Option<String> {
        let body = self.json();
        let ct = self.header("content-type").unwrap_or("");
        let mut wrong = Vec::new();
        if self.status != status {
            wrong.push(format!("HTTP {} instead of {status}", self.status));
        }
        if !ct.starts_with("application/problem+json") {
            wrong.push(format!("Content-Type {ct:?}"));
        }
        if body["status"] != status {
            wrong.push(format!("status member {}", body["status"]));
        }
        for m in ["type", "title", "detail"] {
            if !body[m].is_string() {
                wrong.push(format!("no string member {m}"));
            }
        }
        (!wrong.is_empty()).then(|| {
            format!(
                "{}; body {}",
                wrong.join(", "),
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// A TLS client that trusts only the server's own certificate.
pub fn tls_connector(server: &TestServer, alpn: Option<&[u8]>) -> Result<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.cert_store_mut().add_cert(X509::from_pem(&server.ca)?)?;
    if let Some(protos) = alpn {
        b.set_alpn_protos(protos)?;
    }
    Ok(b.build())
}

fn connect(server: &TestServer) -> Result<Box<dyn Stream>> {
    let (tls, addr) = match server.rest_url.split_once("://") {
        Some(("https", a)) => (true, a),
        Some(("http", a)) => (false, a),
        _ => bail!("no REST url"),
    };
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(150)))?;
    if tls {
        let s = tls_connector(server, None)?
            .connect("localhost", tcp)
            .map_err(|e| anyhow::anyhow!("TLS handshake: {e}"))?;
        Ok(Box::new(s))
    } else {
        Ok(Box::new(tcp))
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = String::from_utf8_lossy(&b[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).context("short chunk")?);
        b = b.get(size + 2..).context("chunk end")?;
    }
}

/// One HTTP/1.1 request (`Connection: close`) to the server's REST API, plain or TLS as the
/// server serves it. `headers` are sent as given (add `Content-Type` yourself); a
/// `Content-Length` is added when there is a body.
pub fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply> {
    let mut s = connect(server)?;
    let host = server.rest_url.split_once("://").map_or("", |(_, a)| a);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413) before it read everything: keep what it said.
    let _ = s.write_all(body);
    let _ = s.flush();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if !raw.is_empty() => break,
            Err(e) => return Err(e.into()),
        }
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no HTTP header end in {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// `POST path` with a JSON body and `Content-Type: application/json`.
pub fn post(server: &TestServer, path: &str, body: &Value) -> Reply {
    send(
        server,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

/// `GET path`.
pub fn get(server: &TestServer, path: &str) -> Reply {
    send(server, "GET", path, &[], b"").unwrap()
}

/// Starts a session and returns the 200 answer's JSON (panics otherwise: a precondition).
pub fn start(server: &TestServer, path: &str, body: &Value) -> Value {
    let r = post(server, path, body);
    assert_eq!(
        r.status,
        200,
        "POST {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// The `sessionID` of a 200 start answer.
pub fn session_id(v: &Value) -> String {
    v["sessionID"]
        .as_str()
        .unwrap_or_else(|| panic!("no sessionID in {v}"))
        .to_owned()
}

/// Long-polls `GET /v3/session/{id}` until COMPLETE (at most about a minute).
pub fn result(server: &TestServer, id: &str) -> Value {
    for _ in 0..30 {
        let r = get(server, &format!("/v3/session/{id}?timeoutMs=2000"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        if v["state"] == "COMPLETE" {
            return v;
        }
    }
    panic!("session {id} did not complete")
}

/// One non-waiting look at a session (`timeoutMs=1000`).
pub fn peek(server: &TestServer, id: &str) -> Value {
    let r = get(server, &format!("/v3/session/{id}?timeoutMs=1000"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// Our RP library's client for the server's REST API (HTTP or HTTPS with the server's
/// certificate as the only extra root).
pub fn rp_client(server: &TestServer) -> RpApiClient {
    let mut cfg = ClientConfig::new(format!("{}/v3", server.rest_url));
    cfg.extra_root_pem = Some(server.ca.clone());
    RpApiClient::new(cfg).unwrap()
}

/// The server's CA certificates as the RP's trust anchors (root + issuing CA).
pub fn trust_anchors(server: &TestServer) -> TrustAnchors {
    let mut a = TrustAnchors::new();
    a.add_roots_pem(&std::fs::read(server.data_dir.join("pki/root.pem")).unwrap())
        .unwrap();
    a.add_intermediates_pem(&std::fs::read(server.data_dir.join("pki/issuing.pem")).unwrap())
        .unwrap();
    a
}

// ------------------------------------------------------------------ request bodies

/// Base64 of a JSON text.
pub fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// `[{"type":"displayTextAndPIN","displayText60":text}]`, Base64.
pub fn pin_interaction(text: &str) -> String {
    b64(&serde_json::json!([{"type": "displayTextAndPIN", "displayText60": text}]).to_string())
}

/// 64 fresh random bytes, Base64: an `rpChallenge`.
pub fn random_challenge() -> String {
    let mut b = [0u8; 64];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
    STANDARD.encode(b)
}

/// A random nonce of 20 characters.
pub fn random_nonce() -> String {
    random_challenge()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect()
}

/// `signatureAlgorithm` + `signatureAlgorithmParameters` for `rsassa-pss` with `hash`, or a
/// PKCS#1 v1.5 algorithm name (then no parameters).
pub fn algorithm(alg: &str, hash: &str) -> (Value, Option<Value>) {
    if alg == "rsassa-pss" {
        (
            Value::from(alg),
            Some(serde_json::json!({ "hashAlgorithm": hash })),
        )
    } else {
        (Value::from(alg), None)
    }
}

/// An ACSP_V2 authentication request body (notification flows get `vcType`).
pub fn auth_body(
    rp_uuid: &str,
    rp_name: &str,
    interactions: &str,
    rp_challenge: &str,
    alg: &str,
    hash: &str,
    notification: bool,
) -> Value {
    let (a, p) = algorithm(alg, hash);
    let mut params = serde_json::json!({ "rpChallenge": rp_challenge, "signatureAlgorithm": a });
    if let Some(p) = p {
        params["signatureAlgorithmParameters"] = p;
    }
    let mut v = serde_json::json!({
        "relyingPartyUUID": rp_uuid,
        "relyingPartyName": rp_name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": params,
        "interactions": interactions,
    });
    if notification {
        v["vcType"] = Value::from("numeric4");
    }
    v
}

/// A RAW_DIGEST_SIGNATURE request body over `digest`.
pub fn sign_body(
    rp_uuid: &str,
    rp_name: &str,
    interactions: &str,
    digest: &[u8],
    alg: &str,
    hash: &str,
) -> Value {
    let (a, p) = algorithm(alg, hash);
    let mut params =
        serde_json::json!({ "digest": STANDARD.encode(digest), "signatureAlgorithm": a });
    if let Some(p) = p {
        params["signatureAlgorithmParameters"] = p;
    }
    serde_json::json!({
        "relyingPartyUUID": rp_uuid,
        "relyingPartyName": rp_name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "RAW_DIGEST_SIGNATURE",
        "signatureProtocolParameters": params,
        "nonce": random_nonce(),
        "interactions": interactions,
    })
}

// ------------------------------------------------------------------ the phone

/// A registered simulated phone (client-core over gRPC), PIN1 `1234`, PIN2 `12345`.
pub struct Phone {
    pub client: dev::Client,
    pub state: DeviceState,
}

pub const PIN1: &str = "1234";
pub const PIN2: &str = "12345";

impl Phone {
    pub async fn register(server: &TestServer, person: &Person) -> Self {
        let state = register(server, person, PIN1, PIN2).await.unwrap();
        Self {
            client: server.device_client().await.unwrap(),
            state,
        }
    }

    pub fn document(&self) -> String {
        self.state.document_number.clone()
    }

    /// The certificate (DER) of one key pair.
    pub fn certificate(&self, key: KeyType) -> Vec<u8> {
        self.state.key_pair(key).unwrap().certificate.clone()
    }

    /// Waits until the session is pending on this phone.
    pub async fn pending(&self, id: &str) -> pb::PendingTransaction {
        pending_session(&self.client, &self.state, id)
            .await
            .unwrap()
    }

    /// Presents a device link.
    pub async fn claim(&self, link: &str) -> dev::Result<pb::PendingTransaction> {
        dev::claim_device_link(&self.client, &self.state, link).await
    }

    /// Confirms with the right PIN (and the right code when three are shown); certificate
    /// choices are answered with this account.
    pub async fn confirm(&mut self, t: &pb::PendingTransaction) -> pb::ConfirmResponse {
        let p = dev::prompt(&self.state, t).unwrap();
        if p.certificate_choice {
            let prepared = dev::prepare_certificate_choice(&self.state, t).unwrap();
            return dev::send_confirm(&self.client, &mut self.state, &prepared)
                .await
                .unwrap();
        }
        let pin = Pin::new(if p.key_type == KeyType::Auth {
            PIN1
        } else {
            PIN2
        })
        .unwrap();
        let vc = (!p.vc_choices.is_empty()).then_some(p.verification_code.as_str());
        dev::confirm(&self.client, &mut self.state, t, &pin, vc)
            .await
            .unwrap()
    }

    /// Confirms and asserts the server accepted.
    pub async fn accept(&mut self, t: &pb::PendingTransaction) {
        let r = self.confirm(t).await;
        assert_eq!(r.outcome, pb::ConfirmOutcome::Accepted as i32, "{r:?}");
    }
}

// ------------------------------------------------------------------ OpenSSL, the independent verifier

/// Writes `data` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.to_str().unwrap().to_owned()
}

/// `openssl dgst -<alg> -binary` of `data` (alg: `sha256`, `sha3-512`, …).
pub fn openssl_digest(dir: &Path, alg: &str, data: &[u8]) -> Vec<u8> {
    let input = write(dir, "digest-in.bin", data);
    let out = dir.join("digest-out.bin");
    let (ok, text) = openssl(
        dir,
        &[
            "dgst",
            &format!("-{alg}"),
            "-binary",
            "-out",
            out.to_str().unwrap(),
            &input,
        ],
    );
    assert!(ok, "openssl dgst -{alg}: {text}");
    std::fs::read(out).unwrap()
}

/// `openssl dgst -sha256 -mac HMAC` with a hex key.
pub fn openssl_hmac_sha256(dir: &Path, key: &[u8], data: &[u8]) -> Vec<u8> {
    let input = write(dir, "mac-in.bin", data);
    let out = dir.join("mac-out.bin");
    let (ok, text) = openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-mac",
            "HMAC",
            "-macopt",
            &format!("hexkey:{}", hex::encode(key)),
            "-binary",
            "-out",
            out.to_str().unwrap(),
            &input,
        ],
    );
    assert!(ok, "openssl HMAC: {text}");
    std::fs::read(out).unwrap()
}

/// OpenSSL's name of a spec hash (`SHA-256` → `sha256`, `SHA3-512` → `sha3-512`).
pub fn openssl_hash(spec_name: &str) -> String {
    spec_name.to_ascii_lowercase().replace("sha-", "sha")
}

/// `openssl dgst -<hash> -verify` of `sig` over `data` with the public key of the
/// certificate (DER); `pss_salt`: RSASSA-PSS with MGF1 of the same hash and this salt
/// length, else PKCS#1 v1.5. `Ok` only for "Verified OK".
pub fn openssl_verify_signature(
    dir: &Path,
    cert_der: &[u8],
    hash: &str,
    pss_salt: Option<usize>,
    data: &[u8],
    sig: &[u8],
) -> Result<(), String> {
    let cert = write(dir, "cert.der", cert_der);
    let pubkey = dir.join("pub.pem");
    let (ok, text) = openssl(
        dir,
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            &cert,
            "-pubkey",
            "-noout",
            "-out",
            pubkey.to_str().unwrap(),
        ],
    );
    if !ok {
        return Err(format!("openssl x509 -pubkey: {text}"));
    }
    let data = write(dir, "signed.bin", data);
    let sig = write(dir, "sig.bin", sig);
    let hash = openssl_hash(hash);
    let mut args: Vec<String> = vec![
        "dgst".into(),
        format!("-{hash}"),
        "-verify".into(),
        pubkey.to_str().unwrap().into(),
    ];
    if let Some(salt) = pss_salt {
        for o in [
            "rsa_padding_mode:pss".to_owned(),
            format!("rsa_pss_saltlen:{salt}"),
            format!("rsa_mgf1_md:{hash}"),
        ] {
            args.push("-sigopt".into());
            args.push(o);
        }
    }
    args.extend(["-signature".into(), sig, data]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, text) = openssl(dir, &args);
    if ok && text.contains("Verified OK") {
        Ok(())
    } else {
        Err(text)
    }
}

// ------------------------------------------------------------------ TLS and HTTP/2 probes

/// What a TLS handshake with the REST endpoint negotiated: protocol version, cipher suite
/// and ALPN protocol; `Err` with OpenSSL's reason when the handshake fails. `configure`
/// adjusts the client (versions, cipher suites, ALPN).
pub fn tls_handshake(
    server: &TestServer,
    configure: impl FnOnce(&mut openssl::ssl::SslConnectorBuilder),
) -> Result<(String, String, Option<Vec<u8>>), String> {
    let addr = server
        .rest_url
        .strip_prefix("https://")
        .ok_or("the REST API is not served over TLS")?;
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.cert_store_mut()
        .add_cert(X509::from_pem(&server.ca).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    configure(&mut b);
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let s = b
        .build()
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())?;
    let ssl = s.ssl();
    Ok((
        ssl.version_str().to_owned(),
        ssl.current_cipher()
            .map(|c| c.name().to_owned())
            .unwrap_or_default(),
        ssl.selected_alpn_protocol().map(<[u8]>::to_vec),
    ))
}

/// Offers only TLS 1.1 (any cipher suite, OpenSSL security level 0): the server should refuse.
pub fn tls_1_1_only(b: &mut openssl::ssl::SslConnectorBuilder) {
    let _ = b.set_cipher_list("DEFAULT:@SECLEVEL=0");
    let _ = b.set_min_proto_version(Some(SslVersion::TLS1_1));
    let _ = b.set_max_proto_version(Some(SslVersion::TLS1_1));
}

/// Offers only TLS 1.2 CBC suites with RSA key exchange (no forward secrecy, no AEAD).
pub fn tls_weak_suites_only(b: &mut openssl::ssl::SslConnectorBuilder) {
    let _ = b.set_max_proto_version(Some(SslVersion::TLS1_2));
    b.set_cipher_list("AES128-SHA:AES256-SHA:AES128-SHA256")
        .expect("the client can offer CBC suites");
}

/// Connects with ALPN `h2`, sends the HTTP/2 connection preface and an empty SETTINGS frame,
/// and returns the first 9 bytes the server answers (an HTTP/2 frame header if it speaks
/// HTTP/2).
pub fn http2_first_frame(server: &TestServer) -> Option<Vec<u8>> {
    let addr = server.rest_url.split_once("://")?.1.to_owned();
    let tcp = TcpStream::connect(&addr).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut s: Box<dyn Stream> = if server.rest_url.starts_with("https://") {
        Box::new(
            tls_connector(server, Some(b"\x02h2"))
                .ok()?
                .connect("localhost", tcp)
                .ok()?,
        )
    } else {
        Box::new(tcp)
    };
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .ok()?;
    let mut head = [0u8; 9];
    s.read_exact(&mut head).ok()?;
    Some(head.to_vec())
}

/// One request over HTTP/2 as an ordinary HTTPS client makes it: TLS with the server's CA
/// (rustls, host name `localhost`) offering only ALPN `h2`, then an HTTP/2 stream (the `h2`
/// crate) carrying `method path` with `headers` and `body`. Returns the protocol ALPN
/// selected and the answer; an error when TLS, the HTTP/2 handshake or the stream fails.
pub async fn send_h2(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(Option<Vec<u8>>, Reply)> {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

    let addr = server
        .rest_url
        .strip_prefix("https://")
        .context("the REST API is not served over TLS")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&server.ca) {
        roots.add(c?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await
        .context("TLS handshake")?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let (client, connection) = h2::client::handshake(tls)
        .await
        .context("HTTP/2 handshake")?;
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("https://{addr}{path}"));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let (response, mut stream) = client.send_request(request.body(())?, body.is_empty())?;
    if !body.is_empty() {
        stream.send_data(bytes::Bytes::copy_from_slice(body), true)?;
    }
    let response = tokio::time::timeout(Duration::from_secs(30), response)
        .await
        .context("no HTTP/2 response within 30 s")??;
    let (parts, mut recv) = response.into_parts();
    let mut body = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        body.extend_from_slice(&chunk);
    }
    drop(client);
    connection.abort();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).to_string(),
            )
        })
        .collect();
    Ok((
        alpn,
        Reply {
            status: parts.status.as_u16(),
            headers,
            body,
        },
    ))
}

/// `8-4-4-4-12` hexadecimal.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// openapi.yml's Base64 pattern `^[a-zA-Z0-9+/]+={0,2}$`.
pub fn is_b64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Base64URL without padding.
pub fn is_b64url(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ------------------------------------------------------------------ the simulated phone's command line

/// A phone registered in this process whose state file then lives in `dir`, answered
/// through the `tandem device` simulator (the command line a tester uses).
pub struct CliPhone {
    pub dir: std::path::PathBuf,
    ca: std::path::PathBuf,
    server: String,
    pub document: String,
}

impl CliPhone {
    pub async fn register(server: &TestServer, person: &Person, name: &str) -> Self {
        let state = register(server, person, PIN1, PIN2).await.unwrap();
        let dir = server.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("account.json"), &*state.to_json_bytes().unwrap()).unwrap();
        Self {
            dir,
            ca: server.data_dir.join("tls/server.crt"),
            server: server.url.clone(),
            document: state.document_number.clone(),
        }
    }

    /// The phone's current state (from its file).
    pub fn state(&self) -> DeviceState {
        DeviceState::from_json_bytes(&std::fs::read(self.dir.join("account.json")).unwrap())
            .unwrap()
    }

    /// `tandem device …` with `TANDEM_PIN` when given; stdout, or the error with the output.
    pub fn run(&self, args: &[&str], pin: Option<&str>) -> Result<String, String> {
        let mut all = vec![
            "device",
            "--dir",
            self.dir.to_str().unwrap(),
            "--ca",
            self.ca.to_str().unwrap(),
            "--server",
            &self.server,
        ];
        all.extend_from_slice(args);
        let env: Vec<(&str, &str)> = pin.map(|p| ("TANDEM_PIN", p)).into_iter().collect();
        tandem_tests::tandem_env(&all, &env).map_err(|e| e.to_string())
    }
}

/// The URL in `out` that starts with `initial` (the callback URL the simulator prints).
pub fn url_starting_with(out: &str, initial: &str) -> Option<String> {
    out.split_whitespace()
        .find(|w| w.starts_with(initial))
        .map(str::to_owned)
}

/// The query parameters added after `initial` (`&a=1&b=2` → `[(a,1),(b,2)]`).
pub fn added_parameters(url: &str, initial: &str) -> Vec<(String, String)> {
    url.strip_prefix(initial)
        .unwrap_or("")
        .trim_start_matches(['&', '?'])
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

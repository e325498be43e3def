//! Helpers of the mutual-TLS tests (rp_mtls.rs, rp_cert_cli.rs, rp_cert_secrets.rs): an
//! administrator's login and relying-party certificates from the server's queue, client
//! certificates of the test CA unknown to the store or of a foreign CA, curl against the RP
//! API with a client certificate, and `tandem rp-cert`.

use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tandem_client_core::grpc::{self as dev, Client};
use tandem_client_core::pin::Pin;
use tandem_client_core::state::DeviceState;
use tandem_proto::v1 as pb;
use tandem_rp::api::rp_certs::{
    CertificateRequest, CreateRequest, ListRequest, NewRpCert, RpCert, RpCertState,
};
use tandem_rp::api::types::{EndResult, NotificationAuthenticationRequest};
use tandem_rp::client::{ClientConfig, ClientIdentity, RpApiClient, UserRef};

use crate::{RP_NAME, RP_UUID, TestServer, cert_pem, pending_session, tandem_bin, tandem_env};

/// A key and certificate pair on disk (PEM).
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// The private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// The certificate (PEM).
    pub cert: PathBuf,
}

/// Environment variable that turns the test binary into the issuing helper
/// ([`issue_helper!`]): `DATA_DIR\nOUT_DIR\nCLIENT_AUTH(0/1)\nEXPIRED(0/1)\nSAN URI…`.
pub const ISSUE_ENV: &str = "TANDEM_TEST_ISSUE";

/// Defines the test `mtls_issue_helper` that [`sign_unregistered_with_test_ca`] runs in a child process
/// of the test binary (the HSM module reads its environment when it is loaded, so it runs
/// in a process of its own). Ignored in normal runs; does nothing without [`ISSUE_ENV`].
#[macro_export]
macro_rules! issue_helper {
    () => {
        #[test]
        #[ignore = "helper: run by sign_unregistered_with_test_ca in a child process"]
        fn mtls_issue_helper() {
            $crate::mtls::issue_helper_main().unwrap();
        }
    };
}

/// A client certificate of `server`'s issuing CA that the store does NOT know as a relying
/// party's certificate (it bypasses the certificate queue): the given SAN URIs, EKU
/// clientAuth unless `client_auth` is false, valid from a minute ago for a day, or, when
/// `expired`, for one hour that ended a day ago; written under `dir`. TEST ONLY: signed with
/// the CA key in the test token, by the test binary itself, which must contain
/// [`issue_helper!`]. Real relying-party certificates come from the queue
/// (`tandem rp-cert`, `RpApiClient::rp_certs_*`).
pub fn sign_unregistered_with_test_ca(
    server: &TestServer,
    dir: &Path,
    san_uris: &[&str],
    client_auth: bool,
    expired: bool,
) -> Result<ClientCert> {
    let mut spec = format!(
        "{}\n{}\n{}\n{}",
        server.data_dir.display(),
        dir.display(),
        u8::from(client_auth),
        u8::from(expired)
    );
    for s in san_uris {
        spec.push('\n');
        spec.push_str(s);
    }
    // The HSM module's environment (SoftHSM: SOFTHSM2_CONF), as the server sets it.
    let cfg = tandem_server::config::Config::load(&server.data_dir)?;
    let out = Command::new(std::env::current_exe()?)
        .args(["--exact", "mtls_issue_helper", "--ignored", "--nocapture"])
        .envs(cfg.hsm.env.iter())
        .env(ISSUE_ENV, spec)
        .stdin(Stdio::null())
        .output()?;
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    if !out.status.success() || !cert.is_file() {
        bail!(
            "issuing the test certificate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(ClientCert { key, cert })
}

/// The body of [`issue_helper!`]: issues the certificate [`ISSUE_ENV`] describes; the
/// content is made with OpenSSL and signed first with a throwaway key of the CA's type, then
/// its TBS part is signed again by the CA key in the token (ECDSA P-384 test CAs only).
pub fn issue_helper_main() -> Result<()> {
    use der::{Decode as _, Encode as _};
    use openssl::asn1::{Asn1Integer, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509, X509Builder, X509NameBuilder};
    use tandem_server::pki::CaSigner as _;

    let Ok(spec) = std::env::var(ISSUE_ENV) else {
        return Ok(());
    };
    let mut lines = spec.lines();
    let (Some(data_dir), Some(out_dir), Some(ca), Some(expired)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        bail!("{ISSUE_ENV}: DATA_DIR, OUT_DIR, CLIENT_AUTH, EXPIRED expected");
    };
    let (data_dir, out_dir) = (PathBuf::from(data_dir), PathBuf::from(out_dir));
    let (client_auth, expired) = (ca == "1", expired == "1");
    let sans: Vec<&str> = lines.collect();
    let cfg = tandem_server::config::Config::load(&data_dir)?;
    tandem_server::run::ensure_module_env(&cfg)?;
    let hsm = tandem_server::run::open_hsm(&cfg)?;
    let signer = tandem_server::ca::HsmCaSigner::new(&hsm, tandem_server::ca::ISSUING_KEY_LABEL)?;
    let issuing = X509::from_pem(&std::fs::read(data_dir.join("pki/issuing.pem"))?)?;

    // The certificate's content, signed first with a throwaway key of the CA's type; the
    // TBS part is then signed again by the CA key in the token.
    let group = EcGroup::from_curve_name(Nid::SECP384R1)?;
    let dummy = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "tandem-test-client")?;
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(120, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name.build())?;
    b.set_issuer_name(issuing.subject_name())?;
    b.set_pubkey(&key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let (from, until) = if expired {
        (
            Asn1Time::from_unix(now - 86_400 - 3_600)?,
            Asn1Time::from_unix(now - 86_400)?,
        )
    } else {
        (
            Asn1Time::from_unix(now - 60)?,
            Asn1Time::from_unix(now + 86_400)?,
        )
    };
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    if client_auth {
        b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    }
    if !sans.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for s in &sans {
            san.uri(s);
        }
        b.append_extension(san.build(&b.x509v3_context(Some(&issuing), None))?)?;
    }
    b.sign(&dummy, MessageDigest::sha384())?;
    let draft = x509_cert::Certificate::from_der(&b.build().to_der()?)?;
    let alg = signer.signature_algorithm();
    if draft.signature_algorithm().oid != alg.oid {
        bail!("only ECDSA P-384 test CAs are supported");
    }
    let tbs = draft.tbs_certificate().to_der()?;
    let signature = signer.sign(&tbs)?;
    let mut body = tbs;
    body.extend(draft.signature_algorithm().to_der()?);
    body.extend(der::asn1::BitString::from_bytes(&signature)?.to_der()?);
    let cert = tlv(0x30, &body);
    let cert = X509::from_der(&cert)?;
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("key.pem"), key.private_key_to_pem_pkcs8()?)?;
    std::fs::write(out_dir.join("cert.pem"), cert.to_pem()?)?;
    Ok(())
}

/// A DER TLV with a definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A self-signed client certificate (EKU clientAuth, SAN `urn:uuid:<RP_UUID>`) of a CA
/// that is not ours, made with the openssl command line under `dir`.
pub fn foreign_cert(dir: &Path) -> Result<ClientCert> {
    std::fs::create_dir_all(dir)?;
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=foreign"])
        .args(["-addext", "extendedKeyUsage=clientAuth"])
        .args(["-addext", &format!("subjectAltName=URI:urn:uuid:{RP_UUID}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    if !out.status.success() {
        bail!("openssl req: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(ClientCert { key, cert })
}

/// What curl got: the HTTP status (0 when no answer came, e.g. the handshake failed), the
/// body and curl's exit code.
#[derive(Debug)]
pub struct CurlAnswer {
    /// HTTP status, 0 without an answer.
    pub status: u16,
    /// Response body.
    pub body: String,
    /// curl's exit code.
    pub exit: i32,
    /// curl's stderr.
    pub stderr: String,
}

/// Client credentials for curl.
#[derive(Debug, Clone, Copy)]
pub enum CurlCert<'a> {
    /// None.
    None,
    /// PEM key and certificate.
    Pem(&'a ClientCert),
    /// A .p12 and its password.
    P12(&'a Path, &'a str),
}

/// `curl` against the RP API of `server` (HTTPS, its TLS certificate trusted): `POST` with
/// `body` or `GET` without, the path below the origin.
pub fn curl(
    server: &TestServer,
    cert: CurlCert<'_>,
    path: &str,
    body: Option<&str>,
) -> Result<CurlAnswer> {
    let ca = server.tmp.path().join("server-ca.pem");
    std::fs::write(&ca, &server.ca)?;
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(&ca);
    match cert {
        CurlCert::None => {}
        CurlCert::Pem(c) => {
            cmd.arg("--cert").arg(&c.cert).arg("--key").arg(&c.key);
        }
        CurlCert::P12(p, pw) => {
            cmd.args(["--cert-type", "P12", "--cert"])
                .arg(format!("{}:{pw}", p.display()));
        }
    }
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd
        .arg(format!("{}{path}", server.rest_url))
        .stdin(Stdio::null())
        .output()
        .context("cannot run curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Ok(CurlAnswer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        exit: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A notification authentication start body of the test relying party (`uuid`, `name`).
pub fn auth_body(uuid: &str, name: &str) -> String {
    serde_json::json!({
        "relyingPartyUUID": uuid,
        "relyingPartyName": name,
        "certificateLevel": "QUALIFIED",
        "signatureProtocol": "ACSP_V2",
        "signatureProtocolParameters": {
            "rpChallenge": base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD, [7u8; 32]),
            "signatureAlgorithm": "rsassa-pss",
            "signatureAlgorithmParameters": {"hashAlgorithm": "SHA-512"}
        },
        "interactions": crate::b64_json(r#"[{"type":"displayTextAndPIN","displayText60":"mTLS"}]"#),
        "vcType": "numeric4"
    })
    .to_string()
}

/// `tandem rp-cert ARGS` as the test relying party against `server` (stdin: `stdin`).
pub fn rp_cert_cli(server: &TestServer, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let api = format!("{}/v3", server.rest_url);
    let trust = server.data_dir.to_str().unwrap().to_owned();
    let ca = server.tmp.path().join("server-ca.pem");
    std::fs::write(&ca, &server.ca)?;
    let ca = ca.to_str().unwrap().to_owned();
    let mut all = vec!["rp-cert", "--api", &api, "--trust", &trust, "--tls-ca", &ca];
    all.extend_from_slice(args);
    let env = [("TANDEM_RP_UUID", RP_UUID), ("TANDEM_RP_NAME", RP_NAME)];
    match stdin {
        None => tandem_env(&all, &env),
        Some(input) => {
            use std::io::Write as _;
            let mut child = Command::new(tandem_bin())
                .args(["--log", "warn"])
                .args(&all)
                .envs(env)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "tandem {all:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(String::from_utf8(out.stdout)?)
        }
    }
}

/// An `RpApiClient` for `server`'s RP API (HTTPS with [`crate::rp_api_https_table`]: the
/// server's TLS certificate trusted), presenting `identity` if given.
pub fn rp_client(server: &TestServer, identity: Option<ClientIdentity>) -> Result<RpApiClient> {
    let mut cfg = ClientConfig::new(format!("{}/v3", server.rest_url));
    if server.rest_url.starts_with("https://") {
        cfg = cfg.with_extra_root_pem(server.ca.clone());
    }
    cfg.client_identity = identity;
    Ok(RpApiClient::new(cfg)?)
}

/// An AUTH notification session of relying party `uuid`/`name` for the phone's account,
/// confirmed on the phone with PIN1 `1234`; its id once it completed with OK (the
/// administrator's login of the certificate endpoints).
pub async fn admin_login(
    client: &RpApiClient,
    phone: &Client,
    state: &mut DeviceState,
    uuid: &str,
    name: &str,
) -> Result<String> {
    let req: NotificationAuthenticationRequest = serde_json::from_str(&auth_body(uuid, name))?;
    let user = UserRef::Document(state.document_number.clone());
    let id = client
        .notification_authentication(&user, &req)
        .await?
        .session_id;
    let t = pending_session(phone, state, &id).await?;
    let r = dev::confirm(phone, state, &t, &Pin::new("1234")?, None).await?;
    anyhow::ensure!(
        r.outcome == pb::ConfirmOutcome::Accepted as i32,
        "login not accepted: {r:?}"
    );
    let done = client.wait_for_completion(&id, Some(5_000), |_| {}).await?;
    anyhow::ensure!(
        done.result.as_ref().map(|r| &r.end_result) == Some(&EndResult::Ok),
        "login ended {done:?}"
    );
    Ok(id)
}

/// A new RSA-2048 key made by `openssl req` at `dir/<name>.key` (PKCS#8 PEM) and its
/// PKCS#10 request (`dir/<name>.csr`, DER); base64 of the request.
pub fn new_csr(dir: &Path, name: &str) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let (ok, out) = crate::openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            "/CN=ignored",
            "-outform",
            "DER",
            "-out",
            &format!("{name}.csr"),
        ],
    );
    anyhow::ensure!(ok, "openssl req: {out}");
    Ok(STANDARD.encode(std::fs::read(dir.join(format!("{name}.csr")))?))
}

/// The certificate endpoints' requests of an administrator logged in with `session`
/// through relying party `uuid`/`name`, for that relying party's own certificates.
#[derive(Debug, Clone)]
pub struct CertAdmin {
    /// The relying party (caller and target).
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// The administrator's AUTH session.
    pub session: String,
}

impl CertAdmin {
    /// `list` of the relying party's certificates.
    pub fn list(&self) -> ListRequest {
        ListRequest {
            relying_party_uuid: self.uuid.clone(),
            relying_party_name: self.name.clone(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: Some(self.uuid.clone()),
        }
    }
    /// `create` with (label, base64 CSR) pairs.
    pub fn create(&self, certs: &[(&str, &str)]) -> CreateRequest {
        CreateRequest {
            relying_party_uuid: self.uuid.clone(),
            relying_party_name: self.name.clone(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: self.uuid.clone(),
            certificates: certs
                .iter()
                .map(|(label, csr)| NewRpCert {
                    label: (*label).into(),
                    csr: (*csr).into(),
                })
                .collect(),
        }
    }
    /// `certificate` / `cancel` / `revoke` of creation `id`.
    pub fn cert(&self, id: &str) -> CertificateRequest {
        CertificateRequest {
            relying_party_uuid: self.uuid.clone(),
            relying_party_name: self.name.clone(),
            auth_session_id: self.session.clone(),
            target_relying_party_uuid: self.uuid.clone(),
            certificate_id: id.into(),
        }
    }

    /// Waits (at most `timeout`) until creation `id` is READY; its entry.
    pub async fn wait_ready(
        &self,
        client: &RpApiClient,
        id: &str,
        timeout: std::time::Duration,
    ) -> Result<RpCert> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let o = client.rp_certs_list(&self.list()).await?;
            let c = o
                .relying_parties
                .iter()
                .flat_map(|rp| rp.certificates.iter())
                .find(|c| c.id == id)
                .with_context(|| format!("certificate {id} not listed"))?;
            if c.state == RpCertState::Ready {
                return Ok(c.clone());
            }
            anyhow::ensure!(c.state != RpCertState::Cancelled, "{id} was cancelled");
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{id} not ready: {c:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Downloads issued certificate `id` and writes `dir/<name>.pem` (the certificate, then
    /// its chain: issuing CA, root), the key being `dir/<name>.key` ([`new_csr`]).
    pub async fn download_pem(
        &self,
        client: &RpApiClient,
        id: &str,
        dir: &Path,
        name: &str,
    ) -> Result<ClientCert> {
        let issued = client.rp_certs_certificate(&self.cert(id)).await?;
        let mut pem = cert_pem(&STANDARD.decode(&issued.der)?);
        for c in &issued.chain {
            pem.push_str(&cert_pem(&STANDARD.decode(c)?));
        }
        let cert = dir.join(format!("{name}.pem"));
        std::fs::write(&cert, pem)?;
        Ok(ClientCert {
            key: dir.join(format!("{name}.key")),
            cert,
        })
    }
}

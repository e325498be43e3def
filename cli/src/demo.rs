//! `tandem demo`: a fresh data directory, a real server process, a simulated device, one
//! authentication, one signature, the PIN lockout, and OpenSSL commands that check the
//! signatures independently.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use sha2::{Digest, Sha256};
use tandem_client_core::grpc::{self as dev, Client, ProofOutcome};
use tandem_client_core::pin::{KdfParams, Pin};
use tandem_client_core::types::KeyType;
use tandem_proto::v1 as pb;
use tandem_server::config::Config;
use tandem_server::store::prelude::*;
use tandem_server::store::{Identity, SqliteStore, unix_now};

use super::{describe_key_state, rp_client, runtime, save_state, wait_status};

const MARKER: &str = ".tandem-demo";
const PIN1: &str = "1234";
const PIN2: &str = "12345";

fn step(n: u32, text: &str) -> anyhow::Result<()> {
    outln!("\n== {n}. {text}");
    Ok(())
}

/// Where the demo's server processes (`server init`, `server run`) write their messages and
/// log: the terminal when the user asked for a log filter, else `server.log` in the demo
/// directory, so the demo's own output is not interleaved with log lines.
enum ServerLog {
    Terminal(String),
    File(std::path::PathBuf),
}

impl ServerLog {
    /// The `--log` filter for the server processes.
    fn filter(&self) -> &str {
        match self {
            Self::Terminal(filter) => filter,
            Self::File(_) => "info",
        }
    }

    /// Their standard error.
    fn stderr(&self) -> anyhow::Result<Stdio> {
        match self {
            Self::Terminal(_) => Ok(Stdio::inherit()),
            Self::File(path) => {
                use std::os::unix::fs::OpenOptionsExt as _;
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(tandem_server::fs_mode::PRIVATE_FILE)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Ok(f.into())
            }
        }
    }
}

/// Runs the demo in `dir`. `log`: the log filter the user asked for, if any (then the
/// server logs to standard error, else to `dir/server.log`).
pub fn run(dir: &Path, key_bits: usize, softhsm: bool, log: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        [2048, 3072, 4096].contains(&key_bits),
        "--key-bits must be 2048, 3072 or 4096"
    );
    if dir.exists() {
        anyhow::ensure!(
            dir.join(MARKER).exists(),
            "{} exists and is not an earlier demo directory; choose another --data-dir",
            dir.display()
        );
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(MARKER),
        "created by `tandem demo`; deleted by the next demo run\n",
    )?;
    let exe = std::env::current_exe()?;
    let server_dir = dir.join("server");
    let server_log = match log {
        Some(filter) => ServerLog::Terminal(filter.to_owned()),
        None => ServerLog::File(dir.join("server.log")),
    };

    step(
        1,
        if softhsm {
            "Initialise the server (SoftHSM token, key-encryption key, key-transport key, TLS)"
        } else {
            "Initialise the server (hsm-sim token, key-encryption key, key-transport key, TLS)"
        },
    )?;
    if let ServerLog::File(path) = &server_log {
        outln!(
            "(the server's messages and log go to {}; `tandem --log info demo` shows them here)",
            path.display()
        );
    }
    let status = Command::new(&exe)
        .args(["--log", server_log.filter(), "server", "init"])
        .args(softhsm.then_some("--softhsm"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server_dir)
        .args(["--server-key-bits", &key_bits.to_string()])
        .stderr(server_log.stderr()?)
        .status()
        .context("cannot run `tandem server init`")?;
    if !status.success() {
        match &server_log {
            ServerLog::File(path) => anyhow::bail!("server init failed; see {}", path.display()),
            ServerLog::Terminal(_) => anyhow::bail!("server init failed"),
        }
    }
    let cfg = Config::load(&server_dir)?;

    step(2, "Start the server")?;
    let (server, url, http_url) = super::spawn_server_logging_to(
        &exe,
        &server_dir,
        server_log.filter(),
        server_log.stderr()?,
    )
    .with_context(|| match &server_log {
        ServerLog::File(path) => format!("see {}", path.display()),
        ServerLog::Terminal(_) => "the server did not start".to_owned(),
    })?;
    outln!("server listening on {url} (gRPC) and {http_url} (OCSP, CRL, CA certificates)");

    let ca = std::fs::read(&cfg.tls.cert)?;
    let result = runtime()?.block_on(scenario(dir, &cfg, &url, &ca, key_bits));
    let result = result.and_then(|()| check_certificates(dir, &server_dir, &http_url));
    drop(server);
    result
}

async fn scenario(
    dir: &Path,
    cfg: &Config,
    url: &str,
    ca: &[u8],
    key_bits: usize,
) -> anyhow::Result<()> {
    let client = Client::connect(url, ca).await?;
    let mut rp = rp_client(url, ca).await?;
    let device_dir = dir.join("device");
    tandem_server::fs_mode::create_private_dir(&device_dir)?;

    step(3, "Register a simulated device")?;
    let mut device_id = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut device_id);
    let mut reg = dev::register_start(&client, device_id).await?;
    outln!(
        "device shows registration code {} and matching code {}",
        reg.registration_code,
        reg.matching_code
    );
    let store = SqliteStore::open(&cfg.database)?;
    let approved = store.approve_registration(
        &reg.registration_code,
        &Identity {
            given_name: "MARY".into(),
            surname: "TESTNUMBER".into(),
            country: "EE".into(),
            national_id: "30303039914".into(),
        },
        unix_now(),
    )?;
    outln!(
        "operator approves the code; operator screen shows matching code {}",
        approved.matching_code
    );
    let pin1 = Pin::new(PIN1)?;
    let pin2 = Pin::new(PIN2)?;
    outln!(
        "device generates two {key_bits}-bit client keys, splits them, hands d1'' to the HSM ..."
    );
    dev::submit_keys(
        &client,
        &mut reg,
        &pin1,
        &pin2,
        key_bits,
        KdfParams::default(),
    )
    .await?;
    let mut state = match dev::prove(&client, &reg, &pin1, &pin2).await? {
        ProofOutcome::Completed(s) => *s,
        ProofOutcome::PinMismatch { .. } => anyhow::bail!("registration proof failed"),
    };
    save_state(&device_dir, &state)?;
    outln!(
        "registered {} {}: document number {} (PIN1 {PIN1}, PIN2 {PIN2})",
        state.given_name,
        state.surname,
        state.document_number
    );
    let doc = state.document_number.clone();

    step(
        4,
        "Authentication (AUTH key, PIN1, RSASSA-PKCS1-v1_5 / SHA-256)",
    )?;
    let mut challenge = [0u8; 64];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut challenge);
    std::fs::write(dir.join("auth-challenge.bin"), challenge)?;
    let start = rp
        .start_authentication(request(
            &doc,
            Sha256::digest(challenge).to_vec(),
            pb::SignatureScheme::Pkcs1V15,
            "Log in to Demo Bank",
            false,
        ))
        .await?
        .into_inner();
    outln!(
        "relying party shows verification code {}",
        start.verification_code
    );
    let pending = dev::list_pending(&client, &state).await?;
    let t = pending.first().context("the device sees no transaction")?;
    let prompt = dev::prompt(&state, t)?;
    outln!(
        "device shows: {} asks {:?}, code {}",
        prompt.relying_party,
        prompt.display_text,
        prompt.verification_code
    );
    let r = dev::confirm(&client, &mut state, t, &pin1, None).await?;
    save_state(&device_dir, &state)?;
    anyhow::ensure!(
        r.outcome == pb::ConfirmOutcome::Accepted as i32,
        "authentication was not accepted"
    );
    let st = wait_status(&mut rp, &start.transaction_id, 10).await?;
    write_result(dir, "auth", &st)?;
    outln!("result: OK, signature by {}", st.document_number);

    step(
        5,
        "Signature (SIGN key, PIN2, RSASSA-PSS / SHA-256, three-code choice)",
    )?;
    let document = "I agree to pay 100.00 EUR to Demo Shop.\n";
    std::fs::write(dir.join("document.txt"), document)?;
    let start = rp
        .start_signature(request(
            &doc,
            Sha256::digest(document.as_bytes()).to_vec(),
            pb::SignatureScheme::Pss,
            "Pay 100.00 EUR to Demo Shop",
            true,
        ))
        .await?
        .into_inner();
    outln!(
        "relying party shows verification code {}",
        start.verification_code
    );
    let pending = dev::list_pending(&client, &state).await?;
    let t = pending.first().context("the device sees no transaction")?;
    let prompt = dev::prompt(&state, t)?;
    outln!(
        "device offers {}; the person picks {}",
        prompt.vc_choices.join(" / "),
        start.verification_code
    );
    let r = dev::confirm(
        &client,
        &mut state,
        t,
        &pin2,
        Some(&start.verification_code),
    )
    .await?;
    save_state(&device_dir, &state)?;
    anyhow::ensure!(
        r.outcome == pb::ConfirmOutcome::Accepted as i32,
        "signature was not accepted"
    );
    let st = wait_status(&mut rp, &start.transaction_id, 10).await?;
    write_result(dir, "sign", &st)?;
    outln!("result: OK");

    step(6, "Three wrong PIN1 entries lock the AUTH key")?;
    let start = rp
        .start_authentication(request(
            &doc,
            Sha256::digest(b"another login").to_vec(),
            pb::SignatureScheme::Pkcs1V15,
            "Log in to Demo Bank",
            false,
        ))
        .await?
        .into_inner();
    let pending = dev::list_pending(&client, &state).await?;
    let t = pending
        .iter()
        .find(|t| t.transaction_id == start.transaction_id)
        .context("no transaction")?
        .clone();
    for wrong in ["0000", "1111", "2222"] {
        let r = dev::confirm(&client, &mut state, &t, &Pin::new(wrong)?, None).await?;
        save_state(&device_dir, &state)?;
        let outcome = pb::ConfirmOutcome::try_from(r.outcome)
            .map(|o| o.as_str_name().trim_start_matches("CONFIRM_OUTCOME_"))
            .unwrap_or("?");
        let ks = r
            .key_state
            .as_ref()
            .map(describe_key_state)
            .unwrap_or_default();
        outln!("PIN1 {wrong}: {outcome}; {ks}");
    }
    let st = wait_status(&mut rp, &start.transaction_id, 5).await?;
    outln!(
        "relying party sees: {}",
        pb::EndResult::try_from(st.end_result)
            .map(|r| r.as_str_name().trim_start_matches("END_RESULT_"))
            .unwrap_or("?")
    );
    let again = rp
        .start_authentication(request(
            &doc,
            Sha256::digest(b"third login").to_vec(),
            pb::SignatureScheme::Pkcs1V15,
            "Log in to Demo Bank",
            false,
        ))
        .await;
    match again {
        Err(s) => outln!(
            "a new authentication is refused while locked: {}",
            s.message()
        ),
        Ok(_) => anyhow::bail!("a locked key accepted a new transaction"),
    }
    for s in dev::key_state(&client, &state).await? {
        outln!("{}", describe_key_state(&s));
    }

    step(7, "Check the signatures independently with OpenSSL")?;
    let auth_pem = std::fs::read_to_string(dir.join("auth-public-key.pem"))?;
    outln!("composite AUTH public key (n = n1·n2, e = 65537):\n{auth_pem}");
    let sign_sig = std::fs::read(dir.join("sign-signature.bin"))?;
    outln!(
        "signature over document.txt (RSASSA-PSS, SHA-256, base64):\n{}\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sign_sig)
    );
    let d = dir.display();
    let commands = [
        format!(
            "openssl dgst -sha256 -verify {d}/auth-public-key.pem -signature {d}/auth-signature.bin {d}/auth-challenge.bin"
        ),
        format!(
            "openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify {d}/sign-public-key.pem -signature {d}/sign-signature.bin {d}/document.txt"
        ),
    ];
    for cmd in &commands {
        outln!("$ {cmd}");
        match Command::new("sh").arg("-c").arg(cmd).output() {
            Ok(out) => {
                out!("{}", String::from_utf8_lossy(&out.stdout));
                eprint!("{}", String::from_utf8_lossy(&out.stderr));
                anyhow::ensure!(out.status.success(), "OpenSSL did not accept the signature");
            }
            Err(e) => outln!("(openssl not available here: {e})"),
        }
    }
    Ok(())
}

/// Step 8: the account's certificates chain to our CA and OCSP answers for them.
fn check_certificates(dir: &Path, server_dir: &Path, http_url: &str) -> anyhow::Result<()> {
    step(
        8,
        "The account's X.509 certificates (issued by the CA in the HSM) and OCSP",
    )?;
    let state = super::load_state(&dir.join("device"))?;
    for name in ["root.pem", "issuing.pem"] {
        std::fs::copy(
            tandem_server::ca::pki_dir(server_dir).join(name),
            dir.join(name),
        )?;
    }
    for (kt, name) in [
        (KeyType::Auth, "auth-cert.pem"),
        (KeyType::Sign, "sign-cert.pem"),
    ] {
        let der = &state.key_pair(kt).context("key pair")?.certificate;
        std::fs::write(dir.join(name), super::pem_encode("CERTIFICATE", der))?;
    }
    let d = dir.display();
    let commands = [
        format!(
            "openssl verify -CAfile {d}/root.pem -untrusted {d}/issuing.pem {d}/auth-cert.pem {d}/sign-cert.pem"
        ),
        format!(
            "openssl x509 -in {d}/sign-cert.pem -noout -subject -ext keyUsage,certificatePolicies"
        ),
        format!(
            "openssl ocsp -issuer {d}/issuing.pem -cert {d}/sign-cert.pem -url {http_url}/ocsp -CAfile {d}/root.pem -VAfile {d}/issuing.pem"
        ),
    ];
    for cmd in &commands {
        outln!("$ {cmd}");
        let out = Command::new("sh").arg("-c").arg(cmd).output()?;
        out!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        anyhow::ensure!(
            out.status.success(),
            "OpenSSL did not accept the certificates"
        );
    }
    outln!("\ndemo finished; files are in {d}");
    Ok(())
}

/// A relying-party request for the demo account.
fn request(
    document_number: &str,
    digest: Vec<u8>,
    scheme: pb::SignatureScheme,
    text: &str,
    vc_choice: bool,
) -> pb::StartTransactionRequest {
    pb::StartTransactionRequest {
        relying_party_name: "Demo Bank".into(),
        target: Some(pb::start_transaction_request::Target::DocumentNumber(
            document_number.into(),
        )),
        hash: pb::HashAlgorithm::Sha256 as i32,
        digest,
        scheme: scheme as i32,
        display_text: text.into(),
        vc_choice,
        timeout_seconds: 0,
    }
}

fn write_result(dir: &Path, name: &str, st: &pb::TransactionStatus) -> anyhow::Result<()> {
    anyhow::ensure!(
        st.end_result == pb::EndResult::Ok as i32,
        "{name}: transaction did not end OK"
    );
    let kp = st
        .key_pair
        .as_ref()
        .context("no public key in the result")?;
    std::fs::write(dir.join(format!("{name}-signature.bin")), &st.signature)?;
    std::fs::write(
        dir.join(format!("{name}-public-key.pem")),
        tandem_server::pki::rsa_spki_pem(&kp.composite_modulus)?,
    )?;
    Ok(())
}

//! The HSM layer against SoftHSM 2.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, once per process, and
//! setting an environment variable in-process is `unsafe` (forbidden in this workspace).
//! So each test provisions its own token with `deploy/softhsm-provision.sh` and runs its
//! body in a child process of this test binary (`<exe> <test> --exact`) with
//! `SOFTHSM2_CONF` set. That works the same under `cargo test` (tests as threads) and
//! nextest (a process per test). The child leaves a marker file so that a test that
//! silently did not run fails.
//!
//! Module: `TANDEM_TEST_PKCS11_MODULE`, default `/usr/lib/softhsm/libsofthsm2.so`.
//! Timings are printed; see them with `-- --nocapture`.

// The workspace warns on unwrap for server code; in tests a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use rand::{Rng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, RsaPublicKey};
use tandem_client_core::envelope::{self, EnvelopeKey, EnvelopeParts};
use tandem_server::hsm::*;

const TOKEN_LABEL: &str = "tandem-test";
const CHILD_DIR_ENV: &str = "TANDEM_HSM_TEST_CHILD_DIR";

/// `TANDEM_TEST_HSM=hsm-sim` runs this suite against hsm-sim instead of SoftHSM (CI runs
/// it both ways).
fn use_hsm_sim() -> bool {
    std::env::var("TANDEM_TEST_HSM").as_deref() == Ok("hsm-sim")
}

fn module_path() -> PathBuf {
    let path = std::env::var_os("TANDEM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            if use_hsm_sim() {
                // target/debug/deps/<this test> → target/debug/libtandem_hsm_sim.so
                let exe = std::env::current_exe().expect("current exe");
                exe.parent()
                    .and_then(Path::parent)
                    .expect("target directory")
                    .join("libtandem_hsm_sim.so")
            } else {
                PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
            }
        });
    assert!(
        path.exists(),
        "PKCS#11 module {} not found: install SoftHSM 2 (apt install softhsm2), build hsm-sim \
         (cargo build -p tandem-hsm-sim) or set TANDEM_TEST_PKCS11_MODULE",
        path.display()
    );
    path
}

fn provision_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/softhsm-provision.sh")
}

fn config(dir: &Path) -> HsmConfig {
    HsmConfig {
        module_path: module_path(),
        token_label: TOKEN_LABEL.into(),
        user_pin: TokenPin::from_file(dir.join("user-pin")).expect("read the PIN file"),
    }
}

/// Runs `body` in a child process with a freshly provisioned token of its own.
/// `name` must be the name of the calling test function.
fn with_fresh_token(name: &str, body: impl FnOnce(&Path)) {
    with_fresh_token_env(name, &[], body);
}

/// [`with_fresh_token`] with extra environment variables for the child process.
fn with_fresh_token_env(name: &str, env: &[(&str, &str)], body: impl FnOnce(&Path)) {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        let dir = PathBuf::from(dir);
        if use_hsm_sim() {
            // The module read TANDEM_HSM_SIM_DIR (a fresh directory) when it loaded.
            provision_token(
                &module_path(),
                TOKEN_LABEL,
                &TokenPin::from_file(dir.join("so-pin")).expect("SO PIN"),
                &TokenPin::from_file(dir.join("user-pin")).expect("user PIN"),
            )
            .expect("provision the hsm-sim token");
        }
        body(&dir);
        std::fs::write(dir.join(format!("ran-{name}")), b"ok").expect("write marker");
        return;
    }

    let module = module_path();
    let dir = tempfile::tempdir().expect("tempdir");
    if use_hsm_sim() {
        for (file, pin) in [("so-pin", "so-pin-1234"), ("user-pin", "user-pin-1234")] {
            std::fs::write(dir.path().join(file), pin).expect("write PIN");
            std::fs::set_permissions(
                dir.path().join(file),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .expect("chmod PIN");
        }
        let tokens = dir.path().join("tokens");
        run_child(
            name,
            dir.path(),
            &module,
            ("TANDEM_HSM_SIM_DIR", tokens.as_path()),
            env,
        );
        return;
    }
    let out = Command::new("bash")
        .arg(provision_script())
        .arg(dir.path())
        .arg(TOKEN_LABEL)
        .arg(dir.path().join("user-pin"))
        .output()
        .expect("run softhsm-provision.sh");
    assert!(
        out.status.success(),
        "softhsm-provision.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let conf = dir.path().canonicalize().unwrap().join("softhsm2.conf");
    assert_eq!(
        stdout.trim_end(),
        format!("export SOFTHSM2_CONF={}", conf.display())
    );

    run_child(
        name,
        dir.path(),
        &module,
        ("SOFTHSM2_CONF", conf.as_path()),
        env,
    );
}

/// Runs test `name` of this binary in a child process on token directory `dir`, with the
/// module's own environment variable `module_env` and `env`; checks that it ran and passed.
fn run_child(
    name: &str,
    dir: &Path,
    module: &Path,
    module_env: (&str, &Path),
    env: &[(&str, &str)],
) {
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_DIR_ENV, dir)
        .env(module_env.0, module_env.1)
        .env("TANDEM_TEST_PKCS11_MODULE", module)
        .envs(env.iter().copied())
        .status()
        .expect("spawn the test child");
    assert!(status.success(), "test body failed in the child process");
    assert!(
        dir.join(format!("ran-{name}")).exists(),
        "the child process did not run test {name}"
    );
}

fn open(dir: &Path) -> Hsm {
    Hsm::open(&config(dir)).expect("open the HSM")
}

/// An independent raw PKCS#11 session in this process (same application, so it shares the
/// login of `Hsm`), used to inspect objects behind the API's back.
fn raw_session() -> Session {
    let ctx = Pkcs11::new(module_path()).expect("load module");
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| ctx.get_token_info(*slot).unwrap().label().trim_end() == TOKEN_LABEL)
        .expect("token");
    ctx.open_rw_session(slot).expect("open session")
}

fn find(session: &Session, label: &str, class: ObjectClass) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "{label} objects");
    found[0]
}

/// Session objects (keys) of this application left on the token.
fn session_keys_left(session: &Session) -> usize {
    [
        ObjectClass::PRIVATE_KEY,
        ObjectClass::PUBLIC_KEY,
        ObjectClass::SECRET_KEY,
    ]
    .into_iter()
    .map(|class| {
        session
            .find_objects(&[Attribute::Token(false), Attribute::Class(class)])
            .unwrap()
            .len()
    })
    .sum()
}

fn bool_attr(session: &Session, key: ObjectHandle, ty: AttributeType) -> Option<bool> {
    session
        .get_attributes(key, &[ty])
        .unwrap()
        .into_iter()
        .find_map(|a| match a {
            Attribute::Extractable(b)
            | Attribute::Sensitive(b)
            | Attribute::NeverExtractable(b)
            | Attribute::AlwaysSensitive(b)
            | Attribute::Derive(b)
            | Attribute::Decrypt(b)
            | Attribute::Token(b) => Some(b),
            _ => None,
        })
}

fn has_attr(session: &Session, key: ObjectHandle, ty: AttributeType) -> bool {
    !session.get_attributes(key, &[ty]).unwrap().is_empty()
}

/// What a device does: RSA-OAEP(SHA-1) of a fresh AES-256 key to the transport key, and
/// AES-256-GCM of the payload with AAD.
struct Envelope {
    wrapped_key: Vec<u8>,
    iv: [u8; 12],
    ciphertext_and_tag: Vec<u8>,
}

fn seal_envelope(transport: &RsaPublicKey, oaep: Oaep, plaintext: &[u8], aad: &[u8]) -> Envelope {
    let mut rng = rand::thread_rng();
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    let mut iv = [0u8; 12];
    rng.fill_bytes(&mut iv);
    let wrapped_key = transport.encrypt(&mut rng, oaep, &key).unwrap();
    let ciphertext_and_tag = Aes256Gcm::new_from_slice(&key)
        .unwrap()
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap();
    Envelope {
        wrapped_key,
        iv,
        ciphertext_and_tag,
    }
}

fn transport_key(hsm: &Hsm) -> RsaPublicKey {
    RsaPublicKey::from_public_key_der(&hsm.transport_public_key_der().unwrap())
        .expect("transport key DER parses")
}

/// Checks s^e mod n == x mod n.
fn assert_raw_signature(modulus: &[u8], x: &[u8], s: &[u8]) {
    assert_eq!(s.len(), modulus.len(), "s2 is padded to the modulus length");
    let n = BigUint::from_bytes_be(modulus);
    let e = BigUint::from(65537u32);
    assert_eq!(
        BigUint::from_bytes_be(s).modpow(&e, &n),
        BigUint::from_bytes_be(x) % &n,
        "s^e mod n != x"
    );
}

fn random_x(modulus: &[u8]) -> Vec<u8> {
    let mut x = vec![0u8; modulus.len()];
    rand::thread_rng().fill_bytes(&mut x);
    x[0] &= 0x7f; // below n (the top bit of n is set)
    x
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
fn objects_are_idempotent_and_not_extractable() {
    with_fresh_token("objects_are_idempotent_and_not_extractable", |dir| {
        let hsm = open(dir);
        assert!(matches!(
            hsm.seal_at_rest(b"x", b""),
            Err(HsmError::ObjectMissing { .. })
        ));
        assert!(matches!(
            hsm.transport_public_key_der(),
            Err(HsmError::ObjectMissing { .. })
        ));

        let first = hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        assert_eq!(first.kek, ObjectStatus::Created);
        assert_eq!(first.transport_key, ObjectStatus::Created);
        assert_eq!(first.transport_key_spec, TransportKeySpec::Rsa(2048));
        let second = hsm.ensure_objects(TransportKeySpec::Rsa(3072)).unwrap();
        assert_eq!(second.kek, ObjectStatus::Found);
        assert_eq!(second.transport_key, ObjectStatus::Found);
        assert_eq!(
            second.transport_key_spec,
            TransportKeySpec::Rsa(2048),
            "the existing key is kept"
        );

        // A second Hsm in the same process (already logged in) finds the same objects.
        let again = open(dir);
        assert_eq!(
            again.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap(),
            second
        );
        assert_eq!(
            again.transport_public_key_der().unwrap(),
            hsm.transport_public_key_der().unwrap()
        );

        let raw = raw_session();
        let kek = find(&raw, KEK_LABEL, ObjectClass::SECRET_KEY);
        let transport = find(&raw, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY);
        let transport_pub = find(&raw, TRANSPORT_KEY_LABEL, ObjectClass::PUBLIC_KEY);
        for key in [kek, transport] {
            assert_eq!(bool_attr(&raw, key, AttributeType::Token), Some(true));
            assert_eq!(
                bool_attr(&raw, key, AttributeType::Extractable),
                Some(false)
            );
            assert_eq!(bool_attr(&raw, key, AttributeType::Sensitive), Some(true));
            assert_eq!(
                bool_attr(&raw, key, AttributeType::NeverExtractable),
                Some(true)
            );
        }
        assert!(
            !has_attr(&raw, kek, AttributeType::Value),
            "KEK value readable"
        );
        assert!(
            !has_attr(&raw, transport, AttributeType::PrivateExponent),
            "transport private exponent readable"
        );
        assert!(!has_attr(&raw, transport, AttributeType::Prime1));
        assert!(has_attr(&raw, transport, AttributeType::Modulus));
        // Nor can they be wrapped out of the token.
        let wrap_kek = raw.wrap_key(
            &Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
                MechanismType::SHA1,
                PkcsMgfType::MGF1_SHA1,
                PkcsOaepSource::empty(),
            )),
            transport_pub,
            kek,
        );
        assert!(
            matches!(
                wrap_kek,
                Err(CryptokiError::Pkcs11(RvError::KeyUnextractable, _))
            ),
            "{wrap_kek:?}"
        );
        let wrap_transport = raw.wrap_key(&Mechanism::AesKeyWrapPad, kek, transport);
        assert!(
            matches!(
                wrap_transport,
                Err(CryptokiError::Pkcs11(RvError::KeyUnextractable, _))
            ),
            "{wrap_transport:?}"
        );
    });
}

#[test]
fn wrong_pin_and_unknown_token_are_rejected() {
    with_fresh_token("wrong_pin_and_unknown_token_are_rejected", |dir| {
        let mut bad = config(dir);
        bad.user_pin = TokenPin::new("not-the-pin".into());
        let err = Hsm::open(&bad).unwrap_err();
        assert_eq!(err.rv(), Some(RvError::PinIncorrect), "{err}");
        assert!(!format!("{err} {err:?}").contains("not-the-pin"));

        let mut unknown = config(dir);
        unknown.token_label = "no-such-token".into();
        assert!(matches!(
            Hsm::open(&unknown),
            Err(HsmError::TokenNotFound { .. })
        ));

        open(dir)
            .ensure_objects(TransportKeySpec::Rsa(2048))
            .unwrap();
    });
}

#[test]
fn envelope_opens_in_the_hsm() {
    with_fresh_token("envelope_opens_in_the_hsm", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let transport = transport_key(&hsm);
        assert_eq!(transport.size(), 256);
        assert_eq!(transport.e(), &BigUint::from(65537u32));

        let plaintext = b"d1'' share of account 42".to_vec();
        let aad = b"tandem/v1/registration/42";
        let env = seal_envelope(&transport, Oaep::new::<sha1::Sha1>(), &plaintext, aad);
        let opened = hsm
            .open_envelope(
                EnvelopeKey::RsaOaep(&env.wrapped_key),
                &env.iv,
                &env.ciphertext_and_tag,
                aad,
            )
            .unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice());

        // Wrong AAD, IV, ciphertext, tag or wrapped key: one opaque error.
        let open = |wk: &[u8], iv: &[u8; 12], ct: &[u8], aad: &[u8]| {
            hsm.open_envelope(EnvelopeKey::RsaOaep(wk), iv, ct, aad)
                .map(|p| p.to_vec())
        };
        assert!(matches!(
            open(&env.wrapped_key, &env.iv, &env.ciphertext_and_tag, b"other"),
            Err(HsmError::Decryption)
        ));
        let mut iv = env.iv;
        iv[0] ^= 1;
        assert!(matches!(
            open(&env.wrapped_key, &iv, &env.ciphertext_and_tag, aad),
            Err(HsmError::Decryption)
        ));
        for i in [0, env.ciphertext_and_tag.len() - 1] {
            let mut ct = env.ciphertext_and_tag.clone();
            ct[i] ^= 1;
            assert!(matches!(
                open(&env.wrapped_key, &env.iv, &ct, aad),
                Err(HsmError::Decryption)
            ));
        }
        assert!(matches!(
            open(
                &env.wrapped_key,
                &env.iv,
                &env.ciphertext_and_tag[..10],
                aad
            ),
            Err(HsmError::Decryption)
        ));
        let mut wk = env.wrapped_key.clone();
        wk[100] ^= 1;
        let tampered_key = open(&wk, &env.iv, &env.ciphertext_and_tag, aad);
        assert!(
            matches!(tampered_key, Err(HsmError::Decryption)),
            "{tampered_key:?}"
        );
        // A different content key (here: garbage of the wrong size) does not open it either.
        let other = transport
            .encrypt(
                &mut rand::thread_rng(),
                Oaep::new::<sha1::Sha1>(),
                &[7u8; 16],
            )
            .unwrap();
        assert!(matches!(
            open(&other, &env.iv, &env.ciphertext_and_tag, aad),
            Err(HsmError::Decryption)
        ));

        // OAEP with SHA-256 (as the device might prefer): what does this module accept?
        let env256 = seal_envelope(&transport, Oaep::new::<sha2::Sha256>(), &plaintext, aad);
        let via_api = open(
            &env256.wrapped_key,
            &env256.iv,
            &env256.ciphertext_and_tag,
            aad,
        );
        assert!(
            matches!(via_api, Err(HsmError::Decryption)),
            "the API uses OAEP-SHA-1 only"
        );
        let raw = raw_session();
        let tk = find(&raw, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY);
        for (name, hash, mgf) in [
            (
                "SHA-1/MGF1-SHA-1",
                MechanismType::SHA1,
                PkcsMgfType::MGF1_SHA1,
            ),
            (
                "SHA-256/MGF1-SHA-256",
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
            ),
        ] {
            let wk = if hash == MechanismType::SHA1 {
                &env.wrapped_key
            } else {
                &env256.wrapped_key
            };
            let result = raw.unwrap_key(
                &Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty())),
                tk,
                wk,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(false),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Decrypt(true),
                ],
            );
            match &result {
                Ok(handle) => {
                    println!("OAEP {name}: accepted by C_UnwrapKey");
                    raw.destroy_object(*handle).unwrap();
                }
                Err(e) => println!("OAEP {name}: rejected: {e:?}"),
            }
            if hash == MechanismType::SHA1 {
                assert!(result.is_ok());
            }
        }

        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let opened = hsm
                .open_envelope(
                    EnvelopeKey::RsaOaep(&env.wrapped_key),
                    &env.iv,
                    &env.ciphertext_and_tag,
                    aad,
                )
                .unwrap();
            samples.push(start.elapsed());
            assert_eq!(opened.as_slice(), plaintext.as_slice());
        }
        println!(
            "timing: open_envelope (RSA-2048 transport) median {:?}",
            median(samples)
        );
        assert_eq!(session_keys_left(&raw), 0, "content keys left behind");
    });
}

/// The default transport key: EC P-256, envelopes opened by an ECDH inside the HSM. The
/// device side is client-core's `envelope::seal` (pure Rust); the HSM is SoftHSM or hsm-sim.
#[test]
fn ecdh_envelope_opens_in_the_hsm() {
    with_fresh_token("ecdh_envelope_opens_in_the_hsm", |dir| {
        let hsm = open(dir);
        let report = hsm.ensure_objects(TransportKeySpec::EcP256).unwrap();
        assert_eq!(report.transport_key_spec, TransportKeySpec::EcP256);
        // An existing key is kept whatever is asked for.
        let again = hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        assert_eq!(again.transport_key, ObjectStatus::Found);
        assert_eq!(again.transport_key_spec, TransportKeySpec::EcP256);

        // The SPKI is a P-256 key that OpenSSL reads.
        let spki = hsm.transport_public_key_der().unwrap();
        let pkey = openssl::pkey::PKey::public_key_from_der(&spki).expect("OpenSSL reads the SPKI");
        let ec = pkey.ec_key().expect("an EC key");
        assert_eq!(
            ec.group().curve_name(),
            Some(openssl::nid::Nid::X9_62_PRIME256V1)
        );
        ec.check_key().expect("point on the curve");

        // The private half: sensitive, never extractable, may only derive.
        let raw = raw_session();
        let tk = find(&raw, TRANSPORT_KEY_LABEL, ObjectClass::PRIVATE_KEY);
        assert_eq!(bool_attr(&raw, tk, AttributeType::Sensitive), Some(true));
        assert_eq!(bool_attr(&raw, tk, AttributeType::Extractable), Some(false));
        assert_eq!(bool_attr(&raw, tk, AttributeType::Derive), Some(true));
        assert_eq!(bool_attr(&raw, tk, AttributeType::Decrypt), Some(false));
        assert!(
            !has_attr(&raw, tk, AttributeType::Value),
            "EC scalar readable"
        );

        let mut rng = rand::thread_rng();
        let plaintext = b"s1' of transaction 7".to_vec();
        let aad = envelope::aad_partial_signature(
            "tx-7",
            "acc-1",
            tandem_client_core::types::KeyType::Sign,
        );
        let blob = envelope::seal(&spki, &plaintext, &aad, &mut rng).unwrap();
        let parts = EnvelopeParts::parse(&blob).unwrap();
        let EnvelopeKey::EcdhP256(point) = parts.key else {
            panic!("an EC transport key gives ECDH envelopes");
        };
        let opened = hsm
            .open_envelope(parts.key, &parts.iv, parts.ciphertext, &aad)
            .unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice());

        let open = |key: EnvelopeKey<'_>, ct: &[u8], aad: &[u8]| {
            hsm.open_envelope(key, &parts.iv, ct, aad)
                .map(|p| p.to_vec())
        };
        // Wrong AAD, a flipped ciphertext bit, another point on the curve, a point off the
        // curve, an RSA envelope for an EC key: one opaque error each.
        assert!(matches!(
            open(parts.key, parts.ciphertext, b"other"),
            Err(HsmError::Decryption)
        ));
        let mut ct = parts.ciphertext.to_vec();
        ct[0] ^= 1;
        assert!(matches!(
            open(parts.key, &ct, &aad),
            Err(HsmError::Decryption)
        ));
        let other = envelope::seal(&spki, &plaintext, &aad, &mut rng).unwrap();
        let other = EnvelopeParts::parse(&other).unwrap();
        assert!(matches!(
            open(other.key, parts.ciphertext, &aad),
            Err(HsmError::Decryption)
        ));
        let mut off_curve = *point;
        off_curve[64] ^= 1;
        let r = open(EnvelopeKey::EcdhP256(&off_curve), parts.ciphertext, &aad);
        assert!(matches!(r, Err(HsmError::Decryption)), "{r:?}");
        assert!(matches!(
            open(EnvelopeKey::RsaOaep(&[1u8; 256]), parts.ciphertext, &aad),
            Err(HsmError::Decryption)
        ));
        // The HSM still works after refused input.
        assert_eq!(open(parts.key, parts.ciphertext, &aad).unwrap(), plaintext);

        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let opened = hsm
                .open_envelope(parts.key, &parts.iv, parts.ciphertext, &aad)
                .unwrap();
            samples.push(start.elapsed());
            assert_eq!(opened.as_slice(), plaintext.as_slice());
        }
        println!(
            "timing: open_envelope (EC P-256 transport) median {:?}",
            median(samples)
        );
        assert_eq!(session_keys_left(&raw), 0, "derived secrets left behind");
    });
}

#[test]
fn reply_key_macs_in_the_token() {
    with_fresh_token("reply_key_macs_in_the_token", |dir| {
        let hsm = open(dir);
        assert!(matches!(
            hsm.reply_mac(b"x"),
            Err(HsmError::ObjectMissing { .. })
        ));
        // A data directory from before the reply key: the server creates it on start.
        assert_eq!(hsm.ensure_reply_key().unwrap(), ObjectStatus::Created);
        assert_eq!(hsm.ensure_reply_key().unwrap(), ObjectStatus::Found);
        let report = hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        assert_eq!(report.reply_key, ObjectStatus::Found);

        let a = hsm.reply_mac(b"scope|nonce|request").unwrap();
        assert_eq!(
            *a,
            *hsm.reply_mac(b"scope|nonce|request").unwrap(),
            "deterministic"
        );
        assert_ne!(*a, *hsm.reply_mac(b"scope|nonce|request!").unwrap());
        assert_ne!(*a, [0u8; 32]);
        // A second Hsm (another server process would be the same) derives the same key.
        assert_eq!(*open(dir).reply_mac(b"scope|nonce|request").unwrap(), *a);

        // The key is HMAC-SHA-256 with a key that cannot be read or wrapped out.
        let raw = raw_session();
        let key = find(&raw, REPLY_KEY_LABEL, ObjectClass::SECRET_KEY);
        assert_eq!(bool_attr(&raw, key, AttributeType::Token), Some(true));
        assert_eq!(bool_attr(&raw, key, AttributeType::Sensitive), Some(true));
        assert_eq!(
            bool_attr(&raw, key, AttributeType::Extractable),
            Some(false)
        );
        assert_eq!(bool_attr(&raw, key, AttributeType::Decrypt), Some(false));
        assert!(
            !has_attr(&raw, key, AttributeType::Value),
            "reply key value readable"
        );
        let kek = find(&raw, KEK_LABEL, ObjectClass::SECRET_KEY);
        let wrapped = raw.wrap_key(&Mechanism::AesKeyWrapPad, kek, key);
        assert!(
            matches!(
                wrapped,
                Err(CryptokiError::Pkcs11(RvError::KeyUnextractable, _))
            ),
            "{wrapped:?}"
        );
        let mac = raw
            .sign(&Mechanism::Sha256Hmac, key, b"scope|nonce|request")
            .unwrap();
        assert_eq!(
            mac.as_slice(),
            a.as_slice(),
            "reply_mac is plain HMAC-SHA-256"
        );
    });
}

#[test]
fn sealed_at_rest_round_trip() {
    with_fresh_token("sealed_at_rest_round_trip", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let secret = b"d1'' = 0x1234...".to_vec();
        let aad = b"account:42/share:d1";
        let blob = hsm.seal_at_rest(&secret, aad).unwrap();
        assert_eq!(blob.len(), 2 + 12 + secret.len() + 16);
        assert_eq!(&blob[..2], &[0x01, 0x01]);
        assert!(!blob.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert_eq!(
            hsm.open_at_rest(&blob, aad).unwrap().as_slice(),
            secret.as_slice()
        );
        let blob2 = hsm.seal_at_rest(&secret, aad).unwrap();
        assert_ne!(blob[2..14], blob2[2..14], "fresh IV per seal");

        assert!(matches!(
            hsm.open_at_rest(&blob, b"account:43/share:d1"),
            Err(HsmError::Decryption)
        ));
        for i in 2..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x80;
            assert!(
                matches!(hsm.open_at_rest(&tampered, aad), Err(HsmError::Decryption)),
                "byte {i}"
            );
        }
        let mut v2 = blob.clone();
        v2[0] = 0x02;
        assert!(matches!(
            hsm.open_at_rest(&v2, aad),
            Err(HsmError::BadBlob(_))
        ));
        let mut alg = blob.clone();
        alg[1] = 0x02;
        assert!(matches!(
            hsm.open_at_rest(&alg, aad),
            Err(HsmError::BadBlob(_))
        ));
        assert!(matches!(
            hsm.open_at_rest(&blob[..2 + 12 + 15], aad),
            Err(HsmError::BadBlob(_))
        ));
        assert!(matches!(
            hsm.open_at_rest(&[], aad),
            Err(HsmError::BadBlob(_))
        ));

        let empty = hsm.seal_at_rest(b"", b"").unwrap();
        assert!(hsm.open_at_rest(&empty, b"").unwrap().is_empty());

        let r1 = hsm.random(32).unwrap();
        let r2 = hsm.random(32).unwrap();
        assert_eq!(r1.len(), 32);
        assert_ne!(r1, r2);
        assert!(hsm.random(0).unwrap().is_empty());
    });
}

#[test]
fn server_key_signs_raw() {
    with_fresh_token("server_key_signs_raw", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let key = hsm.generate_server_key(2048).unwrap();
        assert_eq!(key.modulus.len(), 256);
        assert!(key.modulus[0] & 0x80 != 0);
        assert_eq!(&key.wrapped_private_key[..2], &[0x01, 0x02]);
        assert!(!format!("{key:?}").contains(&hex::encode(&key.wrapped_private_key[2..10])));

        for _ in 0..3 {
            let x = random_x(&key.modulus);
            let s = hsm
                .sign_raw(&key.wrapped_private_key, &key.modulus, &x)
                .unwrap();
            assert_raw_signature(&key.modulus, &x, &s);
        }
        // Short x is padded, x >= n is reduced.
        let s = hsm
            .sign_raw(&key.wrapped_private_key, &key.modulus, &[2])
            .unwrap();
        assert_raw_signature(&key.modulus, &[2], &s);
        let mut big = vec![0xff; key.modulus.len()];
        big.push(0x01);
        let s = hsm
            .sign_raw(&key.wrapped_private_key, &key.modulus, &big)
            .unwrap();
        assert_raw_signature(&key.modulus, &big, &s);
        // A leading zero on the expected modulus is fine.
        let mut padded_n = vec![0];
        padded_n.extend_from_slice(&key.modulus);
        let x = random_x(&key.modulus);
        let s = hsm
            .sign_raw(&key.wrapped_private_key, &padded_n, &x)
            .unwrap();
        assert_raw_signature(&key.modulus, &x, &s);

        // Another account's modulus: wrong key.
        let other = hsm.generate_server_key(2048).unwrap();
        assert_ne!(other.modulus, key.modulus);
        assert!(matches!(
            hsm.sign_raw(&key.wrapped_private_key, &other.modulus, &x),
            Err(HsmError::WrongKey)
        ));
        // Unknown format, corrupted wrapping.
        let mut bad = key.wrapped_private_key.clone();
        bad[1] = 0x01;
        assert!(matches!(
            hsm.sign_raw(&bad, &key.modulus, &x),
            Err(HsmError::BadBlob(_))
        ));
        let mut corrupt = key.wrapped_private_key.clone();
        corrupt[40] ^= 1;
        let err = hsm.sign_raw(&corrupt, &key.modulus, &x).unwrap_err();
        println!("corrupted wrapped key: {err}");

        // The unwrapped key stays in the HSM for the next signature (one object, however
        // many signatures), still only for its own modulus; forgetting it destroys it.
        let raw = raw_session();
        assert_eq!(session_keys_left(&raw), 1, "one cached server key");
        assert!(matches!(
            hsm.sign_raw(&key.wrapped_private_key, &other.modulus, &x),
            Err(HsmError::WrongKey)
        ));
        let s = hsm
            .sign_raw(&key.wrapped_private_key, &key.modulus, &x)
            .unwrap();
        assert_raw_signature(&key.modulus, &x, &s);
        assert_eq!(session_keys_left(&raw), 1, "the cached key was reused");
        hsm.forget_server_key(&key.wrapped_private_key);
        assert_eq!(
            session_keys_left(&raw),
            0,
            "session key objects left behind"
        );
        // Signing again unwraps it again.
        let s = hsm
            .sign_raw(&key.wrapped_private_key, &key.modulus, &x)
            .unwrap();
        assert_raw_signature(&key.modulus, &x, &s);
        hsm.forget_server_key(&key.wrapped_private_key);
        assert_eq!(session_keys_left(&raw), 0);
    });
}

/// The golden vectors of `vectors/hsm_blobs.txt`, by name.
fn golden_blobs() -> std::collections::HashMap<String, Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/hsm_blobs.txt");
    let text = std::fs::read_to_string(&path).expect("read the golden vectors");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, value) = line.split_once(" = ").expect("name = hex");
            (name.to_owned(), hex::decode(value).expect("hex"))
        })
        .collect()
}

/// Blobs stored by earlier versions keep opening, and new blobs keep the same layout: a
/// fresh token gets the published test KEK of `vectors/hsm_blobs.txt` (made in software, see
/// `vectors/make_hsm_blobs.py`); the committed blobs must open through the HSM layer, and the
/// blobs the layer makes now must open in software by the documented format.
#[test]
fn stored_blobs_golden_vectors() {
    with_fresh_token("stored_blobs_golden_vectors", |dir| {
        let v = golden_blobs();
        let hsm = open(dir);
        // The KEK with a known value, with the attributes `ensure_objects` gives it.
        raw_session()
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(v["kek"].clone()),
                Attribute::Label(KEK_LABEL.as_bytes().to_vec()),
                Attribute::Id(KEK_LABEL.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ])
            .expect("import the test KEK");
        let report = hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        assert_eq!(report.kek, ObjectStatus::Found, "the imported KEK is used");

        // Reading what is stored.
        let aad = &v["sealed_aad"];
        assert_eq!(
            hsm.open_at_rest(&v["sealed_blob"], aad).unwrap().as_slice(),
            v["sealed_plaintext"].as_slice()
        );
        let modulus = &v["server_key_modulus"];
        for _ in 0..2 {
            let x = random_x(modulus);
            let s = hsm.sign_raw(&v["server_key_blob"], modulus, &x).unwrap();
            assert_raw_signature(modulus, &x, &s);
        }
        assert!(is_token_share_blob(&v["share_key_blob"]));
        assert_eq!(v["share_key_blob"][..2], [0x01, ALG_TOKEN_RSA_KEY]);
        assert_eq!(v["share_key_blob"][2..], v["share_key_id"]);

        // Writing: [0x01, 0x01] || iv (12) || AES-256-GCM(KEK, aad) with a 16-byte tag.
        let secret = b"a new share";
        let sealed = hsm.seal_at_rest(secret, aad).unwrap();
        assert_eq!(sealed[..2], [0x01, 0x01]);
        let cipher = Aes256Gcm::new_from_slice(&v["kek"]).unwrap();
        let opened = cipher
            .decrypt(
                Nonce::from_slice(&sealed[2..14]),
                Payload {
                    msg: &sealed[14..],
                    aad,
                },
            )
            .expect("the sealed blob opens in software");
        assert_eq!(opened, secret);

        // Writing: [0x01, 0x02] || AES-KW-PAD(KEK, PKCS#8 private key).
        let key = hsm.generate_server_key(2048).unwrap();
        assert_eq!(key.wrapped_private_key[..2], [0x01, 0x02]);
        let mut ctx = openssl::cipher_ctx::CipherCtx::new().unwrap();
        ctx.decrypt_init(
            Some(openssl::cipher::Cipher::aes_256_wrap_pad()),
            Some(&v["kek"]),
            None,
        )
        .unwrap();
        let mut pkcs8 = Vec::new();
        ctx.cipher_update_vec(&key.wrapped_private_key[2..], &mut pkcs8)
            .expect("the wrapped key unwraps in software");
        ctx.cipher_final_vec(&mut pkcs8).unwrap();
        let private = openssl::pkey::PKey::private_key_from_pkcs8(&pkcs8)
            .expect("a PKCS#8 private key")
            .rsa()
            .unwrap();
        assert_eq!(private.n().to_vec(), key.modulus);
        pkcs8.fill(0);
    });
}

#[test]
fn concurrent_sign_raw() {
    with_fresh_token("concurrent_sign_raw", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let keys: Vec<ServerKey> = (0..2)
            .map(|_| hsm.generate_server_key(2048).unwrap())
            .collect();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let hsm = hsm.clone();
                let keys = &keys;
                scope.spawn(move || {
                    for i in 0..10 {
                        let key = &keys[(t + i) % keys.len()];
                        let x = random_x(&key.modulus);
                        let s = hsm
                            .sign_raw(&key.wrapped_private_key, &key.modulus, &x)
                            .unwrap();
                        assert_raw_signature(&key.modulus, &x, &s);
                        // Interleave other operations on the same pool.
                        let aad = [t as u8, i as u8];
                        let secret: [u8; 24] = rand::thread_rng().r#gen();
                        let blob = hsm.seal_at_rest(&secret, &aad).unwrap();
                        assert_eq!(hsm.open_at_rest(&blob, &aad).unwrap().as_slice(), &secret);
                    }
                });
            }
        });
        // Each key was unwrapped into the HSM's cache (at most once per session it ran in),
        // and goes when forgotten.
        let raw = raw_session();
        assert!(session_keys_left(&raw) >= keys.len());
        for key in &keys {
            hsm.forget_server_key(&key.wrapped_private_key);
        }
        assert_eq!(
            session_keys_left(&raw),
            0,
            "session key objects left behind"
        );
    });
}

#[test]
fn timings_rsa3072() {
    with_fresh_token("timings_rsa3072", |dir| {
        let hsm = open(dir);
        let start = Instant::now();
        hsm.ensure_objects(TransportKeySpec::Rsa(3072)).unwrap();
        println!(
            "timing: ensure_objects (RSA-3072 transport) {:?}",
            start.elapsed()
        );

        let transport = transport_key(&hsm);
        let aad = b"aad";
        let env = seal_envelope(&transport, Oaep::new::<sha1::Sha1>(), &[5u8; 384], aad);
        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            hsm.open_envelope(
                EnvelopeKey::RsaOaep(&env.wrapped_key),
                &env.iv,
                &env.ciphertext_and_tag,
                aad,
            )
            .unwrap();
            samples.push(start.elapsed());
        }
        println!(
            "timing: open_envelope (RSA-3072 transport) median {:?}",
            median(samples)
        );

        let start = Instant::now();
        let key = hsm.generate_server_key(3072).unwrap();
        println!("timing: generate_server_key(3072) {:?}", start.elapsed());
        let mut samples = Vec::new();
        for _ in 0..30 {
            let x = random_x(&key.modulus);
            let start = Instant::now();
            let s = hsm
                .sign_raw(&key.wrapped_private_key, &key.modulus, &x)
                .unwrap();
            samples.push(start.elapsed());
            assert_raw_signature(&key.modulus, &x, &s);
        }
        println!("timing: sign_raw (RSA-3072) median {:?}", median(samples));

        let blob = hsm.seal_at_rest(&[9u8; 384], aad).unwrap();
        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            hsm.open_at_rest(&blob, aad).unwrap();
            samples.push(start.elapsed());
        }
        println!(
            "timing: open_at_rest (384 bytes) median {:?}",
            median(samples)
        );
    });
}

#[test]
fn token_pin_sources() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pin");
    std::fs::write(&path, "s3cret-pin\n").unwrap();
    let pin = TokenPin::from_file(&path).unwrap();
    assert_eq!(format!("{pin:?}"), "TokenPin(<redacted>)");

    std::fs::write(&path, "\n").unwrap();
    let err = TokenPin::from_file(&path).unwrap_err();
    assert!(matches!(err, HsmError::Pin { .. }));
    let err = TokenPin::from_file(dir.path().join("missing")).unwrap_err();
    assert!(matches!(err, HsmError::Pin { .. }));
    let err = TokenPin::from_env("TANDEM_TEST_SURELY_UNSET_PIN_VARIABLE").unwrap_err();
    assert!(
        err.to_string()
            .contains("TANDEM_TEST_SURELY_UNSET_PIN_VARIABLE")
    );
}

// ---- CA keys ----

const CA_RSA: &str = "tandem-test-ca-rsa";
const CA_EC: &str = "tandem-test-ca-ec";

/// Verifies a `ca_sign` signature with the key from `ca_public_key_der`: RSA with the
/// `rsa` crate (PKCS#1 v1.5, SHA-384), EC with the `openssl` crate (ECDSA, SHA-384, DER).
fn verify_ca_signature(spki_der: &[u8], spec: CaKeySpec, data: &[u8], signature: &[u8]) {
    match spec {
        CaKeySpec::Rsa3072 | CaKeySpec::Rsa4096 => {
            use rsa::signature::Verifier;
            let public = RsaPublicKey::from_public_key_der(spki_der).expect("RSA SPKI parses");
            let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(public);
            let signature = rsa::pkcs1v15::Signature::try_from(signature).unwrap();
            key.verify(data, &signature)
                .expect("RSA CA signature verifies");
        }
        CaKeySpec::EcP384 => {
            let key = openssl::pkey::PKey::public_key_from_der(spki_der).expect("EC SPKI parses");
            let mut verifier =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha384(), &key).unwrap();
            verifier.update(data).unwrap();
            assert!(
                verifier.verify(signature).unwrap(),
                "EC CA signature verifies"
            );
        }
    }
}

/// `openssl dgst -sha384 -verify` on files in `dir`, as a relying party would check.
fn openssl_cli_verify(dir: &Path, name: &str, spki_der: &[u8], data: &[u8], signature: &[u8]) {
    let der = dir.join(format!("{name}.der"));
    let pem = dir.join(format!("{name}.pem"));
    let sig = dir.join(format!("{name}.sig"));
    let msg = dir.join(format!("{name}.bin"));
    std::fs::write(&der, spki_der).unwrap();
    std::fs::write(&sig, signature).unwrap();
    std::fs::write(&msg, data).unwrap();
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&der)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("run openssl pkey");
    assert!(
        out.status.success(),
        "openssl pkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["dgst", "-sha384", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .expect("run openssl dgst");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Verified OK"),
        "openssl dgst -verify ({name}): {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sign_attr(session: &Session, key: ObjectHandle, ty: AttributeType) -> Option<bool> {
    session
        .get_attributes(key, &[ty])
        .unwrap()
        .into_iter()
        .find_map(|a| match a {
            Attribute::Sign(b)
            | Attribute::Decrypt(b)
            | Attribute::Unwrap(b)
            | Attribute::Derive(b)
            | Attribute::Verify(b)
            | Attribute::Private(b) => Some(b),
            _ => None,
        })
}

#[test]
fn ca_keys_are_idempotent_and_typed() {
    with_fresh_token("ca_keys_are_idempotent_and_typed", |dir| {
        let hsm = open(dir);
        assert!(matches!(
            hsm.ca_key_spec(CA_RSA),
            Err(HsmError::CaKeyMissing { .. })
        ));
        assert!(matches!(
            hsm.ca_sign(CA_EC, b"x"),
            Err(HsmError::CaKeyMissing { .. })
        ));
        assert!(matches!(
            hsm.ca_public_key_der(CA_EC),
            Err(HsmError::CaKeyMissing { .. })
        ));
        for reserved in ["", KEK_LABEL, TRANSPORT_KEY_LABEL] {
            assert!(matches!(
                hsm.ensure_ca_key(reserved, CaKeySpec::EcP384),
                Err(HsmError::InvalidArgument(_))
            ));
        }

        let start = Instant::now();
        assert_eq!(
            hsm.ensure_ca_key(CA_RSA, CaKeySpec::Rsa3072).unwrap(),
            ObjectStatus::Created
        );
        println!("timing: ensure_ca_key(RSA-3072) {:?}", start.elapsed());
        let start = Instant::now();
        assert_eq!(
            hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap(),
            ObjectStatus::Created
        );
        println!("timing: ensure_ca_key(P-384) {:?}", start.elapsed());
        assert_eq!(
            hsm.ensure_ca_key(CA_RSA, CaKeySpec::Rsa3072).unwrap(),
            ObjectStatus::Found
        );
        assert_eq!(
            hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap(),
            ObjectStatus::Found
        );
        assert_eq!(hsm.ca_key_spec(CA_RSA).unwrap(), CaKeySpec::Rsa3072);
        assert_eq!(hsm.ca_key_spec(CA_EC).unwrap(), CaKeySpec::EcP384);

        // Another spec for an existing label is an error, and the key stays.
        for (label, wrong) in [
            (CA_RSA, CaKeySpec::Rsa4096),
            (CA_RSA, CaKeySpec::EcP384),
            (CA_EC, CaKeySpec::Rsa3072),
        ] {
            let err = hsm.ensure_ca_key(label, wrong).unwrap_err();
            assert!(
                matches!(&err, HsmError::CaKeySpecMismatch { expected, .. } if *expected == wrong),
                "{err:?}"
            );
            println!("wrong spec: {err}");
        }

        // A fresh Hsm (empty handle cache) sees the same keys and public keys.
        let rsa_der = hsm.ca_public_key_der(CA_RSA).unwrap();
        let ec_der = hsm.ca_public_key_der(CA_EC).unwrap();
        let again = open(dir);
        assert_eq!(again.ca_key_spec(CA_RSA).unwrap(), CaKeySpec::Rsa3072);
        assert_eq!(again.ca_key_spec(CA_EC).unwrap(), CaKeySpec::EcP384);
        assert_eq!(again.ca_public_key_der(CA_RSA).unwrap(), rsa_der);
        assert_eq!(again.ca_public_key_der(CA_EC).unwrap(), ec_der);
        assert_eq!(
            again.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap(),
            ObjectStatus::Found
        );

        // SPKI shapes: RSA-3072 with e = 65537; P-384 is 120 bytes, openssl reads it.
        let rsa_public = RsaPublicKey::from_public_key_der(&rsa_der).unwrap();
        assert_eq!(rsa_public.size(), 384);
        assert_eq!(rsa_public.e(), &BigUint::from(65537u32));
        assert_eq!(ec_der.len(), 120);
        let ec_key = openssl::pkey::PKey::public_key_from_der(&ec_der).unwrap();
        let ec_key = ec_key.ec_key().unwrap();
        assert_eq!(
            ec_key.group().curve_name(),
            Some(openssl::nid::Nid::SECP384R1)
        );
        ec_key.check_key().unwrap();

        // The private CA keys: token, private, sensitive, never extractable, sign only.
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        let raw = raw_session();
        let kek = find(&raw, KEK_LABEL, ObjectClass::SECRET_KEY);
        for label in [CA_RSA, CA_EC] {
            let private = find(&raw, label, ObjectClass::PRIVATE_KEY);
            let public = find(&raw, label, ObjectClass::PUBLIC_KEY);
            assert_eq!(bool_attr(&raw, private, AttributeType::Token), Some(true));
            assert_eq!(bool_attr(&raw, public, AttributeType::Token), Some(true));
            assert_eq!(
                bool_attr(&raw, private, AttributeType::Extractable),
                Some(false)
            );
            assert_eq!(
                bool_attr(&raw, private, AttributeType::Sensitive),
                Some(true)
            );
            assert_eq!(
                bool_attr(&raw, private, AttributeType::NeverExtractable),
                Some(true)
            );
            assert_eq!(
                bool_attr(&raw, private, AttributeType::AlwaysSensitive),
                Some(true)
            );
            assert_eq!(sign_attr(&raw, private, AttributeType::Private), Some(true));
            assert_eq!(sign_attr(&raw, private, AttributeType::Sign), Some(true));
            assert_eq!(
                sign_attr(&raw, private, AttributeType::Decrypt),
                Some(false)
            );
            assert_eq!(sign_attr(&raw, private, AttributeType::Unwrap), Some(false));
            assert_eq!(sign_attr(&raw, private, AttributeType::Derive), Some(false));
            assert_eq!(sign_attr(&raw, public, AttributeType::Verify), Some(true));
            for secret in [
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Value,
            ] {
                assert!(!has_attr(&raw, private, secret), "{label}: {secret:?}");
            }
            let wrapped = raw.wrap_key(&Mechanism::AesKeyWrapPad, kek, private);
            assert!(
                matches!(
                    wrapped,
                    Err(CryptokiError::Pkcs11(RvError::KeyUnextractable, _))
                ),
                "{label}: {wrapped:?}"
            );
        }
        // CKA_ALLOWED_MECHANISMS: the RSA CA key refuses raw RSA (no padding).
        let rsa_private = find(&raw, CA_RSA, ObjectClass::PRIVATE_KEY);
        let raw_rsa = raw.sign(&Mechanism::RsaX509, rsa_private, &[1u8; 384]);
        println!("raw RSA with the CA key: {raw_rsa:?}");
        assert!(raw_rsa.is_err(), "raw RSA signing with the CA key allowed");
    });
}

#[test]
fn ca_sign_verifies() {
    with_fresh_token("ca_sign_verifies", |dir| {
        let hsm = open(dir);
        hsm.ensure_ca_key(CA_RSA, CaKeySpec::Rsa3072).unwrap();
        hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap();

        // What this module offers for CA signing.
        let ctx = Pkcs11::new(module_path()).unwrap();
        let slot = ctx
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|slot| ctx.get_token_info(*slot).unwrap().label().trim_end() == TOKEN_LABEL)
            .unwrap();
        let mechanisms = ctx.get_mechanism_list(slot).unwrap();
        for m in [
            MechanismType::SHA384_RSA_PKCS,
            MechanismType::ECDSA,
            MechanismType::ECDSA_SHA384,
            MechanismType::ECC_KEY_PAIR_GEN,
        ] {
            println!("mechanism {m}: {}", mechanisms.contains(&m));
        }

        let tbs = b"tbsCertificate bytes would go here".to_vec();
        let rsa_der = hsm.ca_public_key_der(CA_RSA).unwrap();
        let ec_der = hsm.ca_public_key_der(CA_EC).unwrap();

        let rsa_sig = hsm.ca_sign(CA_RSA, &tbs).unwrap();
        assert_eq!(rsa_sig.len(), 384);
        verify_ca_signature(&rsa_der, CaKeySpec::Rsa3072, &tbs, &rsa_sig);
        assert_eq!(
            hsm.ca_sign(CA_RSA, &tbs).unwrap(),
            rsa_sig,
            "PKCS#1 v1.5 is deterministic"
        );
        openssl_cli_verify(dir, "rsa", &rsa_der, &tbs, &rsa_sig);

        let ec_sig = hsm.ca_sign(CA_EC, &tbs).unwrap();
        assert_eq!(ec_sig[0], 0x30);
        assert_eq!(usize::from(ec_sig[1]), ec_sig.len() - 2);
        openssl_cli_verify(dir, "ec", &ec_der, &tbs, &ec_sig);
        verify_ca_signature(&ec_der, CaKeySpec::EcP384, &tbs, &ec_sig);
        assert_ne!(
            hsm.ca_sign(CA_EC, &tbs).unwrap(),
            ec_sig,
            "fresh ECDSA nonce"
        );

        // Other data does not verify under an old signature; empty and large data sign.
        let mut other = tbs.clone();
        other[0] ^= 1;
        {
            use rsa::signature::Verifier;
            let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(
                RsaPublicKey::from_public_key_der(&rsa_der).unwrap(),
            );
            let sig = rsa::pkcs1v15::Signature::try_from(rsa_sig.as_slice()).unwrap();
            assert!(key.verify(&other, &sig).is_err());
        }
        for data in [Vec::new(), vec![0x5a; 100_000]] {
            for (label, der, spec) in [
                (CA_RSA, &rsa_der, CaKeySpec::Rsa3072),
                (CA_EC, &ec_der, CaKeySpec::EcP384),
            ] {
                let sig = hsm.ca_sign(label, &data).unwrap();
                verify_ca_signature(der, spec, &data, &sig);
            }
        }
        // Many ECDSA signatures: DER encoding holds for r, s with and without a top bit.
        for i in 0..50u8 {
            let data = [i; 7];
            let sig = hsm.ca_sign(CA_EC, &data).unwrap();
            verify_ca_signature(&ec_der, CaKeySpec::EcP384, &data, &sig);
        }

        let raw = raw_session();
        assert_eq!(
            session_keys_left(&raw),
            0,
            "session key objects left behind"
        );
    });
}

#[test]
fn ca_sign_concurrently() {
    with_fresh_token("ca_sign_concurrently", |dir| {
        let hsm = open(dir);
        hsm.ensure_ca_key(CA_RSA, CaKeySpec::Rsa3072).unwrap();
        hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap();
        let keys = [
            (
                CA_RSA,
                CaKeySpec::Rsa3072,
                hsm.ca_public_key_der(CA_RSA).unwrap(),
            ),
            (
                CA_EC,
                CaKeySpec::EcP384,
                hsm.ca_public_key_der(CA_EC).unwrap(),
            ),
        ];
        // A second handle with a cold cache races the first one.
        let other = open(dir);
        std::thread::scope(|scope| {
            for t in 0..4usize {
                let hsm = if t % 2 == 0 {
                    hsm.clone()
                } else {
                    other.clone()
                };
                let keys = &keys;
                scope.spawn(move || {
                    for i in 0..5usize {
                        let (label, spec, der) = &keys[(t + i) % keys.len()];
                        let data = format!("thread {t} certificate {i}").into_bytes();
                        let sig = hsm.ca_sign(label, &data).unwrap();
                        verify_ca_signature(der, *spec, &data, &sig);
                        assert_eq!(hsm.ca_key_spec(label).unwrap(), *spec);
                    }
                });
            }
        });
    });
}

#[test]
fn ca_sign_injected_fault() {
    with_fresh_token_env(
        "ca_sign_injected_fault",
        &[("TANDEM_TEST_FAIL_CA_SIGN", "1")],
        |dir| {
            let hsm = open(dir);
            hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap();
            assert_eq!(hsm.ca_key_spec(CA_EC).unwrap(), CaKeySpec::EcP384);
            assert_eq!(hsm.ca_public_key_der(CA_EC).unwrap().len(), 120);
            let err = hsm.ca_sign(CA_EC, b"tbs").unwrap_err();
            assert!(matches!(err, HsmError::InjectedFault), "{err:?}");
            assert!(err.to_string().contains("injected test fault"), "{err}");
            assert_eq!(err.rv(), None);
        },
    );
}

#[test]
fn ca_timings_rsa4096_p384() {
    with_fresh_token("ca_timings_rsa4096_p384", |dir| {
        let hsm = open(dir);
        let start = Instant::now();
        assert_eq!(
            hsm.ensure_ca_key(CA_RSA, CaKeySpec::Rsa4096).unwrap(),
            ObjectStatus::Created
        );
        println!("timing: ensure_ca_key(RSA-4096) {:?}", start.elapsed());
        let start = Instant::now();
        hsm.ensure_ca_key(CA_EC, CaKeySpec::EcP384).unwrap();
        println!("timing: ensure_ca_key(P-384) {:?}", start.elapsed());
        assert_eq!(hsm.ca_key_spec(CA_RSA).unwrap(), CaKeySpec::Rsa4096);

        let data = vec![0x42u8; 1500]; // about a TBSCertificate
        for (label, spec) in [(CA_RSA, CaKeySpec::Rsa4096), (CA_EC, CaKeySpec::EcP384)] {
            let der = hsm.ca_public_key_der(label).unwrap();
            let mut samples = Vec::new();
            for _ in 0..20 {
                let start = Instant::now();
                let sig = hsm.ca_sign(label, &data).unwrap();
                samples.push(start.elapsed());
                verify_ca_signature(&der, spec, &data, &sig);
            }
            println!("timing: ca_sign ({spec}) median {:?}", median(samples));
        }
    });
}

#[test]
fn share_exponentiation_in_the_token() {
    with_fresh_token("share_exponentiation_in_the_token", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        // hsm-sim offers the split-share mechanism; SoftHSM does not, and the server then
        // takes the software path (DESIGN.md).
        assert_eq!(hsm.has_share_mechanism(), use_hsm_sim());
        if !hsm.has_share_mechanism() {
            return;
        }
        let mut rng = rand::thread_rng();
        for bits in [2048usize, 3072] {
            // Any odd modulus of full length will do for the arithmetic.
            let mut n = vec![0u8; bits / 8];
            rng.fill_bytes(&mut n);
            n[0] |= 0x80;
            n[bits / 8 - 1] |= 1;
            let n_int = BigUint::from_bytes_be(&n);
            let d = (BigUint::from_bytes_be(&random_x(&n)) % &n_int).to_bytes_be();
            let x = random_x(&n);
            let aad = format!("share:{bits}");
            let blob = hsm.seal_at_rest(&d, aad.as_bytes()).unwrap();
            let s = hsm.share_exp(&blob, aad.as_bytes(), &n, &x).unwrap();
            assert_eq!(s.len(), n.len());
            assert_eq!(
                BigUint::from_bytes_be(&s),
                BigUint::from_bytes_be(&x).modpow(&BigUint::from_bytes_be(&d), &n_int)
            );
            // The wrong AAD (another account's share) opens nothing.
            assert!(matches!(
                hsm.share_exp(&blob, b"share:other", &n, &x),
                Err(HsmError::Decryption)
            ));
        }
        // Each share object lived only for its one exponentiation.
        assert_eq!(session_keys_left(&raw_session()), 0);
    });
}

/// `token-rsa` (docs/HSM_MODES.md): d1'' arrives as a device-made non-CRT RSA key, wrapped
/// (RSA-OAEP content key + AES-KWP), becomes a sensitive, never-extractable token object, and
/// computes x^d1'' with CKM_RSA_X_509; the composite signature completes and verifies; the
/// KEK of such a token has no CKA_DECRYPT.
#[test]
fn token_rsa_share_keys() {
    with_fresh_token("token_rsa_share_keys", |dir| {
        use tandem_client_core::keys::generate_client_key_for_token;
        use tandem_client_core::sign::{SigningRequest, partial_sign};
        use tandem_server::signing::{ServerKeyRef, ShareVerdict, evaluate_share};
        let hsm = open(dir);
        assert_eq!(
            hsm.ensure_kek_without_decrypt().unwrap(),
            ObjectStatus::Created
        );
        let report = hsm.ensure_objects(TransportKeySpec::Rsa(2048)).unwrap();
        assert_eq!(report.kek, ObjectStatus::Found);
        assert_eq!(
            hsm.ensure_kek_without_decrypt().unwrap(),
            ObjectStatus::Found
        );
        hsm.use_share_exponentiation(ShareExponentiation::TokenRsa)
            .unwrap();
        // The vendor mechanism (hsm-sim) is not used in this mode.
        assert!(!hsm.has_share_mechanism());
        for other in [
            ShareExponentiation::Auto,
            ShareExponentiation::Software,
            ShareExponentiation::Vendor,
        ] {
            let e = hsm.use_share_exponentiation(other).unwrap_err().to_string();
            assert!(e.contains("initialised for token-rsa"), "{e}");
        }
        // The KEK can neither encrypt nor decrypt: no share can be sealed or opened by it.
        let raw = raw_session();
        let kek = find(&raw, KEK_LABEL, ObjectClass::SECRET_KEY);
        assert_eq!(bool_attr(&raw, kek, AttributeType::Decrypt), Some(false));
        assert!(!hsm.kek_allows_decrypt().unwrap());
        assert!(hsm.seal_at_rest(b"secret", b"aad").is_err());

        let transport = hsm.transport_public_key_der().unwrap();
        let mut rng = rand::thread_rng();
        let material = generate_client_key_for_token(&mut rng, 2048).unwrap();
        let n1 = material.modulus.clone();
        let device_share = material.device_share;
        let sealed =
            envelope::seal_server_share_key(&transport, material.server_share_key, &mut rng)
                .unwrap();
        let parts = envelope::ShareKeyEnvelope::parse(&sealed).unwrap();

        // Bound to its modulus: another n1 is refused and leaves nothing on the token.
        let other = generate_client_key_for_token(&mut rng, 2048).unwrap();
        let r = hsm.import_share_key(
            parts.wrapped_content_key,
            parts.wrapped_share_key,
            &other.modulus,
        );
        assert!(matches!(r, Err(HsmError::WrongKey)), "{r:?}");
        // A modified key-wrap ciphertext or content key opens nothing.
        let mut bad = parts.wrapped_share_key.to_vec();
        bad[40] ^= 1;
        assert!(matches!(
            hsm.import_share_key(parts.wrapped_content_key, &bad, &n1),
            Err(HsmError::Decryption)
        ));
        let mut bad = parts.wrapped_content_key.to_vec();
        bad[10] ^= 1;
        assert!(matches!(
            hsm.import_share_key(&bad, parts.wrapped_share_key, &n1),
            Err(HsmError::Decryption)
        ));
        let share_objects = |raw: &Session| {
            raw.find_objects(&[
                Attribute::Token(true),
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::RSA),
            ])
            .unwrap()
            .into_iter()
            .filter(|h| {
                raw.get_attributes(*h, &[AttributeType::Label])
                    .unwrap()
                    .iter()
                    .any(|a| matches!(a, Attribute::Label(l) if l.starts_with(SHARE_KEY_LABEL_PREFIX.as_bytes())))
            })
            .collect::<Vec<_>>()
        };
        assert!(
            share_objects(&raw).is_empty(),
            "refused imports left objects"
        );

        let blob = hsm
            .import_share_key(parts.wrapped_content_key, parts.wrapped_share_key, &n1)
            .unwrap();
        assert!(is_token_share_blob(&blob));
        assert_eq!(
            blob.len(),
            2 + 16,
            "the blob is a reference, no key material"
        );
        let objects = share_objects(&raw);
        assert_eq!(objects.len(), 1);
        let obj = objects[0];
        assert_eq!(bool_attr(&raw, obj, AttributeType::Token), Some(true));
        assert_eq!(bool_attr(&raw, obj, AttributeType::Sensitive), Some(true));
        assert_eq!(
            bool_attr(&raw, obj, AttributeType::Extractable),
            Some(false)
        );
        assert_eq!(bool_attr(&raw, obj, AttributeType::Decrypt), Some(false));
        // d1'' cannot be read, nor wrapped out under the KEK.
        assert!(!has_attr(&raw, obj, AttributeType::PrivateExponent));
        assert!(raw.wrap_key(&Mechanism::AesKeyWrapPad, kek, obj).is_err());
        // The public exponent is e_obj = d1''^-1: x^d1'' from the token, raised to it, is x.
        let e_obj = match raw
            .get_attributes(obj, &[AttributeType::PublicExponent])
            .unwrap()
            .first()
        {
            Some(Attribute::PublicExponent(e)) => BigUint::from_bytes_be(e),
            other => panic!("no public exponent: {other:?}"),
        };
        let n1_int = BigUint::from_bytes_be(&n1);
        let x = random_x(&n1);
        let y = hsm.share_exp_token(&blob, &n1, &x).unwrap();
        assert_eq!(y.len(), n1.len());
        assert_eq!(
            BigUint::from_bytes_be(&y).modpow(&e_obj, &n1_int),
            BigUint::from_bytes_be(&x)
        );
        assert!(matches!(
            hsm.share_exp_token(&blob, &other.modulus, &x),
            Err(HsmError::WrongKey)
        ));

        // The whole server side of a signature: the device's share plus the token's makes a
        // composite signature that verifies (the device share is in the even form).
        let server_key = hsm.generate_server_key(2048).unwrap();
        let n2 = server_key.modulus.clone();
        let n = BigUint::from_bytes_be(&n1) * BigUint::from_bytes_be(&n2);
        let composite_bits = n.bits() as usize;
        let digest = tandem_client_core::encoding::HashAlgorithm::Sha256.digest(b"token-rsa");
        let xm = tandem_client_core::encoding::encode_pkcs1v15(
            tandem_client_core::encoding::HashAlgorithm::Sha256,
            &digest,
            composite_bits,
        )
        .unwrap();
        let request = SigningRequest {
            scheme: tandem_client_core::encoding::SignatureScheme::Pkcs1v15,
            hash: tandem_client_core::encoding::HashAlgorithm::Sha256,
            digest,
            encoded_message: xm.clone(),
            composite_modulus_bits: composite_bits,
        };
        let s1 = partial_sign(&device_share, &n1, &request).unwrap();
        let key = ServerKeyRef {
            key_type: tandem_client_core::types::KeyType::Sign,
            client_modulus: &n1,
            server_modulus: &n2,
            server_share_blob: &blob,
            server_key_blob: &server_key.wrapped_private_key,
        };
        let mut samples = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let verdict = evaluate_share(&hsm, key, &xm, s1.as_bytes()).unwrap();
            samples.push(start.elapsed());
            let ShareVerdict::Valid { signature } = verdict else {
                panic!("a right share was judged wrong");
            };
            assert_eq!(
                BigUint::from_bytes_be(&signature).modpow(&BigUint::from(65537u32), &n),
                BigUint::from_bytes_be(&xm)
            );
        }
        println!(
            "timing: evaluate_share (token-rsa, 2048-bit halves) median {:?}",
            median(samples)
        );
        // A wrong share (what a wrong PIN gives) is judged wrong, as with the other forms.
        let wrong = random_x(&n1);
        assert!(matches!(
            evaluate_share(&hsm, key, &xm, &wrong).unwrap(),
            ShareVerdict::Invalid
        ));

        // Destroyed with the account: gone from the token, and the blob names nothing.
        assert!(hsm.destroy_share_key(&blob).unwrap());
        assert!(share_objects(&raw).is_empty());
        assert!(matches!(
            hsm.share_exp_token(&blob, &n1, &x),
            Err(HsmError::ObjectMissing { .. })
        ));
        assert!(!hsm.destroy_share_key(&blob).unwrap());
    });
}

/// A token made for the software/vendor forms refuses token-rsa (and token-rsa refuses an EC
/// transport key, below): a data directory cannot switch forms.
#[test]
fn token_rsa_mode_checks() {
    with_fresh_token("token_rsa_mode_checks", |dir| {
        let hsm = open(dir);
        hsm.ensure_objects(TransportKeySpec::EcP256).unwrap();
        assert!(hsm.kek_allows_decrypt().unwrap());
        let e = hsm
            .use_share_exponentiation(ShareExponentiation::TokenRsa)
            .unwrap_err()
            .to_string();
        assert!(e.contains("has CKA_DECRYPT"), "{e}");
        hsm.use_share_exponentiation(ShareExponentiation::Software)
            .unwrap();
        assert!(!hsm.has_share_mechanism());
        hsm.use_share_exponentiation(ShareExponentiation::Auto)
            .unwrap();
        assert_eq!(hsm.has_share_mechanism(), use_hsm_sim());
        let vendor = hsm.use_share_exponentiation(ShareExponentiation::Vendor);
        assert_eq!(vendor.is_ok(), use_hsm_sim(), "{vendor:?}");
    });
}

#[test]
fn token_rsa_needs_an_rsa_transport_key() {
    with_fresh_token("token_rsa_needs_an_rsa_transport_key", |dir| {
        let hsm = open(dir);
        hsm.ensure_kek_without_decrypt().unwrap();
        hsm.ensure_objects(TransportKeySpec::EcP256).unwrap();
        let e = hsm
            .use_share_exponentiation(ShareExponentiation::TokenRsa)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs an RSA transport key"), "{e}");
    });
}

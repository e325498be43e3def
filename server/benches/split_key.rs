//! The hot-path benchmark: every operation the server, the HSM and the device do per
//! signature, each next to an OpenSSL reference measured in the same run, on both HSMs
//! (SoftHSM and hsm-sim). Prints Markdown tables (docs/BENCHMARKS.md).
//!
//! ```text
//! scripts/bench.sh                                  # builds hsm-sim, then runs this
//! cargo bench -p tandem-server --bench split_key            # 3072-bit halves, 20 iterations
//! cargo bench -p tandem-server --bench split_key -- 4096 10 # bits, iterations
//! ```
//!
//! SoftHSM reads `SOFTHSM2_CONF` and hsm-sim `TANDEM_HSM_SIM_DIR` when they are loaded, so the
//! benchmark provisions both tokens in a temporary directory and re-executes itself with
//! those variables set. hsm-sim is `libtandem_hsm_sim.so` next to the benchmark's target
//! directory (`cargo build --release -p tandem-hsm-sim`; without it the hsm-sim rows are
//! skipped with a note); `TANDEM_TEST_PKCS11_MODULE` overrides SoftHSM's path.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::PKey;
use openssl::rsa::{Padding, Rsa};
use rand_core::{OsRng, RngCore};
use tandem_client_core::encoding::{HashAlgorithm, encode_pkcs1v15};
use tandem_client_core::envelope;
use tandem_client_core::hazmat::{bit_length, multiply};
use tandem_client_core::keys::generate_client_key_for_token;
use tandem_client_core::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use tandem_client_core::sign::{SigningRequest, partial_sign};
use tandem_client_core::types::KeyType;
use tandem_client_core::{DeviceShare, generate_client_key};
use tandem_server::bn::mod_exp_secret;
use tandem_server::hsm::{
    Hsm, HsmConfig, ShareExponentiation, TokenPin, TransportKeySpec, provision_token,
};
use tandem_server::signing::{ServerKeyRef, ShareVerdict, evaluate_share, server_share_aad};

const CHILD_ENV: &str = "TANDEM_BENCH_TOKEN_DIR";

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let bits: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(3072);
    let iterations: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    match std::env::var_os(CHILD_ENV) {
        Some(dir) => run(Path::new(&dir), bits, iterations),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/softhsm-provision.sh");
            let out = Command::new("bash")
                .arg(script)
                .arg(dir.path())
                .arg("bench")
                .arg(dir.path().join("pin"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "provisioning failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // A second SoftHSM token for the token-rsa rows (RSA transport key, KEK without
            // CKA_DECRYPT).
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/softhsm-provision.sh");
            let out = Command::new("bash")
                .arg(script)
                .arg(dir.path())
                .arg("bench-rsa")
                .arg(dir.path().join("pin-rsa"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "provisioning failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::create_dir_all(dir.path().join("hsm-sim")).unwrap();
            let status = Command::new(std::env::current_exe().unwrap())
                .args(std::env::args().skip(1))
                .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
                .env("TANDEM_HSM_SIM_DIR", dir.path().join("hsm-sim"))
                .env(CHILD_ENV, dir.path())
                .status()
                .unwrap();
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}

/// Median and 90th percentile of `n` timed runs of `f`.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(f());
        samples.push(t.elapsed());
    }
    samples.sort();
    (samples[n / 2], samples[(n * 9 / 10).min(n - 1)])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

struct Row {
    what: String,
    median: Duration,
    p90: Duration,
    reference: String,
    ref_median: RefOf,
}

/// Which reference a row is compared with; resolved when the table is printed, after the
/// references were measured a second time.
#[derive(Clone, Copy)]
enum RefOf {
    ModExp(usize),
    Crt(usize),
    Ecdh(usize),
    /// Const-time modexp + CRT private op of one size (DESIGN.md's floor per signature).
    Signature(usize),
    /// Measured once, beside the row (key generation).
    Fixed(Duration),
}

fn random_below_bits(bits: usize) -> Vec<u8> {
    let mut v = vec![0u8; bits / 8];
    OsRng.fill_bytes(&mut v);
    v[0] &= 0x7f;
    v
}

/// The OpenSSL references of one size, measured in this run.
struct Reference {
    /// `BN_mod_exp_mont_consttime` with a full-size exponent.
    modexp: Duration,
    /// RSA private operation with CRT (`RSA_private_encrypt`, no padding).
    crt: Duration,
    /// One ECDH on P-256 (`EVP_PKEY_derive`), the floor of opening an envelope.
    ecdh: Duration,
}

fn reference(bits: usize, n: usize) -> Reference {
    let mut ctx = BigNumContext::new().unwrap();
    let key = Rsa::generate(bits as u32).unwrap();
    let base = BigNum::from_slice(&random_below_bits(bits)).unwrap();
    let mut exponent = BigNum::from_slice(&random_below_bits(bits)).unwrap();
    exponent.set_const_time();
    let (modexp, _) = time(n, || {
        let mut r = BigNum::new().unwrap();
        r.mod_exp(&base, &exponent, key.n(), &mut ctx).unwrap();
        r
    });
    let x = random_below_bits(bits);
    let (crt, _) = time(n, || {
        let mut out = vec![0u8; bits / 8];
        key.private_encrypt(&x, &mut out, Padding::NONE).unwrap();
        out
    });
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let ours = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let peer = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let (ecdh, _) = time(n, || {
        let mut d = openssl::derive::Deriver::new(&ours).unwrap();
        d.set_peer(&peer).unwrap();
        d.derive_to_vec().unwrap()
    });
    Reference { modexp, crt, ecdh }
}

impl Reference {
    /// The faster of two measurements, field by field: the stricter reference.
    fn min(&self, other: &Reference) -> Reference {
        Reference {
            modexp: self.modexp.min(other.modexp),
            crt: self.crt.min(other.crt),
            ecdh: self.ecdh.min(other.ecdh),
        }
    }
}

/// hsm-sim's module, when it was built next to this benchmark.
fn hsm_sim_module() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join("libtandem_hsm_sim.so"))
        .find(|p| p.is_file())
}

fn open_hsms(token_dir: &Path) -> Vec<(&'static str, Hsm)> {
    let softhsm = std::env::var_os("TANDEM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    let mut hsms = vec![(
        "SoftHSM",
        Hsm::open(&HsmConfig {
            module_path: softhsm,
            token_label: "bench".into(),
            user_pin: TokenPin::from_file(token_dir.join("pin")).unwrap(),
        })
        .unwrap(),
    )];
    match hsm_sim_module() {
        Some(module) => {
            let pin = || TokenPin::new("bench-user-pin".into());
            provision_token(
                &module,
                "bench",
                &TokenPin::new("bench-so-pin".into()),
                &pin(),
            )
            .unwrap();
            hsms.push((
                "hsm-sim",
                Hsm::open(&HsmConfig {
                    module_path: module,
                    token_label: "bench".into(),
                    user_pin: pin(),
                })
                .unwrap(),
            ));
        }
        None => eprintln!(
            "note: libtandem_hsm_sim.so not found next to the benchmark; \
             run `cargo build --release -p tandem-hsm-sim` for the hsm-sim rows"
        ),
    }
    for (_, hsm) in &hsms {
        hsm.ensure_objects(TransportKeySpec::EcP256).unwrap();
    }
    hsms
}

/// The `token-rsa` form on SoftHSM (docs/HSM_MODES.md): d1'' as a non-CRT RSA key token
/// object (with e_obj = d1''⁻¹, which SoftHSM's OpenSSL blinding needs), an RSA-3072
/// transport key (the share envelope of every signature is then opened with RSA-OAEP), a KEK
/// without CKA_DECRYPT. Compare with the SoftHSM rows above (software share path, EC
/// transport key).
fn token_rsa_rows(token_dir: &Path, bits: usize, n: usize, rows: &mut Vec<Row>) {
    let softhsm = std::env::var_os("TANDEM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    let hsm = Hsm::open(&HsmConfig {
        module_path: softhsm,
        token_label: "bench-rsa".into(),
        user_pin: TokenPin::from_file(token_dir.join("pin-rsa")).unwrap(),
    })
    .unwrap();
    hsm.ensure_kek_without_decrypt().unwrap();
    hsm.ensure_objects(TransportKeySpec::Rsa(3072)).unwrap();
    hsm.use_share_exponentiation(ShareExponentiation::TokenRsa)
        .unwrap();
    let transport = hsm.transport_public_key_der().unwrap();
    let material = generate_client_key_for_token(&mut OsRng, bits).unwrap();
    let n1 = material.modulus.clone();
    let sealed =
        envelope::seal_server_share_key(&transport, material.server_share_key, &mut OsRng).unwrap();
    let parts = envelope::ShareKeyEnvelope::parse(&sealed).unwrap();
    let share_blob = hsm
        .import_share_key(parts.wrapped_content_key, parts.wrapped_share_key, &n1)
        .unwrap();
    let server_key = hsm.generate_server_key(bits).unwrap();
    let n2 = server_key.modulus.clone();
    let composite_bits = bit_length(&multiply(&n1, &n2));
    let digest = HashAlgorithm::Sha256.digest(b"benchmark");
    let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, composite_bits).unwrap();
    let request = SigningRequest {
        scheme: tandem_client_core::encoding::SignatureScheme::Pkcs1v15,
        hash: HashAlgorithm::Sha256,
        digest,
        encoded_message: x.clone(),
        composite_modulus_bits: composite_bits,
    };
    let s1 = partial_sign(&material.device_share, &n1, &request).unwrap();
    let share_env = envelope::seal(&transport, s1.as_bytes(), b"bench-share", &mut OsRng).unwrap();
    let key = ServerKeyRef {
        key_type: KeyType::Auth,
        client_modulus: &n1,
        server_modulus: &n2,
        server_share_blob: &share_blob,
        server_key_blob: &server_key.wrapped_private_key,
    };
    let x1 = random_below_bits(bits);
    let (exp, exp90) = time(n, || hsm.share_exp_token(&share_blob, &n1, &x1).unwrap());
    let (open, open90) = time(n, || {
        let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
        hsm.open_envelope(p.key, &p.iv, p.ciphertext, b"bench-share")
            .unwrap()
    });
    let (eval, eval90) = time(n, || {
        match evaluate_share(&hsm, key, &x, s1.as_bytes()).unwrap() {
            ShareVerdict::Valid { signature } => signature,
            ShareVerdict::Invalid => panic!("share rejected"),
        }
    });
    let (total, total90) = time(n, || {
        let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
        let s = hsm
            .open_envelope(p.key, &p.iv, p.ciphertext, b"bench-share")
            .unwrap();
        evaluate_share(&hsm, key, &x, &s).unwrap()
    });
    rows.push(Row {
        what: format!(
            "SoftHSM token-rsa: x^d1'' mod n1 in the token, {bits} bits (non-CRT key object, e_obj, CKM_RSA_X_509)"
        ),
        median: exp,
        p90: exp90,
        reference: format!("OpenSSL BN_mod_exp_mont_consttime {bits}"),
        ref_median: RefOf::ModExp(bits),
    });
    rows.push(Row {
        what: "SoftHSM token-rsa: open the sealed share (RSA-3072 OAEP in the HSM, AES-GCM)".into(),
        median: open,
        p90: open90,
        reference: "OpenSSL RSA-3072 CRT private op".into(),
        ref_median: RefOf::Crt(3072),
    });
    rows.push(Row {
        what: "SoftHSM token-rsa: judge share + complete signature (s1'' in the token, s1, verify, s2, verify, CRT + check)".into(),
        median: eval,
        p90: eval90,
        reference: "OpenSSL consttime modexp + CRT private op".into(),
        ref_median: RefOf::Signature(bits),
    });
    rows.push(Row {
        what: "**SoftHSM token-rsa: server total per composite signature** (open share + judge + complete)".into(),
        median: total,
        p90: total90,
        reference: "OpenSSL consttime modexp + CRT private op".into(),
        ref_median: RefOf::Signature(bits),
    });
    hsm.destroy_share_key(&share_blob).unwrap();
}

fn run(token_dir: &Path, bits: usize, n: usize) {
    let hsms = open_hsms(token_dir);
    let mut rows = Vec::new();
    let keygen_n = n.clamp(3, 10);
    let refs: Vec<(usize, Reference)> = [bits, 4096]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|b| (b, reference(b, n)))
        .collect();
    let (ossl_keygen, _) = time(keygen_n, || Rsa::generate(bits as u32).unwrap());

    // 1. The share exponentiation with a secret exponent, at each size: the server's own
    //    (OpenSSL constant-time, for HSMs without the share mechanism) and hsm-sim's
    //    in-token mechanism (unwrap the sealed share under the KEK + C_Sign + destroy).
    for (b, _) in &refs {
        let key = Rsa::generate(*b as u32).unwrap();
        let n1 = key.n().to_vec();
        let d = random_below_bits(*b);
        let x = random_below_bits(*b);
        let (ours, ours90) = time(n, || mod_exp_secret(&x, &d, &n1).unwrap());
        rows.push(Row {
            what: format!(
                "server share exponentiation x^d1'' mod n1, {b} bits (tandem_server::bn)"
            ),
            median: ours,
            p90: ours90,
            reference: format!("OpenSSL BN_mod_exp_mont_consttime {b}"),
            ref_median: RefOf::ModExp(*b),
        });
        for (name, hsm) in &hsms {
            if !hsm.has_share_mechanism() {
                continue;
            }
            let aad = server_share_aad(KeyType::Sign, &n1);
            let blob = hsm.seal_at_rest(&d, &aad).unwrap();
            let (t, t90) = time(n, || hsm.share_exp(&blob, &aad, &n1, &x).unwrap());
            assert_eq!(
                hsm.share_exp(&blob, &aad, &n1, &x).unwrap(),
                mod_exp_secret(&x, &d, &n1).unwrap()
            );
            rows.push(Row {
                what: format!(
                    "{name}: share exponentiation in the token, {b} bits (unwrap + C_Sign + destroy)"
                ),
                median: t,
                p90: t90,
                reference: format!("OpenSSL BN_mod_exp_mont_consttime {b}"),
                ref_median: RefOf::ModExp(*b),
            });
        }
    }

    // 2. The HSM's raw RSA operation through cryptoki, as the server does it per signature.
    for (name, hsm) in &hsms {
        let server_key = hsm.generate_server_key(bits).unwrap();
        let (t, t90) = time(n, || {
            hsm.sign_raw(
                &server_key.wrapped_private_key,
                &server_key.modulus,
                &random_below_bits(bits),
            )
            .unwrap()
        });
        rows.push(Row {
            what: format!(
                "{name}: s2 = x^d2 mod n2, RSA-{bits} (cached unwrapped key + CKM_RSA_X_509)"
            ),
            median: t,
            p90: t90,
            reference: format!("OpenSSL RSA-{bits} CRT private op"),
            ref_median: RefOf::Crt(bits),
        });
    }

    // 3. The device: key generation and partial signing (pure Rust).
    let (keygen, keygen90) = time(keygen_n, || generate_client_key(&mut OsRng, bits).unwrap());
    rows.push(Row {
        what: format!("client key generation + split, RSA-{bits} (tandem, pure Rust)"),
        median: keygen,
        p90: keygen90,
        reference: format!("OpenSSL RSA_generate_key {bits}"),
        ref_median: RefOf::Fixed(ossl_keygen),
    });
    let mut material = generate_client_key(&mut OsRng, bits).unwrap();
    let n1 = material.modulus.clone();
    let keystore = KeystoreSecret::generate(&mut OsRng);
    let pin = Pin::new("1234").unwrap();
    let protected = ProtectedShare::protect(
        &material.device_share,
        &pin,
        &keystore,
        KdfParams::default(),
        &mut OsRng,
    )
    .unwrap();
    let (unlock, unlock90) = time(n, || protected.unlock(&pin, &keystore).unwrap());
    let share: DeviceShare = protected.unlock(&pin, &keystore).unwrap();

    // 4. Per composite signature, on each HSM: open the sealed share (transport key,
    //    ECDH P-256 in the HSM + HKDF + AES-GCM), judge it and complete the signature.
    let mut first = true;
    // d1'' reaches the server as registration sends it: sealed to the transport key.
    let first_transport = hsms[0].1.transport_public_key_der().unwrap();
    let server_share = std::mem::replace(
        &mut material.server_share,
        generate_client_key(&mut OsRng, 2048).unwrap().server_share,
    );
    let sealed_d1pp =
        envelope::seal_server_share(&first_transport, server_share, b"bench", &mut OsRng).unwrap();
    let p = envelope::EnvelopeParts::parse(&sealed_d1pp).unwrap();
    let d1pp = hsms[0]
        .1
        .open_envelope(p.key, &p.iv, p.ciphertext, b"bench")
        .unwrap();
    for (name, hsm) in &hsms {
        let transport = hsm.transport_public_key_der().unwrap();
        let server_key = hsm.generate_server_key(bits).unwrap();
        let n2 = server_key.modulus.clone();
        let composite = multiply(&n1, &n2);
        let composite_bits = bit_length(&composite);
        let share_blob = hsm
            .seal_at_rest(&d1pp, &server_share_aad(KeyType::Auth, &n1))
            .unwrap();
        let digest = HashAlgorithm::Sha256.digest(b"benchmark");
        let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, composite_bits).unwrap();
        let request = SigningRequest {
            scheme: tandem_client_core::encoding::SignatureScheme::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
            digest,
            encoded_message: x.clone(),
            composite_modulus_bits: composite_bits,
        };
        if first {
            first = false;
            let (psign, psign90) = time(n, || partial_sign(&share, &n1, &request).unwrap());
            rows.push(Row {
                what: format!(
                    "client partial signature s1' = x^d1' mod n1, RSA-{bits} (incl. encoding check)"
                ),
                median: psign,
                p90: psign90,
                reference: format!("OpenSSL BN_mod_exp_mont_consttime {bits}"),
                ref_median: RefOf::ModExp(bits),
            });
            rows.push(Row {
                what: "client PIN unlock (Argon2id m=19 MiB, t=2)".into(),
                median: unlock,
                p90: unlock90,
                reference: format!("OpenSSL BN_mod_exp_mont_consttime {bits}"),
                ref_median: RefOf::ModExp(bits),
            });
        }
        let s1 = partial_sign(&share, &n1, &request).unwrap();
        let share_env =
            envelope::seal(&transport, s1.as_bytes(), b"bench-share", &mut OsRng).unwrap();
        let key = ServerKeyRef {
            key_type: KeyType::Auth,
            client_modulus: &n1,
            server_modulus: &n2,
            server_share_blob: &share_blob,
            server_key_blob: &server_key.wrapped_private_key,
        };
        let (open, open90) = time(n, || {
            let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
            hsm.open_envelope(p.key, &p.iv, p.ciphertext, b"bench-share")
                .unwrap()
        });
        let (eval, eval90) = time(n, || {
            match evaluate_share(hsm, key, &x, s1.as_bytes()).unwrap() {
                ShareVerdict::Valid { signature } => signature,
                ShareVerdict::Invalid => panic!("share rejected"),
            }
        });
        let (total, total90) = time(n, || {
            let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
            let s = hsm
                .open_envelope(p.key, &p.iv, p.ciphertext, b"bench-share")
                .unwrap();
            evaluate_share(hsm, key, &x, &s).unwrap()
        });
        rows.push(Row {
            what: format!("{name}: open the sealed share (ECDH P-256 in the HSM, HKDF, AES-GCM)"),
            median: open,
            p90: open90,
            reference: "OpenSSL ECDH P-256".into(),
            ref_median: RefOf::Ecdh(bits),
        });
        rows.push(Row {
            what: format!(
                "{name}: judge share + complete signature (s1'', s1, verify, s2, verify, CRT + check)"
            ),
            median: eval,
            p90: eval90,
            reference: "OpenSSL consttime modexp + CRT private op".into(),
            ref_median: RefOf::Signature(bits),
        });
        rows.push(Row {
            what: format!(
                "**{name}: server total per composite signature** (open share + judge + complete)"
            ),
            median: total,
            p90: total90,
            reference: "OpenSSL consttime modexp + CRT private op".into(),
            ref_median: RefOf::Signature(bits),
        });
    }

    token_rsa_rows(token_dir, bits, n, &mut rows);

    // The references again, after the rows: the machine's speed drifts (other guests on the
    // host), and the faster of the two measurements is the stricter comparison.
    let again: Vec<(usize, Reference)> = refs.iter().map(|(b, _)| (*b, reference(*b, n))).collect();
    let reference_of = |b: usize| {
        let first = &refs.iter().find(|(x, _)| *x == b).unwrap().1;
        let second = &again.iter().find(|(x, _)| *x == b).unwrap().1;
        (
            first.min(second),
            first.modexp + first.crt,
            second.modexp + second.crt,
        )
    };
    let resolve = |r: RefOf| match r {
        RefOf::ModExp(b) => reference_of(b).0.modexp,
        RefOf::Crt(b) => reference_of(b).0.crt,
        RefOf::Ecdh(b) => reference_of(b).0.ecdh,
        RefOf::Signature(b) => {
            let r = reference_of(b).0;
            r.modexp + r.crt
        }
        RefOf::Fixed(d) => d,
    };
    let (_, before, after) = reference_of(bits);
    println!("RSA halves of {bits} bits, {n} iterations (key generation {keygen_n}), medians:\n");
    println!("| operation | median ms | p90 ms | reference (same run) | reference ms | ratio |");
    println!("|---|---:|---:|---|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} |",
            r.what,
            ms(r.median),
            ms(r.p90),
            r.reference,
            ms(resolve(r.ref_median)),
            r.median.as_secs_f64() / resolve(r.ref_median).as_secs_f64()
        );
    }
    println!(
        "\nThe OpenSSL references were measured before and after the rows; each is the faster \
         of the two (const-time modexp + CRT private op, {bits} bits: {} ms before, {} ms after).",
        ms(before),
        ms(after)
    );
}

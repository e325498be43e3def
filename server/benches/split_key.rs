//! Split-key benchmark: client key generation, client partial signing and the server's cost
//! per composite signature (SoftHSM), each next to OpenSSL references measured in the same
//! run. Prints a Markdown table (docs/BENCHMARKS.md).
//!
//! ```text
//! cargo bench -p tandem-server --bench split_key            # 3072-bit halves, 20 iterations
//! cargo bench -p tandem-server --bench split_key -- 4096 10 # bits, iterations
//! ```
//!
//! The PKCS#11 module is SoftHSM (`TANDEM_TEST_PKCS11_MODULE` overrides the path). SoftHSM
//! reads `SOFTHSM2_CONF` when it is loaded, so the benchmark provisions a token in a
//! temporary directory and re-executes itself with that variable set.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openssl::bn::{BigNum, BigNumContext};
use openssl::rsa::{Padding, Rsa};
use rand_core::{OsRng, RngCore};
use tandem_client_core::encoding::{HashAlgorithm, encode_pkcs1v15};
use tandem_client_core::envelope;
use tandem_client_core::hazmat::{bit_length, multiply};
use tandem_client_core::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use tandem_client_core::sign::{SigningRequest, partial_sign};
use tandem_client_core::types::KeyType;
use tandem_client_core::{DeviceShare, generate_client_key};
use tandem_server::hsm::{Hsm, HsmConfig, TokenPin};
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
            let status = Command::new(std::env::current_exe().unwrap())
                .args(std::env::args().skip(1))
                .env("SOFTHSM2_CONF", dir.path().join("softhsm2.conf"))
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
    ref_median: Duration,
}

fn random_below_bits(bits: usize) -> Vec<u8> {
    let mut v = vec![0u8; bits / 8];
    OsRng.fill_bytes(&mut v);
    v[0] &= 0x7f;
    v
}

fn run(token_dir: &Path, bits: usize, n: usize) {
    let module = std::env::var_os("TANDEM_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    let hsm = Hsm::open(&HsmConfig {
        module_path: module,
        token_label: "bench".into(),
        user_pin: TokenPin::from_file(token_dir.join("pin")).unwrap(),
    })
    .unwrap();
    hsm.ensure_objects(3072).unwrap();
    let transport = hsm.transport_public_key_der().unwrap();
    let mut rows = Vec::new();
    let mut ctx = BigNumContext::new().unwrap();

    // OpenSSL references.
    let keygen_n = n.clamp(3, 10);
    let (ossl_keygen, _) = time(keygen_n, || Rsa::generate(bits as u32).unwrap());
    let ossl_key = Rsa::generate(bits as u32).unwrap();
    let modulus = ossl_key.n().to_owned().unwrap();
    let base = BigNum::from_slice(&random_below_bits(bits)).unwrap();
    let mut exponent = BigNum::from_slice(&random_below_bits(bits)).unwrap();
    exponent.set_const_time();
    let (ossl_modexp, _) = time(n, || {
        let mut r = BigNum::new().unwrap();
        r.mod_exp(&base, &exponent, &modulus, &mut ctx).unwrap();
        r
    });
    let x_ossl = random_below_bits(bits);
    let (ossl_crt, _) = time(n, || {
        let mut out = vec![0u8; bits / 8];
        ossl_key
            .private_encrypt(&x_ossl, &mut out, Padding::NONE)
            .unwrap();
        out
    });

    // Client key generation.
    let (keygen, keygen90) = time(keygen_n, || generate_client_key(&mut OsRng, bits).unwrap());
    rows.push(Row {
        what: format!("client key generation + split, RSA-{bits} (tandem, pure Rust)"),
        median: keygen,
        p90: keygen90,
        reference: format!("OpenSSL RSA_generate_key {bits}"),
        ref_median: ossl_keygen,
    });

    // One account key pair, as registration leaves it.
    let material = generate_client_key(&mut OsRng, bits).unwrap();
    let n1 = material.modulus.clone();
    let server_key = hsm.generate_server_key(bits).unwrap();
    let n2 = server_key.modulus.clone();
    let composite = multiply(&n1, &n2);
    let composite_bits = bit_length(&composite);
    let sealed =
        envelope::seal_server_share(&transport, material.server_share, b"bench", &mut OsRng)
            .unwrap();
    let parts = envelope::EnvelopeParts::parse(&sealed).unwrap();
    let d1pp = hsm
        .open_envelope(parts.wrapped_key, &parts.iv, parts.ciphertext, b"bench")
        .unwrap();
    let share_blob = hsm
        .seal_at_rest(&d1pp, &server_share_aad(KeyType::Auth, &n1))
        .unwrap();
    drop(d1pp);
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
    let digest = HashAlgorithm::Sha256.digest(b"benchmark");
    let x = encode_pkcs1v15(HashAlgorithm::Sha256, &digest, composite_bits).unwrap();
    let request = SigningRequest {
        scheme: tandem_client_core::encoding::SignatureScheme::Pkcs1v15,
        hash: HashAlgorithm::Sha256,
        digest,
        encoded_message: x.clone(),
        composite_modulus_bits: composite_bits,
    };

    // Client partial signing: unlock (Argon2id, default parameters) + encoding check + s1'.
    let (unlock, unlock90) = time(n, || protected.unlock(&pin, &keystore).unwrap());
    let share: DeviceShare = protected.unlock(&pin, &keystore).unwrap();
    let (psign, psign90) = time(n, || partial_sign(&share, &n1, &request).unwrap());
    rows.push(Row {
        what: format!(
            "client partial signature s1' = x^d1' mod n1, RSA-{bits} (incl. encoding check)"
        ),
        median: psign,
        p90: psign90,
        reference: format!("OpenSSL BN_mod_exp_mont_consttime {bits}"),
        ref_median: ossl_modexp,
    });
    rows.push(Row {
        what: "client PIN unlock (Argon2id m=19 MiB, t=2)".into(),
        median: unlock,
        p90: unlock90,
        reference: format!("OpenSSL BN_mod_exp_mont_consttime {bits}"),
        ref_median: ossl_modexp,
    });
    let s1 = partial_sign(&share, &n1, &request).unwrap();
    let share_env = envelope::seal(&transport, s1.as_bytes(), b"bench-share", &mut OsRng).unwrap();

    // Server side, per composite signature.
    let key = ServerKeyRef {
        key_type: KeyType::Auth,
        client_modulus: &n1,
        server_modulus: &n2,
        server_share_blob: &share_blob,
        server_key_blob: &server_key.wrapped_private_key,
    };
    let (open, open90) = time(n, || {
        let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
        hsm.open_envelope(p.wrapped_key, &p.iv, p.ciphertext, b"bench-share")
            .unwrap()
    });
    let (eval, eval90) = time(n, || {
        match evaluate_share(&hsm, key, &x, s1.as_bytes()).unwrap() {
            ShareVerdict::Valid { signature } => signature,
            ShareVerdict::Invalid => panic!("share rejected"),
        }
    });
    let (hsm_sign, hsm_sign90) = time(n, || {
        hsm.sign_raw(
            &server_key.wrapped_private_key,
            &n2,
            &random_below_bits(bits),
        )
        .unwrap()
    });
    let (total, total90) = time(n, || {
        let p = envelope::EnvelopeParts::parse(&share_env).unwrap();
        let s = hsm
            .open_envelope(p.wrapped_key, &p.iv, p.ciphertext, b"bench-share")
            .unwrap();
        evaluate_share(&hsm, key, &x, &s).unwrap()
    });
    let lower_bound = ossl_modexp + ossl_crt;
    rows.push(Row {
        what: "server: open the sealed share (HSM RSA-OAEP unwrap + AES-GCM)".into(),
        median: open,
        p90: open90,
        reference: format!("OpenSSL RSA-{bits} CRT private op"),
        ref_median: ossl_crt,
    });
    rows.push(Row {
        what: "server: HSM s2 = x^d2 mod n2 (unwrap d2 + CKM_RSA_X_509 + destroy)".into(),
        median: hsm_sign,
        p90: hsm_sign90,
        reference: format!("OpenSSL RSA-{bits} CRT private op"),
        ref_median: ossl_crt,
    });
    rows.push(Row {
        what:
            "server: judge share + complete signature (d1'' decrypt, s1'', verify, s2, CRT, verify)"
                .into(),
        median: eval,
        p90: eval90,
        reference: "OpenSSL consttime modexp + CRT private op (lower bound)".into(),
        ref_median: lower_bound,
    });
    rows.push(Row {
        what: "**server total per composite signature** (open share + judge + complete)".into(),
        median: total,
        p90: total90,
        reference: "OpenSSL consttime modexp + CRT private op (lower bound)".into(),
        ref_median: lower_bound,
    });

    println!(
        "RSA halves of {bits} bits (composite n of {composite_bits} bits), {n} iterations (key generation {keygen_n}), medians:\n"
    );
    println!("| operation | median ms | p90 ms | reference (same run) | reference ms | ratio |");
    println!("|---|---:|---:|---|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} |",
            r.what,
            ms(r.median),
            ms(r.p90),
            r.reference,
            ms(r.ref_median),
            r.median.as_secs_f64() / r.ref_median.as_secs_f64()
        );
    }
}

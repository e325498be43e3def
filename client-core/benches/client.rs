//! Device-core timings: `cargo bench -p tandem-client-core --bench client`.
//!
//! Plain `std::time::Instant`, median of N runs, printed as a markdown table.
// A benchmark binary: failing loudly on an unexpected error is what we want.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use tandem_client_core::encoding::{HashAlgorithm, SignatureScheme, encode_pkcs1v15};
use tandem_client_core::hazmat::bigint::mod_pow_secret;
use tandem_client_core::pin::{KdfParams, KeystoreSecret, Pin, ProtectedShare};
use tandem_client_core::sign::{partial_sign, server_partial};
use tandem_client_core::{SigningRequest, generate_client_key};

/// Runs `f` `runs` times and returns the median duration.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    OsRng.fill_bytes(&mut v);
    v
}

/// A random odd modulus-sized value with the top bit set (enough for timing).
fn fake_modulus(bits: usize) -> Vec<u8> {
    let mut m = random_bytes(bits / 8);
    m[0] |= 0x80;
    let last = m.len() - 1;
    m[last] |= 1;
    m
}

fn row(op: &str, runs: usize, d: Duration) {
    println!("| {op} | {runs} | {:.2} ms |", d.as_secs_f64() * 1e3);
}

fn main() {
    println!("| operation | runs | median |");
    println!("|---|---|---|");

    for bits in [3072usize, 4096] {
        let m = fake_modulus(bits);
        let x = random_bytes(bits / 8 - 1);
        let e = random_bytes(bits / 8);
        let d = median(21, || {
            std::hint::black_box(mod_pow_secret(&x, &e, &m).unwrap());
        });
        row(&format!("mod_pow_secret {bits}"), 21, d);
        // Same length, all-zero and all-one exponents: should take the same time.
        for (name, fill) in [("zero", 0x00u8), ("all-ones", 0xff)] {
            let e = vec![fill; bits / 8];
            let d = median(21, || {
                std::hint::black_box(mod_pow_secret(&x, &e, &m).unwrap());
            });
            row(&format!("mod_pow_secret {bits}, {name} exponent"), 21, d);
        }
    }

    let runs = 5;
    let mut km = None;
    let d = median(runs, || {
        km = Some(generate_client_key(&mut OsRng, 3072).unwrap());
    });
    row("generate_client_key 3072 (incl. split)", runs, d);
    let km = km.unwrap();

    let composite_bits = 6144;
    let hash = HashAlgorithm::Sha256;
    let digest = hash.digest(b"bench");
    let req = SigningRequest {
        scheme: SignatureScheme::Pkcs1v15,
        hash,
        encoded_message: encode_pkcs1v15(hash, &digest, composite_bits).unwrap(),
        digest,
        composite_modulus_bits: composite_bits,
    };
    let d = median(21, || {
        std::hint::black_box(partial_sign(&km.device_share, &km.modulus, &req).unwrap());
    });
    row("partial_sign 3072 (PKCS#1 check + exp)", 21, d);
    let d = median(21, || {
        std::hint::black_box(
            server_partial(&km.server_share, &km.modulus, &req.encoded_message).unwrap(),
        );
    });
    row("server_partial 3072", 21, d);

    let ks = KeystoreSecret::generate(&mut OsRng);
    let pin = Pin::new("123456").unwrap();
    let ps = ProtectedShare::protect(
        &km.device_share,
        &pin,
        &ks,
        KdfParams::default(),
        &mut OsRng,
    )
    .unwrap();
    let d = median(5, || {
        std::hint::black_box(ps.unlock(&pin, &ks).unwrap());
    });
    row("unlock (Argon2id m=19 MiB, t=2, p=1)", 5, d);
}

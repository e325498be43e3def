//! Verifying a CAdES signature with embedded revocation data (issue 22): our validation
//! against the same checks done by OpenSSL through the `openssl` crate, on the same file.
//!
//! `cargo bench -p tandem-rp --bench cades_verify`
//!
//! Setup (not timed): a detached CAdES signature of a small document made with the test PKI
//! (root, issuing CA, signing certificate), with B-LT validation data embedded by
//! `documents::ltv::add_to_cades`: the root and issuing CA certificates and two OCSP
//! responses made by `openssl ocsp` (the signer's by the issuing CA, the issuing CA's by the
//! root). No time-stamp: the OpenSSL side has no counterpart for our time-stamp checks here.
//!
//! Timed, alternating, in rounds:
//! - ours: `validation::examine` (parse, signing certificate, digest of the document,
//!   signature, algorithms, chain, times) + `Pending::embedded_revocation` + `conclude`,
//!   no network; asserted TOTAL_PASSED in the setup;
//! - OpenSSL: `CmsContentInfo::from_der` + `verify` (signature and chain to the root store,
//!   detached content) + for both embedded OCSP responses `OcspResponse::from_der`,
//!   `OcspBasicResponse::verify` and `find_status` (GOOD). OpenSSL is given the OCSP
//!   responses' DER directly (the crate cannot read them out of the CMS).
//!
//! Prints the median time per verification of each and the median of the rounds' ratios.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark

use std::time::{Duration, Instant, SystemTime};

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::ocsp::{OcspCertId, OcspCertStatus, OcspFlag, OcspResponse};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use tandem_rp::client::revocation::RevocationOptions;
use tandem_rp::documents::DocumentHash;
use tandem_rp::documents::cades::{CadesInput, CadesScheme, prepare};
use tandem_rp::documents::ltv::{ValidationData, add_to_cades};
use tandem_rp::report::Indication;
use tandem_rp::validation::{Examination, ValidationContext, conclude, examine};
use tandem_rp_test_pki::{ocsp_response_cli, pki};

const DOC: &[u8] = b"Schriftsatz vom 7. Dezember: Klage wegen ...\n";
const ROUNDS: usize = 15;
const PER_ROUND: usize = 200;

fn sign() -> Vec<u8> {
    let hash = DocumentHash::Sha256;
    let (s, i) = (
        pki().sign.to_der().unwrap(),
        pki().issuing.to_der().unwrap(),
    );
    let prepared = prepare(&CadesInput {
        document_digest: &hash.digest(DOC),
        signer_certificate_der: &s,
        issuer_certificate_der: &i,
        hash,
        scheme: CadesScheme::RsassaPss,
        signing_time: SystemTime::now() - Duration::from_secs(60),
    })
    .unwrap();
    let mut ctx = PkeyCtx::new(&pki().leaf_key).unwrap();
    ctx.sign_init().unwrap();
    ctx.set_signature_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
    ctx.set_rsa_mgf1_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
    let mut sig = Vec::new();
    ctx.sign_to_vec(prepared.digest_to_sign(), &mut sig)
        .unwrap();
    prepared.finish(&sig).unwrap()
}

fn ours(p7s: &[u8], ctx: &ValidationContext) -> bool {
    let mut digest = |h: DocumentHash| Ok(h.digest(DOC));
    match examine(p7s, &mut digest, ctx) {
        Examination::NeedsRevocation(p) => match p.embedded_revocation() {
            Some(f) => conclude(p, f).result.status.indication() == Indication::TotalPassed,
            None => false,
        },
        Examination::Decided(_) => false,
    }
}

struct OpensslInputs {
    store: X509Store,
    chain: Stack<X509>,
    ids: Vec<(X509, X509)>,
    ocsp: Vec<Vec<u8>>,
}

fn openssl_checks(p7s: &[u8], i: &OpensslInputs) -> bool {
    let mut cms = CmsContentInfo::from_der(p7s).unwrap();
    if cms
        .verify(None, Some(&i.store), Some(DOC), None, CMSOptions::BINARY)
        .is_err()
    {
        return false;
    }
    let basics: Vec<_> = i
        .ocsp
        .iter()
        .map(|d| OcspResponse::from_der(d).unwrap().basic().unwrap())
        .collect();
    i.ids.iter().all(|(cert, issuer)| {
        let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).unwrap();
        basics.iter().any(|b| {
            b.verify(&i.chain, &i.store, OcspFlag::empty()).is_ok()
                && b.find_status(&id)
                    .is_some_and(|s| s.status == OcspCertStatus::GOOD)
        })
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    let data = ValidationData {
        certificates: vec![p.root.to_der().unwrap(), p.issuing.to_der().unwrap()],
        ocsp_responses: vec![
            ocsp_response_cli(dir.path(), &p.sign, &p.issuing, &p.issuing_key, None),
            ocsp_response_cli(dir.path(), &p.issuing, &p.root, &p.root_key, None),
        ],
        crls: Vec::new(),
    };
    let p7s = add_to_cades(&sign(), &data).unwrap();
    let ctx = ValidationContext::new(
        vec![p.root.clone()],
        SystemTime::now(),
        RevocationOptions::default(),
    )
    .unwrap();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(p.root.clone()).unwrap();
    let mut chain = Stack::new().unwrap();
    chain.push(p.issuing.clone()).unwrap();
    let inputs = OpensslInputs {
        store: store.build(),
        chain,
        ids: vec![
            (p.sign.clone(), p.issuing.clone()),
            (p.issuing.clone(), p.root.clone()),
        ],
        ocsp: data.ocsp_responses.clone(),
    };
    assert!(ours(&p7s, &ctx), "our validation must pass");
    assert!(openssl_checks(&p7s, &inputs), "OpenSSL's checks must pass");

    let (mut t_ours, mut t_ossl, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..PER_ROUND {
            assert!(ours(std::hint::black_box(&p7s), &ctx));
        }
        let a = start.elapsed().as_secs_f64() / PER_ROUND as f64;
        let start = Instant::now();
        for _ in 0..PER_ROUND {
            assert!(openssl_checks(std::hint::black_box(&p7s), &inputs));
        }
        let b = start.elapsed().as_secs_f64() / PER_ROUND as f64;
        t_ours.push(a);
        t_ossl.push(b);
        ratios.push(a / b);
    }
    let (a, b, r) = (
        median(&mut t_ours),
        median(&mut t_ossl),
        median(&mut ratios),
    );
    println!(
        "CAdES verify with embedded OCSP ({} bytes), {ROUNDS} rounds x {PER_ROUND}",
        p7s.len()
    );
    println!("  ours:    {:8.1} us per verification (median)", a * 1e6);
    println!("  OpenSSL: {:8.1} us per verification (median)", b * 1e6);
    println!("  ratio ours/OpenSSL: {r:.2} (median of rounds; target <= 1.5)");
}

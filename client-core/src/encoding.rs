//! Message encodings for RSA signatures (RFC 8017): EMSA-PKCS1-v1_5 and EMSA-PSS.
//!
//! The encoded message `x` is what both key halves exponentiate. Whichever side builds `x`,
//! the other side checks it with [`verify_encoding`] against the digest *it* expects before
//! using its share: a share holder that exponentiates unchecked values is a raw signing
//! oracle.
//!
//! All lengths refer to the *composite* modulus `n = n1·n2` (about 6144 bits, possibly an odd
//! bit count such as 6143).

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};
use sha3::{Sha3_256, Sha3_384, Sha3_512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// Hash algorithms accepted for signing: SHA-2 (FIPS 180-4) and SHA-3 (FIPS 202), the
/// `HashAlgorithm` values of the Smart-ID RP API v3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl HashAlgorithm {
    /// Every hash algorithm, SHA-2 first.
    pub const ALL: [HashAlgorithm; 6] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
        HashAlgorithm::Sha3_256,
        HashAlgorithm::Sha3_384,
        HashAlgorithm::Sha3_512,
    ];

    /// Digest length in bytes (also the PSS salt length).
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Sha3_256 => 32,
            HashAlgorithm::Sha384 | HashAlgorithm::Sha3_384 => 48,
            HashAlgorithm::Sha512 | HashAlgorithm::Sha3_512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
            HashAlgorithm::Sha3_256 => Sha3_256::digest(data).to_vec(),
            HashAlgorithm::Sha3_384 => Sha3_384::digest(data).to_vec(),
            HashAlgorithm::Sha3_512 => Sha3_512::digest(data).to_vec(),
        }
    }

    /// DER prefix of the `DigestInfo` for this hash (RFC 8017, section 9.2, note 1), the
    /// digest's OCTET STRING header included: `SEQUENCE { SEQUENCE { OID, NULL }, OCTET
    /// STRING }`. The SHA-3 OIDs are NIST's `id-sha3-256/384/512` (2.16.840.1.101.3.4.2.8,
    /// .9, .10, as used by RFC 8702), with NULL parameters exactly like SHA-2, which is what
    /// OpenSSL and the RustCrypto `rsa` crate encode and expect.
    pub fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlgorithm::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlgorithm::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlgorithm::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
            HashAlgorithm::Sha3_256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x08, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlgorithm::Sha3_384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x09, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlgorithm::Sha3_512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x0a, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }

    fn check_digest(self, digest: &[u8]) -> Result<()> {
        if digest.len() == self.output_len() {
            Ok(())
        } else {
            Err(Error::DigestLength)
        }
    }
}

/// Signature encoding schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 (EMSA-PKCS1-v1_5 with `DigestInfo`).
    Pkcs1v15,
    /// RSASSA-PSS with MGF1 over the same hash and salt length = hash length.
    Pss,
}

/// EMSA-PKCS1-v1_5 (RFC 8017, 9.2): `00 01 FF..FF 00 || DigestInfo(digest)`, `k =
/// ⌈modulus_bits/8⌉` bytes.
pub fn encode_pkcs1v15(hash: HashAlgorithm, digest: &[u8], modulus_bits: usize) -> Result<Vec<u8>> {
    hash.check_digest(digest)?;
    let k = modulus_bits.div_ceil(8);
    let prefix = hash.digest_info_prefix();
    let t_len = prefix.len() + digest.len();
    if k < t_len + 11 {
        return Err(Error::ModulusTooShort);
    }
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(k - t_len - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    Ok(em)
}

/// MGF1 (RFC 8017, B.2.1) with `hash`, XORed into `out`.
fn mgf1_xor(hash: HashAlgorithm, seed: &[u8], out: &mut [u8]) {
    let mut counter: u32 = 0;
    let mut offset = 0;
    while offset < out.len() {
        let mut input = Vec::with_capacity(seed.len() + 4);
        input.extend_from_slice(seed);
        input.extend_from_slice(&counter.to_be_bytes());
        let block = hash.digest(&input);
        for (o, b) in out[offset..].iter_mut().zip(block.iter()) {
            *o ^= b;
        }
        offset += block.len();
        counter = counter.wrapping_add(1);
    }
}

/// `H(0x00*8 || mHash || salt)`.
fn pss_hash(hash: HashAlgorithm, digest: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut m_prime = Vec::with_capacity(8 + digest.len() + salt.len());
    m_prime.extend_from_slice(&[0u8; 8]);
    m_prime.extend_from_slice(digest);
    m_prime.extend_from_slice(salt);
    hash.digest(&m_prime)
}

/// Lengths for PSS: `(k, emLen, emBits)`.
fn pss_lengths(modulus_bits: usize) -> Result<(usize, usize, usize)> {
    let em_bits = modulus_bits.checked_sub(1).ok_or(Error::ModulusTooShort)?;
    Ok((modulus_bits.div_ceil(8), em_bits.div_ceil(8), em_bits))
}

/// EMSA-PSS-ENCODE (RFC 8017, 9.1.1) with MGF1 over `hash`, salt length = hash length and
/// `emBits = modulus_bits − 1`. Returns `k = ⌈modulus_bits/8⌉` bytes: when `emLen < k` (the
/// modulus bit count is ≡ 1 mod 8) the encoding is left-padded with one zero byte.
pub fn encode_pss(
    hash: HashAlgorithm,
    digest: &[u8],
    modulus_bits: usize,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Vec<u8>> {
    hash.check_digest(digest)?;
    let (k, em_len, em_bits) = pss_lengths(modulus_bits)?;
    let h_len = hash.output_len();
    let s_len = h_len;
    if em_len < h_len + s_len + 2 {
        return Err(Error::ModulusTooShort);
    }
    let mut salt = vec![0u8; s_len];
    rng.fill_bytes(&mut salt);
    let h = pss_hash(hash, digest, &salt);

    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - s_len - 1] = 0x01;
    db[db_len - s_len..].copy_from_slice(&salt);
    mgf1_xor(hash, &h, &mut db);
    db[0] &= 0xff >> (8 * em_len - em_bits);

    let mut out = Vec::with_capacity(k);
    out.resize(k - em_len, 0);
    out.extend_from_slice(&db);
    out.extend_from_slice(&h);
    out.push(0xbc);
    Ok(out)
}

/// Checks that `encoded` (exactly `k = ⌈modulus_bits/8⌉` bytes) is a valid encoding of
/// `digest` under `scheme`/`hash`.
///
/// * PKCS#1 v1.5: re-encodes and compares in constant time.
/// * PSS: EMSA-PSS-VERIFY exactly as RFC 8017, 9.1.2 (salt length = hash length), including
///   the check that the leftmost `8·emLen − emBits` bits are zero; when `emLen < k` the
///   extra leading byte must be zero.
///
/// A wrong digest length is [`Error::DigestLength`]; every other failure is the coarse
/// [`Error::EncodingMismatch`].
pub fn verify_encoding(
    scheme: SignatureScheme,
    hash: HashAlgorithm,
    digest: &[u8],
    encoded: &[u8],
    modulus_bits: usize,
) -> Result<()> {
    hash.check_digest(digest)?;
    let k = modulus_bits.div_ceil(8);
    if encoded.len() != k {
        return Err(Error::EncodingMismatch);
    }
    match scheme {
        SignatureScheme::Pkcs1v15 => {
            let expected =
                encode_pkcs1v15(hash, digest, modulus_bits).map_err(|_| Error::EncodingMismatch)?;
            if bool::from(expected.ct_eq(encoded)) {
                Ok(())
            } else {
                Err(Error::EncodingMismatch)
            }
        }
        SignatureScheme::Pss => pss_verify(hash, digest, encoded, modulus_bits),
    }
}

fn pss_verify(
    hash: HashAlgorithm,
    digest: &[u8],
    encoded: &[u8],
    modulus_bits: usize,
) -> Result<()> {
    let bad = || Error::EncodingMismatch;
    let (k, em_len, em_bits) = pss_lengths(modulus_bits).map_err(|_| bad())?;
    let (pad, em) = encoded.split_at(k - em_len);
    if pad.iter().any(|&b| b != 0) {
        return Err(bad());
    }
    let h_len = hash.output_len();
    let s_len = h_len;
    // Step 3.
    if em_len < h_len + s_len + 2 {
        return Err(bad());
    }
    // Step 4.
    if em[em_len - 1] != 0xbc {
        return Err(bad());
    }
    // Step 5.
    let db_len = em_len - h_len - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = &rest[..h_len];
    // Step 6.
    let top_mask = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db[0] & !top_mask != 0 {
        return Err(bad());
    }
    // Steps 7-9.
    let mut db = Zeroizing::new(masked_db.to_vec());
    mgf1_xor(hash, h, &mut db);
    db[0] &= top_mask;
    // Step 10.
    let ps_len = em_len - h_len - s_len - 2;
    if db[..ps_len].iter().any(|&b| b != 0) || db[ps_len] != 0x01 {
        return Err(bad());
    }
    // Steps 11-14.
    let salt = &db[db_len - s_len..];
    let h_prime = pss_hash(hash, digest, salt);
    if bool::from(h_prime.ct_eq(h)) {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const HASHES: [HashAlgorithm; 6] = HashAlgorithm::ALL;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// Dotted form of a DER OID body (arcs base 128, the first byte holding 40·a + b).
    fn oid_string(body: &[u8]) -> String {
        let mut arcs = vec![u64::from(body[0] / 40), u64::from(body[0] % 40)];
        let mut v = 0u64;
        for &b in &body[1..] {
            v = (v << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                arcs.push(v);
                v = 0;
            }
        }
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The DigestInfo prefixes against the published values: RFC 8017 section 9.2 note 1
    /// for SHA-2; for SHA-3 the same structure with NIST's OIDs id-sha3-256/384/512
    /// (2.16.840.1.101.3.4.2.8/9/10, NIST CSOR; RFC 8702) and NULL parameters, which is
    /// what `openssl dgst -sha3-256 -sign` produces (recovered with `pkeyutl -verifyrecover`).
    /// Also against the `rsa` crate, which builds its prefix from the hash crates' OIDs.
    #[test]
    fn digest_info_prefixes_match_rfc_8017_and_nist() {
        let published = [
            (
                HashAlgorithm::Sha256,
                "2.16.840.1.101.3.4.2.1",
                "3031300d060960864801650304020105000420",
            ),
            (
                HashAlgorithm::Sha384,
                "2.16.840.1.101.3.4.2.2",
                "3041300d060960864801650304020205000430",
            ),
            (
                HashAlgorithm::Sha512,
                "2.16.840.1.101.3.4.2.3",
                "3051300d060960864801650304020305000440",
            ),
            (
                HashAlgorithm::Sha3_256,
                "2.16.840.1.101.3.4.2.8",
                "3031300d060960864801650304020805000420",
            ),
            (
                HashAlgorithm::Sha3_384,
                "2.16.840.1.101.3.4.2.9",
                "3041300d060960864801650304020905000430",
            ),
            (
                HashAlgorithm::Sha3_512,
                "2.16.840.1.101.3.4.2.10",
                "3051300d060960864801650304020a05000440",
            ),
        ];
        for (h, oid, der) in published {
            let p = h.digest_info_prefix();
            assert_eq!(p, unhex(der).as_slice(), "{h:?}");
            // 30 len 30 0d 06 09 <oid> 05 00 04 len
            assert_eq!(&p[2..6], &[0x30, 0x0d, 0x06, 0x09]);
            assert_eq!(oid_string(&p[6..15]), oid, "{h:?}");
            assert_eq!(&p[15..17], &[0x05, 0x00], "{h:?}: NULL parameters");
        }
        let rsa_crate = [
            (
                HashAlgorithm::Sha256,
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            ),
            (
                HashAlgorithm::Sha384,
                rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            ),
            (
                HashAlgorithm::Sha512,
                rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            ),
            (
                HashAlgorithm::Sha3_256,
                rsa::Pkcs1v15Sign::new::<sha3::Sha3_256>(),
            ),
            (
                HashAlgorithm::Sha3_384,
                rsa::Pkcs1v15Sign::new::<sha3::Sha3_384>(),
            ),
            (
                HashAlgorithm::Sha3_512,
                rsa::Pkcs1v15Sign::new::<sha3::Sha3_512>(),
            ),
        ];
        for (h, theirs) in rsa_crate {
            assert_eq!(h.digest_info_prefix(), theirs.prefix.as_ref(), "{h:?}");
            assert_eq!(theirs.hash_len, Some(h.output_len()));
        }
    }

    /// FIPS 202 / FIPS 180-4 example values for "abc".
    #[test]
    fn digests_match_known_answers() {
        let abc = [
            (
                HashAlgorithm::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlgorithm::Sha3_256,
                "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
            ),
            (
                HashAlgorithm::Sha3_384,
                "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
            ),
            (
                HashAlgorithm::Sha3_512,
                "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
            ),
        ];
        for (h, want) in abc {
            assert_eq!(hex::encode(h.digest(b"abc")), want, "{h:?}");
        }
    }

    /// A SHA-2 encoding never passes as the SHA-3 one of the same length (and vice versa):
    /// the device must sign exactly the hash it shows.
    #[test]
    fn sha2_and_sha3_encodings_are_not_interchangeable() {
        let mut rng = StdRng::seed_from_u64(5);
        let pairs = [
            (HashAlgorithm::Sha256, HashAlgorithm::Sha3_256),
            (HashAlgorithm::Sha384, HashAlgorithm::Sha3_384),
            (HashAlgorithm::Sha512, HashAlgorithm::Sha3_512),
        ];
        for (a, b) in pairs.into_iter().flat_map(|(x, y)| [(x, y), (y, x)]) {
            let d = a.digest(b"same bytes");
            let em = encode_pkcs1v15(a, &d, 2048).unwrap();
            verify_encoding(SignatureScheme::Pkcs1v15, a, &d, &em, 2048).unwrap();
            assert!(matches!(
                verify_encoding(SignatureScheme::Pkcs1v15, b, &d, &em, 2048),
                Err(Error::EncodingMismatch)
            ));
            // PSS: H = hash(0^8 || mHash || salt) and the MGF1 mask both use the hash.
            let em = encode_pss(a, &d, 2048, &mut rng).unwrap();
            verify_encoding(SignatureScheme::Pss, a, &d, &em, 2048).unwrap();
            assert!(matches!(
                verify_encoding(SignatureScheme::Pss, b, &d, &em, 2048),
                Err(Error::EncodingMismatch)
            ));
        }
    }

    /// EMSA-PSS with SHA-3 and MGF1-SHA-3 against RSASSA-PSS from the `rsa` crate (salt
    /// length = hash length): its encodings pass our EMSA-PSS-VERIFY, ours pass its verifier.
    #[test]
    fn pss_with_sha3_matches_rsa_crate() {
        use rsa::traits::PublicKeyParts;
        use rsa::{BigUint, RsaPrivateKey};
        // A 1536-bit key (tests only): PSS with SHA3-512 needs emLen >= 2·64 + 2 bytes.
        let mut rng = StdRng::seed_from_u64(6);
        let key = RsaPrivateKey::new(&mut rng, 1536).unwrap();
        let pk = key.to_public_key();
        let bits = pk.n().bits();
        let raw = |x: &[u8], e: &BigUint| {
            let m = BigUint::from_bytes_be(x).modpow(e, pk.n()).to_bytes_be();
            let mut out = vec![0u8; pk.size() - m.len()];
            out.extend_from_slice(&m);
            out
        };
        let d = {
            use rsa::traits::PrivateKeyParts;
            key.d().clone()
        };
        macro_rules! case {
            ($h:expr, $d:ty) => {{
                let h: HashAlgorithm = $h;
                let digest = h.digest(b"RSASSA-PSS with SHA-3");
                let theirs = key
                    .sign_with_rng(&mut rng, rsa::Pss::new::<$d>(), &digest)
                    .unwrap();
                let em = raw(&theirs, pk.e());
                verify_encoding(SignatureScheme::Pss, h, &digest, &em, bits).unwrap();
                let ours = raw(&encode_pss(h, &digest, bits, &mut rng).unwrap(), &d);
                pk.verify(rsa::Pss::new::<$d>(), &digest, &ours).unwrap();
                let x = encode_pkcs1v15(h, &digest, bits).unwrap();
                pk.verify(rsa::Pkcs1v15Sign::new::<$d>(), &digest, &raw(&x, &d))
                    .unwrap();
            }};
        }
        case!(HashAlgorithm::Sha3_256, sha3::Sha3_256);
        case!(HashAlgorithm::Sha3_384, sha3::Sha3_384);
        case!(HashAlgorithm::Sha3_512, sha3::Sha3_512);
    }

    #[test]
    fn digest_info_prefix_ends_with_digest_length() {
        for h in HASHES {
            let p = h.digest_info_prefix();
            assert_eq!(usize::from(p[p.len() - 1]), h.output_len());
            assert_eq!(usize::from(p[1]) + 2, p.len() + h.output_len());
            assert_eq!(h.digest(b"abc").len(), h.output_len());
        }
    }

    #[test]
    fn pss_roundtrip_for_awkward_bit_lengths() {
        let mut rng = StdRng::seed_from_u64(1);
        for bits in [6144usize, 6143, 6145, 6137, 2047, 2049, 1041, 1046] {
            for h in HASHES {
                let d = h.digest(b"message");
                let em = encode_pss(h, &d, bits, &mut rng).unwrap();
                assert_eq!(em.len(), bits.div_ceil(8));
                verify_encoding(SignatureScheme::Pss, h, &d, &em, bits).unwrap();
                let other = h.digest(b"other");
                assert!(matches!(
                    verify_encoding(SignatureScheme::Pss, h, &other, &em, bits),
                    Err(Error::EncodingMismatch)
                ));
                // Flip every byte in turn: always rejected.
                for i in (0..em.len()).step_by(97) {
                    let mut t = em.clone();
                    t[i] ^= 0x01;
                    assert!(verify_encoding(SignatureScheme::Pss, h, &d, &t, bits).is_err());
                }
            }
        }
    }

    #[test]
    fn pss_rejects_set_leftmost_bit() {
        let mut rng = StdRng::seed_from_u64(2);
        let bits = 6143; // emBits = 6142, emLen = 768: top two bits of em[0] must be zero.
        let h = HashAlgorithm::Sha256;
        let d = h.digest(b"m");
        let em = encode_pss(h, &d, bits, &mut rng).unwrap();
        assert_eq!(em[0] & 0xc0, 0);
        let mut t = em.clone();
        t[0] |= 0x40;
        assert!(verify_encoding(SignatureScheme::Pss, h, &d, &t, bits).is_err());
    }

    #[test]
    fn pkcs1_shape_and_mismatch() {
        let h = HashAlgorithm::Sha384;
        let d = h.digest(b"m");
        let em = encode_pkcs1v15(h, &d, 6143).unwrap();
        assert_eq!(em.len(), 768);
        assert_eq!(&em[..3], &[0, 1, 0xff]);
        assert!(em.ends_with(&d));
        verify_encoding(SignatureScheme::Pkcs1v15, h, &d, &em, 6143).unwrap();
        assert!(matches!(
            verify_encoding(SignatureScheme::Pkcs1v15, h, &h.digest(b"x"), &em, 6143),
            Err(Error::EncodingMismatch)
        ));
        // A PSS check of a PKCS#1 encoding fails.
        assert!(verify_encoding(SignatureScheme::Pss, h, &d, &em, 6143).is_err());
    }

    #[test]
    fn wrong_digest_length_is_an_error() {
        let mut rng = StdRng::seed_from_u64(3);
        let d = [0u8; 31];
        assert!(matches!(
            encode_pkcs1v15(HashAlgorithm::Sha256, &d, 2048),
            Err(Error::DigestLength)
        ));
        assert!(matches!(
            encode_pss(HashAlgorithm::Sha256, &d, 2048, &mut rng),
            Err(Error::DigestLength)
        ));
        assert!(matches!(
            verify_encoding(
                SignatureScheme::Pss,
                HashAlgorithm::Sha512,
                &[0u8; 32],
                &[0u8; 256],
                2048
            ),
            Err(Error::DigestLength)
        ));
    }

    #[test]
    fn too_short_modulus_is_an_error() {
        let mut rng = StdRng::seed_from_u64(4);
        let h = HashAlgorithm::Sha512;
        let d = h.digest(b"");
        assert!(matches!(
            encode_pss(h, &d, 512, &mut rng),
            Err(Error::ModulusTooShort)
        ));
        assert!(matches!(
            encode_pkcs1v15(h, &d, 512),
            Err(Error::ModulusTooShort)
        ));
    }
}

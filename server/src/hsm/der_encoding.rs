//! DER of what leaves the HSM in a standard form: curve parameters (`CKA_EC_PARAMS`), EC and
//! RSA `SubjectPublicKeyInfo`s, the point inside `CKA_EC_POINT` and ECDSA signatures, all
//! through the `der` and `spki` crates (and the `rsa` crate for RSA keys), no hand-written
//! tags or lengths.
//!
//! The tests pin the output to the bytes the hand-written encoder this replaced produced, so
//! certificates, CRLs and OCSP responses signed before and after are encoded alike.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912::{ID_EC_PUBLIC_KEY, SECP_256_R_1, SECP_384_R_1};
use der::asn1::{AnyRef, BitStringRef, OctetStringRef, UintRef};
use der::{Decode, Encode, Sequence};
use rsa::BigUint;
use rsa::pkcs8::EncodePublicKey;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use super::HsmError;

/// Length of an uncompressed P-256 point, `0x04 || X || Y`.
pub(super) const P256_POINT_LEN: usize = 65;
/// Length of an uncompressed P-384 point, `0x04 || X || Y`.
pub(super) const P384_POINT_LEN: usize = 97;
/// Length of one P-384 scalar (r or s of a raw ECDSA signature).
const P384_SCALAR_LEN: usize = 48;

/// The elliptic curves of the keys this layer creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    /// NIST P-256 (prime256v1, 1.2.840.10045.3.1.7): the EC key-transport key.
    P256,
    /// NIST P-384 (secp384r1, 1.3.132.0.34): EC CA keys.
    P384,
}

impl Curve {
    fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => SECP_256_R_1,
            Curve::P384 => SECP_384_R_1,
        }
    }

    /// Length of an uncompressed point on this curve.
    pub(super) fn point_len(self) -> usize {
        match self {
            Curve::P256 => P256_POINT_LEN,
            Curve::P384 => P384_POINT_LEN,
        }
    }

    /// `CKA_EC_PARAMS` of a key on this curve: the DER of its OID (`namedCurve`).
    pub(super) fn ec_params(self) -> Result<Vec<u8>, HsmError> {
        self.oid()
            .to_der()
            .map_err(|_| HsmError::InvalidArgument("curve OID cannot be DER-encoded"))
    }

    /// Whether `CKA_EC_PARAMS` read from the token names this curve.
    pub(super) fn is_named_by(self, ec_params: &[u8]) -> bool {
        ObjectIdentifier::from_der(ec_params).is_ok_and(|oid| oid == self.oid())
    }

    /// The DER `SubjectPublicKeyInfo` of an uncompressed point on this curve:
    /// `SEQUENCE { SEQUENCE { id-ecPublicKey, namedCurve }, BIT STRING point }`.
    pub(super) fn spki_der(self, point: &[u8]) -> Result<Vec<u8>, HsmError> {
        const WRONG: HsmError = HsmError::Token("EC public key cannot be DER-encoded");
        if !is_uncompressed_point(point, self.point_len()) {
            return Err(WRONG);
        }
        let curve = self.oid();
        let spki = SubjectPublicKeyInfoRef {
            algorithm: AlgorithmIdentifierRef {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(AnyRef::from(&curve)),
            },
            subject_public_key: BitStringRef::from_bytes(point).map_err(|_| WRONG)?,
        };
        spki.to_der().map_err(|_| WRONG)
    }
}

fn is_uncompressed_point(point: &[u8], len: usize) -> bool {
    matches!(point, [0x04, ..]) && point.len() == len
}

/// The uncompressed point from `CKA_EC_POINT`: a DER OCTET STRING around the point
/// (PKCS#11 2.40), or the bare point as some modules return it.
pub(super) fn unwrap_ec_point(value: &[u8], len: usize) -> Result<&[u8], HsmError> {
    if let Ok(octets) = <&OctetStringRef>::from_der(value)
        && is_uncompressed_point(octets.as_bytes(), len)
    {
        return Ok(octets.as_bytes());
    }
    if is_uncompressed_point(value, len) {
        return Ok(value);
    }
    Err(HsmError::Token(
        "CKA_EC_POINT is not an uncompressed point of the key's curve",
    ))
}

/// DER `SubjectPublicKeyInfo` (rsaEncryption, NULL parameters) of an RSA public key.
pub(super) fn rsa_spki_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, HsmError> {
    let public = rsa::RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(|_| HsmError::Token("not a usable RSA public key"))?;
    let der = public
        .to_public_key_der()
        .map_err(|_| HsmError::Token("RSA public key cannot be DER-encoded"))?;
    Ok(der.into_vec())
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 5480), the BIT STRING content
/// of an `ecdsa-with-SHA384` signature.
#[derive(Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Raw ECDSA P-384 output `r || s` (48 bytes each, as `CKM_ECDSA` returns it) as DER
/// `Ecdsa-Sig-Value` with minimal positive integers. A zero component or a wrong length is
/// refused.
pub(super) fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>, HsmError> {
    if raw.len() != 2 * P384_SCALAR_LEN {
        return Err(HsmError::Token("ECDSA signature of the wrong length"));
    }
    let (r, s) = raw.split_at(P384_SCALAR_LEN);
    if [r, s].iter().any(|v| v.iter().all(|b| *b == 0)) {
        return Err(HsmError::Token("ECDSA signature with a zero component"));
    }
    const WRONG: HsmError = HsmError::Token("ECDSA signature cannot be DER-encoded");
    EcdsaSigValue {
        r: UintRef::new(r).map_err(|_| WRONG)?,
        s: UintRef::new(s).map_err(|_| WRONG)?,
    }
    .to_der()
    .map_err(|_| WRONG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw `r || s` inputs and the DER the hand-written encoder (before the `der` crate)
    /// produced for them, recorded from that code: top bit set (a 0x00 is prepended), leading
    /// zeros (removed down to the minimal encoding), both at once, an ordinary signature, and a
    /// one-byte r with the top bit set.
    const ECDSA_VECTORS: [(&str, &str); 5] = [
        (
            "8080808080808080808080808080808080808080808080808080808080808080808080808080808080808080\
             8080808001010101010101010101010101010101010101010101010101010101010101010101010101010101\
             0101010101010101",
            "3065023100808080808080808080808080808080808080808080808080808080808080808080808080808080\
             8080808080808080800230010101010101010101010101010101010101010101010101010101010101010101\
             010101010101010101010101010101",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             00000005007f0000000000000000000000000000000000000000000000000000000000000000000000000000\
             0000000000000001",
            "3034020105022f7f000000000000000000000000000000000000000000000000000000000000000000000000\
             00000000000000000001",
        ),
        (
            "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffff",
            "3065023000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffff023100ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffffffffffffffffff",
        ),
        (
            "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c\
             2d2e2f30b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7\
             d8d9dadbdcdddedf",
            "306502300102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728\
             292a2b2c2d2e2f30023100b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0\
             d1d2d3d4d5d6d7d8d9dadbdcdddedf",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000\
             0000008000008000000000000000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000",
            "303502020080022f008000000000000000000000000000000000000000000000000000000000000000000000\
             0000000000000000000000",
        ),
    ];

    #[test]
    fn ecdsa_signature_der_is_unchanged() {
        for (raw, der) in ECDSA_VECTORS {
            let raw = hex::decode(raw).unwrap();
            assert_eq!(raw.len(), 96);
            assert_eq!(hex::encode(ecdsa_raw_to_der(&raw).unwrap()), der);
            // And it is what a DER parser reads back as the same two integers.
            let der = hex::decode(der).unwrap();
            let decoded = EcdsaSigValue::from_der(&der).unwrap();
            let strip = |v: &[u8]| {
                v.iter()
                    .skip_while(|b| **b == 0)
                    .copied()
                    .collect::<Vec<_>>()
            };
            assert_eq!(decoded.r.as_bytes(), strip(&raw[..48]));
            assert_eq!(decoded.s.as_bytes(), strip(&raw[48..]));
        }
    }

    #[test]
    fn ecdsa_signature_der_refuses_bad_input() {
        // r = 0, s = 0, or a wrong length.
        let mut zero_r = vec![0u8; 96];
        zero_r[95] = 1;
        assert!(ecdsa_raw_to_der(&zero_r).is_err());
        let mut zero_s = vec![0u8; 96];
        zero_s[0] = 1;
        assert!(ecdsa_raw_to_der(&zero_s).is_err());
        assert!(ecdsa_raw_to_der(&[1u8; 64]).is_err());
        assert!(ecdsa_raw_to_der(&[1u8; 97]).is_err());
    }

    /// The `CKA_EC_PARAMS` and the `SubjectPublicKeyInfo` prefixes the hand-written constants
    /// held before the `der` crate built them.
    const PRIME256V1_PARAMS: &str = "06082a8648ce3d030107";
    const SECP384R1_PARAMS: &str = "06052b81040022";
    const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    const P384_SPKI_PREFIX: &str = "3076301006072a8648ce3d020106052b81040022036200";

    #[test]
    fn curve_encodings_are_unchanged() {
        assert_eq!(
            hex::encode(Curve::P256.ec_params().unwrap()),
            PRIME256V1_PARAMS
        );
        assert_eq!(
            hex::encode(Curve::P384.ec_params().unwrap()),
            SECP384R1_PARAMS
        );
        assert!(Curve::P256.is_named_by(&hex::decode(PRIME256V1_PARAMS).unwrap()));
        assert!(!Curve::P256.is_named_by(&hex::decode(SECP384R1_PARAMS).unwrap()));
        assert!(Curve::P384.is_named_by(&hex::decode(SECP384R1_PARAMS).unwrap()));
        assert!(!Curve::P384.is_named_by(b"\x06\x05\x2b\x81\x04\x00"));
        assert!(!Curve::P384.is_named_by(&[]));

        for (curve, prefix, byte) in [
            (Curve::P256, P256_SPKI_PREFIX, 0x11u8),
            (Curve::P384, P384_SPKI_PREFIX, 0x22u8),
        ] {
            let mut point = vec![0x04];
            point.resize(curve.point_len(), byte);
            let spki = curve.spki_der(&point).unwrap();
            assert_eq!(
                hex::encode(&spki),
                format!("{prefix}{}", hex::encode(&point))
            );
            // A compressed or short point is refused.
            assert!(curve.spki_der(&point[1..]).is_err());
            point[0] = 0x02;
            assert!(curve.spki_der(&point).is_err());
        }
    }

    #[test]
    fn ec_points() {
        let mut point = vec![0x04u8];
        point.extend_from_slice(&[0xab; 96]);
        let mut wrapped = vec![0x04, 97];
        wrapped.extend_from_slice(&point);
        assert_eq!(
            unwrap_ec_point(&wrapped, P384_POINT_LEN).unwrap(),
            point.as_slice()
        );
        assert_eq!(
            unwrap_ec_point(&point, P384_POINT_LEN).unwrap(),
            point.as_slice()
        );
        // A bare point whose first coordinate byte looks like an OCTET STRING length.
        let mut bare = vec![0x04, 95];
        bare.extend_from_slice(&[0xcd; 95]);
        assert_eq!(unwrap_ec_point(&bare, P384_POINT_LEN).unwrap(), &bare[..]);
        let mut compressed = vec![0x04, 49, 0x02];
        compressed.extend_from_slice(&[0xab; 48]);
        assert!(unwrap_ec_point(&compressed, P384_POINT_LEN).is_err());
        assert!(unwrap_ec_point(&wrapped, P256_POINT_LEN).is_err());
        assert!(unwrap_ec_point(&[], P384_POINT_LEN).is_err());
    }
}

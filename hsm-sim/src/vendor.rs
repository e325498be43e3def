//! Tandem's vendor-defined PKCS#11 values.
//!
//! A *share* is one additive share `d1''` of an RSA private exponent modulo the device's
//! modulus `n1`: a big integer below `φ(n1)`, not an RSA key (no primes, no CRT). It lives
//! in the token as a `CKO_SECRET_KEY` of key type [`CKK_TANDEM_SHARE`] whose `CKA_VALUE` is
//! the big-endian share and whose `CKA_MODULUS` is `n1` (big-endian). It can only be
//! created by `C_UnwrapKey` (or `C_CreateObject`), is always sensitive and never
//! extractable, cannot be wrapped, and is used only by [`CKM_TANDEM_SHARE_EXP`]:
//! `C_Sign(x) = x^d mod n`, left-padded to the modulus length.

use cryptoki_sys::{CK_KEY_TYPE, CK_MECHANISM_TYPE, CKK_VENDOR_DEFINED, CKM_VENDOR_DEFINED};

/// Key type of a split-key exponent share (`CKK_VENDOR_DEFINED | 0x5444_0001`; "TD").
pub const CKK_TANDEM_SHARE: CK_KEY_TYPE = CKK_VENDOR_DEFINED | 0x5444_0001;

/// Mechanism: constant-time `x^d mod n` with a [`CKK_TANDEM_SHARE`] key, through
/// `C_SignInit`/`C_Sign` (`CKM_VENDOR_DEFINED | 0x5444_0001`). No parameters.
pub const CKM_TANDEM_SHARE_EXP: CK_MECHANISM_TYPE = CKM_VENDOR_DEFINED | 0x5444_0001;

/// Smallest modulus of a share, in bits.
pub const SHARE_MIN_BITS: usize = 1024;
/// Largest modulus of a share, in bits.
pub const SHARE_MAX_BITS: usize = 8192;

//! A mechanism as the core sees it: the type and its parameters, already copied out of
//! the caller's memory by the FFI layer.

use cryptoki_sys::*;

use crate::error::{Result, ck};

/// `CK_GCM_PARAMS`, copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmParams {
    /// The IV (nonce).
    pub iv: Vec<u8>,
    /// Additional authenticated data.
    pub aad: Vec<u8>,
    /// Tag length in bits.
    pub tag_bits: CK_ULONG,
}

/// `CK_RSA_PKCS_OAEP_PARAMS`, copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaepParams {
    /// `hashAlg` (`CKM_SHA_1`, ...).
    pub hash: CK_MECHANISM_TYPE,
    /// `mgf` (`CKG_MGF1_SHA1`, ...).
    pub mgf: CK_RSA_PKCS_MGF_TYPE,
    /// `source` (`CKZ_DATA_SPECIFIED` or 0).
    pub source: CK_RSA_PKCS_OAEP_SOURCE_TYPE,
    /// The label (`pSourceData`).
    pub label: Vec<u8>,
}

/// `CK_ECDH1_DERIVE_PARAMS`, copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdhParams {
    /// `kdf` (only `CKD_NULL` is supported, as in SoftHSM).
    pub kdf: CK_EC_KDF_TYPE,
    /// `pSharedData` (must be empty with `CKD_NULL`).
    pub shared_data: Vec<u8>,
    /// The other party's public point (raw or DER OCTET STRING).
    pub public_data: Vec<u8>,
}

/// Mechanism parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    /// Parameter bytes of a mechanism without a structured parameter (usually empty).
    Raw(Vec<u8>),
    /// `CKM_AES_GCM`.
    Gcm(GcmParams),
    /// `CKM_RSA_PKCS_OAEP`.
    Oaep(OaepParams),
    /// `CKM_ECDH1_DERIVE`.
    Ecdh(EcdhParams),
}

/// A mechanism with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mechanism {
    /// `CKM_*`.
    pub kind: CK_MECHANISM_TYPE,
    /// Its parameters.
    pub params: Params,
}

impl Mechanism {
    /// A mechanism without parameters.
    pub fn plain(kind: CK_MECHANISM_TYPE) -> Self {
        Self {
            kind,
            params: Params::Raw(Vec::new()),
        }
    }

    /// Fails with `CKR_MECHANISM_PARAM_INVALID` unless there are no parameters.
    pub fn no_params(&self) -> Result<()> {
        match &self.params {
            Params::Raw(p) if p.is_empty() => Ok(()),
            _ => ck(CKR_MECHANISM_PARAM_INVALID),
        }
    }

    /// The OAEP parameters (`CKM_RSA_PKCS_OAEP` needs them). Which hashes are supported
    /// is decided by the crypto layer.
    pub fn oaep(&self) -> Result<&OaepParams> {
        match &self.params {
            Params::Oaep(p) => Ok(p),
            _ => ck(CKR_MECHANISM_PARAM_INVALID),
        }
    }
}

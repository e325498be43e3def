//! Sessions and the operations active in them.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::crypto::SignMech;
use crate::mechanism::OaepParams;

/// One open session.
#[derive(Debug)]
pub struct Session {
    /// `CKF_RW_SESSION` was requested.
    pub rw: bool,
    /// An active `C_FindObjects*` search.
    pub find: Option<Find>,
    /// An active `C_Sign*` operation.
    pub sign: Option<KeyOp>,
    /// An active `C_Verify*` operation.
    pub verify: Option<KeyOp>,
    /// An active `C_Encrypt*` operation.
    pub encrypt: Option<CipherOp>,
    /// An active `C_Decrypt*` operation.
    pub decrypt: Option<CipherOp>,
}

impl Session {
    /// A fresh session with nothing active.
    pub fn new(rw: bool) -> Self {
        Self {
            rw,
            find: None,
            sign: None,
            verify: None,
            encrypt: None,
            decrypt: None,
        }
    }
}

/// The result set of a search, handed out in pieces.
#[derive(Debug)]
pub struct Find {
    /// Matching handles, fixed at `C_FindObjectsInit`.
    pub handles: Vec<CK_OBJECT_HANDLE>,
    /// How many have been returned.
    pub pos: usize,
}

/// A signature or verification with a key; `C_*Update` collects the data in `pending`.
#[derive(Clone)]
pub struct KeyOp {
    /// The mechanism chosen at init.
    pub mech: SignMech,
    /// The key chosen at init.
    pub key: CK_OBJECT_HANDLE,
    /// Data collected by `C_SignUpdate` / `C_VerifyUpdate` (may be a secret's encoding).
    pub pending: Zeroizing<Vec<u8>>,
    /// `C_*Update` was called: only `C_*Final` may end the operation.
    pub multipart: bool,
}

impl std::fmt::Debug for KeyOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOp")
            .field("mech", &self.mech)
            .field("key", &self.key)
            .field(
                "pending",
                &format_args!("<{} bytes redacted>", self.pending.len()),
            )
            .field("multipart", &self.multipart)
            .finish()
    }
}

/// The cipher of an encryption or decryption operation.
#[derive(Debug, Clone)]
pub enum Cipher {
    /// `CKM_AES_GCM` with its parameters.
    AesGcm {
        /// IV.
        iv: Vec<u8>,
        /// Additional authenticated data.
        aad: Vec<u8>,
        /// Tag length in bytes.
        tag_len: usize,
    },
    /// `CKM_RSA_PKCS_OAEP` with its parameters.
    RsaOaep(OaepParams),
}

/// A single-part encryption or decryption with a key.
#[derive(Debug, Clone)]
pub struct CipherOp {
    /// The cipher chosen at init.
    pub cipher: Cipher,
    /// The key chosen at init.
    pub key: CK_OBJECT_HANDLE,
}

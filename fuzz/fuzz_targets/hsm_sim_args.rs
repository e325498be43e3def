//! hsm-sim's argument blocks through its real C entry points: attribute templates
//! (`ffi::template` → `object::validate_template` / `object::build` / `Object::modify`) and
//! mechanism parameters (`ffi::mechanism`: raw, `CK_GCM_PARAMS`, `CK_RSA_PKCS_OAEP_PARAMS`,
//! `CK_ECDH1_DERIVE_PARAMS`) copied from the caller, then used by the object and crypto
//! layers (create, copy, set and get attributes, find, generate, derive, wrap, unwrap,
//! encrypt, decrypt, sign, verify) against real keys. The input is a program of calls whose
//! every pointer and length keeps the PKCS#11 caller contract (a length never exceeds its
//! buffer), so anything that goes wrong is the module's fault.
//!
//! Properties, checked after every call: no caught panic (`CKR_GENERAL_ERROR`); nothing
//! written past a stated output length; a failed `C_CreateObject` / `C_CopyObject` /
//! `C_SetAttributeValue` changes nothing (object count, attribute values). After every
//! input: the sensitive, non-extractable key made at start is still unreadable and its
//! flags are unchanged. Objects are session objects (`CKA_TOKEN` is forced false, so the
//! token directory does not grow) and are destroyed after each input.

#![no_main]
// Calling a C ABI needs `unsafe`; every pointer handed over is NULL or a live buffer at
// least as long as the length passed with it.
#![allow(unsafe_code, clippy::missing_safety_doc)]

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::OnceLock;

use cryptoki_sys::*;
use libfuzzer_sys::fuzz_target;
use tandem_hsm_sim::ffi::C_GetFunctionList;
use tandem_hsm_sim::vendor::{CKK_TANDEM_SHARE, CKM_TANDEM_SHARE_EXP};

const USER_PIN: &[u8] = b"fuzz-user-pin";
const CANARY: u8 = 0xA5;
const SLACK: usize = 16;
/// DER OID of P-256 (`CKA_EC_PARAMS`).
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Attribute types a template draws from (every type the module knows, plus unknown ones).
const ATTRS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_KEY_TYPE,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_LOCAL,
    CKA_DERIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_MODULUS_BITS,
    CKA_VALUE_LEN,
    CKA_KEY_GEN_MECHANISM,
    CKA_ALLOWED_MECHANISMS,
    CKA_LABEL,
    CKA_ID,
    CKA_APPLICATION,
    CKA_OBJECT_ID,
    CKA_SUBJECT,
    CKA_VALUE,
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_PUBLIC_KEY_INFO,
    CKA_VENDOR_DEFINED,
    0x7777,
];

/// `CK_ULONG` values worth trying for class, key type, lengths and mechanisms.
const ULONGS: &[CK_ULONG] = &[
    CKO_DATA,
    CKO_SECRET_KEY,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_CERTIFICATE,
    CKK_AES,
    CKK_RSA,
    CKK_EC,
    CKK_GENERIC_SECRET,
    CKK_TANDEM_SHARE,
    0,
    1,
    16,
    24,
    32,
    64,
    1024,
    2048,
    CK_ULONG::MAX,
];

struct Env {
    f: &'static CK_FUNCTION_LIST,
    mechanisms: Vec<CK_MECHANISM_TYPE>,
    /// Kept open: holds the login and the fixed keys.
    keeper: CK_SESSION_HANDLE,
    guarded: CK_OBJECT_HANDLE,
    /// Keys the calls can use: guarded AES, extractable AES, RSA public/private,
    /// EC public/private.
    keys: Vec<CK_OBJECT_HANDLE>,
}

// SAFETY: the function table is static and the module is thread-safe; libFuzzer runs the
// target on one thread.
unsafe impl Sync for Env {}
unsafe impl Send for Env {}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tandem-fuzz-hsm-sim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("token dir");
        // SAFETY: set before the module reads it, while only this thread runs.
        unsafe { std::env::set_var("TANDEM_HSM_SIM_DIR", &dir) };
        let mut p: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: `p` is a live local; the module hands out its static table.
        let f: &'static CK_FUNCTION_LIST = unsafe {
            assert_eq!(C_GetFunctionList(&mut p), CKR_OK);
            &*p
        };
        // SAFETY: every pointer is a live local buffer of the length passed.
        unsafe {
            assert_eq!(f.C_Initialize.unwrap()(null_mut()), CKR_OK);
            let so = b"fuzz-so-pin";
            let mut label = [b' '; 32];
            label[..4].copy_from_slice(b"fuzz");
            assert_eq!(
                f.C_InitToken.unwrap()(
                    0,
                    so.as_ptr() as *mut u8,
                    so.len() as CK_ULONG,
                    label.as_mut_ptr()
                ),
                CKR_OK
            );
            let h = open(f);
            assert_eq!(
                f.C_Login.unwrap()(h, CKU_SO, so.as_ptr() as *mut u8, so.len() as CK_ULONG),
                CKR_OK
            );
            assert_eq!(
                f.C_InitPIN.unwrap()(h, USER_PIN.as_ptr() as *mut u8, USER_PIN.len() as CK_ULONG),
                CKR_OK
            );
            assert_eq!(f.C_Logout.unwrap()(h), CKR_OK);
            assert_eq!(f.C_CloseSession.unwrap()(h), CKR_OK);
            let keeper = open(f);
            assert_eq!(
                f.C_Login.unwrap()(
                    keeper,
                    CKU_USER,
                    USER_PIN.as_ptr() as *mut u8,
                    USER_PIN.len() as CK_ULONG
                ),
                CKR_OK
            );
            let mut n: CK_ULONG = 0;
            assert_eq!(f.C_GetMechanismList.unwrap()(0, null_mut(), &mut n), CKR_OK);
            let mut mechanisms = vec![0; n as usize];
            assert_eq!(
                f.C_GetMechanismList.unwrap()(0, mechanisms.as_mut_ptr(), &mut n),
                CKR_OK
            );
            mechanisms.truncate(n as usize);
            mechanisms.push(CKM_TANDEM_SHARE_EXP);
            mechanisms.push(0x7777);
            let (guarded, keys) = fixed_keys(f, keeper);
            Env {
                f,
                mechanisms,
                keeper,
                guarded,
                keys,
            }
        }
    })
}

/// Opens a R/W session.
unsafe fn open(f: &CK_FUNCTION_LIST) -> CK_SESSION_HANDLE {
    let mut h = 0;
    // SAFETY: live local.
    let rv = unsafe {
        f.C_OpenSession.unwrap()(
            0,
            CKF_SERIAL_SESSION | CKF_RW_SESSION,
            null_mut(),
            None,
            &mut h,
        )
    };
    assert_eq!(rv, CKR_OK, "open a session");
    h
}

fn attr(type_: CK_ATTRIBUTE_TYPE, v: &[u8]) -> CK_ATTRIBUTE {
    CK_ATTRIBUTE {
        type_,
        pValue: v.as_ptr() as *mut c_void,
        ulValueLen: v.len() as CK_ULONG,
    }
}

fn mech(m: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: m,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

/// The guarded key and the working keys (session objects of the keeper session).
unsafe fn fixed_keys(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
) -> (CK_OBJECT_HANDLE, Vec<CK_OBJECT_HANDLE>) {
    let (t, fl) = ([CK_TRUE], [CK_FALSE]);
    let len = 32 as CK_ULONG;
    let len = len.to_ne_bytes();
    let bits = (1024 as CK_ULONG).to_ne_bytes();
    let mut keys = Vec::new();
    for extractable in [&fl, &t] {
        let mut tpl = [
            attr(CKA_VALUE_LEN, &len),
            attr(CKA_SENSITIVE, &t),
            attr(CKA_EXTRACTABLE, extractable),
            attr(CKA_ENCRYPT, &t),
            attr(CKA_DECRYPT, &t),
            attr(CKA_WRAP, &t),
            attr(CKA_UNWRAP, &t),
            attr(CKA_DERIVE, &t),
        ];
        let mut k = 0;
        // SAFETY: live locals.
        let rv = unsafe {
            f.C_GenerateKey.unwrap()(
                h,
                &mut mech(CKM_AES_KEY_GEN),
                tpl.as_mut_ptr(),
                tpl.len() as CK_ULONG,
                &mut k,
            )
        };
        assert_eq!(rv, CKR_OK, "AES key");
        keys.push(k);
    }
    let exponent = [1u8, 0, 1];
    for (m, mut public) in [
        (
            CKM_RSA_PKCS_KEY_PAIR_GEN,
            vec![
                attr(CKA_MODULUS_BITS, &bits),
                attr(CKA_PUBLIC_EXPONENT, &exponent),
            ],
        ),
        (CKM_EC_KEY_PAIR_GEN, vec![attr(CKA_EC_PARAMS, P256)]),
    ] {
        public.extend([
            attr(CKA_VERIFY, &t),
            attr(CKA_ENCRYPT, &t),
            attr(CKA_WRAP, &t),
        ]);
        let mut private = vec![
            attr(CKA_SIGN, &t),
            attr(CKA_DECRYPT, &t),
            attr(CKA_UNWRAP, &t),
            attr(CKA_DERIVE, &t),
            attr(CKA_SENSITIVE, &t),
        ];
        let (mut pu, mut pr) = (0, 0);
        // SAFETY: live locals.
        let rv = unsafe {
            f.C_GenerateKeyPair.unwrap()(
                h,
                &mut mech(m),
                public.as_mut_ptr(),
                public.len() as CK_ULONG,
                private.as_mut_ptr(),
                private.len() as CK_ULONG,
                &mut pu,
                &mut pr,
            )
        };
        assert_eq!(rv, CKR_OK, "key pair {m:#x}");
        keys.extend([pu, pr]);
    }
    (keys[0], keys)
}

/// Reads the fuzz input.
struct R<'a>(&'a [u8]);

impl R<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a.to_vec()
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.u8()) % from.len()]
    }
    fn ulong(&mut self) -> CK_ULONG {
        let b = self.bytes(8);
        let mut a = [0u8; 8];
        a[..b.len()].copy_from_slice(&b);
        CK_ULONG::from_ne_bytes(a)
    }
    fn len(&mut self) -> usize {
        match self.u8() {
            x @ 0..=199 => usize::from(x % 48),
            x => [0, 1, 8, 12, 16, 32, 65, 128, 256, 512, 1024][usize::from(x - 200) % 11],
        }
    }
}

/// A template: attribute values owned here; `CK_ATTRIBUTE`s point into them.
struct Template {
    values: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
}

impl Template {
    fn read(r: &mut R<'_>) -> Self {
        let n = usize::from(r.u8() % 9);
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            let t = r.pick(ATTRS);
            let v = match r.u8() % 5 {
                0 => vec![r.u8() % 2],
                1 | 2 => r.pick(ULONGS).to_ne_bytes().to_vec(),
                3 => r.ulong().to_ne_bytes().to_vec(),
                _ => {
                    let n = r.len();
                    r.bytes(n)
                }
            };
            // Session objects only: the token directory must not grow.
            let v = if t == CKA_TOKEN && v.len() == 1 {
                vec![CK_FALSE]
            } else {
                v
            };
            values.push((t, v));
        }
        Self { values }
    }
    fn attrs(&self) -> Vec<CK_ATTRIBUTE> {
        self.values.iter().map(|(t, v)| attr(*t, v)).collect()
    }
}

/// A mechanism with its parameter block: the block is raw bytes or one of the structures,
/// whose buffers live in `bufs`; `len` is the stated parameter length, never more than the
/// block's size.
struct Mech {
    kind: CK_MECHANISM_TYPE,
    block: Vec<u8>,
    len: usize,
    _bufs: Vec<Vec<u8>>,
}

impl Mech {
    fn read(r: &mut R<'_>, e: &Env) -> Self {
        let kind = r.pick(&e.mechanisms);
        let mut bufs = Vec::new();
        let mut buf = |r: &mut R<'_>| -> (*mut c_void, CK_ULONG) {
            let n = r.len();
            let b = r.bytes(n);
            let len = b.len() as CK_ULONG;
            let ptr = if b.is_empty() && r.u8() % 2 == 0 {
                null_mut()
            } else {
                b.as_ptr() as *mut c_void
            };
            bufs.push(b);
            (ptr, len)
        };
        // The parameter's type follows the mechanism, as the caller contract demands (a
        // pointer-holding structure of another type would hand the module wild pointers).
        let shape = match kind {
            _ if r.u8() % 8 == 0 => 0,
            CKM_AES_GCM => 2,
            CKM_RSA_PKCS_OAEP => 3,
            CKM_ECDH1_DERIVE => 4,
            _ => 1,
        };
        let block: Vec<u8> = match shape {
            0 => Vec::new(),
            1 => {
                let n = r.len();
                r.bytes(n)
            }
            2 => {
                let (iv, iv_len) = buf(r);
                let (aad, aad_len) = buf(r);
                let p = CK_GCM_PARAMS {
                    pIv: iv as *mut u8,
                    ulIvLen: iv_len,
                    ulIvBits: iv_len * 8,
                    pAAD: aad as *mut u8,
                    ulAADLen: aad_len,
                    ulTagBits: CK_ULONG::from(r.pick(&[128u8, 96, 120, 0, 8, 255])),
                };
                as_bytes(&p)
            }
            3 => {
                let (label, label_len) = buf(r);
                let p = CK_RSA_PKCS_OAEP_PARAMS {
                    hashAlg: r.pick(&[CKM_SHA_1, CKM_SHA256, CKM_SHA384, CKM_SHA512, 0]),
                    mgf: r.pick(&[
                        CKG_MGF1_SHA1,
                        CKG_MGF1_SHA256,
                        CKG_MGF1_SHA384,
                        CKG_MGF1_SHA512,
                        0,
                    ]),
                    source: r.pick(&[CKZ_DATA_SPECIFIED, 0]),
                    pSourceData: label,
                    ulSourceDataLen: label_len,
                };
                as_bytes(&p)
            }
            _ => {
                // 4
                let (shared, shared_len) = buf(r);
                let (public, public_len) = buf(r);
                let p = CK_ECDH1_DERIVE_PARAMS {
                    kdf: r.pick(&[CKD_NULL, CKD_SHA256_KDF, 0]),
                    ulSharedDataLen: shared_len,
                    pSharedData: shared as *mut u8,
                    ulPublicDataLen: public_len,
                    pPublicData: public as *mut u8,
                };
                as_bytes(&p)
            }
        };
        // Usually the block's size; sometimes shorter (never longer than the buffer).
        let len = if r.u8() % 8 == 0 {
            block.len().saturating_sub(usize::from(r.u8()))
        } else {
            block.len()
        };
        Self {
            kind,
            block,
            len,
            _bufs: bufs,
        }
    }
    fn raw(&mut self) -> CK_MECHANISM {
        CK_MECHANISM {
            mechanism: self.kind,
            pParameter: if self.block.is_empty() {
                null_mut()
            } else {
                self.block.as_mut_ptr() as *mut c_void
            },
            ulParameterLen: self.len as CK_ULONG,
        }
    }
}

fn as_bytes<T>(v: &T) -> Vec<u8> {
    // SAFETY: reading the bytes of a plain C struct that lives for this call. The block
    // keeps the struct's alignment because the module copies it with `read` only after
    // checking alignment (a misaligned block is refused, which is fine too).
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
        .to_vec()
}

/// An output buffer followed by canary bytes.
struct Out {
    buf: Vec<u8>,
    cap: usize,
    len: CK_ULONG,
}

impl Out {
    fn new(r: &mut R<'_>) -> Self {
        let cap = r.pick(&[0usize, 1, 16, 32, 64, 128, 255, 256, 512, 1100]);
        Self {
            buf: vec![CANARY; cap + SLACK],
            cap,
            len: cap as CK_ULONG,
        }
    }
    fn check(&self, what: &str, rv: CK_RV) {
        assert!(
            self.buf[self.cap..].iter().all(|&b| b == CANARY),
            "{what}: wrote past {} bytes",
            self.cap
        );
        // With a NULL buffer (capacity 0) an OK call is a length query.
        if rv == CKR_OK && self.cap > 0 {
            assert!(
                self.len as usize <= self.cap,
                "{what}: reported {} bytes in a {}-byte buffer",
                self.len,
                self.cap
            );
        }
    }
}

fn ok(what: &str, rv: CK_RV) -> CK_RV {
    assert_ne!(
        rv, CKR_GENERAL_ERROR,
        "{what}: the module panicked or failed internally"
    );
    rv
}

/// Every object the session can see.
unsafe fn count(f: &CK_FUNCTION_LIST, h: CK_SESSION_HANDLE) -> usize {
    // SAFETY: live locals.
    unsafe {
        assert_eq!(f.C_FindObjectsInit.unwrap()(h, null_mut(), 0), CKR_OK);
        let mut out = [0; 64];
        let mut total = 0;
        loop {
            let mut n = 0;
            assert_eq!(
                f.C_FindObjects.unwrap()(h, out.as_mut_ptr(), 64, &mut n),
                CKR_OK
            );
            if n == 0 {
                break;
            }
            total += n as usize;
        }
        assert_eq!(f.C_FindObjectsFinal.unwrap()(h), CKR_OK);
        total
    }
}

/// The readable attribute values of an object (for "a refused change changes nothing").
unsafe fn snapshot(
    f: &CK_FUNCTION_LIST,
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
) -> Vec<(CK_ATTRIBUTE_TYPE, Option<Vec<u8>>)> {
    ATTRS
        .iter()
        .map(|&t| {
            let mut buf = vec![0u8; 2048];
            let mut a = CK_ATTRIBUTE {
                type_: t,
                pValue: buf.as_mut_ptr() as *mut c_void,
                ulValueLen: buf.len() as CK_ULONG,
            };
            // SAFETY: live locals.
            let rv = unsafe { f.C_GetAttributeValue.unwrap()(h, o, &mut a, 1) };
            (
                t,
                (rv == CKR_OK).then(|| buf[..a.ulValueLen as usize].to_vec()),
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let f = e.f;
    let mut r = R(data);
    // SAFETY: the session is ours; every pointer below is a live local sized as stated.
    unsafe {
        let h = open(f);
        let mut made: Vec<CK_OBJECT_HANDLE> = Vec::new();
        for _ in 0..8 {
            if r.0.is_empty() {
                break;
            }
            let op = r.u8() % 11;
            let mut objects = e.keys.clone();
            objects.extend(&made);
            objects.push(r.ulong() % 4096);
            let key = r.pick(&objects);
            match op {
                0 => {
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let before = count(f, h);
                    let mut o = 0;
                    let rv = ok(
                        "C_CreateObject",
                        f.C_CreateObject.unwrap()(h, a.as_mut_ptr(), a.len() as CK_ULONG, &mut o),
                    );
                    if rv == CKR_OK {
                        made.push(o);
                    } else {
                        assert_eq!(
                            count(f, h),
                            before,
                            "a refused C_CreateObject ({rv:#x}) left an object"
                        );
                    }
                }
                1 => {
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let before = count(f, h);
                    let mut o = 0;
                    let rv = ok(
                        "C_CopyObject",
                        f.C_CopyObject.unwrap()(
                            h,
                            key,
                            a.as_mut_ptr(),
                            a.len() as CK_ULONG,
                            &mut o,
                        ),
                    );
                    if rv == CKR_OK {
                        made.push(o);
                    } else {
                        assert_eq!(
                            count(f, h),
                            before,
                            "a refused C_CopyObject ({rv:#x}) left an object"
                        );
                    }
                }
                2 => {
                    // Only objects of this input and the guarded key, so that the working
                    // keys stay the same from one input to the next.
                    let key = *made.last().unwrap_or(&e.guarded);
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let before = snapshot(f, h, key);
                    let rv = ok(
                        "C_SetAttributeValue",
                        f.C_SetAttributeValue.unwrap()(h, key, a.as_mut_ptr(), a.len() as CK_ULONG),
                    );
                    if rv != CKR_OK {
                        assert!(
                            snapshot(f, h, key) == before,
                            "a refused C_SetAttributeValue ({rv:#x}) changed the object"
                        );
                    }
                }
                3 => {
                    let n = usize::from(r.u8() % 6);
                    let mut outs: Vec<Out> = (0..n).map(|_| Out::new(&mut r)).collect();
                    let mut a: Vec<CK_ATTRIBUTE> = outs
                        .iter_mut()
                        .map(|o| CK_ATTRIBUTE {
                            type_: ATTRS[usize::from(o.cap as u8) % ATTRS.len()],
                            pValue: if o.cap == 0 {
                                null_mut()
                            } else {
                                o.buf.as_mut_ptr() as *mut c_void
                            },
                            ulValueLen: o.cap as CK_ULONG,
                        })
                        .collect();
                    for (i, at) in a.iter_mut().enumerate() {
                        at.type_ = ATTRS[(usize::from(r.u8()) + i) % ATTRS.len()];
                    }
                    let rv = ok(
                        "C_GetAttributeValue",
                        f.C_GetAttributeValue.unwrap()(h, key, a.as_mut_ptr(), a.len() as CK_ULONG),
                    );
                    for (o, at) in outs.iter_mut().zip(&a) {
                        o.len = if at.ulValueLen == CK_ULONG::MAX {
                            0
                        } else {
                            at.ulValueLen
                        };
                        if o.cap > 0 {
                            o.check("C_GetAttributeValue", rv);
                        }
                    }
                }
                4 => {
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let rv = ok(
                        "C_FindObjectsInit",
                        f.C_FindObjectsInit.unwrap()(h, a.as_mut_ptr(), a.len() as CK_ULONG),
                    );
                    if rv == CKR_OK {
                        let mut out = [0; 8];
                        let mut n = 0;
                        ok(
                            "C_FindObjects",
                            f.C_FindObjects.unwrap()(h, out.as_mut_ptr(), 8, &mut n),
                        );
                        assert!(n <= 8);
                        ok("C_FindObjectsFinal", f.C_FindObjectsFinal.unwrap()(h));
                    }
                }
                5 | 6 => {
                    let mut m = Mech::read(&mut r, e);
                    let mut raw = m.raw();
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let mut o = 0;
                    let rv = if op == 5 {
                        ok(
                            "C_GenerateKey",
                            f.C_GenerateKey.unwrap()(
                                h,
                                &mut raw,
                                a.as_mut_ptr(),
                                a.len() as CK_ULONG,
                                &mut o,
                            ),
                        )
                    } else {
                        ok(
                            "C_DeriveKey",
                            f.C_DeriveKey.unwrap()(
                                h,
                                &mut raw,
                                key,
                                a.as_mut_ptr(),
                                a.len() as CK_ULONG,
                                &mut o,
                            ),
                        )
                    };
                    if rv == CKR_OK {
                        made.push(o);
                    }
                }
                7 => {
                    let mut m = Mech::read(&mut r, e);
                    let mut raw = m.raw();
                    let n = r.len();
                    let wrapped = r.bytes(n);
                    let t = Template::read(&mut r);
                    let mut a = t.attrs();
                    let mut o = 0;
                    let rv = ok(
                        "C_UnwrapKey",
                        f.C_UnwrapKey.unwrap()(
                            h,
                            &mut raw,
                            key,
                            wrapped.as_ptr() as *mut u8,
                            wrapped.len() as CK_ULONG,
                            a.as_mut_ptr(),
                            a.len() as CK_ULONG,
                            &mut o,
                        ),
                    );
                    if rv == CKR_OK {
                        made.push(o);
                    }
                }
                8 => {
                    let mut m = Mech::read(&mut r, e);
                    let mut raw = m.raw();
                    let target = r.pick(&objects);
                    let mut out = Out::new(&mut r);
                    let p = if out.cap == 0 {
                        null_mut()
                    } else {
                        out.buf.as_mut_ptr()
                    };
                    let rv = ok(
                        "C_WrapKey",
                        f.C_WrapKey.unwrap()(h, &mut raw, key, target, p, &mut out.len),
                    );
                    out.check("C_WrapKey", rv);
                    if target == e.guarded && rv == CKR_OK && !p.is_null() {
                        panic!("the non-extractable guarded key was wrapped");
                    }
                }
                _ => {
                    // 9: encrypt, decrypt, sign or verify, one part.
                    let which = r.u8() % 4;
                    let mut m = Mech::read(&mut r, e);
                    let mut raw = m.raw();
                    let n = r.len();
                    let input = r.bytes(n);
                    let mut out = Out::new(&mut r);
                    let p = if out.cap == 0 {
                        null_mut()
                    } else {
                        out.buf.as_mut_ptr()
                    };
                    let (d, dl) = (input.as_ptr() as *mut u8, input.len() as CK_ULONG);
                    let (name, rv) = match which {
                        0 => ("C_EncryptInit", f.C_EncryptInit.unwrap()(h, &mut raw, key)),
                        1 => ("C_DecryptInit", f.C_DecryptInit.unwrap()(h, &mut raw, key)),
                        2 => ("C_SignInit", f.C_SignInit.unwrap()(h, &mut raw, key)),
                        _ => ("C_VerifyInit", f.C_VerifyInit.unwrap()(h, &mut raw, key)),
                    };
                    if ok(name, rv) == CKR_OK {
                        let (name, rv) = match which {
                            0 => ("C_Encrypt", f.C_Encrypt.unwrap()(h, d, dl, p, &mut out.len)),
                            1 => ("C_Decrypt", f.C_Decrypt.unwrap()(h, d, dl, p, &mut out.len)),
                            2 => ("C_Sign", f.C_Sign.unwrap()(h, d, dl, p, &mut out.len)),
                            _ => {
                                let sig = out.buf[..out.cap].to_vec();
                                (
                                    "C_Verify",
                                    f.C_Verify.unwrap()(
                                        h,
                                        d,
                                        dl,
                                        sig.as_ptr() as *mut u8,
                                        sig.len() as CK_ULONG,
                                    ),
                                )
                            }
                        };
                        ok(name, rv);
                        out.check(name, rv);
                    }
                }
            }
        }
        // The guarded key: still sensitive, still not extractable, still unreadable.
        let mut buf = [0u8; 64];
        let mut a = attr(CKA_VALUE, &buf);
        a.pValue = buf.as_mut_ptr() as *mut c_void;
        assert_eq!(
            f.C_GetAttributeValue.unwrap()(e.keeper, e.guarded, &mut a, 1),
            CKR_ATTRIBUTE_SENSITIVE
        );
        for (t, want) in [(CKA_SENSITIVE, CK_TRUE), (CKA_EXTRACTABLE, CK_FALSE)] {
            let mut v = [0xffu8];
            let mut a = CK_ATTRIBUTE {
                type_: t,
                pValue: v.as_mut_ptr() as *mut c_void,
                ulValueLen: 1,
            };
            assert_eq!(
                f.C_GetAttributeValue.unwrap()(e.keeper, e.guarded, &mut a, 1),
                CKR_OK
            );
            assert_eq!(v[0], want, "the guarded key's flag {t:#x} changed");
        }
        for o in made {
            f.C_DestroyObject.unwrap()(h, o);
        }
        assert_eq!(f.C_CloseSession.unwrap()(h), CKR_OK);
    }
});

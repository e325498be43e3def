//! The C boundary: `C_GetFunctionList` and the PKCS#11 v2.40 function table.
//!
//! This is the only module that may use `unsafe`. Every entry point
//! - catches panics and reports them as `CKR_GENERAL_ERROR` (unwinding into C is undefined),
//! - checks every pointer for NULL (`CKR_ARGUMENTS_BAD`) and alignment before using it,
//! - turns raw buffers into slices and templates, then calls the safe core in `module.rs`,
//! - follows the PKCS#11 buffer protocol for output (NULL buffer: report the length;
//!   short buffer: `CKR_BUFFER_TOO_SMALL` with the length set).
//!
//! What the caller promises (PKCS#11 §5): a non-NULL pointer points to memory valid for the
//! stated length (and writable where the function writes), and it is not being changed by
//! another thread during the call. Each `SAFETY:` comment below relies on this contract
//! plus the checks made right before it.
#![allow(unsafe_code)]
#![allow(non_snake_case)]

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::mechanism::{EcdhParams, GcmParams, Mechanism, OaepParams, Params};
use crate::module::{self, Output};
use crate::object::{AttributeRead, CK_UNAVAILABLE_INFORMATION, Template};

type Rv<T> = Result<T, CK_RV>;

/// Largest attribute value copied out of a template (1 MiB; the biggest real value, an
/// 8192-bit modulus or a certificate, is far smaller).
const MAX_ATTRIBUTE_LEN: usize = 1 << 20;
/// Largest number of attributes in one template.
const MAX_TEMPLATE_LEN: usize = 1024;
/// Largest mechanism parameter block and parameter buffer (IV, AAD, OAEP label): 64 KiB.
const MAX_PARAMETER_LEN: usize = 1 << 16;

/// Runs an entry point body: panics become `CKR_GENERAL_ERROR`.
fn guard(f: impl FnOnce() -> Rv<()>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(rv)) => rv,
        Err(_) => CKR_GENERAL_ERROR,
    }
}

/// Runs the body of entry point `name` under [`guard`], after fault injection
/// ([`crate::fault`], off unless `TANDEM_HSM_SIM_FAULTS` is set): added latency (slept
/// before the module lock is taken), a simulated removed token (sessions are dropped; the
/// call fails unless it is a library or slot function), an injected return value.
///
/// An injected failure of a call that would end an active operation (`C_Sign`,
/// `C_Decrypt`, ...) ends it too, as a real failure would, so the caller can start over.
fn entry(
    name: &'static str,
    session: Option<CK_SESSION_HANDLE>,
    f: impl FnOnce() -> Rv<()>,
) -> CK_RV {
    guard(|| {
        let action = crate::fault::before(name);
        if !action.latency.is_zero() {
            std::thread::sleep(action.latency);
        }
        if action.removed {
            module::token_removed();
            if let Some(rv) = crate::fault::removed_rv(name) {
                return Err(rv);
            }
        }
        if let Some(rv) = action.fail {
            if let Some(h) = session {
                module::end_operation(h, name);
            }
            return Err(rv);
        }
        f()
    })
}

/// Maps a core error to its return value.
fn core<T>(r: crate::error::Result<T>) -> Rv<T> {
    r.map_err(|e| e.rv())
}

/// Runs `f` on the initialised module.
fn with<T>(f: impl FnOnce(&mut module::Module) -> crate::error::Result<T>) -> Rv<T> {
    core(module::with(f))
}

fn to_ulong(n: usize) -> Rv<CK_ULONG> {
    CK_ULONG::try_from(n).map_err(|_| CKR_GENERAL_ERROR)
}

fn to_usize(n: CK_ULONG) -> Rv<usize> {
    usize::try_from(n).map_err(|_| CKR_ARGUMENTS_BAD)
}

/// Borrows `count` elements at `ptr`; `count == 0` needs no pointer.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `count` elements for `'a`.
unsafe fn slice<'a, T>(ptr: *const T, count: CK_ULONG) -> Rv<&'a [T]> {
    if count == 0 {
        return Ok(&[]);
    }
    let count = to_usize(count)?;
    if ptr.is_null() || !ptr.is_aligned() || count > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL, aligned, size fits isize; validity for `count` elements is the
    // caller's PKCS#11 contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Mutably borrows `count` elements at `ptr`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads and writes of `count` elements for `'a`,
/// and not aliased during the call.
unsafe fn slice_mut<'a, T>(ptr: *mut T, count: CK_ULONG) -> Rv<&'a mut [T]> {
    if count == 0 {
        return Ok(&mut []);
    }
    let count = to_usize(count)?;
    if ptr.is_null() || !ptr.is_aligned() || count > isize::MAX as usize / size_of::<T>().max(1) {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: as in `slice`, plus writability and exclusivity from the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, count) })
}

/// Reads one value at `ptr`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of one `T`.
unsafe fn read<T: Copy>(ptr: *const T) -> Rv<T> {
    if ptr.is_null() || !ptr.is_aligned() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and aligned; validity is the caller's contract; `T: Copy`.
    Ok(unsafe { ptr.read() })
}

/// Writes one value to `ptr`.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of one `T`.
unsafe fn write<T: Copy>(ptr: *mut T, value: T) -> Rv<()> {
    if ptr.is_null() || !ptr.is_aligned() {
        return Err(CKR_ARGUMENTS_BAD);
    }
    // SAFETY: non-NULL and aligned; writability is the caller's contract; `T: Copy` so
    // nothing is dropped.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Copies a byte buffer (PIN, data) into zeroizing memory.
///
/// # Safety
/// As [`slice`].
unsafe fn secret_bytes(ptr: *const u8, len: CK_ULONG) -> Rv<Zeroizing<Vec<u8>>> {
    // SAFETY: forwarded contract.
    Ok(Zeroizing::new(unsafe { slice(ptr, len) }?.to_vec()))
}

/// Reads a template: each attribute's value is copied.
///
/// # Safety
/// `ptr` valid for `count` attributes, each `pValue` valid for `ulValueLen` bytes.
unsafe fn template(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Rv<Template> {
    if to_usize(count)? > MAX_TEMPLATE_LEN {
        return Err(CKR_TEMPLATE_INCONSISTENT);
    }
    // SAFETY: forwarded contract.
    let attrs = unsafe { slice(ptr, count) }?;
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs {
        // Before anything is read: an absurd length is refused, not allocated.
        if to_usize(a.ulValueLen).map_or(true, |n| n > MAX_ATTRIBUTE_LEN) {
            return Err(CKR_ATTRIBUTE_VALUE_INVALID);
        }
        // SAFETY: forwarded contract for each attribute's value buffer.
        let value = unsafe { secret_bytes(a.pValue as *const u8, a.ulValueLen) }?;
        out.push((a.type_, value));
    }
    Ok(out)
}

/// Reads a mechanism: its type and parameters, copied out of the caller's memory.
///
/// # Safety
/// `ptr` valid for one `CK_MECHANISM`, whose parameter is valid for `ulParameterLen` bytes
/// and, for the structured parameters, points to that structure with its own buffers valid.
unsafe fn mechanism(ptr: *const CK_MECHANISM) -> Rv<Mechanism> {
    // SAFETY: forwarded contract.
    let m = unsafe { read(ptr) }?;
    // Lengths are checked before any buffer is read or copied.
    let bounded = |len: CK_ULONG| -> Rv<CK_ULONG> {
        if to_usize(len)? > MAX_PARAMETER_LEN {
            Err(CKR_MECHANISM_PARAM_INVALID)
        } else {
            Ok(len)
        }
    };
    bounded(m.ulParameterLen)?;
    let structured = |size: usize| -> Rv<()> {
        if m.pParameter.is_null() || to_usize(m.ulParameterLen)? != size {
            Err(CKR_MECHANISM_PARAM_INVALID)
        } else {
            Ok(())
        }
    };
    let params = match m.mechanism {
        CKM_AES_GCM => {
            structured(size_of::<CK_GCM_PARAMS>())?;
            // SAFETY: non-NULL and of the structure's size (checked); caller's contract.
            let g = unsafe { read(m.pParameter as *const CK_GCM_PARAMS) }?;
            Params::Gcm(GcmParams {
                // SAFETY: forwarded contract for the IV and AAD buffers.
                iv: unsafe { slice(g.pIv as *const u8, bounded(g.ulIvLen)?) }?.to_vec(),
                // SAFETY: as above.
                aad: unsafe { slice(g.pAAD as *const u8, bounded(g.ulAADLen)?) }?.to_vec(),
                tag_bits: g.ulTagBits,
            })
        }
        CKM_RSA_PKCS_OAEP => {
            structured(size_of::<CK_RSA_PKCS_OAEP_PARAMS>())?;
            // SAFETY: non-NULL and of the structure's size (checked); caller's contract.
            let o = unsafe { read(m.pParameter as *const CK_RSA_PKCS_OAEP_PARAMS) }?;
            Params::Oaep(OaepParams {
                hash: o.hashAlg,
                mgf: o.mgf,
                source: o.source,
                // SAFETY: forwarded contract for the label buffer.
                label: unsafe { slice(o.pSourceData as *const u8, bounded(o.ulSourceDataLen)?) }?
                    .to_vec(),
            })
        }
        CKM_ECDH1_DERIVE => {
            structured(size_of::<CK_ECDH1_DERIVE_PARAMS>())?;
            // SAFETY: non-NULL and of the structure's size (checked); caller's contract.
            let e = unsafe { read(m.pParameter as *const CK_ECDH1_DERIVE_PARAMS) }?;
            Params::Ecdh(EcdhParams {
                kdf: e.kdf,
                // SAFETY: forwarded contract for the shared-data buffer.
                shared_data: unsafe {
                    slice(e.pSharedData as *const u8, bounded(e.ulSharedDataLen)?)
                }?
                .to_vec(),
                // SAFETY: forwarded contract for the public-data buffer.
                public_data: unsafe {
                    slice(e.pPublicData as *const u8, bounded(e.ulPublicDataLen)?)
                }?
                .to_vec(),
            })
        }
        // SAFETY: forwarded contract.
        _ => Params::Raw(unsafe { slice(m.pParameter as *const u8, m.ulParameterLen) }?.to_vec()),
    };
    Ok(Mechanism {
        kind: m.mechanism,
        params,
    })
}

/// Hands out a list (slots, mechanisms) under the buffer protocol.
///
/// # Safety
/// `count` valid for read/write; a non-NULL `out` valid for `*count` elements.
unsafe fn list_out<T: Copy>(out: *mut T, count: *mut CK_ULONG, items: &[T]) -> Rv<()> {
    // SAFETY: forwarded contract.
    let capacity = unsafe { read(count) }?;
    // SAFETY: forwarded contract.
    unsafe { write(count, to_ulong(items.len())?) }?;
    if out.is_null() {
        return Ok(());
    }
    if to_usize(capacity)? < items.len() {
        return Err(CKR_BUFFER_TOO_SMALL);
    }
    // SAFETY: forwarded contract; `items.len() <= capacity`.
    unsafe { slice_mut(out, to_ulong(items.len())?) }?.copy_from_slice(items);
    Ok(())
}

/// The output capacity the caller offers: `None` for a length query.
///
/// # Safety
/// `len` valid for reads.
unsafe fn capacity(out: *const u8, len: *const CK_ULONG) -> Rv<Option<usize>> {
    // SAFETY: forwarded contract.
    let cap = unsafe { read(len) }?;
    Ok(if out.is_null() {
        None
    } else {
        Some(to_usize(cap)?)
    })
}

/// Writes an [`Output`] under the buffer protocol. `cap` is what [`capacity`] read: data
/// is written only to a non-NULL buffer it fits (checked here, not trusted to the core).
///
/// # Safety
/// `len` valid for writes; a non-NULL `out` valid for `cap` bytes.
unsafe fn bytes_out(
    out: *mut u8,
    len: *mut CK_ULONG,
    cap: Option<usize>,
    result: Output,
) -> Rv<()> {
    match result {
        Output::Len(n, too_small) => {
            // SAFETY: forwarded contract.
            unsafe { write(len, to_ulong(n)?) }?;
            if too_small {
                Err(CKR_BUFFER_TOO_SMALL)
            } else {
                Ok(())
            }
        }
        Output::Data(data) => {
            if out.is_null() || cap.is_none_or(|cap| data.len() > cap) {
                // A core bug; never write past the caller's buffer.
                return Err(CKR_GENERAL_ERROR);
            }
            // SAFETY: non-NULL, and `data.len()` is within the capacity the caller stated
            // (checked just above); validity for that capacity is the caller's contract.
            unsafe { slice_mut(out, to_ulong(data.len())?) }?.copy_from_slice(&data);
            // SAFETY: forwarded contract.
            unsafe { write(len, to_ulong(data.len())?) }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The function table.

macro_rules! unsupported {
    ($rv:expr; $($name:ident ( $($arg:ty),* );)*) => {
        $(
            /// Not supported by this token (faults still apply).
            unsafe extern "C" fn $name($(_: $arg),*) -> CK_RV {
                entry(stringify!($name), None, || Err($rv))
            }
        )*
    };
}

unsupported! { CKR_FUNCTION_NOT_SUPPORTED;
    C_GetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SetOperationState(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, CK_OBJECT_HANDLE, CK_OBJECT_HANDLE);
    C_CopyObject(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ATTRIBUTE, CK_ULONG, *mut CK_OBJECT_HANDLE);
    C_GetObjectSize(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, *mut CK_ULONG);
    C_EncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_EncryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestInit(CK_SESSION_HANDLE, *mut CK_MECHANISM);
    C_Digest(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
    C_DigestKey(CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
    C_DigestFinal(CK_SESSION_HANDLE, *mut CK_BYTE, *mut CK_ULONG);
    C_SignRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_SignRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_VerifyRecoverInit(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE);
    C_VerifyRecover(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DigestEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptDigestUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_SignEncryptUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_DecryptVerifyUpdate(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG, *mut CK_BYTE, *mut CK_ULONG);
    C_WaitForSlotEvent(CK_FLAGS, *mut CK_SLOT_ID, *mut c_void);
}

unsupported! { CKR_RANDOM_SEED_NOT_SUPPORTED;
    C_SeedRandom(CK_SESSION_HANDLE, *mut CK_BYTE, CK_ULONG);
}

unsupported! { CKR_FUNCTION_NOT_PARALLEL;
    C_GetFunctionStatus(CK_SESSION_HANDLE);
    C_CancelFunction(CK_SESSION_HANDLE);
}

static FUNCTION_LIST: CK_FUNCTION_LIST = CK_FUNCTION_LIST {
    version: CK_VERSION {
        major: 2,
        minor: 40,
    },
    C_Initialize: Some(C_Initialize),
    C_Finalize: Some(C_Finalize),
    C_GetInfo: Some(C_GetInfo),
    C_GetFunctionList: Some(C_GetFunctionList),
    C_GetSlotList: Some(C_GetSlotList),
    C_GetSlotInfo: Some(C_GetSlotInfo),
    C_GetTokenInfo: Some(C_GetTokenInfo),
    C_GetMechanismList: Some(C_GetMechanismList),
    C_GetMechanismInfo: Some(C_GetMechanismInfo),
    C_InitToken: Some(C_InitToken),
    C_InitPIN: Some(C_InitPIN),
    C_SetPIN: Some(C_SetPIN),
    C_OpenSession: Some(C_OpenSession),
    C_CloseSession: Some(C_CloseSession),
    C_CloseAllSessions: Some(C_CloseAllSessions),
    C_GetSessionInfo: Some(C_GetSessionInfo),
    C_GetOperationState: Some(C_GetOperationState),
    C_SetOperationState: Some(C_SetOperationState),
    C_Login: Some(C_Login),
    C_Logout: Some(C_Logout),
    C_CreateObject: Some(C_CreateObject),
    C_CopyObject: Some(C_CopyObject),
    C_DestroyObject: Some(C_DestroyObject),
    C_GetObjectSize: Some(C_GetObjectSize),
    C_GetAttributeValue: Some(C_GetAttributeValue),
    C_SetAttributeValue: Some(C_SetAttributeValue),
    C_FindObjectsInit: Some(C_FindObjectsInit),
    C_FindObjects: Some(C_FindObjects),
    C_FindObjectsFinal: Some(C_FindObjectsFinal),
    C_EncryptInit: Some(C_EncryptInit),
    C_Encrypt: Some(C_Encrypt),
    C_EncryptUpdate: Some(C_EncryptUpdate),
    C_EncryptFinal: Some(C_EncryptFinal),
    C_DecryptInit: Some(C_DecryptInit),
    C_Decrypt: Some(C_Decrypt),
    C_DecryptUpdate: Some(C_DecryptUpdate),
    C_DecryptFinal: Some(C_DecryptFinal),
    C_DigestInit: Some(C_DigestInit),
    C_Digest: Some(C_Digest),
    C_DigestUpdate: Some(C_DigestUpdate),
    C_DigestKey: Some(C_DigestKey),
    C_DigestFinal: Some(C_DigestFinal),
    C_SignInit: Some(C_SignInit),
    C_Sign: Some(C_Sign),
    C_SignUpdate: Some(C_SignUpdate),
    C_SignFinal: Some(C_SignFinal),
    C_SignRecoverInit: Some(C_SignRecoverInit),
    C_SignRecover: Some(C_SignRecover),
    C_VerifyInit: Some(C_VerifyInit),
    C_Verify: Some(C_Verify),
    C_VerifyUpdate: Some(C_VerifyUpdate),
    C_VerifyFinal: Some(C_VerifyFinal),
    C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
    C_VerifyRecover: Some(C_VerifyRecover),
    C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
    C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
    C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
    C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
    C_GenerateKey: Some(C_GenerateKey),
    C_GenerateKeyPair: Some(C_GenerateKeyPair),
    C_WrapKey: Some(C_WrapKey),
    C_UnwrapKey: Some(C_UnwrapKey),
    C_DeriveKey: Some(C_DeriveKey),
    C_SeedRandom: Some(C_SeedRandom),
    C_GenerateRandom: Some(C_GenerateRandom),
    C_GetFunctionStatus: Some(C_GetFunctionStatus),
    C_CancelFunction: Some(C_CancelFunction),
    C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
};

/// The module's only exported symbol: hands out the function table (usable before
/// `C_Initialize`).
///
/// # Safety
/// `ppFunctionList` must be NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    // Not subject to faults: it hands out a static table, before `C_Initialize`.
    guard(|| {
        // The table is never written through this pointer (PKCS#11 treats it as read-only);
        // the `*mut` is only what the C signature demands.
        let table = &raw const FUNCTION_LIST as *mut CK_FUNCTION_LIST;
        // SAFETY: `write` checks NULL and alignment; validity is the caller's contract.
        unsafe { write(ppFunctionList, table) }
    })
}

unsafe extern "C" fn C_Initialize(pInitArgs: *mut c_void) -> CK_RV {
    entry("C_Initialize", None, || {
        if !pInitArgs.is_null() {
            // SAFETY: a non-NULL argument points to a CK_C_INITIALIZE_ARGS (PKCS#11 §5.4).
            let args = unsafe { read(pInitArgs as *const CK_C_INITIALIZE_ARGS) }?;
            if !args.pReserved.is_null() {
                return Err(CKR_ARGUMENTS_BAD);
            }
            let given = [
                args.CreateMutex.is_some(),
                args.DestroyMutex.is_some(),
                args.LockMutex.is_some(),
                args.UnlockMutex.is_some(),
            ];
            if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
                return Err(CKR_ARGUMENTS_BAD);
            }
            // We lock with the OS (std::sync::Mutex) and cannot use the caller's mutexes.
            if given[0] && args.flags & CKF_OS_LOCKING_OK == 0 {
                return Err(CKR_CANT_LOCK);
            }
        }
        core(module::initialize())
    })
}

unsafe extern "C" fn C_Finalize(pReserved: *mut c_void) -> CK_RV {
    entry("C_Finalize", None, || {
        if !pReserved.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        core(module::finalize())
    })
}

unsafe extern "C" fn C_GetInfo(pInfo: *mut CK_INFO) -> CK_RV {
    entry("C_GetInfo", None, || {
        let info = with(|m| Ok(m.info()))?;
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pInfo, info) }
    })
}

unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: *mut CK_SLOT_ID,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetSlotList", None, || {
        let slots = with(|m| Ok(m.slot_list(tokenPresent != CK_FALSE)))?;
        // SAFETY: checked by `list_out`; caller's contract.
        unsafe { list_out(pSlotList, pulCount, &slots) }
    })
}

unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_SLOT_INFO) -> CK_RV {
    entry("C_GetSlotInfo", None, || {
        let info = with(|m| m.slot_info(slotID))?;
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pInfo, info) }
    })
}

unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: *mut CK_TOKEN_INFO) -> CK_RV {
    entry("C_GetTokenInfo", None, || {
        let info = with(|m| m.token_info(slotID))?;
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pInfo, info) }
    })
}

unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: *mut CK_MECHANISM_TYPE,
    pulCount: *mut CK_ULONG,
) -> CK_RV {
    entry("C_GetMechanismList", None, || {
        let list = with(|m| m.mechanism_list(slotID))?;
        // SAFETY: checked by `list_out`; caller's contract.
        unsafe { list_out(pMechanismList, pulCount, &list) }
    })
}

unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    type_: CK_MECHANISM_TYPE,
    pInfo: *mut CK_MECHANISM_INFO,
) -> CK_RV {
    entry("C_GetMechanismInfo", None, || {
        let info = with(|m| m.mechanism_info(slotID, type_))?;
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pInfo, info) }
    })
}

unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
    pLabel: *mut CK_UTF8CHAR,
) -> CK_RV {
    entry("C_InitToken", None, || {
        // SAFETY: checked by the helpers; the label is 32 bytes (PKCS#11 §5.6).
        let pin = unsafe { secret_bytes(pPin, ulPinLen) }?;
        // SAFETY: as above.
        let label = unsafe { read(pLabel as *const [u8; 32]) }?;
        with(|m| m.init_token(slotID, pin, label))
    })
}

unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    entry("C_InitPIN", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let pin = unsafe { secret_bytes(pPin, ulPinLen) }?;
        with(|m| m.init_pin(hSession, pin))
    })
}

unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: *mut CK_UTF8CHAR,
    ulOldLen: CK_ULONG,
    pNewPin: *mut CK_UTF8CHAR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    entry("C_SetPIN", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let old = unsafe { secret_bytes(pOldPin, ulOldLen) }?;
        // SAFETY: as above.
        let new = unsafe { secret_bytes(pNewPin, ulNewLen) }?;
        with(|m| m.set_pin(hSession, old, new))
    })
}

unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    _pApplication: *mut c_void,
    _Notify: CK_NOTIFY,
    phSession: *mut CK_SESSION_HANDLE,
) -> CK_RV {
    entry("C_OpenSession", None, || {
        if phSession.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let h = with(|m| m.open_session(slotID, flags))?;
        // SAFETY: checked by `write`; caller's contract.
        let written = unsafe { write(phSession, h) };
        if written.is_err() {
            // Misaligned output pointer: do not leak the session.
            let _ = with(|m| m.close_session(h));
        }
        written
    })
}

unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_CloseSession", Some(hSession), || {
        with(|m| m.close_session(hSession))
    })
}

unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    entry("C_CloseAllSessions", None, || {
        with(|m| m.close_all_sessions(slotID))
    })
}

unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: *mut CK_SESSION_INFO,
) -> CK_RV {
    entry("C_GetSessionInfo", Some(hSession), || {
        let info = with(|m| m.session_info(hSession))?;
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pInfo, info) }
    })
}

unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: *mut CK_UTF8CHAR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    entry("C_Login", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let pin = unsafe { secret_bytes(pPin, ulPinLen) }?;
        with(|m| m.login(hSession, userType, pin))
    })
}

unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_Logout", Some(hSession), || with(|m| m.logout(hSession)))
}

unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phObject: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_CreateObject", Some(hSession), || {
        if phObject.is_null() || !phObject.is_aligned() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helper; caller's contract.
        let tpl = unsafe { template(pTemplate, ulCount) }?;
        let h = with(|m| m.create_object(hSession, tpl))?;
        // SAFETY: checked above and by `write`; caller's contract.
        unsafe { write(phObject, h) }
    })
}

unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DestroyObject", Some(hSession), || {
        with(|m| m.destroy_object(hSession, hObject))
    })
}

unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_GetAttributeValue", Some(hSession), || {
        if ulCount == 0 {
            return with(|m| m.get_attributes(hSession, hObject, &[]).map(|_| ()));
        }
        // SAFETY: checked by the helper; the template is the caller's, writable (§5.7).
        let attrs = unsafe { slice_mut(pTemplate, ulCount) }?;
        let types: Vec<CK_ATTRIBUTE_TYPE> = attrs.iter().map(|a| a.type_).collect();
        let reads = with(|m| m.get_attributes(hSession, hObject, &types))?;
        let mut rv = CKR_OK;
        for (attr, read) in attrs.iter_mut().zip(reads) {
            match read {
                AttributeRead::Invalid => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_TYPE_INVALID;
                }
                AttributeRead::Sensitive => {
                    attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    rv = CKR_ATTRIBUTE_SENSITIVE;
                }
                AttributeRead::Value(v) => {
                    if attr.pValue.is_null() {
                        attr.ulValueLen = to_ulong(v.len())?;
                    } else if to_usize(attr.ulValueLen)? < v.len() {
                        attr.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                        rv = CKR_BUFFER_TOO_SMALL;
                    } else {
                        // SAFETY: non-NULL `pValue` with room for `ulValueLen >= v.len()`
                        // bytes by the caller's contract.
                        unsafe { slice_mut(attr.pValue as *mut u8, to_ulong(v.len())?) }?
                            .copy_from_slice(&v);
                        attr.ulValueLen = to_ulong(v.len())?;
                    }
                }
            }
        }
        if rv == CKR_OK { Ok(()) } else { Err(rv) }
    })
}

unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_SetAttributeValue", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let tpl = unsafe { template(pTemplate, ulCount) }?;
        with(|m| m.set_attributes(hSession, hObject, tpl))
    })
}

unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
) -> CK_RV {
    entry("C_FindObjectsInit", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let tpl = unsafe { template(pTemplate, ulCount) }?;
        with(|m| m.find_init(hSession, tpl))
    })
}

unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: *mut CK_OBJECT_HANDLE,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: *mut CK_ULONG,
) -> CK_RV {
    entry("C_FindObjects", Some(hSession), || {
        if pulObjectCount.is_null() || (phObject.is_null() && ulMaxObjectCount > 0) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helper; caller's contract (room for `ulMaxObjectCount`).
        let out = unsafe { slice_mut(phObject, ulMaxObjectCount) }?;
        let found = with(|m| m.find(hSession, out.len()))?;
        out[..found.len()].copy_from_slice(&found);
        // SAFETY: checked by `write`; caller's contract.
        unsafe { write(pulObjectCount, to_ulong(found.len())?) }
    })
}

unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    entry("C_FindObjectsFinal", Some(hSession), || {
        with(|m| m.find_final(hSession))
    })
}

unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_SignInit", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        with(|m| m.sign_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Sign", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: as above.
        let cap = unsafe { capacity(pSignature, pulSignatureLen) }?;
        // The signature is computed with the module unlocked.
        let out = core(with(|m| m.sign(hSession, data, cap))?.run())?;
        // SAFETY: as above; `bytes_out` checks the data against the capacity read before.
        unsafe { bytes_out(pSignature, pulSignatureLen, cap, out) }
    })
}

unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_VerifyInit", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        with(|m| m.verify_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_Verify", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: as above.
        let signature = unsafe { slice(pSignature, ulSignatureLen) }?;
        with(|m| m.verify(hSession, data, signature))
    })
}

unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pPublicKeyTemplate: *mut CK_ATTRIBUTE,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: *mut CK_ATTRIBUTE,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: *mut CK_OBJECT_HANDLE,
    phPrivateKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_GenerateKeyPair", Some(hSession), || {
        if phPublicKey.is_null()
            || phPrivateKey.is_null()
            || !phPublicKey.is_aligned()
            || !phPrivateKey.is_aligned()
        {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helpers; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: as above.
        let public = unsafe { template(pPublicKeyTemplate, ulPublicKeyAttributeCount) }?;
        // SAFETY: as above.
        let private = unsafe { template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount) }?;
        // Generated with the module unlocked, then added.
        let pair = core(with(|m| m.generate_key_pair(hSession, &mech, public, private))?.run())?;
        let (ph, sh) = with(|m| m.add_key_pair(hSession, pair))?;
        // SAFETY: checked above and by `write`; caller's contract.
        unsafe { write(phPublicKey, ph) }?;
        // SAFETY: as above.
        unsafe { write(phPrivateKey, sh) }
    })
}

unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: *mut CK_BYTE,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    entry("C_GenerateRandom", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract (room for `ulRandomLen` bytes).
        let out = unsafe { slice_mut(RandomData, ulRandomLen) }?;
        with(|m| m.generate_random(hSession, out))
    })
}

unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    pTemplate: *mut CK_ATTRIBUTE,
    ulCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_GenerateKey", Some(hSession), || {
        if phKey.is_null() || !phKey.is_aligned() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helpers; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: as above.
        let tpl = unsafe { template(pTemplate, ulCount) }?;
        let key = with(|m| m.generate_key(hSession, &mech, tpl))?;
        // SAFETY: checked above and by `write`; caller's contract.
        unsafe { write(phKey, key) }
    })
}

unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_EncryptInit", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        with(|m| m.encrypt_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: *mut CK_BYTE,
    ulDataLen: CK_ULONG,
    pEncryptedData: *mut CK_BYTE,
    pulEncryptedDataLen: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Encrypt", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let data = unsafe { slice(pData, ulDataLen) }?;
        // SAFETY: as above.
        let cap = unsafe { capacity(pEncryptedData, pulEncryptedDataLen) }?;
        let out = with(|m| m.encrypt(hSession, data, cap))?;
        // SAFETY: as above; `bytes_out` checks the data against the capacity read before.
        unsafe { bytes_out(pEncryptedData, pulEncryptedDataLen, cap, out) }
    })
}

unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DecryptInit", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        with(|m| m.decrypt_init(hSession, &mech, hKey))
    })
}

unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: *mut CK_BYTE,
    ulEncryptedDataLen: CK_ULONG,
    pData: *mut CK_BYTE,
    pulDataLen: *mut CK_ULONG,
) -> CK_RV {
    entry("C_Decrypt", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let data = unsafe { slice(pEncryptedData, ulEncryptedDataLen) }?;
        // SAFETY: as above.
        let cap = unsafe { capacity(pData, pulDataLen) }?;
        let out = core(with(|m| m.decrypt(hSession, data, cap))?.run())?;
        // SAFETY: as above; `bytes_out` checks the data against the capacity read before.
        unsafe { bytes_out(pData, pulDataLen, cap, out) }
    })
}

unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    pulWrappedKeyLen: *mut CK_ULONG,
) -> CK_RV {
    entry("C_WrapKey", Some(hSession), || {
        // SAFETY: checked by the helpers; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: as above.
        let cap = unsafe { capacity(pWrappedKey, pulWrappedKeyLen) }?;
        let out = with(|m| m.wrap_key(hSession, &mech, hWrappingKey, hKey, cap))?;
        // SAFETY: as above; `bytes_out` checks the data against the capacity read before.
        unsafe { bytes_out(pWrappedKey, pulWrappedKeyLen, cap, out) }
    })
}

unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_DeriveKey", Some(hSession), || {
        if phKey.is_null() || !phKey.is_aligned() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helpers; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: as above.
        let tpl = unsafe { template(pTemplate, ulAttributeCount) }?;
        // Computed with the module unlocked, then added.
        let obj = core(with(|m| m.derive_key(hSession, &mech, hBaseKey, tpl))?.run())?;
        let key = with(|m| m.add_unwrapped(hSession, obj))?;
        // SAFETY: checked above and by `write`; caller's contract.
        unsafe { write(phKey, key) }
    })
}

unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: *mut CK_MECHANISM,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: *mut CK_BYTE,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: *mut CK_ATTRIBUTE,
    ulAttributeCount: CK_ULONG,
    phKey: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry("C_UnwrapKey", Some(hSession), || {
        if phKey.is_null() || !phKey.is_aligned() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: checked by the helpers; caller's contract.
        let mech = unsafe { mechanism(pMechanism) }?;
        // SAFETY: as above.
        let wrapped = unsafe { slice(pWrappedKey, ulWrappedKeyLen) }?;
        // SAFETY: as above.
        let tpl = unsafe { template(pTemplate, ulAttributeCount) }?;
        // Decrypted with the module unlocked, then added.
        let obj =
            core(with(|m| m.unwrap_key(hSession, &mech, hUnwrappingKey, wrapped, tpl))?.run())?;
        let key = with(|m| m.add_unwrapped(hSession, obj))?;
        // SAFETY: checked above and by `write`; caller's contract.
        unsafe { write(phKey, key) }
    })
}

unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    entry("C_SignUpdate", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let part = unsafe { slice(pPart, ulPartLen) };
        with(|m| m.sign_update(hSession, part))
    })
}

unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    pulSignatureLen: *mut CK_ULONG,
) -> CK_RV {
    entry("C_SignFinal", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let cap = unsafe { capacity(pSignature, pulSignatureLen) }?;
        let out = core(with(|m| m.sign_final(hSession, cap))?.run())?;
        // SAFETY: as above; `bytes_out` checks the data against the capacity read before.
        unsafe { bytes_out(pSignature, pulSignatureLen, cap, out) }
    })
}

unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: *mut CK_BYTE,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyUpdate", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let part = unsafe { slice(pPart, ulPartLen) };
        with(|m| m.verify_update(hSession, part))
    })
}

unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: *mut CK_BYTE,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    entry("C_VerifyFinal", Some(hSession), || {
        // SAFETY: checked by the helper; caller's contract.
        let signature = unsafe { slice(pSignature, ulSignatureLen) }?;
        with(|m| m.verify_final(hSession, signature))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_panics_into_general_error() {
        assert_eq!(guard(|| panic!("simulated bug")), CKR_GENERAL_ERROR);
        assert_eq!(guard(|| Ok(())), CKR_OK);
        assert_eq!(guard(|| Err(CKR_PIN_INCORRECT)), CKR_PIN_INCORRECT);
    }
}

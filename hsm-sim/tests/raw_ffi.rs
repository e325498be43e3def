//! The C boundary called directly (in-process, through the rlib): the function table,
//! pointer validation, the buffer protocol and return codes that `cryptoki` hides.

#![allow(clippy::unwrap_used)]
// tests may unwrap (workspace rule)
// Calling a C ABI needs `unsafe`; every call passes pointers to live locals of this test.
#![allow(unsafe_code)]

mod common;

use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;
use tandem_hsm_sim::ffi::C_GetFunctionList;

const UNAVAILABLE: CK_ULONG = CK_ULONG::MAX;

fn table() -> &'static CK_FUNCTION_LIST {
    let mut p: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: `p` is a live local.
    assert_eq!(unsafe { C_GetFunctionList(&mut p) }, CKR_OK);
    assert!(!p.is_null());
    // SAFETY: the module returns a pointer to its static table.
    unsafe { &*p }
}

#[test]
fn function_table_is_complete_and_v2_40() {
    let f = table();
    assert_eq!((f.version.major, f.version.minor), (2, 40));
    let slots = [
        ("C_Initialize", f.C_Initialize.is_some()),
        ("C_Finalize", f.C_Finalize.is_some()),
        ("C_GetInfo", f.C_GetInfo.is_some()),
        ("C_GetFunctionList", f.C_GetFunctionList.is_some()),
        ("C_GetSlotList", f.C_GetSlotList.is_some()),
        ("C_GetSlotInfo", f.C_GetSlotInfo.is_some()),
        ("C_GetTokenInfo", f.C_GetTokenInfo.is_some()),
        ("C_GetMechanismList", f.C_GetMechanismList.is_some()),
        ("C_GetMechanismInfo", f.C_GetMechanismInfo.is_some()),
        ("C_InitToken", f.C_InitToken.is_some()),
        ("C_InitPIN", f.C_InitPIN.is_some()),
        ("C_SetPIN", f.C_SetPIN.is_some()),
        ("C_OpenSession", f.C_OpenSession.is_some()),
        ("C_CloseSession", f.C_CloseSession.is_some()),
        ("C_CloseAllSessions", f.C_CloseAllSessions.is_some()),
        ("C_GetSessionInfo", f.C_GetSessionInfo.is_some()),
        ("C_GetOperationState", f.C_GetOperationState.is_some()),
        ("C_SetOperationState", f.C_SetOperationState.is_some()),
        ("C_Login", f.C_Login.is_some()),
        ("C_Logout", f.C_Logout.is_some()),
        ("C_CreateObject", f.C_CreateObject.is_some()),
        ("C_CopyObject", f.C_CopyObject.is_some()),
        ("C_DestroyObject", f.C_DestroyObject.is_some()),
        ("C_GetObjectSize", f.C_GetObjectSize.is_some()),
        ("C_GetAttributeValue", f.C_GetAttributeValue.is_some()),
        ("C_SetAttributeValue", f.C_SetAttributeValue.is_some()),
        ("C_FindObjectsInit", f.C_FindObjectsInit.is_some()),
        ("C_FindObjects", f.C_FindObjects.is_some()),
        ("C_FindObjectsFinal", f.C_FindObjectsFinal.is_some()),
        ("C_EncryptInit", f.C_EncryptInit.is_some()),
        ("C_Encrypt", f.C_Encrypt.is_some()),
        ("C_EncryptUpdate", f.C_EncryptUpdate.is_some()),
        ("C_EncryptFinal", f.C_EncryptFinal.is_some()),
        ("C_DecryptInit", f.C_DecryptInit.is_some()),
        ("C_Decrypt", f.C_Decrypt.is_some()),
        ("C_DecryptUpdate", f.C_DecryptUpdate.is_some()),
        ("C_DecryptFinal", f.C_DecryptFinal.is_some()),
        ("C_DigestInit", f.C_DigestInit.is_some()),
        ("C_Digest", f.C_Digest.is_some()),
        ("C_DigestUpdate", f.C_DigestUpdate.is_some()),
        ("C_DigestKey", f.C_DigestKey.is_some()),
        ("C_DigestFinal", f.C_DigestFinal.is_some()),
        ("C_SignInit", f.C_SignInit.is_some()),
        ("C_Sign", f.C_Sign.is_some()),
        ("C_SignUpdate", f.C_SignUpdate.is_some()),
        ("C_SignFinal", f.C_SignFinal.is_some()),
        ("C_SignRecoverInit", f.C_SignRecoverInit.is_some()),
        ("C_SignRecover", f.C_SignRecover.is_some()),
        ("C_VerifyInit", f.C_VerifyInit.is_some()),
        ("C_Verify", f.C_Verify.is_some()),
        ("C_VerifyUpdate", f.C_VerifyUpdate.is_some()),
        ("C_VerifyFinal", f.C_VerifyFinal.is_some()),
        ("C_VerifyRecoverInit", f.C_VerifyRecoverInit.is_some()),
        ("C_VerifyRecover", f.C_VerifyRecover.is_some()),
        ("C_DigestEncryptUpdate", f.C_DigestEncryptUpdate.is_some()),
        ("C_DecryptDigestUpdate", f.C_DecryptDigestUpdate.is_some()),
        ("C_SignEncryptUpdate", f.C_SignEncryptUpdate.is_some()),
        ("C_DecryptVerifyUpdate", f.C_DecryptVerifyUpdate.is_some()),
        ("C_GenerateKey", f.C_GenerateKey.is_some()),
        ("C_GenerateKeyPair", f.C_GenerateKeyPair.is_some()),
        ("C_WrapKey", f.C_WrapKey.is_some()),
        ("C_UnwrapKey", f.C_UnwrapKey.is_some()),
        ("C_DeriveKey", f.C_DeriveKey.is_some()),
        ("C_SeedRandom", f.C_SeedRandom.is_some()),
        ("C_GenerateRandom", f.C_GenerateRandom.is_some()),
        ("C_GetFunctionStatus", f.C_GetFunctionStatus.is_some()),
        ("C_CancelFunction", f.C_CancelFunction.is_some()),
        ("C_WaitForSlotEvent", f.C_WaitForSlotEvent.is_some()),
    ];
    assert_eq!(slots.len(), 68);
    for (name, present) in slots {
        assert!(present, "{name} is NULL");
    }
    // SAFETY: NULL is what is being tested.
    assert_eq!(unsafe { C_GetFunctionList(null_mut()) }, CKR_ARGUMENTS_BAD);
}

unsafe extern "C" fn create_mutex(m: *mut *mut c_void) -> CK_RV {
    // SAFETY: never called by the module (it refuses caller mutexes); defined for the table.
    unsafe { *m = null_mut() };
    CKR_OK
}
unsafe extern "C" fn mutex_op(_: *mut c_void) -> CK_RV {
    CKR_OK
}

/// Everything that touches the process-global module runs in this one test, in order.
#[test]
fn initialisation_pointers_buffers_and_return_codes() {
    common::isolated("initialisation_pointers_buffers_and_return_codes", || {
        let f = table();
        // SAFETY (whole block): every pointer passed is NULL on purpose or points to a live
        // local of the right type and size.
        unsafe {
            let mut info = CK_INFO::default();
            assert_eq!(
                f.C_GetInfo.unwrap()(&mut info),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );
            assert_eq!(
                f.C_Finalize.unwrap()(null_mut()),
                CKR_CRYPTOKI_NOT_INITIALIZED
            );

            // C_Initialize argument rules.
            let mut args = CK_C_INITIALIZE_ARGS {
                pReserved: &mut info as *mut _ as *mut c_void,
                ..Default::default()
            };
            assert_eq!(
                f.C_Initialize.unwrap()(&mut args as *mut _ as *mut c_void),
                CKR_ARGUMENTS_BAD
            );
            let mut args = CK_C_INITIALIZE_ARGS {
                CreateMutex: Some(create_mutex),
                ..Default::default()
            };
            assert_eq!(
                f.C_Initialize.unwrap()(&mut args as *mut _ as *mut c_void),
                CKR_ARGUMENTS_BAD,
                "only some mutex functions"
            );
            args.DestroyMutex = Some(mutex_op);
            args.LockMutex = Some(mutex_op);
            args.UnlockMutex = Some(mutex_op);
            assert_eq!(
                f.C_Initialize.unwrap()(&mut args as *mut _ as *mut c_void),
                CKR_CANT_LOCK,
                "caller mutexes without CKF_OS_LOCKING_OK"
            );
            args.flags = CKF_OS_LOCKING_OK;
            assert_eq!(
                f.C_Initialize.unwrap()(&mut args as *mut _ as *mut c_void),
                CKR_OK
            );
            assert_eq!(
                f.C_Initialize.unwrap()(null_mut()),
                CKR_CRYPTOKI_ALREADY_INITIALIZED
            );
            assert_eq!(
                f.C_Finalize.unwrap()(&mut info as *mut _ as *mut c_void),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_OK);
            assert_eq!(f.C_Initialize.unwrap()(null_mut()), CKR_OK);

            assert_eq!(f.C_GetInfo.unwrap()(null_mut()), CKR_ARGUMENTS_BAD);
            assert_eq!(f.C_GetInfo.unwrap()(&mut info), CKR_OK);
            assert_eq!(&info.manufacturerID[..7], b"Tandem ");

            // Slot list: length query, short buffer, full buffer, NULL count.
            let mut count: CK_ULONG = 0;
            assert_eq!(
                f.C_GetSlotList.unwrap()(CK_TRUE, null_mut(), &mut count),
                CKR_OK
            );
            assert_eq!(count, 1);
            let mut slots = [99 as CK_SLOT_ID; 2];
            count = 0;
            assert_eq!(
                f.C_GetSlotList.unwrap()(CK_FALSE, slots.as_mut_ptr(), &mut count),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(count, 1);
            count = 2;
            assert_eq!(
                f.C_GetSlotList.unwrap()(CK_FALSE, slots.as_mut_ptr(), &mut count),
                CKR_OK
            );
            assert_eq!((count, slots[0]), (1, 0));
            assert_eq!(
                f.C_GetSlotList.unwrap()(CK_FALSE, slots.as_mut_ptr(), null_mut()),
                CKR_ARGUMENTS_BAD
            );
            let mut slot_info = CK_SLOT_INFO::default();
            assert_eq!(f.C_GetSlotInfo.unwrap()(0, &mut slot_info), CKR_OK);
            assert_ne!(slot_info.flags & CKF_TOKEN_PRESENT, 0);
            assert_eq!(
                f.C_GetSlotInfo.unwrap()(1, &mut slot_info),
                CKR_SLOT_ID_INVALID
            );

            // Token: initialise, then sessions.
            let so = b"raw-so-pin";
            let mut label = [b' '; 32];
            label[..3].copy_from_slice(b"raw");
            assert_eq!(
                f.C_InitToken.unwrap()(0, so.as_ptr() as *mut u8, so.len() as CK_ULONG, null_mut()),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                f.C_InitToken.unwrap()(
                    0,
                    so.as_ptr() as *mut u8,
                    so.len() as CK_ULONG,
                    label.as_mut_ptr()
                ),
                CKR_OK
            );
            assert_eq!(
                f.C_InitToken.unwrap()(0, so.as_ptr() as *mut u8, 2, label.as_mut_ptr()),
                CKR_PIN_LEN_RANGE
            );
            let mut token = CK_TOKEN_INFO::default();
            assert_eq!(f.C_GetTokenInfo.unwrap()(0, &mut token), CKR_OK);
            assert_eq!(token.label, label);
            assert_eq!(token.flags & CKF_USER_PIN_INITIALIZED, 0);
            assert_ne!(token.flags & CKF_TOKEN_INITIALIZED, 0);

            let mut h: CK_SESSION_HANDLE = 0;
            assert_eq!(
                f.C_OpenSession.unwrap()(0, CKF_RW_SESSION, null_mut(), None, &mut h),
                CKR_SESSION_PARALLEL_NOT_SUPPORTED
            );
            assert_eq!(
                f.C_OpenSession.unwrap()(0, CKF_SERIAL_SESSION, null_mut(), None, null_mut()),
                CKR_ARGUMENTS_BAD
            );
            let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
            assert_eq!(
                f.C_OpenSession.unwrap()(0, rw, null_mut(), None, &mut h),
                CKR_OK
            );
            assert_eq!(
                f.C_Login.unwrap()(h, CKU_SO, null_mut(), 5),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                f.C_Login.unwrap()(h, 7, so.as_ptr() as *mut u8, so.len() as CK_ULONG),
                CKR_USER_TYPE_INVALID
            );
            assert_eq!(
                f.C_Login.unwrap()(h, CKU_SO, so.as_ptr() as *mut u8, so.len() as CK_ULONG),
                CKR_OK
            );
            let user = b"raw-user-pin";
            assert_eq!(
                f.C_InitPIN.unwrap()(h, user.as_ptr() as *mut u8, user.len() as CK_ULONG),
                CKR_OK
            );
            assert_eq!(f.C_Logout.unwrap()(h), CKR_OK);
            assert_eq!(
                f.C_Login.unwrap()(
                    h,
                    CKU_USER,
                    user.as_ptr() as *mut u8,
                    user.len() as CK_ULONG
                ),
                CKR_OK
            );
            let mut si = CK_SESSION_INFO::default();
            assert_eq!(f.C_GetSessionInfo.unwrap()(h, &mut si), CKR_OK);
            assert_eq!(si.state, CKS_RW_USER_FUNCTIONS);
            assert_eq!(
                f.C_GetSessionInfo.unwrap()(h + 100, &mut si),
                CKR_SESSION_HANDLE_INVALID
            );

            // Random: NULL with a length is refused.
            assert_eq!(
                f.C_GenerateRandom.unwrap()(h, null_mut(), 8),
                CKR_ARGUMENTS_BAD
            );
            let mut rnd = [0u8; 32];
            assert_eq!(f.C_GenerateRandom.unwrap()(h, rnd.as_mut_ptr(), 32), CKR_OK);
            assert_ne!(rnd, [0u8; 32]);

            // An RSA-1024 key pair.
            let bits: CK_ULONG = 1024;
            let t = CK_TRUE;
            let mut pub_tpl = [CK_ATTRIBUTE {
                type_: CKA_MODULUS_BITS,
                pValue: &bits as *const _ as *mut c_void,
                ulValueLen: size_of::<CK_ULONG>() as CK_ULONG,
            }];
            let mut priv_tpl = [CK_ATTRIBUTE {
                type_: CKA_SIGN,
                pValue: &t as *const _ as *mut c_void,
                ulValueLen: 1,
            }];
            let mut mech = CK_MECHANISM {
                mechanism: CKM_RSA_PKCS_KEY_PAIR_GEN,
                pParameter: null_mut(),
                ulParameterLen: 0,
            };
            let (mut pubk, mut privk) = (0, 0);
            assert_eq!(
                f.C_GenerateKeyPair.unwrap()(
                    h,
                    &mut mech,
                    pub_tpl.as_mut_ptr(),
                    1,
                    priv_tpl.as_mut_ptr(),
                    1,
                    &mut pubk,
                    null_mut()
                ),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                f.C_GenerateKeyPair.unwrap()(
                    h,
                    &mut mech,
                    pub_tpl.as_mut_ptr(),
                    1,
                    priv_tpl.as_mut_ptr(),
                    1,
                    &mut pubk,
                    &mut privk
                ),
                CKR_OK
            );
            // A template value of the wrong size is refused.
            let mut bad_tpl = [CK_ATTRIBUTE {
                type_: CKA_MODULUS_BITS,
                pValue: &t as *const _ as *mut c_void,
                ulValueLen: 1,
            }];
            let (mut a, mut b) = (0, 0);
            assert_eq!(
                f.C_GenerateKeyPair.unwrap()(
                    h,
                    &mut mech,
                    bad_tpl.as_mut_ptr(),
                    1,
                    priv_tpl.as_mut_ptr(),
                    1,
                    &mut a,
                    &mut b
                ),
                CKR_ATTRIBUTE_VALUE_INVALID
            );

            // C_GetAttributeValue: a readable, a sensitive and an unknown attribute in one call.
            let mut modulus = [0u8; 128];
            let mut exponent = [0u8; 128];
            let mut tpl = [
                CK_ATTRIBUTE {
                    type_: CKA_MODULUS,
                    pValue: modulus.as_mut_ptr() as *mut c_void,
                    ulValueLen: 128,
                },
                CK_ATTRIBUTE {
                    type_: CKA_PRIVATE_EXPONENT,
                    pValue: exponent.as_mut_ptr() as *mut c_void,
                    ulValueLen: 128,
                },
                CK_ATTRIBUTE {
                    type_: CKA_VENDOR_DEFINED + 5,
                    pValue: null_mut(),
                    ulValueLen: 0,
                },
            ];
            let rv = f.C_GetAttributeValue.unwrap()(h, privk, tpl.as_mut_ptr(), 3);
            assert!(
                rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID,
                "rv {rv:#x}"
            );
            assert_eq!(tpl[0].ulValueLen, 128);
            assert_ne!(modulus[0] & 0x80, 0, "modulus copied (top bit set)");
            assert_eq!(tpl[1].ulValueLen, UNAVAILABLE);
            assert_eq!(exponent, [0u8; 128], "nothing of d written");
            assert_eq!(tpl[2].ulValueLen, UNAVAILABLE);
            let mut only_d = [tpl[1]];
            only_d[0].ulValueLen = 128;
            assert_eq!(
                f.C_GetAttributeValue.unwrap()(h, privk, only_d.as_mut_ptr(), 1),
                CKR_ATTRIBUTE_SENSITIVE
            );
            assert_eq!(only_d[0].ulValueLen, UNAVAILABLE);
            // Length query, then a short buffer.
            let mut q = [CK_ATTRIBUTE {
                type_: CKA_MODULUS,
                pValue: null_mut(),
                ulValueLen: 0,
            }];
            assert_eq!(
                f.C_GetAttributeValue.unwrap()(h, pubk, q.as_mut_ptr(), 1),
                CKR_OK
            );
            assert_eq!(q[0].ulValueLen, 128);
            q[0].pValue = modulus.as_mut_ptr() as *mut c_void;
            q[0].ulValueLen = 64;
            assert_eq!(
                f.C_GetAttributeValue.unwrap()(h, pubk, q.as_mut_ptr(), 1),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(q[0].ulValueLen, UNAVAILABLE);

            // C_Sign buffer protocol: length query and short buffer keep the operation.
            let mut mech = CK_MECHANISM {
                mechanism: CKM_SHA256_RSA_PKCS,
                pParameter: null_mut(),
                ulParameterLen: 0,
            };
            assert_eq!(
                f.C_Sign.unwrap()(h, b"m".as_ptr() as *mut u8, 1, null_mut(), &mut count),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(
                f.C_SignInit.unwrap()(h, null_mut(), privk),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(f.C_SignInit.unwrap()(h, &mut mech, privk), CKR_OK);
            assert_eq!(
                f.C_SignInit.unwrap()(h, &mut mech, privk),
                CKR_OPERATION_ACTIVE
            );
            let msg = b"message";
            let mut sig_len: CK_ULONG = 0;
            assert_eq!(
                f.C_Sign.unwrap()(h, msg.as_ptr() as *mut u8, 7, null_mut(), &mut sig_len),
                CKR_OK
            );
            assert_eq!(sig_len, 128);
            let mut sig = [0u8; 128];
            sig_len = 100;
            assert_eq!(
                f.C_Sign.unwrap()(
                    h,
                    msg.as_ptr() as *mut u8,
                    7,
                    sig.as_mut_ptr(),
                    &mut sig_len
                ),
                CKR_BUFFER_TOO_SMALL
            );
            assert_eq!(sig_len, 128);
            assert_eq!(
                f.C_Sign.unwrap()(h, msg.as_ptr() as *mut u8, 7, sig.as_mut_ptr(), null_mut()),
                CKR_ARGUMENTS_BAD
            );
            sig_len = 128;
            assert_eq!(
                f.C_Sign.unwrap()(
                    h,
                    msg.as_ptr() as *mut u8,
                    7,
                    sig.as_mut_ptr(),
                    &mut sig_len
                ),
                CKR_OK
            );
            assert_eq!(sig_len, 128);
            // Multi-part: the same signature from C_SignUpdate x2 + C_SignFinal.
            assert_eq!(f.C_SignInit.unwrap()(h, &mut mech, privk), CKR_OK);
            assert_eq!(
                f.C_SignUpdate.unwrap()(h, b"mes".as_ptr() as *mut u8, 3),
                CKR_OK
            );
            assert_eq!(
                f.C_SignUpdate.unwrap()(h, b"sage".as_ptr() as *mut u8, 4),
                CKR_OK
            );
            let mut sig2 = [0u8; 128];
            let mut sig2_len: CK_ULONG = 0;
            assert_eq!(f.C_SignFinal.unwrap()(h, null_mut(), &mut sig2_len), CKR_OK);
            assert_eq!(sig2_len, 128);
            assert_eq!(
                f.C_SignFinal.unwrap()(h, sig2.as_mut_ptr(), &mut sig2_len),
                CKR_OK
            );
            assert_eq!(sig2, sig, "PKCS#1 v1.5 is deterministic");
            assert_eq!(f.C_VerifyInit.unwrap()(h, &mut mech, pubk), CKR_OK);
            assert_eq!(
                f.C_VerifyUpdate.unwrap()(h, b"message".as_ptr() as *mut u8, 7),
                CKR_OK
            );
            assert_eq!(f.C_VerifyFinal.unwrap()(h, sig2.as_mut_ptr(), 128), CKR_OK);
            // A bad pointer in C_SignUpdate ends the operation.
            assert_eq!(f.C_SignInit.unwrap()(h, &mut mech, privk), CKR_OK);
            assert_eq!(f.C_SignUpdate.unwrap()(h, null_mut(), 3), CKR_ARGUMENTS_BAD);
            assert_eq!(
                f.C_SignFinal.unwrap()(h, sig2.as_mut_ptr(), &mut sig2_len),
                CKR_OPERATION_NOT_INITIALIZED
            );
            // The operation is over now.
            assert_eq!(
                f.C_Sign.unwrap()(
                    h,
                    msg.as_ptr() as *mut u8,
                    7,
                    sig.as_mut_ptr(),
                    &mut sig_len
                ),
                CKR_OPERATION_NOT_INITIALIZED
            );
            assert_eq!(f.C_VerifyInit.unwrap()(h, &mut mech, pubk), CKR_OK);
            assert_eq!(
                f.C_Verify.unwrap()(h, msg.as_ptr() as *mut u8, 7, sig.as_mut_ptr(), 128),
                CKR_OK
            );
            assert_eq!(f.C_VerifyInit.unwrap()(h, &mut mech, pubk), CKR_OK);
            assert_eq!(
                f.C_Verify.unwrap()(h, msg.as_ptr() as *mut u8, 6, sig.as_mut_ptr(), 128),
                CKR_SIGNATURE_INVALID
            );
            assert_eq!(f.C_VerifyInit.unwrap()(h, &mut mech, pubk), CKR_OK);
            assert_eq!(
                f.C_Verify.unwrap()(h, msg.as_ptr() as *mut u8, 7, sig.as_mut_ptr(), 127),
                CKR_SIGNATURE_LEN_RANGE
            );
            // Signing with the public key, or with a mechanism parameter, is refused.
            assert_eq!(
                f.C_SignInit.unwrap()(h, &mut mech, pubk),
                CKR_KEY_TYPE_INCONSISTENT
            );
            let mut with_param = CK_MECHANISM {
                mechanism: CKM_RSA_PKCS,
                pParameter: rnd.as_mut_ptr() as *mut c_void,
                ulParameterLen: 4,
            };
            assert_eq!(
                f.C_SignInit.unwrap()(h, &mut with_param, privk),
                CKR_MECHANISM_PARAM_INVALID
            );

            // Find: NULL output with a count is refused; results come in pieces.
            assert_eq!(f.C_FindObjectsInit.unwrap()(h, null_mut(), 0), CKR_OK);
            assert_eq!(
                f.C_FindObjectsInit.unwrap()(h, null_mut(), 0),
                CKR_OPERATION_ACTIVE
            );
            let mut found = [0 as CK_OBJECT_HANDLE; 1];
            assert_eq!(
                f.C_FindObjects.unwrap()(h, null_mut(), 1, &mut count),
                CKR_ARGUMENTS_BAD
            );
            assert_eq!(
                f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 1, &mut count),
                CKR_OK
            );
            assert_eq!(count, 1);
            let first = found[0];
            assert_eq!(
                f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 1, &mut count),
                CKR_OK
            );
            assert_eq!(count, 1);
            assert_ne!(found[0], first);
            assert_eq!(
                f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 1, &mut count),
                CKR_OK
            );
            assert_eq!(count, 0);
            assert_eq!(f.C_FindObjectsFinal.unwrap()(h), CKR_OK);
            assert_eq!(
                f.C_FindObjectsFinal.unwrap()(h),
                CKR_OPERATION_NOT_INITIALIZED
            );

            // Unsupported functions say so, whatever their arguments.
            assert_eq!(
                f.C_DigestInit.unwrap()(h, null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!(
                f.C_EncryptUpdate.unwrap()(h, null_mut(), 0, null_mut(), null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!(
                f.C_DigestUpdate.unwrap()(h, null_mut(), 0),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!(
                f.C_WaitForSlotEvent.unwrap()(0, null_mut(), null_mut()),
                CKR_FUNCTION_NOT_SUPPORTED
            );
            assert_eq!(
                f.C_SeedRandom.unwrap()(h, null_mut(), 0),
                CKR_RANDOM_SEED_NOT_SUPPORTED
            );
            assert_eq!(f.C_GetFunctionStatus.unwrap()(h), CKR_FUNCTION_NOT_PARALLEL);

            // Closing the last session logs out; the handle is gone.
            assert_eq!(f.C_CloseSession.unwrap()(h), CKR_OK);
            assert_eq!(f.C_CloseSession.unwrap()(h), CKR_SESSION_HANDLE_INVALID);
            assert_eq!(
                f.C_OpenSession.unwrap()(0, rw, null_mut(), None, &mut h),
                CKR_OK
            );
            assert_eq!(f.C_GetSessionInfo.unwrap()(h, &mut si), CKR_OK);
            assert_eq!(si.state, CKS_RW_PUBLIC_SESSION);
            assert_eq!(f.C_CloseAllSessions.unwrap()(0), CKR_OK);
            assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_OK);
        }
    });
}

#[test]
fn vendor_share_mechanism_is_in_the_mechanism_list() {
    common::isolated("vendor_share_mechanism_is_in_the_mechanism_list", || {
        let f = table();
        // SAFETY (whole block): every pointer points to a live local of the right type and
        // size, and `count` matches the buffer.
        unsafe {
            assert_eq!(f.C_Initialize.unwrap()(null_mut()), CKR_OK);
            let mut count: CK_ULONG = 0;
            assert_eq!(
                f.C_GetMechanismList.unwrap()(0, null_mut(), &mut count),
                CKR_OK
            );
            let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize];
            assert_eq!(
                f.C_GetMechanismList.unwrap()(0, list.as_mut_ptr(), &mut count),
                CKR_OK
            );
            assert!(list.contains(&tandem_hsm_sim::vendor::CKM_TANDEM_SHARE_EXP));
            assert_eq!(
                tandem_hsm_sim::vendor::CKM_TANDEM_SHARE_EXP,
                0x8000_0000 | 0x5444_0001
            );
            assert_eq!(
                tandem_hsm_sim::vendor::CKK_TANDEM_SHARE,
                0x8000_0000 | 0x5444_0001
            );
            let mut info = CK_MECHANISM_INFO::default();
            assert_eq!(
                f.C_GetMechanismInfo.unwrap()(
                    0,
                    tandem_hsm_sim::vendor::CKM_TANDEM_SHARE_EXP,
                    &mut info
                ),
                CKR_OK
            );
            assert_eq!(info.flags, CKF_SIGN | CKF_HW);
            assert_eq!((info.ulMinKeySize, info.ulMaxKeySize), (1024, 8192));
            assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_OK);
        }
    });
}

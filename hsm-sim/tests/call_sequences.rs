//! Random call sequences against the C boundary (deterministic seeds): the module must
//! never panic (`CKR_GENERAL_ERROR` is how a caught panic shows) and must agree with a
//! small model of sessions and login state.

#![allow(clippy::unwrap_used)]
// tests may unwrap (workspace rule)
// Calling a C ABI needs `unsafe`; pointers are live locals or deliberate NULLs.
#![allow(unsafe_code)]

mod common;

use std::collections::BTreeSet;
use std::ffi::c_void;
use std::ptr::null_mut;

use cryptoki_sys::*;
use tandem_hsm_sim::ffi::C_GetFunctionList;

use common::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login {
    Public,
    User,
    So,
}

const SO: &[u8] = b"seq-so-pin";
const USER: &[u8] = b"seq-user-pin";

#[test]
fn random_call_sequences_agree_with_the_model() {
    common::isolated("random_call_sequences_agree_with_the_model", || {
        let mut p: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: `p` is a live local.
        assert_eq!(unsafe { C_GetFunctionList(&mut p) }, CKR_OK);
        // SAFETY: the module returns its static table.
        let f = unsafe { &*p };

        // How often the interesting states were reached, so the test cannot pass vacuously.
        let (mut user_logins, mut so_logins, mut private_objects) = (0, 0, 0);
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            // SAFETY (whole block): pointers are live locals of the right size, or NULL.
            unsafe {
                assert_eq!(f.C_Initialize.unwrap()(null_mut()), CKR_OK, "seed {seed}");
                let mut label = [b' '; 32];
                assert_eq!(
                    f.C_InitToken.unwrap()(
                        0,
                        SO.as_ptr() as *mut u8,
                        SO.len() as CK_ULONG,
                        label.as_mut_ptr()
                    ),
                    CKR_OK
                );
                let mut sessions: BTreeSet<CK_SESSION_HANDLE> = BTreeSet::new();
                let mut rw: BTreeSet<CK_SESSION_HANDLE> = BTreeSet::new();
                let mut login = Login::Public;
                let mut user_pin_set = false;
                // Private session objects and the session that created them.
                let mut objects: Vec<(CK_OBJECT_HANDLE, CK_SESSION_HANDLE)> = Vec::new();

                for step in 0..400 {
                    let pick =
                        |rng: &mut Rng, set: &BTreeSet<CK_SESSION_HANDLE>| -> CK_SESSION_HANDLE {
                            if set.is_empty() || rng.below(5) == 0 {
                                rng.below(50)
                            } else {
                                *set.iter()
                                    .nth(rng.below(set.len() as u64) as usize)
                                    .unwrap()
                            }
                        };
                    let h = pick(&mut rng, &sessions);
                    let valid = sessions.contains(&h);
                    let op = rng.below(14);
                    let rv = match op {
                        0 => {
                            let writable = rng.below(4) != 0;
                            let flags =
                                CKF_SERIAL_SESSION | if writable { CKF_RW_SESSION } else { 0 };
                            let mut nh = 0;
                            let rv = f.C_OpenSession.unwrap()(0, flags, null_mut(), None, &mut nh);
                            let expected = if login == Login::So && !writable {
                                CKR_SESSION_READ_WRITE_SO_EXISTS
                            } else {
                                CKR_OK
                            };
                            assert_eq!(rv, expected, "seed {seed} step {step}: open");
                            if rv == CKR_OK {
                                assert!(sessions.insert(nh), "handle reused");
                                if writable {
                                    rw.insert(nh);
                                }
                            }
                            rv
                        }
                        1 => {
                            let rv = f.C_CloseSession.unwrap()(h);
                            assert_eq!(rv == CKR_OK, valid, "seed {seed} step {step}: close");
                            sessions.remove(&h);
                            rw.remove(&h);
                            // A session's objects die with it.
                            objects.retain(|(_, owner)| *owner != h);
                            if sessions.is_empty() {
                                login = Login::Public;
                                objects.clear();
                            }
                            rv
                        }
                        2 => {
                            let (user_type, pin) = if rng.below(2) == 0 {
                                (CKU_USER, USER)
                            } else {
                                (CKU_SO, SO)
                            };
                            let wrong = rng.below(4) == 0;
                            let pin: &[u8] = if wrong { b"wrong-pin" } else { pin };
                            let rv = f.C_Login.unwrap()(
                                h,
                                user_type,
                                pin.as_ptr() as *mut u8,
                                pin.len() as CK_ULONG,
                            );
                            let want = match (valid, login, user_type) {
                                (false, ..) => CKR_SESSION_HANDLE_INVALID,
                                (_, Login::User, CKU_USER) | (_, Login::So, CKU_SO) => {
                                    CKR_USER_ALREADY_LOGGED_IN
                                }
                                (_, Login::User, _) | (_, Login::So, _) => {
                                    CKR_USER_ANOTHER_ALREADY_LOGGED_IN
                                }
                                (_, Login::Public, CKU_SO) if sessions.len() != rw.len() => {
                                    CKR_SESSION_READ_ONLY_EXISTS
                                }
                                (_, Login::Public, CKU_USER) if !user_pin_set => {
                                    CKR_USER_PIN_NOT_INITIALIZED
                                }
                                _ if wrong => CKR_PIN_INCORRECT,
                                _ => CKR_OK,
                            };
                            assert_eq!(rv, want, "seed {seed} step {step}: login {user_type}");
                            if rv == CKR_OK {
                                login = if user_type == CKU_USER {
                                    user_logins += 1;
                                    Login::User
                                } else {
                                    so_logins += 1;
                                    Login::So
                                };
                            }
                            rv
                        }
                        3 => {
                            let rv = f.C_Logout.unwrap()(h);
                            let want = if !valid {
                                CKR_SESSION_HANDLE_INVALID
                            } else if login == Login::Public {
                                CKR_USER_NOT_LOGGED_IN
                            } else {
                                CKR_OK
                            };
                            assert_eq!(rv, want, "seed {seed} step {step}: logout");
                            if rv == CKR_OK {
                                login = Login::Public;
                                objects.clear();
                            }
                            rv
                        }
                        4 => {
                            let rv = f.C_InitPIN.unwrap()(
                                h,
                                USER.as_ptr() as *mut u8,
                                USER.len() as CK_ULONG,
                            );
                            let want = if !valid {
                                CKR_SESSION_HANDLE_INVALID
                            } else if login != Login::So || !rw.contains(&h) {
                                CKR_USER_NOT_LOGGED_IN
                            } else {
                                CKR_OK
                            };
                            assert_eq!(rv, want, "seed {seed} step {step}: init pin");
                            if rv == CKR_OK {
                                user_pin_set = true;
                            }
                            rv
                        }
                        5 => {
                            let mut info = CK_SESSION_INFO::default();
                            let rv = f.C_GetSessionInfo.unwrap()(h, &mut info);
                            assert_eq!(rv == CKR_OK, valid, "seed {seed} step {step}: info");
                            if rv == CKR_OK {
                                let want = match (login, rw.contains(&h)) {
                                    (Login::Public, false) => CKS_RO_PUBLIC_SESSION,
                                    (Login::Public, true) => CKS_RW_PUBLIC_SESSION,
                                    (Login::User, false) => CKS_RO_USER_FUNCTIONS,
                                    (Login::User, true) => CKS_RW_USER_FUNCTIONS,
                                    (Login::So, _) => CKS_RW_SO_FUNCTIONS,
                                };
                                assert_eq!(info.state, want, "seed {seed} step {step}: state");
                            }
                            rv
                        }
                        6 => {
                            // A data object, private half of the time.
                            let private: CK_BBOOL = rng.below(2) as CK_BBOOL;
                            let class = CKO_DATA;
                            let mut tpl = [
                                CK_ATTRIBUTE {
                                    type_: CKA_CLASS,
                                    pValue: &class as *const _ as *mut c_void,
                                    ulValueLen: 8,
                                },
                                CK_ATTRIBUTE {
                                    type_: CKA_PRIVATE,
                                    pValue: &private as *const _ as *mut c_void,
                                    ulValueLen: 1,
                                },
                            ];
                            let mut oh = 0;
                            let rv = f.C_CreateObject.unwrap()(h, tpl.as_mut_ptr(), 2, &mut oh);
                            let want = if !valid {
                                CKR_SESSION_HANDLE_INVALID
                            } else if private == 1 && login != Login::User {
                                CKR_USER_NOT_LOGGED_IN
                            } else {
                                CKR_OK
                            };
                            assert_eq!(rv, want, "seed {seed} step {step}: create");
                            if rv == CKR_OK && private == 1 {
                                private_objects += 1;
                                objects.push((oh, h));
                            }
                            rv
                        }
                        7 => {
                            // Reading a private object works exactly while the user is in.
                            let Some(&(oh, _)) = objects.first() else {
                                continue;
                            };
                            let mut len_q = [CK_ATTRIBUTE {
                                type_: CKA_CLASS,
                                pValue: null_mut(),
                                ulValueLen: 0,
                            }];
                            let rv = f.C_GetAttributeValue.unwrap()(h, oh, len_q.as_mut_ptr(), 1);
                            let want = if !valid {
                                CKR_SESSION_HANDLE_INVALID
                            } else {
                                CKR_OK
                            };
                            assert_eq!(rv, want, "seed {seed} step {step}: read private");
                            rv
                        }
                        8 => {
                            let mut buf = [0u8; 64];
                            let n = rng.below(65);
                            let ptr = if rng.below(8) == 0 {
                                null_mut()
                            } else {
                                buf.as_mut_ptr()
                            };
                            let rv = f.C_GenerateRandom.unwrap()(h, ptr, n);
                            if valid && (n == 0 || !ptr.is_null()) {
                                assert_eq!(rv, CKR_OK);
                            } else {
                                assert_ne!(rv, CKR_OK);
                            }
                            rv
                        }
                        9 => {
                            let rv = f.C_FindObjectsInit.unwrap()(h, null_mut(), 0);
                            if rv == CKR_OK {
                                let mut found = [0 as CK_OBJECT_HANDLE; 64];
                                let mut count = 0;
                                assert_eq!(
                                    f.C_FindObjects.unwrap()(h, found.as_mut_ptr(), 64, &mut count),
                                    CKR_OK
                                );
                                let found: BTreeSet<_> =
                                    found[..count as usize].iter().copied().collect();
                                for (oh, _) in &objects {
                                    assert!(
                                        found.contains(oh),
                                        "private object visible to the user"
                                    );
                                }
                                assert_eq!(f.C_FindObjectsFinal.unwrap()(h), CKR_OK);
                            }
                            rv
                        }
                        10 => f.C_SignInit.unwrap()(h, null_mut(), rng.below(100)),
                        11 => {
                            f.C_Sign.unwrap()(h, null_mut(), rng.below(3), null_mut(), null_mut())
                        }
                        12 => {
                            let mut count: CK_ULONG = rng.below(3);
                            let mut list = [0 as CK_MECHANISM_TYPE; 2];
                            let rv =
                                f.C_GetMechanismList.unwrap()(0, list.as_mut_ptr(), &mut count);
                            assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
                            assert!(count > 2);
                            rv
                        }
                        _ => f.C_DigestInit.unwrap()(h, null_mut()),
                    };
                    assert_ne!(
                        rv, CKR_GENERAL_ERROR,
                        "seed {seed} step {step} op {op}: panic caught"
                    );
                }
                assert_eq!(f.C_Finalize.unwrap()(null_mut()), CKR_OK);
                let mut info = CK_SESSION_INFO::default();
                assert_eq!(
                    f.C_GetSessionInfo.unwrap()(1, &mut info),
                    CKR_CRYPTOKI_NOT_INITIALIZED
                );
            }
        }
        assert!(
            user_logins > 3 && so_logins > 3 && private_objects > 3,
            "user logins {user_logins}, SO logins {so_logins}, private objects {private_objects}"
        );
    });
}

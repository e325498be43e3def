//! Task B: fault injection (`TANDEM_HSM_SIM_FAULTS`), through `cryptoki`. Each test runs in
//! a child process whose environment names a fault file in its token directory; the test
//! rewrites that file (atomically: write, rename) to switch faults on and off while the
//! module is loaded.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::{Mechanism, aead::GcmParams};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};

const CHILD_ENV: &str = "TANDEM_HSM_SIM_TEST_CHILD";

/// Like `common::isolated`, with `TANDEM_HSM_SIM_FAULTS` naming `<token dir>/<file>`.
fn with_faults(name: &str, file: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_ENV).is_some() {
        body();
        std::fs::write(token_dir().join(format!("ran-{name}")), b"ok").unwrap();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join(file);
    run_child(
        name,
        dir.path(),
        &[("TANDEM_HSM_SIM_FAULTS", faults.to_str().unwrap())],
    );
    assert!(dir.path().join(format!("ran-{name}")).exists());
}

fn faults_path() -> PathBuf {
    PathBuf::from(std::env::var_os("TANDEM_HSM_SIM_FAULTS").unwrap())
}

/// Replaces the fault file atomically.
fn set_faults(text: &str) {
    let path = faults_path();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// The return value and the function that returned it (`Function` has no `PartialEq`).
fn err(e: Error) -> (RvError, String) {
    match e {
        Error::Pkcs11(rv, f) => (rv, format!("{f:?}")),
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

/// An RSA-2048 token key pair (survives its session).
fn token_rsa(s: &Session) -> (ObjectHandle, ObjectHandle) {
    s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::ModulusBits(2048.into()),
            Attribute::Token(true),
            Attribute::Label(b"rsa".to_vec()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Label(b"rsa".to_vec()),
        ],
    )
    .unwrap()
}

fn sign_ok(s: &Session, public: ObjectHandle, private: ObjectHandle) {
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, private, b"msg").unwrap();
    s.verify(&Mechanism::Sha256RsaPkcs, public, b"msg", &sig)
        .unwrap();
}

#[test]
fn nth_call_and_call_ranges_fail_with_the_configured_rv() {
    with_faults(
        "nth_call_and_call_ranges_fail_with_the_configured_rv",
        "faults.toml",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let (public, private) = token_rsa(&s);

            // The 2nd C_SignInit after the file is read fails.
            set_faults(
                r#"
                [[fail]]
                function = "C_SignInit"
                calls = 2
                rv = "CKR_DEVICE_ERROR"
                "#,
            );
            sign_ok(&s, public, private);
            assert_eq!(
                err(s
                    .sign(&Mechanism::Sha256RsaPkcs, private, b"m")
                    .unwrap_err()),
                (RvError::DeviceError, "SignInit".to_owned())
            );
            sign_ok(&s, public, private);
            sign_ok(&s, public, private);

            // Calls 3..4 of C_Sign (cryptoki calls it twice per signature: length, then
            // data). An injected failure ends the operation, so the next one starts.
            set_faults(
                r#"
                [[fail]]
                function = "C_Sign"
                calls = "3..4"
                rv = 0x5
                "#,
            );
            sign_ok(&s, public, private); // calls 1, 2
            for _ in 0..2 {
                // call 3, then call 4
                assert_eq!(
                    err(s
                        .sign(&Mechanism::Sha256RsaPkcs, private, b"m")
                        .unwrap_err()),
                    (RvError::GeneralError, "Sign".to_owned())
                );
            }
            sign_ok(&s, public, private); // calls 5, 6

            // Every C_Login, with a name; other functions are unaffected.
            set_faults(
                r#"
                [[fail]]
                function = "C_Login"
                rv = "CKR_PIN_LOCKED"
                "#,
            );
            s.logout().unwrap();
            for _ in 0..3 {
                assert_eq!(
                    err(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
                    (RvError::PinLocked, "Login".to_owned())
                );
            }
            assert_eq!(s.generate_random_vec(8).unwrap().len(), 8);

            // Faults off again (an empty file): login works.
            set_faults("");
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            // (Logging out invalidated the private key's handle: find it again.)
            let private = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"rsa".to_vec()),
                ])
                .unwrap();
            assert_eq!(private.len(), 1);
            sign_ok(&s, public, private[0]);
        },
    );
}

#[test]
fn json_fault_files_and_malformed_files_are_ignored() {
    with_faults(
        "json_fault_files_and_malformed_files_are_ignored",
        "faults.json",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            // Malformed: reported on stderr, ignored.
            set_faults("{ this is not json");
            assert_eq!(s.generate_random_vec(4).unwrap().len(), 4);
            set_faults(r#"{"fail": [{"function": "C_Sing", "rv": 48}]}"#);
            assert_eq!(s.generate_random_vec(4).unwrap().len(), 4);

            set_faults(
                r#"{"fail": [
                    {"function": "C_GenerateRandom", "calls": 2, "rv": "CKR_DEVICE_MEMORY"},
                    {"function": "*", "calls": "5..", "rv": "0x30"}
                ]}"#,
            );
            s.generate_random_vec(4).unwrap(); // 1
            assert_eq!(
                err(s.generate_random_vec(4).unwrap_err()),
                (RvError::DeviceMemory, "GenerateRandom".to_owned())
            );
            s.generate_random_vec(4).unwrap(); // 3
            s.generate_random_vec(4).unwrap(); // 4
            assert_eq!(
                err(s.generate_random_vec(4).unwrap_err()),
                (RvError::DeviceError, "GenerateRandom".to_owned())
            );
            // "*" counts per function: the first C_GetSessionInfo still works.
            s.get_session_info().unwrap();

            // Malformed again: no faults.
            set_faults("[1, 2");
            for _ in 0..6 {
                s.generate_random_vec(4).unwrap();
            }
        },
    );
}

#[test]
fn latency_is_added_to_functions_all_calls_and_key_generation() {
    with_faults(
        "latency_is_added_to_functions_all_calls_and_key_generation",
        "faults.toml",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let (public, private) = token_rsa(&s);

            set_faults(
                r#"
                [[latency]]
                function = "C_Sign"
                ms = 150
                "#,
            );
            let t = Instant::now();
            sign_ok(&s, public, private); // two C_Sign calls
            assert!(
                t.elapsed() >= Duration::from_millis(300),
                "{:?}",
                t.elapsed()
            );

            set_faults("latency_ms = 120\n");
            let t = Instant::now();
            s.generate_random_vec(4).unwrap();
            assert!(
                t.elapsed() >= Duration::from_millis(120),
                "{:?}",
                t.elapsed()
            );

            set_faults("keygen_latency_ms = 400\n");
            let t = Instant::now();
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                ],
            )
            .unwrap();
            assert!(
                t.elapsed() >= Duration::from_millis(400),
                "{:?}",
                t.elapsed()
            );
            let t = Instant::now();
            s.generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &[Attribute::ModulusBits(1024.into())],
                &[Attribute::Sign(true)],
            )
            .unwrap();
            assert!(
                t.elapsed() >= Duration::from_millis(400),
                "{:?}",
                t.elapsed()
            );
            // Key generation latency does not touch other calls.
            let t = Instant::now();
            s.generate_random_vec(4).unwrap();
            assert!(
                t.elapsed() < Duration::from_millis(400),
                "{:?}",
                t.elapsed()
            );
        },
    );
}

#[test]
fn removed_token_comes_back_after_reopen_and_login() {
    with_faults(
        "removed_token_comes_back_after_reopen_and_login",
        "faults.toml",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let slot = s.get_session_info().unwrap().slot_id();
            let (public, private) = token_rsa(&s);
            sign_ok(&s, public, private);

            set_faults("token_removed = true\n");
            assert!(!ctx.get_slot_info(slot).unwrap().token_present());
            assert!(ctx.get_slots_with_token().unwrap().is_empty());
            assert_eq!(ctx.get_all_slots().unwrap(), vec![slot]);
            assert_eq!(
                err(ctx.get_token_info(slot).unwrap_err()).0,
                RvError::TokenNotPresent
            );
            assert_eq!(
                err(s
                    .sign(&Mechanism::Sha256RsaPkcs, private, b"m")
                    .unwrap_err()),
                (RvError::DeviceRemoved, "SignInit".to_owned())
            );
            assert_eq!(
                err(s.get_session_info().unwrap_err()).0,
                RvError::DeviceRemoved
            );
            assert_eq!(
                err(ctx.open_rw_session(slot).unwrap_err()).0,
                RvError::TokenNotPresent
            );

            set_faults("token_removed = false\n");
            assert!(ctx.get_slot_info(slot).unwrap().token_present());
            assert_eq!(ctx.get_slots_with_token().unwrap(), vec![slot]);
            // The old session did not survive the removal.
            assert_eq!(
                err(s.get_session_info().unwrap_err()).0,
                RvError::SessionHandleInvalid
            );
            // Reopen, log in, find the token key again, sign.
            let s = ctx.open_rw_session(slot).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            let private = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"rsa".to_vec()),
                ])
                .unwrap();
            let public = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(b"rsa".to_vec()),
                ])
                .unwrap();
            assert_eq!((private.len(), public.len()), (1, 1));
            sign_ok(&s, public[0], private[0]);
        },
    );
}

#[test]
fn server_calls_decrypt_unwrap_and_wildcards_fail_as_configured() {
    with_faults(
        "server_calls_decrypt_unwrap_and_wildcards_fail_as_configured",
        "faults.toml",
        || {
            let ctx = load();
            let s = user_session(&ctx);
            let kek = s
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Extractable(true),
                    ],
                )
                .unwrap();
            let mut iv = [1u8; 12];
            let gcm = |iv: &mut [u8; 12]| {
                let iv: &'static mut [u8; 12] = Box::leak(Box::new(*iv));
                Mechanism::AesGcm(GcmParams::new(iv, b"aad", 128.into()).unwrap())
            };
            let sealed = s.encrypt(&gcm(&mut iv), kek, b"secret").unwrap();
            let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, kek, kek).unwrap();

            set_faults(
                r#"
                [[fail]]
                function = "C_Decrypt"
                calls = 1
                rv = "CKR_DEVICE_ERROR"
                [[fail]]
                function = "C_UnwrapKey"
                rv = "CKR_DEVICE_MEMORY"
                [[fail]]
                function = "C_DigestInit"
                rv = "CKR_FUNCTION_FAILED"
                [[latency]]
                function = "*"
                ms = 30
                "#,
            );
            // The length query (call 1) fails; the operation ends, the next one works.
            assert_eq!(
                err(s.decrypt(&gcm(&mut iv), kek, &sealed).unwrap_err()),
                (RvError::DeviceError, "Decrypt".to_owned())
            );
            assert_eq!(s.decrypt(&gcm(&mut iv), kek, &sealed).unwrap(), b"secret");
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
            ];
            for _ in 0..2 {
                assert_eq!(
                    err(s
                        .unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template)
                        .unwrap_err()),
                    (RvError::DeviceMemory, "UnwrapKey".to_owned())
                );
            }
            // Unsupported functions are subject to faults too.
            assert_eq!(
                err(s.digest(&Mechanism::Sha256, b"x").unwrap_err()),
                (RvError::FunctionFailed, "DigestInit".to_owned())
            );
            // "*" latency applies to every call.
            let t = Instant::now();
            s.generate_random_vec(4).unwrap();
            assert!(
                t.elapsed() >= Duration::from_millis(30),
                "{:?}",
                t.elapsed()
            );

            set_faults("");
            s.unwrap_key(&Mechanism::AesKeyWrapPad, kek, &wrapped, &template)
                .unwrap();
            assert_eq!(
                err(s.digest(&Mechanism::Sha256, b"x").unwrap_err()),
                (RvError::FunctionNotSupported, "DigestInit".to_owned())
            );
        },
    );
}

#[test]
fn a_malformed_file_is_reported_once_per_version() {
    const NAME: &str = "a_malformed_file_is_reported_once_per_version";
    if std::env::var_os(CHILD_ENV).is_some() {
        let ctx = load();
        let s = user_session(&ctx);
        set_faults("latency_ms = \"soon\"\n");
        for _ in 0..5 {
            s.generate_random_vec(4).unwrap();
        }
        set_faults("[[fail]]\nfunction = \"C_Sign\"\n"); // no rv
        for _ in 0..5 {
            s.generate_random_vec(4).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.toml");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
        .env("TANDEM_HSM_SIM_DIR", dir.path())
        .env("TANDEM_HSM_SIM_FAULTS", &faults)
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let reports: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("hsm-sim: ignoring fault file"))
        .collect();
    assert_eq!(reports.len(), 2, "{stderr}");
    assert!(reports[0].contains("latency_ms"), "{}", reports[0]);
    assert!(reports[1].contains("rv"), "{}", reports[1]);
}

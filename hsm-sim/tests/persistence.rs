//! Token objects survive `C_Finalize` and a new `C_Initialize` (and a reload of the module);
//! private ones are stored encrypted; corrupted or unknown blobs are rejected.

#![allow(clippy::unwrap_used)] // tests may unwrap (workspace rule)

mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::Ulong;

const SECRET: &[u8] = b"this private value must not be on disk in clear";

fn object_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(token_dir().join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn token_objects_persist_across_finalize_and_reload() {
    isolated("token_objects_persist_across_finalize_and_reload", || {
        let message = b"persisted key signs";
        let signature;
        {
            let ctx = load();
            let slot = fresh_token(&ctx);
            let s = ctx.open_rw_session(slot).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Label(b"public-data".to_vec()),
                Attribute::Value(b"hello".to_vec()),
            ])
            .unwrap();
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"private-data".to_vec()),
                Attribute::Value(SECRET.to_vec()),
            ])
            .unwrap();
            // A session object must not survive.
            s.create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(false),
                Attribute::Label(b"session-data".to_vec()),
            ])
            .unwrap();
            let (_, private) = s
                .generate_key_pair(
                    &Mechanism::RsaPkcsKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Private(false),
                        Attribute::Label(b"kp".to_vec()),
                        Attribute::ModulusBits(Ulong::from(1024u64)),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(b"kp".to_vec()),
                        Attribute::Sign(true),
                    ],
                )
                .unwrap();
            signature = s.sign(&Mechanism::Sha256RsaPkcs, private, message).unwrap();
            ctx.finalize().unwrap();
        }

        // Four token objects on disk; the private value is not there in clear.
        let files = object_files();
        assert_eq!(files.len(), 4);
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(bytes[0], 1, "version byte");
            assert!(!contains(&bytes, SECRET), "private value stored in clear");
            // Owner-only files in an owner-only directory.
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let objects_dir = token_dir().join("objects");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&objects_dir)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(token_dir().join("token.meta"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );

        // A new module instance sees the public objects before login, the private ones after.
        let ctx = load();
        let slot = slot(&ctx);
        let ti = ctx.get_token_info(slot).unwrap();
        assert!(ti.token_initialized() && ti.user_pin_initialized());
        assert_eq!(ti.label(), "tandem-test");
        let s = ctx.open_rw_session(slot).unwrap();
        let public = s
            .find_objects(&[Attribute::Label(b"public-data".to_vec())])
            .unwrap();
        assert_eq!(public.len(), 1);
        assert_eq!(
            s.get_attributes(public[0], &[AttributeType::Value])
                .unwrap(),
            vec![Attribute::Value(b"hello".to_vec())]
        );
        assert!(
            s.find_objects(&[Attribute::Label(b"private-data".to_vec())])
                .unwrap()
                .is_empty()
        );
        assert!(
            s.find_objects(&[Attribute::Label(b"session-data".to_vec())])
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin("wrong-pin")))
                .unwrap_err()),
            RvError::PinIncorrect
        );
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let private = s
            .find_objects(&[Attribute::Label(b"private-data".to_vec())])
            .unwrap();
        assert_eq!(private.len(), 1);
        assert_eq!(
            s.get_attributes(private[0], &[AttributeType::Value])
                .unwrap(),
            vec![Attribute::Value(SECRET.to_vec())]
        );
        // The persisted key pair still works, and is the same key.
        let key = s
            .find_objects(&[
                Attribute::Label(b"kp".to_vec()),
                Attribute::Class(ObjectClass::PRIVATE_KEY),
            ])
            .unwrap();
        let public_key = s
            .find_objects(&[
                Attribute::Label(b"kp".to_vec()),
                Attribute::Class(ObjectClass::PUBLIC_KEY),
            ])
            .unwrap();
        assert_eq!((key.len(), public_key.len()), (1, 1));
        s.verify(
            &Mechanism::Sha256RsaPkcs,
            public_key[0],
            message,
            &signature,
        )
        .unwrap();
        let again = s.sign(&Mechanism::Sha256RsaPkcs, key[0], message).unwrap();
        assert_eq!(again, signature, "PKCS#1 v1.5 is deterministic");

        // Destroying a token object removes its file.
        s.destroy_object(public[0]).unwrap();
        assert_eq!(object_files().len(), 3);
        drop(s);
        drop(ctx);

        // An object blob with an unknown version makes the token unreadable: C_Initialize fails.
        let victim = object_files()[0].clone();
        let mut bytes = std::fs::read(&victim).unwrap();
        let original = bytes.clone();
        bytes[0] = 9;
        std::fs::write(&victim, &bytes).unwrap();
        let module = cryptoki::context::Pkcs11::new(module_path()).unwrap();
        let err = module
            .initialize(cryptoki::context::CInitializeArgs::new(
                cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
            ))
            .unwrap_err();
        assert_eq!(rv(err), RvError::DeviceError);
        drop(module);
        std::fs::write(&victim, &original).unwrap();

        // A tampered private object fails authentication at login.
        let ctx = load();
        let s = ctx.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        s.logout().unwrap();
        let mut tampered = false;
        for f in object_files() {
            let mut b = std::fs::read(&f).unwrap();
            if b[1] == 1 {
                let last = b.len() - 1;
                b[last] ^= 0x80;
                std::fs::write(&f, &b).unwrap();
                tampered = true;
                break;
            }
        }
        assert!(tampered, "a private object file exists");
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::DeviceError
        );
    });
}

/// Set in the second process of `objects_from_another_process_are_found`.
const WRITER_ENV: &str = "TANDEM_HSM_SIM_TEST_WRITER";

#[test]
fn objects_from_another_process_are_found() {
    const NAME: &str = "objects_from_another_process_are_found";
    isolated(NAME, || {
        if std::env::var_os(WRITER_ENV).is_some() {
            // The other process: adds two token objects and deletes one of the reader's.
            let ctx = load();
            let s = ctx.open_rw_session(slot(&ctx)).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            for (label, private) in [(&b"from-writer"[..], false), (b"private-from-writer", true)] {
                s.create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(private),
                    Attribute::Label(label.to_vec()),
                    Attribute::Value(b"written elsewhere".to_vec()),
                ])
                .unwrap();
            }
            let doomed = s
                .find_objects(&[Attribute::Label(b"doomed".to_vec())])
                .unwrap();
            assert_eq!(doomed.len(), 1);
            s.destroy_object(doomed[0]).unwrap();
            return;
        }
        let ctx = load();
        let slot = fresh_token(&ctx);
        let s = ctx.open_rw_session(slot).unwrap();
        s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
        let mut mine = Vec::new();
        for label in [&b"mine"[..], b"doomed"] {
            mine.push(
                s.create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Label(label.to_vec()),
                ])
                .unwrap(),
            );
        }
        run_child(NAME, &token_dir(), &[(WRITER_ENV, "1")]);

        let find = |label: &[u8]| s.find_objects(&[Attribute::Label(label.to_vec())]).unwrap();
        let public = find(b"from-writer");
        assert_eq!(public.len(), 1, "public object of the other process");
        let private = find(b"private-from-writer");
        assert_eq!(private.len(), 1, "private object of the other process");
        assert_eq!(
            s.get_attributes(private[0], &[AttributeType::Value])
                .unwrap(),
            vec![Attribute::Value(b"written elsewhere".to_vec())]
        );
        // Our own object keeps its handle; the one deleted elsewhere is gone.
        assert_eq!(find(b"mine"), vec![mine[0]]);
        assert!(find(b"doomed").is_empty());
        assert_eq!(
            rv(s.get_attributes(mine[1], &[AttributeType::Label])
                .unwrap_err()),
            RvError::ObjectHandleInvalid
        );
    });
}

#[test]
fn pin_and_attribute_changes_persist() {
    isolated("pin_and_attribute_changes_persist", || {
        {
            let ctx = load();
            let slot = fresh_token(&ctx);
            let s = ctx.open_rw_session(slot).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            let key = s
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Label(b"before".to_vec()),
                    ],
                )
                .unwrap();
            s.update_attributes(key, &[Attribute::Label(b"after".to_vec())])
                .unwrap();
            s.set_pin(&pin(USER_PIN), &pin("changed-pin")).unwrap();
            s.logout().unwrap();
            // The SO PIN changes too, in an SO session.
            s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
            s.set_pin(&pin(SO_PIN), &pin("changed-so-pin")).unwrap();
            ctx.finalize().unwrap();
        }
        let ctx = load();
        let slot = slot(&ctx);
        let s = ctx.open_rw_session(slot).unwrap();
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::PinIncorrect
        );
        s.login(UserType::User, Some(&pin("changed-pin"))).unwrap();
        assert!(
            s.find_objects(&[Attribute::Label(b"before".to_vec())])
                .unwrap()
                .is_empty()
        );
        let key = s
            .find_objects(&[Attribute::Label(b"after".to_vec())])
            .unwrap();
        assert_eq!(key.len(), 1);
        // The key still works after the reload.
        let mut iv = [1u8; 12];
        let params = cryptoki::mechanism::aead::GcmParams::new(&mut iv, b"", 128.into()).unwrap();
        let sealed = s
            .encrypt(&Mechanism::AesGcm(params), key[0], b"still usable")
            .unwrap();
        assert_eq!(sealed.len(), 12 + 16);
        s.logout().unwrap();
        drop(s);
        // Re-initialising needs the new SO PIN.
        assert_eq!(
            rv(ctx.init_token(slot, &pin(SO_PIN), "x").unwrap_err()),
            RvError::PinIncorrect
        );
        ctx.init_token(slot, &pin("changed-so-pin"), "x").unwrap();
    });
}

#[test]
fn token_files_are_made_owner_only_again_when_the_module_opens_them() {
    isolated(
        "token_files_are_made_owner_only_again_when_the_module_opens_them",
        || {
            use std::os::unix::fs::PermissionsExt;
            let mode =
                |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            let set = |p: &std::path::Path, m: u32| {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
            };
            {
                let ctx = load();
                let slot = fresh_token(&ctx);
                let s = ctx.open_rw_session(slot).unwrap();
                s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
                for i in 0..3u8 {
                    s.create_object(&[
                        Attribute::Class(ObjectClass::DATA),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(vec![b'd', i]),
                        Attribute::Value(vec![i; 8]),
                    ])
                    .unwrap();
                }
                drop(s);
                ctx.finalize().unwrap();
            }
            // Written through temporary files with unique names; none is left behind.
            let dir = token_dir();
            let names = |d: &std::path::Path| -> Vec<String> {
                std::fs::read_dir(d)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            };
            let all: Vec<_> = names(&dir)
                .into_iter()
                .chain(names(&dir.join("objects")))
                .collect();
            assert!(!all.iter().any(|n| n.ends_with(".tmp")), "{all:?}");
            // Someone copied the token directory with wider modes.
            let files: Vec<_> = [dir.join("token.meta"), dir.join(".lock")]
                .into_iter()
                .chain(object_files())
                .collect();
            assert_eq!(files.len(), 5);
            set(&dir, 0o755);
            set(&dir.join("objects"), 0o775);
            for f in &files {
                set(f, 0o644);
            }
            // The next C_Initialize makes them owner-only again, and the token still works.
            let ctx = load();
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("objects")), 0o700);
            for f in &files {
                assert_eq!(mode(f), 0o600, "{}", f.display());
            }
            let s = ctx.open_rw_session(slot(&ctx)).unwrap();
            s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
            assert_eq!(
                s.find_objects(&[Attribute::Class(ObjectClass::DATA)])
                    .unwrap()
                    .len(),
                3
            );
        },
    );
}

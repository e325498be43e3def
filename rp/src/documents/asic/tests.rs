use std::io::Cursor;
use std::time::{Duration, Instant};

use sha2::Digest as _;

use super::*;

const MAIN: &[u8] = b"%PDF-1.7 the main document\n";
const SIG: &[u8] = b"\x30\x03\x02\x01\x01"; // stands in for a DER .p7s; not parsed here

fn package(proof: Option<&[u8]>) -> Vec<u8> {
    let mut w = PackageWriter::new(Cursor::new(Vec::new())).unwrap();
    w.add_document("Schriftsatz.pdf", Role::Main, "application/pdf", MAIN, SIG)
        .unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 253) as u8).collect();
    w.add_document(
        "Anlage 1 – Rechnung.bin",
        Role::Attachment,
        "application/octet-stream",
        &big[..],
        SIG,
    )
    .unwrap();
    w.finish(proof).unwrap().into_inner()
}

fn read(bytes: &[u8]) -> Result<Package, AsicError> {
    read_package(Cursor::new(bytes), &PackageLimits::default())
}

#[test]
fn round_trip_digests_match() {
    let bytes = package(Some(b"proof"));
    let p = read(&bytes).unwrap();
    assert_eq!(p.documents.len(), 2);
    assert_eq!(p.documents[0].entry.role, Role::Main);
    assert_eq!(p.documents[0].sha256, sha2::Sha256::digest(MAIN).to_vec());
    assert_eq!(
        p.documents[0].entry.sha256,
        hex::encode(sha2::Sha256::digest(MAIN))
    );
    assert_eq!(p.documents[1].entry.name, "Anlage 1 – Rechnung.bin");
    assert_eq!(p.documents[1].signature, SIG);
    assert_eq!(p.proof_of_origin.as_deref(), Some(&b"proof"[..]));
    assert_eq!(read(&package(None)).unwrap().proof_of_origin, None);
}

#[test]
fn python_zipfile_and_unzip_see_mimetype_first_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.asice");
    std::fs::write(&path, package(Some(b"proof"))).unwrap();
    let py = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
i = z.infolist()
assert z.testzip() is None
m = i[0]
print(m.filename, m.compress_type, m.header_offset, len(m.extra), z.read(m).decode())
print(sorted(x.filename for x in i[1:]))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(py)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), format!("mimetype 0 0 0 {MIMETYPE}"));
    assert_eq!(
        lines.next().unwrap(),
        "['Anlage 1 – Rechnung.bin', 'META-INF/proof-of-origin.p7s', \
         'META-INF/signatures1.p7s', 'META-INF/signatures2.p7s', \
         'META-INF/tandem-package.json', 'Schriftsatz.pdf']"
    );
    let out = std::process::Command::new("unzip")
        .arg("-v")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // `unzip -v` rows: length, method, size, ..., name; the first file row is mimetype, Stored.
    let first = text
        .lines()
        .find(|l| l.contains("Stored") || l.contains("Defl"))
        .unwrap();
    assert!(
        first.contains("Stored") && first.trim_end().ends_with("mimetype"),
        "{text}"
    );
}

#[test]
fn writer_refuses_bad_names_and_duplicates() {
    let mut w = PackageWriter::new(Cursor::new(Vec::new())).unwrap();
    for bad in [
        "/etc/passwd",
        "../evil",
        "a/../b",
        "a\\b",
        "tab\there",
        "",
        "dir/x.pdf",
        "c:x",
    ] {
        let e = w
            .add_document(bad, Role::Attachment, "a/b", &b""[..], SIG)
            .unwrap_err();
        assert!(matches!(e, AsicError::UnsafeName(..)), "{bad:?}: {e}");
    }
    w.add_document("Doc.pdf", Role::Main, "application/pdf", MAIN, SIG)
        .unwrap();
    let e = w
        .add_document("doc.PDF", Role::Attachment, "application/pdf", MAIN, SIG)
        .unwrap_err();
    assert!(matches!(e, AsicError::DuplicateName(_)), "{e}");
    let mut w = PackageWriter::new(Cursor::new(Vec::new())).unwrap();
    w.add_document("a", Role::Attachment, "text/plain", MAIN, SIG)
        .unwrap();
    assert!(matches!(
        w.finish(None).unwrap_err(),
        AsicError::MainDocuments(0)
    ));
}

/// One entry of a hand-made ZIP: the bytes are written as given, so headers may lie.
struct Raw {
    name: Vec<u8>,
    method: u16,
    flags: u16,
    data: Vec<u8>,
    crc: u32,
    size: u32,
    extra: Vec<u8>,
}

fn stored_entry(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        method: 0,
        flags: 0x0800,
        data: data.to_vec(),
        crc: crc32(data),
        size: data.len() as u32,
        extra: Vec::new(),
    }
}

/// CRC-32 (IEEE), bitwise: enough for small test entries.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn raw_zip(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes());
            h.extend(e.flags.to_le_bytes());
            h.extend(e.method.to_le_bytes());
            h.extend([0u8; 4]); // time, date
            h.extend(e.crc.to_le_bytes());
            h.extend((e.data.len() as u32).to_le_bytes());
            h.extend(e.size.to_le_bytes());
            h.extend((e.name.len() as u16).to_le_bytes());
            h.extend((e.extra.len() as u16).to_le_bytes());
            if central {
                h.extend([0u8; 8]); // comment length, disk, internal and external attributes
                h.extend([0u8; 2]);
                h.extend(offset.to_le_bytes());
            }
            h.extend(&e.name);
            h.extend(&e.extra);
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(&e.data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

fn manifest_for(docs: &[(&str, &[u8])]) -> Vec<u8> {
    let documents = docs
        .iter()
        .enumerate()
        .map(|(i, (name, data))| ManifestDocument {
            name: (*name).into(),
            role: if i == 0 { Role::Main } else { Role::Attachment },
            sha256: hex::encode(sha2::Sha256::digest(data)),
            media_type: "application/octet-stream".into(),
            signature: format!("META-INF/signatures{}.p7s", i + 1),
        })
        .collect();
    serde_json::to_vec(&Manifest {
        version: 1,
        documents,
    })
    .unwrap()
}

/// mimetype, one document "a.txt" with its signature and the manifest, then `more`.
fn good_entries() -> Vec<Raw> {
    vec![
        stored_entry("mimetype", MIMETYPE.as_bytes()),
        stored_entry("a.txt", b"hello"),
        stored_entry("META-INF/signatures1.p7s", SIG),
        stored_entry(MANIFEST, &manifest_for(&[("a.txt", b"hello")])),
    ]
}

#[test]
fn hand_made_good_package_reads() {
    let p = read(&raw_zip(&good_entries())).unwrap();
    assert_eq!(
        p.documents[0].sha256,
        sha2::Sha256::digest(b"hello").to_vec()
    );
}

#[test]
fn refuses_unsafe_names() {
    for bad in ["../evil", "/abs", "a\\b", "x/../../y", "ctl\u{1}"] {
        let mut e = good_entries();
        e.push(stored_entry(bad, b"x"));
        let err = read(&raw_zip(&e)).unwrap_err();
        assert!(matches!(err, AsicError::UnsafeName(..)), "{bad:?}: {err}");
    }
    let mut e = good_entries();
    e[1].name = b"\xff\xfe.txt".to_vec();
    e[1].flags = 0;
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::UnsafeName(..)
    ));
}

#[test]
fn refuses_duplicates_exact_and_by_case() {
    let mut e = good_entries();
    e.push(stored_entry("a.txt", b"hello"));
    let err = read(&raw_zip(&e)).unwrap_err();
    assert!(matches!(err, AsicError::DuplicateName(_)), "{err}");
    let mut e = good_entries();
    e.push(stored_entry("A.TXT", b"other"));
    let err = read(&raw_zip(&e)).unwrap_err();
    assert!(matches!(err, AsicError::DuplicateName(_)), "{err}");
}

#[test]
fn refuses_bad_mimetype() {
    let mut e = good_entries();
    e.swap(0, 1);
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Mimetype(_)
    ));
    let mut e = good_entries();
    e[0] = stored_entry("mimetype", b"application/zip");
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Mimetype("wrong content")
    ));
    let mut e = good_entries();
    e[0].extra = vec![0x99, 0x99, 0, 0];
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Mimetype(_)
    ));
    // Compressed mimetype, written with the zip crate.
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("mimetype", deflated()).unwrap();
    w.write_all(MIMETYPE.as_bytes()).unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert!(matches!(
        read(&bytes).unwrap_err(),
        AsicError::Mimetype("compressed")
    ));
}

#[test]
fn refuses_too_many_entries_and_encrypted_entries() {
    let mut e = good_entries();
    for i in 0..10 {
        e.push(stored_entry(&format!("META-INF/x{i}"), b""));
    }
    let limits = PackageLimits {
        max_entries: 8,
        ..PackageLimits::default()
    };
    let err = read_package(Cursor::new(raw_zip(&e)), &limits).unwrap_err();
    assert!(matches!(err, AsicError::TooManyEntries(14, 8)), "{err}");
    let mut e = good_entries();
    e[1].flags |= 1; // the encryption flag
    let err = read(&raw_zip(&e)).unwrap_err();
    assert!(
        matches!(err, AsicError::Encrypted(ref n) if n == "a.txt"),
        "{err}"
    );
}

#[test]
fn refuses_missing_and_unlisted_files_and_wrong_digests() {
    let mut e = good_entries();
    e.remove(1);
    assert!(matches!(read(&raw_zip(&e)).unwrap_err(), AsicError::MissingFile(n) if n == "a.txt"));
    let mut e = good_entries();
    e.remove(3);
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Manifest(_)
    ));
    let mut e = good_entries();
    e.push(stored_entry("extra.exe", b"MZ"));
    assert!(
        matches!(read(&raw_zip(&e)).unwrap_err(), AsicError::UnlistedFile(n) if n == "extra.exe")
    );
    let mut e = good_entries();
    e[1] = stored_entry("a.txt", b"HELLO");
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::DigestMismatch(_)
    ));
    // A manifest naming one document twice, or a signature in a reserved slot.
    let twice = manifest_for(&[("a.txt", b"hello"), ("a.txt", b"hello")]);
    let mut e = good_entries();
    e[3] = stored_entry(MANIFEST, &twice);
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::DuplicateName(_)
    ));
    let reserved = String::from_utf8(manifest_for(&[("a.txt", b"hello")]))
        .unwrap()
        .replace("META-INF/signatures1.p7s", PROOF_OF_ORIGIN);
    let mut e = good_entries();
    e[3] = stored_entry(MANIFEST, reserved.as_bytes());
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Manifest(_)
    ));
    // A directory entry carrying data.
    let mut e = good_entries();
    e.push(stored_entry("META-INF/hidden/", b"data"));
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::UnlistedFile(_)
    ));
    let mut e = good_entries();
    e[3] = stored_entry(
        MANIFEST,
        b"{\"version\":1,\"documents\":[{\"name\":\"../x\"}]}",
    );
    assert!(matches!(
        read(&raw_zip(&e)).unwrap_err(),
        AsicError::Manifest(_)
    ));
}

#[test]
fn refuses_sizes_over_the_limits() {
    let limits = PackageLimits {
        max_entry_size: 4,
        ..PackageLimits::default()
    };
    let err = read_package(Cursor::new(raw_zip(&good_entries())), &limits).unwrap_err();
    assert!(matches!(err, AsicError::EntryTooLarge(..)), "{err}");
    // The header claims 1 byte: the inflated count refuses it anyway.
    let mut e = good_entries();
    e[1].size = 1;
    let limits = PackageLimits {
        max_entry_size: 2,
        max_metadata_size: 1024,
        ..PackageLimits::default()
    };
    let err = read_package(Cursor::new(raw_zip(&e)), &limits).unwrap_err();
    assert!(matches!(err, AsicError::EntryTooLarge(..)), "{err}");
    let limits = PackageLimits {
        max_total_size: 40,
        ..PackageLimits::default()
    };
    let err = read_package(Cursor::new(raw_zip(&good_entries())), &limits).unwrap_err();
    assert!(matches!(err, AsicError::TotalTooLarge(40)), "{err}");
}

/// 1 GiB of zeros as raw deflate: one block of 1 MiB of zeros from a fresh compressor (it
/// refers only to itself, so it can be repeated), 1024 times, then an empty final block.
fn zeros_gib_deflated() -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut block = Vec::with_capacity(4096);
    c.compress_vec(&vec![0u8; 1 << 20], &mut block, flate2::FlushCompress::Sync)
        .unwrap();
    let mut out = Vec::with_capacity(block.len() * 1024 + 5);
    for _ in 0..1024 {
        out.extend(&block);
    }
    out.extend([0x01, 0x00, 0x00, 0xff, 0xff]); // final empty stored block
    out
}

#[test]
fn decompression_bomb_is_refused_quickly() {
    let bomb = zeros_gib_deflated();
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    // Headers that tell the truth (refused from the header), a size under the entry limit
    // (refused by the ratio while inflating) and a lie of 1000 bytes (refused past it).
    for claimed in [u32::MAX, 400 << 20, 1000] {
        let mut e = good_entries();
        e[1] = Raw {
            method: 8,
            data: bomb.clone(),
            size: claimed,
            ..stored_entry("a.txt", b"")
        };
        let start = Instant::now();
        let err = read(&raw_zip(&e)).unwrap_err();
        match claimed {
            u32::MAX => assert!(matches!(err, AsicError::EntryTooLarge(..)), "{err}"),
            1000 => assert!(matches!(err, AsicError::SizeMismatch(..)), "{err}"),
            _ => assert!(matches!(err, AsicError::CompressionRatio(_, 100)), "{err}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }
}

#[test]
fn truncated_and_random_bytes_are_refused() {
    let bytes = package(None);
    for cut in [0, 10, bytes.len() / 2, bytes.len() - 10] {
        assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut x = 0x1234_5678u32;
    let noise: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    assert!(matches!(read(&noise).unwrap_err(), AsicError::Zip(_)));
    // Every single flipped byte of a small package: an error or a package, never a panic.
    let small = raw_zip(&good_entries());
    for i in 0..small.len() {
        let mut b = small.clone();
        b[i] ^= 0x5a;
        let _ = read(&b);
    }
}

#[test]
fn extract_document_streams_the_bytes_and_checks_the_digest() {
    let bytes = package(None);
    let mut out = Vec::new();
    let n = extract_document(
        Cursor::new(&bytes),
        "Schriftsatz.pdf",
        &mut out,
        &PackageLimits::default(),
    )
    .unwrap();
    assert_eq!((n, &out[..]), (MAIN.len() as u64, MAIN));
    let mut big = Vec::new();
    extract_document(
        Cursor::new(&bytes),
        "Anlage 1 – Rechnung.bin",
        &mut big,
        &PackageLimits::default(),
    )
    .unwrap();
    assert_eq!(big.len(), 300_000);
    for missing in ["nope.pdf", MANIFEST, "META-INF/signatures1.p7s"] {
        assert!(matches!(
            extract_document(
                Cursor::new(&bytes),
                missing,
                Vec::new(),
                &PackageLimits::default()
            ),
            Err(AsicError::MissingFile(_))
        ));
    }
    let small = PackageLimits {
        max_entry_size: 1000,
        ..PackageLimits::default()
    };
    assert!(matches!(
        extract_document(
            Cursor::new(&bytes),
            "Anlage 1 – Rechnung.bin",
            Vec::new(),
            &small
        ),
        Err(AsicError::EntryTooLarge(..))
    ));
    assert!(extract_document(Cursor::new(b"not a zip"), "x", Vec::new(), &small).is_err());
}

#![allow(clippy::unwrap_used)] // tests

use super::*;

#[test]
fn objects_parse_and_write_back() {
    let o = parse_object(
        b"<< /Type /Catalog /Pages 2 0 R /A [1 -2 3.5 (a\\(b\\)\\101) <414 2> true null]\n\
          /N#20x /D /E << /K 7 >> >>",
    )
    .unwrap();
    let d = o.as_dict().unwrap();
    assert!(d.is_name("Type", "Catalog"));
    assert_eq!(d.get("Pages"), Some(&Obj::Ref(2, 0)));
    assert_eq!(
        d.get("A"),
        Some(&Obj::Array(vec![
            Obj::Int(1),
            Obj::Int(-2),
            Obj::Real("3.5".into()),
            Obj::Str(b"a(b)A".to_vec()),
            Obj::Str(b"AB".to_vec()),
            Obj::Bool(true),
            Obj::Null,
        ]))
    );
    assert!(d.get("N x").is_some());
    let mut out = Vec::new();
    o.write(&mut out);
    assert_eq!(parse_object(&out).unwrap(), o);
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    for bad in [
        &b"<< /A"[..],
        b"[1 2",
        b"<< 1 2 >>",
        b"(unterminated",
        b"<4G>",
        b"/N#G1",
        b"@",
        &[b'['; 200],
    ] {
        assert!(
            parse_object(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_reference_cut_by_the_window_asks_for_more_bytes() {
    // The reader grows its window on Eof; a half-read `5 0 R` must not become `5`.
    for cut in [&b"<< /P 5"[..], b"<< /P 5 0", b"<< /P 5 0 "] {
        assert_eq!(Parser::new(cut).object(0), Err(ParseError::Eof), "{cut:?}");
    }
    assert_eq!(
        Parser::new(b"<< /P 5 0 R >> ").object(0).unwrap(),
        Obj::Dict(Dict(vec![(b"P".to_vec(), Obj::Ref(5, 0))]))
    );
}

//! The web front end is an ordinary relying party: none of the server's crates may reach it
//! (docs/ARCHITECTURE.md). Checked on the resolved graph, `cargo tree -e normal`.

#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

fn normal_dependencies(package: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn no_server_crates_in_the_web_front_end_or_the_rp_library() {
    for package in ["tandem-web", "tandem-rp"] {
        let deps = normal_dependencies(package);
        assert!(deps.iter().any(|d| d == package), "{deps:?}");
        for banned in ["tandem-server", "cryptoki", "rusqlite", "tonic", "rcgen"] {
            assert!(
                !deps.iter().any(|d| d == banned),
                "{package} depends on {banned}"
            );
        }
    }
}

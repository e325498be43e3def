//! `tandem load` end to end: it starts its own server (hsm-sim), registers simulated
//! devices, drives signatures at two concurrency levels, verifies signatures with OpenSSL,
//! and reports throughput, latency percentiles, errors and the server's CPU per signature,
//! as a table, JSON and an SVG chart. A second run reuses the data directory.

#![allow(clippy::unwrap_used)] // tests

use tandem_tests::*;

fn field(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn load_generator_measures_signatures_and_server_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("load");
    let json = tmp.path().join("load.json");
    let svg = tmp.path().join("load.svg");
    let run = |more: &[&str]| {
        let mut args = vec![
            "load",
            "--data-dir",
            dir.to_str().unwrap(),
            "--key-bits",
            "2048",
            "--accounts",
            "2",
            "--json",
            json.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ];
        args.extend_from_slice(more);
        tandem(&args).unwrap()
    };
    let table = run(&["--concurrency", "1,2", "--seconds", "2"]);
    assert!(
        table.contains("| API | concurrency | signatures/s |"),
        "{table}"
    );

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["hsm"], "hsm-sim");
    // The registrations' server part was timed (pooled keys), next to its reference.
    assert_eq!(field(&doc, &["registration", "count"]), 2.0, "{doc}");
    assert!(field(&doc, &["registration", "server_part_ms", "p50"]) > 0.0);
    assert!(field(&doc, &["registration", "reference_ms"]) > 0.0);
    // Both relying-party APIs by default: gRPC (precomputed device work), then REST (the
    // Smart-ID RP API v3) with RSASSA-PSS (live device work) and with PKCS#1 v1.5
    // (precomputed device work); the last signatures of each REST flow were verified by the
    // RP client, or the run would have failed.
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 6, "{doc}");
    for (p, (flow, c)) in phases.iter().zip([
        ("grpc", 1.0),
        ("grpc", 2.0),
        ("rest", 1.0),
        ("rest", 2.0),
        ("rest-pkcs1", 1.0),
        ("rest-pkcs1", 2.0),
    ]) {
        assert_eq!(p["flow"], flow, "{p}");
        assert_eq!(field(p, &["concurrency"]), c);
        assert!(field(p, &["completed"]) >= 1.0, "{p}");
        assert_eq!(field(p, &["errors"]), 0.0, "{p}");
        assert!(field(p, &["per_second"]) > 0.0);
        assert_eq!(field(p, &["repeat"]), 1.0);
        // Against the reference measured next to the phase, in the same run.
        let reference = field(p, &["reference_ms"]);
        assert!(reference > 0.0, "{p}");
        let ratio = field(p, &["server_cpu_ms_per_signature"]) / reference;
        assert!(
            (field(p, &["cpu_per_reference"]) - ratio).abs() < 1e-9,
            "{p}"
        );
        // The server did work for the signatures (its CPU time moved).
        assert!(field(p, &["server_cpu_ms_per_signature"]) > 0.0, "{p}");
        // Part of it ran on the HSM-call threads (read to the nanosecond; the whole is read
        // in clock ticks of 10 ms, so it may round down by up to two ticks over the phase).
        let hsm = field(p, &["hsm_call_cpu_ms_per_signature"]);
        let ticks = 20.0 / field(p, &["completed"]);
        assert!(
            hsm > 0.0 && hsm <= field(p, &["server_cpu_ms_per_signature"]) + ticks,
            "{p}"
        );
        for l in ["confirm_ms", "session_ms"] {
            let (p50, p95, p99, max) = (
                field(p, &[l, "p50"]),
                field(p, &[l, "p95"]),
                field(p, &[l, "p99"]),
                field(p, &[l, "max"]),
            );
            assert!(
                0.0 < p50 && p50 <= p95 && p95 <= p99 && p99 <= max,
                "{l}: {p}"
            );
        }
        // The server's part is part of the session.
        assert!(field(p, &["confirm_ms", "p50"]) <= field(p, &["session_ms", "max"]));
    }
    // One round: each level's summary is that round.
    let summary = doc["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 6, "{doc}");
    for (s, p) in summary.iter().zip(phases) {
        assert_eq!(field(s, &["repeats"]), 1.0);
        assert_eq!(
            (&s["flow"], &s["concurrency"]),
            (&p["flow"], &p["concurrency"])
        );
        for f in ["cpu_per_reference_min", "cpu_per_reference_max"] {
            assert_eq!(field(s, &[f]), field(p, &["cpu_per_reference"]), "{s}");
        }
    }
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    // Throughput, p50 and p99 for each API.
    assert_eq!(chart.matches("<polyline").count(), 9, "{chart}");

    // The data directory is reused (no second initialisation). Two rounds of one level: the
    // table shows the median round and the range over both.
    let table = run(&[
        "--concurrency",
        "1",
        "--flows",
        "grpc",
        "--seconds",
        "1",
        "--repeat",
        "2",
    ]);
    assert!(table.contains("| grpc | 1 |"), "{table}");
    assert!(!table.contains("| rest |"), "{table}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let phases = doc["phases"].as_array().unwrap();
    let rounds: Vec<f64> = phases.iter().map(|p| field(p, &["repeat"])).collect();
    assert_eq!(rounds, [1.0, 2.0], "{doc}");
    let summary = doc["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 1, "{doc}");
    let s = &summary[0];
    assert_eq!(field(s, &["repeats"]), 2.0);
    let ratios: Vec<f64> = phases
        .iter()
        .map(|p| field(p, &["cpu_per_reference"]))
        .collect();
    let (lo, hi) = (ratios[0].min(ratios[1]), ratios[0].max(ratios[1]));
    assert_eq!(
        (
            field(s, &["cpu_per_reference_min"]),
            field(s, &["cpu_per_reference_max"])
        ),
        (lo, hi)
    );
    assert_eq!(
        field(s, &["cpu_per_reference"]),
        hi,
        "the higher of two middle rounds"
    );
    assert!(table.contains(&format!("{lo:.2}–{hi:.2}")), "{table}");

    // A foreign data directory is refused.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(foreign.join("server")).unwrap();
    std::fs::write(foreign.join("server/tandem.toml"), "").unwrap();
    let e = tandem(&["load", "--data-dir", foreign.to_str().unwrap()]).unwrap_err();
    assert!(
        e.to_string().contains("not created by `tandem load`"),
        "{e}"
    );
    // Bad arguments are refused before anything starts.
    let e = tandem(&[
        "load",
        "--data-dir",
        dir.to_str().unwrap(),
        "--accounts",
        "1",
        "--concurrency",
        "2",
    ])
    .unwrap_err();
    assert!(
        e.to_string().contains("at least the highest concurrency"),
        "{e}"
    );
    let e = tandem(&["load", "--data-dir", dir.to_str().unwrap(), "--repeat", "0"]).unwrap_err();
    assert!(e.to_string().contains("--repeat must be at least 1"), "{e}");
}

/// A relative `--data-dir` works, the first time and when the directory is reused (the
/// configuration is saved with absolute paths, not the relative ones doubled).
#[test]
fn load_generator_takes_a_relative_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(tandem_bin())
            .current_dir(tmp.path())
            .args(["load", "--data-dir", "runs/load", "--key-bits", "2048"])
            .args(["--accounts", "1", "--concurrency", "1", "--seconds", "1"])
            .args(["--flows", "grpc"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for _ in 0..2 {
        let table = run();
        assert!(table.contains("| API | concurrency |"), "{table}");
    }
    let cfg = std::fs::read_to_string(tmp.path().join("runs/load/server/tandem.toml")).unwrap();
    assert!(!cfg.contains("runs/load/server/runs/load"), "{cfg}");
}

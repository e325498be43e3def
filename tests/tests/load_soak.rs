//! `tandem load --soak`: a short soak end to end. It measures the peak of the flows' mix,
//! drives half of it for 20 s, reports every 5 s (signatures, errors, latency, the server's
//! RSS) as a table and JSON, draws the chart, and passes the verdict (no error, RSS flat).
//! The 10-minute run's figures are in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used)] // tests

use tandem_tests::*;

fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

#[test]
fn soak_reports_intervals_and_passes_its_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("load");
    let json = tmp.path().join("soak.json");
    let svg = tmp.path().join("soak.svg");
    let d = dir.to_str().unwrap();

    // Bad soak options are refused before anything starts (no data directory is made).
    for (args, expect) in [
        (
            vec!["--soak", "20s", "--soak-plateau", "30s"],
            "--soak-plateau (30 s) must be shorter than --soak (20 s)",
        ),
        (
            vec!["--soak", "20s", "--soak-interval", "1m"],
            "--soak-interval (60 s) must not be longer than --soak (20 s)",
        ),
        (vec!["--soak", "2s"], "--soak must be at least 4 s"),
        (vec!["--soak", "10x"], "unknown unit"),
        (
            vec!["--soak", "20s", "--rate", "0"],
            "--rate must be above 0",
        ),
        (vec!["--rate", "5"], "--soak <DURATION>"),
        (vec!["--soak-interval", "5s"], "--soak <DURATION>"),
    ] {
        let mut all = vec!["load", "--data-dir", d];
        all.extend(args.iter().copied());
        let e = tandem(&all).unwrap_err().to_string();
        assert!(e.contains(expect), "{args:?}: {e}");
    }
    assert!(!dir.exists());

    // In 20 s a new server's SQLite page cache still grows with the database
    // (docs/BENCHMARKS.md, "Soak"), so on a fast machine the RSS rule may fail here; the
    // command then exits non-zero after writing its report. Errors may not occur at all, and
    // the verdict must agree with the readings (checked below).
    let run = tandem(&[
        "load",
        "--data-dir",
        d,
        "--key-bits",
        "2048",
        "--accounts",
        "2",
        "--concurrency",
        "2",
        "--flows",
        "grpc,rest-pkcs1",
        "--seconds",
        "4",
        // Reported every 5 s, the plateau the first 5 s: a quarter of a soak this short.
        "--soak",
        "20s",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let out = match run {
        Ok(out) => out,
        Err(e) => e.to_string(),
    };
    assert!(out.contains("| interval | until s | signatures |"), "{out}");
    assert!(
        out.contains("verdict: PASS") || out.contains("verdict: FAIL (0 errors; RSS NOT flat)"),
        "{out}"
    );

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["mode"], "soak");
    assert_eq!(doc["flows"], serde_json::json!(["grpc", "rest-pkcs1"]));
    assert_eq!(num(&doc, &["workers"]), 2.0);
    // The peak was measured, and the soak ran at half of it.
    let peak = num(&doc, &["peak", "per_second"]);
    assert!(peak > 0.0, "{doc}");
    assert_eq!(num(&doc, &["peak", "errors"]), 0.0, "{doc}");
    assert_eq!(doc["rate_from"], "half of the measured peak");
    let rate = num(&doc, &["rate"]);
    assert!((rate - peak / 2.0).abs() < 1e-9, "{doc}");
    assert_eq!(num(&doc, &["duration_s"]), 20.0);
    assert_eq!(num(&doc, &["interval_s"]), 5.0);
    assert_eq!(num(&doc, &["plateau_s"]), 5.0);
    // Paced: never more sessions than rate x duration; and most of them ran (the machine is
    // shared with other tests, so the lower bound is loose).
    let max_sessions = num(&doc, &["max_sessions"]);
    assert_eq!(max_sessions, (rate * 20.0).floor().max(1.0), "{doc}");
    let completed = num(&doc, &["completed"]);
    assert!(completed <= max_sessions, "{doc}");
    assert!(completed >= (max_sessions * 0.3).floor(), "{doc}");
    assert_eq!(num(&doc, &["errors"]), 0.0, "{doc}");
    assert_eq!(doc["errors_by_kind"], serde_json::json!({}));

    // Four intervals of 5 s, each with its signatures, latency and the server's memory.
    let intervals = doc["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 4, "{doc}");
    let mut sum = 0.0;
    for (k, i) in intervals.iter().enumerate() {
        assert_eq!(num(i, &["index"]), (k + 1) as f64);
        assert_eq!(num(i, &["start_s"]), 5.0 * k as f64, "{i}");
        if k < 3 {
            assert_eq!(num(i, &["end_s"]), 5.0 * (k + 1) as f64, "{i}");
        } else {
            // The last one ends when the last session has.
            assert!(num(i, &["end_s"]) >= 20.0, "{i}");
        }
        assert!(num(i, &["completed"]) >= 1.0, "{i}");
        assert_eq!(num(i, &["errors"]), 0.0, "{i}");
        sum += num(i, &["completed"]);
        for l in ["confirm_ms", "session_ms"] {
            let (p50, p99) = (num(i, &[l, "p50"]), num(i, &[l, "p99"]));
            assert!(0.0 < p50 && p50 <= p99, "{l}: {i}");
        }
        assert!(num(i, &["confirm_ms", "p50"]) <= num(i, &["session_ms", "max"]));
        // A real server process: tens of MiB resident, part of it anonymous.
        let rss = num(i, &["rss_mib_max"]);
        assert!(rss > 5.0 && rss < 4096.0, "{i}");
        let anon = num(i, &["memory_end", "rss_anon_mib"]);
        assert!(
            anon > 0.0 && anon <= num(i, &["memory_end", "rss_mib"]),
            "{i}"
        );
        assert!(num(i, &["database_mib"]) > 0.0, "{i}");
    }
    assert_eq!(sum, completed);
    // The server's memory was read about every second.
    let memory = doc["memory"].as_array().unwrap();
    assert!(memory.len() >= 15, "{}", memory.len());

    let v = &doc["verdict"];
    assert_eq!(num(v, &["errors"]), 0.0);
    // No error: the verdict is the RSS rule's, and the output says the same.
    assert_eq!(v["passed"], v["rss_flat"], "{v}");
    assert_eq!(
        v["passed"] == true,
        out.contains("verdict: PASS"),
        "{v}: {out}"
    );
    assert_eq!(num(v, &["rss_plateau_window_s"]), 5.0);
    assert_eq!(num(v, &["rss_limit_percent"]), 10.0);
    // The plateau is the highest reading of the first 5 s, and the verdict's numbers are the
    // readings'.
    let readings: Vec<(f64, f64)> = memory
        .iter()
        .map(|m| (num(m, &["t_s"]), num(m, &["rss_mib"])))
        .collect();
    let plateau = readings
        .iter()
        .filter(|(t, _)| *t <= 5.0)
        .map(|(_, r)| *r)
        .fold(0.0, f64::max);
    let after = readings
        .iter()
        .filter(|(t, _)| *t > 5.0)
        .map(|(_, r)| *r)
        .fold(0.0, f64::max);
    assert_eq!(num(v, &["rss_plateau_mib"]), plateau);
    assert_eq!(num(v, &["rss_max_after_plateau_mib"]), after);
    assert_eq!(v["rss_flat"] == true, after <= plateau * 1.1, "{v}");

    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    // RSS, session p99 and confirm p99.
    assert_eq!(chart.matches("<polyline").count(), 3, "{chart}");
}

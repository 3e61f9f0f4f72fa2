//! t91: the `sutra` data commands (put with embeddings and attributes, edges, neighbors,
//! scan, search, batch files) and `sutra bench` against a real cluster, configured only
//! through `SUTRA_*` variables.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, process::cli_binary, within};

/// What one `sutra` run printed.
struct Run {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Run {
    /// Exit 0; stdout parsed as JSON.
    fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, Some(0), "{}{}", self.out, self.err);
        serde_json::from_str(self.out.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.out))
    }

    /// Exit 1 with one `error: ` line on stderr containing `needle`.
    fn fails_with(&self, needle: &str) {
        assert_eq!(self.code, Some(1), "{}{}", self.out, self.err);
        assert_eq!(self.err.trim().lines().count(), 1, "{}", self.err);
        assert!(self.err.starts_with("error: "), "{}", self.err);
        assert!(self.err.contains(needle), "{needle:?} not in {}", self.err);
    }
}

/// Runs `sutra` with the cluster given only by `SUTRA_ENDPOINTS`, `SUTRA_CA`, `SUTRA_CERT`
/// and `SUTRA_KEY` (writer certificate).
fn sutra(cli: &Path, cluster: &Cluster, args: &[&str]) -> Run {
    let certs = cluster.certs_dir();
    let writer = sutra_certs::CertPaths::client(certs, "writer");
    let out = Command::new(cli)
        .env_remove("SUTRA_CLUSTER_FILE")
        .env("SUTRA_ENDPOINTS", cluster.api_addrs().join(","))
        .env("SUTRA_CA", sutra_certs::CertPaths::ca(certs).cert)
        .env("SUTRA_CERT", &writer.cert)
        .env("SUTRA_KEY", &writer.key)
        .args(args)
        .output()
        .expect("running sutra");
    Run {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).to_string(),
        err: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn ids(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|c| c["id"].as_str().expect("an id").to_string())
        .collect()
}

/// Checks a `bench --output json` report: every request done, none failed, throughput
/// above zero, percentiles ordered.
fn check_bench(report: &serde_json::Value, workload: &str, requests: u64) {
    assert_eq!(report["workload"], workload, "{report}");
    assert_eq!(report["requests"], requests, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["clients"], 4, "{report}");
    assert!(report["ops_per_sec"].as_f64().expect("ops_per_sec") > 0.0);
    let ms = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {report}"))
    };
    assert!(ms("p50_ms") > 0.0, "{report}");
    assert!(ms("p50_ms") <= ms("p90_ms"), "{report}");
    assert!(ms("p90_ms") <= ms("p99_ms"), "{report}");
    assert!(ms("p99_ms") <= ms("max_ms"), "{report}");
    let command = report["command"].as_str().expect("command");
    assert!(command.contains(&format!("bench {workload}")), "{command}");
}

/// Through the `sutra` binary, configured by `SUTRA_*` variables only:
/// - `put` stores an embedding (comma list and JSON array) and `--attr`s; `get --output
///   json` returns them; `--expected-version 0` on an existing concept is a one-line
///   conflict;
/// - `edge put`/`edge delete` and `neighbors` in both directions;
/// - `batch --file` applies a JSON Lines file atomically; a file with a bad third line
///   is refused naming line 3 and nothing of it is applied;
/// - `scan` follows pages up to `--limit` (prefix, range, keys-only);
/// - `search` finds the nearest embedding;
/// - `bench put` and `bench get` (4 clients, 200 requests) report every request done
///   with no error, ops/s above zero and ordered percentiles, and the command line;
/// - flag mistakes and a missing configuration are one line on stderr, exit 1.
///
/// Why: operators and scripts drive the cluster with the CLI; its flags, JSON output and
/// exit codes are an interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t91_cli_data_commands() -> anyhow::Result<()> {
    init_tracing();
    within("t91", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cli = cli_binary()?;
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    cluster.leader(Duration::from_secs(15)).await?;
    let files = tempfile::tempdir()?;
    let s = |args: &[&str]| sutra(&cli, &cluster, args);

    tracing::info!("--- put with embedding and attributes, get, compare-and-set");
    {
        let r = s(&[
            "put",
            "t91/a",
            "--content",
            "alpha",
            "--embedding",
            "1,0,0,0,0,0,0,0",
            "--attr",
            "lang=en",
            "--attr",
            "kind=letter",
        ]);
        assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
        let r = s(&[
            "put",
            "t91/b",
            "--content",
            "beta",
            "--embedding",
            "[0, 1, 0, 0, 0, 0, 0, 0]",
        ]);
        assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
        let a = s(&["--output", "json", "get", "t91/a"]).json();
        assert_eq!(a["content"], "alpha");
        assert_eq!(a["attributes"]["lang"], "en");
        assert_eq!(a["attributes"]["kind"], "letter");
        assert_eq!(a["embedding"].as_array().map(Vec::len), Some(8));
        assert!(a["meta"]["served_by"].as_u64().unwrap_or(0) > 0, "{a}");
        s(&["put", "t91/a", "--expected-version", "0"]).fails_with("conflict");
        let version = a["version"].as_u64().expect("version").to_string();
        let r = s(&[
            "put",
            "t91/a",
            "--content",
            "alpha2",
            "--embedding",
            "1,0,0,0,0,0,0,0",
            "--expected-version",
            &version,
        ]);
        assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
    }

    tracing::info!("--- edges and neighbors");
    {
        let r = s(&["edge", "put", "t91/a", "t91/b", "cites", "--weight", "0.5"]);
        assert_eq!(r.code, Some(0), "{}{}", r.out, r.err);
        let out = s(&["--output", "json", "neighbors", "t91/a"]).json();
        assert_eq!(ids(&out), ["t91/b"]);
        assert_eq!(out[0]["weight"], 0.5);
        assert_eq!(out[0]["relation"], "cites");
        let incoming = s(&[
            "--output",
            "json",
            "neighbors",
            "t91/b",
            "--direction",
            "in",
            "--relation",
            "cites",
        ])
        .json();
        assert_eq!(ids(&incoming), ["t91/a"]);
        assert_eq!(incoming[0]["direction"], "in");
        s(&["edge", "put", "t91/a", "t91/nobody", "cites"]).fails_with("conflict");
        let deleted = s(&[
            "--output", "json", "edge", "delete", "t91/a", "t91/b", "cites",
        ])
        .json();
        assert_eq!(deleted["existed"], true);
        let none = s(&["--output", "json", "neighbors", "t91/a"]).json();
        assert_eq!(ids(&none), Vec::<String>::new());
    }

    tracing::info!("--- batch files: applied atomically, a bad line refused by number");
    {
        let good = files.path().join("good.jsonl");
        let mut text = String::from("# twelve concepts, an edge and a check\n");
        for i in 0..12 {
            text.push_str(&format!(
                "{{\"op\":\"put\",\"id\":\"t91/s/{i:02}\",\"content\":\"s{i}\"}}\n"
            ));
        }
        text.push_str(
            "{\"op\":\"put_edge\",\"from\":\"t91/s/00\",\"to\":\"t91/s/01\",\"relation\":\"next\"}\n",
        );
        text.push_str("{\"op\":\"check\",\"id\":\"t91/never\",\"expected_version\":0}\n");
        std::fs::write(&good, text)?;
        let out = s(&[
            "--output",
            "json",
            "batch",
            "--file",
            good.to_str().expect("utf-8 path"),
        ])
        .json();
        assert_eq!(out["ops"], 14, "{out}");
        assert!(out["version"].as_u64().unwrap_or(0) > 0, "{out}");

        let bad = files.path().join("bad.jsonl");
        std::fs::write(
            &bad,
            "{\"op\":\"put\",\"id\":\"t91/never\"}\n\n{\"op\":\"put\",\"idd\":\"x\"}\n",
        )?;
        s(&["batch", "--file", bad.to_str().expect("utf-8 path")]).fails_with("line 3");
        s(&["get", "t91/never"]).fails_with("not found");
        let failing = files.path().join("failing.jsonl");
        std::fs::write(
            &failing,
            "{\"op\":\"put\",\"id\":\"t91/never\"}\n{\"op\":\"check\",\"id\":\"t91/a\",\"expected_version\":0}\n",
        )?;
        s(&["batch", "--file", failing.to_str().expect("utf-8 path")]).fails_with("conflict");
        s(&["get", "t91/never"]).fails_with("not found");
    }

    tracing::info!("--- scan follows pages up to --limit");
    {
        let all = s(&["--output", "json", "scan", "--prefix", "t91/s/"]).json();
        let want: Vec<_> = (0..12).map(|i| format!("t91/s/{i:02}")).collect();
        assert_eq!(ids(&all), want);
        let some = s(&[
            "--output",
            "json",
            "scan",
            "--prefix",
            "t91/s/",
            "--limit",
            "7",
            "--page-size",
            "3",
        ])
        .json();
        assert_eq!(ids(&some), want[..7]);
        let range = s(&[
            "--output",
            "json",
            "scan",
            "--start",
            "t91/s/03",
            "--end",
            "t91/s/06",
            "--keys-only",
            "--consistency",
            "stale",
        ])
        .json();
        assert_eq!(ids(&range), want[3..6]);
        assert_eq!(range[0]["content"], "");
    }

    tracing::info!("--- search");
    {
        let hits = s(&[
            "--output",
            "json",
            "search",
            "--vector",
            "0.9,0.1,0,0,0,0,0,0",
            "--k",
            "2",
        ])
        .json();
        assert_eq!(ids(&hits), ["t91/a", "t91/b"]);
        let l2 = s(&[
            "--output",
            "json",
            "search",
            "--vector",
            "[0,1,0,0,0,0,0,0]",
            "--k",
            "1",
            "--metric",
            "l2",
            "--include-concepts",
        ])
        .json();
        assert_eq!(ids(&l2), ["t91/b"]);
        assert_eq!(l2[0]["concept"]["content"], "beta");
    }

    tracing::info!("--- bench put and bench get");
    {
        let put = s(&[
            "--output",
            "json",
            "bench",
            "put",
            "--clients",
            "4",
            "--requests",
            "200",
            "--value-size",
            "64",
            "--keys",
            "50",
            "--prefix",
            "t91/bench/",
        ])
        .json();
        check_bench(&put, "put", 200);
        let get = s(&[
            "--output",
            "json",
            "bench",
            "get",
            "--clients",
            "4",
            "--requests",
            "200",
            "--keys",
            "50",
            "--consistency",
            "stale",
            "--prefix",
            "t91/bench/",
        ])
        .json();
        check_bench(&get, "get", 200);
        let table = s(&["bench", "mixed", "--requests", "40", "--keys", "10"]);
        assert_eq!(table.code, Some(0), "{}{}", table.out, table.err);
        assert!(table.out.contains("p99"), "{}", table.out);
        assert!(table.out.contains("bench mixed"), "{}", table.out);
    }

    tracing::info!("--- mistakes are one line and exit 1");
    {
        s(&["scan", "--prefix", "a", "--start", "b"]).fails_with("cannot be used with");
        s(&["put", "x", "--embedding", "1,a"]).fails_with("element 1");
        s(&["put", "x", "--attr", "novalue"]).fails_with("key=value");
        s(&["put", "x", "--embedding", "1,2"]).fails_with("embedding");
        s(&["frobnicate"]).fails_with("frobnicate");
        let out = Command::new(&cli)
            .env_remove("SUTRA_ENDPOINTS")
            .env_remove("SUTRA_CLUSTER_FILE")
            .args(["get", "x"])
            .output()?;
        let r = Run {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
        };
        r.fails_with("no endpoints");
    }

    cluster.finish();
    Ok(())
}

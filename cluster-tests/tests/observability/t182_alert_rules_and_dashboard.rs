//! t182: the alert rules and the Grafana dashboard under `deploy/monitoring/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use sutra_checker::History;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, init_tracing, process, wait_until, within,
};
use sutra_proto::storage::{Concept, PutConceptRequest, WriteHeader};
use tonic::Code;

use crate::http::request;

/// The workspace root, where `deploy/` is.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cluster-tests lies in the workspace")
        .to_path_buf()
}

fn monitoring(file: &str) -> PathBuf {
    workspace().join("deploy/monitoring").join(file)
}

/// Runs `promtool ARGS` in the workspace root; fails on a non-zero exit with its output.
fn promtool(args: &[&str]) -> Result<String> {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(workspace())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "promtool is not installed: it checks deploy/monitoring/ (Debian package \
             prometheus; scripts/deps.sh installs it)"
        ),
        Err(e) => return Err(e).context("running promtool"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "promtool {} exited with {}:\n{text}",
        args.join(" "),
        out.status
    );
    Ok(text)
}

/// One PromQL expression and where it is used.
struct Query {
    place: String,
    expr: String,
}

/// Every alerting rule's expression in `alerts.yml`, after checking that each alert has
/// a severity and says what happened and what to do.
fn alert_queries() -> Result<Vec<Query>> {
    let path = monitoring("alerts.yml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let doc: Yaml = serde_yaml::from_str(&text).context("alerts.yml")?;
    let groups = doc["groups"].as_sequence().context("no groups")?;
    ensure!(
        groups.iter().any(|g| g["name"].as_str() == Some("sutra")),
        "alerts.yml has no group `sutra`"
    );
    let mut queries = Vec::new();
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().into_iter().flatten())
    {
        let name = rule["alert"]
            .as_str()
            .context("a rule that is not an alert")?;
        let severity = rule["labels"]["severity"].as_str().unwrap_or("");
        ensure!(
            matches!(severity, "warning" | "critical"),
            "{name}: severity {severity:?}, not warning or critical"
        );
        for key in ["summary", "description"] {
            ensure!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{name}: no {key}"
            );
        }
        queries.push(Query {
            place: format!("alerts.yml {name} ({severity})"),
            expr: rule["expr"].as_str().context("no expr")?.to_string(),
        });
    }
    Ok(queries)
}

/// Every panel target's expression in `dashboard.json`, rows' nested panels included.
fn dashboard_queries() -> Result<Vec<Query>> {
    fn walk(panels: &[Json], out: &mut Vec<Query>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(Query {
                        place: format!("dashboard.json panel {title:?}"),
                        expr: expr.to_string(),
                    });
                }
            }
            walk(p["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let path = monitoring("dashboard.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let doc: Json = serde_json::from_str(&text).context("dashboard.json")?;
    let mut queries = Vec::new();
    walk(
        doc["panels"].as_array().context("no panels")?.as_slice(),
        &mut queries,
    );
    Ok(queries)
}

/// The metric names an expression uses: identifiers outside string literals that start
/// with `sutra_` or `process_`, and `up`, with a histogram's `_bucket`, `_sum` or
/// `_count` taken off. Grafana variables (`$instance`, `$__rate_interval`) are not names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expr.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if matches!(c, '"' | '\'' | '`') {
            // A string literal (label value, regex): skip to its unescaped end.
            let mut escaped = false;
            for d in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if d == '\\' && c != '`' {
                    escaped = true;
                } else if d == c {
                    break;
                }
            }
            prev = c;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            let mut token = String::from(c);
            while let Some(&d) = chars.peek() {
                if !(d.is_ascii_alphanumeric() || d == '_' || d == ':') {
                    break;
                }
                token.push(d);
                chars.next();
            }
            let variable = prev == '$';
            prev = token.chars().last().unwrap_or(' ');
            if variable || c.is_ascii_digit() {
                continue;
            }
            if token == "up" || token.starts_with("sutra_") || token.starts_with("process_") {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| token.strip_suffix(s))
                    .unwrap_or(&token);
                names.insert(base.to_string());
            }
            continue;
        }
        prev = c;
    }
    names
}

/// The metric names in an exposition's `# TYPE` lines.
fn type_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A name the rules or the dashboard use is exported when a `# TYPE` line names it; a
/// counter's samples end in `_total` while its TYPE line may name it without.
fn exported(name: &str, types: &BTreeSet<String>) -> bool {
    types.contains(name)
        || name
            .strip_suffix("_total")
            .is_some_and(|n| types.contains(n))
}

#[test]
fn t182_metric_names_are_read_from_expressions() {
    let expr = r#"histogram_quantile(0.99, sum by (instance, le) (rate(sutra_log_fsync_duration_seconds_bucket{job="sutra", instance=~"$instance", code!="sutra_not_a_name"}[$__rate_interval]))) > 0.1 and on (instance) up{job='sutra'} == 1 or 5m_sutra_x - process_cpu_seconds_total + sutra_log_entries_per_sync_count"#;
    let got: Vec<_> = metric_names(expr).into_iter().collect();
    assert_eq!(
        got,
        [
            "process_cpu_seconds_total",
            "sutra_log_entries_per_sync",
            "sutra_log_fsync_duration_seconds",
            "up",
        ]
    );
    let types = type_names(
        "# HELP sutra_raft_term t\n# TYPE sutra_raft_term gauge\nsutra_raft_term 2\n\
         # TYPE sutra_raft_leader_changes counter\n# TYPE process_cpu_seconds_total counter\n",
    );
    assert!(exported("sutra_raft_term", &types));
    assert!(exported("sutra_raft_leader_changes_total", &types));
    assert!(exported("process_cpu_seconds_total", &types));
    assert!(!exported("sutra_raft_leader_changes_count", &types));
    assert!(!exported("sutra_log_bytes", &types));
}

/// `promtool check rules` accepts `alerts.yml` and `promtool test rules` passes
/// `alerts_test.yml`, which fires and does not fire every alert. Every dashboard query,
/// with Grafana's variables given values, is valid PromQL (checked by promtool as a
/// recording rule).
///
/// Why: a rule file Prometheus refuses, or an alert that never fires, is found only when
/// it is needed; a panel whose query does not parse shows nothing.
#[test]
fn t182_alert_rules_pass_promtool_and_the_dashboard_parses() -> Result<()> {
    let rules = promtool(&["check", "rules", "deploy/monitoring/alerts.yml"])?;
    println!("{rules}");
    let tests = promtool(&["test", "rules", "deploy/monitoring/alerts_test.yml"])?;
    println!("{tests}");

    let alerts = alert_queries()?;
    ensure!(!alerts.is_empty(), "alerts.yml has no alert");
    let queries = dashboard_queries()?;
    ensure!(!queries.is_empty(), "the dashboard has no query");
    let dir = tempfile::tempdir()?;
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        let expr = q
            .expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        ensure!(
            !expr.contains('$'),
            "{}: unknown variable in {expr}",
            q.place
        );
        file.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr)?
        ));
    }
    let path = dir.path().join("dashboard_queries.yml");
    std::fs::write(&path, file)?;
    promtool(&["check", "rules", path.to_str().context("temp path")?])?;
    Ok(())
}

/// Metric families a node leaves out of `/metrics` while they have no children (as the
/// Go client does), which the test gives children before it reads the names.
const LABELLED_ON_DEMAND: [&str; 3] = [
    "sutra_raft_follower_lag_entries",
    "sutra_raft_follower_last_ack_seconds",
    "sutra_alarm_active",
];

/// A free-disk watermark no disk reaches: the node raises NOSPACE at once.
const WATERMARK_ABOVE_ANY_DISK: &str = "1000000000000000000";

/// Every `sutra_*` and `process_*` metric the alert rules and the dashboard's panels
/// query is exported by real nodes: a `# TYPE` line names it in some node's `/metrics`.
/// A family with no children is left out of the exposition, so the test first makes
/// the labelled ones appear: three nodes (the leader reports its followers), writes (gRPC
/// requests, write stages, log syncs), and a follower restarted with a free-disk
/// watermark above its disk's size, which raises the NOSPACE alarm, so the next write is
/// refused. Every missing name is listed in one failure, with where it is used.
///
/// Why: a rule on a name no node exports never fires, and a panel on one stays empty;
/// nothing else would notice a renamed metric.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t182_alerts_and_dashboard_use_exported_metric_names() -> Result<()> {
    init_tracing();
    within("t182", Duration::from_secs(90), names()).await
}

async fn names() -> Result<()> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for q in alert_queries()?.into_iter().chain(dashboard_queries()?) {
        let names = metric_names(&q.expr);
        ensure!(
            !names.is_empty(),
            "{}: no metric name in {}",
            q.place,
            q.expr
        );
        for n in names {
            used.entry(n).or_default().insert(q.place.clone());
        }
    }
    ensure!(
        used.contains_key("up"),
        "no rule uses `up`: a node that cannot be scraped would page nobody"
    );

    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        ..ClusterOptions::default()
    })
    .await?;
    tracing::info!("--- writes, then a follower that raises NOSPACE");
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t182/", 20, 2).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = *cluster
        .ids()
        .iter()
        .find(|&&i| i != leader)
        .context("a follower")?;
    cluster.kill(follower)?;
    cluster.restart_with_args(
        follower,
        &["--min-free-disk-bytes", WATERMARK_ABOVE_ANY_DISK],
    )?;
    let mut sequence = 0;
    let refusal = wait_until(
        "a write refused for the alarm",
        Duration::from_secs(20),
        async || {
            sequence += 1;
            let leader = cluster.leader(Duration::from_secs(10)).await?;
            let mut c = cluster.client(leader, ClientRole::Writer)?;
            let id = format!("t182/refused-{sequence}");
            let req = PutConceptRequest {
                header: Some(WriteHeader {
                    client_id: "t182-refused".into(),
                    sequence,
                }),
                concept: Some(Concept {
                    id: id.clone(),
                    content: id.into_bytes(),
                    ..Concept::default()
                }),
                expected_version: None,
            };
            match c.storage.put_concept(req).await {
                Err(s) if s.code() == Code::ResourceExhausted => Ok(s.message().to_string()),
                other => bail!("not refused yet: {other:?}"),
            }
        },
    )
    .await?;
    tracing::info!(refusal, "refused");

    tracing::info!("--- the names in every node's /metrics");
    let types = wait_until(
        "the labelled families in /metrics",
        Duration::from_secs(20),
        async || {
            let mut types = BTreeSet::new();
            for id in cluster.ids() {
                let addr = cluster
                    .node(id)?
                    .metrics_addr
                    .clone()
                    .context("metrics_listen was asked for")?;
                let (code, body) = request(&addr, "GET", "/metrics").await?;
                ensure!(code == 200, "node {id} /metrics answered {code}");
                types.extend(type_names(&body));
            }
            let absent: Vec<_> = LABELLED_ON_DEMAND
                .iter()
                .filter(|n| !types.contains(**n))
                .collect();
            ensure!(absent.is_empty(), "no node exports {absent:?} yet");
            Ok(types)
        },
    )
    .await?;

    let missing: Vec<String> = used
        .iter()
        // `sutra_backup_*` comes from deploy/backup's textfile, not from the nodes.
        .filter(|(name, _)| {
            name.as_str() != "up" && !name.starts_with("sutra_backup_") && !exported(name, &types)
        })
        .map(|(name, places)| {
            format!(
                "  {name}: used by {}",
                places.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    tracing::info!(
        used = used.len(),
        exported = types.len(),
        missing = missing.len(),
        "metric names checked"
    );
    // The nodes did nothing wrong whatever is missing: no need for their logs.
    cluster.finish();
    if !missing.is_empty() {
        bail!(
            "{} of the {} metric names deploy/monitoring/ uses are not exported by a \
             node (no `# TYPE` line in its /metrics):\n{}",
            missing.len(),
            used.len() - 1,
            missing.join("\n")
        );
    }
    Ok(())
}

/// A Prometheus server in a temporary directory, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping `targets` as the job `sutra` every second and
    /// evaluating `rules` every second, on a port picked by binding `127.0.0.1:0`.
    async fn start(targets: &[String], rules: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let rules_path = dir.path().join("rules.yml");
        std::fs::write(&rules_path, rules)?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files: [{}]\n\
                 scrape_configs:\n  - job_name: sutra\n    static_configs:\n      - targets: {}\n",
                serde_json::to_string(&rules_path)?,
                serde_json::to_string(targets)?
            ),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(log.try_clone()?)
            .stderr(log);
        // Like the nodes, it dies with the test process, however that ends.
        process::die_with_parent(&mut cmd, process::Signal::Kill);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "prometheus is not installed: it evaluates deploy/monitoring/alerts.yml \
                 on live nodes (Debian package prometheus; scripts/deps.sh installs it)"
            ),
            Err(e) => return Err(e).context("starting prometheus"),
        };
        let mut p = Self { child, addr, dir };
        wait_until("prometheus ready", Duration::from_secs(30), async || {
            if let Some(status) = p.child.try_wait()? {
                bail!("prometheus exited with {status}:\n{}", p.log());
            }
            ensure!(get(&p.addr, "/-/ready").await?.0 == 200, "not ready");
            Ok(())
        })
        .await?;
        Ok(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/PATH` answered with status success: its `data`.
    async fn api(&self, path: &str) -> Result<Json> {
        let (code, body) = get(&self.addr, &format!("/api/v1/{path}")).await?;
        let v: Json =
            serde_json::from_str(&body).with_context(|| format!("{path}: {code} {body}"))?;
        ensure!(v["status"] == "success", "{path}: {code} {body}");
        Ok(v["data"].clone())
    }

    /// The alerts firing now, as `Alertname{label=value,...}` (labels sorted, no `job`).
    async fn firing(&self) -> Result<BTreeSet<String>> {
        let data = self.api("alerts").await?;
        Ok(data["alerts"]
            .as_array()
            .context("no alerts array")?
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                let labels = a["labels"].as_object().cloned().unwrap_or_default();
                let rest: Vec<String> = labels
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "job"))
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                    .collect();
                format!(
                    "{}{{{}}}",
                    labels["alertname"].as_str().unwrap_or("?"),
                    rest.join(",")
                )
            })
            .collect())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One GET to a monitoring listener or Prometheus: the status code and body.
async fn get(addr: &str, path: &str) -> Result<(u16, String)> {
    request(addr, "GET", path).await
}

/// Percent-encodes a query parameter.
fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Alerts whose condition is a fact about a healthy cluster, whatever the machine: none
/// of them may fire while three nodes serve and take writes. (Disk space, fsync latency,
/// acknowledgment delays and leader changes depend on the machine and its load.)
const QUIET_WHEN_HEALTHY: [&str; 8] = [
    "SutraNodeDown",
    "SutraMajorityDown",
    "SutraNoLeader",
    "SutraLeadersDisagree",
    "SutraApplyBehind",
    "SutraQuotaNearFull",
    "SutraAlarmActive",
    "SutraCertificateExpiring",
];

/// Real Prometheus scrapes three real nodes and evaluates `alerts.yml` (with its `for:`
/// durations taken out, so an alert fires at its first evaluation; alerts_test.yml
/// covers the durations): every rule evaluates without error and every dashboard query
/// is answered; while the cluster serves and takes writes, none of the alerts that judge
/// its state fires; a follower killed fires SutraNodeDown for it and SutraFollowerLagging
/// (`no_ack`) on the leader; restarted with a free-disk watermark above its disk, it
/// raises NOSPACE, which fires SutraAlarmActive for it, and SutraNodeDown clears.
///
/// Why: promtool's tests feed the rules series written by hand; only real nodes show
/// that the rules match the labels and values the nodes really export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t182_prometheus_evaluates_the_rules_on_live_nodes() -> Result<()> {
    init_tracing();
    within("t182", Duration::from_secs(120), live()).await
}

async fn live() -> Result<()> {
    let rules = std::fs::read_to_string(monitoring("alerts.yml"))?;
    let immediate: String = rules
        .lines()
        .filter(|l| !l.trim_start().starts_with("for:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        ..ClusterOptions::default()
    })
    .await?;
    let mut instance = BTreeMap::new();
    for id in cluster.ids() {
        let addr = cluster
            .node(id)?
            .metrics_addr
            .clone()
            .context("metrics_listen was asked for")?;
        instance.insert(id, addr);
    }
    let targets: Vec<String> = instance.values().cloned().collect();
    let prometheus = Prometheus::start(&targets, &immediate).await?;
    let result = scenario(&cluster, &prometheus, &instance).await;
    if result.is_err() {
        println!("prometheus log:\n{}", prometheus.log());
    } else {
        cluster.finish();
    }
    result
}

async fn scenario(
    cluster: &Cluster,
    prometheus: &Prometheus,
    instance: &BTreeMap<u64, String>,
) -> Result<()> {
    tracing::info!("--- writes while Prometheus scrapes; every rule evaluates");
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t182/live-", 100, 4).await?;
    let scraped = url_encoded(r#"count(rate(sutra_writes_applied_total{job="sutra"}[1m]))"#);
    wait_until(
        "every rule evaluated after the writes were scraped",
        Duration::from_secs(30),
        async || {
            let rate = prometheus.api(&format!("query?query={scraped}")).await?;
            ensure!(
                rate["result"][0]["value"][1] == "3",
                "not scraped twice on all three nodes yet: {rate}"
            );
            let data = prometheus.api("rules").await?;
            let rules: Vec<Json> = data["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            ensure!(!rules.is_empty(), "no rules loaded");
            for r in &rules {
                ensure!(
                    r["health"] == "ok",
                    "rule {} {}: {}",
                    r["name"],
                    r["health"],
                    r["lastError"]
                );
            }
            Ok(())
        },
    )
    .await?;
    for q in dashboard_queries()? {
        let expr = q
            .expr
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*");
        prometheus
            .api(&format!("query?query={}", url_encoded(&expr)))
            .await
            .with_context(|| format!("{}: {expr}", q.place))?;
    }
    let firing = prometheus.firing().await?;
    let loud: Vec<_> = firing
        .iter()
        .filter(|a| {
            QUIET_WHEN_HEALTHY
                .iter()
                .any(|n| a.starts_with(&format!("{n}{{")))
        })
        .collect();
    ensure!(loud.is_empty(), "firing on a healthy cluster: {loud:?}");
    tracing::info!(?firing, "healthy");

    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = *cluster
        .ids()
        .iter()
        .find(|&&i| i != leader)
        .context("a follower")?;
    tracing::info!(leader, follower, "--- the follower killed");
    cluster.kill(follower)?;
    let down = format!(
        "SutraNodeDown{{instance={},severity=warning}}",
        instance[&follower]
    );
    let silent = format!(
        "SutraFollowerLagging{{cause=no_ack,follower={follower},instance={},severity=warning}}",
        instance[&leader]
    );
    wait_until(
        "the killed follower's alerts",
        Duration::from_secs(30),
        async || {
            let firing = prometheus.firing().await?;
            ensure!(
                firing.contains(&down) && firing.contains(&silent),
                "firing: {firing:?}"
            );
            Ok(())
        },
    )
    .await?;

    tracing::info!("--- restarted with a watermark above its disk: NOSPACE");
    cluster.restart_with_args(
        follower,
        &["--min-free-disk-bytes", WATERMARK_ABOVE_ANY_DISK],
    )?;
    let alarm = format!(
        "SutraAlarmActive{{instance={},kind=NOSPACE,severity=critical}}",
        instance[&follower]
    );
    wait_until("the alarm's alert", Duration::from_secs(30), async || {
        let firing = prometheus.firing().await?;
        ensure!(
            firing.contains(&alarm) && !firing.contains(&down),
            "firing: {firing:?}"
        );
        Ok(())
    })
    .await?;
    Ok(())
}

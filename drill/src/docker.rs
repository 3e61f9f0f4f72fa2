//! [`DockerDriver`]: faults for the compose cluster of `deploy/docker-compose.yml`,
//! through the `docker` CLI. Node N is the compose service `nodeN` of one compose
//! project; its client endpoint is the host port Docker publishes for 50051, so the
//! drill's clients run on the host.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{DrillError, FaultDriver, Scenario};

/// How long one `docker` command may take (`docker stop` waits up to [`STOP_GRACE`]).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The grace period `docker stop` gives a node before SIGKILL (handover, checkpoint).
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How long a killed container may take to be reported as not running.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// The client API port inside the containers.
const API_PORT: u16 = 50051;

/// One node's container.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    id: u64,
    container: String,
    api: String,
}

/// Drives the compose cluster of `deploy/docker-compose.yml` (project `project`).
///
/// - `kill`: `docker kill` (SIGKILL), then waits until the container no longer runs;
/// - `stop`: `docker stop -t 30` (SIGTERM, then SIGKILL after 30 s);
/// - `restart`: `docker start` (same container: data volume, published port, identity);
///   a no-op for a running node;
/// - `pause`/`resume`: `docker pause`/`docker unpause` (the cgroup freezer);
/// - `isolate`: `docker network disconnect` of the node from the project's network, which
///   cuts its peer links both ways; unlike the link proxies it also cuts the published
///   client port, so clients do not reach the isolated node either;
/// - `heal`: `docker network connect --alias nodeN` of every disconnected node, so its
///   compose host name resolves for the peers again.
///
/// The published host ports must stay the same when a container starts again, so the
/// compose file must publish fixed ports (`SUTRA_PORT_N`, not `0`): `restart` fails
/// naming both ports when Docker picked another one.
#[derive(Debug)]
pub struct DockerDriver {
    project: String,
    docker: PathBuf,
    network: String,
    nodes: Vec<Node>,
    /// Nodes `isolate` disconnected and `heal` has not reconnected yet.
    isolated: Mutex<BTreeSet<u64>>,
}

impl DockerDriver {
    /// A driver for the compose project `project`, running `docker` (default:
    /// `$SUTRA_DOCKER_BIN`, else `docker` on the `PATH`). Finds every `nodeN` service's
    /// container, its published client port and the project's network; every node must
    /// have a container (running or not) with a published port.
    pub async fn open(project: &str, docker: Option<PathBuf>) -> Result<Self, DrillError> {
        let docker = docker
            .or_else(|| std::env::var_os("SUTRA_DOCKER_BIN").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("docker"));
        let bad = |m: String| DrillError::Config(format!("compose project {project}: {m}"));
        let listed = run(&docker, &ps_args(project)).await.map_err(bad)?;
        let services = parse_services(&listed);
        if services.is_empty() {
            return Err(bad(format!(
                "no container of a nodeN service (is it up? `docker compose -p {project} ps`)"
            )));
        }
        let mut nodes = Vec::new();
        for (id, container) in services {
            let out = run(&docker, &port_args(&container))
                .await
                .map_err(|e| bad(format!("node{id}: {e}")))?;
            let api = parse_port(&out).ok_or_else(|| {
                bad(format!(
                    "node{id}: no published host port for {API_PORT} in {out:?}"
                ))
            })?;
            nodes.push(Node { id, container, api });
        }
        let out = run(&docker, &networks_args(&nodes[0].container))
            .await
            .map_err(bad)?;
        let network = pick_network(&out, project).ok_or_else(|| {
            bad(format!(
                "node{} is on no network of the project: {out:?}",
                nodes[0].id
            ))
        })?;
        Ok(Self {
            project: project.to_string(),
            docker,
            network,
            nodes,
            isolated: Mutex::new(BTreeSet::new()),
        })
    }

    /// The project's network the nodes talk on.
    pub fn network(&self) -> &str {
        &self.network
    }

    fn node(&self, id: u64) -> Result<&Node, DrillError> {
        self.nodes.iter().find(|n| n.id == id).ok_or_else(|| {
            fault(
                id,
                format!("no service node{id} in project {}", self.project),
            )
        })
    }

    async fn docker(&self, id: u64, args: &[String]) -> Result<String, DrillError> {
        run(&self.docker, args).await.map_err(|e| fault(id, e))
    }

    /// `docker <verb> <node id's container>`.
    async fn on_container(&self, id: u64, verb: &str) -> Result<String, DrillError> {
        let c = self.node(id)?.container.clone();
        self.docker(id, &[verb.to_string(), c]).await
    }

    async fn running(&self, id: u64) -> Result<bool, DrillError> {
        let c = self.node(id)?.container.clone();
        let out = self.docker(id, &state_args(&c)).await?;
        Ok(out.trim() == "true")
    }
}

fn fault(node: u64, message: String) -> DrillError {
    DrillError::Fault { node, message }
}

/// Runs `docker args...` (bounded by [`COMMAND_TIMEOUT`]); its stdout, or a one-line
/// reason naming the command.
async fn run(docker: &PathBuf, args: &[String]) -> Result<String, String> {
    let line = format!("{} {}", docker.display(), args.join(" "));
    let out = tokio::process::Command::new(docker)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(COMMAND_TIMEOUT, out).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("{line}: {e}")),
        Err(_) => return Err(format!("{line}: no answer within {COMMAND_TIMEOUT:?}")),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no output").trim();
        return Err(format!("{line} failed ({}): {last}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Every container of the project (running or not): `<id> <service>` per line.
fn ps_args(project: &str) -> Vec<String> {
    strings(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
        "--format",
        "{{.ID}} {{.Label \"com.docker.compose.service\"}}",
    ])
}

fn port_args(container: &str) -> Vec<String> {
    strings(&["port", container, &API_PORT.to_string()])
}

fn networks_args(container: &str) -> Vec<String> {
    strings(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}\n{{end}}",
        container,
    ])
}

fn state_args(container: &str) -> Vec<String> {
    strings(&["inspect", "-f", "{{.State.Running}}", container])
}

fn stop_args(container: &str) -> Vec<String> {
    strings(&["stop", "-t", &STOP_GRACE.as_secs().to_string(), container])
}

fn disconnect_args(network: &str, container: &str) -> Vec<String> {
    strings(&["network", "disconnect", network, container])
}

/// Reconnects with the compose service name as the alias, so `nodeN` resolves again.
fn connect_args(network: &str, container: &str, id: u64) -> Vec<String> {
    strings(&[
        "network",
        "connect",
        "--alias",
        &format!("node{id}"),
        network,
        container,
    ])
}

/// `(id, container)` of every `nodeN` service in `docker ps` output (`<id> <service>`
/// lines), by id.
fn parse_services(out: &str) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = out
        .lines()
        .filter_map(|l| {
            let (container, service) = l.trim().split_once(' ')?;
            let id = service.trim().strip_prefix("node")?.parse().ok()?;
            Some((id, container.to_string()))
        })
        .collect();
    v.sort();
    v.dedup_by_key(|(id, _)| *id);
    v
}

/// The host endpoint in `docker port <c> 50051` output (`0.0.0.0:50061`,
/// `127.0.0.1:50061`, `[::]:50061`, one per line): an IPv4 one first, the wildcard
/// addresses as loopback.
fn parse_port(out: &str) -> Option<String> {
    let addrs: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = addrs
        .iter()
        .find(|a| !a.starts_with('['))
        .or(addrs.first())?;
    let (host, port) = pick.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = match host {
        "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    Some(format!("{host}:{port}"))
}

/// The network to cut: the one compose made for the project (`<project>_...`), else the
/// only one.
fn pick_network(out: &str, project: &str) -> Option<String> {
    let nets: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    nets.iter()
        .find(|n| n.starts_with(&format!("{project}_")))
        .or(if nets.len() == 1 { nets.first() } else { None })
        .map(|n| n.to_string())
}

impl FaultDriver for DockerDriver {
    fn describe(&self) -> String {
        format!("the compose project {}", self.project)
    }

    fn node_ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    fn api_endpoint(&self, id: u64) -> String {
        self.node(id).map(|n| n.api.clone()).unwrap_or_default()
    }

    fn supports(&self, _scenario: Scenario) -> bool {
        true
    }

    async fn kill(&self, id: u64) -> Result<(), DrillError> {
        self.on_container(id, "kill").await?;
        let deadline = Instant::now() + KILL_WAIT;
        while self.running(id).await? {
            if Instant::now() > deadline {
                return Err(fault(
                    id,
                    format!("still running {KILL_WAIT:?} after docker kill"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn stop(&self, id: u64) -> Result<(), DrillError> {
        let c = self.node(id)?.container.clone();
        self.docker(id, &stop_args(&c)).await.map(|_| ())
    }

    async fn restart(&self, id: u64) -> Result<(), DrillError> {
        if self.running(id).await? {
            return Ok(());
        }
        self.on_container(id, "start").await?;
        let node = self.node(id)?;
        let out = self.docker(id, &port_args(&node.container)).await?;
        match parse_port(&out) {
            Some(api) if api == node.api => Ok(()),
            other => Err(fault(
                id,
                format!(
                    "restarted with host port {} instead of {}: publish fixed ports (SUTRA_PORT_{id}), not 0",
                    other.as_deref().unwrap_or("none"),
                    node.api
                ),
            )),
        }
    }

    async fn pause(&self, id: u64) -> Result<(), DrillError> {
        self.on_container(id, "pause").await.map(|_| ())
    }

    async fn resume(&self, id: u64) -> Result<(), DrillError> {
        self.on_container(id, "unpause").await.map(|_| ())
    }

    async fn isolate(&self, id: u64) -> Result<(), DrillError> {
        let c = self.node(id)?.container.clone();
        self.docker(id, &disconnect_args(&self.network, &c)).await?;
        self.isolated.lock().expect("isolated lock").insert(id);
        Ok(())
    }

    async fn heal(&self) -> Result<(), DrillError> {
        let ids: Vec<u64> = self
            .isolated
            .lock()
            .expect("isolated lock")
            .iter()
            .copied()
            .collect();
        for id in ids {
            let c = self.node(id)?.container.clone();
            self.docker(id, &connect_args(&self.network, &c, id))
                .await?;
            self.isolated.lock().expect("isolated lock").remove(&id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_arguments() {
        assert_eq!(ps_args("p")[3], "label=com.docker.compose.project=p");
        assert_eq!(port_args("abc"), ["port", "abc", "50051"]);
        assert_eq!(stop_args("abc"), ["stop", "-t", "30", "abc"]);
        assert_eq!(
            disconnect_args("p_sutra", "abc"),
            ["network", "disconnect", "p_sutra", "abc"]
        );
        assert_eq!(
            connect_args("p_sutra", "abc", 3),
            ["network", "connect", "--alias", "node3", "p_sutra", "abc"]
        );
        assert_eq!(
            state_args("abc"),
            ["inspect", "-f", "{{.State.Running}}", "abc"]
        );
    }

    #[test]
    fn docker_port_output_parses() {
        assert_eq!(
            parse_port("127.0.0.1:50061\n").as_deref(),
            Some("127.0.0.1:50061")
        );
        assert_eq!(
            parse_port("[::]:50062\n0.0.0.0:50062\n").as_deref(),
            Some("127.0.0.1:50062")
        );
        assert_eq!(parse_port("[::]:50063\n").as_deref(), Some("[::1]:50063"));
        assert_eq!(parse_port(""), None);
        assert_eq!(parse_port("Error: no public port\n"), None);
    }

    #[test]
    fn compose_services_and_networks_parse() {
        let out = "c3 node3\nc1 node1\ncc certs\nc2 node2\n\n";
        assert_eq!(
            parse_services(out),
            [(1, "c1".into()), (2, "c2".into()), (3, "c3".into())]
        );
        assert!(parse_services("cc certs\n").is_empty());
        assert_eq!(
            pick_network("bridge\np_sutra\n", "p").as_deref(),
            Some("p_sutra")
        );
        assert_eq!(pick_network("custom\n", "p").as_deref(), Some("custom"));
        assert_eq!(pick_network("a\nb\n", "p"), None);
        assert_eq!(pick_network("", "p"), None);
    }
}

//! Writes (or completes) a development certificate directory.
//!
//! ```text
//! cargo run -p sutra-certs --example gen_dev_certs -- \
//!     --dir certs/dev --nodes 1,2,3 [--host sutra.example] [--client alice=admin] [--force]
//! ```
//!
//! Arguments are parsed by hand so the crate needs no CLI dependency; the node and the
//! `sutra` CLI are expected to grow a proper subcommand on top of the same functions.

use std::path::PathBuf;
use std::process::ExitCode;

use sutra_certs::{Role, generate_dev_set};

const USAGE: &str = "usage: gen_dev_certs --dir DIR [--nodes 1,2,3] [--host NAME_OR_IP]... \
                     [--client NAME=read|write|admin]... [--force]";

struct Args {
    dir: PathBuf,
    nodes: Vec<u64>,
    hosts: Vec<String>,
    clients: Vec<(String, Role)>,
    force: bool,
}

fn parse() -> Result<Args, String> {
    let mut dir = None;
    let mut nodes = vec![1, 2, 3];
    let mut hosts = Vec::new();
    let mut clients = Vec::new();
    let mut force = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--nodes" => {
                // An empty list is allowed: `--nodes ""` writes just the CA.
                nodes = value()?
                    .split(',')
                    .filter(|n| !n.trim().is_empty())
                    .map(|n| {
                        n.trim()
                            .parse::<u64>()
                            .map_err(|e| format!("--nodes {n}: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--host" => hosts.push(value()?),
            "--client" => {
                let spec = value()?;
                let (name, role) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--client {spec}: expected NAME=ROLE"))?;
                let role = role.parse::<Role>().map_err(|e| e.to_string())?;
                clients.push((name.to_owned(), role));
            }
            "--force" => force = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let dir = dir.ok_or_else(|| format!("--dir is required\n{USAGE}"))?;
    Ok(Args {
        dir,
        nodes,
        hosts,
        clients,
        force,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let hosts: Vec<&str> = args.hosts.iter().map(String::as_str).collect();
    let clients: Vec<(&str, Role)> = args
        .clients
        .iter()
        .map(|(name, role)| (name.as_str(), *role))
        .collect();
    match generate_dev_set(&args.dir, &args.nodes, &hosts, &clients, args.force) {
        Ok(set) => {
            let verb = if set.reused_ca { "reused" } else { "created" };
            println!("{verb} CA {}", set.ca.cert.display());
            for path in &set.created {
                println!("wrote {}", path.display());
            }
            if set.created.is_empty() {
                println!("nothing to do: every requested certificate exists");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

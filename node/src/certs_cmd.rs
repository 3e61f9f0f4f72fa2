//! `sutra-node certs`: generate or complete a development certificate directory.

use std::path::PathBuf;

use sutra_certs::Role;

/// Arguments of `sutra-node certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Directory for the CA and the certificates.
    #[arg(long, default_value = "certs/dev")]
    pub dir: PathBuf,
    /// Node ids to issue certificates for.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub nodes: Vec<u64>,
    /// Extra DNS names or IP addresses for every node certificate.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Client certificates, `NAME=ROLE` with ROLE one of read, write, admin.
    #[arg(long = "client", default_values = ["admin=admin", "writer=write", "reader=read"])]
    pub clients: Vec<String>,
    /// Replace existing files (a new CA: every old certificate stops working).
    #[arg(long)]
    pub force: bool,
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    Ok(match s {
        "read" => Role::Read,
        "write" => Role::Write,
        "admin" => Role::Admin,
        other => anyhow::bail!("unknown role {other:?}: expected read, write or admin"),
    })
}

/// Runs the command.
pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    let clients = args
        .clients
        .iter()
        .map(|c| {
            let (name, role) = c
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("{c:?}: expected NAME=ROLE"))?;
            Ok((name, parse_role(role)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let hosts: Vec<&str> = args.hosts.iter().map(String::as_str).collect();
    let set = sutra_certs::generate_dev_set(&args.dir, &args.nodes, &hosts, &clients, args.force)?;
    for path in &set.created {
        println!("created {}", path.display());
    }
    if set.created.is_empty() {
        println!(
            "{} already holds every requested certificate",
            args.dir.display()
        );
    }
    println!("CA: {}", set.ca.cert.display());
    Ok(())
}

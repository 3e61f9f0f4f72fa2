//! Where the cluster is and how to reach it: endpoints and TLS files from the flags, the
//! `SUTRA_*` variables or a `cluster.json`, made into an SDK client and a connector.

use sutra_client::{Client, ClientConfig, Connector, TlsFiles};

use crate::args::Cli;

/// Everything a command needs to reach the cluster.
#[derive(Debug)]
pub struct Connection {
    /// The client API endpoints, in the order given.
    pub endpoints: Vec<String>,
    pub tls: TlsFiles,
    /// The SDK configuration, for commands that make clients of their own (`bench`).
    pub config: ClientConfig,
    pub client: Client,
    /// Per-node connections, for the cluster service.
    pub connector: Connector,
}

/// Reads the settings and opens the client. Flags and variables win over the cluster
/// file; a setting given nowhere is an error naming where it may be given.
pub fn connect(cli: &Cli) -> anyhow::Result<Connection> {
    let mut endpoints = cli.endpoints.clone();
    let (mut ca, mut cert, mut key) = (cli.ca.clone(), cli.cert.clone(), cli.key.clone());
    if let Some(path) = &cli.cluster_file {
        let c = sutra_devcluster::ClusterFile::read(path)?;
        if endpoints.is_empty() {
            endpoints = c.endpoints();
        }
        ca = ca.or(Some(c.ca));
        cert = cert.or(Some(c.admin_cert));
        key = key.or(Some(c.admin_key));
    }
    anyhow::ensure!(
        !endpoints.is_empty(),
        "no endpoints: give --endpoints, SUTRA_ENDPOINTS or --cluster-file"
    );
    let missing = |what: &str| {
        anyhow::anyhow!(
            "no {what}: give --{what}, SUTRA_{} or --cluster-file",
            what.to_uppercase()
        )
    };
    let tls = TlsFiles {
        ca: ca.ok_or_else(|| missing("ca"))?,
        cert: cert.ok_or_else(|| missing("cert"))?,
        key: key.ok_or_else(|| missing("key"))?,
    };
    let mut config = ClientConfig::new(endpoints.clone(), tls.clone());
    config.request_timeout = cli.timeout;
    config.server_name = cli.server_name.clone();
    let client = Client::new(config.clone())?;
    let connector = Connector::new(&tls, cli.server_name.as_deref())?;
    Ok(Connection {
        endpoints,
        tls,
        config,
        client,
        connector,
    })
}

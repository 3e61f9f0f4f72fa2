//! A real tonic server with `server_tls` on an ephemeral loopback port, called by
//! clients built with `client_tls`. The server runs grpc.health.v1 behind an
//! interceptor that calls `peer_identity` and records what it saw, so each phase can
//! check both the outcome of the call and the identity the server derived.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sutra_certs::{
    CertPaths, DevCerts, Identity, Role, client_tls, generate_dev_set, peer_identity, server_tls,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A bound on every connect and call, so a broken handshake fails the test instead
/// of hanging it. It is a limit, not a wait: passing calls take milliseconds.
const CALL_LIMIT: Duration = Duration::from_secs(20);

struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Identity>>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    /// Serves health checks as node 1 of `set`. The listener is bound before this
    /// returns, so clients can connect at once: the kernel queues them until the
    /// server task accepts.
    async fn start(set: &DevCerts) -> Self {
        Self::start_with(&set.ca.cert, &set.nodes[&1]).await
    }

    /// Serves with the trust anchors in `ca` (one CA or a bundle) and `node`'s pair.
    async fn start_with(ca: &Path, node: &CertPaths) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("bound address");
        let tls = server_tls(ca, &node.cert, &node.key).expect("server TLS config");

        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let interceptor = move |req: tonic::Request<()>| {
            let identity = peer_identity(&req)?;
            recorder.lock().expect("recorder lock").push(identity);
            Ok(req)
        };
        let (_reporter, health) = tonic_health::server::health_reporter();
        let router = Server::builder()
            .tls_config(tls)
            .expect("tonic accepts the config")
            .add_service(InterceptedService::new(health, interceptor));
        let task = tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
        Self { addr, seen, task }
    }

    fn seen(&self) -> Vec<Identity> {
        self.seen.lock().expect("recorder lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
enum Failure {
    Connect(tonic::transport::Error),
    Call(tonic::Status),
}

/// One health check over a fresh connection.
async fn check(addr: SocketAddr, tls: ClientTlsConfig) -> Result<(), Failure> {
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .expect("valid URI")
        .tls_config(tls)
        .map_err(Failure::Connect)?
        .connect_timeout(CALL_LIMIT)
        .timeout(CALL_LIMIT)
        .connect()
        .await
        .map_err(Failure::Connect)?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(Failure::Call)?;
    assert_eq!(reply.into_inner().status(), ServingStatus::Serving);
    Ok(())
}

/// The call must have been stopped by TLS. If it reached the interceptor instead
/// (UNAUTHENTICATED / PERMISSION_DENIED), the server let an unverified client in.
fn assert_refused_by_tls(result: Result<(), Failure>, what: &str) {
    match result {
        Ok(()) => panic!("{what}: the call succeeded"),
        Err(Failure::Connect(e)) => tracing::info!(error = %e, "{what}: refused at connect"),
        Err(Failure::Call(status)) => {
            assert!(
                !matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ),
                "{what}: the handshake succeeded and only the interceptor refused: {status:?}"
            );
            tracing::info!(?status, "{what}: refused on the first call");
        }
    }
}

fn tls_with(set: &DevCerts, client: &CertPaths, domain: &str) -> ClientTlsConfig {
    client_tls(&set.ca.cert, &client.cert, &client.key, domain).expect("client TLS config")
}

fn dev_set(dir: &Path) -> DevCerts {
    generate_dev_set(dir, &[1, 2], &[], &[("reader", Role::Read)], false).expect("dev set")
}

/// Mutual TLS end to end: the right certificates get through and are identified;
/// a foreign CA, a missing certificate, a wrong server name and a CA-signed
/// certificate without a Sutra identity are all refused, each at the right layer.
#[tokio::test]
async fn t10_mutual_tls_and_peer_identity() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let set = dev_set(&tmp.path().join("cluster"));
    let foreign = dev_set(&tmp.path().join("foreign"));
    let server = TestServer::start(&set).await;

    tracing::info!("--- (a) node 2 calls node 1: the server sees Node(2)");
    check(server.addr, tls_with(&set, &set.nodes[&2], "node1"))
        .await
        .expect("a node of the same CA gets through");
    assert_eq!(server.seen(), [Identity::Node(2)]);

    tracing::info!("--- (d) a read client: the server sees Client{{reader, Read}}");
    check(
        server.addr,
        tls_with(&set, &set.clients["reader"], "localhost"),
    )
    .await
    .expect("a client of the same CA gets through");
    let reader = server.seen().pop().expect("recorded");
    assert_eq!(
        reader,
        Identity::Client {
            name: "reader".into(),
            role: Role::Read
        }
    );
    assert!(reader.allows_client_rpc(Role::Read));
    assert!(!reader.allows_client_rpc(Role::Write));
    assert!(!reader.allows_peer_rpc());

    tracing::info!("--- the server certificate is also valid for its IP SAN");
    check(
        server.addr,
        tls_with(&set, &set.clients["reader"], "127.0.0.1"),
    )
    .await
    .expect("127.0.0.1 is in the node certificate");
    let before = server.seen().len();

    tracing::info!("--- (b) a client certificate from another CA is refused");
    // The client trusts our CA, so only the server's check of the client can fail.
    let other_ca_client = client_tls(
        &set.ca.cert,
        &foreign.nodes[&2].cert,
        &foreign.nodes[&2].key,
        "node1",
    )
    .expect("client TLS config");
    assert_refused_by_tls(check(server.addr, other_ca_client).await, "foreign CA");

    tracing::info!("--- (c) a client without a certificate is refused");
    let ca_pem = std::fs::read(&set.ca.cert).expect("CA readable");
    let anonymous = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("node1");
    assert_refused_by_tls(check(server.addr, anonymous).await, "no client certificate");

    tracing::info!("--- the client refuses a server that is not the host it asked for");
    let wrong_name = tls_with(&set, &set.nodes[&2], "node9");
    assert!(
        check(server.addr, wrong_name).await.is_err(),
        "node9 is not in node 1's SANs"
    );

    tracing::info!("--- the client refuses a server signed by another CA");
    let distrusting = client_tls(
        &foreign.ca.cert,
        &set.nodes[&2].cert,
        &set.nodes[&2].key,
        "node1",
    )
    .expect("client TLS config");
    assert!(check(server.addr, distrusting).await.is_err());
    assert_eq!(
        server.seen().len(),
        before,
        "no refused client reached the service"
    );

    tracing::info!("--- a CA-signed certificate without a Sutra identity: PERMISSION_DENIED");
    let stranger = issue_without_identity(&set, tmp.path());
    match check(server.addr, tls_with(&set, &stranger, "node1")).await {
        Err(Failure::Call(status)) => assert_eq!(status.code(), tonic::Code::PermissionDenied),
        other => panic!("expected PERMISSION_DENIED, got {other:?}"),
    }
    assert_eq!(server.seen().len(), before);
}

/// A client certificate signed by the cluster CA that carries no `sutra://` URI,
/// as an operator's own tooling might produce by mistake.
fn issue_without_identity(set: &DevCerts, dir: &Path) -> CertPaths {
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&set.ca.key).unwrap()).unwrap();
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(&set.ca.cert).unwrap(), ca_key)
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["stranger".to_owned()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let paths = CertPaths::client(dir, "stranger");
    std::fs::write(&paths.cert, cert.pem()).unwrap();
    std::fs::write(&paths.key, key.serialize_pem()).unwrap();
    paths
}

/// The CA rotation of the README, over real connections: while `ca.pem` is a bundle of
/// the old and the new CA, leaves of both are accepted in both directions; once the
/// old CA is dropped, its leaves are refused.
#[tokio::test]
async fn t20_ca_rotation_bundle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = dev_set(&tmp.path().join("old"));
    let new = dev_set(&tmp.path().join("new"));
    let bundle = tmp.path().join("bundle.pem");
    let pem = |p: &Path| std::fs::read_to_string(p).expect("CA readable");
    std::fs::write(&bundle, pem(&new.ca.cert) + &pem(&old.ca.cert)).expect("write bundle");

    tracing::info!("--- step 2: an old-CA node trusting the bundle accepts both generations");
    {
        let server = TestServer::start_with(&bundle, &old.nodes[&1]).await;
        for client in [&old.nodes[&2], &new.nodes[&2]] {
            let tls = client_tls(&bundle, &client.cert, &client.key, "node1").expect("client TLS");
            check(server.addr, tls)
                .await
                .expect("either generation gets through");
        }
        assert_eq!(server.seen(), [Identity::Node(2), Identity::Node(2)]);
    }

    tracing::info!("--- step 3: a new-CA node trusting the bundle accepts old-CA peers too");
    {
        let server = TestServer::start_with(&bundle, &new.nodes[&1]).await;
        let tls = client_tls(&bundle, &old.nodes[&2].cert, &old.nodes[&2].key, "node1")
            .expect("client TLS");
        check(server.addr, tls)
            .await
            .expect("an old-CA peer still gets through");
    }

    tracing::info!("--- step 4: with the old CA dropped, its leaves are refused");
    {
        let server = TestServer::start_with(&new.ca.cert, &new.nodes[&1]).await;
        let tls = client_tls(&bundle, &old.nodes[&2].cert, &old.nodes[&2].key, "node1")
            .expect("client TLS");
        assert_refused_by_tls(check(server.addr, tls).await, "old CA after the switch");
        let tls = client_tls(
            &new.ca.cert,
            &new.nodes[&2].cert,
            &new.nodes[&2].key,
            "node1",
        )
        .expect("client TLS");
        check(server.addr, tls)
            .await
            .expect("a new-CA peer gets through");
        assert_eq!(server.seen(), [Identity::Node(2)]);
    }
}

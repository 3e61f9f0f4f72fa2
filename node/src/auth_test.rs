//! Tests of `auth.rs`: the method table against the generated services, the decisions
//! of the role check, and session owners.

use std::collections::BTreeSet;

use prost::Message as _;
use sutra_proto::cluster::cluster_service_server::ClusterServiceServer;
use sutra_proto::storage::storage_service_server::StorageServiceServer;
use tonic::server::NamedService;

use super::*;
use crate::service::cluster::ClusterApi;
use crate::service::storage::StorageApi;

/// The service of the peer port, which `sutra_raft::PeerAuth` guards instead.
const PEER_SERVICE: &str = "sutra.raft.RaftService";

/// Every method of every service in the descriptor set, as `/package.Service/Method`,
/// by service name.
fn described_methods() -> Vec<(String, String)> {
    let set = prost_types::FileDescriptorSet::decode(sutra_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut out = Vec::new();
    for file in set.file {
        let package = file.package();
        for service in &file.service {
            let name = format!("{package}.{}", service.name());
            for method in &service.method {
                out.push((name.clone(), format!("/{name}/{}", method.name())));
            }
        }
    }
    out
}

/// A new RPC without a role fails here, and so does a table entry naming no RPC.
#[test]
fn every_client_method_has_a_role_and_every_role_a_method() {
    let client_services = [
        <StorageServiceServer<StorageApi> as NamedService>::NAME,
        <ClusterServiceServer<ClusterApi> as NamedService>::NAME,
    ];
    let described = described_methods();
    let mut client_paths = BTreeSet::new();
    for (service, path) in &described {
        if service == PEER_SERVICE {
            continue;
        }
        assert!(
            client_services.contains(&service.as_str()),
            "{service} is neither a client service behind the role check nor the peer service"
        );
        assert!(
            required_role(path).is_some(),
            "{path} has no role in auth::METHOD_ROLES"
        );
        client_paths.insert(path.as_str());
    }
    assert!(client_paths.len() >= 18, "{client_paths:?}");
    for (path, _) in METHOD_ROLES {
        assert!(
            client_paths.contains(path),
            "{path} is not an RPC of the client API"
        );
    }
    let distinct: BTreeSet<_> = METHOD_ROLES.iter().map(|(p, _)| p).collect();
    assert_eq!(distinct.len(), METHOD_ROLES.len(), "a path listed twice");
}

#[test]
fn the_documented_roles() {
    assert_eq!(
        required_role("/sutra.storage.StorageService/Search"),
        Some(Role::Read)
    );
    assert_eq!(
        required_role("/sutra.storage.StorageService/Batch"),
        Some(Role::Write)
    );
    assert_eq!(
        required_role("/sutra.storage.StorageService/Flush"),
        Some(Role::Admin)
    );
    assert_eq!(
        required_role("/sutra.cluster.ClusterService/Status"),
        Some(Role::Read)
    );
    assert_eq!(
        required_role("/sutra.cluster.ClusterService/TriggerSnapshot"),
        Some(Role::Admin)
    );
    assert_eq!(required_role("/grpc.health.v1.Health/Check"), None);
}

/// Presents a fixed identity, or none (as a TLS connection without a certificate would).
#[derive(Debug, Clone)]
struct Presents(Option<Identity>);

impl Identify for Presents {
    fn identify(&self, _: &mut http::Extensions) -> Result<Option<Identity>, Status> {
        self.0
            .clone()
            .map(Some)
            .ok_or_else(|| Status::unauthenticated("no certificate"))
    }
}

fn client(role: Role) -> Presents {
    Presents(Some(Identity::Client {
        name: "alice".into(),
        role,
    }))
}

#[test]
fn authorize_applies_the_table_and_nesting() {
    let put = "/sutra.storage.StorageService/PutConcept";
    let get = "/sutra.storage.StorageService/GetConcept";
    let flush = "/sutra.storage.StorageService/Flush";
    let mut ext = http::Extensions::new();
    let code = |who: &Presents, path: &str, ext: &mut http::Extensions| {
        authorize(who, path, ext).map(|_| ()).map_err(|s| s.code())
    };
    assert_eq!(code(&client(Role::Read), get, &mut ext), Ok(()));
    assert_eq!(
        code(&client(Role::Read), put, &mut ext),
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(code(&client(Role::Write), put, &mut ext), Ok(()));
    assert_eq!(
        code(&client(Role::Write), flush, &mut ext),
        Err(tonic::Code::PermissionDenied)
    );
    assert_eq!(code(&client(Role::Admin), flush, &mut ext), Ok(()));
    let node = Presents(Some(Identity::Node(2)));
    assert_eq!(code(&node, put, &mut ext), Ok(()), "a node relays writes");
    assert_eq!(
        code(&node, flush, &mut ext),
        Err(tonic::Code::PermissionDenied),
        "a node is never admin"
    );
    assert_eq!(
        code(&Presents(None), get, &mut ext),
        Err(tonic::Code::Unauthenticated)
    );
    assert_eq!(
        code(
            &client(Role::Admin),
            "/sutra.storage.StorageService/NoSuchMethod",
            &mut ext
        ),
        Err(tonic::Code::PermissionDenied),
        "a method without a role is refused, whoever calls"
    );
    let caller = authorize(&client(Role::Write), put, &mut ext).unwrap();
    assert_eq!(
        caller.0.as_deref(),
        Some(&Identity::Client {
            name: "alice".into(),
            role: Role::Write
        })
    );
    let anonymous = authorize(&Authorizer::Insecure, flush, &mut ext).unwrap();
    assert!(
        anonymous.0.is_none(),
        "--insecure lets everyone in, unnamed"
    );
}

#[test]
fn tls_without_connect_info_is_unauthenticated() {
    let mut ext = http::Extensions::new();
    ext.insert(7u32);
    let e = authorize(
        &Authorizer::Tls,
        "/sutra.storage.StorageService/GetConcept",
        &mut ext,
    )
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    assert_eq!(ext.get::<u32>(), Some(&7), "the extensions are given back");
}

#[test]
fn session_owners_tell_callers_apart() {
    let client = |name: &str, role| Identity::Client {
        name: name.into(),
        role,
    };
    assert_eq!(
        session_owner(Some(&client("alice", Role::Write))).as_deref(),
        Some("alice")
    );
    assert_eq!(
        session_owner(Some(&client("alice", Role::Admin))),
        session_owner(Some(&client("alice", Role::Write))),
        "one name is one client whatever its role"
    );
    assert_ne!(
        session_owner(Some(&client("node-1", Role::Write))),
        session_owner(Some(&Identity::Node(1)))
    );
    assert_eq!(session_owner(None), None);
}

//! Who may call what on the client port. Identities come from client certificates
//! (mutual TLS): a URI SAN `sutra://client/<role>/<name>` or `sutra://node/<id>`. Roles
//! nest: admin ⊇ write ⊇ read. Nodes may read and write (a follower forwards writes) but
//! are never admins.
//!
//! The rule lives in one place: [`METHOD_ROLES`] names the role of every method of
//! `sutra.storage.StorageService` and `sutra.cluster.ClusterService`, and [`authorize`]
//! applies it from the request's path and TLS connect info alone, before the body is
//! read (`server/authorized.rs` runs it in front of the codec). It leaves a [`Caller`] in
//! the request's extensions, from which write handlers bind exactly-once sessions to the
//! caller ([`caller`], [`session_owner`]). The standard health service and reflection are
//! not behind it: any certificate the CA signed may call them.

use std::sync::Arc;

use sutra_certs::{Identity, Role};
use tonic::codegen::http;
use tonic::{Request, Status};

/// The role every client-API method needs, by its gRPC path. A method missing here is
/// refused (and a unit test fails for every method of the generated services missing).
pub const METHOD_ROLES: &[(&str, Role)] = &[
    ("/sutra.storage.StorageService/PutConcept", Role::Write),
    ("/sutra.storage.StorageService/GetConcept", Role::Read),
    ("/sutra.storage.StorageService/DeleteConcept", Role::Write),
    ("/sutra.storage.StorageService/PutEdge", Role::Write),
    ("/sutra.storage.StorageService/DeleteEdge", Role::Write),
    ("/sutra.storage.StorageService/Batch", Role::Write),
    ("/sutra.storage.StorageService/GetNeighbors", Role::Read),
    ("/sutra.storage.StorageService/Scan", Role::Read),
    ("/sutra.storage.StorageService/Search", Role::Read),
    ("/sutra.storage.StorageService/HealthCheck", Role::Read),
    ("/sutra.storage.StorageService/GetStats", Role::Read),
    // Flush snapshots the engine and purges the log, as TriggerSnapshot does: an
    // operator call.
    ("/sutra.storage.StorageService/Flush", Role::Admin),
    ("/sutra.cluster.ClusterService/Status", Role::Read),
    ("/sutra.cluster.ClusterService/AddLearner", Role::Admin),
    (
        "/sutra.cluster.ClusterService/ChangeMembership",
        Role::Admin,
    ),
    ("/sutra.cluster.ClusterService/RemoveNode", Role::Admin),
    ("/sutra.cluster.ClusterService/TransferLeader", Role::Admin),
    ("/sutra.cluster.ClusterService/TriggerSnapshot", Role::Admin),
    ("/sutra.cluster.ClusterService/Backup", Role::Admin),
    ("/sutra.cluster.ClusterService/ListAlarms", Role::Read),
    ("/sutra.cluster.ClusterService/DisarmAlarm", Role::Admin),
];

/// The role the method at `path` needs; `None` for a path not in [`METHOD_ROLES`].
pub fn required_role(path: &str) -> Option<Role> {
    method(path).map(|(_, role)| *role)
}

/// The entry of [`METHOD_ROLES`] for `path`.
fn method(path: &str) -> Option<&'static (&'static str, Role)> {
    METHOD_ROLES.iter().find(|(p, _)| *p == path)
}

/// The path of a method of the client API as a static string (`None` for any other
/// path), so metrics label only methods that exist.
pub fn known_method(path: &str) -> Option<&'static str> {
    METHOD_ROLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, _)| *p)
}

/// Tells who sent a request from its extensions (where tonic keeps the TLS connect info).
pub trait Identify: Clone + Send + Sync + 'static {
    /// The caller's identity; `Ok(None)` when this endpoint authenticates no one
    /// (`--insecure`), an error status when the caller cannot be identified.
    fn identify(&self, extensions: &mut http::Extensions) -> Result<Option<Identity>, Status>;
}

/// How the client port identifies callers.
#[derive(Debug, Clone)]
pub enum Authorizer {
    /// Mutual TLS: every call must carry a certificate whose role allows it.
    Tls,
    /// `--insecure`: no certificates, everyone may do everything.
    Insecure,
}

impl Identify for Authorizer {
    fn identify(&self, extensions: &mut http::Extensions) -> Result<Option<Identity>, Status> {
        match self {
            Self::Insecure => Ok(None),
            Self::Tls => {
                // `peer_identity` reads a tonic request; lend it the extensions (no copy).
                let probe = Request::from_parts(
                    tonic::metadata::MetadataMap::new(),
                    std::mem::take(extensions),
                    (),
                );
                let identity = sutra_certs::peer_identity(&probe);
                *extensions = probe.into_parts().1;
                identity.map(Some)
            }
        }
    }
}

/// The authorised caller of one client call, left in its extensions by [`authorize`]:
/// `None` without authentication (`--insecure`).
#[derive(Debug, Clone)]
pub struct Caller(pub Option<Arc<Identity>>);

/// Decides whether the call to `path` may go on, from the extensions alone: returns the
/// caller, or the status to refuse it with (UNAUTHENTICATED without a usable
/// certificate, PERMISSION_DENIED for a role that does not allow the method or a method
/// that has no role).
pub fn authorize<I: Identify>(
    identify: &I,
    path: &str,
    extensions: &mut http::Extensions,
) -> Result<Caller, Status> {
    let Some(role) = required_role(path) else {
        return Err(Status::permission_denied(format!(
            "{path}: no role is defined for this method"
        )));
    };
    match identify.identify(extensions)? {
        None => Ok(Caller(None)),
        Some(id) if id.allows_client_rpc(role) => Ok(Caller(Some(Arc::new(id)))),
        Some(id) => Err(Status::permission_denied(format!(
            "{} may not make calls that need the {} role",
            id.uri(),
            role.as_str()
        ))),
    }
}

/// The caller [`authorize`] let through. A request without one did not pass the role
/// check (a service mounted without it): refused rather than served as anonymous.
pub fn caller<T>(req: &Request<T>) -> Result<Option<Arc<Identity>>, Status> {
    match req.extensions().get::<Caller>() {
        Some(Caller(identity)) => Ok(identity.clone()),
        None => {
            tracing::error!("client call without a role check; refusing it");
            Err(Status::internal("the call did not pass the role check"))
        }
    }
}

/// The name a caller's exactly-once sessions are kept under: the client name of its
/// certificate, or `node:<id>` for a node certificate. Client names never contain `/`
/// or `:`, so `<owner>/<client_id>` tells every caller apart. `None` without
/// certificates (`--insecure`).
///
/// The role is not part of it: a person's `write` and `admin` certificates with one name
/// are one client.
pub fn session_owner(identity: Option<&Identity>) -> Option<String> {
    identity.map(|id| match id {
        Identity::Client { name, .. } => name.clone(),
        Identity::Node(node) => format!("node:{node}"),
    })
}

#[cfg(test)]
#[path = "auth_test.rs"]
mod tests;

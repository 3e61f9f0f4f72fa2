//! Who may call what. Identities come from client certificates (mutual TLS): a URI SAN
//! `sutra://client/<role>/<name>` or `sutra://node/<id>`. Roles nest: admin ⊇ write ⊇ read.
//! Nodes may read and write (a follower forwards writes) but are never admins.

use std::sync::Arc;

use sutra_certs::{Identity, Role};
use tonic::{Request, Status};

/// Checks callers of the client-facing services.
#[derive(Debug, Clone)]
pub enum Authorizer {
    /// Mutual TLS: every call must carry a certificate whose role allows it.
    Tls,
    /// `--insecure`: no certificates, everyone may do everything.
    Insecure,
}

impl Authorizer {
    /// Returns the caller's identity if it may make a call that needs `role`.
    pub fn check<T>(&self, req: &Request<T>, role: Role) -> Result<Option<Arc<Identity>>, Status> {
        match self {
            Self::Insecure => Ok(None),
            Self::Tls => {
                let id = sutra_certs::peer_identity(req)?;
                if id.allows_client_rpc(role) {
                    Ok(Some(Arc::new(id)))
                } else {
                    Err(Status::permission_denied(format!(
                        "{} may not make calls that need the {} role",
                        id.uri(),
                        role.as_str()
                    )))
                }
            }
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
mod tests {
    use super::*;

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
}

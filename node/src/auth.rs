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

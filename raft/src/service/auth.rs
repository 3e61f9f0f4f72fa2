//! [`PeerAuth`]: who may call the peer service, and who they are.

use std::fmt;

use openraft::async_runtime::watch::WatchReceiver;
use tonic::{Request, Status};

use crate::types::{NodeId, Raft};

/// The caller of a peer RPC, as [`PeerAuth`] established it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerIdentity {
    /// The caller proved to be this node (e.g. its client certificate names it). The
    /// service then refuses requests in which it speaks for another node: a vote, append
    /// or snapshot whose leader id is not the caller, a transfer from another leader.
    Node(NodeId),
    /// The caller is not identified (insecure mode, tests): no such check.
    Unverified,
}

/// Decides whether an incoming peer RPC may proceed.
///
/// Called once per RPC (once per InstallSnapshot stream) before the message is decoded.
/// `request` carries the call's metadata and extensions but not its message: with TLS,
/// `request.peer_certs()` (tonic's TLS feature) gives the client certificate chain, and
/// `request.remote_addr()` the socket address. `raft` is the local node, for membership
/// checks with [`peer_membership`].
///
/// To ensure correctness:
/// - return `Err` with the status to answer (`UNAUTHENTICATED` without a verified identity,
///   `PERMISSION_DENIED` for an identity that may not call); the sender's network turns both
///   into `Unreachable` and backs off;
/// - allow callers while this node has no membership yet ([`PeerMembership::NoMembership`]):
///   a node that is being added learns its membership only from the leader's first
///   AppendEntries or snapshot.
pub trait PeerAuth: Send + Sync + 'static {
    /// The caller's identity, or the status to refuse the call with.
    fn authorize(&self, request: &Request<()>, raft: &Raft) -> Result<PeerIdentity, Status>;
}

impl<F> PeerAuth for F
where
    F: Fn(&Request<()>, &Raft) -> Result<PeerIdentity, Status> + Send + Sync + 'static,
{
    fn authorize(&self, request: &Request<()>, raft: &Raft) -> Result<PeerIdentity, Status> {
        self(request, raft)
    }
}

/// Lets every caller in, unidentified. For tests and `--insecure` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl PeerAuth for AllowAll {
    fn authorize(&self, _: &Request<()>, _: &Raft) -> Result<PeerIdentity, Status> {
        Ok(PeerIdentity::Unverified)
    }
}

/// Where a node stands in the local node's current (effective, possibly not yet committed)
/// membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMembership {
    /// In a voter configuration.
    Voter,
    /// In the node table but no voter configuration.
    Learner,
    /// Not in the membership.
    NotMember,
    /// The local node has no membership yet (never initialized, nothing received).
    NoMembership,
}

impl PeerMembership {
    /// Voter or learner.
    pub fn is_member(self) -> bool {
        matches!(self, Self::Voter | Self::Learner)
    }
}

impl fmt::Display for PeerMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Voter => "voter",
            Self::Learner => "learner",
            Self::NotMember => "not a member",
            Self::NoMembership => "no membership yet",
        })
    }
}

/// Where `node` stands in `raft`'s current membership.
pub fn peer_membership(raft: &Raft, node: NodeId) -> PeerMembership {
    let membership = raft.metrics().borrow_watched().membership_config.clone();
    let m = membership.membership();
    if m.nodes().next().is_none() {
        PeerMembership::NoMembership
    } else if m.voter_ids().any(|id| id == node) {
        PeerMembership::Voter
    } else if m.get_node(&node).is_some() {
        PeerMembership::Learner
    } else {
        PeerMembership::NotMember
    }
}

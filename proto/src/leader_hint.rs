//! [`LeaderHint`]: the leader a node names when it cannot serve a request itself, carried
//! in the metadata of an UNAVAILABLE status ([`LEADER_ID_METADATA_KEY`],
//! [`LEADER_ADDR_METADATA_KEY`]). Servers encode it with [`not_leader`]; clients and
//! relaying nodes decode it with [`LeaderHint::from_status`].

use std::fmt;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::{LEADER_ADDR_METADATA_KEY, LEADER_ID_METADATA_KEY};

/// The leader as the answering node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    /// Its node id.
    pub id: u64,
    /// Its client API address (`host:port`), if the node knows it.
    pub addr: Option<String>,
}

impl LeaderHint {
    /// The hint an UNAVAILABLE status carries; `None` for any other status or one
    /// without a leader id.
    pub fn from_status(status: &Status) -> Option<Self> {
        if status.code() != Code::Unavailable {
            return None;
        }
        let md = status.metadata();
        let id = md
            .get(LEADER_ID_METADATA_KEY)?
            .to_str()
            .ok()?
            .parse()
            .ok()?;
        let addr = md
            .get(LEADER_ADDR_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Some(Self { id, addr })
    }

    /// Adds the hint's metadata to `status`.
    pub fn attach(&self, status: &mut Status) {
        let md = status.metadata_mut();
        md.insert(LEADER_ID_METADATA_KEY, MetadataValue::from(self.id));
        if let Some(addr) = self
            .addr
            .as_deref()
            .and_then(|a| MetadataValue::try_from(a).ok())
        {
            md.insert(LEADER_ADDR_METADATA_KEY, addr);
        }
    }
}

impl fmt::Display for LeaderHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Some(addr) => write!(f, "leader is node {} at {addr}", self.id),
            None => write!(f, "leader is node {}", self.id),
        }
    }
}

/// `"not the leader; leader is node 3 at node3:50051"`, or `"...; no leader known"`.
pub fn not_leader_message(leader: Option<&LeaderHint>) -> String {
    match leader {
        Some(hint) => format!("not the leader; {hint}"),
        None => "not the leader; no leader known".to_string(),
    }
}

/// The UNAVAILABLE status of a node that is not the leader, naming `leader` in its
/// message and metadata.
pub fn not_leader(leader: Option<&LeaderHint>) -> Status {
    let mut status = Status::unavailable(not_leader_message(leader));
    if let Some(hint) = leader {
        hint.attach(&mut status);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_survives_the_round_trip_through_a_status() {
        let hint = LeaderHint {
            id: 3,
            addr: Some("node3:50051".into()),
        };
        let s = not_leader(Some(&hint));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            s.message(),
            "not the leader; leader is node 3 at node3:50051"
        );
        assert_eq!(s.metadata().get(LEADER_ID_METADATA_KEY).unwrap(), "3");
        assert_eq!(LeaderHint::from_status(&s), Some(hint));
        let no_addr = LeaderHint { id: 2, addr: None };
        assert_eq!(
            LeaderHint::from_status(&not_leader(Some(&no_addr))),
            Some(no_addr)
        );
    }

    #[test]
    fn only_an_unavailable_status_with_an_id_carries_a_hint() {
        let none = not_leader(None);
        assert_eq!(none.message(), "not the leader; no leader known");
        assert_eq!(LeaderHint::from_status(&none), None);
        let mut other = Status::internal("x");
        LeaderHint { id: 3, addr: None }.attach(&mut other);
        assert_eq!(LeaderHint::from_status(&other), None);
        let mut garbled = Status::unavailable("x");
        garbled
            .metadata_mut()
            .insert(LEADER_ID_METADATA_KEY, "three".parse().unwrap());
        assert_eq!(LeaderHint::from_status(&garbled), None);
    }
}

//! Per-call options: [`CallOptions`] for writes and operations, [`ReadOptions`] for reads,
//! and how a read's consistency decides which nodes may serve it ([`Route`]).

use std::time::Duration;

use sutra_proto::storage::Consistency;

/// Options of one write or operations call.
///
/// ```
/// # use std::time::Duration;
/// # use sutra_client::CallOptions;
/// let opts = CallOptions::new().deadline(Duration::from_millis(500));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Longest the call may take, retries included; `None` uses
    /// [`ClientConfig::request_timeout`](crate::ClientConfig::request_timeout). Each
    /// attempt also sends the time left to the node as its gRPC timeout.
    pub deadline: Option<Duration>,
}

impl CallOptions {
    /// The defaults: the client's request timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the call's deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// Options of one read: its consistency, staleness bound and deadline.
///
/// `LINEARIZABLE` (the default) and `LEASE` reads go to the leader; `SESSION`, `BOUNDED`
/// and `STALE` reads are spread over every configured node in turn, and move to the
/// leader when a node refuses. A `SESSION` read carries the client's session token (the
/// version of its last write) unless [`session_index`](Self::session_index) sets one.
///
/// ```
/// # use std::time::Duration;
/// # use sutra_client::ReadOptions;
/// let opts = ReadOptions::bounded(Duration::from_millis(200)).deadline(Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The consistency asked for.
    pub consistency: Consistency,
    /// `BOUNDED` only: how stale the serving node may be. Default: 1 s.
    pub max_staleness: Duration,
    /// `SESSION` only: the version the read must observe instead of the client's token.
    pub session_index: Option<u64>,
    /// Longest the read may take, retries included; `None` uses the client's request
    /// timeout.
    pub deadline: Option<Duration>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self::new(Consistency::Linearizable)
    }
}

impl ReadOptions {
    /// A read at `consistency` with the other options at their defaults.
    pub fn new(consistency: Consistency) -> Self {
        Self {
            consistency,
            max_staleness: Duration::from_secs(1),
            session_index: None,
            deadline: None,
        }
    }

    /// The options as a request carries them. A `SESSION` read without its own
    /// [`session_index`](Self::session_index) carries `session_token` (0: no constraint).
    pub fn to_proto(&self, session_token: u64) -> sutra_proto::storage::ReadOptions {
        sutra_proto::storage::ReadOptions {
            consistency: self.consistency as i32,
            session_index: if self.consistency == Consistency::Session {
                self.session_index.unwrap_or(session_token)
            } else {
                0
            },
            max_staleness_ms: u64::try_from(self.max_staleness.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A linearizable read (the default).
    pub fn linearizable() -> Self {
        Self::new(Consistency::Linearizable)
    }

    /// A read-your-writes read with the client's session token.
    pub fn session() -> Self {
        Self::new(Consistency::Session)
    }

    /// A read of whatever the serving node has applied.
    pub fn stale() -> Self {
        Self::new(Consistency::Stale)
    }

    /// A read no staler than `max_staleness`.
    pub fn bounded(max_staleness: Duration) -> Self {
        Self::new(Consistency::Bounded).max_staleness(max_staleness)
    }

    /// Sets the staleness bound of a `BOUNDED` read.
    pub fn max_staleness(mut self, max_staleness: Duration) -> Self {
        self.max_staleness = max_staleness;
        self
    }

    /// Makes a `SESSION` read wait for `index` instead of the client's token.
    pub fn session_index(mut self, index: u64) -> Self {
        self.session_index = Some(index);
        self
    }

    /// Sets the read's deadline.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub(crate) fn route(&self) -> Route {
        Route::for_consistency(self.consistency)
    }
}

impl From<Consistency> for ReadOptions {
    fn from(c: Consistency) -> Self {
        Self::new(c)
    }
}

/// Which nodes a call is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The leader (as far as the client knows it); writes and leader reads.
    Leader,
    /// Any node, in turn; after a refusal, the node it named or the leader.
    Spread,
}

impl Route {
    /// Where reads at `consistency` go. `LEASE` is served by the leader only, and a
    /// `LINEARIZABLE` read is cheapest there (a follower has to ask the leader first).
    pub fn for_consistency(consistency: Consistency) -> Self {
        match consistency {
            Consistency::Unspecified | Consistency::Linearizable | Consistency::Lease => {
                Self::Leader
            }
            Consistency::Session | Consistency::Bounded | Consistency::Stale => Self::Spread,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_levels_go_to_the_leader_and_the_others_spread() {
        for c in [
            Consistency::Unspecified,
            Consistency::Linearizable,
            Consistency::Lease,
        ] {
            assert_eq!(Route::for_consistency(c), Route::Leader, "{c:?}");
        }
        for c in [
            Consistency::Session,
            Consistency::Bounded,
            Consistency::Stale,
        ] {
            assert_eq!(Route::for_consistency(c), Route::Spread, "{c:?}");
        }
    }

    #[test]
    fn builders() {
        let o = ReadOptions::bounded(Duration::from_millis(5))
            .deadline(Duration::from_secs(2))
            .session_index(7);
        assert_eq!(o.consistency, Consistency::Bounded);
        assert_eq!(o.max_staleness, Duration::from_millis(5));
        assert_eq!(o.deadline, Some(Duration::from_secs(2)));
        assert_eq!(o.session_index, Some(7));
        assert_eq!(ReadOptions::default().route(), Route::Leader);
        assert_eq!(ReadOptions::from(Consistency::Stale).route(), Route::Spread);
        assert_eq!(
            CallOptions::new().deadline(Duration::from_secs(1)).deadline,
            Some(Duration::from_secs(1))
        );
    }
}

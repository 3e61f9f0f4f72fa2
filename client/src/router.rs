//! [`Router`]: which node a call tries next (the configured endpoints in turn, the node
//! believed to lead, the node a leader hint names) and the cached connections to them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sutra_proto::storage::storage_service_client::StorageServiceClient;
use tonic::transport::Channel;

use crate::connect::{Connector, Error};
use crate::options::Route;

/// What a client knows of where to send a call: the configured endpoints, which node
/// answered on which endpoint, which one leads, and an open channel per endpoint.
#[derive(Debug)]
pub(crate) struct Router {
    connector: Connector,
    endpoints: Vec<String>,
    leader: Mutex<Option<String>>,
    /// Node id → the endpoint it answered on (or a leader hint named).
    nodes: Mutex<HashMap<u64, String>>,
    next: AtomicUsize,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Router {
    /// A router over `endpoints`, dialing them with `connector` on first use.
    pub(crate) fn new(connector: Connector, endpoints: Vec<String>) -> Self {
        Self {
            connector,
            endpoints,
            leader: Mutex::new(None),
            nodes: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The configured endpoints.
    pub(crate) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The storage API of the node at `endpoint`, over the cached channel if there is one.
    pub(crate) async fn storage(
        &self,
        endpoint: &str,
    ) -> Result<StorageServiceClient<Channel>, Error> {
        let cached = self
            .channels
            .lock()
            .expect("channel cache lock")
            .get(endpoint)
            .cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = self.connector.channel(endpoint).await?;
                self.channels
                    .lock()
                    .expect("channel cache lock")
                    .insert(endpoint.to_string(), c.clone());
                c
            }
        };
        Ok(StorageServiceClient::new(channel))
    }

    /// The endpoint of a call's next attempt on `route` (see [`Route::choose`]), passing
    /// over the endpoints in `avoid` when going in turn.
    pub(crate) fn next_endpoint(
        &self,
        route: Route,
        first_attempt: bool,
        hinted: Option<String>,
        avoid: &[String],
    ) -> Option<String> {
        route.choose(first_attempt, hinted, self.known_leader(), || {
            self.round_robin_avoiding(avoid)
        })
    }

    fn round_robin(&self) -> Option<String> {
        let n = self.endpoints.len();
        (n > 0).then(|| self.endpoints[self.next.fetch_add(1, Ordering::Relaxed) % n].clone())
    }

    /// The next endpoint in turn, passing over those in `avoid` unless every endpoint is.
    fn round_robin_avoiding(&self, avoid: &[String]) -> Option<String> {
        let n = self.endpoints.len();
        let mut candidate = self.round_robin()?;
        for _ in 1..n {
            if !avoid.contains(&candidate) {
                break;
            }
            candidate = self.round_robin()?;
        }
        Some(candidate)
    }

    /// Stops treating `endpoint` as the leader (it refused or did not answer).
    pub(crate) fn forget_leader(&self, endpoint: &str) {
        let mut leader = self.leader.lock().expect("leader lock");
        if leader.as_deref() == Some(endpoint) {
            *leader = None;
        }
    }

    /// Drops the connection to `endpoint`, so the next call there dials afresh.
    pub(crate) fn drop_channel(&self, endpoint: &str) {
        self.channels
            .lock()
            .expect("channel cache lock")
            .remove(endpoint);
    }

    fn known_leader(&self) -> Option<String> {
        self.leader.lock().expect("leader lock").clone()
    }

    /// Learns from an answer: which node answered on `endpoint`, and where the leader is
    /// if that node's id was seen before.
    pub(crate) fn observe(&self, endpoint: &str, served_by: u64, leader_id: u64) {
        let mut nodes = self.nodes.lock().expect("node map lock");
        if served_by != 0 {
            nodes.insert(served_by, endpoint.to_string());
        }
        if leader_id != 0
            && let Some(addr) = nodes.get(&leader_id)
        {
            *self.leader.lock().expect("leader lock") = Some(addr.clone());
        }
    }

    /// Learns from a leader hint that node `id` leads at `hint`; returns the endpoint to
    /// reach it on, now the known leader.
    pub(crate) fn learn_leader(&self, id: u64, hint: String) -> String {
        // An endpoint this client already reached the leader on beats the address the
        // cluster advertises, which may not resolve from here (compose host names, NAT).
        let addr = self
            .nodes
            .lock()
            .expect("node map lock")
            .entry(id)
            .or_insert(hint)
            .clone();
        *self.leader.lock().expect("leader lock") = Some(addr.clone());
        addr
    }
}

// `Route` is an option of the public API (options.rs); how it picks among the nodes
// this router knows of is routing, kept here and private to it.
impl Route {
    /// The endpoint of the next attempt: the one a refusal pointed at, else for leader
    /// calls (and retries of spread calls) the known leader, else the next endpoint in
    /// turn (`round_robin` is only called then).
    fn choose(
        self,
        first_attempt: bool,
        hinted: Option<String>,
        leader: Option<String>,
        round_robin: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        if let Some(h) = hinted {
            return Some(h);
        }
        match self {
            Self::Leader => leader.or_else(round_robin),
            Self::Spread if first_attempt => round_robin(),
            Self::Spread => leader.or_else(round_robin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_of_the_next_node() {
        let rr = || Some("rr".to_string());
        let l = || Some("leader".to_string());
        let h = || Some("hint".to_string());
        // A refusal's hint wins for both routes.
        assert_eq!(Route::Leader.choose(false, h(), l(), rr), h());
        assert_eq!(Route::Spread.choose(false, h(), l(), rr), h());
        // Leader calls go to the known leader, else in turn.
        assert_eq!(Route::Leader.choose(true, None, l(), rr), l());
        assert_eq!(Route::Leader.choose(true, None, None, rr), rr());
        // Spread reads go in turn first, to the leader on retry.
        assert_eq!(Route::Spread.choose(true, None, l(), rr), rr());
        assert_eq!(Route::Spread.choose(false, None, l(), rr), l());
        assert_eq!(Route::Spread.choose(false, None, None, rr), rr());
    }
}

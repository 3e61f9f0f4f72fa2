//! Request validation at the edge: every client and operator request is checked before
//! it reaches the read barrier, the Raft log or a relay to the leader, so a bad request
//! changes nothing and gets the same answer from every node.
//!
//! Fields are named by the request's own path (`concept.embedding[3]` for `PutConcept`,
//! `ops[1].put_edge.edge.weight` for `Batch`, `read.consistency` for any read). The
//! write rules themselves live in the engine (`WriteBatch::validate`), which the node
//! and `apply` run again; single-op writes are checked by those same rules as one-op
//! batches, with the batch path (`ops[0].put_concept.`) taken off the field name.

use sutra_engine::{Limits, WriteBatch, check_text, validate_vector};
use sutra_proto::cluster as cpb;
use sutra_proto::limits::MAX_SEARCH_K;
use sutra_proto::storage as pb;

use crate::status::ServiceError;

type Result<T = ()> = std::result::Result<T, ServiceError>;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, reason)
}

/// The path prefixes the engine gives the operation of a one-op batch, each of which is
/// the root of the matching single-op request (`PutConceptRequest.concept`, ...).
const SINGLE_OP_PREFIXES: [&str; 4] = [
    "put_concept.",
    "delete_concept.",
    "put_edge.",
    "delete_edge.",
];

/// Checks a single-op write (`PutConcept`, `DeleteConcept`, `PutEdge`, `DeleteEdge`)
/// and names a bad field by that request's path. The batch's session must already have
/// been checked ([`crate::convert::session`]).
pub fn single_write(batch: &WriteBatch, limits: &Limits, dimension: u32) -> Result {
    debug_assert_eq!(
        batch.ops.len(),
        1,
        "a single-op write carries one operation"
    );
    batch.validate(limits, dimension, false).map_err(|mut e| {
        e.field = single_op_path(&e.field);
        ServiceError::InvalidArgument(e)
    })
}

/// `ops[0].put_concept.concept.id` → `concept.id`; anything else is kept as it is.
fn single_op_path(field: &str) -> String {
    field
        .strip_prefix("ops[0].")
        .and_then(|rest| SINGLE_OP_PREFIXES.iter().find_map(|p| rest.strip_prefix(p)))
        .unwrap_or(field)
        .to_string()
}

/// Checks a `Batch`; fields are named `ops[i]....` as in the request.
pub fn batch(batch: &WriteBatch, limits: &Limits, dimension: u32) -> Result {
    Ok(batch.validate(limits, dimension, false)?)
}

/// Checks the `read` options every read request carries.
pub fn read_options(read: Option<&pb::ReadOptions>) -> Result {
    let Some(read) = read else {
        return Ok(());
    };
    let consistency = pb::Consistency::try_from(read.consistency).map_err(|_| {
        invalid(
            "read.consistency",
            format!("unknown value {}", read.consistency),
        )
    })?;
    if consistency == pb::Consistency::Bounded && read.max_staleness_ms == 0 {
        return Err(invalid(
            "read.max_staleness_ms",
            "BOUNDED reads need a bound above 0",
        ));
    }
    Ok(())
}

/// Checks a `GetConcept`.
pub fn get_concept(r: &pb::GetConceptRequest, limits: &Limits) -> Result {
    read_options(r.read.as_ref())?;
    check_text("id", &r.id, limits.max_id_bytes)?;
    Ok(())
}

/// Checks a `GetNeighbors` (the direction and limit are checked where they are
/// converted).
pub fn neighbors(r: &pb::NeighborsRequest, limits: &Limits) -> Result {
    read_options(r.read.as_ref())?;
    check_text("id", &r.id, limits.max_id_bytes)?;
    if let Some(relation) = &r.relation {
        check_text("relation", relation, limits.max_relation_bytes)?;
    }
    if !r.page_token.is_empty() {
        neighbor_page_token(r, limits)?;
    }
    Ok(())
}

/// A neighbors page token is `<o|i>\0<relation>\0<id>`: the last edge of the previous
/// page. It must belong to this request's direction and relation.
fn neighbor_page_token(r: &pb::NeighborsRequest, limits: &Limits) -> Result {
    let bad = |reason: &str| invalid("page_token", reason.to_string());
    let mut parts = r.page_token.splitn(3, '\0');
    let (Some(d), Some(relation), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("not a token returned by GetNeighbors"));
    };
    let direction = pb::Direction::try_from(r.direction).unwrap_or(pb::Direction::Unspecified);
    let direction_ok = matches!(
        (d, direction),
        (
            "o",
            pb::Direction::Unspecified | pb::Direction::Out | pb::Direction::Both
        ) | ("i", pb::Direction::In | pb::Direction::Both)
    );
    if !direction_ok {
        return Err(bad("not a token of this direction"));
    }
    if relation.is_empty()
        || relation.len() > limits.max_relation_bytes
        || id.is_empty()
        || id.len() > limits.max_id_bytes
        || id.contains('\0')
    {
        return Err(bad("not a token returned by GetNeighbors"));
    }
    if r.relation.as_deref().is_some_and(|want| want != relation) {
        return Err(bad("not a token of this relation"));
    }
    Ok(())
}

/// Checks a `Scan` (the limit is checked where it is converted).
pub fn scan(r: &pb::ScanRequest, limits: &Limits) -> Result {
    read_options(r.read.as_ref())?;
    let max = limits.max_id_bytes;
    // Bounds and tokens are ids or parts of ids: empty is allowed, NUL never is.
    let bound = |field: &str, value: &str| -> Result {
        if value.is_empty() {
            Ok(())
        } else {
            Ok(check_text(field, value, max)?)
        }
    };
    match &r.range {
        None => {}
        Some(pb::scan_request::Range::Prefix(p)) => bound("prefix", p)?,
        Some(pb::scan_request::Range::IdRange(range)) => {
            bound("id_range.start", &range.start)?;
            bound("id_range.end", &range.end)?;
            if !range.end.is_empty() && range.end <= range.start {
                return Err(invalid(
                    "id_range.end",
                    "must be above id_range.start (or empty for no upper bound)",
                ));
            }
        }
    }
    if !r.page_token.is_empty() {
        // A scan token is the last id of the previous page, so it lies in the range.
        let token = &r.page_token;
        check_text("page_token", token, max)?;
        let in_range = match &r.range {
            None => true,
            Some(pb::scan_request::Range::Prefix(p)) => token.starts_with(p.as_str()),
            Some(pb::scan_request::Range::IdRange(range)) => {
                *token >= range.start && (range.end.is_empty() || *token < range.end)
            }
        };
        if !in_range {
            return Err(invalid("page_token", "not a token of this range"));
        }
    }
    Ok(())
}

/// Checks a `Search` against the store's vector dimension (the metric is checked where
/// it is converted).
pub fn search(r: &pb::SearchRequest, dimension: u32) -> Result {
    read_options(r.read.as_ref())?;
    validate_vector(&r.vector, "vector", dimension)?;
    let cosine = matches!(
        pb::Metric::try_from(r.metric),
        Ok(pb::Metric::Unspecified | pb::Metric::Cosine)
    );
    if cosine && r.vector.iter().all(|v| *v == 0.0) {
        return Err(invalid("vector", "cosine search needs a non-zero vector"));
    }
    if r.k == 0 || r.k > MAX_SEARCH_K {
        return Err(invalid(
            "k",
            format!("{} is outside 1..={MAX_SEARCH_K}", r.k),
        ));
    }
    Ok(())
}

fn node_id(field: &str, id: u64) -> Result {
    if id == 0 {
        return Err(invalid(field, "node ids start at 1"));
    }
    Ok(())
}

fn address(field: &str, addr: &str) -> Result {
    let ok = addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.chars().any(|c| c.is_whitespace() || c == '/')
            && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "expected host:port with a port in 1..=65535",
        ))
    }
}

/// Checks an `AddLearner`.
pub fn add_learner(r: &cpb::AddLearnerRequest) -> Result {
    node_id("node_id", r.node_id)?;
    address("raft_addr", &r.raft_addr)?;
    address("api_addr", &r.api_addr)?;
    Ok(())
}

/// Checks a `ChangeMembership` (whether the voters are members is the leader's call).
pub fn change_membership(r: &cpb::ChangeMembershipRequest) -> Result {
    if r.voters.is_empty() {
        return Err(invalid("voters", "a cluster needs at least one voter"));
    }
    for (i, id) in r.voters.iter().enumerate() {
        node_id(&format!("voters[{i}]"), *id)?;
        if r.voters[..i].contains(id) {
            return Err(invalid(
                format!("voters[{i}]"),
                format!("node {id} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Checks a `RemoveNode`.
pub fn remove_node(r: &cpb::RemoveNodeRequest) -> Result {
    node_id("node_id", r.node_id)
}

/// Checks a `TransferLeader` (absent target: the leader picks one).
pub fn transfer_leader(r: &cpb::TransferLeaderRequest) -> Result {
    match r.target_node_id {
        Some(id) => node_id("target_node_id", id),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use sutra_engine::{Concept, Edge, SessionKey, WriteOp};

    use super::*;

    fn field(r: Result) -> String {
        match r {
            Err(ServiceError::InvalidArgument(v)) => v.field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn one(op: WriteOp) -> WriteBatch {
        WriteBatch {
            session: Some(SessionKey {
                client_id: "alice/app".into(),
                sequence: 1,
            }),
            ops: vec![op],
        }
    }

    #[test]
    fn single_op_writes_name_their_own_fields() {
        let limits = Limits::default();
        let mut embedding = vec![1.0; 4];
        embedding[2] = f32::NAN;
        let put = WriteOp::PutConcept {
            concept: Concept {
                id: "a".into(),
                embedding,
                ..Concept::default()
            },
            expected_version: None,
        };
        assert_eq!(
            field(single_write(&one(put.clone()), &limits, 4)),
            "concept.embedding[2]"
        );
        assert_eq!(
            field(batch(&one(put), &limits, 4)),
            "ops[0].put_concept.concept.embedding[2]"
        );
        let del = WriteOp::DeleteConcept {
            id: String::new(),
            expected_version: None,
        };
        assert_eq!(field(single_write(&one(del), &limits, 4)), "id");
        let edge = WriteOp::PutEdge(Edge {
            from: "a".into(),
            to: "b".into(),
            relation: "r".into(),
            weight: f32::INFINITY,
        });
        assert_eq!(field(single_write(&one(edge), &limits, 4)), "edge.weight");
        let del_edge = WriteOp::DeleteEdge {
            from: "a".into(),
            to: String::new(),
            relation: "r".into(),
        };
        assert_eq!(field(single_write(&one(del_edge), &limits, 4)), "to");
    }

    #[test]
    fn reads_name_their_fields() {
        let limits = Limits::default();
        let bounded = Some(pb::ReadOptions {
            consistency: pb::Consistency::Bounded as i32,
            ..pb::ReadOptions::default()
        });
        let get = |id: &str, read| pb::GetConceptRequest {
            read,
            id: id.into(),
        };
        assert_eq!(field(get_concept(&get("", None), &limits)), "id");
        assert_eq!(
            field(get_concept(&get("a", bounded), &limits)),
            "read.max_staleness_ms"
        );
        let unknown = Some(pb::ReadOptions {
            consistency: 77,
            ..pb::ReadOptions::default()
        });
        assert_eq!(
            field(get_concept(&get("a", unknown), &limits)),
            "read.consistency"
        );

        let n =
            |token: &str, direction: pb::Direction, relation: Option<&str>| pb::NeighborsRequest {
                id: "a".into(),
                direction: direction as i32,
                relation: relation.map(str::to_string),
                page_token: token.into(),
                ..pb::NeighborsRequest::default()
            };
        assert!(neighbors(&n("o\0r\0b", pb::Direction::Out, None), &limits).is_ok());
        assert!(neighbors(&n("i\0r\0b", pb::Direction::Both, Some("r")), &limits).is_ok());
        for bad in [
            n("x", pb::Direction::Out, None),
            n("i\0r\0b", pb::Direction::Out, None),
            n("o\0r\0b", pb::Direction::Out, Some("s")),
            n("o\0\0b", pb::Direction::Out, None),
        ] {
            assert_eq!(field(neighbors(&bad, &limits)), "page_token", "{bad:?}");
        }

        let s = |range, token: &str| pb::ScanRequest {
            range,
            page_token: token.into(),
            ..pb::ScanRequest::default()
        };
        let prefix = |p: &str| Some(pb::scan_request::Range::Prefix(p.into()));
        let range = |a: &str, b: &str| {
            Some(pb::scan_request::Range::IdRange(pb::IdRange {
                start: a.into(),
                end: b.into(),
            }))
        };
        assert!(scan(&s(prefix("p/"), "p/x"), &limits).is_ok());
        assert!(scan(&s(range("b", ""), "c"), &limits).is_ok());
        assert_eq!(field(scan(&s(prefix("p/"), "q"), &limits)), "page_token");
        assert_eq!(field(scan(&s(range("b", "d"), "d"), &limits)), "page_token");
        assert_eq!(
            field(scan(&s(range("b", "a"), ""), &limits)),
            "id_range.end"
        );
        assert_eq!(
            field(scan(&s(prefix(&"p".repeat(257)), ""), &limits)),
            "prefix"
        );

        let q = |vector: Vec<f32>, k| pb::SearchRequest {
            vector,
            k,
            ..pb::SearchRequest::default()
        };
        assert!(search(&q(vec![1.0, 0.0], 1), 2).is_ok());
        assert_eq!(field(search(&q(vec![1.0], 1), 2)), "vector");
        assert_eq!(field(search(&q(vec![1.0, f32::NAN], 1), 2)), "vector[1]");
        assert_eq!(field(search(&q(vec![0.0, 0.0], 1), 2)), "vector");
        assert_eq!(field(search(&q(vec![1.0, 0.0], 0), 2)), "k");
        assert_eq!(field(search(&q(vec![1.0, 0.0], 1001), 2)), "k");
    }

    #[test]
    fn cluster_requests_name_their_fields() {
        let learner = |id, raft: &str, api: &str| cpb::AddLearnerRequest {
            node_id: id,
            raft_addr: raft.into(),
            api_addr: api.into(),
            wait_caught_up: false,
        };
        assert!(add_learner(&learner(4, "node4:7001", "node4:7000")).is_ok());
        assert_eq!(field(add_learner(&learner(0, "h:1", "h:2"))), "node_id");
        assert_eq!(field(add_learner(&learner(4, "h", "h:2"))), "raft_addr");
        assert_eq!(field(add_learner(&learner(4, "h:1", "h:0"))), "api_addr");
        let voters = |v: Vec<u64>| cpb::ChangeMembershipRequest {
            voters: v,
            retain_removed_as_learners: false,
        };
        assert!(change_membership(&voters(vec![1, 2, 3])).is_ok());
        assert_eq!(field(change_membership(&voters(vec![]))), "voters");
        assert_eq!(field(change_membership(&voters(vec![2, 0]))), "voters[1]");
        assert_eq!(
            field(change_membership(&voters(vec![2, 3, 2]))),
            "voters[2]"
        );
        assert_eq!(
            field(remove_node(&cpb::RemoveNodeRequest { node_id: 0 })),
            "node_id"
        );
        assert_eq!(
            field(transfer_leader(&cpb::TransferLeaderRequest {
                target_node_id: Some(0)
            })),
            "target_node_id"
        );
        assert!(
            transfer_leader(&cpb::TransferLeaderRequest {
                target_node_id: None
            })
            .is_ok()
        );
    }
}

//! Conversions between the wire types (`sutra_proto::storage`) and the engine's types.
//! Missing required fields become `INVALID_ARGUMENT` naming the field.

use sutra_engine::{Concept, Direction, Edge, Limits, Metric, SessionKey, WriteOp, check_text};
use sutra_proto::limits::MAX_CLIENT_ID_BYTES;
use sutra_proto::storage as pb;

use crate::status::ServiceError;

type Result<T> = std::result::Result<T, ServiceError>;

fn required<T>(v: Option<T>, field: &str) -> Result<T> {
    v.ok_or_else(|| ServiceError::invalid(field, "required"))
}

/// The exactly-once identity of a write: the header the client sent, bound to who sent
/// it. `owner` is the caller's authenticated name ([`crate::auth::session_owner`]); the
/// session key is `<owner>/<client_id>`, so two callers choosing the same `client_id`
/// never share a session, while one caller's retry through any node finds its own.
/// Without an owner (`--insecure`) the key is the client id as sent.
pub fn session(
    header: Option<pb::WriteHeader>,
    owner: Option<&str>,
    limits: &Limits,
) -> Result<SessionKey> {
    let h = required(header, "header")?;
    check_text("client_id", &h.client_id, MAX_CLIENT_ID_BYTES)
        .map_err(|e| ServiceError::from(e.under("header")))?;
    if h.sequence == 0 {
        return Err(ServiceError::invalid(
            "header.sequence",
            "must be at least 1",
        ));
    }
    let client_id = match owner {
        None => h.client_id,
        Some(owner) => {
            let bound = format!("{owner}/{}", h.client_id);
            if bound.len() > limits.max_client_id_bytes {
                return Err(ServiceError::invalid(
                    "header.client_id",
                    format!(
                        "{} bytes; with the certificate name {owner:?} at most {} allowed",
                        h.client_id.len(),
                        limits.max_client_id_bytes.saturating_sub(owner.len() + 1)
                    ),
                ));
            }
            bound
        }
    };
    Ok(SessionKey {
        client_id,
        sequence: h.sequence,
    })
}

/// The client id as the client sent it, from a session key made by [`session`].
pub fn unbound_client_id<'a>(client_id: &'a str, owner: Option<&str>) -> &'a str {
    owner
        .and_then(|o| client_id.strip_prefix(o))
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(client_id)
}

/// A wire concept as the engine's (its `version` is output only and ignored).
pub fn concept(c: pb::Concept) -> Concept {
    Concept {
        id: c.id,
        content: c.content,
        embedding: c.embedding,
        attributes: c.attributes,
        version: 0,
    }
}

/// An engine concept for the wire.
pub fn concept_out(c: Concept) -> pb::Concept {
    pb::Concept {
        id: c.id,
        content: c.content,
        embedding: c.embedding,
        attributes: c.attributes,
        version: c.version,
    }
}

fn edge(e: pb::Edge) -> Edge {
    Edge {
        from: e.from,
        to: e.to,
        relation: e.relation,
        weight: e.weight,
    }
}

/// One batch operation; `at` is its path (`ops[3]`).
fn op(o: pb::WriteOp, at: &str) -> Result<WriteOp> {
    use pb::write_op::Op;
    Ok(match required(o.op, &format!("{at}.op"))? {
        Op::PutConcept(p) => WriteOp::PutConcept {
            concept: concept(required(p.concept, &format!("{at}.put_concept.concept"))?),
            expected_version: p.expected_version,
        },
        Op::DeleteConcept(d) => WriteOp::DeleteConcept {
            id: d.id,
            expected_version: d.expected_version,
        },
        Op::PutEdge(p) => WriteOp::PutEdge(edge(required(p.edge, &format!("{at}.put_edge.edge"))?)),
        Op::DeleteEdge(d) => WriteOp::DeleteEdge {
            from: d.from,
            to: d.to,
            relation: d.relation,
        },
        Op::Check(c) => WriteOp::CheckVersion {
            expected_version: required(
                c.expected_version,
                &format!("{at}.check.expected_version"),
            )?,
            id: c.id,
        },
    })
}

/// The operations of a batch request, not yet validated against limits.
pub fn batch_ops(ops: Vec<pb::WriteOp>) -> Result<Vec<WriteOp>> {
    ops.into_iter()
        .enumerate()
        .map(|(i, o)| op(o, &format!("ops[{i}]")))
        .collect()
}

/// The required edge of a `PutEdge` request.
pub fn put_edge(e: Option<pb::Edge>) -> Result<WriteOp> {
    Ok(WriteOp::PutEdge(edge(required(e, "edge")?)))
}

/// The required concept of a `PutConcept` request.
pub fn put_concept(c: Option<pb::Concept>, expected_version: Option<u64>) -> Result<WriteOp> {
    Ok(WriteOp::PutConcept {
        concept: concept(required(c, "concept")?),
        expected_version,
    })
}

/// Wire direction (unspecified means out).
pub fn direction(d: i32) -> Result<Direction> {
    match pb::Direction::try_from(d) {
        Ok(pb::Direction::Unspecified | pb::Direction::Out) => Ok(Direction::Out),
        Ok(pb::Direction::In) => Ok(Direction::In),
        Ok(pb::Direction::Both) => Ok(Direction::Both),
        Err(_) => Err(ServiceError::invalid(
            "direction",
            format!("unknown value {d}"),
        )),
    }
}

/// Engine direction for the wire.
pub fn direction_out(d: Direction) -> i32 {
    match d {
        Direction::Out => pb::Direction::Out as i32,
        Direction::In => pb::Direction::In as i32,
        Direction::Both => pb::Direction::Both as i32,
    }
}

/// Wire metric (unspecified means cosine).
pub fn metric(m: i32) -> Result<Metric> {
    match pb::Metric::try_from(m) {
        Ok(pb::Metric::Unspecified | pb::Metric::Cosine) => Ok(Metric::Cosine),
        Ok(pb::Metric::Dot) => Ok(Metric::Dot),
        Ok(pb::Metric::L2) => Ok(Metric::L2),
        Err(_) => Err(ServiceError::invalid(
            "metric",
            format!("unknown value {m}"),
        )),
    }
}

/// Page size: 0 means the default (100); at most 10,000.
pub fn limit(l: u32) -> Result<usize> {
    match l {
        0 => Ok(100),
        1..=10_000 => Ok(l as usize),
        _ => Err(ServiceError::invalid(
            "limit",
            format!("{l} is above the maximum of 10000"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ServiceError) -> String {
        match e {
            ServiceError::InvalidArgument(v) => v.field,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn header(client_id: &str, sequence: u64) -> Option<pb::WriteHeader> {
        Some(pb::WriteHeader {
            client_id: client_id.into(),
            sequence,
        })
    }

    #[test]
    fn missing_fields_are_named() {
        let limits = Limits::default();
        assert_eq!(field(session(None, None, &limits).unwrap_err()), "header");
        assert_eq!(
            field(batch_ops(vec![pb::WriteOp { op: None }]).unwrap_err()),
            "ops[0].op"
        );
        let check = pb::WriteOp {
            op: Some(pb::write_op::Op::Check(pb::CheckVersionOp {
                id: "a".into(),
                expected_version: None,
            })),
        };
        assert_eq!(
            field(batch_ops(vec![check]).unwrap_err()),
            "ops[0].check.expected_version"
        );
        assert_eq!(field(put_concept(None, None).unwrap_err()), "concept");
        assert_eq!(field(put_edge(None).unwrap_err()), "edge");
        assert_eq!(field(direction(9).unwrap_err()), "direction");
        assert_eq!(field(metric(-1).unwrap_err()), "metric");
        assert_eq!(field(limit(10_001).unwrap_err()), "limit");
        assert_eq!(limit(0).unwrap(), 100);
    }

    #[test]
    fn header_fields_are_named_by_the_request_path() {
        let limits = Limits::default();
        let long = "c".repeat(MAX_CLIENT_ID_BYTES + 1);
        for (h, want) in [
            (header("", 1), "header.client_id"),
            (header(&long, 1), "header.client_id"),
            (header("a\0b", 1), "header.client_id"),
            (header("c", 0), "header.sequence"),
        ] {
            assert_eq!(field(session(h, Some("alice"), &limits).unwrap_err()), want);
        }
    }

    #[test]
    fn sessions_are_bound_to_the_caller() {
        let limits = Limits::default();
        let alice = session(header("app", 7), Some("alice"), &limits).unwrap();
        let bob = session(header("app", 7), Some("bob"), &limits).unwrap();
        assert_eq!(alice.client_id, "alice/app");
        assert_eq!(bob.client_id, "bob/app");
        assert_ne!(
            alice, bob,
            "two callers with one client id share no session"
        );
        assert_eq!(alice.sequence, 7);
        assert_eq!(
            session(header("app", 7), Some("alice"), &limits).unwrap(),
            alice,
            "the same caller retrying gets the same session"
        );
        assert_eq!(unbound_client_id(&alice.client_id, Some("alice")), "app");
        assert_eq!(unbound_client_id("app", None), "app");

        // A caller cannot reach another's session by spelling its prefix.
        let spoof = session(header("alice/app", 7), Some("bob"), &limits).unwrap();
        assert_eq!(spoof.client_id, "bob/alice/app");

        // Without certificates (--insecure) the client id is the key, as sent.
        let open = session(header("app", 7), None, &limits).unwrap();
        assert_eq!(open.client_id, "app");
    }

    #[test]
    fn a_bound_key_must_fit_the_session_table() {
        let limits = Limits::default();
        let owner = "o".repeat(200);
        let fits = "c".repeat(limits.max_client_id_bytes - owner.len() - 1);
        assert!(session(header(&fits, 1), Some(&owner), &limits).is_ok());
        let over = format!("{fits}c");
        assert_eq!(
            field(session(header(&over, 1), Some(&owner), &limits).unwrap_err()),
            "header.client_id"
        );
    }
}

//! Conversions between the wire types (`sutra_proto::storage`) and the engine's types.
//! Missing required fields become `INVALID_ARGUMENT` naming the field.

use sutra_engine::{Concept, Direction, Edge, Metric, SessionKey, WriteBatch, WriteOp};
use sutra_proto::storage as pb;

use crate::status::ServiceError;

type Result<T> = std::result::Result<T, ServiceError>;

fn required<T>(v: Option<T>, field: &str) -> Result<T> {
    v.ok_or_else(|| ServiceError::invalid(field, "required"))
}

/// The exactly-once identity every write carries.
pub fn session(header: Option<pb::WriteHeader>) -> Result<SessionKey> {
    let h = required(header, "header")?;
    Ok(SessionKey {
        client_id: h.client_id,
        sequence: h.sequence,
    })
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

/// A batch request as an engine batch (not yet validated against limits).
pub fn batch(req: pb::BatchRequest) -> Result<WriteBatch> {
    let session = session(req.header)?;
    let ops = req
        .ops
        .into_iter()
        .enumerate()
        .map(|(i, o)| op(o, &format!("ops[{i}]")))
        .collect::<Result<_>>()?;
    Ok(WriteBatch {
        session: Some(session),
        ops,
    })
}

/// A single-op write as an engine batch.
pub fn single(header: Option<pb::WriteHeader>, op: WriteOp) -> Result<WriteBatch> {
    Ok(WriteBatch {
        session: Some(session(header)?),
        ops: vec![op],
    })
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

    #[test]
    fn missing_fields_are_named() {
        let e = batch(pb::BatchRequest {
            header: None,
            ops: vec![],
        })
        .unwrap_err();
        assert!(matches!(e, ServiceError::InvalidArgument(ref v) if v.field == "header"));
        let header = Some(pb::WriteHeader {
            client_id: "c".into(),
            sequence: 1,
        });
        let req = pb::BatchRequest {
            header: header.clone(),
            ops: vec![pb::WriteOp { op: None }],
        };
        assert!(
            matches!(batch(req).unwrap_err(), ServiceError::InvalidArgument(ref v) if v.field == "ops[0].op")
        );
        let check = pb::WriteOp {
            op: Some(pb::write_op::Op::Check(pb::CheckVersionOp {
                id: "a".into(),
                expected_version: None,
            })),
        };
        let req = pb::BatchRequest {
            header,
            ops: vec![check],
        };
        assert!(
            matches!(batch(req).unwrap_err(), ServiceError::InvalidArgument(ref v) if v.field == "ops[0].check.expected_version")
        );
        assert!(
            matches!(direction(9).unwrap_err(), ServiceError::InvalidArgument(ref v) if v.field == "direction")
        );
        assert!(
            matches!(metric(-1).unwrap_err(), ServiceError::InvalidArgument(ref v) if v.field == "metric")
        );
        assert!(
            matches!(limit(10_001).unwrap_err(), ServiceError::InvalidArgument(ref v) if v.field == "limit")
        );
        assert_eq!(limit(0).unwrap(), 100);
    }
}

//! The cluster tests' side of `sutra-checker`: every test records its operations in a
//! [`sutra_checker::History`] and checks them with the checker's durability and
//! linearizability checks. This module only adapts: what the nodes hold (a scan) becomes a
//! [`FinalState`], gRPC answers become [`Outcome`]s and [`Reply`]s, and a check that finds
//! something becomes a test failure carrying the checker's report.

use std::collections::BTreeMap;
use std::future::Future;

use anyhow::{Result, bail, ensure};
use sutra_checker::{
    CheckOptions, DurabilityReport, FinalState, History, LinearizabilityReport, Op, OpId, OpKind,
    Outcome, Reply, Stored, Value, check_durability, check_linearizability,
};
use sutra_proto::storage::{
    BatchRequest, BatchResponse, Concept, DeleteConceptRequest, DeleteConceptResponse,
    GetConceptResponse, PutConceptRequest, WriteResponse, write_op,
};
use tonic::{Code, Status};

use crate::Cluster;
use crate::client::is_not_leader;

/// What the nodes hold, as the checker reads it: every concept of `scan` (one node's scan
/// of the run's prefix) with its content and version.
pub fn final_state(scan: &BTreeMap<String, Concept>) -> FinalState {
    scan.iter()
        .map(|(id, c)| {
            (
                id.clone(),
                Stored {
                    value: Value::from(c.content.as_slice()),
                    version: c.version,
                },
            )
        })
        .collect()
}

/// Checks `ops` against `scan`, everything one node holds under the run's prefix, with
/// [`check_durability`]: every acknowledged write there with its value, at the version it
/// was acknowledged with or overwritten by a later one (a write applied twice shows up at
/// two versions); no failed write visible; nothing stored that no write asked for. Every
/// operation must have completed (stop the writers first).
pub fn check_scan(ops: &[Op], scan: &BTreeMap<String, Concept>) -> Result<DurabilityReport> {
    let pending: Vec<&Op> = ops.iter().filter(|op| op.complete.is_none()).collect();
    ensure!(
        pending.is_empty(),
        "{} operations still pending (stop the writers before checking), e.g. {}",
        pending.len(),
        pending[0]
    );
    let report = check_durability(ops, &final_state(scan))?;
    if !report.is_ok() {
        bail!("durability check failed, {} stored:\n{report}", scan.len());
    }
    Ok(report)
}

/// The tag of a read recorded at a consistency weaker than LINEARIZABLE (LEASE): it stays
/// in the history for the durability check and the test's own checks, and
/// [`check_linearizable`] leaves it out (the checker's recorder duties).
pub const WEAK_READ: &str = "weak read";

/// Checks that `ops`, without the reads tagged [`WEAK_READ`], are linearizable
/// ([`check_linearizability`]); a violation, and a search that ran out of budget, fail
/// with the checker's report.
pub fn check_linearizable(ops: &[Op]) -> Result<LinearizabilityReport> {
    let judged: Vec<Op> = ops
        .iter()
        .filter(|op| {
            !(matches!(op.kind, OpKind::Read { .. }) && op.tag.as_deref() == Some(WEAK_READ))
        })
        .cloned()
        .collect();
    let report = check_linearizability(&judged, &CheckOptions::default())?;
    if !report.is_linearizable() {
        bail!("{report}");
    }
    Ok(report)
}

/// Ends a test with `sutra-checker`: reads everything under `prefix` LINEARIZABLE on the
/// leader, records that scan ([`record_scan`]), and requires the history to be durable
/// against it ([`check_scan`]: every acknowledged write there, nothing else) and
/// linearizable ([`check_linearizable`]).
pub async fn check_final_scan(cluster: &Cluster, history: &History, prefix: &str) -> Result<()> {
    let invoked = history.now();
    let scan = cluster
        .read_all_on_leader(prefix, std::time::Duration::from_secs(20))
        .await?;
    record_scan(history, "final-scan", prefix, invoked, &scan)?;
    let ops = history.ops();
    let durability = check_scan(&ops, &scan)?;
    let report = check_linearizable(&ops)?;
    tracing::info!(
        prefix,
        acknowledged = durability.acknowledged,
        ops = report.ops,
        "sutra-checker: durable and linearizable"
    );
    Ok(())
}

/// The [`Reply`] of a write's answer.
pub fn reply(w: &WriteResponse) -> Reply {
    Reply {
        served_by: Some(w.served_by),
        leader_id: (w.leader_id != 0).then_some(w.leader_id),
        deduplicated: w.deduplicated,
    }
}

/// How a write sent once (no retry) ended, for the history: acknowledged at its version;
/// refused for its condition (FAILED_PRECONDITION, a compare-and-set: `Mismatch`);
/// refused before it was ordered (FAILED_PRECONDITION otherwise, INVALID_ARGUMENT,
/// PERMISSION_DENIED, UNAUTHENTICATED, RESOURCE_EXHAUSTED, a not-leader answer:
/// `Failed`); anything else
/// `Unknown`.
pub fn write_outcome(r: &Result<WriteResponse, Status>, cas: bool) -> (Outcome, Reply) {
    match r {
        Ok(w) => (
            Outcome::Ok {
                version: Some(w.version),
            },
            reply(w),
        ),
        Err(s) if s.code() == Code::FailedPrecondition && cas => {
            (Outcome::Mismatch, Reply::default())
        }
        Err(s)
            if matches!(
                s.code(),
                Code::FailedPrecondition
                    | Code::InvalidArgument
                    | Code::PermissionDenied
                    | Code::Unauthenticated
                    | Code::ResourceExhausted
            ) || is_not_leader(s) =>
        {
            (Outcome::Failed, Reply::default())
        }
        Err(_) => (Outcome::Unknown, Reply::default()),
    }
}

/// What a compare-and-set on `expected_version` of `key` expects, in the checker's terms
/// ([`OpKind::Cas`]): `None` for 0 (must not exist), else the value `history` knows at
/// that version; a version no recorded operation produced names a value nobody wrote (the
/// condition can never hold).
pub fn expected_value(history: &History, key: &str, expected_version: u64) -> Option<Value> {
    (expected_version != 0).then(|| {
        history.value_at(key, expected_version).unwrap_or_else(|| {
            Value::from(format!("(no value of {key} at version {expected_version})"))
        })
    })
}

/// A write (`expected_version` `None`) or compare-and-set of `content` to `key`, as the
/// checker records it.
pub fn put_kind(
    history: &History,
    key: &str,
    content: &[u8],
    expected_version: Option<u64>,
) -> OpKind {
    let value = Value::from(content);
    match expected_version {
        None => OpKind::Write { value },
        Some(v) => OpKind::Cas {
            expected: expected_value(history, key, v),
            value,
        },
    }
}

/// Completes the read `op` with a `GetConcept` answer (an error: no answer).
pub fn complete_get(
    history: &History,
    op: OpId,
    r: &Result<GetConceptResponse, Status>,
) -> Result<()> {
    match r {
        Ok(got) => {
            let reply = Reply {
                served_by: got.meta.as_ref().map(|m| m.served_by),
                leader_id: got.meta.as_ref().map(|m| m.leader_id).filter(|&l| l != 0),
                deduplicated: false,
            };
            let c = got.concept.as_ref();
            history.complete_read_with(
                op,
                c.map(|c| Value::from(c.content.as_slice())),
                c.map(|c| c.version),
                reply,
            )?;
        }
        Err(_) => history.complete(op, Outcome::Unknown)?,
    }
    Ok(())
}

/// Sends a `PutConcept` (`send`, not yet polled) and records it: one write, or a
/// compare-and-set when `req` has an `expected_version`, invoked before the request leaves
/// and completed with its answer ([`write_outcome`]). Send a retry of an already recorded
/// request without recording it again: it is the same operation.
pub async fn recorded_put(
    history: &History,
    req: &PutConceptRequest,
    send: impl Future<Output = Result<tonic::Response<WriteResponse>, Status>>,
) -> Result<WriteResponse, Status> {
    let concept = req.concept.clone().unwrap_or_default();
    let kind = put_kind(history, &concept.id, &concept.content, req.expected_version);
    let op = invoke_write(history, req.header.as_ref(), &concept.id, kind);
    let r = send.await.map(tonic::Response::into_inner);
    let (outcome, reply) = write_outcome(&r, req.expected_version.is_some());
    complete(history, op, outcome, reply);
    r
}

/// Sends a `DeleteConcept` (`send`, not yet polled) and records it as a delete. A
/// conditional delete refused for its condition is recorded as failed (the checker's
/// delete has no condition; refused, it certainly did not apply).
pub async fn recorded_delete(
    history: &History,
    req: &DeleteConceptRequest,
    send: impl Future<Output = Result<tonic::Response<DeleteConceptResponse>, Status>>,
) -> Result<DeleteConceptResponse, Status> {
    let op = invoke_write(history, req.header.as_ref(), &req.id, OpKind::Delete);
    let r = send.await.map(tonic::Response::into_inner);
    let (outcome, reply) = write_outcome(&write_of(&r, |d| d.write), false);
    complete(history, op, outcome, reply);
    r
}

/// The write of an answer that carries one (a delete's, a batch's).
fn write_of<T>(
    r: &Result<T, Status>,
    write: impl Fn(&T) -> Option<WriteResponse>,
) -> Result<WriteResponse, Status> {
    match r {
        Ok(answer) => write(answer).ok_or_else(|| Status::internal("an answer without its write")),
        Err(s) => Err(s.clone()),
    }
}

/// Sends a `Batch` (`send`, not yet polled) and records its concept puts (writes, or
/// compare-and-sets with an `expected_version`) and deletes, each as its own operation on
/// its key, all with the batch's version; edges and checks are no registers and are not
/// recorded. A batch refused (FAILED_PRECONDITION on any op, INVALID_ARGUMENT ...)
/// applied none of them: each is failed. Values must stay unique per key across batches.
pub async fn recorded_batch(
    history: &History,
    req: &BatchRequest,
    send: impl Future<Output = Result<tonic::Response<BatchResponse>, Status>>,
) -> Result<BatchResponse, Status> {
    let mut ops = Vec::new();
    for op in &req.ops {
        let (key, kind) = match &op.op {
            Some(write_op::Op::PutConcept(p)) => {
                let c = p.concept.clone().unwrap_or_default();
                let kind = put_kind(history, &c.id, &c.content, p.expected_version);
                (c.id, kind)
            }
            Some(write_op::Op::DeleteConcept(d)) => (d.id.clone(), OpKind::Delete),
            _ => continue,
        };
        ops.push(invoke_write(history, req.header.as_ref(), &key, kind));
    }
    let r = send.await.map(tonic::Response::into_inner);
    let (outcome, reply) = write_outcome(&write_of(&r, |b| b.write), false);
    for op in ops {
        complete(history, op, outcome, reply);
    }
    r
}

/// Sends a LINEARIZABLE `GetConcept` of `id` (`send`, not yet polled) and records it as a
/// read by `client`. Record only LINEARIZABLE reads (the checker's recorder duties).
pub async fn recorded_get(
    history: &History,
    client: &str,
    id: &str,
    send: impl Future<Output = Result<tonic::Response<GetConceptResponse>, Status>>,
) -> Result<GetConceptResponse, Status> {
    let op = history.invoke(client, id, OpKind::Read { observed: None });
    let r = send.await.map(tonic::Response::into_inner);
    if let Err(e) = complete_get(history, op, &r) {
        tracing::error!(error = %e, "recording a read");
    }
    r
}

/// Records a LINEARIZABLE scan of `prefix`, sent at `invoked` (on the history's clock,
/// [`History::now`]) and answered with `scan` just now, as one read per key: every key of
/// the scan with what it returned, and every other key of `prefix` the history wrote as
/// absent. A linearizable scan reads all of them at one instant within that interval.
pub fn record_scan(
    history: &History,
    client: &str,
    prefix: &str,
    invoked: u64,
    scan: &BTreeMap<String, Concept>,
) -> Result<()> {
    let completed = history.now();
    let mut keys: Vec<String> = history
        .ops()
        .into_iter()
        .filter(|op| op.key.starts_with(prefix) && op.kind.is_mutation())
        .map(|op| op.key)
        .collect();
    keys.extend(scan.keys().cloned());
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let c = scan.get(&key);
        let op = history.invoke_at(client, key, OpKind::Read { observed: None }, invoked);
        history.complete_read_at(
            op,
            c.map(|c| Value::from(c.content.as_slice())),
            c.map(|c| c.version),
            completed,
        )?;
    }
    Ok(())
}

fn invoke_write(
    history: &History,
    header: Option<&sutra_proto::storage::WriteHeader>,
    key: &str,
    kind: OpKind,
) -> OpId {
    match header {
        Some(h) => history.invoke_tagged(&h.client_id, key, kind, format!("seq {}", h.sequence)),
        None => history.invoke("no header", key, kind),
    }
}

fn complete(history: &History, op: OpId, outcome: Outcome, reply: Reply) {
    if let Err(e) = history.complete_with(op, outcome, reply) {
        // Only a bug here (an operation completed twice) can get here.
        tracing::error!(error = %e, "recording a write");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Five writes: two acknowledged (one answered from the session table), one failed,
    /// two unknown.
    fn history() -> History {
        let h = History::new();
        for (i, (outcome, deduplicated)) in [
            (Outcome::Ok { version: Some(10) }, false),
            (Outcome::Ok { version: Some(11) }, true),
            (Outcome::Failed, false),
            (Outcome::Unknown, false),
            (Outcome::Unknown, false),
        ]
        .into_iter()
        .enumerate()
        {
            let value = Value::from(format!("v{i}"));
            let op = h.invoke_tagged("c", format!("k{i}"), OpKind::Write { value }, "seq");
            let reply = Reply {
                deduplicated,
                ..Reply::default()
            };
            h.complete_with(op, outcome, reply).expect("completes");
        }
        h
    }

    fn concept(id: &str, content: &str, version: u64) -> (String, Concept) {
        (
            id.to_owned(),
            Concept {
                id: id.to_owned(),
                content: content.as_bytes().to_vec(),
                version,
                ..Concept::default()
            },
        )
    }

    fn good() -> BTreeMap<String, Concept> {
        BTreeMap::from([
            concept("k0", "v0", 10),
            concept("k1", "v1", 11),
            concept("k3", "v3", 12),
        ])
    }

    #[test]
    fn a_consistent_store_passes_and_is_counted() {
        let h = history();
        let report = check_scan(&h.ops(), &good()).unwrap();
        assert_eq!(
            (
                report.acknowledged,
                report.unknown_applied,
                report.unknown_absent
            ),
            (2, 1, 1)
        );
        assert_eq!(h.max_acked_version(), Some(11));
        let c = h.counts();
        assert_eq!(
            (
                c.acknowledged,
                c.deduplicated,
                c.failed,
                c.unknown,
                c.pending
            ),
            (2, 1, 1, 2, 0)
        );
    }

    #[test]
    fn every_kind_of_violation_is_reported() {
        let ops = history().ops();
        let mut lost = good();
        lost.remove("k1");
        let mut changed = good();
        changed.insert("k0".into(), concept("k0", "other", 10).1);
        let mut twice = good();
        twice.insert("k0".into(), concept("k0", "v0", 13).1);
        let mut failed_applied = good();
        failed_applied.extend([concept("k2", "v2", 14)]);
        let mut phantom = good();
        phantom.extend([concept("k9", "v9", 15)]);
        for (name, stored, needle) in [
            ("lost", lost, "lost: "),
            ("changed", changed, "which no operation wrote"),
            ("twice", twice, "duplicated: "),
            ("failed applied", failed_applied, "failed but visible"),
            ("phantom", phantom, "\"k9\" holds"),
        ] {
            let err = check_scan(&ops, &stored).unwrap_err().to_string();
            assert!(err.contains(needle), "{name}: {err}");
        }
    }

    fn put(seq: u64, content: &str, expected_version: Option<u64>) -> PutConceptRequest {
        PutConceptRequest {
            header: Some(sutra_proto::storage::WriteHeader {
                client_id: "c".into(),
                sequence: seq,
            }),
            concept: Some(concept("k", content, 0).1),
            expected_version,
        }
    }

    fn written(version: u64) -> WriteResponse {
        WriteResponse {
            version,
            served_by: 1,
            leader_id: 1,
            deduplicated: false,
        }
    }

    /// Calls recorded through the adapter feed the checker: a compare-and-set on the
    /// version of a value deleted before it, acknowledged, fails the linearizability
    /// check; refused, the same history passes.
    #[tokio::test]
    async fn recorded_calls_feed_the_checks_and_an_impossible_cas_fails_them() {
        for cas_applied in [true, false] {
            let h = History::new();
            let req = put(1, "a", None);
            recorded_put(&h, &req, async { Ok(tonic::Response::new(written(5))) })
                .await
                .unwrap();
            let del = DeleteConceptRequest {
                header: req.header.clone(),
                id: "k".into(),
                expected_version: None,
            };
            let deleted = DeleteConceptResponse {
                write: Some(written(6)),
                existed: true,
            };
            recorded_delete(&h, &del, async { Ok(tonic::Response::new(deleted)) })
                .await
                .unwrap();
            let cas = put(3, "b", Some(5));
            let _ = recorded_put(&h, &cas, async {
                if cas_applied {
                    Ok(tonic::Response::new(written(7)))
                } else {
                    Err(Status::failed_precondition("version mismatch"))
                }
            })
            .await;
            let seen = cas_applied.then(|| concept("k", "b", 7).1);
            let got = GetConceptResponse {
                concept: seen,
                meta: None,
            };
            recorded_get(&h, "r", "k", async { Ok(tonic::Response::new(got)) })
                .await
                .unwrap();
            let ops = h.ops();
            assert!(
                matches!(ops[2].kind, OpKind::Cas { expected: Some(ref v), .. } if *v == Value::from("a"))
            );
            let verdict = check_linearizable(&ops);
            assert_eq!(verdict.is_ok(), !cas_applied, "{verdict:?}");
        }
    }

    #[test]
    fn pending_operations_and_answers_are_mapped() {
        let h = history();
        h.invoke("c", "k5", OpKind::Write { value: "v5".into() });
        let err = check_scan(&h.ops(), &good()).unwrap_err().to_string();
        assert!(err.contains("pending"), "{err}");

        let refused = Err(Status::failed_precondition("version mismatch"));
        assert_eq!(write_outcome(&refused, true).0, Outcome::Mismatch);
        assert_eq!(write_outcome(&refused, false).0, Outcome::Failed);
        let lost = Err(Status::unavailable("connection reset"));
        assert_eq!(write_outcome(&lost, false).0, Outcome::Unknown);
        let h = history();
        assert_eq!(expected_value(&h, "k0", 0), None);
        assert_eq!(expected_value(&h, "k0", 10), Some(Value::from("v0")));
        assert!(
            expected_value(&h, "k0", 99).is_some_and(|v| v != Value::from("v0")),
            "a version nobody wrote expects a value nobody wrote"
        );
    }
}

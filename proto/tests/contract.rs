//! Contract tests: the descriptor set describes the expected services, every
//! element of the .proto files is documented, and messages round-trip.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use prost::Message;
use prost_types::DescriptorProto;
use prost_types::EnumDescriptorProto;
use prost_types::FileDescriptorProto;
use prost_types::FileDescriptorSet;
use prost_types::ServiceDescriptorProto;
use sutra_proto::raft;
use sutra_proto::storage;

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(sutra_proto::FILE_DESCRIPTOR_SET)
        .expect("FILE_DESCRIPTOR_SET decodes")
}

fn file<'a>(set: &'a FileDescriptorSet, name: &str) -> &'a FileDescriptorProto {
    set.file
        .iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("{name} missing from the descriptor set"))
}

fn service<'a>(
    set: &'a FileDescriptorSet,
    package: &str,
    name: &str,
) -> &'a ServiceDescriptorProto {
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| &f.service)
        .find(|s| s.name() == name)
        .unwrap_or_else(|| panic!("service {package}.{name} missing"))
}

/// (method, input type, output type, client streaming, server streaming)
type MethodSig = (String, String, String, bool, bool);

fn methods(svc: &ServiceDescriptorProto) -> Vec<MethodSig> {
    svc.method
        .iter()
        .map(|m| {
            (
                m.name().to_owned(),
                m.input_type().to_owned(),
                m.output_type().to_owned(),
                m.client_streaming(),
                m.server_streaming(),
            )
        })
        .collect()
}

fn unary(package: &str, name: &str, input: &str, output: &str) -> MethodSig {
    (
        name.to_owned(),
        format!(".{package}.{input}"),
        format!(".{package}.{output}"),
        false,
        false,
    )
}

#[test]
fn descriptor_set_has_exactly_the_three_files_and_packages() {
    let set = descriptor_set();
    let files: BTreeMap<&str, &str> = set.file.iter().map(|f| (f.name(), f.package())).collect();
    let expected = BTreeMap::from([
        ("cluster.proto", "sutra.cluster"),
        ("raft.proto", "sutra.raft"),
        ("storage.proto", "sutra.storage"),
    ]);
    assert_eq!(files, expected);
    for f in &set.file {
        assert_eq!(f.syntax(), "proto3", "{}", f.name());
        assert!(
            f.dependency.is_empty(),
            "{} should import nothing",
            f.name()
        );
    }
}

#[test]
fn storage_service_methods() {
    let set = descriptor_set();
    let p = "sutra.storage";
    let got = methods(service(&set, p, "StorageService"));
    let expected = vec![
        unary(p, "PutConcept", "PutConceptRequest", "WriteResponse"),
        unary(p, "GetConcept", "GetConceptRequest", "GetConceptResponse"),
        unary(
            p,
            "DeleteConcept",
            "DeleteConceptRequest",
            "DeleteConceptResponse",
        ),
        unary(p, "PutEdge", "PutEdgeRequest", "WriteResponse"),
        unary(p, "DeleteEdge", "DeleteEdgeRequest", "DeleteEdgeResponse"),
        unary(p, "Batch", "BatchRequest", "BatchResponse"),
        unary(p, "GetNeighbors", "NeighborsRequest", "NeighborsResponse"),
        unary(p, "Scan", "ScanRequest", "ScanResponse"),
        unary(p, "Search", "SearchRequest", "SearchResponse"),
        unary(
            p,
            "HealthCheck",
            "HealthCheckRequest",
            "HealthCheckResponse",
        ),
        unary(p, "GetStats", "GetStatsRequest", "GetStatsResponse"),
        unary(p, "Flush", "FlushRequest", "FlushResponse"),
    ];
    assert_eq!(got, expected);
    // Operators call these full names with grpcurl.
    assert_eq!(
        storage::storage_service_server::SERVICE_NAME,
        "sutra.storage.StorageService"
    );
}

#[test]
fn cluster_service_methods() {
    let set = descriptor_set();
    let p = "sutra.cluster";
    let got = methods(service(&set, p, "ClusterService"));
    let expected = vec![
        unary(p, "Status", "ClusterStatusRequest", "ClusterStatusResponse"),
        unary(p, "AddLearner", "AddLearnerRequest", "MembershipResponse"),
        unary(
            p,
            "ChangeMembership",
            "ChangeMembershipRequest",
            "MembershipResponse",
        ),
        unary(p, "RemoveNode", "RemoveNodeRequest", "MembershipResponse"),
        unary(
            p,
            "TransferLeader",
            "TransferLeaderRequest",
            "TransferLeaderResponse",
        ),
        unary(
            p,
            "TriggerSnapshot",
            "TriggerSnapshotRequest",
            "TriggerSnapshotResponse",
        ),
        unary(p, "ListAlarms", "ListAlarmsRequest", "AlarmsResponse"),
        unary(p, "DisarmAlarm", "DisarmAlarmRequest", "AlarmsResponse"),
        (
            "Backup".to_owned(),
            format!(".{p}.BackupRequest"),
            format!(".{p}.BackupChunk"),
            false,
            true,
        ),
    ];
    assert_eq!(got, expected);
    assert_eq!(
        sutra_proto::cluster::cluster_service_server::SERVICE_NAME,
        "sutra.cluster.ClusterService"
    );
}

#[test]
fn raft_service_methods() {
    let set = descriptor_set();
    let p = "sutra.raft";
    let got = methods(service(&set, p, "RaftService"));
    let mut install = unary(p, "InstallSnapshot", "SnapshotChunk", "SnapshotResponse");
    install.3 = true; // client streaming
    let expected = vec![
        unary(
            p,
            "AppendEntries",
            "AppendEntriesRequest",
            "AppendEntriesResponse",
        ),
        unary(p, "Vote", "VoteRequest", "VoteResponse"),
        unary(p, "PreVote", "VoteRequest", "VoteResponse"),
        install,
        unary(
            p,
            "TransferLeader",
            "TransferLeaderRequest",
            "TransferLeaderResponse",
        ),
        unary(
            p,
            "ForwardWrite",
            "ForwardWriteRequest",
            "ForwardWriteResponse",
        ),
        unary(
            p,
            "ForwardWrites",
            "ForwardWritesRequest",
            "ForwardWritesResponse",
        ),
        unary(p, "ReadIndex", "ReadIndexRequest", "ReadIndexResponse"),
    ];
    assert_eq!(got, expected);
    assert_eq!(
        raft::raft_service_server::SERVICE_NAME,
        "sutra.raft.RaftService"
    );
}

// Field numbers of descriptor.proto used in SourceCodeInfo paths.
const FILE_MESSAGE_TYPE: i32 = 4;
const FILE_ENUM_TYPE: i32 = 5;
const FILE_SERVICE: i32 = 6;
const MESSAGE_FIELD: i32 = 2;
const MESSAGE_NESTED_TYPE: i32 = 3;
const MESSAGE_ENUM_TYPE: i32 = 4;
const MESSAGE_ONEOF_DECL: i32 = 8;
const ENUM_VALUE: i32 = 2;
const SERVICE_METHOD: i32 = 2;

/// Every element (message, field, oneof, enum, enum value, service, method)
/// as (source path, readable name).
fn elements(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    fn idx(i: usize) -> i32 {
        i32::try_from(i).expect("index fits i32")
    }
    fn enum_elements(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        e: &EnumDescriptorProto,
        prefix: &str,
    ) {
        let name = format!("{prefix}{}", e.name());
        for (i, v) in e.value.iter().enumerate() {
            let mut p = path.clone();
            p.extend([ENUM_VALUE, idx(i)]);
            out.push((p, format!("{name}.{}", v.name())));
        }
        out.push((path, name));
    }
    fn message_elements(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        m: &DescriptorProto,
        prefix: &str,
    ) {
        let name = format!("{prefix}{}", m.name());
        for (i, f) in m.field.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_FIELD, idx(i)]);
            out.push((p, format!("{name}.{}", f.name())));
        }
        for (i, o) in m.oneof_decl.iter().enumerate() {
            // `optional` fields get a synthetic oneof, which has no source text.
            let synthetic = m
                .field
                .iter()
                .any(|f| f.proto3_optional() && f.oneof_index == Some(idx(i)));
            if synthetic {
                continue;
            }
            let mut p = path.clone();
            p.extend([MESSAGE_ONEOF_DECL, idx(i)]);
            out.push((p, format!("{name}.oneof {}", o.name())));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            // Map entries are synthesized by the compiler and carry no comments.
            if n.options.as_ref().is_some_and(|o| o.map_entry()) {
                continue;
            }
            let mut p = path.clone();
            p.extend([MESSAGE_NESTED_TYPE, idx(i)]);
            message_elements(out, p, n, &format!("{name}."));
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            let mut p = path.clone();
            p.extend([MESSAGE_ENUM_TYPE, idx(i)]);
            enum_elements(out, p, e, &format!("{name}."));
        }
        out.push((path, name));
    }

    let mut out = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message_elements(&mut out, vec![FILE_MESSAGE_TYPE, idx(i)], m, "");
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        enum_elements(&mut out, vec![FILE_ENUM_TYPE, idx(i)], e, "");
    }
    for (i, s) in file.service.iter().enumerate() {
        for (j, m) in s.method.iter().enumerate() {
            out.push((
                vec![FILE_SERVICE, idx(i), SERVICE_METHOD, idx(j)],
                format!("{}.{}", s.name(), m.name()),
            ));
        }
        out.push((vec![FILE_SERVICE, idx(i)], s.name().to_owned()));
    }
    out
}

#[test]
fn every_element_has_a_doc_comment() {
    let set = descriptor_set();
    let mut undocumented = Vec::new();
    let mut checked = 0;
    for name in ["storage.proto", "cluster.proto", "raft.proto"] {
        let file = file(&set, name);
        let info = file
            .source_code_info
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: descriptor set lacks source info"));
        let documented: BTreeSet<&[i32]> = info
            .location
            .iter()
            .filter(|l| !l.leading_comments().trim().is_empty())
            .map(|l| l.path.as_slice())
            .collect();
        for (path, element) in elements(file) {
            checked += 1;
            if !documented.contains(path.as_slice()) {
                undocumented.push(format!("{name}: {element}"));
            }
        }
    }
    assert!(checked > 300, "walked only {checked} elements");
    assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
}

fn concept(id: &str, version: u64) -> storage::Concept {
    storage::Concept {
        id: id.to_owned(),
        content: vec![0, 1, 2, 255],
        embedding: vec![0.25, -1.5, 3.0],
        attributes: BTreeMap::from([
            ("lang".to_owned(), "en".to_owned()),
            ("source".to_owned(), String::new()),
        ]),
        version,
    }
}

fn edge(from: &str, to: &str) -> storage::Edge {
    storage::Edge {
        from: from.to_owned(),
        to: to.to_owned(),
        relation: "is_a".to_owned(),
        weight: 0.5,
    }
}

/// Index of each op kind; exhaustive, so a new kind fails to compile here.
fn op_kind(op: &storage::write_op::Op) -> usize {
    use storage::write_op::Op;
    match op {
        Op::PutConcept(_) => 0,
        Op::DeleteConcept(_) => 1,
        Op::PutEdge(_) => 2,
        Op::DeleteEdge(_) => 3,
        Op::Check(_) => 4,
    }
}
const OP_KINDS: usize = 5;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    let decoded = M::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(&decoded, msg);
    assert_eq!(
        decoded.encode_to_vec(),
        bytes,
        "re-encoding is byte-identical"
    );
    bytes
}

#[test]
fn batch_request_round_trips_with_every_op_kind() {
    use storage::write_op::Op;
    let ops = vec![
        Op::PutConcept(storage::PutConceptOp {
            concept: Some(concept("a", 0)),
            expected_version: Some(0),
        }),
        Op::PutConcept(storage::PutConceptOp {
            concept: Some(concept("b", 0)),
            expected_version: None,
        }),
        Op::DeleteConcept(storage::DeleteConceptOp {
            id: "c".to_owned(),
            expected_version: Some(17),
        }),
        Op::PutEdge(storage::PutEdgeOp {
            edge: Some(edge("a", "b")),
        }),
        Op::DeleteEdge(storage::DeleteEdgeOp {
            from: "b".to_owned(),
            to: "a".to_owned(),
            relation: "part_of".to_owned(),
        }),
        Op::Check(storage::CheckVersionOp {
            id: "d".to_owned(),
            expected_version: Some(42),
        }),
    ];
    let kinds: BTreeSet<usize> = ops.iter().map(op_kind).collect();
    assert_eq!(
        kinds,
        (0..OP_KINDS).collect::<BTreeSet<_>>(),
        "every op kind is used"
    );

    let req = storage::BatchRequest {
        header: Some(storage::WriteHeader {
            client_id: "client-7".to_owned(),
            sequence: 9,
        }),
        ops: ops
            .into_iter()
            .map(|op| storage::WriteOp { op: Some(op) })
            .collect(),
    };
    let bytes = round_trip(&req);
    let decoded = storage::BatchRequest::decode(bytes.as_slice()).expect("decodes");

    // Compare-and-set relies on presence: Some(0) ("must not exist") is not None.
    let versions: Vec<Option<u64>> = decoded
        .ops
        .iter()
        .map(|op| match op.op.as_ref().expect("op set") {
            Op::PutConcept(p) => p.expected_version,
            Op::DeleteConcept(d) => d.expected_version,
            Op::Check(c) => c.expected_version,
            Op::PutEdge(_) | Op::DeleteEdge(_) => None,
        })
        .collect();
    assert_eq!(versions, [Some(0), None, Some(17), None, None, Some(42)]);

    let resp = storage::BatchResponse {
        write: Some(storage::WriteResponse {
            version: 120,
            deduplicated: true,
            served_by: 2,
            leader_id: 1,
        }),
        results: vec![
            storage::OpResult { existed: true },
            storage::OpResult { existed: false },
        ],
    };
    round_trip(&resp);
}

fn log_id(term: u64, node_id: u64, index: u64) -> raft::LogId {
    raft::LogId {
        term,
        node_id,
        index,
    }
}

fn vote(term: u64, node_id: u64, committed: bool) -> raft::Vote {
    raft::Vote {
        leader_id: Some(raft::LeaderId { term, node_id }),
        committed,
    }
}

#[test]
fn append_entries_request_round_trips_with_every_payload() {
    use raft::entry::Payload;
    let membership = raft::Membership {
        configs: vec![
            raft::NodeIdSet {
                node_ids: vec![1, 2, 3],
            },
            raft::NodeIdSet {
                node_ids: vec![1, 2, 4],
            },
        ],
        nodes: (1..=5)
            .map(|id| {
                (
                    id,
                    raft::Node {
                        raft_addr: format!("127.0.0.1:{}", 7000 + id),
                        api_addr: format!("127.0.0.1:{}", 8000 + id),
                    },
                )
            })
            .collect(),
    };
    let req = raft::AppendEntriesRequest {
        vote: Some(vote(3, 1, true)),
        prev_log_id: Some(log_id(2, 2, 10)),
        entries: vec![
            raft::Entry {
                log_id: Some(log_id(3, 1, 11)),
                payload: Some(Payload::Blank(raft::Blank {})),
            },
            raft::Entry {
                log_id: Some(log_id(3, 1, 12)),
                payload: Some(Payload::Normal(b"\x00opaque command\xff".to_vec())),
            },
            raft::Entry {
                log_id: Some(log_id(3, 1, 13)),
                payload: Some(Payload::Membership(membership)),
            },
            // An empty command must stay distinguishable from a blank entry.
            raft::Entry {
                log_id: Some(log_id(3, 1, 14)),
                payload: Some(Payload::Normal(Vec::new())),
            },
        ],
        leader_commit: Some(log_id(3, 1, 12)),
    };
    round_trip(&req);

    // The initial entry (index 0) and absent optional log ids survive too.
    let first = raft::AppendEntriesRequest {
        vote: Some(vote(1, 1, true)),
        prev_log_id: None,
        entries: vec![raft::Entry {
            log_id: Some(log_id(0, 1, 0)),
            payload: Some(Payload::Blank(raft::Blank {})),
        }],
        leader_commit: None,
    };
    let bytes = round_trip(&first);
    let decoded = raft::AppendEntriesRequest::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded.prev_log_id, None);
    assert_eq!(decoded.entries[0].log_id, Some(log_id(0, 1, 0)));
}

#[test]
fn append_entries_response_variants_stay_distinct() {
    use raft::append_entries_response::{Conflict, Outcome, PartialSuccess, Success};
    let variants = [
        Outcome::Success(Success {}),
        Outcome::PartialSuccess(PartialSuccess { matching: None }),
        Outcome::PartialSuccess(PartialSuccess {
            matching: Some(log_id(3, 1, 7)),
        }),
        Outcome::Conflict(Conflict {}),
        Outcome::HigherVote(vote(4, 2, false)),
    ];
    for outcome in variants {
        let resp = raft::AppendEntriesResponse {
            outcome: Some(outcome),
        };
        round_trip(&resp);
    }
}

#[test]
fn snapshot_chunks_round_trip() {
    use raft::snapshot_chunk::Kind;
    let header = Kind::Header(raft::SnapshotHeader {
        vote: Some(vote(5, 3, true)),
        meta: Some(raft::SnapshotMeta {
            last_log_id: Some(log_id(5, 3, 900)),
            last_membership: Some(raft::StoredMembership {
                log_id: Some(log_id(4, 1, 500)),
                membership: Some(raft::Membership {
                    configs: vec![raft::NodeIdSet {
                        node_ids: vec![1, 2, 3],
                    }],
                    nodes: BTreeMap::new(),
                }),
            }),
            snapshot_id: "5-3-900-1".to_owned(),
        }),
        total_size_bytes: 3,
        crc32c: 0xDEAD_BEEF,
    });
    let data = Kind::Data(raft::SnapshotData {
        offset: 0,
        data: vec![1, 2, 3],
    });
    for kind in [header, data] {
        round_trip(&raft::SnapshotChunk { kind: Some(kind) });
    }
}

#[test]
fn operator_facing_field_tags_are_stable() {
    // Operators parse GetStats fields 1..=7 and HealthCheck.healthy: pin
    // their tags, since renumbering breaks binary clients silently.
    let stats = storage::GetStatsResponse {
        concepts: 1,
        edges: 2,
        written: 3,
        dropped: 4,
        pending: 5,
        reconciliations: 6,
        uptime_seconds: 7,
        ..Default::default()
    };
    assert_eq!(
        stats.encode_to_vec(),
        [
            0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4, 0x28, 5, 0x30, 6, 0x38, 7
        ]
    );
    let health = storage::HealthCheckResponse {
        healthy: true,
        ..Default::default()
    };
    assert_eq!(health.encode_to_vec(), [0x08, 1]);
}

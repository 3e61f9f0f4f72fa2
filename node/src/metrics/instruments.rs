//! [`Instruments`]: the counters and histograms a node updates as work happens (client
//! calls, the stages of a write, WAL syncs, snapshots, refused writes), beside the gauges
//! `registry` reads at scrape time. Updating one is a few atomic operations; nothing here
//! blocks or allocates per call beyond the label set.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::LeaderWatch;

/// Bucket bounds for durations, in seconds: 100 µs to 10 s.
const SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket bounds for the entries one WAL sync makes durable: 1 to 4096.
const ENTRIES: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// One client call's labels: the gRPC service and method, and the status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    method: &'static str,
    code: &'static str,
}

/// A method's labels, for its latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: &'static str,
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// A stage of a write, as `sutra_write_stage_duration_seconds` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStage {
    /// On a follower: relaying the write to the leader and waiting for its answer.
    Relay,
    /// On the leader: from proposing the write to the start of its apply (append,
    /// replication to a quorum, fsync, commit).
    Propose,
    /// Applying the committed write to the storage engine.
    Apply,
}

impl WriteStage {
    fn label(self) -> &'static str {
        match self {
            Self::Relay => "relay",
            Self::Propose => "propose",
            Self::Apply => "apply",
        }
    }
}

/// Why this node refused a write, as `sutra_writes_refused_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An alarm makes the cluster read-only.
    Alarm,
    /// The cluster quota is reached.
    Quota,
    /// The write breaks the cluster's limits or parameters.
    Invalid,
    /// Its preconditions (expected versions, the session's sequence) ruled it out.
    Rejected,
    /// No leader could take it (none known, cut off, stopped).
    Unavailable,
    /// Its deadline ran out.
    Deadline,
    /// Anything else.
    Other,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Alarm => "alarm",
            Self::Quota => "quota",
            Self::Invalid => "invalid",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Deadline => "deadline",
            Self::Other => "other",
        }
    }
}

/// The gRPC name of a status code, as gRPC's own libraries print it (`OK`, `NotFound`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// The live instruments of one node. Clones share them.
#[derive(Debug, Clone)]
pub struct Instruments {
    calls: Family<CallLabels, Counter>,
    call_seconds: Histograms<MethodLabels>,
    write_stage_seconds: Histograms<StageLabels>,
    fsync_seconds: Histogram,
    entries_per_sync: Histogram,
    snapshots_sent: Counter,
    snapshots_installed: Counter,
    writes_refused: Family<ReasonLabels, Counter>,
    /// Leader changes as this node saw them.
    pub leaders: LeaderWatch,
}

impl Default for Instruments {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(seconds_histogram),
            write_stage_seconds: Family::new_with_constructor(seconds_histogram),
            fsync_seconds: seconds_histogram(),
            entries_per_sync: Histogram::new(ENTRIES),
            snapshots_sent: Counter::default(),
            snapshots_installed: Counter::default(),
            writes_refused: Family::default(),
            leaders: LeaderWatch::default(),
        }
    }
}

impl Instruments {
    /// A finished client call of `method` (`service/Method`, from the known methods)
    /// with its status code and duration.
    pub fn call_finished(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        let (service, method) = method
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", method));
        self.calls
            .get_or_create(&CallLabels {
                service,
                method,
                code: code_name(code),
            })
            .inc();
        self.call_seconds
            .get_or_create(&MethodLabels { service, method })
            .observe(elapsed.as_secs_f64());
    }

    /// One stage of a write took `elapsed`.
    pub fn write_stage(&self, stage: WriteStage, elapsed: Duration) {
        self.write_stage_seconds
            .get_or_create(&StageLabels {
                stage: stage.label(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// This node refused a write.
    pub fn write_refused(&self, why: Refusal) {
        self.writes_refused
            .get_or_create(&ReasonLabels {
                reason: why.label(),
            })
            .inc();
    }

    /// Writes refused for `why` so far.
    pub fn writes_refused(&self, why: Refusal) -> u64 {
        self.writes_refused
            .get(&ReasonLabels {
                reason: why.label(),
            })
            .map_or(0, |c| c.get())
    }

    /// Adds every instrument to `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "sutra_grpc_requests",
            "Client API calls finished, by service, method and status code",
            self.calls.clone(),
        );
        r.register(
            "sutra_grpc_request_duration_seconds",
            "Time from a client call's arrival to the end of its answer",
            self.call_seconds.clone(),
        );
        r.register(
            "sutra_write_stage_duration_seconds",
            "Time writes spent in each stage: relay (follower to leader and back), propose (to the start of apply: append, replicate, fsync, commit), apply",
            self.write_stage_seconds.clone(),
        );
        r.register(
            "sutra_log_fsync_duration_seconds",
            "Duration of each group-commit fsync of the Raft log",
            self.fsync_seconds.clone(),
        );
        r.register(
            "sutra_log_entries_per_sync",
            "Log entries made durable by one group-commit fsync",
            self.entries_per_sync.clone(),
        );
        r.register(
            "sutra_snapshots_sent",
            "Snapshots streamed to a follower and accepted",
            self.snapshots_sent.clone(),
        );
        r.register(
            "sutra_snapshots_installed",
            "Snapshots from the leader installed on this node",
            self.snapshots_installed.clone(),
        );
        r.register(
            "sutra_writes_refused",
            "Writes this node answered with an error, by reason",
            self.writes_refused.clone(),
        );
        r.register(
            "sutra_raft_leader_changes",
            "Times this node saw a new leader become known",
            self.leaders.changes(),
        );
    }
}

impl sutra_raft::Observer for Instruments {
    fn wal_synced(&self, elapsed: Duration, entries: u64) {
        self.fsync_seconds.observe(elapsed.as_secs_f64());
        if entries > 0 {
            self.entries_per_sync.observe(entries as f64);
        }
    }

    fn write_applied(&self, propose: Duration, apply: Duration) {
        self.write_stage(WriteStage::Propose, propose);
        self.write_stage(WriteStage::Apply, apply);
    }

    fn snapshot_sent(&self) {
        self.snapshots_sent.inc();
    }

    fn snapshot_installed(&self) {
        self.snapshots_installed.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(i: &Instruments) -> String {
        let mut r = Registry::default();
        i.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn calls_are_counted_by_service_method_and_code() {
        let i = Instruments::default();
        let m = "/sutra.storage.StorageService/PutConcept";
        i.call_finished(m, tonic::Code::Ok, Duration::from_millis(2));
        i.call_finished(m, tonic::Code::Ok, Duration::from_millis(3));
        i.call_finished(m, tonic::Code::Unavailable, Duration::from_millis(1));
        let t = text(&i);
        assert!(
            t.contains(r#"sutra_grpc_requests_total{service="sutra.storage.StorageService",method="PutConcept",code="OK"} 2"#),
            "{t}"
        );
        assert!(t.contains(r#"code="Unavailable"} 1"#), "{t}");
        assert!(
            t.contains(r#"sutra_grpc_request_duration_seconds_count{service="sutra.storage.StorageService",method="PutConcept"} 3"#),
            "{t}"
        );
    }

    #[test]
    fn syncs_stages_and_refusals_are_recorded() {
        let i = Instruments::default();
        sutra_raft::Observer::wal_synced(&i, Duration::from_micros(300), 5);
        sutra_raft::Observer::wal_synced(&i, Duration::from_micros(200), 0);
        sutra_raft::Observer::snapshot_installed(&i);
        i.write_stage(WriteStage::Apply, Duration::from_micros(50));
        i.write_refused(Refusal::Quota);
        assert_eq!(i.writes_refused(Refusal::Quota), 1);
        assert_eq!(i.writes_refused(Refusal::Alarm), 0);
        let t = text(&i);
        assert!(
            t.contains("sutra_log_fsync_duration_seconds_count 2"),
            "{t}"
        );
        assert!(t.contains("sutra_log_entries_per_sync_count 1"), "{t}");
        assert!(t.contains("sutra_log_entries_per_sync_sum 5.0"), "{t}");
        assert!(t.contains("sutra_snapshots_installed_total 1"), "{t}");
        assert!(t.contains("sutra_snapshots_sent_total 0"), "{t}");
        assert!(
            t.contains(r#"sutra_write_stage_duration_seconds_count{stage="apply"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"sutra_writes_refused_total{reason="quota"} 1"#),
            "{t}"
        );
    }
}

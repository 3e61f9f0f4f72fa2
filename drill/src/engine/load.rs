//! A round's load: writer and reader tasks recording every operation in the round's
//! history, the warm-up, and the final reads.

use super::*;

impl<D: FaultDriver> Engine<'_, D> {
    pub(super) fn start_load(&self, round: u32, keys: &[String]) -> Result<Load, DrillError> {
        let c = self.config;
        let stop = Arc::new(AtomicBool::new(false));
        let rec = Arc::new(History::new());
        let keys: Arc<[String]> = keys.into();
        let mut tasks = Vec::new();
        for p in 0..c.writers + c.readers {
            let client = Client::new(client_config(self.driver, c, &self.ids))?;
            let (stop, rec, keys) = (stop.clone(), rec.clone(), keys.clone());
            let timeout = c.op_timeout;
            let writer = p < c.writers;
            let tag = format!("{}/r{round}/p{p}", self.run_id);
            tasks.push(tokio::spawn(async move {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(p) << 32 | u64::from(round));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[(xorshift(&mut rng) % keys.len() as u64) as usize];
                    let ok = if writer {
                        let value = format!("{tag}/{n}");
                        n += 1;
                        write_once(&client, p, key, value, timeout, &rec).await
                    } else {
                        let op = rec.invoke(process_name(p), key.as_str(), read_kind());
                        let r = client
                            .get_with(key, ReadOptions::linearizable().deadline(timeout))
                            .await;
                        complete_read(&rec, op, r.ok())
                    };
                    if !ok {
                        // A refusal can come back at once; do not spin on it.
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }));
        }
        Ok(Load { stop, tasks, rec })
    }

    pub(super) async fn warm_up(&self, load: &Load) -> Result<(), DrillError> {
        let start = Instant::now();
        let want = (2 * self.config.writers as usize).max(10);
        loop {
            let acked = load.rec.counts().acknowledged;
            if acked >= want && start.elapsed() >= self.config.warmup {
                return Ok(());
            }
            if start.elapsed() > self.config.leader_timeout {
                return Err(DrillError::NoWrites {
                    waited: self.config.leader_timeout,
                    acked,
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Reads every key LINEARIZABLE (retrying until the catch-up deadline): the keys
    /// that exist, with their values and versions. The reads join the history.
    pub(super) async fn read_back(
        &self,
        keys: &[String],
        rec: &History,
    ) -> Result<FinalState, DrillError> {
        let mut out = FinalState::new();
        let deadline = Instant::now() + self.config.catch_up_timeout;
        let process = self.config.writers + self.config.readers + 1;
        for key in keys {
            loop {
                let op = rec.invoke_tagged(process_name(process), key, read_kind(), FINAL_READ);
                let r = self
                    .ops
                    .get_with(
                        key,
                        ReadOptions::linearizable().deadline(self.config.op_timeout),
                    )
                    .await;
                match r {
                    Ok(read) => {
                        if let Some(c) = &read.value {
                            let value = Value::from(c.content.as_slice());
                            let version = c.version;
                            out.insert(key.clone(), Stored { value, version });
                        }
                        complete_read(rec, op, Some(read));
                        break;
                    }
                    Err(e) => {
                        complete_read(rec, op, None);
                        if Instant::now() >= deadline {
                            return Err(e.into());
                        }
                        tracing::debug!(%key, error = %e, "final read failed; retrying");
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One put of `value`, recorded.
pub(super) async fn write_once(
    client: &Client,
    process: u32,
    key: &str,
    value: String,
    timeout: Duration,
    rec: &History,
) -> bool {
    let concept = Concept {
        id: key.to_string(),
        content: value.clone().into_bytes(),
        ..Concept::default()
    };
    let kind = OpKind::Write {
        value: Value::from(value),
    };
    let op = rec.invoke(process_name(process), key, kind);
    let r = client
        .put_with(concept, None, CallOptions::new().deadline(timeout))
        .await;
    let (outcome, reply) = match &r {
        Ok(w) => (
            Outcome::Ok {
                version: Some(w.version),
            },
            reply(w.served_by, w.leader_id, w.deduplicated),
        ),
        Err(e) => (write_outcome(e), Reply::default()),
    };
    record(rec.complete_with(op, outcome, reply));
    r.is_ok()
}

/// The [`Reply`] of an answer; node id 0 is "unknown".
pub(super) fn reply(served_by: u64, leader_id: u64, deduplicated: bool) -> Reply {
    let known = |id: u64| (id != 0).then_some(id);
    Reply {
        served_by: known(served_by),
        leader_id: known(leader_id),
        deduplicated,
    }
}

/// A read of a key, as it is invoked.
pub(super) fn read_kind() -> OpKind {
    OpKind::Read { observed: None }
}

/// The history's name of task `process` (writers `0..W`, readers after them, probes
/// and final reads last).
pub(super) fn process_name(process: u32) -> String {
    format!("p{process}")
}

/// Completes the read `op` with its answer (`None`: no answer, the read constrains
/// nothing); returns whether it was answered.
pub(super) fn complete_read(
    rec: &History,
    op: OpId,
    answer: Option<Read<Option<Concept>>>,
) -> bool {
    match answer {
        Some(read) => {
            let version = read.value.as_ref().map(|c| c.version);
            let observed = read.value.map(|c| Value::from(c.content));
            let reply = reply(read.meta.served_by, read.meta.leader_id, false);
            record(rec.complete_read_with(op, observed, version, reply));
            true
        }
        None => {
            record(rec.complete(op, Outcome::Unknown));
            false
        }
    }
}

/// A recording call can only fail for an operation this module did not invoke or
/// completed twice: a bug here, logged rather than ending the round.
pub(super) fn record(r: sutra_checker::Result<()>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "drill history");
    }
}

pub(super) fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

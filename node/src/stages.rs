//! The stage timings of the client call being served, for its slow-request line. The
//! call's measuring layer (`server/measured.rs`) opens a [`scope`] around the call; the
//! write path notes each stage it went through ([`note`]); outside a scope a note is
//! dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::metrics::WriteStage;

/// The stages a call went through, and how long each took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stages {
    /// Relaying to the leader (on a follower).
    pub relay: Option<Duration>,
    /// Proposing to the start of apply (on the leader).
    pub propose: Option<Duration>,
    /// Applying.
    pub apply: Option<Duration>,
}

impl Stages {
    /// Milliseconds of a stage, or -1 when the call did not go through it (for logs).
    pub fn ms(stage: Option<Duration>) -> f64 {
        stage.map_or(-1.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// The stages of one call, shared by its scope and whoever reads them after.
pub type SharedStages = Arc<Mutex<Stages>>;

tokio::task_local! {
    static CURRENT: SharedStages;
}

/// Runs `call` with `stages` collecting the stage timings noted inside it.
pub fn scope<F: Future>(stages: SharedStages, call: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(stages, call)
}

/// Notes that the current call spent `elapsed` in `stage`.
pub fn note(stage: WriteStage, elapsed: Duration) {
    let _ = CURRENT.try_with(|s| {
        let mut s = s.lock();
        let slot = match stage {
            WriteStage::Relay => &mut s.relay,
            WriteStage::Propose => &mut s.propose,
            WriteStage::Apply => &mut s.apply,
        };
        *slot = Some(elapsed);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_inside_a_scope_are_collected_and_outside_dropped() {
        note(WriteStage::Relay, Duration::from_millis(9));
        let stages = SharedStages::default();
        scope(stages.clone(), async {
            note(WriteStage::Propose, Duration::from_millis(2));
            tokio::task::yield_now().await;
            note(WriteStage::Apply, Duration::from_millis(1));
        })
        .await;
        let s = *stages.lock();
        assert_eq!(s.relay, None);
        assert_eq!(s.propose, Some(Duration::from_millis(2)));
        assert_eq!(s.apply, Some(Duration::from_millis(1)));
    }
}

//! Recovery after quorum loss: a survivor's state machine takes every entry its log holds.

mod common;

use common::*;
use sutra_raft::restore::apply_whole_log;

/// A log of a membership entry and five puts of which the state machine applied only the
/// first two entries: `apply_whole_log` applies the other four (committed or not), after
/// which every put is readable and a second call has nothing left to apply.
#[tokio::test]
async fn every_logged_entry_past_the_applied_one_is_applied() {
    let dir = temp_dir();
    let (mut log, mut sm) = open_pair(dir.path());
    let mut entries = vec![membership(1, 0, &[1])];
    entries.extend((1..=5).map(|i| put_entry(1, i, &format!("c{i}"), &format!("v{i}"))));
    append(&mut log, entries.clone()).await.unwrap();
    apply(&mut sm, entries[..2].to_vec()).await.unwrap();
    assert!(sm.engine().get("c2").unwrap().is_none(), "c2 applied early");

    assert_eq!(apply_whole_log(&mut sm, &mut log).await.unwrap(), 4);
    for i in 1..=5 {
        let c = sm.engine().get(&format!("c{i}")).unwrap().expect("applied");
        assert_eq!(c.content, format!("v{i}").into_bytes());
    }
    assert_eq!(apply_whole_log(&mut sm, &mut log).await.unwrap(), 0);
}

//! The writer of both stores' crash tests (a process killed mid-stream): the batches it
//! commits, and which of them a store holds.

use contractcourt_core::action::{Batch, RecordKey, RecordOp};
use contractcourt_core::types::ClaimId;
use contractcourt_sync::store::conformance::{append, chan, put, rec};
use contractcourt_sync::store::Store;
use serde_json::json;

/// Step `i` of the crash test's writer: the node record says `i`; claims `i-2..=i` exist (each
/// step adds one and deletes the one three steps back); log entry `i` is appended.
pub fn crash_step(i: u64) -> Batch {
    let mut ops = vec![
        put(RecordKey::Node, rec(1, json!({ "step": i }))),
        put(
            RecordKey::Claim { claim: ClaimId(i) },
            rec(1, json!({ "step": i })),
        ),
        // A large entry, so a kill often lands in the middle of writing a transaction.
        append(
            chan(1),
            i,
            rec(1, json!({ "step": i, "pad": "x".repeat(64 * 1024) })),
        ),
    ];
    if let Some(old) = i.checked_sub(3) {
        ops.push(RecordOp::Delete {
            key: RecordKey::Claim {
                claim: ClaimId(old),
            },
        });
    }
    Batch { ops }
}

/// The last step a store holds (none before the first).
pub fn stored_step(store: &impl Store) -> Option<u64> {
    store
        .load()
        .unwrap()
        .get(&RecordKey::Node)
        .map(|r| r.body.to_value()["step"].as_u64().unwrap())
}

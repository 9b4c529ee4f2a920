//! The SQLite store tests' files and data: a temporary directory, a history of batches, some
//! events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bitcoin::hashes::{sha256, Hash};
use contractcourt_core::action::{Batch, CommitmentSlot, Record, RecordBody, RecordKey, RecordOp};
use contractcourt_core::event::{Event, ForceCloseReason};
use contractcourt_core::types::{BlockRef, ChannelId, ClaimId};
use contractcourt_sync::store::{SqliteStore, Store};
use serde_json::json;

/// A fresh directory under cargo's per-target temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "store-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("store.sqlite")
    }

    /// Every file in the directory with its length and the SHA256 of its bytes.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, (usize, String)> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let bytes = std::fs::read(e.path()).unwrap();
                let hash = sha256::Hash::hash(&bytes).to_string();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    (bytes.len(), hash),
                )
            })
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn chan(n: u8) -> ChannelId {
    ChannelId([n; 32])
}

pub(crate) fn rec(version: u32, body: serde_json::Value) -> Record {
    Record {
        version,
        body: RecordBody::from_value(&body),
    }
}

pub(crate) fn put(key: RecordKey, record: Record) -> RecordOp {
    RecordOp::Put { key, record }
}

pub(crate) fn append(channel: ChannelId, seq: u64, record: Record) -> RecordOp {
    RecordOp::Append {
        channel,
        seq,
        record,
    }
}

pub(crate) fn history() -> Vec<Batch> {
    vec![
        Batch {
            ops: vec![
                put(RecordKey::Node, rec(1, json!({"tip": 100}))),
                put(
                    RecordKey::Channel { channel: chan(1) },
                    rec(1, json!({"state": "default", "label": "MARKER-abcdefgh"})),
                ),
                put(
                    RecordKey::Commitment {
                        channel: chan(1),
                        slot: CommitmentSlot::RemoteCurrent,
                    },
                    rec(
                        3,
                        json!({"number": 7, "htlcs": [{"id": 1, "amount_msat": 5000}]}),
                    ),
                ),
                append(chan(1), 6, rec(1, json!({"htlcs": [1, 2, 3]}))),
            ],
        },
        Batch {
            ops: vec![
                put(
                    RecordKey::Claim { claim: ClaimId(0) },
                    rec(1, json!("claim")),
                ),
                RecordOp::Delete {
                    key: RecordKey::Commitment {
                        channel: chan(1),
                        slot: CommitmentSlot::RemoteCurrent,
                    },
                },
                append(chan(1), 7, rec(1, json!({"htlcs": []}))),
                append(chan(2), 0, rec(2, json!(null))),
            ],
        },
    ]
}

pub(crate) fn events() -> Vec<Event> {
    vec![
        Event::Resumed { tip: None },
        Event::Tick {
            unix_secs: 1_700_000_000,
        },
        Event::ForceCloseRequested {
            channel: chan(1),
            reason: ForceCloseReason::User,
        },
        Event::Resumed {
            tip: Some(BlockRef {
                height: 800_000,
                hash: "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054"
                    .parse()
                    .unwrap(),
            }),
        },
    ]
}

/// A store with [`history`] committed and [`events`] recorded, then closed.
pub(crate) fn populated(dir: &TempDir) {
    let mut store = SqliteStore::open(dir.db()).unwrap();
    for b in history() {
        store.commit(&b).unwrap();
    }
    for e in events() {
        store.append_event(&e).unwrap();
    }
}

pub(crate) fn raw(dir: &TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.db()).unwrap()
}

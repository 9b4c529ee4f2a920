//! `docs/node-protocol.md` shows a JSON example of every message, each of which the engine's
//! own protocol code reads: node messages through `protocol::parse` (as `serve` does), engine
//! messages as `Outbound` (as the reference client does).

use std::collections::BTreeSet;
use std::path::Path;

use contractcourt_sync::serve::protocol::{self, Outbound};
use serde_json::Value;

/// Every message type of the protocol, by direction.
const FROM_NODE: &[&str] = &["hello", "event", "signed", "funded", "ping"];
const FROM_ENGINE: &[&str] = &[
    "welcome",
    "ok",
    "pong",
    "error",
    "update_persisted",
    "settle_upstream",
    "fail_upstream",
    "report",
    "sign_request",
    "fund_request",
    "release_inputs",
    "alert",
];
/// Every event kind the node may send, and every channel change.
const NODE_EVENTS: &[&str] = &[
    "channel_update",
    "force_close_requested",
    "circuit_added",
    "circuit_removed",
    "preimage_learned",
    "upstream_acked",
    "wallet_balance",
];
const CHANGES: &[&str] = &[
    "registered",
    "funding_changed",
    "local_commitment",
    "remote_commitment",
    "local_commitment_revoked",
    "revocation_secret",
    "shutdown_scripts",
    "data_loss_detected",
];

fn examples() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/node-protocol.md");
    let text = std::fs::read_to_string(&path).expect("docs/node-protocol.md");
    text.split("```json\n")
        .skip(1)
        .map(|block| block.split("\n```").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn every_message_of_the_node_protocol_has_an_example_the_engine_reads() {
    let mut types = BTreeSet::new();
    let mut events = BTreeSet::new();
    let mut changes = BTreeSet::new();
    for example in examples() {
        assert_eq!(
            example.lines().count(),
            1,
            "one line per message: {example}"
        );
        let value: Value = serde_json::from_str(&example).expect("valid JSON");
        let kind = value["type"].as_str().expect("a type").to_owned();
        if FROM_NODE.contains(&kind.as_str()) {
            let (id, parsed) = protocol::parse(&example);
            assert!(id.is_some(), "{example}");
            let message = parsed.unwrap_or_else(|e| panic!("{e:?}: {example}"));
            if let protocol::Inbound::Event { event } = &message {
                assert!(protocol::node_may_send(event), "{example}");
                events.insert(value["event"]["type"].as_str().unwrap().to_owned());
                if let Some(change) = value["event"]["change"]["kind"].as_str() {
                    changes.insert(change.to_owned());
                }
            }
        } else {
            let message: Result<Outbound, _> = serde_json::from_value(value.clone());
            message.unwrap_or_else(|e| panic!("{e}: {example}"));
            assert_eq!(value["v"], 1, "{example}");
        }
        types.insert(kind);
    }
    for kind in FROM_NODE.iter().chain(FROM_ENGINE) {
        assert!(types.contains(*kind), "no example of {kind}");
    }
    for kind in NODE_EVENTS {
        assert!(events.contains(*kind), "no example of the event {kind}");
    }
    for kind in CHANGES {
        assert!(
            changes.contains(*kind),
            "no example of the channel change {kind}"
        );
    }
}

//! The node protocol's messages (`docs/node-protocol.md`): newline-delimited JSON objects, each
//! with `"v": 1` and a `"type"`. Every message from the node carries an `"id"` of its choosing
//! and gets exactly one reply with that `id` (`welcome`, `ok`, `pong` or `error`). The engine's
//! own messages (notifications and requests) carry no `id`.
//!
//! Payloads are the core's own serialised types (`Event`, `SignRequest`, `Report`, …), so the
//! protocol cannot drift from the engine's vocabulary.

use contractcourt_core::action::{FailReason, FundingRequest, Report, SignRequest};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{Event, FundingOutcome, SignOutcome};
use contractcourt_core::types::{BlockRef, ChannelId, ClaimId, HtlcKey, RequestId};
use serde::{Deserialize, Serialize};

/// The protocol version this engine speaks.
pub const VERSION: u32 = 1;

/// A message from the node (without its `v` and `id`, read first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Inbound {
    /// The first message of a connection. The engine answers `welcome`, then re-sends everything
    /// pending (as after a restart).
    Hello {
        /// The node's name, for logs.
        #[serde(default)]
        node: Option<String>,
    },
    /// One of the node's events: `channel_update`, `force_close_requested`, `circuit_added`,
    /// `circuit_removed`, `preimage_learned`, `upstream_acked` or `wallet_balance`.
    Event {
        /// The core's event.
        event: Event,
    },
    /// The answer to a `sign_request`.
    Signed {
        /// The request answered.
        request: RequestId,
        /// The signatures, or why there are none.
        outcome: SignOutcome,
    },
    /// The answer to a `fund_request`.
    Funded {
        /// The request answered.
        request: RequestId,
        /// The wallet's inputs and change, or why there are none.
        outcome: FundingOutcome,
    },
    /// Is the engine there?
    Ping,
}

/// Why a message was refused. A refused message changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object, or not a message of this protocol.
    Malformed,
    /// A `v` this engine does not speak.
    UnsupportedVersion,
    /// A message before `hello`.
    HelloFirst,
    /// An event the node may not send (chain events and action results are the engine's).
    NotAllowed,
    /// A `signed` or `funded` for no outstanding request.
    Unexpected,
    /// The engine refused the event (an `update_id` gap, an unknown channel, …).
    Refused,
    /// The engine could not process it now (starting, or its store failed); send it again.
    Unavailable,
    /// Another node is connected: this connection is closed.
    Busy,
}

/// A message from the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outbound {
    /// The reply to `hello`.
    Welcome {
        /// The message answered.
        id: u64,
        /// The engine's chain tip.
        tip: Option<BlockRef>,
    },
    /// The message `id` was taken.
    Ok {
        /// The message answered.
        id: u64,
    },
    /// The reply to `ping`.
    Pong {
        /// The message answered.
        id: u64,
        /// The engine's chain tip.
        tip: Option<BlockRef>,
    },
    /// The message `id` was refused and changed nothing.
    Error {
        /// The message answered (`null` if it had none that could be read).
        id: Option<u64>,
        /// Why.
        code: ErrorCode,
        /// Details, for people.
        message: String,
    },
    /// Update `update_id` of `channel` is durable.
    UpdatePersisted {
        /// The channel.
        channel: ChannelId,
        /// The update.
        update_id: u64,
    },
    /// Settle this incoming HTLC upstream (at least once; answer with `upstream_acked`).
    SettleUpstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
        /// Its preimage.
        preimage: PaymentPreimage,
    },
    /// Fail this incoming HTLC upstream (at least once; answer with `upstream_acked`).
    FailUpstream {
        /// The incoming HTLC.
        htlc: HtlcKey,
        /// Why.
        reason: FailReason,
    },
    /// A report for the operator (the report's own fields, its kind in `"report"`).
    Report(Report),
    /// Sign these inputs; answer with `signed` (the request's own fields).
    SignRequest(SignRequest),
    /// Offer wallet inputs for this claim; answer with `funded` (the request's own fields).
    FundRequest(FundingRequest),
    /// The inputs lent to this claim may be used again.
    ReleaseInputs {
        /// The claim.
        claim: ClaimId,
    },
    /// Something the operator must see that is not the engine's (the chain source unreachable).
    Alert {
        /// What.
        kind: String,
        /// Details.
        message: String,
    },
}

/// An outbound message as one line (`v` added).
pub fn line(message: &Outbound) -> String {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), VERSION.into());
    }
    let mut text = value.to_string();
    text.push('\n');
    text
}

/// A line from the node, read: its `id` (if any could be read) and the message, or why not.
pub fn parse(text: &str) -> (Option<u64>, Result<Inbound, (ErrorCode, String)>) {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (None, Err((ErrorCode::Malformed, format!("not JSON: {e}")))),
    };
    let Some(object) = value.as_object() else {
        return (
            None,
            Err((ErrorCode::Malformed, "not a JSON object".into())),
        );
    };
    let id = object.get("id").and_then(serde_json::Value::as_u64);
    let Some(id_value) = id else {
        return (
            None,
            Err((ErrorCode::Malformed, "no numeric \"id\"".into())),
        );
    };
    match object.get("v").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return (
                Some(id_value),
                Err((
                    ErrorCode::UnsupportedVersion,
                    format!("version {v}; this engine speaks {VERSION}"),
                )),
            )
        }
        None => return (id, Err((ErrorCode::Malformed, "no numeric \"v\"".into()))),
    }
    let mut rest = object.clone();
    rest.remove("v");
    rest.remove("id");
    match serde_json::from_value(serde_json::Value::Object(rest)) {
        Ok(message) => (id, Ok(message)),
        Err(e) => (id, Err((ErrorCode::Malformed, e.to_string()))),
    }
}

/// Whether the node may send `event` (chain events and action results are the engine's).
pub fn node_may_send(event: &Event) -> bool {
    matches!(
        event,
        Event::ChannelUpdate(_)
            | Event::ForceCloseRequested { .. }
            | Event::CircuitAdded { .. }
            | Event::CircuitRemoved { .. }
            | Event::PreimageLearned { .. }
            | Event::UpstreamAcked { .. }
            | Event::WalletBalance { .. }
    )
}

/// A message from the node as one line (`v` and `id` added): what a client writes.
pub fn request_line(id: u64, message: &Inbound) -> String {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert("v".into(), VERSION.into());
        object.insert("id".into(), id.into());
    }
    let mut text = value.to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_back_with_its_id_and_bad_lines_are_typed() {
        let text = request_line(7, &Inbound::Ping);
        assert_eq!(parse(text.trim()), (Some(7), Ok(Inbound::Ping)));
        assert_eq!(parse("{").1.unwrap_err().0, ErrorCode::Malformed);
        assert_eq!(
            parse(r#"{"v":2,"id":1,"type":"ping"}"#),
            (
                Some(1),
                Err((
                    ErrorCode::UnsupportedVersion,
                    "version 2; this engine speaks 1".into()
                ))
            )
        );
        assert_eq!(
            parse(r#"{"v":1,"id":3,"type":"launch"}"#).1.unwrap_err().0,
            ErrorCode::Malformed
        );
        assert!(!node_may_send(&Event::Tick { unix_secs: 1 }));
    }
}

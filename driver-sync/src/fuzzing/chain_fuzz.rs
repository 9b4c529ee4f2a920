//! What chain sources answer and the driver interprets: bitcoind's JSON-RPC results and errors,
//! Esplora's JSON and text, raw blocks and transactions.

use std::collections::{BTreeSet, HashMap};

use bitcoin::absolute::LockTime;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use bitcoincore_rpc::json::EstimateSmartFeeResult;
use bitcoincore_rpc::jsonrpc;
use contractcourt_core::chain::{ChainArbitrator, Config};
use contractcourt_core::event::{BroadcastOutcome, Event, FeeConditions};
use contractcourt_core::fee::ESTIMATE_TARGETS;
use contractcourt_core::policy::reject::{classify_reject, is_already_known, is_fee_refusal};

use crate::chain::{bitcoind, esplora, fees, sync};

/// The parent and child of the packages whose verdicts are read.
fn package() -> (Transaction, Transaction) {
    let parent = Transaction {
        version: Version(3),
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([1; 32]),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[[2u8; 72].as_slice(), [3u8; 33].as_slice()]),
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    let child = Transaction {
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: parent.compute_txid(),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        ..parent.clone()
    };
    (parent, child)
}

/// A rejection reason as the core reads it: classified, never a panic.
fn read_reason(outcome: &BroadcastOutcome) {
    if let BroadcastOutcome::Rejected { reason } | BroadcastOutcome::NotDelivered { reason } =
        outcome
    {
        let _ = classify_reject(reason);
        let _ = is_already_known(reason);
        let _ = is_fee_refusal(reason);
    }
}

/// A package verdict: accepted exactly when the answer says `success`; a rejection starts with
/// the answer's message.
fn check_verdict(message: &str, outcome: &BroadcastOutcome) {
    match outcome {
        BroadcastOutcome::Accepted => assert_eq!(message, "success"),
        BroadcastOutcome::Rejected { reason } => {
            assert_ne!(message, "success");
            assert!(reason.starts_with(message), "{reason:?} lost {message:?}");
        }
        other => panic!("a package verdict is {other:?}"),
    }
    read_reason(outcome);
}

/// Fee conditions a source gave: estimates in target order, each target once; the event
/// survives a JSON round trip and a chain arbitrator takes it.
fn check_conditions(fees: FeeConditions) {
    assert!(
        fees.estimates
            .windows(2)
            .all(|w| w[0].target_blocks < w[1].target_blocks),
        "estimates out of target order: {:?}",
        fees.estimates
    );
    let event = Event::FeeConditions(fees);
    let json = serde_json::to_string(&event).expect("an event encodes");
    let again: Event = serde_json::from_str(&json).expect("an event decodes");
    assert_eq!(again, event, "fee conditions changed in a JSON round trip");
    let mut arb = ChainArbitrator::new(Config::default());
    if let Err(e) = arb.step(&event) {
        panic!("the core refused fee conditions from a source: {e}");
    }
}

/// `data` as a bitcoind answer: the first byte picks the call, the rest is the JSON-RPC result
/// (or error object) it answered. Each is decoded as the source decodes it and interpreted by
/// the source's own functions: `getblockchaininfo` (the tip, initial block download),
/// `getmempoolinfo` with the `estimatesmartfee` answers at the core's targets (fee conditions),
/// `getrawmempool` (txids), `getrawmempool true` / `getmempoolentry` (entries put in the order
/// they are delivered), `submitpackage` (a verdict), and a JSON-RPC error (a rejection).
pub fn bitcoind_answers(data: &[u8]) {
    let Some((&call, text)) = data.split_first() else {
        return;
    };
    if call % 8 == 7 {
        // A JSON-RPC error object: bitcoind's verdict on a broadcast.
        let Ok(error) = serde_json::from_slice::<jsonrpc::error::RpcError>(text) else {
            return;
        };
        let message = error.message.clone();
        let e = bitcoincore_rpc::Error::JsonRpc(jsonrpc::Error::Rpc(error));
        assert!(bitcoind::judged(&e), "an error answer is not a verdict");
        assert_eq!(
            bitcoind::reason(&e),
            message,
            "the reason is not bitcoind's"
        );
        read_reason(&BroadcastOutcome::Rejected { reason: message });
        return;
    }
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(text) else {
        return;
    };
    match call % 8 {
        0 => {
            if let Ok(tip) = bitcoind::chain_tip(answer.clone()) {
                let again = serde_json::json!({"blocks": tip.height, "bestblockhash": tip.hash});
                assert_eq!(bitcoind::chain_tip(again).ok(), Some(tip));
            }
            let _ = fees::initial_download(answer);
        }
        1 => fee_answers(answer),
        2 => {
            if let Ok(txids) = bitcoind::mempool_txids(answer) {
                let again = serde_json::to_value(&txids).expect("txids encode");
                assert_eq!(bitcoind::mempool_txids(again).ok(), Some(txids));
            }
        }
        3 | 4 => mempool_entries(answer, call & 0x80 != 0),
        _ => {
            let (parent, child) = package();
            // The message as serde reads the answer: an object's `package_msg`, or the first
            // element of an array (a struct's sequence form).
            let message = match &answer {
                serde_json::Value::Array(fields) => fields.first(),
                other => other.get("package_msg"),
            }
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
            if let Ok(outcome) = bitcoind::package_verdict(answer, &parent, &child) {
                check_verdict(&message.expect("a verdict read a message"), &outcome);
            }
        }
    }
}

/// `[getmempoolinfo, estimatesmartfee 1, estimatesmartfee 2, …]` (the answers at the core's
/// targets, in order; fewer answers are fewer targets asked).
fn fee_answers(answer: serde_json::Value) {
    let Some(answers) = answer.as_array() else {
        return;
    };
    let Some((info, estimates)) = answers.split_first() else {
        return;
    };
    let Ok(info) = fees::mempool_info(info.clone()) else {
        return;
    };
    let mut decoded: Vec<(u16, EstimateSmartFeeResult)> = Vec::new();
    for (target, estimate) in ESTIMATE_TARGETS.iter().zip(estimates) {
        match serde_json::from_value(estimate.clone()) {
            Ok(e) => decoded.push((*target, e)),
            // The source fails the whole call on an answer it cannot decode.
            Err(_) => return,
        }
    }
    let conditions = fees::bitcoind_conditions(&info, decoded.iter().map(|(t, e)| (*t, e)));
    assert_eq!(
        conditions.estimates.len(),
        decoded.iter().filter(|(_, e)| e.fee_rate.is_some()).count(),
        "an estimate was lost or made up"
    );
    check_conditions(conditions);
}

/// A verbose mempool (`{txid: entry}`): the entries put in delivery order. With
/// `parents_delivered`, every parent outside the batch was delivered before; otherwise none was.
fn mempool_entries(answer: serde_json::Value, parents_delivered: bool) {
    let Some(map) = answer.as_object() else {
        return;
    };
    let mut entries = Vec::new();
    for (key, value) in map {
        let Ok(txid) = key.parse::<Txid>() else {
            return;
        };
        let Ok(entry) = bitcoind::mempool_entry(value.clone()) else {
            return;
        };
        entries.push((txid, entry));
    }
    let batch: BTreeSet<Txid> = entries.iter().map(|(txid, _)| *txid).collect();
    let delivered: BTreeSet<Txid> = if parents_delivered {
        entries
            .iter()
            .flat_map(|(_, e)| e.depends.iter().copied())
            .filter(|p| !batch.contains(p))
            .collect()
    } else {
        BTreeSet::new()
    };
    let ready = bitcoind::ready_in_order(entries.clone(), &delivered);
    let mut seen: BTreeSet<Txid> = BTreeSet::new();
    for (txid, entry) in &ready {
        assert!(batch.contains(txid), "{txid} was not fetched");
        for parent in &entry.depends {
            assert!(
                delivered.contains(parent) || seen.contains(parent),
                "{txid} is delivered before its parent {parent}"
            );
        }
        assert!(seen.insert(*txid), "{txid} is delivered twice");
    }
    for (txid, entry) in &entries {
        if !seen.contains(txid) {
            assert!(
                entry
                    .depends
                    .iter()
                    .any(|p| !delivered.contains(p) && !seen.contains(p)),
                "{txid} was held back though its parents are all there"
            );
        }
    }
}

/// `data` as an Esplora answer: the first byte picks the call, the rest is the body. `GET
/// /fee-estimates` (decoded and converted as `esplora-client` does, then fee conditions),
/// `POST /txs/package` (a verdict), and a refused `POST /tx` (a 400 whose body is the reason).
pub fn esplora_answers(data: &[u8]) {
    let Some((&call, body)) = data.split_first() else {
        return;
    };
    match call % 3 {
        0 => {
            let Ok(raw) = serde_json::from_slice::<HashMap<u16, f64>>(body) else {
                return;
            };
            let estimates = esplora_client::sat_per_vbyte_to_feerate(raw.clone());
            let conditions = fees::esplora_conditions(estimates);
            assert_eq!(conditions.estimates.len(), raw.len());
            check_conditions(conditions);
        }
        1 => {
            let Ok(result) = serde_json::from_slice::<esplora_client::SubmitPackageResult>(body)
            else {
                return;
            };
            let (parent, child) = package();
            let outcome = esplora::package_verdict(&result, &parent, &child);
            check_verdict(&result.package_msg, &outcome);
        }
        _ => {
            let message = String::from_utf8_lossy(body).into_owned();
            let e = esplora_client::Error::HttpResponse {
                status: 400,
                message: message.clone(),
            };
            assert!(esplora::judged(&e));
            assert_eq!(esplora::reason(e), message);
            read_reason(&BroadcastOutcome::Rejected { reason: message });
        }
    }
}

/// `data` as raw bytes a source decodes (`getblock` at verbosity 0 and `GET /block/:hash/raw`,
/// `getblockheader` raw and `GET /block/:hash/header`, `getrawtransaction`): the first byte picks
/// which. What decodes encodes back to itself; a block becomes the core's block (the event a
/// source delivers), whose hash and parent are the header's and whose transactions are the
/// block's, and which survives a JSON round trip.
pub fn raw_block(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            let Ok(block) = deserialize::<bitcoin::Block>(bytes) else {
                return;
            };
            let again: bitcoin::Block =
                deserialize(&serialize(&block)).expect("an encoded block decodes");
            assert_eq!(again, block, "a block changed in a round trip");
            let height = u32::from(kind);
            let core = sync::event_block(block.clone(), height);
            assert_eq!(core.height, height);
            assert_eq!(core.hash, block.block_hash());
            assert_eq!(core.prev_hash, block.header.prev_blockhash);
            assert_eq!(core.time, block.header.time);
            assert_eq!(core.txs.len(), block.txdata.len());
            assert!(core.txs.iter().zip(&block.txdata).all(|(a, b)| a.0 == *b));
            let event = Event::BlockConnected(core);
            let json = serde_json::to_string(&event).expect("an event encodes");
            let decoded: Event = serde_json::from_str(&json).expect("an event decodes");
            assert_eq!(decoded, event, "a block changed in a JSON round trip");
        }
        1 => {
            let Ok(header) = deserialize::<bitcoin::block::Header>(bytes) else {
                return;
            };
            assert_eq!(serialize(&header), bytes, "a header is 80 bytes, as it was");
        }
        _ => {
            let Ok(tx) = deserialize::<Transaction>(bytes) else {
                return;
            };
            let again: Transaction = deserialize(&serialize(&tx)).expect("a transaction decodes");
            assert_eq!(again, tx, "a transaction changed in a round trip");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(call: u8, body: &str) -> Vec<u8> {
        let mut data = vec![call];
        data.extend_from_slice(body.as_bytes());
        data
    }

    #[test]
    fn bitcoinds_answers_in_the_tests_loopback_shape_are_read() {
        let hash = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";
        bitcoind_answers(&with(
            0,
            &format!(r#"{{"blocks":12,"bestblockhash":"{hash}","initialblockdownload":true}}"#),
        ));
        bitcoind_answers(&with(
            1,
            r#"[{"mempoolminfee":0.00001,"minrelaytxfee":0.00001,"incrementalrelayfee":0.00001},
                {"feerate":0.0002,"blocks":1},{"errors":["Insufficient data"],"blocks":0}]"#,
        ));
        bitcoind_answers(&with(2, &format!("[\"{hash}\"]")));
        bitcoind_answers(&with(
            5,
            r#"{"package_msg":"transaction failed","tx-results":{}}"#,
        ));
        bitcoind_answers(&with(
            7,
            r#"{"code":-26,"message":"min relay fee not met"}"#,
        ));
    }

    #[test]
    fn a_mempool_chain_is_delivered_parents_first() {
        let [a, b, c] = [[1u8; 32], [2; 32], [3; 32]].map(Txid::from_byte_array);
        let entry = |count: u64, depends: &[Txid]| {
            serde_json::json!({"vsize": 100, "fees": {"base": 0.00001}, "ancestorcount": count,
                               "depends": depends})
        };
        let mempool = serde_json::json!({
            c.to_string(): entry(3, &[b]),
            b.to_string(): entry(2, &[a]),
            a.to_string(): entry(1, &[]),
        });
        bitcoind_answers(&with(3, &mempool.to_string()));
        bitcoind_answers(&with(3 | 0x80, &mempool.to_string()));
    }

    /// What the fuzzer found (`fuzz/artifacts-found/`): a child without `ancestorcount` was
    /// delivered before its parent.
    #[test]
    fn a_mempool_whose_child_has_no_ancestor_count_is_delivered_parents_first() {
        bitcoind_answers(include_bytes!(
            "../../../fuzz/artifacts-found/bitcoind_answers-child-before-parent-without-ancestorcount"
        ));
    }

    #[test]
    fn esploras_answers_are_read() {
        esplora_answers(&with(0, r#"{"1": 2.0, "6": 2.0, "144": 1.0}"#));
        esplora_answers(&with(
            1,
            r#"{"package_msg":"success","tx-results":{},"replaced-transactions":[]}"#,
        ));
        esplora_answers(&with(2, "sendrawtransaction RPC error: txn-already-known"));
    }

    #[test]
    fn a_block_a_header_and_a_transaction_round_trip() {
        let genesis = bitcoin::blockdata::constants::genesis_block(bitcoin::Network::Regtest);
        let mut data = vec![0u8];
        data.extend(serialize(&genesis));
        raw_block(&data);
        let mut data = vec![1u8];
        data.extend(serialize(&genesis.header));
        raw_block(&data);
        let mut data = vec![2u8];
        data.extend(serialize(&package().0));
        raw_block(&data);
    }
}

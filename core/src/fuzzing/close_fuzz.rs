//! `classify_close`: close classification of arbitrary transactions around real channels.
//!
//! Four channels are built once with the `sim` (a static-remote-key one, an anchors one and a
//! zero-fee commitment one with HTLCs both ways, dust among them, revoked states and a pending
//! remote commitment, shutdown scripts known; and one that detected data loss while the peer
//! moved on). A fuzz input picks a
//! channel and either consensus-decodes a transaction, mutates one of the channel's real
//! commitments (current, pending, revoked or future — so the bytes reach the number, revocation
//! and future checks), or builds one from the bytes with the funding outpoint, an encoded
//! commitment number and outputs from a palette of the channel's own scripts. Classification must
//! not panic, must be deterministic, and must agree with what is certain about the transaction.

use std::sync::OnceLock;

use bitcoin::absolute::LockTime;
use bitcoin::consensus::Decodable;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

use super::Bytes;
use crate::bolt3::commitment::{decode_commitment_number, encode_commitment_number};
use crate::bolt3::ChannelType;
use crate::chain::{ChainArbitrator, Config};
use crate::close::{classify_close as classify, Classification, Close};
use crate::commitments::{ChannelInfo, Commitments};
use crate::event::{ChannelChange, ChannelUpdate, Event};
use crate::sim::{SimChannel, SimSetup};
use crate::types::{HtlcDirection, Party};

/// One channel to classify against.
struct Context {
    info: ChannelInfo,
    commitments: Commitments,
    /// Real commitment transactions: ours and the peer's, current, pending, revoked, future.
    txs: Vec<Transaction>,
    /// Scripts the channel's transactions pay, and the shutdown scripts.
    palette: Vec<ScriptBuf>,
    /// Interesting commitment numbers.
    numbers: Vec<u64>,
}

fn contexts() -> &'static [Context] {
    static CONTEXTS: OnceLock<Vec<Context>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        [
            (ChannelType::StaticRemoteKey, false),
            (ChannelType::AnchorsZeroFeeHtlc, false),
            (ChannelType::StaticRemoteKey, true),
            (ChannelType::ZeroFeeCommitments, false),
        ]
        .into_iter()
        .filter_map(|(t, loss)| context(t, loss))
        .collect()
    })
}

fn feed(arb: &mut ChainArbitrator, events: Vec<Event>) {
    for e in events {
        let _ = arb.step(&e);
    }
}

fn context(channel_type: ChannelType, data_loss: bool) -> Option<Context> {
    let (mut sim, events) = SimChannel::open(SimSetup::new(7, channel_type)).ok()?;
    let mut arb = ChainArbitrator::new(Config::default());
    feed(&mut arb, events);
    let expiry = 600;
    sim.add_htlc(HtlcDirection::Outgoing, 5_000_000, expiry)
        .ok()?;
    sim.add_htlc(HtlcDirection::Incoming, 7_000_000, expiry + 10)
        .ok()?;
    sim.add_htlc(HtlcDirection::Outgoing, 200_000, expiry + 20)
        .ok()?;
    feed(&mut arb, sim.commit().ok()?);
    sim.add_htlc(HtlcDirection::Incoming, 3_000_000, expiry + 5)
        .ok()?;
    sim.update_fee(5_000);
    feed(&mut arb, sim.commit().ok()?);
    sim.add_htlc(HtlcDirection::Outgoing, 900_000, expiry + 7)
        .ok()?;
    feed(&mut arb, sim.commit().ok()?);
    sim.add_htlc(HtlcDirection::Incoming, 1_500_000, expiry + 9)
        .ok()?;
    feed(&mut arb, sim.propose().ok()?);
    let id = sim.channel_id;
    let last = arb.channel(&id)?.data.last_update_id;
    let (l, r) = (
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x21; 20])),
        ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x22; 20])),
    );
    let change = if data_loss {
        let next = sim.remote_commitment_number() + 3;
        ChannelChange::DataLossDetected {
            remote_next_commitment_number: next,
            remote_per_commitment_point: sim.remote.per_commitment_point(next - 1).ok(),
        }
    } else {
        ChannelChange::ShutdownScripts {
            local: l.clone(),
            remote: r.clone(),
        }
    };
    let _ = arb.step(&Event::ChannelUpdate(ChannelUpdate {
        channel: id,
        update_id: last + 1,
        change,
    }));
    let ch = arb.channel(&id)?;
    let info = ch.data.info.clone();
    let commitments = ch.data.commitments.clone();
    // The engine stops here; the peer goes on (future commitments).
    let ln = sim.local_commitment_number();
    let pending = sim.remote_pending_number();
    let rn = sim.remote_commitment_number();
    let mut txs = Vec::new();
    for n in 0..=ln {
        txs.push(sim.commitment_tx(Party::Local, n).ok()?);
    }
    for n in 0..=pending.unwrap_or(rn) {
        txs.push(sim.commitment_tx(Party::Remote, n).ok()?);
    }
    let _ = sim.complete();
    let _ = sim.commit();
    let _ = sim.commit();
    for n in pending.unwrap_or(rn) + 1..=sim.remote_commitment_number() {
        txs.push(sim.commitment_tx(Party::Remote, n).ok()?);
    }
    let mut palette = vec![l, r, ScriptBuf::new(), ScriptBuf::new_op_return([1u8; 8])];
    for tx in &txs {
        for o in &tx.output {
            if !palette.contains(&o.script_pubkey) {
                palette.push(o.script_pubkey.clone());
            }
        }
    }
    let top = sim.remote_commitment_number();
    let numbers = vec![0, 1, 2, 3, ln, rn, rn + 1, top, top + 1, (1 << 48) - 1];
    Some(Context {
        info,
        commitments,
        txs,
        palette,
        numbers,
    })
}

/// Close classification on arbitrary transactions around real channels (see the module
/// documentation). Must never panic.
pub fn classify_close(data: &[u8]) {
    let ctxs = contexts();
    if ctxs.is_empty() {
        return;
    }
    let mut b = Bytes::new(data);
    let ctx = &ctxs[b.below(ctxs.len())];
    let tx = match b.u8() % 3 {
        0 => {
            let mut reader = b.rest();
            let Ok(tx) = Transaction::consensus_decode(&mut reader) else {
                return;
            };
            tx
        }
        1 => mutate(ctx, &mut b),
        _ => build(ctx, &mut b),
    };
    check(ctx, &tx);
}

/// One of the channel's real commitments with a few changes.
fn mutate(ctx: &Context, b: &mut Bytes<'_>) -> Transaction {
    let mut tx = ctx.txs[b.below(ctx.txs.len())].clone();
    for _ in 0..b.below(5) {
        let (what, x, y) = (b.u8() % 10, b.u8(), b.u8());
        let outputs = tx.output.len();
        match what {
            0 if outputs > 0 => tx.output[usize::from(x) % outputs].value = value(y),
            1 if outputs > 0 => {
                tx.output[usize::from(x) % outputs].script_pubkey =
                    ctx.palette[usize::from(y) % ctx.palette.len()].clone()
            }
            2 if outputs > 0 => {
                tx.output.remove(usize::from(x) % outputs);
            }
            3 if outputs > 0 => {
                let o = tx.output[usize::from(x) % outputs].clone();
                tx.output.push(o);
            }
            4 => {
                let n = ctx.numbers[usize::from(x) % ctx.numbers.len()] ^ u64::from(y & 3);
                let (lock_time, sequence) = encode_commitment_number(n, ctx.info.obscuring_factor);
                tx.lock_time = lock_time;
                if let Some(i) = tx.input.first_mut() {
                    i.sequence = sequence;
                }
            }
            5 => tx.lock_time = LockTime::from_consensus(u32::from_le_bytes([x, y, x, y])),
            6 => {
                if let Some(i) = tx.input.first_mut() {
                    i.sequence = Sequence(u32::from_le_bytes([y, x, y, x]));
                }
            }
            7 => tx.input.insert(
                usize::from(x) % (tx.input.len() + 1),
                input(OutPoint {
                    txid: Txid::from_byte_array([y; 32]),
                    vout: u32::from(x),
                }),
            ),
            8 if !tx.input.is_empty() => {
                tx.input.remove(usize::from(x) % tx.input.len());
            }
            _ => tx.version = Version(i32::from(x) - 1),
        }
    }
    tx
}

/// A transaction from the bytes: the funding outpoint among other inputs, a commitment number
/// (or raw nLockTime/nSequence), outputs from the palette.
fn build(ctx: &Context, b: &mut Bytes<'_>) -> Transaction {
    let funding = ctx.info.funding[b.below(ctx.info.funding.len())].outpoint;
    let inputs = b.below(3) + 1;
    let at = b.below(inputs + 1);
    let mut input_list: Vec<TxIn> = (0..inputs)
        .map(|i| {
            input(OutPoint {
                txid: Txid::from_byte_array([b.u8(); 32]),
                vout: i as u32,
            })
        })
        .collect();
    if at < inputs {
        input_list[at].previous_output = funding;
    }
    let (lock_time, sequence) = if b.bool() {
        let n = ctx.numbers[b.below(ctx.numbers.len())].wrapping_add(u64::from(b.u8() % 2));
        encode_commitment_number(n, ctx.info.obscuring_factor)
    } else {
        (LockTime::from_consensus(b.u32()), Sequence(b.u32()))
    };
    if let Some(first) = input_list.first_mut() {
        first.sequence = sequence;
    }
    let outputs = b.below(7);
    let output = (0..outputs)
        .map(|_| TxOut {
            value: value(b.u8()),
            script_pubkey: ctx.palette[b.below(ctx.palette.len())].clone(),
        })
        .collect();
    Transaction {
        version: Version::TWO,
        lock_time,
        input: input_list,
        output,
    }
}

fn input(previous_output: OutPoint) -> TxIn {
    TxIn {
        previous_output,
        script_sig: ScriptBuf::new(),
        sequence: Sequence::MAX,
        witness: Witness::new(),
    }
}

fn value(x: u8) -> Amount {
    Amount::from_sat(match x % 4 {
        0 => 330,
        1 => 354,
        2 => u64::from(x) * 10_000,
        _ => u64::from(x) * 3_000_000,
    })
}

/// What is certain about a classification.
fn check(ctx: &Context, tx: &Transaction) {
    let c = classify(tx, &ctx.info, &ctx.commitments);
    assert_eq!(
        c,
        classify(tx, &ctx.info, &ctx.commitments),
        "classification is not deterministic"
    );
    let _ = c.close_kind();
    let json = serde_json::to_string(&c).unwrap_or_else(|e| panic!("{c:?} does not encode: {e}"));
    let back: Classification =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not decode: {e}"));
    assert_eq!(back, c, "a classification does not survive JSON");
    let first_funding = tx.input.iter().position(|i| {
        ctx.info
            .funding
            .iter()
            .any(|f| f.outpoint == i.previous_output)
    });
    let (spend, close) = match &c {
        Classification::NotAFundingSpend => {
            assert_eq!(first_funding, None, "a funding spend was not recognised");
            return;
        }
        Classification::FundingSpent { spend, close } => (spend, close),
    };
    assert_eq!(
        Some(spend.input_index),
        first_funding,
        "the funding spend is not the first input spending a funding output"
    );
    let funding = ctx.info.funding.get(spend.funding_index);
    assert_eq!(funding, Some(&spend.funding), "the funding index is wrong");
    assert_eq!(
        tx.input[spend.input_index].previous_output, spend.funding.outpoint,
        "the input does not spend the funding output named"
    );
    let txid = tx.compute_txid();
    let c = &ctx.commitments;
    let i = spend.funding_index;
    let is = |txids: Option<&Vec<Txid>>| txids.and_then(|t| t.get(i)) == Some(&txid);
    if is(c.local.as_ref().map(|l| &l.commitment.txids)) {
        assert!(matches!(close, Close::LocalCurrent { .. }), "{close:?}");
    } else if is(c.remote_current.as_ref().map(|r| &r.txids)) {
        assert!(matches!(close, Close::RemoteCurrent { .. }), "{close:?}");
    } else if is(c.remote_pending.as_ref().map(|r| &r.txids)) {
        assert!(matches!(close, Close::RemotePending { .. }), "{close:?}");
    }
    let number = decode_commitment_number(tx, ctx.info.obscuring_factor);
    match close {
        Close::Cooperative => {
            assert_eq!(number, None, "a cooperative close with a commitment number");
            let shutdown = ctx.info.shutdown.as_ref();
            assert!(
                shutdown.is_some_and(|s| !tx.output.is_empty()
                    && tx
                        .output
                        .iter()
                        .all(|o| o.script_pubkey == s.local || o.script_pubkey == s.remote)),
                "a cooperative close that does not pay only the shutdown scripts"
            );
        }
        Close::RemoteRevoked {
            number: n,
            per_commitment_secret,
        }
        | Close::RemoteRevokedUnconfirmed {
            number: n,
            per_commitment_secret,
        } => {
            assert_eq!(
                number,
                Some(*n),
                "a breach whose number is not the encoded one"
            );
            assert_eq!(
                c.remote_secrets.get_by_commitment_number(*n),
                Some(*per_commitment_secret),
                "a breach with a secret we were never given"
            );
        }
        Close::LocalRevoked { number: n } => {
            assert_eq!(number, Some(*n));
            assert!(
                c.local_revoked_through.is_some_and(|t| *n <= t),
                "a revoked local commitment we never revoked"
            );
        }
        Close::RemoteFuture { number: n } => assert_eq!(number, Some(*n)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19: every channel type is a context a fuzz input can choose, zero-fee commitments
    /// (version 3, one pay-to-anchor output) included.
    #[test]
    fn contexts_include_every_channel_type() {
        let types: std::collections::BTreeSet<String> = contexts()
            .iter()
            .map(|c| format!("{:?}", c.info.channel_type))
            .collect();
        for t in [
            ChannelType::StaticRemoteKey,
            ChannelType::AnchorsZeroFeeHtlc,
            ChannelType::ZeroFeeCommitments,
        ] {
            assert!(
                types.contains(&format!("{t:?}")),
                "{t:?} missing: {types:?}"
            );
        }
        let zero_fee = contexts()
            .iter()
            .find(|c| c.info.channel_type == ChannelType::ZeroFeeCommitments)
            .expect("a zero-fee commitment context");
        assert!(zero_fee.txs.iter().any(|tx| tx.version.0 == 3));
    }

    #[test]
    fn contexts_reach_every_kind_of_close() {
        let ctxs = contexts();
        assert_eq!(ctxs.len(), 4);
        let mut kinds = std::collections::BTreeSet::new();
        for ctx in ctxs {
            for tx in &ctx.txs {
                check(ctx, tx);
                let c = classify(tx, &ctx.info, &ctx.commitments);
                if let Some(close) = c.close() {
                    kinds.insert(format!("{:?}", crate::action::CloseKind::from(close)));
                }
            }
        }
        // Ours, the peer's (current and pending), a breach and a future commitment.
        assert!(kinds.len() >= 4, "{kinds:?}");
    }

    #[test]
    fn classify_close_takes_any_bytes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..600usize {
            let data: Vec<u8> = (0..len % 200)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            classify_close(&data);
        }
    }
}

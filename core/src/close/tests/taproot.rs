//! Close classification of simple taproot channels: the sim drives an anchors channel (it
//! refuses to open a taproot one), the engine's view is switched to `SimpleTaproot` and every
//! commitment is built by bolt3's taproot builder from the sim's own spec. Each contract is
//! checked independently of the code under test: its control blocks must verify against the
//! confirmed output's key (BIP 341 commitment check), its key paths' tap tweaks applied to the
//! sim's *secret* keys must give that output key, and every output must get one contract.

use bitcoin::key::{Keypair, XOnlyPublicKey};
use bitcoin::secp256k1::SecretKey;
use bitcoin::{ScriptBuf, Transaction};

use super::*;
use crate::bolt3::commitment::build_commitment;
use crate::close::taproot::{
    classify_taproot_close, TapKeySpend, TapLeafSpend, TaprootClose, TaprootCloseError,
    TaprootContract, TaprootOutput,
};
use crate::commitments::CommitmentRecord;
use crate::sim::PartySecrets;

const TAPROOT: ChannelType = ChannelType::SimpleTaproot;

/// A busy anchors world (our commitment 3 current, the peer's 3 current, secrets 0..=2 held),
/// with the peer's records 0..=3 (the revoked log).
fn anchors_world(seed: u64) -> (World, Vec<CommitmentRecord>) {
    let mut w = World::open(SimSetup::new(seed, ChannelType::AnchorsZeroFeeHtlc));
    let mut log = vec![w.data.commitments.remote_current.clone().unwrap()];
    for i in 0..3 {
        w.add_both_ways(i);
        w.commit();
        log.push(w.data.commitments.remote_current.clone().unwrap());
    }
    (w, log)
}

/// [`anchors_world`] switched to taproot (the engine refuses further anchors updates after).
pub(super) fn taproot_world(seed: u64) -> (World, Vec<CommitmentRecord>) {
    let (mut w, log) = anchors_world(seed);
    to_taproot(&mut w);
    (w, log)
}

/// The engine's view switched to taproot: the type, and each known commitment's txids.
fn to_taproot(w: &mut World) {
    let info = &mut w.data.info;
    info.channel_type = TAPROOT;
    let c = &mut w.data.commitments;
    let retxid = |holder: Party, r: &mut CommitmentRecord| {
        r.txids = info
            .funding
            .iter()
            .map(|f| info.build(holder, r, f).unwrap().1.tx.compute_txid())
            .collect();
    };
    if let Some(l) = c.local.as_mut() {
        retxid(Party::Local, &mut l.commitment);
    }
    for r in [c.remote_current.as_mut(), c.remote_pending.as_mut()]
        .into_iter()
        .flatten()
    {
        retxid(Party::Remote, r);
    }
}

/// The sim's commitment `n` of `holder`, built by bolt3 as a taproot commitment.
pub(super) fn tap_tx(w: &World, holder: Party, n: u64) -> Transaction {
    let mut spec = w.sim.commitment_spec(holder, n).unwrap();
    spec.channel_type = TAPROOT;
    build_commitment(&spec).unwrap().tx
}

pub(super) fn secrets(w: &World, party: Party) -> PartySecrets {
    let name = match party {
        Party::Local => "local",
        Party::Remote => "remote",
    };
    PartySecrets::from_seed(&w.sim.setup().seed, name)
}

pub(super) fn output_key(spk: &ScriptBuf) -> XOnlyPublicKey {
    assert!(spk.is_p2tr(), "{spk}");
    XOnlyPublicKey::from_slice(&spk.as_bytes()[2..]).unwrap()
}

/// BIP 341: the control block proves the leaf is committed to by the output key.
fn reveals(spk: &ScriptBuf, leaf: &TapLeafSpend) -> bool {
    leaf.control_block
        .verify_taproot_commitment(crate::bolt3::secp(), output_key(spk), &leaf.leaf)
}

/// The secret key tweaked with the key path's tap tweak gives the output key.
fn key_path_signs(spk: &ScriptBuf, key: &TapKeySpend, secret: &SecretKey) -> bool {
    let secp = crate::bolt3::secp();
    let keypair = Keypair::from_secret_key(secp, secret);
    let tweaked = keypair
        .add_xonly_tweak(secp, &key.tap_tweak().to_scalar())
        .unwrap();
    tweaked.x_only_public_key().0 == output_key(spk)
}

pub(super) fn classify(
    w: &World,
    tx: &Transaction,
    log: Option<&CommitmentRecord>,
) -> TaprootClose {
    classify_taproot_close(tx, &w.data.info, &w.data.commitments, log).unwrap()
}

/// Each output has exactly one contract, at its index, with its value; each leaf verifies.
fn check_exact(tx: &Transaction, close: &TaprootClose) {
    assert!(close.unexplained.is_empty(), "{:?}", close.unexplained);
    let vouts: Vec<u32> = close.contracts.iter().map(|c| c.vout).collect();
    assert_eq!(vouts, (0..tx.output.len() as u32).collect::<Vec<_>>());
    for c in &close.contracts {
        check_leaves(tx, c);
    }
}

fn check_leaves(tx: &Transaction, c: &TaprootContract) {
    let out = &tx.output[c.vout as usize];
    assert_eq!(c.value_sat, out.value.to_sat());
    let spk = &out.script_pubkey;
    let ok = match &c.output {
        TaprootOutput::ToLocal { delay, revoke, .. } => reveals(spk, delay) && reveals(spk, revoke),
        TaprootOutput::ToRemote { leaf } => reveals(spk, leaf),
        TaprootOutput::Anchor { sweep, .. } => reveals(spk, sweep),
        TaprootOutput::Htlc(h) => reveals(spk, &h.timeout) && reveals(spk, &h.success),
    };
    assert!(ok, "output {} of {}", c.vout, tx.compute_txid());
}

fn count(close: &TaprootClose, f: impl Fn(&TaprootOutput) -> bool) -> usize {
    close.contracts.iter().filter(|c| f(&c.output)).count()
}

#[test]
fn our_current_taproot_commitment_gets_a_contract_per_output_with_our_paths() {
    let (w, _) = taproot_world(31);
    let n = w.sim.local_commitment_number();
    let tx = tap_tx(&w, Party::Local, n);
    let close = classify(&w, &tx, None);
    assert_eq!(
        close.classification.close(),
        Some(&Close::LocalCurrent { number: n })
    );
    check_exact(&tx, &close);
    let ours = secrets(&w, Party::Local);
    let point = w
        .sim
        .commitment_spec(Party::Local, n)
        .unwrap()
        .keys
        .per_commitment_point;
    let our_secret = w.sim.per_commitment_secret(Party::Local, n).unwrap();
    let peer_revocation = secrets(&w, Party::Remote)
        .revocation_key(&our_secret)
        .unwrap();
    let state = w.sim.state(Party::Local, n).unwrap();
    assert_eq!(
        count(&close, |o| matches!(o, TaprootOutput::Htlc(_))),
        state.htlcs.len()
    );
    for c in &close.contracts {
        let spk = &tx.output[c.vout as usize].script_pubkey;
        match &c.output {
            TaprootOutput::ToLocal { to_self_delay, .. } => {
                assert_eq!((c.owner, *to_self_delay), (Party::Local, 144));
            }
            TaprootOutput::ToRemote { .. } => assert_eq!(c.owner, Party::Remote),
            TaprootOutput::Anchor { key, .. } if c.owner == Party::Local => {
                let delayed = ours.delayed_payment_key(&point).unwrap();
                assert!(key_path_signs(spk, key, &delayed));
            }
            TaprootOutput::Anchor { key, .. } => {
                assert!(key_path_signs(
                    spk,
                    key,
                    &secrets(&w, Party::Remote).payment_base
                ));
            }
            TaprootOutput::Htlc(h) => {
                let sim = state
                    .htlcs
                    .values()
                    .find(|s| s.payment_hash() == h.htlc.payment_hash);
                let sim = sim.expect("an HTLC of the sim's state");
                assert_eq!(h.htlc.cltv_expiry, sim.cltv_expiry);
                assert!(key_path_signs(spk, &h.revocation, &peer_revocation));
                let l2 = h.second_level_tx.as_ref().expect("ours to broadcast");
                let input = &l2.input[0];
                assert_eq!(
                    input.previous_output,
                    OutPoint::new(tx.compute_txid(), c.vout)
                );
                assert_eq!(input.sequence, bitcoin::Sequence(1));
                let l2_spk = &l2.output[0].script_pubkey;
                assert_eq!(l2_spk, &h.second_level.script_pubkey);
                assert!(reveals(l2_spk, &h.second_level.delay));
                assert!(key_path_signs(
                    l2_spk,
                    &h.second_level.revocation,
                    &peer_revocation
                ));
                let offered_by_us = h.htlc.offered;
                assert_eq!(c.owner == Party::Local, offered_by_us);
            }
        }
        assert!(!c.revoked);
    }
}

#[test]
fn the_peers_current_and_pending_taproot_commitments_give_us_to_remote_and_htlc_leaves() {
    let (mut w, _) = anchors_world(32);
    w.add_both_ways(7);
    let events = w.sim.propose().unwrap();
    w.see(events);
    to_taproot(&mut w);
    let current = w.sim.remote_commitment_number();
    let pending = w.sim.remote_pending_number().unwrap();
    for (n, expected) in [
        (current, Close::RemoteCurrent { number: current }),
        (pending, Close::RemotePending { number: pending }),
    ] {
        let tx = tap_tx(&w, Party::Remote, n);
        let close = classify(&w, &tx, None);
        assert_eq!(close.classification.close(), Some(&expected));
        check_exact(&tx, &close);
        let state = w.sim.state(Party::Remote, n).unwrap();
        let htlcs = count(&close, |o| matches!(o, TaprootOutput::Htlc(_)));
        assert_eq!(htlcs, state.htlcs.len());
        for c in &close.contracts {
            let spk = &tx.output[c.vout as usize].script_pubkey;
            match &c.output {
                TaprootOutput::ToLocal { to_self_delay, .. } => {
                    assert_eq!((c.owner, *to_self_delay), (Party::Remote, 144));
                }
                TaprootOutput::ToRemote { leaf } => {
                    assert_eq!(c.owner, Party::Local);
                    let ours = secrets(&w, Party::Local).payment_base;
                    let key = ours.x_only_public_key(crate::bolt3::secp()).0;
                    assert_eq!(leaf.leaf.as_bytes()[1..33], key.serialize());
                }
                TaprootOutput::Anchor { key, .. } if c.owner == Party::Local => {
                    assert!(key_path_signs(
                        spk,
                        key,
                        &secrets(&w, Party::Local).payment_base
                    ));
                }
                TaprootOutput::Anchor { .. } => {}
                TaprootOutput::Htlc(h) => {
                    assert!(h.second_level_tx.is_none(), "the peer's to broadcast");
                    // The peer offered it: its timeout is theirs; we take it with the preimage.
                    assert_eq!(c.owner == Party::Remote, h.htlc.offered);
                }
            }
        }
    }
}

#[test]
fn a_revoked_taproot_commitment_with_its_log_entry_is_ours_by_revocation_output_by_output() {
    let (w, log) = taproot_world(33);
    let ours = secrets(&w, Party::Local);
    for n in 1..=2u64 {
        let tx = tap_tx(&w, Party::Remote, n);
        let secret = w.secret(n);
        let close = classify(&w, &tx, Some(&log[n as usize]));
        assert_eq!(
            close.classification.close(),
            Some(&Close::RemoteRevoked {
                number: n,
                per_commitment_secret: secret
            })
        );
        check_exact(&tx, &close);
        let revocation = ours.revocation_key(&secret).unwrap();
        let htlcs = w.sim.state(Party::Remote, n).unwrap().htlcs.len();
        assert_eq!(
            count(&close, |o| matches!(o, TaprootOutput::Htlc(_))),
            htlcs
        );
        for c in &close.contracts {
            assert!(c.revoked);
            let spk = &tx.output[c.vout as usize].script_pubkey;
            match &c.output {
                TaprootOutput::Htlc(h) => {
                    assert!(key_path_signs(spk, &h.revocation, &revocation));
                    let l2 = &h.second_level.revocation;
                    assert!(key_path_signs(
                        &h.second_level.script_pubkey,
                        l2,
                        &revocation
                    ));
                }
                TaprootOutput::ToLocal { revoke, .. } => {
                    // The revoke leaf's key is our revocation key (x-only, after the drop).
                    let key = revocation.x_only_public_key(crate::bolt3::secp()).0;
                    assert_eq!(revoke.leaf.as_bytes()[35..67], key.serialize());
                }
                _ => {}
            }
        }
        // Without the log entry, the outputs keys alone give and the HTLCs left unexplained.
        let by_script = classify(&w, &tx, None);
        let explained: Vec<_> = close
            .contracts
            .iter()
            .filter(|c| !matches!(c.output, TaprootOutput::Htlc(_)))
            .cloned()
            .collect();
        let second_level_free = |c: &TaprootContract| c.clone();
        let got: Vec<_> = by_script.contracts.iter().map(second_level_free).collect();
        assert_eq!(got, explained);
        let htlc_vouts: Vec<u32> = close
            .contracts
            .iter()
            .filter(|c| matches!(c.output, TaprootOutput::Htlc(_)))
            .map(|c| c.vout)
            .collect();
        assert_eq!(by_script.unexplained, htlc_vouts);
    }
}

#[test]
fn a_future_taproot_commitment_gives_only_our_to_remote_and_anchor() {
    let (mut w, _) = taproot_world(34);
    // The sim moves on; the engine does not hear of it (data loss).
    w.add_both_ways(9);
    w.sim.commit().unwrap();
    let n = w.sim.remote_commitment_number();
    let tx = tap_tx(&w, Party::Remote, n);
    let close = classify(&w, &tx, None);
    assert_eq!(
        close.classification.close(),
        Some(&Close::RemoteFuture { number: n })
    );
    let kinds: Vec<_> = close
        .contracts
        .iter()
        .map(|c| (&c.output, c.owner))
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(close
        .contracts
        .iter()
        .all(|c| c.owner == Party::Local && !c.revoked));
    assert_eq!(
        count(&close, |o| matches!(o, TaprootOutput::ToRemote { .. })),
        1
    );
    assert_eq!(
        count(&close, |o| matches!(o, TaprootOutput::Anchor { .. })),
        1
    );
    for c in &close.contracts {
        check_leaves(&tx, c);
    }
    assert_eq!(close.unexplained.len() + 2, tx.output.len());
}

#[test]
fn cooperative_local_revoked_and_unknown_taproot_closes_have_no_contracts() {
    let (mut w, _) = anchors_world(35);
    w.settle_all();
    w.commit();
    w.set_shutdown();
    to_taproot(&mut w);
    // Our revoked commitment 1.
    let old = tap_tx(&w, Party::Local, 1);
    let close = classify(&w, &old, None);
    assert_eq!(
        close.classification.close(),
        Some(&Close::LocalRevoked { number: 1 })
    );
    assert!(close.contracts.is_empty() && close.unexplained.is_empty());
    // Our current commitment with an output dropped: no longer ours by txid, matches nothing.
    let mut cut = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    cut.output.pop();
    let close = classify(&w, &cut, None);
    assert!(matches!(
        close.classification.close(),
        Some(Close::Unknown { .. })
    ));
    assert!(close.contracts.is_empty());
    // A cooperative close.
    let (local, remote) = shutdown_scripts();
    let coop = w.sim.cooperative_close_tx(local, remote, 1_000).unwrap();
    let close = classify(&w, &coop, None);
    assert_eq!(close.classification.close(), Some(&Close::Cooperative));
    assert!(close.contracts.is_empty());
    // Not a funding spend at all.
    let mut other = coop.clone();
    other.input[0].previous_output.vout ^= 1;
    let close = classify(&w, &other, None);
    assert_eq!(close.classification, Classification::NotAFundingSpend);
}

#[test]
fn taproot_close_errors_are_typed() {
    let (mut w, log) = taproot_world(36);
    let tx = tap_tx(&w, Party::Remote, 1);
    let info = &w.data.info;
    let c = &w.data.commitments;
    // The revoked log's entry for another number.
    assert_eq!(
        classify_taproot_close(&tx, info, c, Some(&log[2])),
        Err(TaprootCloseError::WrongRevokedRecord {
            expected: 1,
            got: 2
        })
    );
    // An entry with the right number that does not rebuild the confirmed commitment.
    let mut wrong = log[1].clone();
    wrong.feerate_per_kw += 1;
    assert_eq!(
        classify_taproot_close(&tx, info, c, Some(&wrong)),
        Err(TaprootCloseError::RebuiltTxidMismatch { number: 1 })
    );
    // A remote record whose txid is on file but whose content no longer builds it.
    let n = w.sim.remote_commitment_number();
    let current = tap_tx(&w, Party::Remote, n);
    if let Some(r) = w.data.commitments.remote_current.as_mut() {
        r.to_local_msat -= 1_000_000;
        r.to_remote_msat += 1_000_000;
    }
    assert_eq!(
        classify_taproot_close(&current, &w.data.info, &w.data.commitments, None),
        Err(TaprootCloseError::RebuiltTxidMismatch { number: n })
    );
    // Not a taproot channel.
    w.data.info.channel_type = ChannelType::AnchorsZeroFeeHtlc;
    assert_eq!(
        classify_taproot_close(&current, &w.data.info, &w.data.commitments, None),
        Err(TaprootCloseError::NotTaproot {
            channel_type: ChannelType::AnchorsZeroFeeHtlc
        })
    );
}

/// The extension's three vector commitments (signed, as in the JSON): every output gets the
/// contract bolt3 says it is, and each leaf's control block verifies against the vector's
/// output key; a wrong kind for an output is a typed mismatch, not a contract.
#[test]
fn the_extension_vector_commitments_get_a_verified_contract_per_output() {
    use crate::bolt3::commitment::OutputKind;
    use crate::bolt3::taproot::commitment_tests::spec;
    use crate::bolt3::taproot::tests::{tx as vector_tx, vectors};
    use crate::close::taproot_outputs::contract_of;
    let v = vectors();
    for test in v["transactions"].as_array().unwrap() {
        let spec = spec(&v, test);
        let signed = vector_tx(&test["expected_commitment_tx_hex"]);
        let built = build_commitment(&spec).unwrap();
        assert_eq!(built.tx.compute_txid(), signed.compute_txid());
        for o in &built.outputs {
            let c = contract_of(Party::Local, &spec, &signed, o.kind, o.index).unwrap();
            check_leaves(&signed, &c);
            let other = match o.kind {
                OutputKind::ToLocal => OutputKind::ToRemote,
                _ => OutputKind::ToLocal,
            };
            assert_eq!(
                contract_of(Party::Local, &spec, &signed, other, o.index),
                Err(TaprootCloseError::ScriptMismatch { vout: o.index })
            );
        }
        let beyond = signed.output.len() as u32;
        assert_eq!(
            contract_of(Party::Local, &spec, &signed, OutputKind::ToLocal, beyond),
            Err(TaprootCloseError::MissingOutput { vout: beyond })
        );
    }
}

/// The revoked checks compare the peer's P2TR `to_local` (derived from the revealed secret) and
/// P2TR-only outputs: without our `to_remote` (our balance dust) the revoked commitment is
/// still a breach by its `to_local`; without both balances it is a probable breach.
#[test]
fn a_revoked_taproot_commitment_without_our_balance_is_found_by_its_p2tr_to_local() {
    let (w, _) = taproot_world(37);
    let n = 2;
    let tx = tap_tx(&w, Party::Remote, n);
    let secret = w.secret(n);
    let full = classify(&w, &tx, None);
    let vout_of = |f: fn(&TaprootOutput) -> bool| {
        full.contracts
            .iter()
            .filter(|c| f(&c.output))
            .map(|c| c.vout)
            .collect::<Vec<_>>()
    };
    let ours = vout_of(|o| matches!(o, TaprootOutput::ToRemote { .. }));
    let theirs = vout_of(|o| matches!(o, TaprootOutput::ToLocal { .. }));
    assert_eq!((ours.len(), theirs.len()), (1, 1));
    let without = |drop: &[u32]| {
        let mut t = tx.clone();
        t.output = (0u32..)
            .zip(&tx.output)
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, o)| o.clone())
            .collect();
        t
    };
    let no_to_remote = without(&ours);
    let close = classify(&w, &no_to_remote, None);
    assert_eq!(
        close.classification.close(),
        Some(&Close::RemoteRevoked {
            number: n,
            per_commitment_secret: secret
        })
    );
    assert_eq!(
        count(&close, |o| matches!(o, TaprootOutput::ToLocal { .. })),
        1
    );
    let htlcs_only = without(&[ours[0], theirs[0]]);
    assert_eq!(
        classify(&w, &htlcs_only, None).classification.close(),
        Some(&Close::RemoteRevokedUnconfirmed {
            number: n,
            per_commitment_secret: secret
        })
    );
    // Only the anchors left: nothing says it is that commitment.
    let anchors = vout_of(|o| matches!(o, TaprootOutput::Anchor { .. }));
    let mut t = tx.clone();
    t.output = anchors
        .iter()
        .map(|&i| tx.output[i as usize].clone())
        .collect();
    assert!(matches!(
        classify(&w, &t, None).classification.close(),
        Some(Close::Unknown { .. })
    ));
}

/// Malformed closes (outputs cut, emptied, scripts truncated or swapped, the number restamped)
/// get an answer or a typed error, never a panic; no output is given two contracts.
#[test]
fn mangled_taproot_closes_never_panic_nor_double_attribute() {
    let (w, log) = taproot_world(38);
    for (holder, n) in [(Party::Local, 3), (Party::Remote, 3), (Party::Remote, 1)] {
        let tx = tap_tx(&w, holder, n);
        for i in 0..tx.output.len() * 4 {
            let mut t = tx.clone();
            let k = i % t.output.len();
            match i / t.output.len() {
                0 => t.output[k].script_pubkey = ScriptBuf::from_bytes(vec![0x51, 0x20]),
                1 => t.output.truncate(k),
                2 => t.output.swap(0, k),
                _ => t.output[k].value = Amount::from_sat(k as u64),
            }
            for record in [None, Some(&log[n as usize])] {
                let Ok(close) =
                    classify_taproot_close(&t, &w.data.info, &w.data.commitments, record)
                else {
                    continue;
                };
                let mut vouts: Vec<u32> = close.contracts.iter().map(|c| c.vout).collect();
                vouts.extend(&close.unexplained);
                vouts.sort_unstable();
                let before = vouts.len();
                vouts.dedup();
                assert_eq!(vouts.len(), before, "{i}");
                assert!(vouts.iter().all(|v| (*v as usize) < t.output.len()));
            }
        }
    }
}

//! Taproot anchors spent (`resolver::taproot_anchor`): ours by key path on our commitment
//! (delayed payment key) and on the peer's (static payment basepoint), signed by the simulated
//! signer and verified under the anchor's output key; anyone's `OP_16 OP_CSV` leaf without a
//! signature; the peer's anchor refused as ours.

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Transaction, TxIn, TxOut};

use super::taproot::{classify, output_key, secrets, tap_tx, taproot_world};
use super::taproot_sign::verified;
use crate::action::{Basepoint, SigningKey, TaprootSignOutcome};
use crate::bolt3::taproot::classify::{classify_witness, TaprootSpendKind};
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::resolver::taproot_anchor::{
    taproot_anyone_anchor, taproot_own_anchor, AnchorPath, TaprootAnchorError, TaprootAnchorInput,
};
use crate::types::{ClaimId, Party, RequestId};

fn anchors(contracts: &[TaprootContract]) -> Vec<&TaprootContract> {
    contracts
        .iter()
        .filter(|c| matches!(c.output, TaprootOutput::Anchor { .. }))
        .collect()
}

/// A one-input spend of `anchor` (a CPFP child would add a wallet input and its change).
fn child(anchor: &TaprootAnchorInput) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: anchor.outpoint,
            sequence: anchor.sequence,
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        }],
    }
}

#[test]
fn our_taproot_anchor_is_spent_by_key_path_on_either_commitment_and_the_peers_is_not_ours() {
    let (w, _) = taproot_world(91);
    let id = w.data.info.id;
    let local = &w.data.info.local_basepoints;
    let cases = [
        (
            Party::Local,
            w.sim.local_commitment_number(),
            Basepoint::DelayedPayment,
        ),
        (
            Party::Remote,
            w.sim.remote_commitment_number(),
            Basepoint::Payment,
        ),
    ];
    for (holder, n, basepoint) in cases {
        let close = tap_tx(&w, holder, n);
        let contracts = classify(&w, &close, None).contracts;
        let all = anchors(&contracts);
        assert_eq!(all.len(), 2, "both anchors while HTLCs are live");
        let (ours, theirs): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|c| c.owner == Party::Local);
        let ours = ours[0];
        let anchor = taproot_own_anchor(id, &close, 700, ours, local).unwrap();
        let AnchorPath::Owner { key, .. } = &anchor.path else {
            panic!("owner path")
        };
        assert!(matches!(key, SigningKey::Channel { basepoint: b, .. } if *b == basepoint));
        assert_eq!(anchor.mature_at, 700);
        let tx = child(&anchor);
        let request = anchor
            .sign_request(
                RequestId {
                    claim: ClaimId(8),
                    attempt: 0,
                },
                &tx,
                0,
                vec![anchor.prevout.clone()],
            )
            .unwrap();
        let outcome = secrets(&w, Party::Local).sign_taproot(&request);
        verified(
            &request,
            outcome.clone(),
            output_key(&anchor.prevout.script_pubkey),
        );
        let TaprootSignOutcome::Signed { signatures } = outcome else {
            unreachable!()
        };
        let witness = anchor.witness(Some(&signatures[0].signature));
        assert_eq!(classify_witness(&witness), Ok(TaprootSpendKind::KeyPath));
        assert!(witness.size() as u64 <= anchor.witness_weight());
        // The peer's anchor is not ours to sign for.
        assert_eq!(
            taproot_own_anchor(id, &close, 700, theirs[0], local),
            Err(TaprootAnchorError::NotOurs {
                vout: theirs[0].vout
            })
        );
    }
}

#[test]
fn any_taproot_anchor_is_anyones_after_16_blocks_without_a_signature() {
    let (w, _) = taproot_world(92);
    let close = tap_tx(&w, Party::Remote, w.sim.remote_commitment_number());
    let contracts = classify(&w, &close, None).contracts;
    for c in anchors(&contracts) {
        let anchor = taproot_anyone_anchor(&close, 700, c).unwrap();
        assert_eq!(anchor.mature_at, 716);
        assert_eq!(anchor.sequence, bitcoin::Sequence::from_height(16));
        let tx = child(&anchor);
        assert!(anchor
            .sign_request(
                RequestId {
                    claim: ClaimId(8),
                    attempt: 0
                },
                &tx,
                0,
                vec![]
            )
            .is_none());
        let witness = anchor.witness(None);
        assert_eq!(
            classify_witness(&witness),
            Ok(TaprootSpendKind::AnchorSweep)
        );
        assert_eq!(witness.size() as u64, anchor.witness_weight());
    }
    // Not an anchor; an output the close lacks.
    let balance = contracts
        .iter()
        .find(|c| matches!(c.output, TaprootOutput::ToRemote { .. }))
        .unwrap();
    assert_eq!(
        taproot_anyone_anchor(&close, 700, balance),
        Err(TaprootAnchorError::NotAnAnchor { vout: balance.vout })
    );
    let local = &w.data.info.local_basepoints;
    assert_eq!(
        taproot_own_anchor(w.data.info.id, &close, 700, balance, local),
        Err(TaprootAnchorError::NotAnAnchor { vout: balance.vout })
    );
    let mut gone = anchors(&contracts)[0].clone();
    gone.vout = close.output.len() as u32;
    assert_eq!(
        taproot_anyone_anchor(&close, 700, &gone),
        Err(TaprootAnchorError::MissingOutput { vout: gone.vout })
    );
}

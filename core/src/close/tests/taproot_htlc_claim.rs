//! Our direct claims of HTLC outputs on the peer's taproot commitments
//! (`resolver::taproot_htlc_claim`) from the contracts of `close::taproot`: signed by the
//! simulated signer, the signature verified independently (`taproot_sign::verified`), the witness
//! classified as its leaf (the preimage read back from it), lock times, maturity, weight and fee
//! checked against hand-derived numbers.

use bitcoin::hashes::Hash;
use bitcoin::{FeeRate, ScriptBuf, Sequence, Transaction, WPubkeyHash};

use super::taproot::{classify, secrets, tap_tx, taproot_world};
use super::taproot_sign::verified;
use crate::action::TaprootSignOutcome;
use crate::bolt3::taproot::classify::{classify_witness, TaprootSpendKind};
use crate::bolt3::PaymentPreimage;
use crate::close::taproot::{TaprootContract, TaprootOutput};
use crate::resolver::taproot_htlc_claim::{
    taproot_remote_htlc_claim, HtlcClaimLeaf, TaprootHtlcClaim, TaprootHtlcClaimError,
};
use crate::types::{ClaimId, Party, RequestId};

const RATE: FeeRate = FeeRate::from_sat_per_kwu(2_500); // 10 sat/vB
const CLOSE_HEIGHT: u32 = 590;

fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([4; 20]))
}

fn htlcs(contracts: &[TaprootContract]) -> Vec<&TaprootContract> {
    contracts
        .iter()
        .filter(|c| matches!(c.output, TaprootOutput::Htlc(_)))
        .collect()
}

fn offered_by_holder(c: &TaprootContract) -> bool {
    matches!(&c.output, TaprootOutput::Htlc(h) if h.htlc.offered)
}

/// The preimage of the HTLC of contract `c` on the peer's commitment `n`.
fn preimage_of(w: &super::World, n: u64, c: &TaprootContract) -> PaymentPreimage {
    let TaprootOutput::Htlc(h) = &c.output else {
        panic!("not an HTLC")
    };
    let state = w.sim.state(Party::Remote, n).unwrap();
    state
        .htlcs
        .values()
        .find(|s| s.preimage.payment_hash() == h.htlc.payment_hash)
        .unwrap()
        .preimage
}

/// `claim` built at [`RATE`], signed by our sim keys and verified; the signed transaction.
fn signed(w: &super::World, claim: &TaprootHtlcClaim) -> Transaction {
    let tx = claim.tx(destination(), RATE).unwrap();
    let request = claim.sign_request(
        RequestId {
            claim: ClaimId(4),
            attempt: 0,
        },
        &tx,
    );
    let outcome = secrets(w, Party::Local).sign_taproot(&request);
    // The key the leaf checks: after the preimage check (success) or first (timeout).
    let at = match claim.by {
        HtlcClaimLeaf::Success { .. } => claim.leaf.leaf.len() - 3 - 32,
        HtlcClaimLeaf::Timeout { .. } => 1,
    };
    let key =
        bitcoin::XOnlyPublicKey::from_slice(&claim.leaf.leaf.as_bytes()[at..at + 32]).unwrap();
    verified(&request, outcome.clone(), key);
    let TaprootSignOutcome::Signed { signatures } = outcome else {
        unreachable!()
    };
    claim.finish(tx, &signatures[0].signature)
}

#[test]
fn on_the_peers_commitment_we_claim_received_htlcs_by_preimage_and_offered_ones_after_expiry() {
    let (w, _) = taproot_world(71);
    let n = w.sim.remote_commitment_number();
    let close = tap_tx(&w, Party::Remote, n);
    let contracts = classify(&w, &close, None).contracts;
    let all = htlcs(&contracts);
    assert!(all.iter().any(|c| offered_by_holder(c)) && all.iter().any(|c| !offered_by_holder(c)));
    let id = w.data.info.id;
    for c in all {
        let preimage = preimage_of(&w, n, c);
        let claim = taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, c, Some(preimage)).unwrap();
        let TaprootOutput::Htlc(h) = &c.output else {
            unreachable!()
        };
        let tx = signed(&w, &claim);
        assert_eq!(tx.input[0].sequence, Sequence::from_height(1));
        assert_eq!(tx.input[0].previous_output.txid, close.compute_txid());
        let kind = classify_witness(&tx.input[0].witness).unwrap();
        if h.htlc.offered {
            // The peer offered it: ours with the preimage, one block after the close.
            assert_eq!(kind, TaprootSpendKind::OfferedSuccess { preimage });
            assert_eq!(tx.lock_time, bitcoin::absolute::LockTime::ZERO);
            assert_eq!(claim.mature_at, CLOSE_HEIGHT + 1);
            // The maximum counts a 65-byte signature: ours is 64 bytes.
            assert_eq!(
                claim.max_weight(&claim.tx(destination(), RATE).unwrap()),
                tx.weight().to_wu() + 1
            );
        } else {
            // We offered it: ours back after its expiry (nLockTime), the preimage not needed.
            let expiry = h.htlc.cltv_expiry;
            assert_eq!(
                kind,
                TaprootSpendKind::AcceptedTimeout {
                    cltv_expiry: expiry
                }
            );
            assert_eq!(tx.lock_time.to_consensus_u32(), expiry);
            assert_eq!(claim.mature_at, (CLOSE_HEIGHT + 1).max(expiry + 1));
            // The maximum counts a 65-byte signature and a 4-byte expiry: ours is 64 bytes and
            // the expiries here (600–612) take 2 bytes.
            assert!((256..32_768).contains(&expiry));
            assert_eq!(
                claim.max_weight(&claim.tx(destination(), RATE).unwrap()),
                tx.weight().to_wu() + 1 + 2
            );
            let without = taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, c, None).unwrap();
            assert_eq!(without, claim);
        }
        let fee = c.value_sat - tx.output[0].value.to_sat();
        let max = claim.max_weight(&claim.tx(destination(), RATE).unwrap());
        assert_eq!(fee, max.div_ceil(4) * 10);
    }
}

#[test]
fn taproot_htlc_claims_are_refused_off_the_peers_unrevoked_commitment_or_without_the_preimage() {
    let (w, log) = taproot_world(72);
    let id = w.data.info.id;
    let n = w.sim.remote_commitment_number();
    let close = tap_tx(&w, Party::Remote, n);
    let contracts = classify(&w, &close, None).contracts;
    let received = htlcs(&contracts)
        .into_iter()
        .find(|c| offered_by_holder(c))
        .unwrap();
    let v = received.vout;
    assert_eq!(
        taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, received, None),
        Err(TaprootHtlcClaimError::NoPreimage { vout: v })
    );
    assert_eq!(
        taproot_remote_htlc_claim(
            id,
            &close,
            CLOSE_HEIGHT,
            received,
            Some(PaymentPreimage([3; 32]))
        ),
        Err(TaprootHtlcClaimError::WrongPreimage { vout: v })
    );
    let mut unknown = received.clone();
    unknown.per_commitment_point = None;
    let p = preimage_of(&w, n, received);
    assert_eq!(
        taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, &unknown, Some(p)),
        Err(TaprootHtlcClaimError::NoPerCommitmentPoint { vout: v })
    );
    let mut gone = received.clone();
    gone.vout = close.output.len() as u32;
    assert_eq!(
        taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, &gone, Some(p)),
        Err(TaprootHtlcClaimError::MissingOutput { vout: gone.vout })
    );
    let huge = FeeRate::from_sat_per_kwu(received.value_sat * 10);
    let claim = taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, received, Some(p)).unwrap();
    assert!(matches!(
        claim.tx(destination(), huge),
        Err(TaprootHtlcClaimError::BelowDust { .. })
    ));
    // Not an HTLC.
    let balance = contracts
        .iter()
        .find(|c| matches!(c.output, TaprootOutput::ToLocal { .. }))
        .unwrap();
    assert_eq!(
        taproot_remote_htlc_claim(id, &close, CLOSE_HEIGHT, balance, None),
        Err(TaprootHtlcClaimError::NotAnHtlc { vout: balance.vout })
    );
    // On a revoked commitment of the peer's: justice takes the output.
    let revoked = tap_tx(&w, Party::Remote, 1);
    let r = classify(&w, &revoked, Some(&log[1])).contracts;
    let c = htlcs(&r)[0];
    assert_eq!(
        taproot_remote_htlc_claim(id, &revoked, CLOSE_HEIGHT, c, Some(p)),
        Err(TaprootHtlcClaimError::Revoked { vout: c.vout })
    );
    // On our own commitment: the second-level transaction's.
    let ours = tap_tx(&w, Party::Local, w.sim.local_commitment_number());
    let o = classify(&w, &ours, None).contracts;
    let c = htlcs(&o)[0];
    assert_eq!(
        taproot_remote_htlc_claim(id, &ours, CLOSE_HEIGHT, c, Some(p)),
        Err(TaprootHtlcClaimError::OurCommitment { vout: c.vout })
    );
}

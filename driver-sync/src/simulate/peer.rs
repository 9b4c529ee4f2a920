//! The peer of a simulation: its commitment and its HTLC claims on the commitment that
//! confirmed, offered to the mempool as a real peer would.

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, Transaction};
use contractcourt_core::bolt3::sign::sign_p2wsh;
use contractcourt_core::bolt3::witness::{
    build_claim_tx, offered_htlc_preimage_witness, received_htlc_timeout_witness, ClaimPath,
};
use contractcourt_core::sim::SimHtlc;
use contractcourt_core::types::{Height, Party};

use super::io::lock;
use super::scenario::Direction;
use super::{err, Closing, Sim, SimError};

impl Sim<'_> {
    /// Offer a transaction of the peer's to the mempool; the timeline shows it either way.
    pub(super) fn peer_submit(&mut self, tip: Height, what: String, tx: Transaction) {
        let txid = tx.compute_txid();
        let amount = tx.output.iter().map(|o| o.value.to_sat()).sum();
        let result = lock(&self.chain).submit(tx);
        {
            let mut log = lock(&self.log);
            match result {
                Ok(_) => {
                    let fee = lock(&self.chain).mempool_tx(&txid).map(|m| m.fee_sat);
                    // A line of a channel of several (`ch1: peer claims ...`) names the peer
                    // already.
                    let tagged = what.split_once(": ").is_some_and(|(tag, _)| {
                        tag.strip_prefix("ch")
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    });
                    let label = if tagged {
                        what.clone()
                    } else {
                        format!("peer {}", what.trim_start_matches("peer "))
                    };
                    log.labels.entry(txid).or_insert(label);
                    log.push(tip, what, Some(txid), fee, Some(amount));
                }
                Err(e) => log.push(
                    tip,
                    format!("peer's transaction REFUSED by the mempool ({what}): {e}"),
                    Some(txid),
                    None,
                    None,
                ),
            }
        }
        self.steps.tick();
    }

    /// The peer's HTLC claims on the commitment that confirmed.
    pub(super) fn peer_claims(&mut self, l: usize, tip: Height) -> Result<(), SimError> {
        let Some(closing) = self.lanes[l].closing else {
            return Ok(());
        };
        let idle_from = self.lanes[l].spec.peer.idle_from;
        if idle_from.is_some_and(|h| tip >= self.start.saturating_add(h)) {
            return Ok(());
        }
        if closing.revoked || closing.cooperative {
            return Ok(());
        }
        if self.lanes[l].closing_built.is_none() {
            let built = self.lanes[l]
                .sim
                .built_commitment(closing.holder, closing.number)
                .map_err(err("building the closing commitment"))?;
            self.lanes[l].closing_built = Some(built);
        }
        let Some(built) = self.lanes[l].closing_built.take() else {
            return Ok(());
        };
        let result = self.peer_claims_on(l, &built, closing, tip);
        self.lanes[l].closing_built = Some(built);
        result
    }

    fn peer_claims_on(
        &mut self,
        l: usize,
        built: &contractcourt_core::bolt3::commitment::BuiltCommitment,
        closing: Closing,
        tip: Height,
    ) -> Result<(), SimError> {
        let peer = self.lanes[l].spec.peer;
        let tag = self.lanes[l].tag.clone();
        for (htlc, i) in self.lanes[l].htlcs.clone() {
            if self.lanes[l].peer_done.contains(&i) {
                continue;
            }
            let spec = self.lanes[l].spec.htlcs[i].clone();
            let claim = match spec.direction {
                Direction::Outgoing => peer.claims_with_preimage && spec.peer_knows_preimage,
                Direction::Incoming => peer.times_out && tip >= htlc.cltv_expiry,
            };
            if !claim {
                continue;
            }
            // The HTLC's output on the closing commitment, if it is there and unspent.
            let offered_by_holder = match (closing.holder, spec.direction) {
                (Party::Local, Direction::Outgoing) | (Party::Remote, Direction::Incoming) => true,
                (Party::Local, Direction::Incoming) | (Party::Remote, Direction::Outgoing) => false,
            };
            let Some(index) = built.htlc_output_index(offered_by_holder, htlc.key.htlc_id) else {
                self.lanes[l].peer_done.insert(i);
                continue;
            };
            let outpoint = OutPoint {
                txid: built.tx.compute_txid(),
                vout: index,
            };
            {
                let chain = lock(&self.chain);
                if chain.utxo(&outpoint).is_none() || chain.mempool_spender(&outpoint).is_some() {
                    // Already spent (by us), or not yet confirmed.
                    if chain.tx_confirmation_height(&outpoint.txid).is_some() {
                        drop(chain);
                        self.lanes[l].peer_done.insert(i);
                    }
                    continue;
                }
            }
            self.lanes[l].peer_done.insert(i);
            let (what, tx) = match closing.holder {
                // On its own commitment the peer uses its pre-signed second-level transaction.
                Party::Remote => {
                    let tx = self.lanes[l]
                        .sim
                        .htlc_tx(Party::Remote, closing.number, htlc.key)
                        .map_err(err("the peer's htlc transaction"))?;
                    let what = match spec.direction {
                        Direction::Outgoing => format!(
                            "peer claims outgoing htlc {} with the preimage (HTLC-success)",
                            htlc.key.htlc_id
                        ),
                        Direction::Incoming => format!(
                            "peer times out incoming htlc {} (HTLC-timeout)",
                            htlc.key.htlc_id
                        ),
                    };
                    (what, tx)
                }
                // On ours it spends the HTLC output directly.
                Party::Local => {
                    let tx = self.peer_direct_claim(l, built, index, &htlc, spec.direction)?;
                    let what = match spec.direction {
                        Direction::Outgoing => format!(
                            "peer claims outgoing htlc {} with the preimage",
                            htlc.key.htlc_id
                        ),
                        Direction::Incoming => {
                            format!("peer times out incoming htlc {}", htlc.key.htlc_id)
                        }
                    };
                    (what, tx)
                }
            };
            self.peer_submit(tip, format!("{tag}{what}"), tx);
        }
        Ok(())
    }

    /// The peer's direct claim of an HTLC output of our commitment.
    fn peer_direct_claim(
        &self,
        l: usize,
        built: &contractcourt_core::bolt3::commitment::BuiltCommitment,
        index: u32,
        htlc: &SimHtlc,
        direction: Direction,
    ) -> Result<Transaction, SimError> {
        let output = built
            .outputs
            .iter()
            .find(|o| o.index == index)
            .ok_or_else(|| SimError("htlc output missing".into()))?;
        let script = output
            .witness_script
            .clone()
            .ok_or_else(|| SimError("htlc output without a witness script".into()))?;
        let sim = &self.lanes[l].sim;
        let channel_type = sim.channel_type();
        let path = match direction {
            Direction::Outgoing => ClaimPath::OfferedHtlcPreimage { channel_type },
            Direction::Incoming => ClaimPath::ReceivedHtlcTimeout {
                cltv_expiry: htlc.cltv_expiry,
                channel_type,
            },
        };
        let value = Amount::from_sat(output.value_sat);
        let fee = Amount::from_sat(u64::from(self.current_rate()) * 200);
        let mut tx = build_claim_tx(
            OutPoint {
                txid: built.tx.compute_txid(),
                vout: index,
            },
            &path,
            self.peer_script.clone(),
            value.checked_sub(fee).unwrap_or(Amount::ZERO),
        );
        let number = sim.local_commitment_number();
        let point = sim
            .commitment_spec(Party::Local, number)
            .map_err(err("our commitment"))?
            .keys
            .per_commitment_point;
        let key = sim
            .remote
            .htlc_key(&point)
            .map_err(err("the peer's htlc key"))?;
        let sig = sign_p2wsh(&tx, 0, &script, value, EcdsaSighashType::All, &key)
            .map_err(err("signing the peer's claim"))?;
        tx.input[0].witness = match direction {
            Direction::Outgoing => offered_htlc_preimage_witness(&sig, &htlc.preimage, &script),
            Direction::Incoming => received_htlc_timeout_witness(&sig, &script),
        };
        Ok(tx)
    }
}

//! A CPFP child paid by an output of ours instead of the wallet: on the peer's zero-fee
//! commitment our `to_remote` is a plain P2WPKH output with no CSV (BOLT 3 `to_remote`, PR 1228:
//! the `1 OP_CSV` of anchor channels is removed "because we don't need the CPFP carve-out rule
//! when using v3 txs", which "allows using our channel outputs (main balance or pending HTLCs)
//! to CPFP a remote commitment transaction (no need to add external wallet inputs)"). The child
//! spends the shared anchor and that output and pays the rest to the sweep destination — when
//! the output alone pays the fee at the attempt's rate and leaves a non-dust remainder;
//! otherwise the wallet funds the attempt as usual.

use bitcoin::absolute::LockTime;
use bitcoin::secp256k1::PublicKey;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};
use serde::{Deserialize, Serialize};

use crate::action::{SignInput, SigningKey};
use crate::bolt3::weights::output_weight;
use crate::bolt3::witness::to_remote_p2wpkh_witness;
use crate::bolt3::{secp, sign};
use crate::event::InputSignature;
use crate::fee::{child_fee_for_rate, DUST_RELAY_FEE_SAT_PER_KVB};
use crate::policy::dust_threshold;
use crate::types::RawTx;

use super::{Assembled, FundedAttempt, FundedClaim, P2WPKH_INPUT_WEIGHT};

/// An output of ours that may pay a CPFP child's fee instead of the wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeInput {
    /// The output (our `to_remote` on the peer's commitment, P2WPKH).
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
    /// Our key for it.
    pub key: SigningKey,
    /// The public key its script commits to.
    pub pubkey: PublicKey,
    /// Where what the fee leaves goes.
    pub destination: ScriptBuf,
}

impl FundedClaim {
    /// The weight of a child spending the template's input and the fee input into one output
    /// to the destination, once signed.
    fn own_fee_weight(&self, f: &FeeInput) -> u64 {
        self.template.weight + P2WPKH_INPUT_WEIGHT + output_weight(f.destination.len())
    }

    /// Attempt `a` assembled with the fee input alone, if it pays the fee at the attempt's rate
    /// (for parent and child, and for the child alone), within the budget, with a non-dust
    /// remainder; `None` otherwise (the wallet funds it).
    pub(super) fn own_fee_assembled(&self, a: &FundedAttempt) -> Option<Assembled> {
        let t = &self.template;
        let f = t.fee_input.as_ref()?;
        let weight = self.own_fee_weight(f);
        let (parent_fee, parent_weight) =
            t.parent.as_ref().map_or((0, 0), |p| (p.fee_sat, p.weight));
        let fee_sat = child_fee_for_rate(a.feerate, weight, parent_fee, parent_weight);
        if fee_sat > a.max_fee_sat {
            return None;
        }
        let value_in = f
            .txout
            .value
            .to_sat()
            .saturating_add(t.input.txout.value.to_sat());
        let remainder = value_in.checked_sub(fee_sat)?;
        if remainder < dust_threshold(&f.destination, DUST_RELAY_FEE_SAT_PER_KVB) {
            return None;
        }
        let tx = bitcoin::Transaction {
            version: Version(t.version),
            lock_time: LockTime::from_consensus(t.lock_time),
            input: vec![
                TxIn {
                    previous_output: t.input.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: t.input.sequence,
                    witness: Witness::new(),
                },
                TxIn {
                    previous_output: f.outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                },
            ],
            output: vec![TxOut {
                value: Amount::from_sat(remainder),
                script_pubkey: f.destination.clone(),
            }],
        };
        Some(Assembled {
            txid: tx.compute_txid(),
            tx: RawTx(tx),
            wallet: Vec::new(),
            fee_sat,
            weight,
            own_fee: true,
        })
    }

    /// The sign request's entry for the fee input (input 1, `SIGHASH_ALL`, P2WPKH).
    pub(super) fn own_fee_sign_input(&self) -> Option<SignInput> {
        let f = self.template.fee_input.as_ref()?;
        Some(SignInput {
            input: 1,
            prevout: f.outpoint,
            value_sat: f.txout.value.to_sat(),
            script: f.txout.script_pubkey.clone(),
            sighash: EcdsaSighashType::All,
            key: f.key.clone(),
        })
    }

    /// The fee input's witness from our signature on input 1, checked against its key.
    pub(super) fn own_fee_witness(
        &self,
        tx: &bitcoin::Transaction,
        signatures: &[InputSignature],
    ) -> Option<Witness> {
        let f = self.template.fee_input.as_ref()?;
        let sig = signatures.iter().find(|s| s.input == 1)?.signature;
        if sig.sighash_type != EcdsaSighashType::All {
            return None;
        }
        let msg = sign::p2wpkh_sighash(
            tx,
            1,
            &f.txout.script_pubkey,
            f.txout.value,
            sig.sighash_type,
        )
        .ok()?;
        secp().verify_ecdsa(&msg, &sig.signature, &f.pubkey).ok()?;
        Some(to_remote_p2wpkh_witness(&sig, &f.pubkey))
    }
}

//! The simulated channel's transactions: both parties' signed commitments and HTLC
//! transactions (current or revoked), the commitment events a node sends, and a cooperative close.

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::SecretKey;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut};

use crate::bolt3::commitment::{
    build_commitment, funding_witness, sign_commitment, BuiltCommitment, CommitmentHtlc,
    CommitmentSpec,
};
use crate::bolt3::htlc_tx::{
    htlc_tx_witness, htlc_txs_for_commitment, htlc_witness_script, remote_htlc_sighash_type,
};
use crate::bolt3::{scripts, sign};
use crate::event::{ChannelChange, CommitmentHtlcInfo, LocalCommitment, RemoteCommitment};
use crate::types::{HtlcDirection, HtlcKey, Party};

use super::{SimChannel, SimError};

fn build(spec: &CommitmentSpec) -> Result<BuiltCommitment, SimError> {
    build_commitment(spec).map_err(|e| SimError::Build(e.to_string()))
}

fn sig_err(e: sign::SighashError) -> SimError {
    SimError::Build(e.to_string())
}

impl SimChannel {
    fn secrets(&self, party: Party) -> &super::PartySecrets {
        match party {
            Party::Local => &self.local,
            Party::Remote => &self.remote,
        }
    }

    fn htlc_infos(
        &self,
        holder: Party,
        n: u64,
        built: &BuiltCommitment,
    ) -> Result<Vec<CommitmentHtlcInfo>, SimError> {
        let ours = holder == Party::Local;
        Ok(self
            .state(holder, n)?
            .htlcs
            .values()
            .map(|h| {
                let offered_by_holder = (h.key.direction == HtlcDirection::Outgoing) == ours;
                CommitmentHtlcInfo {
                    htlc_id: h.key.htlc_id,
                    direction: h.key.direction,
                    amount_msat: h.amount_msat,
                    payment_hash: h.payment_hash(),
                    cltv_expiry: h.cltv_expiry,
                    output_index: built.htlc_output_index(offered_by_holder, h.key.htlc_id),
                }
            })
            .collect())
    }

    /// A signature by `signer` on input 0 of `tx`, spending the funding output.
    fn funding_signature(&self, tx: &Transaction, signer: Party) -> Result<Signature, SimError> {
        let (l, r) = (self.local.basepoints(), self.remote.basepoints());
        let script = scripts::funding_script(&l.funding_pubkey, &r.funding_pubkey);
        sign_commitment(
            tx,
            &script,
            self.funding.value_sat,
            &self.secrets(signer).funding,
        )
        .map_err(sig_err)
    }

    /// Sign input 0 of `tx` (spending the funding output) with both funding keys.
    fn sign_funding_spend(&self, tx: &mut Transaction) -> Result<(), SimError> {
        let local_sig = self.funding_signature(tx, Party::Local)?;
        let remote_sig = self.funding_signature(tx, Party::Remote)?;
        let (l, r) = (self.local.basepoints(), self.remote.basepoints());
        tx.input[0].witness = funding_witness(
            &l.funding_pubkey,
            &local_sig,
            &r.funding_pubkey,
            &remote_sig,
        );
        Ok(())
    }

    /// The counterparty's HTLC signatures on the holder's commitment, in output order.
    fn counterparty_htlc_signatures(
        &self,
        holder: Party,
        spec: &CommitmentSpec,
        built: &BuiltCommitment,
    ) -> Result<Vec<Signature>, SimError> {
        let counterparty = match holder {
            Party::Local => Party::Remote,
            Party::Remote => Party::Local,
        };
        let key = self
            .secrets(counterparty)
            .htlc_key(&spec.keys.per_commitment_point)?;
        let sighash = remote_htlc_sighash_type(spec.channel_type);
        htlc_txs_for_commitment(built, spec)
            .iter()
            .map(|(htlc, tx)| self.sign_htlc_input(spec, htlc, tx, sighash, &key))
            .collect()
    }

    fn sign_htlc_input(
        &self,
        spec: &CommitmentSpec,
        htlc: &CommitmentHtlc,
        tx: &Transaction,
        sighash: EcdsaSighashType,
        key: &SecretKey,
    ) -> Result<Signature, SimError> {
        let script = htlc_witness_script(htlc, &spec.keys, spec.channel_type);
        let value = Amount::from_sat(htlc.amount_msat / 1000);
        sign::sign_p2wsh(tx, 0, &script, value, sighash, key).map_err(sig_err)
    }

    pub(super) fn local_commitment_event(&self, n: u64) -> Result<ChannelChange, SimError> {
        let spec = self.commitment_spec(Party::Local, n)?;
        let built = build(&spec)?;
        let state = self.state(Party::Local, n)?;
        Ok(ChannelChange::LocalCommitment(Box::new(LocalCommitment {
            commitment_number: n,
            per_commitment_point: spec.keys.per_commitment_point,
            feerate_per_kw: spec.feerate_per_kw,
            to_local_msat: state.local_msat,
            to_remote_msat: state.remote_msat,
            htlcs: self.htlc_infos(Party::Local, n, &built)?,
            commitment_signature: self.funding_signature(&built.tx, Party::Remote)?,
            htlc_signatures: self.counterparty_htlc_signatures(Party::Local, &spec, &built)?,
        })))
    }

    pub(super) fn remote_commitment_event(&self, n: u64) -> Result<ChannelChange, SimError> {
        let spec = self.commitment_spec(Party::Remote, n)?;
        let built = build(&spec)?;
        let state = self.state(Party::Remote, n)?;
        Ok(ChannelChange::RemoteCommitment(Box::new(
            RemoteCommitment {
                commitment_number: n,
                per_commitment_point: spec.keys.per_commitment_point,
                feerate_per_kw: spec.feerate_per_kw,
                to_local_msat: state.remote_msat,
                to_remote_msat: state.local_msat,
                htlcs: self.htlc_infos(Party::Remote, n, &built)?,
            },
        )))
    }

    /// A party's commitment `n` (current or revoked) with its outputs described.
    pub fn built_commitment(&self, holder: Party, n: u64) -> Result<BuiltCommitment, SimError> {
        build(&self.commitment_spec(holder, n)?)
    }

    /// A party's commitment `n`, signed by both and ready to broadcast.
    pub fn commitment_tx(&self, holder: Party, n: u64) -> Result<Transaction, SimError> {
        let mut tx = self.built_commitment(holder, n)?.tx;
        self.sign_funding_spend(&mut tx)?;
        Ok(tx)
    }

    /// The holder's second-level transaction (HTLC-timeout or HTLC-success) for `htlc` on its
    /// commitment `n`, signed by both parties (with the preimage for HTLC-success). For anchors
    /// channels it has zero fee, as BOLT 3 builds it; a broadcaster adds inputs to pay.
    pub fn htlc_tx(&self, holder: Party, n: u64, htlc: HtlcKey) -> Result<Transaction, SimError> {
        let spec = self.commitment_spec(holder, n)?;
        let built = build(&spec)?;
        let sim_htlc = self
            .state(holder, n)?
            .htlcs
            .get(&htlc)
            .cloned()
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let offered_by_holder =
            (htlc.direction == HtlcDirection::Outgoing) == (holder == Party::Local);
        let vout = built
            .htlc_output_index(offered_by_holder, htlc.htlc_id)
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let (commitment_htlc, mut tx) = htlc_txs_for_commitment(&built, &spec)
            .into_iter()
            .find(|(_, tx)| tx.input[0].previous_output.vout == vout)
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let counterparty = match holder {
            Party::Local => Party::Remote,
            Party::Remote => Party::Local,
        };
        let point = spec.keys.per_commitment_point;
        let remote_key = self.secrets(counterparty).htlc_key(&point)?;
        let local_key = self.secrets(holder).htlc_key(&point)?;
        let sighash = remote_htlc_sighash_type(spec.channel_type);
        let remote_sig =
            self.sign_htlc_input(&spec, &commitment_htlc, &tx, sighash, &remote_key)?;
        let local_sig = self.sign_htlc_input(
            &spec,
            &commitment_htlc,
            &tx,
            EcdsaSighashType::All,
            &local_key,
        )?;
        let script = htlc_witness_script(&commitment_htlc, &spec.keys, spec.channel_type);
        let preimage = (!offered_by_holder).then_some(&sim_htlc.preimage);
        tx.input[0].witness = htlc_tx_witness(&remote_sig, &local_sig, preimage, &script);
        Ok(tx)
    }

    /// The peer's direct claim, with the preimage, of an HTLC we offered on our commitment `n`
    /// (`<remotehtlcsig> <payment_preimage> <offered_htlc_script>`), paying `fee_sat` and the
    /// rest to a P2WPKH of the peer's. Valid for Bitcoin Core's interpreter.
    pub fn peer_preimage_claim(
        &self,
        n: u64,
        htlc: HtlcKey,
        fee_sat: u64,
    ) -> Result<Transaction, SimError> {
        let spec = self.commitment_spec(Party::Local, n)?;
        let built = build(&spec)?;
        let sim_htlc = self
            .state(Party::Local, n)?
            .htlcs
            .get(&htlc)
            .cloned()
            .filter(|_| htlc.direction == HtlcDirection::Outgoing)
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let vout = built
            .htlc_output_index(true, htlc.htlc_id)
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let output = built
            .outputs
            .iter()
            .find(|o| o.index == vout)
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let script = output
            .witness_script
            .clone()
            .ok_or(SimError::UnknownHtlc(htlc))?;
        let value = Amount::from_sat(output.value_sat);
        let path = crate::bolt3::witness::ClaimPath::preimage_claim_on_remote_commitment(
            spec.channel_type,
        );
        let key = self.remote.htlc_key(&spec.keys.per_commitment_point)?;
        let pubkey = bitcoin::CompressedPublicKey(key.public_key(crate::bolt3::secp()));
        let mut tx = crate::bolt3::witness::build_claim_tx(
            bitcoin::OutPoint {
                txid: built.tx.compute_txid(),
                vout,
            },
            &path,
            ScriptBuf::new_p2wpkh(&pubkey.wpubkey_hash()),
            value
                .checked_sub(Amount::from_sat(fee_sat))
                .ok_or(SimError::BalanceExceedsCapacity)?,
        );
        let sig = sign::sign_p2wsh(&tx, 0, &script, value, EcdsaSighashType::All, &key)
            .map_err(sig_err)?;
        tx.input[0].witness =
            crate::bolt3::witness::offered_htlc_preimage_witness(&sig, &sim_htlc.preimage, &script);
        Ok(tx)
    }

    /// A party's per-commitment secret for commitment `n` (revealing the peer's for a revoked
    /// commitment is what makes a breach punishable).
    pub fn per_commitment_secret(&self, holder: Party, n: u64) -> Result<[u8; 32], SimError> {
        self.secrets(holder).per_commitment_secret(n)
    }

    /// A cooperative close of the latest state paying each side's balance (HTLCs must be
    /// resolved first) to its shutdown script, the funder paying `fee_sat`; signed by both.
    pub fn cooperative_close_tx(
        &self,
        local_script: ScriptBuf,
        remote_script: ScriptBuf,
        fee_sat: u64,
    ) -> Result<Transaction, SimError> {
        let state = &self.latest;
        if !state.htlcs.is_empty() {
            return Err(SimError::OutOfOrder("cooperative close with live htlcs"));
        }
        let mut local = state.local_msat / 1000;
        let mut remote = state.remote_msat / 1000;
        let funder = match self.setup.funder {
            Party::Local => &mut local,
            Party::Remote => &mut remote,
        };
        *funder = funder
            .checked_sub(fee_sat)
            .ok_or(SimError::BalanceExceedsCapacity)?;
        let mut outputs: Vec<TxOut> = [(local, local_script), (remote, remote_script)]
            .into_iter()
            .filter(|(value, _)| {
                *value
                    >= self
                        .setup
                        .local_dust_limit_sat
                        .max(self.setup.remote_dust_limit_sat)
            })
            .map(|(value, script)| TxOut {
                value: Amount::from_sat(value),
                script_pubkey: script,
            })
            .collect();
        outputs.sort_by(|a, b| {
            (a.value, a.script_pubkey.as_bytes()).cmp(&(b.value, b.script_pubkey.as_bytes()))
        });
        let mut tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: self.funding.outpoint,
                sequence: Sequence::MAX,
                ..TxIn::default()
            }],
            output: outputs,
        };
        self.sign_funding_spend(&mut tx)?;
        Ok(tx)
    }
}

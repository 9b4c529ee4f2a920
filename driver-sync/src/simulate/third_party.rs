//! A third party: anyone may spend an anchor output 16 blocks after its commitment confirmed
//! (BOLT 3), and someone cleaning the UTXO set does.

use bitcoin::absolute::LockTime;
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut};
use contractcourt_core::bolt3::commitment::OutputKind;
use contractcourt_core::bolt3::witness::anchor_anyone_witness;
use contractcourt_core::types::Height;

use super::io::lock;
use super::{err, Sim, SimError};

/// The CSV delay after which anyone may spend an anchor (BOLT 3).
const ANCHOR_ANYONE_CSV: u16 = 16;

impl Sim<'_> {
    /// From the scenario's height on, spend every unspent anchor of the first channel's closing
    /// commitment that is 16 blocks deep, in one transaction whose only output is an
    /// `OP_RETURN` (the anchors' 330 sat each go to the miner).
    pub(super) fn third_party_spends(&mut self, tip: Height) -> Result<(), SimError> {
        let Some(t) = self.scenario.third_party else {
            return Ok(());
        };
        if tip < self.start.saturating_add(t.spends_anchors_from) {
            return Ok(());
        }
        let lane = &self.lanes[0];
        let Some(closing) = lane.closing.filter(|c| !c.cooperative) else {
            return Ok(());
        };
        let built = lane
            .sim
            .built_commitment(closing.holder, closing.number)
            .map_err(err("building the closing commitment"))?;
        let txid = built.tx.compute_txid();
        let mut inputs = Vec::new();
        {
            let chain = lock(&self.chain);
            let Some(confirmed) = chain.tx_confirmation_height(&txid) else {
                return Ok(());
            };
            // Mined in the next block: 16 confirmations by then.
            if tip.saturating_add(1) < confirmed.saturating_add(u32::from(ANCHOR_ANYONE_CSV)) {
                return Ok(());
            }
            for o in &built.outputs {
                let anchor = matches!(o.kind, OutputKind::LocalAnchor | OutputKind::RemoteAnchor);
                let outpoint = OutPoint {
                    txid,
                    vout: o.index,
                };
                let unspent =
                    chain.utxo(&outpoint).is_some() && chain.mempool_spender(&outpoint).is_none();
                if let (true, true, Some(script)) = (anchor, unspent, o.witness_script.clone()) {
                    inputs.push((outpoint, script));
                }
            }
        }
        if inputs.is_empty() {
            return Ok(());
        }
        let tx = anyone_spend(&inputs);
        let n = inputs.len();
        self.third_party_submit(tip, n, tx);
        Ok(())
    }

    fn third_party_submit(&mut self, tip: Height, n: usize, tx: Transaction) {
        let txid = tx.compute_txid();
        let what =
            format!("a third party spends {n} anchor output(s) (anyone may, after 16 blocks)");
        let result = lock(&self.chain).submit(tx);
        let mut log = lock(&self.log);
        match result {
            Ok(_) => {
                log.labels
                    .entry(txid)
                    .or_insert_with(|| "third party's anchor spend".to_string());
                log.push(tip, what, Some(txid), None, Some(0));
            }
            Err(e) => log.push(
                tip,
                format!("third party's transaction REFUSED by the mempool ({what}): {e}"),
                Some(txid),
                None,
                None,
            ),
        }
        drop(log);
        self.steps.tick();
    }
}

/// The spend of `inputs` (anchor outpoints and their witness scripts) by anyone: `<>` and the
/// script, `nSequence` 16, one `OP_RETURN` output carrying four bytes (a transaction's
/// non-witness size must be at least 65 bytes for Bitcoin Core's policy).
fn anyone_spend(inputs: &[(OutPoint, ScriptBuf)]) -> Transaction {
    let data = PushBytesBuf::try_from(b"anch".to_vec()).unwrap_or_default();
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(outpoint, script)| TxIn {
                previous_output: *outpoint,
                sequence: Sequence::from_height(ANCHOR_ANYONE_CSV),
                witness: anchor_anyone_witness(script),
                ..TxIn::default()
            })
            .collect(),
        output: vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return(data),
        }],
    }
}

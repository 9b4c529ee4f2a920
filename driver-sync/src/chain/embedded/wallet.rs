//! [`TestWallet`]: one P2WPKH key derived from a seed. Mine coinbases to its script, and it
//! spends its confirmed, mature outputs to fund tests and CPFP children. Signatures are RFC
//! 6979 (deterministic), so the same seed and chain give the same transactions.

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, CompressedPublicKey, FeeRate, OutPoint, Script, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use contractcourt_core::policy::{dust_threshold, fee_for_vsize};
use contractcourt_core::types::Height;

use super::{EmbeddedChain, COINBASE_MATURITY};

/// The pay-to-anchor script `OP_1 <0x4e73>` (anyone may spend it with an empty witness).
const P2A_SCRIPT: [u8; 4] = [0x51, 0x02, 0x4e, 0x73];

/// Why the wallet could not build a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletError {
    /// Not enough confirmed, mature, unspent wallet outputs.
    InsufficientFunds {
        /// What the transaction needs (outputs plus fee, sat).
        needed_sat: u64,
        /// What the wallet could gather (sat).
        available_sat: u64,
    },
    /// The parent has no such output.
    NoSuchOutput {
        /// The parent's txid.
        txid: Txid,
        /// The output index asked for.
        vout: u32,
    },
    /// The parent output pays neither this wallet nor pay-to-anchor.
    OutputNotSpendable {
        /// The output index.
        vout: u32,
    },
    /// A prevout of the parent is neither in the chain nor in the mempool, so its fee is
    /// unknown.
    UnknownPrevout {
        /// The parent's input index.
        input: usize,
        /// The outpoint it spends.
        outpoint: OutPoint,
    },
    /// Computing a signature hash failed.
    Signing(String),
}

impl std::fmt::Display for WalletError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalletError::InsufficientFunds {
                needed_sat,
                available_sat,
            } => write!(
                f,
                "insufficient funds: need {needed_sat} sat, have {available_sat} sat"
            ),
            WalletError::NoSuchOutput { txid, vout } => write!(f, "{txid} has no output {vout}"),
            WalletError::OutputNotSpendable { vout } => write!(
                f,
                "parent output {vout} pays neither the wallet nor pay-to-anchor"
            ),
            WalletError::UnknownPrevout { input, outpoint } => write!(
                f,
                "parent input {input} spends {outpoint}, unknown to the chain and the mempool"
            ),
            WalletError::Signing(e) => write!(f, "signing: {e}"),
        }
    }
}

impl std::error::Error for WalletError {}

/// A wallet output the wallet may spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletUtxo {
    /// The outpoint.
    pub outpoint: OutPoint,
    /// The output.
    pub txout: TxOut,
    /// The height it confirmed at.
    pub height: Height,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputKind {
    /// A P2WPKH output of this wallet: signed.
    Wallet,
    /// A pay-to-anchor output: empty witness.
    PayToAnchor,
}

struct Spend {
    outpoint: OutPoint,
    prevout: TxOut,
    kind: InputKind,
}

/// A deterministic single-key P2WPKH wallet for tests and simulations.
#[derive(Clone)]
pub struct TestWallet {
    secret: SecretKey,
    public: CompressedPublicKey,
    script_pubkey: ScriptBuf,
    secp: Secp256k1<All>,
}

impl std::fmt::Debug for TestWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestWallet")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn kvb(rate: FeeRate) -> u64 {
    rate.to_sat_per_kwu().saturating_mul(4)
}

impl TestWallet {
    /// The wallet of `seed`: its key is `SHA256("contractcourt/test-wallet" || seed)` (hashed
    /// again in the negligible case that is not a valid key).
    pub fn new(seed: u64) -> TestWallet {
        let mut engine = sha256::Hash::engine();
        engine.input(b"contractcourt/test-wallet");
        engine.input(&seed.to_be_bytes());
        let mut hash = sha256::Hash::from_engine(engine);
        let secret = loop {
            if let Ok(secret) = SecretKey::from_slice(hash.as_byte_array()) {
                break secret;
            }
            hash = sha256::Hash::hash(hash.as_byte_array());
        };
        let secp = Secp256k1::new();
        let public = CompressedPublicKey(secret.public_key(&secp));
        TestWallet {
            secret,
            public,
            script_pubkey: ScriptBuf::new_p2wpkh(&public.wpubkey_hash()),
            secp,
        }
    }

    /// The public key.
    pub fn public_key(&self) -> CompressedPublicKey {
        self.public
    }

    /// The P2WPKH script the wallet receives on (mine coinbases to it).
    pub fn script_pubkey(&self) -> &Script {
        &self.script_pubkey
    }

    /// The outputs the wallet may spend in the next block: confirmed, paying its script,
    /// mature if coinbase, not spent by a mempool transaction. Ordered by height, then
    /// outpoint.
    pub fn utxos(&self, chain: &EmbeddedChain) -> Vec<WalletUtxo> {
        let spend_height = chain.height() + 1;
        let mut utxos: Vec<WalletUtxo> = chain
            .utxos_for_script(&self.script_pubkey)
            .into_iter()
            .filter(|(_, coin)| {
                !coin.is_coinbase || spend_height.saturating_sub(coin.height) >= COINBASE_MATURITY
            })
            .filter(|(outpoint, _)| chain.mempool_spender(outpoint).is_none())
            .map(|(outpoint, coin)| WalletUtxo {
                outpoint,
                txout: coin.txout,
                height: coin.height,
            })
            .collect();
        utxos.sort_by_key(|u| (u.height, u.outpoint));
        utxos
    }

    /// The total of [`TestWallet::utxos`].
    pub fn balance(&self, chain: &EmbeddedChain) -> Amount {
        self.utxos(chain).iter().map(|u| u.txout.value).sum()
    }

    /// A signed transaction paying `amount` to `script_pubkey` at `fee_rate`, with change back
    /// to the wallet. Not submitted: hand it to [`EmbeddedChain::submit`] (until then, the
    /// same inputs may be chosen again).
    pub fn fund(
        &self,
        chain: &EmbeddedChain,
        script_pubkey: ScriptBuf,
        amount: Amount,
        fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        self.send(
            chain,
            vec![TxOut {
                value: amount,
                script_pubkey,
            }],
            fee_rate,
        )
    }

    /// A signed transaction paying `outputs` (in order, change last) at `fee_rate`.
    pub fn send(
        &self,
        chain: &EmbeddedChain,
        outputs: Vec<TxOut>,
        fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        let rate = kvb(fee_rate);
        self.complete(chain, Vec::new(), &[], outputs, |vsize| {
            fee_for_vsize(vsize, rate)
        })
    }

    /// A signed CPFP child of `parent` spending its output `vout` (a P2WPKH output of this
    /// wallet, or pay-to-anchor) plus wallet inputs as needed, paying everything back to the
    /// wallet, so that parent and child together pay `package_fee_rate` (and the child alone
    /// at least that rate for its own size). The parent's fee is read from its prevouts in
    /// the chain or the mempool. Submit both with [`EmbeddedChain::submit_package`].
    pub fn cpfp(
        &self,
        chain: &EmbeddedChain,
        parent: &Transaction,
        vout: u32,
        package_fee_rate: FeeRate,
    ) -> Result<Transaction, WalletError> {
        let txid = parent.compute_txid();
        let output = parent
            .output
            .get(vout as usize)
            .ok_or(WalletError::NoSuchOutput { txid, vout })?;
        let kind = if output.script_pubkey == self.script_pubkey {
            InputKind::Wallet
        } else if output.script_pubkey.as_bytes() == P2A_SCRIPT {
            InputKind::PayToAnchor
        } else {
            return Err(WalletError::OutputNotSpendable { vout });
        };
        let mut parent_in = 0u64;
        for (input, txin) in parent.input.iter().enumerate() {
            let prevout =
                chain
                    .prevout(&txin.previous_output)
                    .ok_or(WalletError::UnknownPrevout {
                        input,
                        outpoint: txin.previous_output,
                    })?;
            parent_in = parent_in.saturating_add(prevout.value.to_sat());
        }
        let parent_out: u64 = parent.output.iter().map(|o| o.value.to_sat()).sum();
        let parent_fee = parent_in.saturating_sub(parent_out);
        let parent_vsize = parent.vsize() as u64;
        let rate = kvb(package_fee_rate);
        let spend = Spend {
            outpoint: OutPoint { txid, vout },
            prevout: output.clone(),
            kind,
        };
        // The parent's own inputs are not spent in the mempool yet: never pick them again.
        let exclude: Vec<OutPoint> = parent.input.iter().map(|i| i.previous_output).collect();
        self.complete(chain, vec![spend], &exclude, Vec::new(), |child_vsize| {
            let package =
                fee_for_vsize(parent_vsize + child_vsize, rate).saturating_sub(parent_fee);
            package.max(fee_for_vsize(child_vsize, rate))
        })
    }

    /// Sign input `index` of `tx`, which spends a P2WPKH output of this wallet worth `value`
    /// (`SIGHASH_ALL`), and set its witness.
    pub fn sign_input(
        &self,
        tx: &mut Transaction,
        index: usize,
        value: Amount,
    ) -> Result<(), WalletError> {
        let witness = self.witness(tx, index, value)?;
        match tx.input.get_mut(index) {
            Some(input) => {
                input.witness = witness;
                Ok(())
            }
            None => Err(WalletError::Signing(format!("no input {index}"))),
        }
    }

    fn witness(
        &self,
        tx: &Transaction,
        index: usize,
        value: Amount,
    ) -> Result<Witness, WalletError> {
        let sighash = SighashCache::new(tx)
            .p2wpkh_signature_hash(index, &self.script_pubkey, value, EcdsaSighashType::All)
            .map_err(|e| WalletError::Signing(e.to_string().to_lowercase()))?;
        let signature = bitcoin::ecdsa::Signature {
            signature: self.secp.sign_ecdsa(&Message::from(sighash), &self.secret),
            sighash_type: EcdsaSighashType::All,
        };
        Ok(Witness::p2wpkh(&signature, &self.public.0))
    }

    /// Add wallet inputs (largest first, none of `exclude`) to `spends` until they pay `outputs` plus
    /// `required_fee(vsize)`, add change back to the wallet unless it would be dust, sign.
    fn complete(
        &self,
        chain: &EmbeddedChain,
        mut spends: Vec<Spend>,
        exclude: &[OutPoint],
        outputs: Vec<TxOut>,
        required_fee: impl Fn(u64) -> u64,
    ) -> Result<Transaction, WalletError> {
        let mut candidates = self.utxos(chain);
        candidates.retain(|u| {
            !spends.iter().any(|s| s.outpoint == u.outpoint) && !exclude.contains(&u.outpoint)
        });
        candidates.sort_by(|a, b| {
            b.txout
                .value
                .cmp(&a.txout.value)
                .then(a.outpoint.cmp(&b.outpoint))
        });
        let mut candidates = candidates.into_iter();
        let outputs_sat: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
        let dust = dust_threshold(
            &self.script_pubkey,
            chain.config().policy.dust_relay_fee_sat_per_kvb,
        );
        loop {
            let inputs_sat: u64 = spends.iter().map(|s| s.prevout.value.to_sat()).sum();
            let mut with_change = outputs.clone();
            with_change.push(TxOut {
                value: Amount::ZERO,
                script_pubkey: self.script_pubkey.clone(),
            });
            let fee = required_fee(estimated_vsize(&spends, &with_change));
            if let Some(change) = inputs_sat
                .checked_sub(outputs_sat.saturating_add(fee))
                .filter(|c| *c >= dust)
            {
                if let Some(last) = with_change.last_mut() {
                    last.value = Amount::from_sat(change);
                }
                return self.sign(&spends, with_change);
            }
            if !outputs.is_empty() {
                let fee = required_fee(estimated_vsize(&spends, &outputs));
                if inputs_sat >= outputs_sat.saturating_add(fee) {
                    return self.sign(&spends, outputs);
                }
            }
            match candidates.next() {
                Some(utxo) => spends.push(Spend {
                    outpoint: utxo.outpoint,
                    prevout: utxo.txout,
                    kind: InputKind::Wallet,
                }),
                None => {
                    return Err(WalletError::InsufficientFunds {
                        needed_sat: outputs_sat.saturating_add(fee),
                        available_sat: inputs_sat,
                    })
                }
            }
        }
    }

    fn sign(&self, spends: &[Spend], outputs: Vec<TxOut>) -> Result<Transaction, WalletError> {
        let mut tx = unsigned(spends, outputs);
        let mut witnesses = Vec::with_capacity(spends.len());
        for (index, spend) in spends.iter().enumerate() {
            witnesses.push(match spend.kind {
                InputKind::Wallet => self.witness(&tx, index, spend.prevout.value)?,
                InputKind::PayToAnchor => Witness::new(),
            });
        }
        for (input, witness) in tx.input.iter_mut().zip(witnesses) {
            input.witness = witness;
        }
        Ok(tx)
    }
}

fn unsigned(spends: &[Spend], outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: spends
            .iter()
            .map(|s| TxIn {
                previous_output: s.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs,
    }
}

/// The virtual size once signed, with the largest (72-byte) signatures.
fn estimated_vsize(spends: &[Spend], outputs: &[TxOut]) -> u64 {
    let mut tx = unsigned(spends, outputs.to_vec());
    for (input, spend) in tx.input.iter_mut().zip(spends) {
        if spend.kind == InputKind::Wallet {
            input.witness = Witness::from_slice(&[vec![0u8; 72], vec![0u8; 33]]);
        }
    }
    tx.vsize() as u64
}

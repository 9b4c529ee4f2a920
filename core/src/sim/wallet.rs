//! [`SimWallet`]: a deterministic one-key P2WPKH wallet for scenarios. It answers the core's
//! funding requests with [`select_inputs`], lends inputs per claim until they are released,
//! signs its own inputs, and follows the blocks it is shown (spent coins leave, coins paying
//! its script arrive).

use std::collections::BTreeMap;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::secp256k1::SecretKey;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};

use crate::action::{FundingRequest, SignRequest, SigningKey};
use crate::bolt3::{secp, sign};
use crate::event::{FundingOutcome, InputWitness, WalletInput};
use crate::funded::select_inputs;
use crate::types::{ClaimId, Height};

/// The weight a signed input of this wallet adds to its witness: items count, a 73-byte
/// signature and a 33-byte key, each with its length.
pub const SATISFACTION_WEIGHT: u64 = 1 + 1 + 73 + 1 + 33;

/// A deterministic P2WPKH wallet.
#[derive(Clone, Debug)]
pub struct SimWallet {
    secret: SecretKey,
    public: CompressedPublicKey,
    script: ScriptBuf,
    coins: BTreeMap<OutPoint, WalletInput>,
    lent: BTreeMap<ClaimId, Vec<OutPoint>>,
}

impl SimWallet {
    /// The wallet of `seed`.
    pub fn new(seed: u64) -> SimWallet {
        let mut hash = sha256::Hash::hash(
            &[b"contractcourt/sim-wallet".as_slice(), &seed.to_be_bytes()].concat(),
        );
        let secret = loop {
            if let Ok(s) = SecretKey::from_slice(hash.as_byte_array()) {
                break s;
            }
            hash = sha256::Hash::hash(hash.as_byte_array());
        };
        let public = CompressedPublicKey(secret.public_key(secp()));
        SimWallet {
            secret,
            public,
            script: ScriptBuf::new_p2wpkh(&public.wpubkey_hash()),
            coins: BTreeMap::new(),
            lent: BTreeMap::new(),
        }
    }

    /// Its scriptPubKey.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.script
    }

    /// A transaction paying `count` coins of `value_sat` to this wallet (its one input spends
    /// nothing real: scenarios put it in a block to give the wallet confirmed coins).
    pub fn faucet(&self, count: u32, value_sat: u64, tag: u8) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: bitcoin::Txid::from_byte_array([tag; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: (0..count)
                .map(|_| TxOut {
                    value: Amount::from_sat(value_sat),
                    script_pubkey: self.script.clone(),
                })
                .collect(),
        }
    }

    /// A block at `height` confirmed `txs`: coins they spend leave, outputs paying this wallet
    /// arrive.
    pub fn on_block(&mut self, height: Height, txs: &[Transaction]) {
        for tx in txs {
            for input in &tx.input {
                self.coins.remove(&input.previous_output);
            }
            let txid = tx.compute_txid();
            for (vout, out) in tx.output.iter().enumerate() {
                if out.script_pubkey == self.script {
                    let outpoint = OutPoint {
                        txid,
                        vout: u32::try_from(vout).unwrap_or(u32::MAX),
                    };
                    self.coins.insert(
                        outpoint,
                        WalletInput {
                            outpoint,
                            txout: out.clone(),
                            satisfaction_weight: SATISFACTION_WEIGHT,
                            confirmation_height: height,
                        },
                    );
                }
            }
        }
    }

    /// Follow a reorg: forget every coin and replay `blocks` (the active chain, oldest first,
    /// each with its height and transactions), so coins a disconnected block spent come back
    /// and coins it created leave. Lent inputs stay lent.
    pub fn rescan<'a>(&mut self, blocks: impl IntoIterator<Item = (Height, &'a [Transaction])>) {
        self.coins.clear();
        for (height, txs) in blocks {
            self.on_block(height, txs);
        }
    }

    /// Its confirmed balance.
    pub fn balance_sat(&self) -> u64 {
        self.coins.values().map(|c| c.txout.value.to_sat()).sum()
    }

    /// Answer a funding request: coins lent to other claims are not offered.
    pub fn fund(&mut self, request: &FundingRequest) -> FundingOutcome {
        let claim = request.request.claim;
        let available: Vec<WalletInput> = self
            .coins
            .values()
            .filter(|c| {
                !self
                    .lent
                    .iter()
                    .any(|(k, v)| *k != claim && v.contains(&c.outpoint))
            })
            .cloned()
            .collect();
        let outcome = select_inputs(request, &available, &self.script);
        if let FundingOutcome::Funded { inputs, .. } = &outcome {
            let lent = self.lent.entry(claim).or_default();
            for i in inputs {
                if !lent.contains(&i.outpoint) {
                    lent.push(i.outpoint);
                }
            }
        }
        outcome
    }

    /// A claim ended: its coins may be lent again.
    pub fn release(&mut self, claim: ClaimId) {
        self.lent.remove(&claim);
    }

    /// The witnesses of the wallet inputs of `request`.
    pub fn sign(&self, request: &SignRequest) -> Vec<InputWitness> {
        request
            .inputs
            .iter()
            .filter(|i| i.key == SigningKey::Wallet && i.script == self.script)
            .filter_map(|i| {
                let msg = sign::p2wpkh_sighash(
                    &request.tx,
                    i.input as usize,
                    &self.script,
                    Amount::from_sat(i.value_sat),
                    EcdsaSighashType::All,
                )
                .ok()?;
                let sig = sign::sign_message(&msg, &self.secret, EcdsaSighashType::All);
                let mut witness = Witness::new();
                witness.push_ecdsa_signature(&sig);
                witness.push(self.public.to_bytes());
                Some(InputWitness {
                    input: i.input,
                    witness,
                })
            })
            .collect()
    }
}

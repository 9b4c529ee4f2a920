//! [`ChainWallet`]: the [`TestWallet`] as the engine's on-chain wallet over an embedded chain.
//! It offers confirmed, unspent coins (none lent to another claim), chooses among them with the
//! core's own [`select_inputs`] arithmetic, and signs its inputs when asked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bitcoin::{Amount, OutPoint, Witness};
use contractcourt_core::action::{FundingRequest, SignInput, SignRequest};
use contractcourt_core::event::{FundingOutcome, WalletInput};
use contractcourt_core::funded::select_inputs;
use contractcourt_core::types::ClaimId;

use super::{EmbeddedChain, TestWallet};
use crate::driver::io::lock;
use crate::driver::Wallet;
use crate::signer::WalletSigner;

/// The weight a signed P2WPKH input of the test wallet adds to its witness (items count, a
/// signature of at most 73 bytes and a 33-byte key, each with its length).
pub const P2WPKH_SATISFACTION_WEIGHT: u64 = 1 + 1 + 73 + 1 + 33;

/// The test wallet funding the engine's claims from an embedded chain.
pub struct ChainWallet {
    wallet: TestWallet,
    chain: Arc<Mutex<EmbeddedChain>>,
    lent: BTreeMap<ClaimId, Vec<OutPoint>>,
}

impl std::fmt::Debug for ChainWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainWallet")
            .field("wallet", &self.wallet)
            .field("lent", &self.lent)
            .finish_non_exhaustive()
    }
}

impl ChainWallet {
    /// `wallet`'s coins on `chain`.
    pub fn new(wallet: TestWallet, chain: Arc<Mutex<EmbeddedChain>>) -> ChainWallet {
        ChainWallet {
            wallet,
            chain,
            lent: BTreeMap::new(),
        }
    }

    /// The coins that may fund `claim`: confirmed, unspent in the mempool, not lent to another
    /// claim.
    fn available(&self, claim: ClaimId) -> Vec<WalletInput> {
        let chain = lock(&self.chain);
        self.wallet
            .utxos(&chain)
            .into_iter()
            .filter(|u| {
                !self
                    .lent
                    .iter()
                    .any(|(c, v)| *c != claim && v.contains(&u.outpoint))
            })
            .map(|u| WalletInput {
                outpoint: u.outpoint,
                txout: u.txout,
                satisfaction_weight: P2WPKH_SATISFACTION_WEIGHT,
                confirmation_height: u.height,
            })
            .collect()
    }
}

impl Wallet for ChainWallet {
    fn fund(&mut self, request: &FundingRequest) -> FundingOutcome {
        let claim = request.request.claim;
        let available = self.available(claim);
        let outcome = select_inputs(request, &available, self.wallet.script_pubkey());
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

    fn release(&mut self, claim: ClaimId) {
        self.lent.remove(&claim);
    }

    fn confirmed_balance(&mut self) -> Option<u64> {
        let chain = lock(&self.chain);
        let coins = self.wallet.utxos(&chain);
        Some(coins.iter().map(|u| u.txout.value.to_sat()).sum())
    }
}

impl WalletSigner for ChainWallet {
    fn witness(&mut self, request: &SignRequest, input: &SignInput) -> Result<Witness, String> {
        if input.script.as_script() != self.wallet.script_pubkey() {
            return Err(format!("input {} is not this wallet's", input.input));
        }
        let mut tx = request.tx.0.clone();
        let index = input.input as usize;
        self.wallet
            .sign_input(&mut tx, index, Amount::from_sat(input.value_sat))
            .map_err(|e| e.to_string())?;
        tx.input
            .get(index)
            .map(|i| i.witness.clone())
            .ok_or_else(|| format!("no input {index}"))
    }
}

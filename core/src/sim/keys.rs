//! One simulated party's secrets: basepoint secrets and per-commitment secrets, all derived
//! deterministically from a seed (or given explicitly, to reproduce the BOLT 3 appendices).

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};

use crate::bolt3::{keys, secp, shachain, ChannelBasepoints};

use super::SimError;

/// Every secret of one party of a simulated channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySecrets {
    /// The funding key (also the anchor key).
    pub funding: SecretKey,
    /// The revocation basepoint secret.
    pub revocation_base: SecretKey,
    /// The payment basepoint secret.
    pub payment_base: SecretKey,
    /// The delayed-payment basepoint secret.
    pub delayed_payment_base: SecretKey,
    /// The HTLC basepoint secret.
    pub htlc_base: SecretKey,
    /// The shachain seed of this party's per-commitment secrets.
    #[serde(with = "crate::bolt3::hex_32")]
    pub commitment_seed: [u8; 32],
    /// Per-commitment secrets given explicitly (by commitment number), overriding the seed.
    pub fixed_commitment_secrets: BTreeMap<u64, [u8; 32]>,
}

fn derive_secret(seed: &[u8; 32], label: &str) -> SecretKey {
    let mut counter = 0u32;
    loop {
        let mut engine = sha256::Hash::engine();
        engine.input(seed);
        engine.input(label.as_bytes());
        engine.input(&counter.to_be_bytes());
        let digest = sha256::Hash::from_engine(engine).to_byte_array();
        // A digest that is zero or not below the curve order is astronomically rare; try the next.
        if let Ok(key) = SecretKey::from_slice(&digest) {
            return key;
        }
        counter += 1;
    }
}

impl PartySecrets {
    /// Derive every secret of a party from `seed` and a label that tells the parties apart.
    pub fn from_seed(seed: &[u8; 32], party: &str) -> PartySecrets {
        let label = |what: &str| format!("contractcourt-sim/{party}/{what}");
        let mut commitment_seed = [0u8; 32];
        commitment_seed.copy_from_slice(derive_secret(seed, &label("commitment-seed")).as_ref());
        PartySecrets {
            funding: derive_secret(seed, &label("funding")),
            revocation_base: derive_secret(seed, &label("revocation")),
            payment_base: derive_secret(seed, &label("payment")),
            delayed_payment_base: derive_secret(seed, &label("delayed-payment")),
            htlc_base: derive_secret(seed, &label("htlc")),
            commitment_seed,
            fixed_commitment_secrets: BTreeMap::new(),
        }
    }

    /// The public basepoints and funding key.
    pub fn basepoints(&self) -> ChannelBasepoints {
        let public = |s: &SecretKey| PublicKey::from_secret_key(secp(), s);
        ChannelBasepoints {
            funding_pubkey: public(&self.funding),
            revocation_basepoint: public(&self.revocation_base),
            payment_basepoint: public(&self.payment_base),
            delayed_payment_basepoint: public(&self.delayed_payment_base),
            htlc_basepoint: public(&self.htlc_base),
        }
    }

    /// The per-commitment secret of commitment `n`.
    pub fn per_commitment_secret(&self, n: u64) -> Result<[u8; 32], SimError> {
        if let Some(secret) = self.fixed_commitment_secrets.get(&n) {
            return Ok(*secret);
        }
        let index =
            shachain::checked_secret_index(n).ok_or(SimError::CommitmentNumberTooLarge(n))?;
        Ok(shachain::generate_from_seed(&self.commitment_seed, index))
    }

    /// The per-commitment point of commitment `n`.
    pub fn per_commitment_point(&self, n: u64) -> Result<PublicKey, SimError> {
        keys::per_commitment_point(&self.per_commitment_secret(n)?).map_err(SimError::Key)
    }

    /// The private key of this party's HTLC key on a commitment with `point`.
    pub fn htlc_key(&self, point: &PublicKey) -> Result<SecretKey, SimError> {
        keys::derive_privkey(&self.htlc_base, point).map_err(SimError::Key)
    }

    /// The private key of this party's delayed-payment key on its commitment with `point`.
    pub fn delayed_payment_key(&self, point: &PublicKey) -> Result<SecretKey, SimError> {
        keys::derive_privkey(&self.delayed_payment_base, point).map_err(SimError::Key)
    }

    /// The revocation private key for the *other* party's commitment whose secret is
    /// `their_secret`.
    pub fn revocation_key(&self, their_secret: &[u8; 32]) -> Result<SecretKey, SimError> {
        let secret = SecretKey::from_slice(their_secret).map_err(|_| SimError::BadSecret)?;
        keys::derive_revocation_privkey(&self.revocation_base, &secret).map_err(SimError::Key)
    }
}

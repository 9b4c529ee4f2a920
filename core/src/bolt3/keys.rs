//! BOLT 3 "Key Derivation": per-commitment points, the tweaked `localpubkey` / HTLC / delayed
//! keys and their secrets, and the revocation key pair.
//!
//! Every commitment has its own keys, derived from the channel basepoints and the *holder's*
//! per-commitment point (B03-KEY-04):
//!
//! - `pubkey = basepoint + SHA256(per_commitment_point || basepoint)·G` and
//!   `privkey = basepoint_secret + SHA256(per_commitment_point || basepoint) mod n` (B03-KEY-01);
//! - `revocationpubkey = R·SHA256(R || P) + P·SHA256(P || R)` where `R` is the punishing party's
//!   revocation basepoint and `P` the holder's per-commitment point, with the matching secret
//!   `r·SHA256(R || P) + p·SHA256(P || R) mod n` (B03-KEY-03);
//! - `remotepubkey` is the counterparty's untweaked payment basepoint (B03-KEY-02).

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{PublicKey, Scalar, SecretKey};

use super::{secp, ChannelBasepoints, CommitmentKeys};

/// Why a key could not be derived.
///
/// Apart from [`KeyError::InvalidSecret`] (a caller handing over a zero or out-of-range scalar),
/// these failures happen with negligible probability for honest inputs; they are reported rather
/// than panicking because the inputs may come from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The 32 bytes are not a valid secret key (zero, or not below the curve order).
    InvalidSecret,
    /// A SHA256 tweak is not below the curve order, so it is not a valid scalar.
    TweakOutOfRange,
    /// The derived key is the point at infinity (or the zero scalar).
    ResultAtInfinity,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::InvalidSecret => {
                f.write_str("invalid secret: zero or not below the curve order")
            }
            KeyError::TweakOutOfRange => f.write_str("key tweak is not below the curve order"),
            KeyError::ResultAtInfinity => f.write_str("derived key is the point at infinity"),
        }
    }
}

impl std::error::Error for KeyError {}

/// `per_commitment_point = per_commitment_secret·G`.
pub fn per_commitment_point(per_commitment_secret: &[u8; 32]) -> Result<PublicKey, KeyError> {
    let secret =
        SecretKey::from_slice(per_commitment_secret).map_err(|_| KeyError::InvalidSecret)?;
    Ok(PublicKey::from_secret_key(secp(), &secret))
}

/// The tweaked public key `basepoint + SHA256(per_commitment_point || basepoint)·G`
/// (`localpubkey`, `local_htlcpubkey`, `remote_htlcpubkey`, `local_delayedpubkey`, ...).
pub fn derive_pubkey(
    basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeyError> {
    let tweak = tweak_of(per_commitment_point, basepoint)?;
    basepoint
        .add_exp_tweak(secp(), &tweak)
        .map_err(|_| KeyError::ResultAtInfinity)
}

/// The secret of [`derive_pubkey`]: `base_secret + SHA256(per_commitment_point || basepoint)
/// mod n`, where `basepoint = base_secret·G`.
pub fn derive_privkey(
    base_secret: &SecretKey,
    per_commitment_point: &PublicKey,
) -> Result<SecretKey, KeyError> {
    let basepoint = PublicKey::from_secret_key(secp(), base_secret);
    let tweak = tweak_of(per_commitment_point, &basepoint)?;
    base_secret
        .add_tweak(&tweak)
        .map_err(|_| KeyError::ResultAtInfinity)
}

/// `revocationpubkey = R·SHA256(R || P) + P·SHA256(P || R)`, with `R` the revocation basepoint
/// of the party that may punish and `P` the commitment holder's per-commitment point.
pub fn derive_revocation_pubkey(
    revocation_basepoint: &PublicKey,
    per_commitment_point: &PublicKey,
) -> Result<PublicKey, KeyError> {
    let basepoint_tweak = tweak_of(revocation_basepoint, per_commitment_point)?;
    let point_tweak = tweak_of(per_commitment_point, revocation_basepoint)?;
    let from_basepoint = revocation_basepoint
        .mul_tweak(secp(), &basepoint_tweak)
        .map_err(|_| KeyError::ResultAtInfinity)?;
    let from_point = per_commitment_point
        .mul_tweak(secp(), &point_tweak)
        .map_err(|_| KeyError::ResultAtInfinity)?;
    from_basepoint
        .combine(&from_point)
        .map_err(|_| KeyError::ResultAtInfinity)
}

/// The secret of [`derive_revocation_pubkey`], which the punishing party can compute once the
/// holder has revealed `per_commitment_secret`:
/// `r·SHA256(R || P) + p·SHA256(P || R) mod n`.
pub fn derive_revocation_privkey(
    revocation_basepoint_secret: &SecretKey,
    per_commitment_secret: &SecretKey,
) -> Result<SecretKey, KeyError> {
    let basepoint = PublicKey::from_secret_key(secp(), revocation_basepoint_secret);
    let point = PublicKey::from_secret_key(secp(), per_commitment_secret);
    let basepoint_tweak = tweak_of(&basepoint, &point)?;
    let point_tweak = tweak_of(&point, &basepoint)?;
    let from_basepoint = revocation_basepoint_secret
        .mul_tweak(&basepoint_tweak)
        .map_err(|_| KeyError::ResultAtInfinity)?;
    let from_point = per_commitment_secret
        .mul_tweak(&point_tweak)
        .map_err(|_| KeyError::ResultAtInfinity)?;
    from_basepoint
        .add_tweak(&Scalar::from(from_point))
        .map_err(|_| KeyError::ResultAtInfinity)
}

impl CommitmentKeys {
    /// The keys of the commitment transaction held by `holder`, whose per-commitment point for
    /// that commitment is `per_commitment_point`.
    ///
    /// - `revocation_pubkey` from the *counterparty's* revocation basepoint (the counterparty is
    ///   the one who may punish) and the holder's point;
    /// - `local_delayed_pubkey` and `local_htlc_pubkey` from the holder's delayed-payment and
    ///   HTLC basepoints;
    /// - `remote_htlc_pubkey` from the counterparty's HTLC basepoint;
    /// - `remote_payment_pubkey` is the counterparty's untweaked payment basepoint (static
    ///   remote key).
    pub fn derive(
        per_commitment_point: &PublicKey,
        holder: &ChannelBasepoints,
        counterparty: &ChannelBasepoints,
    ) -> Result<CommitmentKeys, KeyError> {
        Ok(CommitmentKeys {
            per_commitment_point: *per_commitment_point,
            revocation_pubkey: derive_revocation_pubkey(
                &counterparty.revocation_basepoint,
                per_commitment_point,
            )?,
            local_delayed_pubkey: derive_pubkey(
                &holder.delayed_payment_basepoint,
                per_commitment_point,
            )?,
            local_htlc_pubkey: derive_pubkey(&holder.htlc_basepoint, per_commitment_point)?,
            remote_htlc_pubkey: derive_pubkey(&counterparty.htlc_basepoint, per_commitment_point)?,
            remote_payment_pubkey: counterparty.payment_basepoint,
        })
    }
}

/// `SHA256(first || second)` over the compressed serialisations, as a scalar.
fn tweak_of(first: &PublicKey, second: &PublicKey) -> Result<Scalar, KeyError> {
    let mut engine = sha256::Hash::engine();
    engine.input(&first.serialize());
    engine.input(&second.serialize());
    let digest = sha256::Hash::from_engine(engine).to_byte_array();
    Scalar::from_be_bytes(digest).map_err(|_| KeyError::TweakOutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    #[test]
    fn zero_and_out_of_range_per_commitment_secrets_are_rejected() {
        assert_eq!(per_commitment_point(&[0; 32]), Err(KeyError::InvalidSecret));
        assert_eq!(
            per_commitment_point(&[0xff; 32]),
            Err(KeyError::InvalidSecret)
        );
        assert!(per_commitment_point(&[0x11; 32]).is_ok());
    }

    #[test]
    fn derived_privkey_is_the_secret_of_derived_pubkey() {
        let base = secret(0x33);
        let point = PublicKey::from_secret_key(secp(), &secret(0x44));
        let basepoint = PublicKey::from_secret_key(secp(), &base);
        let privkey = derive_privkey(&base, &point).unwrap();
        assert_eq!(
            PublicKey::from_secret_key(secp(), &privkey),
            derive_pubkey(&basepoint, &point).unwrap()
        );
        assert_ne!(privkey, base);
    }

    #[test]
    fn revocation_privkey_is_the_secret_of_revocation_pubkey() {
        let basepoint_secret = secret(0x22);
        let commitment_secret = secret(0x55);
        let basepoint = PublicKey::from_secret_key(secp(), &basepoint_secret);
        let point = PublicKey::from_secret_key(secp(), &commitment_secret);
        let privkey = derive_revocation_privkey(&basepoint_secret, &commitment_secret).unwrap();
        assert_eq!(
            PublicKey::from_secret_key(secp(), &privkey),
            derive_revocation_pubkey(&basepoint, &point).unwrap()
        );
    }

    #[test]
    fn revocation_pubkey_changes_with_either_point() {
        let a = PublicKey::from_secret_key(secp(), &secret(0x22));
        let b = PublicKey::from_secret_key(secp(), &secret(0x55));
        let c = PublicKey::from_secret_key(secp(), &secret(0x66));
        let ab = derive_revocation_pubkey(&a, &b).unwrap();
        assert_ne!(ab, derive_revocation_pubkey(&c, &b).unwrap());
        assert_ne!(ab, derive_revocation_pubkey(&a, &c).unwrap());
        assert_ne!(ab, a.combine(&b).unwrap());
    }

    #[test]
    fn key_error_messages_are_lower_case() {
        for e in [
            KeyError::InvalidSecret,
            KeyError::TweakOutOfRange,
            KeyError::ResultAtInfinity,
        ] {
            let msg = e.to_string();
            assert!(msg.chars().next().unwrap().is_lowercase(), "{msg}");
        }
    }
}

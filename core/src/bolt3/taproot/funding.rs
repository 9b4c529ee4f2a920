//! The funding output (section "Funding Transactions"): `OP_1 funding_key` with
//! `funding_key = combined_funding_key + tagged_hash("TapTweak", combined_funding_key)·G` (BIP 86:
//! no script path) and `combined_funding_key = musig2.KeyAgg(musig2.KeySort(pubkey1, pubkey2))`
//! (BIP 327, through the `musig2` crate).

use bitcoin::secp256k1::PublicKey;
use musig2::KeyAggContext;

use super::{TapOutput, TaprootScriptError};

/// BIP 327 `KeySort`: the keys in ascending order of their 33-byte compressed encodings.
pub fn key_sort(keys: &mut [PublicKey]) {
    keys.sort_by_key(PublicKey::serialize);
}

/// `combined_funding_key = KeyAgg(KeySort(pubkey1, pubkey2))`, the untweaked MuSig2 aggregate.
/// KeySort orders the keys by their 33-byte encodings, so the argument order does not matter.
pub fn combined_funding_key(
    pubkey1: &PublicKey,
    pubkey2: &PublicKey,
) -> Result<PublicKey, TaprootScriptError> {
    let mut sorted = [*pubkey1, *pubkey2];
    key_sort(&mut sorted);
    let context =
        KeyAggContext::new(sorted).map_err(|_| TaprootScriptError::KeyAggregationAtInfinity)?;
    Ok(context.aggregated_pubkey())
}

/// The funding output of a channel whose funding keys are `pubkey1` and `pubkey2`: key path
/// only, BIP 86 tweak of the combined key.
pub fn funding_output(
    pubkey1: &PublicKey,
    pubkey2: &PublicKey,
) -> Result<TapOutput, TaprootScriptError> {
    Ok(TapOutput::key_path_only(&combined_funding_key(
        pubkey1, pubkey2,
    )?))
}

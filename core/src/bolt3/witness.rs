//! Witnesses for every spend path the engine takes, and the unsigned claim transactions that
//! carry them.
//!
//! Names follow BOLT 3: on a commitment, "local" is its holder and "remote" its counterparty,
//! and "offered"/"received" HTLCs are seen from the holder. Our *direct* claims on the peer's
//! commitment are therefore the *remote* party's paths of that commitment's scripts:
//!
//! | we do, on the peer's commitment            | BOLT 3 path (the peer is "local")           |
//! |--------------------------------------------|---------------------------------------------|
//! | claim an HTLC we received, with preimage   | [`offered_htlc_preimage_witness`]           |
//! | time out an HTLC we offered, after expiry  | [`received_htlc_timeout_witness`]           |
//! | sweep our main output                      | [`to_remote_p2wpkh_witness`] / [`to_remote_anchor_witness`] |
//! | punish a revoked commitment                | [`to_local_revocation_witness`], [`htlc_revocation_witness`] |
//!
//! On our own commitment we spend `to_local` (and the outputs of our HTLC transactions, which
//! use the same script) with [`to_local_delayed_witness`], and our HTLC outputs only through the
//! pre-signed second-level transactions ([`super::htlc_tx`]).
//!
//! Signatures are [`bitcoin::ecdsa::Signature`]s, so each is pushed with its sighash byte.
//! Every `OP_IF` argument we push is empty or exactly `0x01` (MINIMALIF).

use bitcoin::absolute::LockTime;
use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use serde::{Deserialize, Serialize};

use super::{ChannelType, PaymentPreimage};

/// `to_local` (or a second-level HTLC output) by its holder after `to_self_delay`:
/// `<local_delayedsig> <> <to_local_script>`. The input's `nSequence` must be `to_self_delay`
/// ([`ClaimPath::ToLocalDelayed`]).
pub fn to_local_delayed_witness(delayed_sig: &Signature, to_local_script: &Script) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(delayed_sig);
    witness.push(Vec::<u8>::new());
    witness.push(to_local_script.as_bytes());
    witness
}

/// A revoked `to_local` (or second-level HTLC output) by the counterparty:
/// `<revocation_sig> 01 <to_local_script>`.
pub fn to_local_revocation_witness(
    revocation_sig: &Signature,
    to_local_script: &Script,
) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(revocation_sig);
    witness.push([1u8]);
    witness.push(to_local_script.as_bytes());
    witness
}

/// The static-remotekey `to_remote` output (P2WPKH) by its owner: `<sig> <remotepubkey>`.
pub fn to_remote_p2wpkh_witness(sig: &Signature, remote_payment_pubkey: &PublicKey) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(sig);
    witness.push(remote_payment_pubkey.serialize());
    witness
}

/// The anchors `to_remote` output (P2WSH, `1 OP_CSV`) by its owner: `<sig> <to_remote_script>`.
/// The input's `nSequence` must be at least 1.
pub fn to_remote_anchor_witness(sig: &Signature, to_remote_script: &Script) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(sig);
    witness.push(to_remote_script.as_bytes());
    witness
}

/// An offered HTLC (offered by the commitment's holder) claimed by the remote party with the
/// preimage: `<remotehtlcsig> <payment_preimage> <offered_htlc_script>`.
///
/// On the peer's commitment this is how *we* claim an HTLC *we received*. Under anchors the
/// input's `nSequence` must be at least 1.
pub fn offered_htlc_preimage_witness(
    remote_htlc_sig: &Signature,
    preimage: &PaymentPreimage,
    offered_htlc_script: &Script,
) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(remote_htlc_sig);
    witness.push(preimage.0);
    witness.push(offered_htlc_script.as_bytes());
    witness
}

/// A received HTLC (received by the commitment's holder) timed out by the remote party:
/// `<remotehtlcsig> <> <received_htlc_script>`, with `nLockTime >= cltv_expiry`.
///
/// On the peer's commitment this is how *we* time out an HTLC *we offered*. Under anchors the
/// input's `nSequence` must be at least 1.
pub fn received_htlc_timeout_witness(
    remote_htlc_sig: &Signature,
    received_htlc_script: &Script,
) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(remote_htlc_sig);
    witness.push(Vec::<u8>::new());
    witness.push(received_htlc_script.as_bytes());
    witness
}

/// An offered or received HTLC of a revoked commitment, by the counterparty:
/// `<revocation_sig> <revocationpubkey> <htlc_script>`.
pub fn htlc_revocation_witness(
    revocation_sig: &Signature,
    revocation_pubkey: &PublicKey,
    htlc_script: &Script,
) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(revocation_sig);
    witness.push(revocation_pubkey.serialize());
    witness.push(htlc_script.as_bytes());
    witness
}

/// An anchor by its owner (the holder of the funding key in it), at any time:
/// `<sig> <anchor_script>`.
pub fn anchor_owner_witness(funding_sig: &Signature, anchor_script: &Script) -> Witness {
    let mut witness = Witness::new();
    witness.push_ecdsa_signature(funding_sig);
    witness.push(anchor_script.as_bytes());
    witness
}

/// An anchor by anyone, 16 blocks after the commitment confirmed: `<> <anchor_script>`, input
/// `nSequence` at least 16.
pub fn anchor_anyone_witness(anchor_script: &Script) -> Witness {
    let mut witness = Witness::new();
    witness.push(Vec::<u8>::new());
    witness.push(anchor_script.as_bytes());
    witness
}

/// A pay-to-anchor output by anyone: the empty witness (BOLT 3 "`shared_anchor` Output").
pub fn pay_to_anchor_witness() -> Witness {
    Witness::new()
}

/// One spend path of one output, with what decides its transaction envelope (`nSequence`,
/// `nLockTime`) and its weight.
///
/// Variants are named after the BOLT 3 script path, where "local" is the holder of the
/// commitment the output belongs to; see the constructors named from our side
/// ([`ClaimPath::preimage_claim_on_remote_commitment`],
/// [`ClaimPath::timeout_claim_on_remote_commitment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "path")]
pub enum ClaimPath {
    /// `to_local` or a second-level HTLC output, by the holder after `to_self_delay` blocks
    /// (`nSequence = to_self_delay`).
    ToLocalDelayed {
        /// The CSV delay in the script (the delay the counterparty imposed on the holder).
        to_self_delay: u16,
    },
    /// `to_local` or a second-level HTLC output of a revoked commitment, by the counterparty.
    ToLocalRevocation {
        /// The CSV delay in the script (only its encoding size matters here).
        to_self_delay: u16,
    },
    /// `to_remote` by its owner: P2WPKH (static remote key) or P2WSH with `1 OP_CSV` (anchors,
    /// `nSequence = 1`).
    ToRemote {
        /// Which of the two `to_remote` forms.
        channel_type: ChannelType,
    },
    /// An HTLC the holder offered, claimed by the remote party with the preimage (on the peer's
    /// commitment: an HTLC we received).
    OfferedHtlcPreimage {
        /// Anchors add `1 OP_CSV` (`nSequence = 1`).
        channel_type: ChannelType,
    },
    /// An HTLC the holder offered, on a revoked commitment, by the counterparty.
    OfferedHtlcRevocation {
        /// Anchors lengthen the script.
        channel_type: ChannelType,
    },
    /// An HTLC the holder received, timed out by the remote party (on the peer's commitment: an
    /// HTLC we offered); `nLockTime = cltv_expiry`.
    ReceivedHtlcTimeout {
        /// The HTLC's absolute expiry (a block height).
        cltv_expiry: u32,
        /// Anchors add `1 OP_CSV` (`nSequence = 1`).
        channel_type: ChannelType,
    },
    /// An HTLC the holder received, on a revoked commitment, by the counterparty.
    ReceivedHtlcRevocation {
        /// The HTLC's expiry (only its encoding size matters here).
        cltv_expiry: u32,
        /// Anchors lengthen the script.
        channel_type: ChannelType,
    },
    /// An anchor by its owner, at any time.
    AnchorOwner,
    /// An anchor by anyone, 16 blocks after the commitment confirmed (`nSequence = 16`).
    AnchorAnyone,
    /// The shared pay-to-anchor output of a zero-fee commitment, by anyone (us included) at any
    /// time: an empty witness, no signature.
    PayToAnchor,
}

/// The relative delay of the anchors `1 OP_CSV` paths.
pub const ANCHOR_CSV: u16 = 1;
/// The relative delay after which anyone may spend an anchor.
pub const ANCHOR_ANYONE_CSV: u16 = 16;

impl ClaimPath {
    /// Our claim, on the peer's commitment, of an HTLC we received, with its preimage.
    pub fn preimage_claim_on_remote_commitment(channel_type: ChannelType) -> ClaimPath {
        ClaimPath::OfferedHtlcPreimage { channel_type }
    }

    /// Our claim, on the peer's commitment, of an HTLC we offered, once it has expired.
    pub fn timeout_claim_on_remote_commitment(
        cltv_expiry: u32,
        channel_type: ChannelType,
    ) -> ClaimPath {
        ClaimPath::ReceivedHtlcTimeout {
            cltv_expiry,
            channel_type,
        }
    }

    /// The channel type this path's script belongs to, for the paths whose script depends on it.
    pub fn channel_type(&self) -> Option<ChannelType> {
        match *self {
            ClaimPath::ToRemote { channel_type }
            | ClaimPath::OfferedHtlcPreimage { channel_type }
            | ClaimPath::OfferedHtlcRevocation { channel_type }
            | ClaimPath::ReceivedHtlcTimeout { channel_type, .. }
            | ClaimPath::ReceivedHtlcRevocation { channel_type, .. } => Some(channel_type),
            ClaimPath::ToLocalDelayed { .. }
            | ClaimPath::ToLocalRevocation { .. }
            | ClaimPath::AnchorOwner
            | ClaimPath::AnchorAnyone
            | ClaimPath::PayToAnchor => None,
        }
    }

    /// The relative lock (in blocks) the script enforces with `OP_CSV` on this path, if any.
    pub fn csv_delay(&self) -> Option<u16> {
        match *self {
            ClaimPath::ToLocalDelayed { to_self_delay } => Some(to_self_delay),
            ClaimPath::ToRemote { channel_type }
            | ClaimPath::OfferedHtlcPreimage { channel_type }
            | ClaimPath::ReceivedHtlcTimeout { channel_type, .. } => {
                channel_type.has_keyed_anchors().then_some(ANCHOR_CSV)
            }
            ClaimPath::AnchorAnyone => Some(ANCHOR_ANYONE_CSV),
            ClaimPath::ToLocalRevocation { .. }
            | ClaimPath::OfferedHtlcRevocation { .. }
            | ClaimPath::ReceivedHtlcRevocation { .. }
            | ClaimPath::AnchorOwner
            | ClaimPath::PayToAnchor => None,
        }
    }

    /// The absolute height the script enforces with `OP_CLTV` on this path, if any.
    pub fn cltv_expiry(&self) -> Option<u32> {
        match *self {
            ClaimPath::ReceivedHtlcTimeout { cltv_expiry, .. } => Some(cltv_expiry),
            _ => None,
        }
    }

    /// The input's `nSequence`: the CSV delay as a BIP 68 block count where the path has one,
    /// otherwise `0xFFFFFFFD` (no relative lock, replaceable, `nLockTime` enabled).
    pub fn sequence(&self) -> Sequence {
        match self.csv_delay() {
            Some(blocks) => Sequence::from_height(blocks),
            None => Sequence::ENABLE_RBF_NO_LOCKTIME,
        }
    }

    /// The lowest `nLockTime` a transaction spending this path may have: `cltv_expiry` on the
    /// timeout path, zero otherwise.
    pub fn lock_time(&self) -> LockTime {
        match self.cltv_expiry() {
            Some(expiry) => LockTime::from_consensus(expiry),
            None => LockTime::ZERO,
        }
    }

    /// The input spending `outpoint` by this path, with an empty witness (to be signed).
    pub fn unsigned_input(&self, outpoint: OutPoint) -> TxIn {
        TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: self.sequence(),
            witness: Witness::new(),
        }
    }
}

/// The unsigned single-input, single-output claim of `outpoint` by `path`, paying `value` to
/// `destination`: version 2, `nSequence` and `nLockTime` as [`ClaimPath::sequence`] and
/// [`ClaimPath::lock_time`] say. Sign input 0 and set its witness with the matching builder.
pub fn build_claim_tx(
    outpoint: OutPoint,
    path: &ClaimPath,
    destination: ScriptBuf,
    value: Amount,
) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: path.lock_time(),
        input: vec![path.unsigned_input(outpoint)],
        output: vec![TxOut {
            value,
            script_pubkey: destination,
        }],
    }
}

/// Why several claims cannot share one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimBatchError {
    /// A batch needs at least one input.
    NoInputs,
    /// One input's `OP_CLTV` is a block height and another's a timestamp; no `nLockTime`
    /// satisfies both.
    LockTimeUnitsMixed {
        /// The index (in the batch) of the first input whose unit differs from the earlier ones.
        input: usize,
    },
}

impl std::fmt::Display for ClaimBatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimBatchError::NoInputs => f.write_str("a claim batch needs at least one input"),
            ClaimBatchError::LockTimeUnitsMixed { input } => write!(
                f,
                "input {input} mixes a height and a timestamp lock time in one batch"
            ),
        }
    }
}

impl std::error::Error for ClaimBatchError {}

/// The unsigned claim of several outputs in one transaction: version 2, one input per
/// `(outpoint, path)` in the order given, each with its path's `nSequence`, and `nLockTime` the
/// highest of the paths' lock times.
pub fn build_claim_batch(
    inputs: &[(OutPoint, ClaimPath)],
    outputs: Vec<TxOut>,
) -> Result<Transaction, ClaimBatchError> {
    if inputs.is_empty() {
        return Err(ClaimBatchError::NoInputs);
    }
    let mut lock_time = LockTime::ZERO;
    for (index, (_, path)) in inputs.iter().enumerate() {
        let lock = path.lock_time();
        if lock == LockTime::ZERO {
            continue;
        }
        if lock_time != LockTime::ZERO && !lock_time.is_same_unit(lock) {
            return Err(ClaimBatchError::LockTimeUnitsMixed { input: index });
        }
        if lock.to_consensus_u32() > lock_time.to_consensus_u32() {
            lock_time = lock;
        }
    }
    Ok(Transaction {
        version: Version::TWO,
        lock_time,
        input: inputs
            .iter()
            .map(|(outpoint, path)| path.unsigned_input(*outpoint))
            .collect(),
        output: outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::secp;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::{Message, SecretKey};
    use bitcoin::sighash::EcdsaSighashType;

    fn sig() -> Signature {
        let secret = SecretKey::from_slice(&[7; 32]).unwrap();
        Signature {
            signature: secp().sign_ecdsa(&Message::from_digest([9; 32]), &secret),
            sighash_type: EcdsaSighashType::All,
        }
    }

    fn pubkey() -> PublicKey {
        PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[8; 32]).unwrap())
    }

    fn items(w: &Witness) -> Vec<Vec<u8>> {
        w.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn witnesses_push_the_sighash_byte_and_minimal_if_arguments() {
        let script = ScriptBuf::from_bytes(vec![0x51]);
        let s = sig().to_vec();
        assert_eq!(s.last(), Some(&0x01));
        let delayed = items(&to_local_delayed_witness(&sig(), &script));
        assert_eq!(delayed, vec![s.clone(), vec![], vec![0x51]]);
        let revoked = items(&to_local_revocation_witness(&sig(), &script));
        assert_eq!(revoked, vec![s.clone(), vec![1], vec![0x51]]);
        let p2wpkh = items(&to_remote_p2wpkh_witness(&sig(), &pubkey()));
        assert_eq!(p2wpkh, vec![s.clone(), pubkey().serialize().to_vec()]);
        let timeout = items(&received_htlc_timeout_witness(&sig(), &script));
        assert_eq!(timeout, vec![s.clone(), vec![], vec![0x51]]);
        let preimage = PaymentPreimage([3; 32]);
        let claim = items(&offered_htlc_preimage_witness(&sig(), &preimage, &script));
        assert_eq!(claim, vec![s.clone(), vec![3; 32], vec![0x51]]);
        let anyone = items(&anchor_anyone_witness(&script));
        assert_eq!(anyone, vec![vec![], vec![0x51]]);
    }

    #[test]
    fn csv_paths_set_sequence_and_others_signal_replaceability() {
        let delayed = ClaimPath::ToLocalDelayed { to_self_delay: 144 };
        assert_eq!(delayed.sequence(), Sequence(144));
        let anchors = ChannelType::AnchorsZeroFeeHtlc;
        let statik = ChannelType::StaticRemoteKey;
        assert_eq!(
            ClaimPath::ToRemote {
                channel_type: anchors
            }
            .sequence(),
            Sequence(1)
        );
        assert_eq!(
            ClaimPath::ToRemote {
                channel_type: statik
            }
            .sequence(),
            Sequence::ENABLE_RBF_NO_LOCKTIME
        );
        assert_eq!(ClaimPath::AnchorAnyone.sequence(), Sequence(16));
        assert_eq!(
            ClaimPath::preimage_claim_on_remote_commitment(anchors).sequence(),
            Sequence(1)
        );
        let timeout = ClaimPath::timeout_claim_on_remote_commitment(500, statik);
        assert!(timeout.sequence().enables_absolute_lock_time());
        assert_eq!(timeout.lock_time(), LockTime::from_consensus(500));
        assert_eq!(delayed.lock_time(), LockTime::ZERO);
    }

    #[test]
    fn claim_tx_is_version_two_with_the_paths_envelope() {
        let path =
            ClaimPath::timeout_claim_on_remote_commitment(600, ChannelType::AnchorsZeroFeeHtlc);
        let outpoint = OutPoint::new(bitcoin::Txid::all_zeros(), 3);
        let tx = build_claim_tx(outpoint, &path, ScriptBuf::new(), Amount::from_sat(5));
        assert_eq!(tx.version, Version::TWO);
        assert_eq!(tx.lock_time, LockTime::from_consensus(600));
        assert_eq!(tx.input[0].sequence, Sequence(1));
        assert_eq!(tx.input[0].previous_output, outpoint);
        assert_eq!(tx.output[0].value, Amount::from_sat(5));
    }

    #[test]
    fn batch_takes_the_highest_lock_time_and_rejects_mixed_units() {
        let outpoint = OutPoint::null();
        let statik = ChannelType::StaticRemoteKey;
        let batch = build_claim_batch(
            &[
                (
                    outpoint,
                    ClaimPath::timeout_claim_on_remote_commitment(700, statik),
                ),
                (outpoint, ClaimPath::AnchorOwner),
                (
                    outpoint,
                    ClaimPath::timeout_claim_on_remote_commitment(650, statik),
                ),
            ],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(batch.lock_time, LockTime::from_consensus(700));
        assert_eq!(batch.input.len(), 3);
        let mixed = build_claim_batch(
            &[
                (
                    outpoint,
                    ClaimPath::timeout_claim_on_remote_commitment(700, statik),
                ),
                (
                    outpoint,
                    ClaimPath::timeout_claim_on_remote_commitment(600_000_000, statik),
                ),
            ],
            Vec::new(),
        );
        assert_eq!(mixed, Err(ClaimBatchError::LockTimeUnitsMixed { input: 1 }));
        assert_eq!(
            build_claim_batch(&[], Vec::new()),
            Err(ClaimBatchError::NoInputs)
        );
    }

    #[test]
    fn claim_path_round_trips_through_json() {
        let path = ClaimPath::ReceivedHtlcRevocation {
            cltv_expiry: 500,
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
        };
        let json = serde_json::to_string(&path).unwrap();
        assert_eq!(serde_json::from_str::<ClaimPath>(&json).unwrap(), path);
    }
}

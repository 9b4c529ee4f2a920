//! Which path a spend took, read from the spending input's witness (BOLT 3 witness shapes,
//! B03-SCR-05): how the engine learns that an HTLC was claimed with a preimage, timed out or
//! revoked, and learns preimages from the chain or the mempool.
//!
//! Every function here is total: any witness — empty, huge or garbage — gets an answer, and a
//! preimage is reported only when it hashes to the payment hash. A witness that fits no known
//! shape is [`HtlcSpend::Unknown`] (or its sibling), never an error.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::hashes::{hash160, sha256, Hash};
use bitcoin::{Transaction, Witness};
use serde::{Deserialize, Serialize};

use super::{PaymentHash, PaymentPreimage};

/// The kind of an HTLC output, seen from the holder of the commitment it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HtlcOutputKind {
    /// The holder offered it: the remote party claims it with the preimage, the holder times it
    /// out through its HTLC-timeout transaction.
    Offered,
    /// The holder received it: the holder claims it with the preimage through its HTLC-success
    /// transaction, the remote party times it out directly.
    Received,
}

/// How an HTLC output was spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HtlcSpend {
    /// The remote party claimed an offered HTLC directly with this preimage
    /// (`<sig> <preimage>`).
    Preimage(PaymentPreimage),
    /// The remote party timed out a received HTLC directly (`<sig> <>`).
    Timeout,
    /// The holder's HTLC-success transaction claimed a received HTLC with this preimage
    /// (`0 <sig> <sig> <preimage>`); its output is a delayed `to_local`-style output.
    SecondLevelSuccess(PaymentPreimage),
    /// The holder's HTLC-timeout transaction timed out an offered HTLC (`0 <sig> <sig> <>`); its
    /// output is a delayed `to_local`-style output.
    SecondLevelTimeout,
    /// The counterparty spent the HTLC of a revoked commitment (`<sig> <revocationpubkey>`).
    Revocation,
    /// No path of this HTLC output has this witness shape (or a 32-byte element that does not
    /// hash to the payment hash).
    Unknown,
}

impl HtlcSpend {
    /// The preimage the spend revealed, if any.
    pub fn preimage(&self) -> Option<PaymentPreimage> {
        match self {
            HtlcSpend::Preimage(p) | HtlcSpend::SecondLevelSuccess(p) => Some(*p),
            _ => None,
        }
    }

    /// Whether the spend is one of the holder's second-level HTLC transactions.
    pub fn is_second_level(&self) -> bool {
        matches!(
            self,
            HtlcSpend::SecondLevelSuccess(_) | HtlcSpend::SecondLevelTimeout
        )
    }
}

/// How a `to_local` output (or a second-level HTLC output, which has the same script) was spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToLocalSpend {
    /// The holder, after the delay (`<sig> <>`).
    Delayed,
    /// The counterparty, with the revocation key (`<sig> 01`).
    Revocation,
    /// Neither shape.
    Unknown,
}

/// How an anchor output was spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorSpend {
    /// Its owner, with a signature of the funding key.
    Owner,
    /// Anyone, after 16 blocks (empty signature).
    Anyone,
    /// Neither shape.
    Unknown,
}

/// The length of the longest DER signature plus its sighash byte.
const MAX_SIG_LEN: usize = 73;
/// The length of the shortest DER signature plus its sighash byte.
const MIN_SIG_LEN: usize = 9;

fn is_signature_like(item: &[u8]) -> bool {
    (MIN_SIG_LEN..=MAX_SIG_LEN).contains(&item.len())
}

/// Every HTLC script starts `OP_DUP OP_HASH160 <20: HASH160(revocationpubkey)>`.
fn htlc_script_revocation_hash(script: &[u8]) -> Option<&[u8]> {
    match script {
        [0x76, 0xa9, 0x14, rest @ ..] if rest.len() > 20 => rest.get(..20),
        _ => None,
    }
}

fn matching_preimage(item: &[u8], payment_hash: &PaymentHash) -> Option<PaymentPreimage> {
    let bytes: [u8; 32] = item.try_into().ok()?;
    let preimage = PaymentPreimage(bytes);
    (preimage.payment_hash() == *payment_hash).then_some(preimage)
}

/// Which path a spend of an HTLC output of kind `kind`, paying to `payment_hash`, took, judged by
/// the spending input's `witness` (its last element must be an HTLC witness script).
///
/// - 3 elements `<sig> <x> <script>`: `x` of 33 bytes whose HASH160 is the script's revocation
///   hash is [`HtlcSpend::Revocation`]; on an offered HTLC, a 32-byte `x` with
///   `SHA256(x) == payment_hash` is [`HtlcSpend::Preimage`]; on a received HTLC, an empty `x` is
///   [`HtlcSpend::Timeout`].
/// - 5 elements `<> <sig> <sig> <x> <script>` (a second-level transaction): on a received HTLC a
///   matching preimage is [`HtlcSpend::SecondLevelSuccess`], on an offered HTLC an empty `x` is
///   [`HtlcSpend::SecondLevelTimeout`].
/// - Anything else is [`HtlcSpend::Unknown`].
pub fn classify_htlc_spend(
    witness: &Witness,
    kind: HtlcOutputKind,
    payment_hash: &PaymentHash,
) -> HtlcSpend {
    let items: Vec<&[u8]> = witness.iter().collect();
    match items.as_slice() {
        [sig, x, script] if is_signature_like(sig) => {
            let Some(revocation_hash) = htlc_script_revocation_hash(script) else {
                return HtlcSpend::Unknown;
            };
            if x.len() == 33 {
                let hash = hash160::Hash::hash(x);
                if hash.as_byte_array().as_slice() == revocation_hash {
                    return HtlcSpend::Revocation;
                }
                return HtlcSpend::Unknown;
            }
            match kind {
                HtlcOutputKind::Offered => matching_preimage(x, payment_hash)
                    .map_or(HtlcSpend::Unknown, HtlcSpend::Preimage),
                HtlcOutputKind::Received if x.is_empty() => HtlcSpend::Timeout,
                HtlcOutputKind::Received => HtlcSpend::Unknown,
            }
        }
        [dummy, remote_sig, local_sig, x, script]
            if dummy.is_empty()
                && is_signature_like(remote_sig)
                && is_signature_like(local_sig) =>
        {
            if htlc_script_revocation_hash(script).is_none() {
                return HtlcSpend::Unknown;
            }
            match kind {
                HtlcOutputKind::Received => matching_preimage(x, payment_hash)
                    .map_or(HtlcSpend::Unknown, HtlcSpend::SecondLevelSuccess),
                HtlcOutputKind::Offered if x.is_empty() => HtlcSpend::SecondLevelTimeout,
                HtlcOutputKind::Offered => HtlcSpend::Unknown,
            }
        }
        _ => HtlcSpend::Unknown,
    }
}

/// Which path a spend of a `to_local` output (or of a second-level HTLC output) took:
/// `<sig> <> <script>` is [`ToLocalSpend::Delayed`], `<sig> 01 <script>` is
/// [`ToLocalSpend::Revocation`], with `script` starting `OP_IF`.
pub fn classify_to_local_spend(witness: &Witness) -> ToLocalSpend {
    let items: Vec<&[u8]> = witness.iter().collect();
    match items.as_slice() {
        [sig, selector, script] if is_signature_like(sig) && script.first() == Some(&0x63) => {
            match *selector {
                [] => ToLocalSpend::Delayed,
                [1] => ToLocalSpend::Revocation,
                _ => ToLocalSpend::Unknown,
            }
        }
        _ => ToLocalSpend::Unknown,
    }
}

/// The anchor script after its funding key: `OP_CHECKSIG OP_IFDUP OP_NOTIF OP_16 OP_CSV
/// OP_ENDIF`.
const ANCHOR_SCRIPT_TAIL: [u8; 6] = [0xac, 0x73, 0x64, 0x60, 0xb2, 0x68];

/// Which path a spend of an anchor output took: `<sig> <script>` is [`AnchorSpend::Owner`],
/// `<> <script>` is [`AnchorSpend::Anyone`], with `script` an anchor script.
pub fn classify_anchor_spend(witness: &Witness) -> AnchorSpend {
    let items: Vec<&[u8]> = witness.iter().collect();
    match items.as_slice() {
        [sig, script]
            if script.len() == 40
                && script.first() == Some(&0x21)
                && script.ends_with(&ANCHOR_SCRIPT_TAIL) =>
        {
            if sig.is_empty() {
                AnchorSpend::Anyone
            } else if is_signature_like(sig) {
                AnchorSpend::Owner
            } else {
                AnchorSpend::Unknown
            }
        }
        _ => AnchorSpend::Unknown,
    }
}

/// Which path a spend of a pay-to-anchor output took: anyone's, whatever the witness (the output
/// is anyone-can-spend under consensus, so no witness tells us from a third party; our own
/// spends are known by their txid).
pub fn classify_pay_to_anchor_spend(_witness: &Witness) -> AnchorSpend {
    AnchorSpend::Anyone
}

/// What a witness looks like, for an operator reading an alert: how many elements, each one's
/// length, and the first bytes of the last (the witness script, when there is one). Bounded:
/// at most 8 lengths are listed, whatever the witness.
pub fn describe_witness(witness: &Witness) -> String {
    let items: Vec<&[u8]> = witness.iter().collect();
    if items.is_empty() {
        return "an empty witness".to_string();
    }
    let mut lengths: Vec<String> = items.iter().take(8).map(|i| i.len().to_string()).collect();
    if items.len() > 8 {
        lengths.push("…".to_string());
    }
    let last = items.last().map_or(&[][..], |l| &l[..l.len().min(4)]);
    let hex: String = last.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{} witness element(s) of {} bytes, the last starting {}",
        items.len(),
        lengths.join(", "),
        if hex.is_empty() { "(empty)" } else { &hex }
    )
}

/// Whether a witness has the shape of a second-level HTLC transaction's input
/// (`<> <sig> <sig> <x> <htlc script>`), whatever `x` is.
pub fn is_second_level_shape(witness: &Witness) -> bool {
    let items: Vec<&[u8]> = witness.iter().collect();
    matches!(items.as_slice(), [dummy, a, b, _, script]
        if dummy.is_empty() && is_signature_like(a) && is_signature_like(b)
            && htlc_script_revocation_hash(script).is_some())
}

/// The preimage of `payment_hash`, if any witness element of any input of `tx` is one — whatever
/// the input spends and whatever shape its witness has.
pub fn find_preimage(tx: &Transaction, payment_hash: &PaymentHash) -> Option<PaymentPreimage> {
    tx.input
        .iter()
        .flat_map(|input| input.witness.iter())
        .find_map(|item| matching_preimage(item, payment_hash))
}

/// Every preimage of one of `payment_hashes` that appears as a witness element of `tx`.
pub fn find_preimages(
    tx: &Transaction,
    payment_hashes: &BTreeSet<PaymentHash>,
) -> BTreeMap<PaymentHash, PaymentPreimage> {
    let mut found = BTreeMap::new();
    for item in tx.input.iter().flat_map(|input| input.witness.iter()) {
        let Ok(bytes) = <[u8; 32]>::try_from(item) else {
            continue;
        };
        let hash = PaymentHash(sha256::Hash::hash(&bytes).to_byte_array());
        if payment_hashes.contains(&hash) {
            found.insert(hash, PaymentPreimage(bytes));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt3::witness::*;
    use crate::bolt3::{scripts, secp, ChannelType, CommitmentKeys};
    use bitcoin::ecdsa::Signature;
    use bitcoin::secp256k1::{Message, PublicKey, SecretKey};
    use bitcoin::sighash::EcdsaSighashType;
    use bitcoin::{absolute, transaction, OutPoint, ScriptBuf, Sequence, TxIn};

    fn key(byte: u8) -> PublicKey {
        PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[byte; 32]).unwrap())
    }

    fn sig(byte: u8) -> Signature {
        let secret = SecretKey::from_slice(&[byte; 32]).unwrap();
        Signature {
            signature: secp().sign_ecdsa(&Message::from_digest([byte; 32]), &secret),
            sighash_type: EcdsaSighashType::All,
        }
    }

    fn keys() -> CommitmentKeys {
        CommitmentKeys {
            per_commitment_point: key(1),
            revocation_pubkey: key(2),
            local_delayed_pubkey: key(3),
            local_htlc_pubkey: key(4),
            remote_htlc_pubkey: key(5),
            remote_payment_pubkey: key(6),
        }
    }

    const PREIMAGE: PaymentPreimage = PaymentPreimage([0x42; 32]);

    fn offered() -> ScriptBuf {
        let hash = PREIMAGE.payment_hash();
        scripts::offered_htlc_script(&keys(), &hash, ChannelType::AnchorsZeroFeeHtlc)
    }

    fn received() -> ScriptBuf {
        let hash = PREIMAGE.payment_hash();
        scripts::received_htlc_script(&keys(), &hash, 500, ChannelType::StaticRemoteKey)
    }

    fn second_level(x: &[u8], script: &ScriptBuf) -> Witness {
        let mut w = Witness::new();
        w.push(Vec::<u8>::new());
        w.push_ecdsa_signature(&sig(7));
        w.push_ecdsa_signature(&sig(8));
        w.push(x);
        w.push(script.as_bytes());
        w
    }

    #[test]
    fn direct_preimage_claim_of_offered_htlc_yields_the_preimage() {
        let hash = PREIMAGE.payment_hash();
        let w = offered_htlc_preimage_witness(&sig(9), &PREIMAGE, &offered());
        let spend = classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash);
        assert_eq!(spend, HtlcSpend::Preimage(PREIMAGE));
        assert_eq!(spend.preimage(), Some(PREIMAGE));
        assert!(!spend.is_second_level());
    }

    #[test]
    fn preimage_that_does_not_hash_to_the_payment_hash_is_unknown() {
        let hash = PREIMAGE.payment_hash();
        let wrong = PaymentPreimage([0x43; 32]);
        let w = offered_htlc_preimage_witness(&sig(9), &wrong, &offered());
        assert_eq!(
            classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash),
            HtlcSpend::Unknown
        );
        let w = second_level(&wrong.0, &received());
        assert_eq!(
            classify_htlc_spend(&w, HtlcOutputKind::Received, &hash),
            HtlcSpend::Unknown
        );
    }

    #[test]
    fn direct_timeout_of_received_htlc_is_timeout() {
        let hash = PREIMAGE.payment_hash();
        let w = received_htlc_timeout_witness(&sig(9), &received());
        assert_eq!(
            classify_htlc_spend(&w, HtlcOutputKind::Received, &hash),
            HtlcSpend::Timeout
        );
        // The offered script has no such path.
        let w = received_htlc_timeout_witness(&sig(9), &offered());
        assert_eq!(
            classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash),
            HtlcSpend::Unknown
        );
    }

    #[test]
    fn revocation_spend_of_either_htlc_kind_is_revocation() {
        let hash = PREIMAGE.payment_hash();
        let rev = keys().revocation_pubkey;
        for (kind, script) in [
            (HtlcOutputKind::Offered, offered()),
            (HtlcOutputKind::Received, received()),
        ] {
            let w = htlc_revocation_witness(&sig(9), &rev, &script);
            assert_eq!(classify_htlc_spend(&w, kind, &hash), HtlcSpend::Revocation);
            // A 33-byte element that is not the revocation key is not a revocation.
            let w = htlc_revocation_witness(&sig(9), &key(11), &script);
            assert_eq!(classify_htlc_spend(&w, kind, &hash), HtlcSpend::Unknown);
        }
    }

    #[test]
    fn second_level_witnesses_are_success_with_preimage_or_timeout() {
        let hash = PREIMAGE.payment_hash();
        let success = second_level(&PREIMAGE.0, &received());
        let spend = classify_htlc_spend(&success, HtlcOutputKind::Received, &hash);
        assert_eq!(spend, HtlcSpend::SecondLevelSuccess(PREIMAGE));
        assert!(spend.is_second_level());
        assert_eq!(spend.preimage(), Some(PREIMAGE));
        let timeout = second_level(&[], &offered());
        let spend = classify_htlc_spend(&timeout, HtlcOutputKind::Offered, &hash);
        assert_eq!(spend, HtlcSpend::SecondLevelTimeout);
        assert_eq!(spend.preimage(), None);
        // Swapped kinds fit no path.
        assert_eq!(
            classify_htlc_spend(&success, HtlcOutputKind::Offered, &hash),
            HtlcSpend::Unknown
        );
        assert_eq!(
            classify_htlc_spend(&timeout, HtlcOutputKind::Received, &hash),
            HtlcSpend::Unknown
        );
    }

    #[test]
    fn to_local_spends_are_delayed_or_revocation() {
        let script = scripts::to_local_script(&key(2), 144, &key(3));
        let delayed = to_local_delayed_witness(&sig(9), &script);
        assert_eq!(classify_to_local_spend(&delayed), ToLocalSpend::Delayed);
        let revoked = to_local_revocation_witness(&sig(9), &script);
        assert_eq!(classify_to_local_spend(&revoked), ToLocalSpend::Revocation);
        let mut non_minimal = Witness::new();
        non_minimal.push_ecdsa_signature(&sig(9));
        non_minimal.push([2u8]);
        non_minimal.push(script.as_bytes());
        assert_eq!(classify_to_local_spend(&non_minimal), ToLocalSpend::Unknown);
    }

    #[test]
    fn anchor_spends_are_owner_or_anyone() {
        let script = scripts::anchor_script(&key(12));
        let owner = anchor_owner_witness(&sig(9), &script);
        assert_eq!(classify_anchor_spend(&owner), AnchorSpend::Owner);
        assert_eq!(
            classify_anchor_spend(&anchor_anyone_witness(&script)),
            AnchorSpend::Anyone
        );
        let not_anchor = anchor_anyone_witness(&offered());
        assert_eq!(classify_anchor_spend(&not_anchor), AnchorSpend::Unknown);
    }

    fn tx_with(witnesses: Vec<Witness>) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: witnesses
                .into_iter()
                .map(|witness| TxIn {
                    previous_output: OutPoint::null(),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness,
                })
                .collect(),
            output: Vec::new(),
        }
    }

    #[test]
    fn find_preimage_scans_every_input_and_checks_the_hash() {
        let hash = PREIMAGE.payment_hash();
        let other = PaymentPreimage([0x44; 32]);
        let tx = tx_with(vec![
            anchor_anyone_witness(&scripts::anchor_script(&key(12))),
            offered_htlc_preimage_witness(&sig(9), &other, &offered()),
            second_level(&PREIMAGE.0, &received()),
        ]);
        assert_eq!(find_preimage(&tx, &hash), Some(PREIMAGE));
        assert_eq!(find_preimage(&tx, &PaymentHash([0; 32])), None);
        let wanted = BTreeSet::from([hash, other.payment_hash(), PaymentHash([1; 32])]);
        let found = find_preimages(&tx, &wanted);
        assert_eq!(found.len(), 2);
        assert_eq!(found.get(&hash), Some(&PREIMAGE));
        assert_eq!(found.get(&other.payment_hash()), Some(&other));
    }

    #[test]
    fn witness_descriptions_name_the_shape_and_stay_bounded() {
        let w = received_htlc_timeout_witness(&sig(9), &received());
        let d = describe_witness(&w);
        assert!(d.starts_with("3 witness element(s) of "), "{d}");
        assert!(d.contains("the last starting 76a914"), "{d}");
        assert_eq!(describe_witness(&Witness::new()), "an empty witness");
        let many = Witness::from_slice(&vec![vec![1u8]; 20]);
        assert_eq!(
            describe_witness(&many),
            "20 witness element(s) of 1, 1, 1, 1, 1, 1, 1, 1, … bytes, the last starting 01"
        );
        assert!(is_second_level_shape(&second_level(&[], &offered())));
        assert!(!is_second_level_shape(&w));
    }

    #[test]
    fn empty_and_oversized_witnesses_are_unknown() {
        let hash = PREIMAGE.payment_hash();
        let empty = Witness::new();
        assert_eq!(
            classify_htlc_spend(&empty, HtlcOutputKind::Offered, &hash),
            HtlcSpend::Unknown
        );
        assert_eq!(classify_to_local_spend(&empty), ToLocalSpend::Unknown);
        assert_eq!(classify_anchor_spend(&empty), AnchorSpend::Unknown);
        let huge = Witness::from_slice(&vec![vec![0x76u8; 100_000]; 3]);
        assert_eq!(
            classify_htlc_spend(&huge, HtlcOutputKind::Received, &hash),
            HtlcSpend::Unknown
        );
        assert_eq!(find_preimage(&tx_with(vec![huge]), &hash), None);
    }

    /// xorshift64: deterministic pseudo-random bytes without a randomness source.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
    }

    /// A garbage witness item, biased towards the lengths and prefixes the classifier looks at.
    fn garbage_item(rng: &mut XorShift, templates: &[Vec<u8>]) -> Vec<u8> {
        match rng.below(6) {
            0 => Vec::new(),
            1 => templates[rng.below(templates.len() as u64)].clone(),
            2 => {
                let mut t = templates[rng.below(templates.len() as u64)].clone();
                if !t.is_empty() {
                    let i = rng.below(t.len() as u64);
                    t[i] ^= 1 << rng.below(8);
                }
                t
            }
            _ => {
                let lengths = [1, 9, 32, 33, 40, 72, 73, 74, 133, 138, 520, 1000];
                let len = lengths[rng.below(lengths.len() as u64)];
                let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if rng.below(2) == 0 && v.len() >= 3 {
                    v[..3].copy_from_slice(&[0x76, 0xa9, 0x14]);
                }
                v
            }
        }
    }

    #[test]
    fn ten_thousand_pseudo_random_witnesses_never_panic() {
        let hash = PREIMAGE.payment_hash();
        let templates = vec![
            sig(9).to_vec(),
            PREIMAGE.0.to_vec(),
            keys().revocation_pubkey.serialize().to_vec(),
            offered().to_bytes(),
            received().to_bytes(),
            scripts::anchor_script(&key(12)).to_bytes(),
            scripts::to_local_script(&key(2), 144, &key(3)).to_bytes(),
            vec![1],
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut seen = BTreeSet::new();
        for _ in 0..10_000 {
            let n = rng.below(8);
            let items: Vec<Vec<u8>> = (0..n).map(|_| garbage_item(&mut rng, &templates)).collect();
            let w = Witness::from_slice(&items);
            for kind in [HtlcOutputKind::Offered, HtlcOutputKind::Received] {
                let spend = classify_htlc_spend(&w, kind, &hash);
                if let Some(p) = spend.preimage() {
                    assert_eq!(p.payment_hash(), hash);
                }
                seen.insert(format!("{spend:?}"));
            }
            let _ = classify_to_local_spend(&w);
            let _ = classify_anchor_spend(&w);
            if let Some(p) = find_preimage(&tx_with(vec![w]), &hash) {
                assert_eq!(p, PREIMAGE);
            }
        }
        // The generator reaches more than the "unknown" answer.
        assert!(seen.len() > 1, "only saw {seen:?}");
    }
}

//! Tests for mutants `cargo mutants` found alive in `core/src/bolt3` (issue 8 §3): the shape
//! checks of witness classification (signature lengths, empty dummies and selectors, script
//! prefixes, exact boundaries) and the formatting that record keys and logs rely on.

use bitcoin::hashes::{hash160, Hash};
use bitcoin::Witness;
use contractcourt_core::bolt3::classify::{
    classify_anchor_spend, classify_htlc_spend, classify_to_local_spend, AnchorSpend,
    HtlcOutputKind, HtlcSpend, ToLocalSpend,
};
use contractcourt_core::bolt3::{PaymentHash, PaymentPreimage};

const PREIMAGE: PaymentPreimage = PaymentPreimage([0x42; 32]);

fn hash() -> PaymentHash {
    PREIMAGE.payment_hash()
}

/// A signature-like item of `len` bytes (DER signatures plus sighash are 9..=73 bytes).
fn sig(len: usize) -> Vec<u8> {
    vec![0x30; len]
}

/// A 33-byte revocation key and an HTLC-like script committing to its HASH160, followed by
/// `tail` more bytes.
fn revocation_key_and_script(tail: usize) -> (Vec<u8>, Vec<u8>) {
    let key = vec![0x02; 33];
    let mut script = vec![0x76, 0xa9, 0x14];
    script.extend_from_slice(hash160::Hash::hash(&key).as_byte_array());
    script.extend(std::iter::repeat_n(0x87, tail));
    (key, script)
}

fn htlc_script() -> Vec<u8> {
    revocation_key_and_script(60).1
}

fn witness(items: &[&[u8]]) -> Witness {
    Witness::from_slice(items)
}

#[test]
fn a_three_element_htlc_spend_needs_a_signature_of_a_signature_length() {
    let script = htlc_script();
    for (len, ok) in [
        (0, false),
        (8, false),
        (9, true),
        (72, true),
        (73, true),
        (74, false),
    ] {
        let w = witness(&[&sig(len), &PREIMAGE.0, &script]);
        let got = classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash());
        let want = if ok {
            HtlcSpend::Preimage(PREIMAGE)
        } else {
            HtlcSpend::Unknown
        };
        assert_eq!(got, want, "signature of {len} bytes");
        let w = witness(&[&sig(len), &[], &script]);
        let got = classify_htlc_spend(&w, HtlcOutputKind::Received, &hash());
        let want = if ok {
            HtlcSpend::Timeout
        } else {
            HtlcSpend::Unknown
        };
        assert_eq!(got, want, "signature of {len} bytes");
    }
}

#[test]
fn a_received_htlc_is_timed_out_only_with_an_empty_element() {
    let script = htlc_script();
    for x in [vec![0u8], vec![1u8], PREIMAGE.0.to_vec(), vec![0x55; 20]] {
        let w = witness(&[&sig(72), &x, &script]);
        assert_eq!(
            classify_htlc_spend(&w, HtlcOutputKind::Received, &hash()),
            HtlcSpend::Unknown,
            "x = {x:?}"
        );
    }
    // An offered HTLC is never timed out directly by the remote party.
    let w = witness(&[&sig(72), &[], &script]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash()),
        HtlcSpend::Unknown
    );
}

#[test]
fn the_revocation_path_needs_the_scripts_revocation_hash() {
    let (key, script) = revocation_key_and_script(60);
    for kind in [HtlcOutputKind::Offered, HtlcOutputKind::Received] {
        let w = witness(&[&sig(71), &key, &script]);
        assert_eq!(
            classify_htlc_spend(&w, kind, &hash()),
            HtlcSpend::Revocation
        );
        let other = vec![0x03; 33];
        let w = witness(&[&sig(71), &other, &script]);
        assert_eq!(classify_htlc_spend(&w, kind, &hash()), HtlcSpend::Unknown);
    }
}

#[test]
fn an_htlc_script_must_be_longer_than_its_revocation_hash_prefix() {
    // Exactly OP_DUP OP_HASH160 <20 bytes> and nothing after: no HTLC script.
    let (key, bare) = revocation_key_and_script(0);
    assert_eq!(bare.len(), 23);
    for kind in [HtlcOutputKind::Offered, HtlcOutputKind::Received] {
        let w = witness(&[&sig(71), &key, &bare]);
        assert_eq!(classify_htlc_spend(&w, kind, &hash()), HtlcSpend::Unknown);
    }
    let w = witness(&[&sig(71), &PREIMAGE.0, &bare]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash()),
        HtlcSpend::Unknown
    );
    // One byte more is enough.
    let (key, script) = revocation_key_and_script(1);
    let w = witness(&[&sig(71), &key, &script]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash()),
        HtlcSpend::Revocation
    );
    // A script with another prefix is no HTLC script.
    let mut other = script.clone();
    other[0] = 0x63;
    let w = witness(&[&sig(71), &key, &other]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash()),
        HtlcSpend::Unknown
    );
}

#[test]
fn a_second_level_spend_needs_an_empty_dummy_and_two_signatures() {
    let script = htlc_script();
    let good = |dummy: &[u8], remote: &[u8], local: &[u8]| {
        let success = witness(&[dummy, remote, local, &PREIMAGE.0, &script]);
        let timeout = witness(&[dummy, remote, local, &[], &script]);
        (
            classify_htlc_spend(&success, HtlcOutputKind::Received, &hash()),
            classify_htlc_spend(&timeout, HtlcOutputKind::Offered, &hash()),
        )
    };
    assert_eq!(
        good(&[], &sig(71), &sig(72)),
        (
            HtlcSpend::SecondLevelSuccess(PREIMAGE),
            HtlcSpend::SecondLevelTimeout
        )
    );
    let unknown = (HtlcSpend::Unknown, HtlcSpend::Unknown);
    assert_eq!(good(&[0], &sig(71), &sig(72)), unknown, "non-empty dummy");
    assert_eq!(
        good(&[], &sig(8), &sig(72)),
        unknown,
        "short remote signature"
    );
    assert_eq!(
        good(&[], &sig(71), &sig(74)),
        unknown,
        "long local signature"
    );
    assert_eq!(good(&[], &[], &sig(72)), unknown, "empty remote signature");
    // The wrong side's path: a second-level timeout with a preimage, a success without one.
    let w = witness(&[&[], &sig(71), &sig(72), &PREIMAGE.0, &script]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Offered, &hash()),
        HtlcSpend::Unknown
    );
    let w = witness(&[&[], &sig(71), &sig(72), &[], &script]);
    assert_eq!(
        classify_htlc_spend(&w, HtlcOutputKind::Received, &hash()),
        HtlcSpend::Unknown
    );
}

#[test]
fn a_to_local_spend_needs_a_signature_and_an_op_if_script() {
    let mut script = vec![0x63];
    script.extend_from_slice(&[0x21; 40]);
    assert_eq!(
        classify_to_local_spend(&witness(&[&sig(72), &[], &script])),
        ToLocalSpend::Delayed
    );
    assert_eq!(
        classify_to_local_spend(&witness(&[&sig(72), &[1], &script])),
        ToLocalSpend::Revocation
    );
    for bad in [sig(0), sig(8), sig(74)] {
        assert_eq!(
            classify_to_local_spend(&witness(&[&bad, &[], &script])),
            ToLocalSpend::Unknown,
            "signature of {} bytes",
            bad.len()
        );
    }
    let mut not_if = script.clone();
    not_if[0] = 0x64;
    assert_eq!(
        classify_to_local_spend(&witness(&[&sig(72), &[], &not_if])),
        ToLocalSpend::Unknown
    );
    assert_eq!(
        classify_to_local_spend(&witness(&[&sig(72), &[], &[]])),
        ToLocalSpend::Unknown
    );
    assert_eq!(
        classify_to_local_spend(&witness(&[&sig(72), &[2], &script])),
        ToLocalSpend::Unknown
    );
}

#[test]
fn an_anchor_spend_needs_the_anchor_script() {
    let mut script = vec![0x21];
    script.extend_from_slice(&[0x02; 33]);
    script.extend_from_slice(&[0xac, 0x73, 0x64, 0x60, 0xb2, 0x68]);
    assert_eq!(
        classify_anchor_spend(&witness(&[&sig(72), &script])),
        AnchorSpend::Owner
    );
    assert_eq!(
        classify_anchor_spend(&witness(&[&[], &script])),
        AnchorSpend::Anyone
    );
    assert_eq!(
        classify_anchor_spend(&witness(&[&sig(80), &script])),
        AnchorSpend::Unknown
    );
    let mut longer = script.clone();
    longer.insert(1, 0x02);
    let mut other_push = script.clone();
    other_push[0] = 0x20;
    let mut other_tail = script.clone();
    other_tail[39] = 0x69;
    for bad in [longer, other_push, other_tail] {
        assert_eq!(
            classify_anchor_spend(&witness(&[&sig(72), &bad])),
            AnchorSpend::Unknown,
            "{bad:02x?}"
        );
        assert_eq!(
            classify_anchor_spend(&witness(&[&[], &bad])),
            AnchorSpend::Unknown
        );
    }
}

#[test]
fn payment_hashes_display_as_hex_and_preimages_are_redacted_in_logs() {
    // Record keys name preimages by hash (`preimage/<hash>`): the Display form is the full hex.
    let hash = PREIMAGE.payment_hash();
    assert_eq!(hash.to_string(), hex::encode(hash.0));
    assert_eq!(hash.to_string().len(), 64);
    // A preimage is money: Debug shows its first four bytes only.
    let debug = format!("{PREIMAGE:?}");
    assert_eq!(debug, "PaymentPreimage(42424242…)");
    assert!(!debug.contains(&hex::encode(PREIMAGE.0)));
}

mod commitment_shape {
    use contractcourt_core::bolt3::commitment::{
        build_commitment, CommitmentError, OutputKind, MAX_COMMITMENT_NUMBER,
    };
    use contractcourt_core::bolt3::ChannelType;
    use contractcourt_core::sim::{SimChannel, SimSetup};
    use contractcourt_core::types::{HtlcDirection, Party};

    /// Our commitment 1 of an anchors channel with one untrimmed outgoing HTLC.
    fn spec_with_htlc() -> contractcourt_core::bolt3::commitment::CommitmentSpec {
        let (mut sim, _) =
            SimChannel::open(SimSetup::new(9, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
        sim.add_htlc(HtlcDirection::Outgoing, 50_000_000, 800_000)
            .unwrap();
        sim.commit().unwrap();
        sim.commitment_spec(Party::Local, 1).unwrap()
    }

    fn kinds(spec: &contractcourt_core::bolt3::commitment::CommitmentSpec) -> Vec<OutputKind> {
        build_commitment(spec)
            .unwrap()
            .outputs
            .into_iter()
            .map(|o| o.kind)
            .collect()
    }

    /// BOLT 3: each anchor exists if its side's main output does *or* any HTLC is untrimmed — a
    /// side with nothing of its own still gets its anchor while HTLCs are at stake (otherwise
    /// our commitment would not be the one the peer signed).
    #[test]
    fn a_side_without_a_main_output_keeps_its_anchor_while_an_htlc_is_untrimmed() {
        let mut spec = spec_with_htlc();
        spec.to_remote_msat = 0;
        let with_htlc = kinds(&spec);
        assert!(!with_htlc.contains(&OutputKind::ToRemote));
        assert!(
            with_htlc.contains(&OutputKind::RemoteAnchor),
            "{with_htlc:?}"
        );
        assert!(with_htlc.contains(&OutputKind::LocalAnchor));
        spec.htlcs.clear();
        let without = kinds(&spec);
        assert!(!without.contains(&OutputKind::RemoteAnchor), "{without:?}");
        assert!(without.contains(&OutputKind::LocalAnchor));
    }

    /// Commitment numbers are 48 bits: the largest is accepted, the next refused.
    #[test]
    fn the_largest_48_bit_commitment_number_is_accepted_and_the_next_refused() {
        let mut spec = spec_with_htlc();
        spec.commitment_number = MAX_COMMITMENT_NUMBER;
        assert!(build_commitment(&spec).is_ok());
        spec.commitment_number = MAX_COMMITMENT_NUMBER + 1;
        assert!(matches!(
            build_commitment(&spec),
            Err(CommitmentError::CommitmentNumberTooLarge { .. })
        ));
    }
}

mod sighash_guards {
    use bitcoin::absolute::LockTime;
    use bitcoin::sighash::EcdsaSighashType;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
    use contractcourt_core::bolt3::sign::{p2wsh_sighash, SighashError};

    /// One input, and `outputs` outputs.
    fn tx(outputs: usize) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint::null(),
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut {
                    value: Amount::from_sat(1_000),
                    script_pubkey: ScriptBuf::new(),
                };
                outputs
            ],
        }
    }

    /// Never a digest to sign for an input that does not exist, nor a `SIGHASH_SINGLE` digest for
    /// an input without an output at its index (under BIP 143 that digest commits to no output
    /// at all: a signature over it would let anyone choose where the money goes).
    #[test]
    fn no_digest_for_a_missing_input_or_a_sighash_single_without_its_output() {
        let script = ScriptBuf::new();
        let value = Amount::from_sat(5_000);
        assert!(matches!(
            p2wsh_sighash(&tx(1), 1, &script, value, EcdsaSighashType::All),
            Err(SighashError::InputOutOfRange {
                index: 1,
                inputs: 1
            })
        ));
        assert!(matches!(
            p2wsh_sighash(&tx(0), 0, &script, value, EcdsaSighashType::Single),
            Err(SighashError::SingleWithoutOutput { index: 0 })
        ));
        assert!(matches!(
            p2wsh_sighash(
                &tx(0),
                0,
                &script,
                value,
                EcdsaSighashType::SinglePlusAnyoneCanPay
            ),
            Err(SighashError::SingleWithoutOutput { index: 0 })
        ));
        assert!(p2wsh_sighash(&tx(1), 0, &script, value, EcdsaSighashType::Single).is_ok());
        assert!(p2wsh_sighash(&tx(0), 0, &script, value, EcdsaSighashType::All).is_ok());
    }
}

//! Tests of the standardness checks.

use super::*;
use crate::policy::testutil::*;
use bitcoin::opcodes::all::*;
use bitcoin::script::Builder;
use bitcoin::transaction::Version;
use bitcoin::{Amount, ScriptBuf, WitnessProgram, WitnessVersion};

fn config() -> PolicyConfig {
    PolicyConfig::default()
}

/// A to_local revocation spend of a `prevout_sat` P2WSH output into one P2WPKH output.
fn revocation_spend(prevout_sat: u64) -> (Transaction, Vec<TxOut>) {
    let script = to_local_script(144);
    let tx = spend(&[witness(&[&sig(), &[1]], &script)]);
    (tx, vec![p2wsh_prevout(&script, prevout_sat)])
}

fn with_output(mut tx: Transaction, script_pubkey: ScriptBuf, sat: u64) -> Transaction {
    tx.output = vec![TxOut {
        value: Amount::from_sat(sat),
        script_pubkey,
    }];
    tx
}

fn wp(version: WitnessVersion, program: &[u8]) -> ScriptBuf {
    ScriptBuf::new_witness_program(&WitnessProgram::new(version, program).unwrap())
}

fn p2wsh_out() -> ScriptBuf {
    ScriptBuf::new_p2wsh(&to_local_script(1).wscript_hash())
}

#[test]
fn dust_thresholds_match_bitcoin_core_at_3000_sat_per_kvb() {
    let pk = key().serialize();
    let cases: Vec<(ScriptBuf, u64)> = vec![
        (p2wpkh_script(), 294),
        (p2wsh_out(), 330),
        (wp(WitnessVersion::V1, &[7u8; 32]), 330),
        (ScriptBuf::from_bytes(P2A_SCRIPT.to_vec()), 240),
        (wp(WitnessVersion::V2, &[7u8; 40]), 354),
        (
            ScriptBuf::new_p2pkh(&bitcoin::PublicKey::new(key()).pubkey_hash()),
            546,
        ),
        (ScriptBuf::new_p2sh(&p2wsh_out().script_hash()), 540),
        (ScriptBuf::new_op_return([1u8; 20]), 0),
        (
            Builder::new()
                .push_slice(pk)
                .push_opcode(OP_CHECKSIG)
                .into_script(),
            576,
        ),
    ];
    for (script, expected) in cases {
        assert_eq!(dust_threshold(&script, 3000), expected, "{script}");
    }
    assert_eq!(fee_for_vsize(1, 1000), 1);
    assert_eq!(fee_for_vsize(1, 1), 1);
    assert_eq!(fee_for_vsize(1001, 1000), 1001);
    assert_eq!(fee_for_vsize(0, 1000), 0);
}

#[test]
fn p2wsh_output_of_329_sat_is_dust_and_330_is_not() {
    let (tx, prevouts) = revocation_spend(100_000);
    let dusty = with_output(tx.clone(), p2wsh_out(), 329);
    assert_eq!(
        check_standard(&dusty, &prevouts, &config()),
        Err(PolicyError::Dust {
            output: 0,
            value_sat: 329,
            threshold_sat: 330
        })
    );
    let fine = with_output(tx, p2wsh_out(), 330);
    assert_eq!(check_standard(&fine, &prevouts, &config()), Ok(()));
    // OP_RETURN outputs are never dust.
    let mut data = fine.clone();
    data.output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::new_op_return([1u8; 8]),
    });
    assert_eq!(check_standard(&data, &prevouts, &config()), Ok(()));
}

#[test]
fn fee_one_sat_below_min_relay_is_refused_and_exact_fee_accepted() {
    let (tx, _) = revocation_spend(0);
    let vsize = tx.vsize() as u64;
    let min_fee = fee_for_vsize(vsize, 1000);
    assert_eq!(min_fee, vsize);
    let out = tx.output[0].value.to_sat();
    let script = to_local_script(144);
    let short = vec![p2wsh_prevout(&script, out + min_fee - 1)];
    assert_eq!(
        check_standard(&tx, &short, &config()),
        Err(PolicyError::FeeBelowMinRelay {
            fee_sat: min_fee - 1,
            min_fee_sat: min_fee,
            vsize
        })
    );
    let exact = vec![p2wsh_prevout(&script, out + min_fee)];
    assert_eq!(check_standard(&tx, &exact, &config()), Ok(()));
    let negative = vec![p2wsh_prevout(&script, out - 1)];
    assert_eq!(
        check_standard(&tx, &negative, &config()),
        Err(PolicyError::NegativeFee {
            inputs_sat: out - 1,
            outputs_sat: out
        })
    );
    let overflow = vec![p2wsh_prevout(&script, u64::MAX)];
    assert_eq!(
        check_standard(&tx, &overflow, &config()),
        Err(PolicyError::ValueOutOfRange)
    );
}

#[test]
fn weight_over_400000_is_refused_and_the_limit_itself_accepted() {
    let (tx, prevouts) = revocation_spend(10_000_000_000);
    let mut big = tx.clone();
    big.output = vec![
        TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: p2wsh_out(),
        };
        2_400
    ];
    let weight = big.weight().to_wu();
    assert!(weight > 400_000);
    assert_eq!(
        check_standard(&big, &prevouts, &config()),
        Err(PolicyError::WeightTooHigh {
            weight,
            max: 400_000
        })
    );
    let exact = tx.weight().to_wu();
    let at_limit = PolicyConfig {
        max_standard_weight: exact,
        ..config()
    };
    assert_eq!(check_standard(&tx, &prevouts, &at_limit), Ok(()));
    let below = PolicyConfig {
        max_standard_weight: exact - 1,
        ..config()
    };
    assert!(matches!(
        check_standard(&tx, &prevouts, &below),
        Err(PolicyError::WeightTooHigh { .. })
    ));
}

#[test]
fn versions_outside_1_to_3_are_refused() {
    let (tx, prevouts) = revocation_spend(100_000);
    for version in [0, 4, -1] {
        let mut t = tx.clone();
        t.version = Version(version);
        assert_eq!(
            check_standard(&t, &prevouts, &config()),
            Err(PolicyError::VersionNonStandard { version })
        );
    }
    for version in [1, 3] {
        let mut t = tx.clone();
        t.version = Version(version);
        assert_eq!(check_standard(&t, &prevouts, &config()), Ok(()));
    }
}

#[test]
fn a_64_byte_transaction_is_too_small() {
    // One input, one pay-to-anchor output: 4 + 1 + 41 + 1 + 13 + 4 = 64 bytes.
    let (tx, prevouts) = revocation_spend(100_000);
    let tiny = with_output(tx, ScriptBuf::from_bytes(P2A_SCRIPT.to_vec()), 240);
    assert_eq!(
        check_standard(&tiny, &prevouts, &config()),
        Err(PolicyError::TooSmall {
            non_witness_size: 64
        })
    );
}

#[test]
fn non_standard_outputs_and_two_op_returns_are_refused() {
    let (tx, prevouts) = revocation_spend(100_000);
    // Bare P2PK: standard in Bitcoin Core, refused here (the engine never makes one).
    let bare = Builder::new()
        .push_slice(key().serialize())
        .push_opcode(OP_CHECKSIG)
        .into_script();
    assert_eq!(
        check_standard(&with_output(tx.clone(), bare, 10_000), &prevouts, &config()),
        Err(PolicyError::OutputNonStandard { output: 0 })
    );
    let big_data =
        ScriptBuf::new_op_return(bitcoin::script::PushBytesBuf::try_from(vec![1u8; 81]).unwrap());
    assert_eq!(
        check_standard(&with_output(tx.clone(), big_data, 0), &prevouts, &config()),
        Err(PolicyError::OutputNonStandard { output: 0 })
    );
    let mut two = tx;
    for _ in 0..2 {
        two.output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: ScriptBuf::new_op_return([1u8; 4]),
        });
    }
    assert_eq!(
        check_standard(&two, &prevouts, &config()),
        Err(PolicyError::MultipleDataOutputs { count: 2 })
    );
}

#[test]
fn p2wsh_witness_limits_are_enforced() {
    let prevout_for = |script: &ScriptBuf| vec![p2wsh_prevout(script, 100_000)];
    // A 3601-byte script: 3600 bytes of OP_NOP then OP_1... built as raw bytes.
    let mut raw = vec![OP_NOP.to_u8(); MAX_STANDARD_P2WSH_SCRIPT_SIZE];
    raw.push(OP_PUSHNUM_1.to_u8());
    let long = ScriptBuf::from_bytes(raw);
    let tx = spend(&[witness(&[], &long)]);
    assert_eq!(
        check_standard(&tx, &prevout_for(&long), &config()),
        Err(PolicyError::WitnessScriptTooLarge {
            input: 0,
            size: 3601,
            max: 3600
        })
    );
    let drop_all = Builder::new()
        .push_opcode(OP_DEPTH)
        .push_opcode(OP_DROP)
        .push_opcode(OP_PUSHNUM_1)
        .into_script();
    let items: Vec<&[u8]> = vec![&[]; 101];
    let tx = spend(&[witness(&items, &drop_all)]);
    assert_eq!(
        check_standard(&tx, &prevout_for(&drop_all), &config()),
        Err(PolicyError::TooManyWitnessItems {
            input: 0,
            items: 101,
            max: 100
        })
    );
    let tx = spend(&[witness(&[&[0u8; 81]], &drop_all)]);
    assert_eq!(
        check_standard(&tx, &prevout_for(&drop_all), &config()),
        Err(PolicyError::WitnessItemTooLarge {
            input: 0,
            item: 0,
            size: 81,
            max: 80
        })
    );
    let tx = spend(&[witness(&[&[0u8; 80]], &drop_all)]);
    assert_eq!(
        check_standard(&tx, &prevout_for(&drop_all), &config()),
        Ok(())
    );
}

#[test]
fn witnesses_are_refused_on_non_witness_and_anchor_prevouts() {
    let (tx, _) = revocation_spend(0);
    let p2pkh = TxOut {
        value: Amount::from_sat(100_000),
        script_pubkey: ScriptBuf::new_p2pkh(&bitcoin::PublicKey::new(key()).pubkey_hash()),
    };
    assert_eq!(
        check_standard(&tx, &[p2pkh], &config()),
        Err(PolicyError::UnexpectedWitness { input: 0 })
    );
    let anchor = TxOut {
        value: Amount::from_sat(100_000),
        script_pubkey: ScriptBuf::from_bytes(P2A_SCRIPT.to_vec()),
    };
    assert_eq!(
        check_standard(&tx, std::slice::from_ref(&anchor), &config()),
        Err(PolicyError::UnexpectedWitness { input: 0 })
    );
    let mut bare_spend = tx.clone();
    bare_spend.input[0].witness = bitcoin::Witness::new();
    assert_eq!(check_standard(&bare_spend, &[anchor], &config()), Ok(()));
    let nonstandard = TxOut {
        value: Amount::from_sat(100_000),
        script_pubkey: Builder::new().push_opcode(OP_PUSHNUM_1).into_script(),
    };
    assert_eq!(
        check_standard(&bare_spend, &[nonstandard], &config()),
        Err(PolicyError::InputNonStandard { input: 0 })
    );
}

#[test]
fn script_sigs_must_be_push_only() {
    let (mut tx, prevouts) = revocation_spend(100_000);
    tx.input[0].script_sig = Builder::new().push_opcode(OP_DUP).into_script();
    assert_eq!(
        check_standard(&tx, &prevouts, &config()),
        Err(PolicyError::ScriptSigNonStandard { input: 0, size: 1 })
    );
}

#[test]
fn minimalif_is_part_of_standardness() {
    let script = to_local_script(144);
    let tx = spend(&[witness(&[&sig(), &[2]], &script)]);
    assert!(matches!(
        check_standard(&tx, &[p2wsh_prevout(&script, 100_000)], &config()),
        Err(PolicyError::NonMinimalIf {
            input: 0,
            witness_item: Some(1),
            ..
        })
    ));
    assert_eq!(
        check_standard(&tx, &[], &config()),
        Err(PolicyError::PrevoutCountMismatch {
            inputs: 1,
            prevouts: 0
        })
    );
}

//! Unit tests of the MINIMALIF checker (a sibling file to keep `minimalif.rs` short).

use super::*;
use crate::policy::testutil::*;
use bitcoin::script::Builder;
use bitcoin::ScriptBuf;

fn err_item(r: Result<(), PolicyError>) -> Option<(usize, Option<usize>, Vec<u8>)> {
    match r {
        Err(PolicyError::NonMinimalIf {
            input,
            witness_item,
            argument,
        }) => Some((input, witness_item, argument)),
        other => panic!("expected a minimalif error, got {other:?}"),
    }
}

#[test]
fn to_local_revocation_selector_0x01_passes_and_0x00_or_0x02_fail() {
    let script = to_local_script(144);
    let ok = spend(&[witness(&[&sig(), &[1]], &script)]);
    assert_eq!(check_minimalif(&ok), Ok(()));
    for bad in [[0u8], [2u8]] {
        let tx = spend(&[witness(&[&sig(), &bad], &script)]);
        assert_eq!(
            err_item(check_minimalif(&tx)),
            Some((0, Some(1), bad.to_vec()))
        );
    }
}

#[test]
fn to_local_delayed_path_with_empty_selector_passes() {
    let tx = spend(&[witness(&[&sig(), &[]], &to_local_script(144))]);
    assert_eq!(check_minimalif(&tx), Ok(()));
}

#[test]
fn the_offending_input_is_named() {
    let script = to_local_script(144);
    let tx = spend(&[
        witness(&[&sig(), &[1]], &script),
        witness(&[&sig(), &[1, 0]], &script),
    ]);
    assert_eq!(
        err_item(check_minimalif(&tx)),
        Some((1, Some(1), vec![1, 0]))
    );
}

#[test]
fn a_one_byte_item_that_never_reaches_op_if_passes() {
    // `OP_DROP OP_1`: the 0x02 item is dropped, never an OP_IF argument.
    let script = Builder::new()
        .push_opcode(OP_DROP)
        .push_opcode(OP_PUSHNUM_1)
        .into_script();
    let tx = spend(&[witness(&[&[2]], &script)]);
    assert_eq!(check_minimalif(&tx), Ok(()));
}

#[test]
fn witness_items_are_tracked_through_stack_operations() {
    // `OP_SWAP OP_IF ...`: the item below the top reaches OP_IF.
    let script = Builder::new()
        .push_opcode(OP_SWAP)
        .push_opcode(OP_IF)
        .push_opcode(OP_PUSHNUM_1)
        .push_opcode(OP_ELSE)
        .push_opcode(OP_PUSHNUM_1)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_NIP)
        .into_script();
    let bad = spend(&[witness(&[&[5], &[1]], &script)]);
    assert_eq!(err_item(check_minimalif(&bad)), Some((0, Some(0), vec![5])));
    let good = spend(&[witness(&[&[1], &[5]], &script)]);
    assert_eq!(check_minimalif(&good), Ok(()));
}

#[test]
fn only_the_taken_branch_is_checked_for_known_selectors() {
    // `OP_IF OP_IF OP_1 OP_ENDIF OP_ENDIF OP_1`: with an empty outer selector the inner
    // OP_IF never executes, so its non-minimal argument does not matter.
    let script = Builder::new()
        .push_opcode(OP_IF)
        .push_opcode(OP_IF)
        .push_opcode(OP_PUSHNUM_1)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_PUSHNUM_1)
        .into_script();
    let skipped = spend(&[witness(&[&[7], &[]], &script)]);
    assert_eq!(check_minimalif(&skipped), Ok(()));
    let taken = spend(&[witness(&[&[7], &[1]], &script)]);
    assert_eq!(
        err_item(check_minimalif(&taken)),
        Some((0, Some(0), vec![7]))
    );
}

#[test]
fn offered_htlc_branches_on_computed_booleans_pass() {
    // The revocation path of an offered HTLC: OP_IF and OP_NOTIF consume OP_EQUAL results.
    let tx = spend(&[witness(
        &[&sig(), &key().serialize()],
        &offered_htlc_script(),
    )]);
    assert_eq!(check_minimalif(&tx), Ok(()));
    // The timeout path: `0 <remotesig> <localsig> <>`.
    let tx = spend(&[witness(&[&[], &sig(), &sig(), &[]], &offered_htlc_script())]);
    assert_eq!(check_minimalif(&tx), Ok(()));
}

#[test]
fn anchor_ifdup_notif_on_a_signature_check_passes() {
    let tx = spend(&[witness(&[&[]], &anchor_script())]);
    assert_eq!(check_minimalif(&tx), Ok(()));
}

#[test]
fn non_boolean_computed_argument_is_undetermined_and_script_constants_are_checked() {
    let size_if = Builder::new()
        .push_opcode(OP_SIZE)
        .push_opcode(OP_NIP)
        .push_opcode(OP_IF)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_PUSHNUM_1)
        .into_script();
    // OP_SIZE of a known item is known: 2 is not minimal, and the script made it.
    let tx = spend(&[witness(&[&[1, 1]], &size_if)]);
    assert_eq!(err_item(check_minimalif(&tx)), Some((0, None, vec![2])));
    // Arithmetic is not evaluated.
    let add_if = Builder::new()
        .push_opcode(OP_1ADD)
        .push_opcode(OP_IF)
        .push_opcode(OP_ENDIF)
        .push_opcode(OP_PUSHNUM_1)
        .into_script();
    let tx = spend(&[witness(&[&[]], &add_if)]);
    assert_eq!(
        check_minimalif(&tx),
        Err(PolicyError::MinimalIfUndetermined { input: 0 })
    );
}

#[test]
fn too_many_paths_are_refused() {
    // Nine independent branches on signature checks: 2^9 paths.
    let mut b = Builder::new();
    for _ in 0..9 {
        b = b
            .push_opcode(OP_PUSHBYTES_0)
            .push_slice(key().serialize())
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_IF)
            .push_opcode(OP_ENDIF);
    }
    let script = b.push_opcode(OP_PUSHNUM_1).into_script();
    let tx = spend(&[witness(&[], &script)]);
    assert_eq!(
        check_minimalif(&tx),
        Err(PolicyError::MinimalIfTooComplex {
            input: 0,
            max_paths: MAX_PATHS
        })
    );
}

#[test]
fn p2wpkh_witnesses_are_skipped_and_prevouts_select_p2wsh_inputs() {
    // A P2WPKH witness whose "script" would be nonsense.
    let tx = spend(&[witness(
        &[&sig()],
        &ScriptBuf::from_bytes(key().serialize().to_vec()),
    )]);
    assert_eq!(check_minimalif(&tx), Ok(()));

    let script = to_local_script(6);
    let bad = spend(&[witness(&[&sig(), &[2]], &script)]);
    let p2wsh = TxOut {
        value: bitcoin::Amount::from_sat(10_000),
        script_pubkey: ScriptBuf::new_p2wsh(&script.wscript_hash()),
    };
    assert!(check_minimalif_with_prevouts(&bad, &[p2wsh]).is_err());
    let p2wpkh = TxOut {
        value: bitcoin::Amount::from_sat(10_000),
        script_pubkey: p2wpkh_script(),
    };
    assert_eq!(check_minimalif_with_prevouts(&bad, &[p2wpkh]), Ok(()));
    assert!(check_minimalif_with_prevouts(&bad, &[]).is_err());
}

#[test]
fn script_numbers_round_trip() {
    for n in [
        0i64,
        1,
        -1,
        16,
        127,
        128,
        -128,
        255,
        256,
        0x7fff_ffff,
        -0x7fff_ffff,
    ] {
        assert_eq!(decode_num(&encode_num(n)), Some(n), "{n}");
    }
    assert_eq!(encode_num(0), Vec::<u8>::new());
    assert_eq!(encode_num(128), vec![0x80, 0]);
    assert_eq!(decode_num(&[0, 0, 0, 0, 1]), None);
    assert!(!cast_to_bool(&[0, 0x80]));
    assert!(cast_to_bool(&[0x80, 0]));
}

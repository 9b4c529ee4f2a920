//! TRUC and ephemeral dust: a zero-fee version-3 parent with a 0-sat pay-to-anchor output and a
//! child spending it, as a zero-fee commitment and its CPFP child are relayed, and every way
//! such a package is refused.

use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Witness};

use super::*;
use crate::policy::standard::P2A_SCRIPT;
use crate::policy::testutil::*;
use crate::policy::{check_package_fee, check_standard, PolicyConfig, PolicyError};

const PARENT_IN: u64 = 100_000;

fn p2a(sat: u64) -> TxOut {
    TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: ScriptBuf::from_bytes(P2A_SCRIPT.to_vec()),
    }
}

/// A version-3 parent spending a to_local output into a P2WPKH output and a P2A output of
/// `anchor_sat`, paying `fee`.
fn parent(anchor_sat: u64, fee: u64) -> (Transaction, Vec<TxOut>) {
    let script = to_local_script(144);
    let mut tx = spend(&[witness(&[&sig(), &[1]], &script)]);
    tx.version = Version(3);
    tx.output[0].value = Amount::from_sat(PARENT_IN - anchor_sat - fee);
    tx.output.push(p2a(anchor_sat));
    (tx, vec![p2wsh_prevout(&script, PARENT_IN)])
}

/// A child of `parent` spending its P2A output (index 1) and a 50,000-sat wallet coin, paying
/// `fee`, with `extra_outputs` more P2WPKH outputs of 1,000 sat (to make it heavier).
fn child(parent: &Transaction, fee: u64, extra_outputs: usize) -> (Transaction, Vec<TxOut>) {
    let mut tx = spend(&[Witness::new(), Witness::new()]);
    tx.version = Version(3);
    tx.input[0].previous_output = OutPoint {
        txid: parent.compute_txid(),
        vout: 1,
    };
    tx.input[1].witness = Witness::from_slice(&[sig(), key().serialize().to_vec()]);
    let coin = TxOut {
        value: Amount::from_sat(50_000),
        script_pubkey: p2wpkh_script(),
    };
    let prevouts = vec![parent.output[1].clone(), coin];
    for _ in 0..extra_outputs {
        tx.output.push(TxOut {
            value: Amount::from_sat(1_000),
            script_pubkey: p2wpkh_script(),
        });
    }
    let total_in: u64 = prevouts.iter().map(|o| o.value.to_sat()).sum();
    let others: u64 = tx.output[1..].iter().map(|o| o.value.to_sat()).sum();
    tx.output[0].value = Amount::from_sat(total_in - others - fee);
    (tx, prevouts)
}

fn member(index: usize, error: PolicyError) -> PolicyError {
    PolicyError::PackageMember {
        index,
        error: Box::new(error),
    }
}

fn truc(index: usize, v: TrucViolation) -> PolicyError {
    member(index, PolicyError::Truc(v))
}

#[test]
fn zero_fee_parent_with_0_sat_p2a_and_its_child_are_accepted_as_a_package() {
    let config = PolicyConfig::default();
    let (p, pp) = parent(0, 0);
    // Alone, the parent only fails the fee rate: its dust output is ephemeral.
    assert!(matches!(
        check_standard(&p, &pp, &config),
        Err(PolicyError::FeeBelowMinRelay { fee_sat: 0, .. })
    ));
    let (c, cp) = child(&p, 1_000, 0);
    assert_eq!(check_package_fee(&[(&p, &pp), (&c, &cp)], &config), Ok(()));
}

#[test]
fn dust_in_a_parent_that_pays_a_fee_is_refused() {
    let config = PolicyConfig::default();
    let (p, pp) = parent(0, 1);
    let dust = PolicyError::Dust {
        output: 1,
        value_sat: 0,
        threshold_sat: 240,
    };
    assert_eq!(check_standard(&p, &pp, &config), Err(dust.clone()));
    let (c, cp) = child(&p, 1_000, 0);
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&c, &cp)], &config),
        Err(member(0, dust))
    );
    // 240 sat is not dust for P2A: a parent may then pay a fee.
    let (p, pp) = parent(240, 200);
    assert_eq!(check_standard(&p, &pp, &config), Ok(()));
}

#[test]
fn two_dust_outputs_are_refused_even_at_zero_fee() {
    let (mut p, pp) = parent(0, 0);
    p.output[0].value -= Amount::from_sat(1);
    p.output.push(p2a(1));
    assert!(matches!(
        check_standard(&p, &pp, &PolicyConfig::default()),
        Err(PolicyError::Dust { output: 1, .. })
    ));
}

#[test]
fn a_child_that_leaves_the_ephemeral_anchor_unspent_is_refused() {
    let (p, pp) = parent(0, 0);
    let (mut c, mut cp) = child(&p, 1_000, 0);
    // Spend the parent's P2WPKH output instead of its anchor.
    c.input[0].previous_output.vout = 0;
    c.input[0].witness = Witness::from_slice(&[sig(), key().serialize().to_vec()]);
    cp[0] = p.output[0].clone();
    let total_in: u64 = cp.iter().map(|o| o.value.to_sat()).sum();
    c.output[0].value = Amount::from_sat(total_in - 1_000);
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&c, &cp)], &PolicyConfig::default()),
        Err(member(1, PolicyError::MissingEphemeralSpends))
    );
}

#[test]
fn a_truc_child_over_1000_vbytes_is_refused_and_at_most_1000_accepted() {
    let (p, pp) = parent(0, 0);
    let config = PolicyConfig::default();
    let fits = (0..100)
        .map(|n| child(&p, 2_000, n))
        .take_while(|(c, _)| c.vsize() <= 1_000)
        .last()
        .unwrap();
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&fits.0, &fits.1)], &config),
        Ok(())
    );
    let extra = fits.0.output.len();
    let (c, cp) = child(&p, 2_000, extra);
    let vsize = c.vsize() as u64;
    assert!(vsize > TRUC_CHILD_MAX_VSIZE);
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&c, &cp)], &config),
        Err(truc(1, TrucViolation::ChildTooBig { vsize }))
    );
}

#[test]
fn truc_and_non_truc_transactions_do_not_spend_each_other_unconfirmed() {
    let config = PolicyConfig::default();
    let (p, pp) = parent(0, 0);
    let (mut c, cp) = child(&p, 1_000, 0);
    c.version = Version::TWO;
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&c, &cp)], &config),
        Err(truc(1, TrucViolation::NonTrucSpendsTruc))
    );
    let (mut p2, pp2) = parent(240, 0);
    p2.version = Version::TWO;
    let (c2, cp2) = child(&p2, 1_000, 0);
    assert_eq!(
        check_package_fee(&[(&p2, &pp2), (&c2, &cp2)], &config),
        Err(truc(1, TrucViolation::SpendsNonTruc))
    );
}

#[test]
fn a_truc_child_has_one_unconfirmed_parent_and_a_truc_parent_one_child() {
    let (p, pp) = parent(0, 0);
    let (mut q, qp) = parent(0, 0);
    q.input[0].previous_output.vout = 7; // another parent
    let (mut c, mut cp) = child(&p, 1_000, 0);
    c.input.push(c.input[0].clone());
    c.input[2].previous_output.txid = q.compute_txid();
    cp.push(q.output[1].clone());
    assert_eq!(
        check_package_fee(&[(&p, &pp), (&q, &qp), (&c, &cp)], &PolicyConfig::default()),
        Err(truc(2, TrucViolation::TooManyAncestors))
    );
    // Two children of one parent (not a child-with-parents package: checked directly).
    let (c1, _) = child(&p, 1_000, 0);
    let (c2, _) = child(&p, 2_000, 0);
    assert_eq!(
        check_package_truc(&[&p, &c1, &c2]),
        Err((1, TrucViolation::TooManyDescendants))
    );
    // A grandchild: the child of a child (spending the child's second output).
    let (c3, _) = child(&p, 1_000, 1);
    let (g, _) = child(&c3, 500, 0);
    assert_eq!(
        check_package_truc(&[&p, &c3, &g]),
        Err((2, TrucViolation::TooManyAncestors))
    );
}

#[test]
fn a_version_3_transaction_over_10000_vbytes_is_refused() {
    let (mut p, pp) = parent(240, 0);
    let pad = p2wsh_prevout(&to_local_script(1), 330);
    while p.vsize() as u64 <= TRUC_MAX_VSIZE {
        p.output.push(pad.clone());
        p.output[0].value -= Amount::from_sat(330);
    }
    let vsize = p.vsize() as u64;
    let config = PolicyConfig::default();
    assert_eq!(
        check_standard(&p, &pp, &config),
        Err(PolicyError::Truc(TrucViolation::TooBig { vsize }))
    );
    p.version = Version::TWO;
    assert!(!matches!(
        check_standard(&p, &pp, &config),
        Err(PolicyError::Truc(_))
    ));
}

#[test]
fn truc_messages_follow_bitcoin_core() {
    assert_eq!(
        TrucViolation::ChildTooBig { vsize: 1001 }.to_string(),
        "version=3 child tx is too big: 1001 > 1000 virtual bytes"
    );
    assert_eq!(
        PolicyError::MissingEphemeralSpends.to_string(),
        "missing-ephemeral-spends: tx did not spend parent's ephemeral dust"
    );
}

//! Test support (feature `sim`): one signed transaction per spend path of the simple taproot
//! outputs, built with fixed test keys through [`super::witness`] alone, so that core's tests
//! and Bitcoin Core's kernel (in `contractcourt-sync`) check the very same spends.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::TapSighashType;
use bitcoin::taproot::Signature;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};

use super::super::{secp, PaymentPreimage};
use super::classify::TaprootSpendKind;
use super::witness::{self as w, TaprootSpendError};
use super::{accepted_htlc, anchor, offered_htlc, second_level, to_local, to_remote, weights};
use super::{TapOutput, TaprootScriptError};

/// The preimage of every fixture HTLC.
pub const PREIMAGE: [u8; 32] = [0x42; 32];
/// The value of every spent fixture output.
pub const PREVOUT_SAT: u64 = 100_000;

/// Every spend path of every simple taproot output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendPath {
    /// `to_local`, delay leaf.
    ToLocalDelay,
    /// `to_local`, revoke leaf.
    ToLocalRevoke,
    /// `to_remote` leaf.
    ToRemote,
    /// Holder's anchor, key path.
    AnchorKeyPath,
    /// Holder's anchor, `OP_16 OP_CSV` leaf.
    AnchorSweep,
    /// Offered HTLC, timeout leaf (HTLC-timeout transaction).
    OfferedTimeout,
    /// Offered HTLC, success leaf (counterparty with the preimage).
    OfferedSuccess,
    /// Offered HTLC, revocation key path.
    OfferedRevoke,
    /// Accepted HTLC, success leaf (HTLC-success transaction).
    AcceptedSuccess,
    /// Accepted HTLC, timeout leaf (counterparty after `cltv_expiry`).
    AcceptedTimeout,
    /// Accepted HTLC, revocation key path.
    AcceptedRevoke,
    /// Second-level output, delay leaf.
    SecondLevelDelay,
    /// Second-level output, revocation key path.
    SecondLevelRevoke,
}

/// Every [`SpendPath`].
pub const ALL_PATHS: [SpendPath; 13] = [
    SpendPath::ToLocalDelay,
    SpendPath::ToLocalRevoke,
    SpendPath::ToRemote,
    SpendPath::AnchorKeyPath,
    SpendPath::AnchorSweep,
    SpendPath::OfferedTimeout,
    SpendPath::OfferedSuccess,
    SpendPath::OfferedRevoke,
    SpendPath::AcceptedSuccess,
    SpendPath::AcceptedTimeout,
    SpendPath::AcceptedRevoke,
    SpendPath::SecondLevelDelay,
    SpendPath::SecondLevelRevoke,
];

/// How to build a fixture spend.
#[derive(Clone, Copy, Debug)]
pub struct SpendParams {
    /// The sighash type of our signatures (the counterparty's second-level signature is always
    /// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`, as the extension says).
    pub sighash_type: TapSighashType,
    /// `to_self_delay` of the delay leaves.
    pub to_self_delay: u16,
    /// `cltv_expiry` of the HTLCs.
    pub cltv_expiry: u32,
    /// nSequence instead of the one the path needs (signed over, for negative cases).
    pub sequence: Option<Sequence>,
    /// Locktime instead of the one the path needs (signed over).
    pub lock_time: Option<u32>,
}

impl Default for SpendParams {
    fn default() -> Self {
        SpendParams {
            sighash_type: TapSighashType::Default,
            to_self_delay: 144,
            cltv_expiry: 800_000,
            sequence: None,
            lock_time: None,
        }
    }
}

/// One signed spend: the transaction (witness in place), the output it spends, what
/// classification must say, and the path's maximum witness weight.
#[derive(Clone, Debug)]
pub struct Spend {
    /// One input spending `prevout`, one output.
    pub tx: Transaction,
    /// The spent output.
    pub prevout: TxOut,
    /// The classification of the witness.
    pub kind: TaprootSpendKind,
    /// The path's constant in [`weights`].
    pub max_weight: usize,
}

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_slice(&[byte; 32]).expect("constant secret in range")
}

/// The fixture secrets: (local_delayed, revocation, local_htlc, remote_htlc, remote_payment).
pub fn secrets() -> [SecretKey; 5] {
    [secret(1), secret(2), secret(3), secret(4), secret(5)]
}

fn public(s: &SecretKey) -> PublicKey {
    PublicKey::from_secret_key(secp(), s)
}

enum Signer {
    Script(ScriptBuf, SecretKey, TapSighashType),
    Key(SecretKey),
}

/// Per path: the output, the signers (in witness order), nSequence, locktime, kind, weight.
struct Plan {
    output: TapOutput,
    signers: Vec<Signer>,
    sequence: u32,
    lock_time: u32,
    kind: TaprootSpendKind,
    max_weight: usize,
}

struct Outputs {
    to_local: to_local::ToLocal,
    to_remote: to_remote::ToRemote,
    anchor: anchor::Anchor,
    offered: offered_htlc::OfferedHtlc,
    accepted: accepted_htlc::AcceptedHtlc,
    second: second_level::SecondLevelHtlc,
}

fn outputs(p: &SpendParams) -> Result<Outputs, TaprootScriptError> {
    let [delayed, revocation, local_htlc, remote_htlc, remote] = secrets().map(|s| public(&s));
    let hash = PaymentPreimage(PREIMAGE).payment_hash();
    Ok(Outputs {
        to_local: to_local::to_local(&delayed, &revocation, p.to_self_delay)?,
        to_remote: to_remote::to_remote(&remote)?,
        anchor: anchor::local_anchor(&delayed)?,
        offered: offered_htlc::offered_htlc(&revocation, &local_htlc, &remote_htlc, &hash)?,
        accepted: accepted_htlc::accepted_htlc(
            &revocation,
            &local_htlc,
            &remote_htlc,
            &hash,
            p.cltv_expiry,
        )?,
        second: second_level::second_level_htlc(&revocation, &delayed, p.to_self_delay)?,
    })
}

fn plan(path: SpendPath, o: &Outputs, p: &SpendParams) -> Plan {
    let [delayed, revocation, local_htlc, remote_htlc, remote] = secrets();
    let ty = p.sighash_type;
    let pair = TapSighashType::SinglePlusAnyoneCanPay;
    let (delay, cltv) = (u32::from(p.to_self_delay), p.cltv_expiry);
    let preimage = PaymentPreimage(PREIMAGE);
    let script = |leaf: &ScriptBuf, key: SecretKey, t| Signer::Script(leaf.clone(), key, t);
    use weights as wt;
    use SpendPath as P;
    use TaprootSpendKind as K;
    let (output, signers, sequence, lock_time, kind, max_weight) = match path {
        P::ToLocalDelay => {
            let s = vec![script(&o.to_local.delay_script, delayed, ty)];
            let kind = K::ToLocalDelay {
                to_self_delay: p.to_self_delay,
            };
            (
                &o.to_local.output,
                s,
                delay,
                0,
                kind,
                wt::TO_LOCAL_DELAY_WITNESS_WEIGHT,
            )
        }
        P::ToLocalRevoke => {
            let s = vec![script(&o.to_local.revoke_script, revocation, ty)];
            (
                &o.to_local.output,
                s,
                0,
                0,
                K::ToLocalRevoke,
                wt::TO_LOCAL_REVOKE_WITNESS_WEIGHT,
            )
        }
        P::ToRemote => {
            let s = vec![script(&o.to_remote.script, remote, ty)];
            (
                &o.to_remote.output,
                s,
                1,
                0,
                K::ToRemote,
                wt::TO_REMOTE_WITNESS_WEIGHT,
            )
        }
        P::AnchorKeyPath => {
            let s = vec![Signer::Key(delayed)];
            (
                &o.anchor.output,
                s,
                0,
                0,
                K::KeyPath,
                wt::KEY_PATH_WITNESS_WEIGHT,
            )
        }
        P::AnchorSweep => (
            &o.anchor.output,
            vec![],
            16,
            0,
            K::AnchorSweep,
            wt::ANCHOR_SWEEP_WITNESS_WEIGHT,
        ),
        P::OfferedTimeout => {
            let leaf = &o.offered.timeout_script;
            let s = vec![
                script(leaf, remote_htlc, pair),
                script(leaf, local_htlc, ty),
            ];
            let w = wt::OFFERED_TIMEOUT_WITNESS_WEIGHT;
            (&o.offered.output, s, 1, cltv, K::OfferedTimeout, w)
        }
        P::OfferedSuccess => {
            let s = vec![script(&o.offered.success_script, remote_htlc, ty)];
            let kind = K::OfferedSuccess { preimage };
            (
                &o.offered.output,
                s,
                1,
                0,
                kind,
                wt::OFFERED_SUCCESS_WITNESS_WEIGHT,
            )
        }
        P::OfferedRevoke => {
            let s = vec![Signer::Key(revocation)];
            (
                &o.offered.output,
                s,
                0,
                0,
                K::KeyPath,
                wt::KEY_PATH_WITNESS_WEIGHT,
            )
        }
        P::AcceptedSuccess => {
            let leaf = &o.accepted.success_script;
            let s = vec![
                script(leaf, remote_htlc, pair),
                script(leaf, local_htlc, ty),
            ];
            let kind = K::AcceptedSuccess { preimage };
            (
                &o.accepted.output,
                s,
                1,
                0,
                kind,
                wt::ACCEPTED_SUCCESS_WITNESS_WEIGHT,
            )
        }
        P::AcceptedTimeout => {
            let s = vec![script(&o.accepted.timeout_script, remote_htlc, ty)];
            let kind = K::AcceptedTimeout { cltv_expiry: cltv };
            (
                &o.accepted.output,
                s,
                1,
                cltv,
                kind,
                wt::ACCEPTED_TIMEOUT_WITNESS_WEIGHT,
            )
        }
        P::AcceptedRevoke => {
            let s = vec![Signer::Key(revocation)];
            (
                &o.accepted.output,
                s,
                0,
                0,
                K::KeyPath,
                wt::KEY_PATH_WITNESS_WEIGHT,
            )
        }
        P::SecondLevelDelay => {
            let s = vec![script(&o.second.delay_script, delayed, ty)];
            let kind = K::SecondLevelDelay {
                to_self_delay: p.to_self_delay,
            };
            (
                &o.second.output,
                s,
                delay,
                0,
                kind,
                wt::SECOND_LEVEL_DELAY_WITNESS_WEIGHT,
            )
        }
        P::SecondLevelRevoke => {
            let s = vec![Signer::Key(revocation)];
            (
                &o.second.output,
                s,
                0,
                0,
                K::KeyPath,
                wt::KEY_PATH_WITNESS_WEIGHT,
            )
        }
    };
    Plan {
        output: output.clone(),
        signers,
        sequence,
        lock_time,
        kind,
        max_weight,
    }
}

fn unsigned_tx(sequence: Sequence, lock_time: u32) -> Transaction {
    let dest = TapOutput::key_path_only(&public(&secret(9)));
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(lock_time),
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([0x11; 32]),
                vout: 0,
            },
            script_sig: ScriptBuf::new(),
            sequence,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(PREVOUT_SAT - 1_000),
            script_pubkey: dest.script_pubkey(),
        }],
    }
}

/// The signed spend of `path`.
pub fn spend(path: SpendPath, p: &SpendParams) -> Result<Spend, TaprootSpendError> {
    let outs = outputs(p)?;
    let plan = plan(path, &outs, p);
    let sequence = p.sequence.unwrap_or(Sequence(plan.sequence));
    let mut tx = unsigned_tx(sequence, p.lock_time.unwrap_or(plan.lock_time));
    let prevout = TxOut {
        value: Amount::from_sat(PREVOUT_SAT),
        script_pubkey: plan.output.script_pubkey(),
    };
    let prevouts = [prevout.clone()];
    let aux = [0u8; 32];
    let mut sigs = Vec::new();
    for signer in &plan.signers {
        sigs.push(match signer {
            Signer::Script(leaf, key, t) => {
                w::sign_script_path(&tx, 0, &prevouts, leaf, *t, key, &aux)?
            }
            Signer::Key(key) => {
                w::sign_key_path(&tx, 0, &prevouts, &plan.output, p.sighash_type, key, &aux)?
            }
        });
    }
    tx.input[0].witness = witness(path, &outs, &sigs)?;
    Ok(Spend {
        tx,
        prevout,
        kind: plan.kind,
        max_weight: plan.max_weight,
    })
}

fn witness(path: SpendPath, o: &Outputs, sigs: &[Signature]) -> Result<Witness, TaprootSpendError> {
    let preimage = PaymentPreimage(PREIMAGE);
    let first = sigs
        .first()
        .ok_or_else(|| TaprootSpendError::Sighash("no signature".into()));
    use SpendPath as P;
    Ok(match path {
        P::ToLocalDelay => w::to_local_delay(&o.to_local, first?)?,
        P::ToLocalRevoke => w::to_local_revoke(&o.to_local, first?)?,
        P::ToRemote => w::to_remote(&o.to_remote, first?)?,
        P::AnchorKeyPath => w::anchor_key_path(first?),
        P::AnchorSweep => w::anchor_sweep(&o.anchor)?,
        P::OfferedTimeout => w::offered_timeout(&o.offered, first?, second(sigs)?)?,
        P::OfferedSuccess => w::offered_success(&o.offered, first?, &preimage)?,
        P::AcceptedSuccess => w::accepted_success(&o.accepted, first?, second(sigs)?, &preimage)?,
        P::AcceptedTimeout => w::accepted_timeout(&o.accepted, first?)?,
        P::OfferedRevoke | P::AcceptedRevoke | P::SecondLevelRevoke => {
            w::revocation_key_path(first?)
        }
        P::SecondLevelDelay => w::second_level_delay(&o.second, first?)?,
    })
}

fn second(sigs: &[Signature]) -> Result<&Signature, TaprootSpendError> {
    sigs.get(1)
        .ok_or_else(|| TaprootSpendError::Sighash("no second signature".into()))
}

//! What the kernel tests of core's simple taproot spends share: fixed basepoint secrets for the
//! driver's signer, and the check that Bitcoin Core refuses a spend's only input.

use bitcoin::secp256k1::SecretKey;
use bitcoin::{Transaction, TxOut};

use super::script::verify_scripts;
use super::MempoolReject;
use crate::signer::BasepointSecrets;

/// Basepoint secrets `[b + 1; 32]` .. `[b + 5; 32]` (funding, revocation, payment, delayed
/// payment, HTLC): `secrets(0)` is ours and `secrets(10)` the peer's in these tests.
pub(super) fn secrets(b: u8) -> BasepointSecrets {
    let sk = |i: u8| SecretKey::from_slice(&[b + i; 32]).unwrap();
    BasepointSecrets {
        funding: sk(1),
        revocation: sk(2),
        payment: sk(3),
        delayed_payment: sk(4),
        htlc: sk(5),
    }
}

/// Bitcoin Core's interpreter refuses `tx`'s input 0, spending `prevout`, as a script failure.
pub(super) fn refused(tx: &Transaction, prevout: &TxOut) {
    let result = verify_scripts(tx, std::slice::from_ref(prevout));
    assert!(
        matches!(result, Err(MempoolReject::ScriptFailure { input: 0, .. })),
        "{result:?}"
    );
}

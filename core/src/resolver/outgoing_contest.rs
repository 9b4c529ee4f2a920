//! Outgoing contest: an HTLC we offered, before its `cltv_expiry`. Until then the peer may claim
//! it with the preimage — directly from our commitment, or with its HTLC-success transaction
//! from its own — which settles the payment upstream. At the expiry it hands off to
//! [`super::htlc_timeout`]; a reorg below the expiry undoes that, because the hand-off is read
//! from the height.
//!
//! On the peer's commitment the timeout claim is asked of the sweeper at once, mature from
//! `cltv_expiry + 1`, so the sweeper can plan it before it may confirm.

use bitcoin::Witness;

use crate::bolt3::classify::{classify_htlc_spend, HtlcOutputKind, HtlcSpend};
use crate::bolt3::PaymentHash;
use crate::types::{Height, Party};

use super::context::Path;
use super::record::Taken;

/// Whether an HTLC expiring at `cltv_expiry` is ours by timeout in the block after `tip`: our
/// HTLC-timeout transaction (nLockTime = `cltv_expiry`) is final from block `cltv_expiry + 1`.
pub(super) fn timed_out(cltv_expiry: Height, tip: Height) -> bool {
    tip >= cltv_expiry
}

/// Whose path a spend of an HTLC we offered took. On our commitment it is an offered HTLC: ours
/// by our HTLC-timeout transaction, the peer's with the preimage directly, or by revocation. On
/// the peer's it is a received HTLC: ours by timeout directly, the peer's by its HTLC-success
/// transaction.
pub(super) fn judge(holder: Party, w: &Witness, hash: &PaymentHash) -> Option<Path> {
    Some(match holder {
        Party::Local => match classify_htlc_spend(w, HtlcOutputKind::Offered, hash) {
            HtlcSpend::SecondLevelTimeout => Path::Ours,
            HtlcSpend::Preimage(_) => Path::Theirs(Taken::PeerPreimage),
            HtlcSpend::Revocation => Path::Theirs(Taken::PeerRevocation),
            _ => return None,
        },
        Party::Remote => match classify_htlc_spend(w, HtlcOutputKind::Received, hash) {
            HtlcSpend::Timeout | HtlcSpend::Revocation => Path::Ours,
            HtlcSpend::SecondLevelSuccess(_) => Path::Theirs(Taken::PeerPreimage),
            _ => return None,
        },
    })
}

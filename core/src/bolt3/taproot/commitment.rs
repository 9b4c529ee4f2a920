//! The scriptPubKeys of a simple taproot commitment's outputs and of its second-level HTLC
//! transactions' output, from the commitment's keys: what `bolt3::commitment` and
//! `bolt3::htlc_tx` put in the transactions they build for [`super::super::ChannelType::SimpleTaproot`].
//!
//! Each is `OP_1 <output_key>` with `output_key = internal_key + TapTweak(internal_key ||
//! root)·G` (BIP 341), the root computed straight from the leaf hashes — one leaf is the root,
//! two leaves are one `TapBranch` (which sorts its children) — so, unlike [`TapOutput::new`],
//! nothing here can fail. The leaves are those of the output modules ([`super::to_local`],
//! [`super::to_remote`], [`super::anchor`], [`super::offered_htlc`], [`super::accepted_htlc`],
//! [`super::second_level`]); `commitment_tests.rs` checks each scriptPubKey here against the
//! [`TapOutput`] those modules build, and the whole transactions against the vectors.
//!
//! [`TapOutput::new`]: super::TapOutput::new
//! [`TapOutput`]: super::TapOutput

use bitcoin::secp256k1::PublicKey;
use bitcoin::taproot::TapNodeHash;
use bitcoin::{Script, ScriptBuf};

use super::super::commitment::CommitmentHtlc;
use super::super::{secp, CommitmentKeys};
use super::{
    accepted_htlc, anchor, leaf_hash, offered_htlc, simple_taproot_nums, to_local, x_only,
};

/// `OP_1 <output_key>` of `internal_key` over one leaf (the root is the leaf's hash).
fn p2tr_one(internal_key: &PublicKey, leaf: &Script) -> ScriptBuf {
    let root = TapNodeHash::from(leaf_hash(leaf));
    ScriptBuf::new_p2tr(secp(), x_only(internal_key), Some(root))
}

/// `OP_1 <output_key>` of `internal_key` over two leaves side by side at depth 1.
fn p2tr_two(internal_key: &PublicKey, a: &Script, b: &Script) -> ScriptBuf {
    let root = TapNodeHash::from_node_hashes(leaf_hash(a).into(), leaf_hash(b).into());
    ScriptBuf::new_p2tr(secp(), x_only(internal_key), Some(root))
}

/// `to_local`: `simple_taproot_nums` over `to_delay_script` and `revoke_script` ("To Local
/// Outputs").
pub fn to_local_script_pubkey(keys: &CommitmentKeys, to_self_delay: u16) -> ScriptBuf {
    let delay = to_local::to_delay_script(&keys.local_delayed_pubkey, to_self_delay);
    let revoke = to_local::revoke_script(&keys.local_delayed_pubkey, &keys.revocation_pubkey);
    p2tr_two(&simple_taproot_nums(), &delay, &revoke)
}

/// `to_remote`: `simple_taproot_nums` over `<remotepubkey> OP_CHECKSIGVERIFY 1 OP_CSV` ("To
/// Remote Outputs"; the NUMS point of the vectors, see DESIGN.md).
pub fn to_remote_script_pubkey(remote_payment_pubkey: &PublicKey) -> ScriptBuf {
    let leaf = super::to_remote::to_remote_script(remote_payment_pubkey);
    p2tr_one(&simple_taproot_nums(), &leaf)
}

/// The holder's anchor (internal key `local_delayedpubkey`) or the counterparty's (`remotepubkey`),
/// over `OP_16 OP_CSV` ("Anchor Outputs").
pub fn anchor_script_pubkey(keys: &CommitmentKeys, holders: bool) -> ScriptBuf {
    let internal = if holders {
        &keys.local_delayed_pubkey
    } else {
        &keys.remote_payment_pubkey
    };
    p2tr_one(internal, &anchor::anchor_script())
}

/// An HTLC output: `revocation_pubkey` over the offered HTLC's `htlc_timeout`/`htlc_success`
/// leaves (the holder offered it) or the accepted HTLC's ("Offered HTLCs", "Accepted HTLCs").
pub fn htlc_script_pubkey(keys: &CommitmentKeys, htlc: &CommitmentHtlc) -> ScriptBuf {
    let (local, remote) = (&keys.local_htlc_pubkey, &keys.remote_htlc_pubkey);
    let (timeout, success) = if htlc.offered {
        (
            offered_htlc::timeout_script(local, remote),
            offered_htlc::success_script(remote, &htlc.payment_hash),
        )
    } else {
        (
            accepted_htlc::timeout_script(remote, htlc.cltv_expiry),
            accepted_htlc::success_script(local, remote, &htlc.payment_hash),
        )
    };
    p2tr_two(&keys.revocation_pubkey, &timeout, &success)
}

/// The output of both second-level HTLC transactions: `revocation_pubkey` over
/// `<local_delayedpubkey> OP_CHECKSIGVERIFY <to_self_delay> OP_CSV` ("HTLC Second Level
/// Transactions"; the vectors' HTLC-timeout output too, see DESIGN.md).
pub fn second_level_script_pubkey(keys: &CommitmentKeys, to_self_delay: u16) -> ScriptBuf {
    let leaf = to_local::to_delay_script(&keys.local_delayed_pubkey, to_self_delay);
    p2tr_one(&keys.revocation_pubkey, &leaf)
}

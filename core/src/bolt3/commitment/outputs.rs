//! The outputs of a commitment before sorting, per channel type: P2WSH/P2WPKH scripts
//! ([`super::scripts`]) or simple taproot's P2TR outputs ([`crate::bolt3::taproot::commitment`]).

use bitcoin::ScriptBuf;

use super::super::{scripts, taproot};
use super::{CommitmentHtlc, CommitmentSpec, OutputKind, ANCHOR_OUTPUT_SAT, SHARED_ANCHOR_MAX_SAT};

/// An output before sorting: the sort key and what goes into [`CommitmentOutput`].
pub(super) struct Candidate {
    pub(super) value_sat: u64,
    pub(super) script_pubkey: ScriptBuf,
    pub(super) cltv_expiry: Option<u32>,
    pub(super) kind: OutputKind,
    pub(super) witness_script: Option<ScriptBuf>,
}

/// An untrimmed HTLC's output: P2WSH of the offered or received HTLC script, or the P2TR HTLC
/// output of simple taproot channels (no witness script: its leaves come from `taproot::*`).
pub(super) fn htlc_candidate(spec: &CommitmentSpec, htlc: &CommitmentHtlc) -> Candidate {
    let (channel_type, keys) = (spec.channel_type, &spec.keys);
    let kind = if htlc.offered {
        OutputKind::OfferedHtlc { htlc_id: htlc.id }
    } else {
        OutputKind::ReceivedHtlc { htlc_id: htlc.id }
    };
    let (script_pubkey, witness_script) = if channel_type.is_taproot() {
        (taproot::commitment::htlc_script_pubkey(keys, htlc), None)
    } else {
        let script = super::super::htlc_tx::htlc_witness_script(htlc, keys, channel_type);
        (script.to_p2wsh(), Some(script))
    };
    Candidate {
        value_sat: htlc.amount_msat / 1000,
        script_pubkey,
        cltv_expiry: Some(htlc.cltv_expiry),
        kind,
        witness_script,
    }
}

/// The holder's `to_local` output: P2WSH of the `to_local` script, or P2TR (simple taproot).
pub(super) fn to_local_candidate(spec: &CommitmentSpec, value_sat: u64) -> Candidate {
    let keys = &spec.keys;
    let (script_pubkey, witness_script) = if spec.channel_type.is_taproot() {
        let spk = taproot::commitment::to_local_script_pubkey(keys, spec.to_self_delay);
        (spk, None)
    } else {
        let script = scripts::to_local_script(
            &keys.revocation_pubkey,
            spec.to_self_delay,
            &keys.local_delayed_pubkey,
        );
        (script.to_p2wsh(), Some(script))
    };
    Candidate {
        value_sat,
        script_pubkey,
        cltv_expiry: None,
        kind: OutputKind::ToLocal,
        witness_script,
    }
}

/// The counterparty's `to_remote` output (see [`scripts::to_remote_script_pubkey`]).
pub(super) fn to_remote_candidate(spec: &CommitmentSpec, value_sat: u64) -> Candidate {
    let (channel_type, key) = (spec.channel_type, &spec.keys.remote_payment_pubkey);
    Candidate {
        value_sat,
        script_pubkey: scripts::to_remote_script_pubkey(channel_type, key),
        cltv_expiry: None,
        kind: OutputKind::ToRemote,
        witness_script: channel_type
            .has_anchors()
            .then(|| scripts::to_remote_anchor_script(key)),
    }
}

/// The holder's (`holders`) or the counterparty's 330-sat anchor: P2WSH keyed by the funding
/// key (`option_anchors`), or P2TR keyed by `local_delayedpubkey` / `remotepubkey` (simple
/// taproot).
pub(super) fn anchor_candidate(spec: &CommitmentSpec, holders: bool) -> Candidate {
    let kind = if holders {
        OutputKind::LocalAnchor
    } else {
        OutputKind::RemoteAnchor
    };
    let (script_pubkey, witness_script) = if spec.channel_type.is_taproot() {
        let spk = taproot::commitment::anchor_script_pubkey(&spec.keys, holders);
        (spk, None)
    } else {
        let funding = if holders {
            &spec.local_funding_pubkey
        } else {
            &spec.remote_funding_pubkey
        };
        let script = scripts::anchor_script(funding);
        (script.to_p2wsh(), Some(script))
    };
    Candidate {
        value_sat: ANCHOR_OUTPUT_SAT,
        script_pubkey,
        cltv_expiry: None,
        kind,
        witness_script,
    }
}

/// The `shared_anchor` output of a zero-fee commitment: what the funding value leaves over the
/// other outputs (trimmed outputs and msat rounding), capped at [`SHARED_ANCHOR_MAX_SAT`]; the
/// rest, if any, is the commitment's fee (BOLT 3 "`shared_anchor` Output"). If the other outputs
/// exceed the funding value the anchor is 0 and the build fails later on the sum.
pub(super) fn shared_anchor(funding_sat: u64, others: &[Candidate]) -> Candidate {
    let others_sat = others
        .iter()
        .try_fold(0u64, |acc, c| acc.checked_add(c.value_sat))
        .unwrap_or(u64::MAX);
    Candidate {
        value_sat: funding_sat
            .saturating_sub(others_sat)
            .min(SHARED_ANCHOR_MAX_SAT),
        script_pubkey: scripts::pay_to_anchor_script_pubkey(),
        cltv_expiry: None,
        kind: OutputKind::SharedAnchor,
        witness_script: None,
    }
}

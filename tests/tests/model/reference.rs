//! The reference ledger (issue 20 §2): who owns every output of a close at the end of a case,
//! and what the engine's ledger, resolution reports and close summary must say of each —
//! decided from BOLT 3 and BOLT 5 alone, never from the engine's state:
//! - *which output is which* from the commitment as BOLT 3 builds it (its outputs and trimmed
//!   HTLCs);
//! - *who took it* from the witness of the input that spent it, by the script path it used
//!   (BOLT 3's scripts: the holder's delayed path or the revocation path of `to_local`; an
//!   HTLC's revocation, preimage or timeout path, directly or through a second-level
//!   transaction), so an output's owner follows from the chain itself; only a pay-to-anchor
//!   output, which anyone spends with an empty witness, is ours when the spending transaction
//!   is one we broadcast;
//! - *whether it is final* from its depth against `reorg_safety_depth` (BOLT 5's "irrevocably
//!   resolved", with the engine's configured depth);
//! - *who may take it* (BOLT 5) from what each side knew: our balance, every output of a
//!   revoked commitment and our second-level outputs are ours alone; an outgoing HTLC is ours
//!   by timeout unless the peer knows its preimage; an incoming HTLC is the peer's unless we
//!   learned its preimage.
//!
//! [`compare`] lists every disagreement; the model check asserts there is none.

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::{OutPoint, Transaction, Txid};
use contractcourt_core::action::{CloseKind, CloseSummary, Outcome, Resolution};
use contractcourt_core::bolt3::commitment::{BuiltCommitment, OutputKind};
use contractcourt_core::chain::ledger::{Ledger, OutputStatus};
use contractcourt_core::types::{ChannelId, HtlcDirection, HtlcKey, Party};

/// What the reference is told: the close as built, the chain, and what each side knew.
pub struct World<'a> {
    /// The channel.
    pub channel: ChannelId,
    /// Whose commitment confirmed, its number, and whether it was revoked.
    pub holder: Party,
    pub commitment_number: u64,
    pub revoked: bool,
    /// Whether it was the peer's pending commitment (signed for it, not yet revoked for).
    pub pending: bool,
    /// Whether it was a commitment of the peer's newer than any we know (we lost data): its
    /// HTLCs are unknown to us, so only our balance and anchors are ours to track.
    pub future: bool,
    /// The commitment as built (BOLT 3), and the height it confirmed at.
    pub built: &'a BuiltCommitment,
    pub close_height: u32,
    /// The active chain's transactions with their heights, in order.
    pub chain: Vec<(u32, &'a Transaction)>,
    /// The tip.
    pub tip: u32,
    /// The depth at which a spend is final.
    pub safety_depth: u32,
    /// Every transaction we broadcast (only to tell who spent a pay-to-anchor output).
    pub ours: &'a BTreeSet<Txid>,
    /// For each HTLC on the channel: its key, expiry, whether the peer knows its preimage, and
    /// the height at which we learned it (for an incoming one).
    pub htlcs: Vec<HtlcFacts>,
}

/// What the reference knows of one HTLC.
pub struct HtlcFacts {
    pub key: HtlcKey,
    pub cltv_expiry: u32,
    pub peer_knows: bool,
    pub we_learned_at: Option<u32>,
}

/// What an output is to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Our balance: `to_local` on our commitment, `to_remote` on the peer's.
    OurBalance,
    /// The peer's `to_local` on its revoked commitment: ours by revocation.
    RevokedBalance,
    /// Our keyed anchor.
    Anchor,
    /// The shared pay-to-anchor output of a zero-fee commitment.
    SharedAnchor,
    /// An HTLC output.
    Htlc { key: HtlcKey, cltv_expiry: u32 },
    /// The output of our own second-level HTLC transaction (our commitment): ours after our
    /// `to_self_delay`.
    OurSecondLevel,
    /// The output of the peer's second-level HTLC transaction on its revoked commitment: ours
    /// by revocation.
    RevokedSecondLevel,
}

/// Who took an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Us,
    Peer,
    ThirdParty,
}

/// How an output was spent, as the reference reads it.
#[derive(Clone, Debug)]
pub struct Spend {
    pub txid: Txid,
    pub height: u32,
    pub owner: Owner,
    /// The spend is a second-level HTLC transaction (ours on our commitment, or the peer's on
    /// its revoked one), whose output is an output of its own.
    pub second_level: bool,
    /// Our outgoing HTLC came back by its timeout path.
    pub timed_out: bool,
}

/// One output the ledger must list.
#[derive(Clone, Debug)]
pub struct Expected {
    pub outpoint: OutPoint,
    pub amount_sat: u64,
    pub role: Role,
    pub spend: Option<Spend>,
}

/// The reference ledger of a close: every output that matters to us, in outpoint order.
pub fn reference(w: &World) -> Vec<Expected> {
    let close_txid = w.built.tx.compute_txid();
    let mut out = Vec::new();
    for o in &w.built.outputs {
        let role = match (&o.kind, w.holder) {
            (OutputKind::ToLocal, Party::Local) => Role::OurBalance,
            (OutputKind::ToLocal, Party::Remote) if w.revoked => Role::RevokedBalance,
            (OutputKind::ToRemote, Party::Remote) => Role::OurBalance,
            (OutputKind::LocalAnchor, Party::Local) | (OutputKind::RemoteAnchor, Party::Remote) => {
                Role::Anchor
            }
            (OutputKind::SharedAnchor, _) => Role::SharedAnchor,
            (OutputKind::OfferedHtlc { htlc_id }, _)
            | (OutputKind::ReceivedHtlc { htlc_id }, _) => {
                let offered = matches!(o.kind, OutputKind::OfferedHtlc { .. });
                // Offered by the holder: outgoing when the holder is us.
                let direction = if offered == (w.holder == Party::Local) {
                    HtlcDirection::Outgoing
                } else {
                    HtlcDirection::Incoming
                };
                let key = HtlcKey {
                    channel: w.channel,
                    htlc_id: *htlc_id,
                    direction,
                };
                let cltv_expiry = w
                    .htlcs
                    .iter()
                    .find(|h| h.key == key)
                    .map_or(0, |h| h.cltv_expiry);
                Role::Htlc { key, cltv_expiry }
            }
            // The peer's balance and the peer's anchor are not ours to track.
            _ => continue,
        };
        if w.future && matches!(role, Role::Htlc { .. }) {
            continue; // we lost what this HTLC is: nothing of ours to claim
        }
        let outpoint = OutPoint {
            txid: close_txid,
            vout: o.index,
        };
        let spend = spend_of(w, &outpoint, &role);
        if let Some(s) = spend.as_ref().filter(|s| s.second_level) {
            // The second-level transaction's output 0 (BOLT 3: one output) is an output of
            // its own, ours by our delay or by revocation.
            if let Some((_, tx)) = w.chain.iter().find(|(_, t)| t.compute_txid() == s.txid) {
                let next = OutPoint {
                    txid: s.txid,
                    vout: 0,
                };
                let role = if s.owner == Owner::Us {
                    Role::OurSecondLevel
                } else {
                    Role::RevokedSecondLevel
                };
                let amount_sat = tx.output[0].value.to_sat();
                out.push(Expected {
                    spend: spend_of(w, &next, &role),
                    outpoint: next,
                    amount_sat,
                    role,
                });
            }
        }
        out.push(Expected {
            outpoint,
            amount_sat: o.value_sat,
            role,
            spend,
        });
    }
    out.sort_by_key(|e| e.outpoint);
    out
}

/// The spend of `outpoint` on the chain, read from its witness (BOLT 3's script paths).
fn spend_of(w: &World, outpoint: &OutPoint, role: &Role) -> Option<Spend> {
    let (height, tx) = w
        .chain
        .iter()
        .find(|(_, t)| t.input.iter().any(|i| i.previous_output == *outpoint))?;
    let input = tx.input.iter().find(|i| i.previous_output == *outpoint)?;
    let items: Vec<&[u8]> = input.witness.iter().collect();
    let txid = tx.compute_txid();
    let theirs_revoked = w.holder == Party::Remote && w.revoked;
    // P2WSH witnesses end with the script; the element before it selects the path.
    let n = items.len();
    let selector = |back: usize| {
        n.checked_sub(back)
            .and_then(|i| items.get(i))
            .map(|e| e.len())
    };
    let mut second_level = false;
    let mut timed_out = false;
    let owner = match role {
        // `to_local`-style scripts: `<sig> <> <script>` is the delayed path of the key's holder,
        // `<sig> 1 <script>` the revocation path of the other side.
        Role::OurBalance if w.holder == Party::Local => delayed_or_revoked(selector(2), true),
        // Our `to_remote`: P2WPKH or (anchors) `<sig> <script>`, ours alone.
        Role::OurBalance => Owner::Us,
        Role::RevokedBalance | Role::RevokedSecondLevel => delayed_or_revoked(selector(2), false),
        Role::OurSecondLevel => delayed_or_revoked(selector(2), true),
        // A keyed anchor: `<sig> <script>` by its owner, `<> <script>` by anyone after 16
        // blocks.
        Role::Anchor => {
            if selector(2) == Some(0) {
                Owner::ThirdParty
            } else {
                Owner::Us
            }
        }
        // Anyone's, with an empty witness: ours when we broadcast the spend.
        Role::SharedAnchor => {
            if w.ours.contains(&txid) {
                Owner::Us
            } else {
                Owner::ThirdParty
            }
        }
        Role::Htlc { key, .. } => {
            // Five items (`0 <remotesig> <localsig> <preimage or empty> <script>`): a
            // second-level transaction of the commitment's holder. Three: a direct claim by the
            // other side — revocation (a 33-byte key), preimage (32 bytes) or timeout (empty).
            if n >= 5 {
                second_level = true;
                let holder_is_us = w.holder == Party::Local;
                if holder_is_us && key.direction == HtlcDirection::Outgoing {
                    timed_out = true;
                }
                if holder_is_us {
                    Owner::Us
                } else {
                    // The peer's HTLC-timeout or HTLC-success transaction; on its revoked
                    // commitment, its output is ours by revocation (listed of its own).
                    if !theirs_revoked {
                        second_level = false;
                    }
                    Owner::Peer
                }
            } else if w.holder == Party::Local {
                // The peer's direct claim on our commitment (preimage or timeout); a 33-byte
                // revocation key cannot be: our commitment is not revoked.
                Owner::Peer
            } else {
                if selector(2) == Some(0) && key.direction == HtlcDirection::Outgoing {
                    timed_out = true;
                }
                Owner::Us
            }
        }
    };
    Some(Spend {
        txid,
        height: *height,
        owner,
        second_level,
        timed_out,
    })
}

/// `<sig> <> <script>` is the delayed path, `<sig> 1 <script>` the revocation path; the delayed
/// path is ours when `delayed_is_ours`.
fn delayed_or_revoked(selector: Option<usize>, delayed_is_ours: bool) -> Owner {
    let delayed = selector == Some(0);
    if delayed == delayed_is_ours {
        Owner::Us
    } else {
        Owner::Peer
    }
}

impl World<'_> {
    fn is_final(&self, height: u32) -> bool {
        self.tip.saturating_add(1) >= height.saturating_add(self.safety_depth)
    }

    fn facts(&self, key: &HtlcKey) -> Option<&HtlcFacts> {
        self.htlcs.iter().find(|h| h.key == *key)
    }

    /// Whether the peer may take this output at all (BOLT 5): never our balance, nothing of a
    /// revoked commitment but by our failing to act, our second-level outputs never; an
    /// outgoing HTLC only with its preimage; an incoming HTLC by its timeout.
    fn peer_may_take(&self, role: &Role) -> bool {
        match role {
            Role::OurBalance | Role::OurSecondLevel => false,
            Role::Anchor | Role::SharedAnchor => false,
            // Ours by revocation; the peer takes them only if we let its delays pass.
            Role::RevokedBalance | Role::RevokedSecondLevel => false,
            Role::Htlc { key, .. } if self.revoked => {
                // The peer's own second-level transaction is its only move; its output is
                // listed (ours by revocation).
                let _ = key;
                true
            }
            Role::Htlc { key, .. } => match key.direction {
                HtlcDirection::Outgoing => self.facts(key).is_some_and(|f| f.peer_knows),
                HtlcDirection::Incoming => true,
            },
        }
    }

    /// Whether we may take this output (BOLT 5): an incoming HTLC only with its preimage.
    fn we_may_take(&self, role: &Role) -> bool {
        match role {
            Role::Htlc { key, .. } if key.direction == HtlcDirection::Incoming && !self.revoked => {
                self.facts(key).is_some_and(|f| f.we_learned_at.is_some())
            }
            _ => true,
        }
    }
}

/// Every disagreement between the reference and the engine's ledger, resolution reports and
/// close summary.
pub fn compare(
    w: &World,
    expected: &[Expected],
    ledger: &Ledger,
    resolutions: &BTreeMap<OutPoint, Resolution>,
    summary: Option<&CloseSummary>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let entries: BTreeMap<OutPoint, _> = ledger
        .channels
        .iter()
        .filter(|c| c.channel == w.channel)
        .flat_map(|c| c.outputs.iter().map(|e| (e.outpoint, e)))
        .collect();
    let listed: BTreeSet<OutPoint> = entries.keys().copied().collect();
    let wanted: BTreeSet<OutPoint> = expected.iter().map(|e| e.outpoint).collect();
    for missing in wanted.difference(&listed) {
        let e = expected.iter().find(|e| e.outpoint == *missing);
        errors.push(format!(
            "{missing} ({:?}) is not in the ledger",
            e.map(|e| &e.role)
        ));
    }
    for extra in listed.difference(&wanted) {
        errors.push(format!(
            "the ledger lists {extra} ({}), which is not ours to track",
            entries[extra].what
        ));
    }
    for e in expected {
        let Some(entry) = entries.get(&e.outpoint) else {
            continue;
        };
        let at = format!("{} ({:?}, {} sat)", e.outpoint, e.role, e.amount_sat);
        if entry.amount_sat != e.amount_sat {
            errors.push(format!("{at}: the ledger says {} sat", entry.amount_sat));
        }
        // Who may take it (BOLT 5).
        if let Some(s) = &e.spend {
            if s.owner == Owner::Peer && !w.peer_may_take(&e.role) {
                errors.push(format!(
                    "{at}: the peer took it ({}) though it is ours alone",
                    s.txid
                ));
            }
            if s.owner == Owner::Us && !w.we_may_take(&e.role) {
                errors.push(format!(
                    "{at}: we took it ({}) without the right to",
                    s.txid
                ));
            }
        }
        // Where it stands.
        let status = &entry.status;
        let fine = match &e.spend {
            Some(s) if s.second_level && s.owner == Owner::Us => {
                *status == OutputStatus::SecondLevel { txid: s.txid }
            }
            Some(s) if !w.is_final(s.height) => matches!(
                status,
                OutputStatus::Confirming { txid, .. } if *txid == s.txid
            ),
            Some(s) => match (s.owner, s.second_level) {
                (Owner::Peer, true) => *status == OutputStatus::SecondLevel { txid: s.txid },
                (Owner::Us, _) => *status == OutputStatus::Recovered { txid: s.txid },
                (Owner::Peer, false) => *status == OutputStatus::TakenByPeer { txid: s.txid },
                (Owner::ThirdParty, _) => {
                    *status == OutputStatus::TakenByThirdParty { txid: s.txid }
                }
            },
            None => unspent_fits(w, e, status),
        };
        if !fine {
            errors.push(format!(
                "{at}: the reference reads {:?}, the ledger says {status:?} at {}",
                e.spend, w.tip
            ));
        }
        // The resolution report of a final spend.
        if let Some(s) = e.spend.as_ref().filter(|s| w.is_final(s.height)) {
            let outcome = match (s.owner, s.second_level) {
                (Owner::Us, _) if s.timed_out => Outcome::TimedOut,
                (Owner::Us, _) => Outcome::Claimed,
                (Owner::Peer, true) => Outcome::RevokedSecondLevel,
                (Owner::Peer, false) => Outcome::LostToPeer,
                (Owner::ThirdParty, _) => Outcome::ThirdParty,
            };
            match resolutions.get(&e.outpoint) {
                None => errors.push(format!(
                    "{at}: final ({}), but no resolution report",
                    s.txid
                )),
                Some(r) => {
                    if r.outcome != outcome
                        || r.amount_sat != e.amount_sat
                        || r.spending_txid != Some(s.txid)
                        || r.height != s.height
                    {
                        errors.push(format!(
                            "{at}: resolution {:?} {} sat by {:?} at {}, the reference says {outcome:?} by {} at {}",
                            r.outcome, r.amount_sat, r.spending_txid, r.height, s.txid, s.height
                        ));
                    }
                }
            }
        }
    }
    errors.extend(compare_summary(w, summary));
    errors
}

/// An output nobody has spent: where it may stand at the end.
fn unspent_fits(w: &World, e: &Expected, status: &OutputStatus) -> bool {
    use OutputStatus as S;
    match &e.role {
        // Left (not worth its claim), or being claimed (a CPFP child in flight).
        Role::Anchor | Role::SharedAnchor => matches!(status, S::Uneconomical | S::Claiming),
        // An incoming HTLC without its preimage: the peer's once expired, contested before.
        Role::Htlc { key, cltv_expiry } if key.direction == HtlcDirection::Incoming => match status
        {
            S::Expired => w.tip >= *cltv_expiry && !w.we_may_take(&e.role),
            S::Contested => true,
            S::Claiming => w.we_may_take(&e.role),
            S::Uneconomical => true,
            _ => false,
        },
        Role::Htlc { cltv_expiry, .. } => match status {
            S::Contested => true,
            S::Claiming => w.tip.saturating_add(1) >= *cltv_expiry,
            S::Uneconomical => true,
            _ => false,
        },
        // Ours alone: waiting for its delay, being claimed, or not worth claiming.
        _ => matches!(status, S::Timelocked { .. } | S::Claiming | S::Uneconomical),
    }
}

/// The totals of one close, counted by the rule the ledger documents — each output of the close once, at
/// its value on the close, in the bucket of where it stands (an HTLC output our own
/// second-level transaction spent: where that transaction's output stands) — from the
/// reference's own reading of where each output stands.
pub fn totals(w: &World, expected: &[Expected]) -> Buckets {
    let mut want = Buckets::default();
    let close_txid = w.built.tx.compute_txid();
    let by_outpoint: BTreeMap<OutPoint, &Expected> =
        expected.iter().map(|e| (e.outpoint, e)).collect();
    for e in expected {
        // Second-level outputs are counted where the close output they came from is.
        let (value, stands) = if e.outpoint.txid == close_txid {
            match &e.spend {
                Some(s) if s.second_level => {
                    let next = OutPoint {
                        txid: s.txid,
                        vout: 0,
                    };
                    match by_outpoint.get(&next) {
                        // Ours: counted at the close value where the second-level output is.
                        Some(n) if s.owner == Owner::Us => (e.amount_sat, n.spend.clone()),
                        // The peer's on its revoked commitment: its output counts at its own
                        // value, below.
                        _ => continue,
                    }
                }
                _ => (e.amount_sat, e.spend.clone()),
            }
        } else if e.role == Role::RevokedSecondLevel {
            (e.amount_sat, e.spend.clone())
        } else {
            continue;
        };
        // Only final spends are counted here; the rest are in flight.
        match stands.filter(|s| w.is_final(s.height)) {
            Some(s) if s.owner == Owner::Us => want.recovered += value,
            Some(s) if s.owner == Owner::Peer => want.peer += value,
            Some(_) => want.third_party += value,
            None => {}
        }
    }
    want
}

/// The node's totals of final spends, summed over the reference ledgers of every channel
/// with a close in the ledger.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub recovered: u64,
    pub peer: u64,
    pub third_party: u64,
}

impl std::ops::AddAssign for Buckets {
    fn add_assign(&mut self, o: Buckets) {
        self.recovered += o.recovered;
        self.peer += o.peer;
        self.third_party += o.third_party;
    }
}

/// The ledger's totals against the reference's, `want` summed over every channel.
pub fn compare_totals(want: Buckets, ledger: &Ledger) -> Vec<String> {
    let t = &ledger.totals;
    // Expired incoming HTLCs are the peer's too, unspent: add what the ledger counts as such
    // only where the reference agrees it is the peer's to take (checked per output above).
    let expired: u64 = ledger
        .channels
        .iter()
        .flat_map(|c| c.outputs.iter())
        .filter(|o| o.status == OutputStatus::Expired)
        .map(|o| o.amount_sat)
        .sum();
    let got = Buckets {
        recovered: t.recovered_sat,
        peer: t.taken_by_peer_sat.saturating_sub(expired),
        third_party: t.third_party_sat,
    };
    if got != want {
        vec![format!(
            "totals: the ledger counts {got:?} (final spends), the reference {want:?}"
        )]
    } else {
        Vec::new()
    }
}

/// The close summary: the kind of close, its transaction and height, our balance on it and the
/// HTLCs trimmed from it (BOLT 3).
fn compare_summary(w: &World, summary: Option<&CloseSummary>) -> Vec<String> {
    let Some(s) = summary else {
        return vec!["no close summary".to_string()];
    };
    let n = w.commitment_number;
    let kind = match (w.holder, w.revoked) {
        (Party::Local, _) => CloseKind::Local {
            commitment_number: n,
        },
        (Party::Remote, true) => CloseKind::Breach {
            commitment_number: n,
        },
        (Party::Remote, false) if w.future => CloseKind::FutureRemote {
            commitment_number: n,
        },
        (Party::Remote, false) => CloseKind::Remote {
            commitment_number: n,
            pending: w.pending,
        },
    };
    let balance = w
        .built
        .outputs
        .iter()
        .find(|o| match w.holder {
            Party::Local => o.kind == OutputKind::ToLocal,
            Party::Remote => o.kind == OutputKind::ToRemote,
        })
        .map_or(0, |o| o.value_sat);
    let mut dust: Vec<HtlcKey> = w
        .built
        .trimmed_htlcs
        .iter()
        .map(|h| HtlcKey {
            channel: w.channel,
            htlc_id: h.id,
            direction: if h.offered == (w.holder == Party::Local) {
                HtlcDirection::Outgoing
            } else {
                HtlcDirection::Incoming
            },
        })
        .collect();
    dust.sort();
    let dust_msat: u64 = w.built.trimmed_htlcs.iter().map(|h| h.amount_msat).sum();
    let mut got_dust = s.dust_htlcs.clone();
    got_dust.sort();
    let mut errors = Vec::new();
    if s.close != kind {
        errors.push(format!(
            "close summary: {:?}, the reference says {kind:?}",
            s.close
        ));
    }
    if s.closing_txid != w.built.tx.compute_txid() || s.height != w.close_height {
        errors.push(format!(
            "close summary: {} at {}, the chain has {} at {}",
            s.closing_txid,
            s.height,
            w.built.tx.compute_txid(),
            w.close_height
        ));
    }
    if s.our_balance_sat != balance {
        errors.push(format!(
            "close summary: our balance {} sat, the commitment pays us {balance}",
            s.our_balance_sat
        ));
    }
    // A revoked commitment's HTLCs are not kept (its per-commitment secret is all a node
    // stores of it, BOLT 5's O(1) storage of revocations): a breach's summary cannot name what
    // was trimmed from it, and every output of it is ours anyway.
    // Nor can a future commitment's, whose HTLCs we lost.
    if !w.revoked && !w.future && (got_dust != dust || s.dust_msat != dust_msat) {
        errors.push(format!(
            "close summary: dust {:?} ({} msat), the commitment trimmed {dust:?} ({dust_msat} msat)",
            got_dust, s.dust_msat
        ));
    }
    errors
}

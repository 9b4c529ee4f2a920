//! `sim`: a deterministic two-party channel model (feature `sim`).
//!
//! Both parties' keys come from a seed; HTLCs are added, settled and failed; each update moves
//! both parties to new commitments in the order a real node sees them, and emits the
//! [`Event`]s a real node would send the engine (registration, remote commitment, local
//! commitment with the peer's signatures, our revocation, the peer's revocation secret). Both
//! parties' commitment and HTLC transactions — current or revoked — are available signed and ready
//! to broadcast, all built with [`crate::bolt3`]. Tests, fuzz targets, model checks and
//! simulations drive the engine through it, so no test hand-types a transaction.
//!
//! "Local" is our node, "remote" the peer, throughout.

mod keys;
mod reestablish;
mod signer;
mod trace_start;
mod txs;
mod wallet;

use std::collections::BTreeMap;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{OutPoint, Txid};
use serde::{Deserialize, Serialize};

use crate::bolt3::commitment::{obscuring_factor, CommitmentHtlc, CommitmentSpec};
use crate::bolt3::{ChannelType, CommitmentKeys, PaymentHash, PaymentPreimage};
use crate::event::{ChannelChange, ChannelRegistration, ChannelUpdate, Event, FundingOutput};
use crate::types::{ChannelId, Height, HtlcDirection, HtlcKey, Party};

pub use keys::PartySecrets;
pub use signer::sign_per_channel;
pub use trace_start::{trace_start, SimTraceSetup, TraceStartError};
pub use wallet::SimWallet;

/// What a simulated channel looks like when it opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSetup {
    /// The seed every key, secret and preimage derives from.
    #[serde(with = "crate::bolt3::hex_32")]
    pub seed: [u8; 32],
    /// The commitment format.
    pub channel_type: ChannelType,
    /// The channel capacity.
    pub funding_sat: u64,
    /// Who opened the channel (pays the commitment fee and anchors).
    pub funder: Party,
    /// Our opening balance; the peer has the rest.
    pub local_balance_msat: u64,
    /// The CSV delay on our outputs.
    pub local_to_self_delay: u16,
    /// The CSV delay on the peer's outputs.
    pub remote_to_self_delay: u16,
    /// Our dust limit.
    pub local_dust_limit_sat: u64,
    /// The peer's dust limit.
    pub remote_dust_limit_sat: u64,
    /// The commitment fee rate.
    pub feerate_per_kw: u32,
    /// The funding outpoint; derived from the seed when absent.
    pub funding_outpoint: Option<OutPoint>,
    /// The number of the first commitments (0 for a new channel).
    pub initial_commitment_number: u64,
}

impl SimSetup {
    /// A typical channel: 1,000,000 sat, we funded it and hold 60%, 144/144 blocks of delay,
    /// 354-sat dust limits, 2,500 sat/kw (0 for zero-fee commitments, as BOLT 2 requires).
    pub fn new(seed: u64, channel_type: ChannelType) -> SimSetup {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        SimSetup {
            seed: bytes,
            channel_type,
            funding_sat: 1_000_000,
            funder: Party::Local,
            local_balance_msat: 600_000_000,
            local_to_self_delay: 144,
            remote_to_self_delay: 144,
            local_dust_limit_sat: 354,
            remote_dust_limit_sat: 354,
            feerate_per_kw: if channel_type.zero_fee_commitment() {
                0
            } else {
                2_500
            },
            funding_outpoint: None,
            initial_commitment_number: 0,
        }
    }
}

/// Why the simulation refused an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Not enough balance to offer an HTLC of that amount.
    InsufficientBalance {
        /// Who offered it.
        offerer: Party,
        /// What they have.
        available_msat: u64,
        /// What they offered.
        amount_msat: u64,
    },
    /// No such live HTLC.
    UnknownHtlc(HtlcKey),
    /// No commitment with that number for that party.
    UnknownCommitment {
        /// Whose.
        holder: Party,
        /// Which number.
        commitment_number: u64,
    },
    /// The opening balance exceeds the capacity.
    BalanceExceedsCapacity,
    /// A commitment number beyond 2^48 - 1.
    CommitmentNumberTooLarge(u64),
    /// A secret that is not a valid scalar.
    BadSecret,
    /// BOLT 3 key derivation failed.
    Key(crate::bolt3::keys::KeyError),
    /// Building a transaction failed.
    Build(String),
    /// `complete` with nothing proposed, or `propose` twice.
    OutOfOrder(&'static str),
    /// A channel type the engine (and so this simulation) does not resolve yet.
    ChannelTypeNotResolved(crate::bolt3::UnsupportedChannelType),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimError::InsufficientBalance {
                offerer,
                available_msat,
                amount_msat,
            } => write!(
                f,
                "{offerer:?} cannot offer {amount_msat} msat with {available_msat} msat available"
            ),
            SimError::UnknownHtlc(key) => write!(f, "no live htlc {key:?}"),
            SimError::UnknownCommitment {
                holder,
                commitment_number,
            } => {
                write!(f, "no {holder:?} commitment number {commitment_number}")
            }
            SimError::BalanceExceedsCapacity => f.write_str("opening balance exceeds the capacity"),
            SimError::CommitmentNumberTooLarge(n) => {
                write!(f, "commitment number {n} exceeds 2^48-1")
            }
            SimError::BadSecret => f.write_str("per-commitment secret is not a valid scalar"),
            SimError::Key(e) => write!(f, "key derivation: {e}"),
            SimError::Build(e) => write!(f, "building a transaction: {e}"),
            SimError::OutOfOrder(what) => write!(f, "out of order: {what}"),
            SimError::ChannelTypeNotResolved(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SimError {}

/// An HTLC of the simulated channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimHtlc {
    /// Its identity.
    pub key: HtlcKey,
    /// Its amount.
    pub amount_msat: u64,
    /// Its preimage (the simulation knows them all; who "knows" it is up to the test).
    pub preimage: PaymentPreimage,
    /// Its expiry.
    pub cltv_expiry: Height,
}

impl SimHtlc {
    /// Its payment hash.
    pub fn payment_hash(&self) -> PaymentHash {
        self.preimage.payment_hash()
    }
}

/// The balances and HTLCs of one commitment state (shared by both parties' commitments of the
/// same update).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimState {
    /// Our balance, net of HTLCs, before fees.
    pub local_msat: u64,
    /// The peer's balance, net of HTLCs, before fees.
    pub remote_msat: u64,
    /// The fee rate.
    pub feerate_per_kw: u32,
    /// The HTLCs, by identity.
    pub htlcs: BTreeMap<HtlcKey, SimHtlc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Change {
    Add(SimHtlc),
    Settle(HtlcKey),
    Fail(HtlcKey),
    Fee(u32),
}

/// A simulated channel between our node and a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimChannel {
    setup: SimSetup,
    /// The channel id (funding txid XOR output index, BOLT 2).
    pub channel_id: ChannelId,
    /// The funding output.
    pub funding: FundingOutput,
    /// Our secrets.
    pub local: PartySecrets,
    /// The peer's secrets.
    pub remote: PartySecrets,
    next_update_id: u64,
    next_htlc_id: BTreeMap<HtlcDirection, u64>,
    pending: Vec<Change>,
    /// The state of the newest commitments (the one the next update builds on).
    latest: SimState,
    /// Our commitments by number (all kept, so revoked ones can be replayed).
    local_commitments: BTreeMap<u64, SimState>,
    /// The peer's commitments by number.
    remote_commitments: BTreeMap<u64, SimState>,
    local_number: u64,
    remote_number: u64,
    remote_pending: Option<u64>,
}

impl SimChannel {
    /// Open a channel: both parties' keys from the setup's seed. Returns the channel and the
    /// events a node would send (registration and both initial commitments).
    pub fn open(setup: SimSetup) -> Result<(SimChannel, Vec<Event>), SimError> {
        let local = PartySecrets::from_seed(&setup.seed, "local");
        let remote = PartySecrets::from_seed(&setup.seed, "remote");
        Self::open_with(setup, local, remote)
    }

    /// Open a channel with explicit secrets for both parties.
    pub fn open_with(
        setup: SimSetup,
        local: PartySecrets,
        remote: PartySecrets,
    ) -> Result<(SimChannel, Vec<Event>), SimError> {
        let refused = SimError::ChannelTypeNotResolved;
        setup.channel_type.engine_support().map_err(refused)?;
        let capacity_msat = setup
            .funding_sat
            .checked_mul(1000)
            .ok_or(SimError::BalanceExceedsCapacity)?;
        let remote_msat = capacity_msat
            .checked_sub(setup.local_balance_msat)
            .ok_or(SimError::BalanceExceedsCapacity)?;
        let outpoint = setup.funding_outpoint.unwrap_or_else(|| OutPoint {
            txid: Txid::from_byte_array(tagged_hash(&setup.seed, "funding-txid")),
            vout: 0,
        });
        let mut channel_id = outpoint.txid.to_byte_array();
        // BOLT 2: the funding txid (in internal byte order) XORed with the output index.
        let vout = outpoint.vout.to_be_bytes();
        channel_id[30] ^= vout[2];
        channel_id[31] ^= vout[3];
        let n0 = setup.initial_commitment_number;
        let state = SimState {
            local_msat: setup.local_balance_msat,
            remote_msat,
            feerate_per_kw: setup.feerate_per_kw,
            htlcs: BTreeMap::new(),
        };
        let mut sim = SimChannel {
            channel_id: ChannelId(channel_id),
            funding: FundingOutput {
                outpoint,
                value_sat: setup.funding_sat,
            },
            local,
            remote,
            next_update_id: 0,
            next_htlc_id: BTreeMap::new(),
            pending: Vec::new(),
            latest: state.clone(),
            local_commitments: BTreeMap::from([(n0, state.clone())]),
            remote_commitments: BTreeMap::from([(n0, state)]),
            local_number: n0,
            remote_number: n0,
            remote_pending: None,
            setup,
        };
        let registration = ChannelRegistration {
            channel_type: sim.setup.channel_type,
            funding: vec![sim.funding],
            funder: sim.setup.funder,
            local_basepoints: sim.local.basepoints(),
            remote_basepoints: sim.remote.basepoints(),
            local_to_self_delay: sim.setup.local_to_self_delay,
            remote_to_self_delay: sim.setup.remote_to_self_delay,
            local_dust_limit_sat: sim.setup.local_dust_limit_sat,
            remote_dust_limit_sat: sim.setup.remote_dust_limit_sat,
            label: None,
            max_accepted_htlcs: None,
        };
        let mut events = vec![sim.update(ChannelChange::Registered(Box::new(registration)))];
        let remote_commitment = sim.remote_commitment_event(n0)?;
        events.push(sim.update(remote_commitment));
        let local_commitment = sim.local_commitment_event(n0)?;
        events.push(sim.update(local_commitment));
        Ok((sim, events))
    }

    /// The setup this channel was opened with.
    pub fn setup(&self) -> &SimSetup {
        &self.setup
    }

    /// The channel type.
    pub fn channel_type(&self) -> ChannelType {
        self.setup.channel_type
    }

    /// The channel's obscuring factor (the funder's payment basepoint first).
    pub fn obscuring_factor(&self) -> u64 {
        let (l, r) = (self.local.basepoints(), self.remote.basepoints());
        match self.setup.funder {
            Party::Local => obscuring_factor(&l.payment_basepoint, &r.payment_basepoint),
            Party::Remote => obscuring_factor(&r.payment_basepoint, &l.payment_basepoint),
        }
    }

    /// Our current commitment number.
    pub fn local_commitment_number(&self) -> u64 {
        self.local_number
    }

    /// The peer's current commitment number (not counting a pending one).
    pub fn remote_commitment_number(&self) -> u64 {
        self.remote_number
    }

    /// The peer's pending commitment number, between `propose` and `complete`.
    pub fn remote_pending_number(&self) -> Option<u64> {
        self.remote_pending
    }

    /// The state of a party's commitment `n`.
    pub fn state(&self, holder: Party, n: u64) -> Result<&SimState, SimError> {
        let map = match holder {
            Party::Local => &self.local_commitments,
            Party::Remote => &self.remote_commitments,
        };
        map.get(&n).ok_or(SimError::UnknownCommitment {
            holder,
            commitment_number: n,
        })
    }

    /// Queue a new HTLC (applied at the next `propose`/`commit`). Its preimage derives from the
    /// seed. `Outgoing`: we offer it; `Incoming`: the peer does.
    pub fn add_htlc(
        &mut self,
        direction: HtlcDirection,
        amount_msat: u64,
        cltv_expiry: Height,
    ) -> Result<SimHtlc, SimError> {
        let id = *self.next_htlc_id.get(&direction).unwrap_or(&0);
        let key = HtlcKey {
            channel: self.channel_id,
            htlc_id: id,
            direction,
        };
        let mut label = format!("preimage/{direction:?}/{id}");
        label.push_str(&hex::encode(self.channel_id.0));
        let preimage = PaymentPreimage(tagged_hash(&self.setup.seed, &label));
        self.add_htlc_with_preimage(key, amount_msat, cltv_expiry, preimage)
    }

    /// Queue a new HTLC with a given preimage (several HTLCs may share one).
    pub fn add_htlc_with_preimage(
        &mut self,
        key: HtlcKey,
        amount_msat: u64,
        cltv_expiry: Height,
        preimage: PaymentPreimage,
    ) -> Result<SimHtlc, SimError> {
        let offerer = match key.direction {
            HtlcDirection::Outgoing => Party::Local,
            HtlcDirection::Incoming => Party::Remote,
        };
        let after = self.apply(self.latest.clone(), &self.pending)?;
        let available_msat = match offerer {
            Party::Local => after.local_msat,
            Party::Remote => after.remote_msat,
        };
        if amount_msat > available_msat {
            return Err(SimError::InsufficientBalance {
                offerer,
                available_msat,
                amount_msat,
            });
        }
        let next = self.next_htlc_id.entry(key.direction).or_insert(0);
        *next = (*next).max(key.htlc_id.saturating_add(1));
        let htlc = SimHtlc {
            key,
            amount_msat,
            preimage,
            cltv_expiry,
        };
        self.pending.push(Change::Add(htlc.clone()));
        Ok(htlc)
    }

    /// Queue the settlement of a live HTLC: its amount goes to the receiver.
    pub fn settle_htlc(&mut self, key: HtlcKey) -> Result<(), SimError> {
        self.check_live(key)?;
        self.pending.push(Change::Settle(key));
        Ok(())
    }

    /// Queue the failure of a live HTLC: its amount returns to the offerer.
    pub fn fail_htlc(&mut self, key: HtlcKey) -> Result<(), SimError> {
        self.check_live(key)?;
        self.pending.push(Change::Fail(key));
        Ok(())
    }

    /// Queue a fee-rate change. Ignored on a zero-fee commitment channel, whose feerate stays 0
    /// (BOLT 2: `update_fee` is not sent, and ignored if received).
    pub fn update_fee(&mut self, feerate_per_kw: u32) {
        if self.setup.channel_type.zero_fee_commitment() {
            return;
        }
        self.pending.push(Change::Fee(feerate_per_kw));
    }

    fn check_live(&self, key: HtlcKey) -> Result<(), SimError> {
        let state = self.apply(self.latest.clone(), &self.pending)?;
        if state.htlcs.contains_key(&key) {
            Ok(())
        } else {
            Err(SimError::UnknownHtlc(key))
        }
    }

    fn apply(&self, mut state: SimState, changes: &[Change]) -> Result<SimState, SimError> {
        for change in changes {
            match change {
                Change::Add(htlc) => {
                    let balance = match htlc.key.direction {
                        HtlcDirection::Outgoing => &mut state.local_msat,
                        HtlcDirection::Incoming => &mut state.remote_msat,
                    };
                    *balance = balance.checked_sub(htlc.amount_msat).ok_or(
                        SimError::InsufficientBalance {
                            offerer: match htlc.key.direction {
                                HtlcDirection::Outgoing => Party::Local,
                                HtlcDirection::Incoming => Party::Remote,
                            },
                            available_msat: *balance,
                            amount_msat: htlc.amount_msat,
                        },
                    )?;
                    state.htlcs.insert(htlc.key, htlc.clone());
                }
                Change::Settle(key) | Change::Fail(key) => {
                    let htlc = state.htlcs.remove(key).ok_or(SimError::UnknownHtlc(*key))?;
                    let to_local = matches!(
                        (change, key.direction),
                        (Change::Settle(_), HtlcDirection::Incoming)
                            | (Change::Fail(_), HtlcDirection::Outgoing)
                    );
                    let balance = if to_local {
                        &mut state.local_msat
                    } else {
                        &mut state.remote_msat
                    };
                    *balance = balance.saturating_add(htlc.amount_msat);
                }
                Change::Fee(rate) => state.feerate_per_kw = *rate,
            }
        }
        Ok(state)
    }

    /// First half of an update: apply the queued changes and sign the peer's next commitment,
    /// which becomes their *pending* commitment. Emits `RemoteCommitment`.
    pub fn propose(&mut self) -> Result<Vec<Event>, SimError> {
        if self.remote_pending.is_some() {
            return Err(SimError::OutOfOrder(
                "propose while a remote commitment is pending",
            ));
        }
        let state = self.apply(self.latest.clone(), &self.pending)?;
        self.pending.clear();
        let n = self.remote_number + 1;
        self.latest = state.clone();
        self.remote_commitments.insert(n, state);
        self.remote_pending = Some(n);
        let change = self.remote_commitment_event(n)?;
        Ok(vec![self.update(change)])
    }

    /// Second half of an update: the peer signs our next commitment, we revoke our previous one,
    /// and the peer revokes theirs. Emits `LocalCommitment`, `LocalCommitmentRevoked` and
    /// `RevocationSecret`.
    pub fn complete(&mut self) -> Result<Vec<Event>, SimError> {
        let pending = self
            .remote_pending
            .ok_or(SimError::OutOfOrder("complete without propose"))?;
        let state = self.state(Party::Remote, pending)?.clone();
        let old_local = self.local_number;
        let old_remote = self.remote_number;
        self.local_number += 1;
        self.local_commitments.insert(self.local_number, state);
        self.remote_number = pending;
        self.remote_pending = None;
        let mut events = Vec::new();
        let local = self.local_commitment_event(self.local_number)?;
        events.push(self.update(local));
        events.push(self.update(ChannelChange::LocalCommitmentRevoked {
            commitment_number: old_local,
        }));
        let secret = self.remote.per_commitment_secret(old_remote)?;
        events.push(self.update(ChannelChange::RevocationSecret {
            commitment_number: old_remote,
            secret,
        }));
        Ok(events)
    }

    /// A whole update: `propose` then `complete`.
    pub fn commit(&mut self) -> Result<Vec<Event>, SimError> {
        let mut events = self.propose()?;
        events.extend(self.complete()?);
        Ok(events)
    }

    fn update(&mut self, change: ChannelChange) -> Event {
        let update_id = self.next_update_id;
        self.next_update_id += 1;
        Event::ChannelUpdate(ChannelUpdate {
            channel: self.channel_id,
            update_id,
            change,
        })
    }

    /// The BOLT 3 description of a party's commitment `n`.
    pub fn commitment_spec(&self, holder: Party, n: u64) -> Result<CommitmentSpec, SimError> {
        let state = self.state(holder, n)?;
        let (l, r) = (self.local.basepoints(), self.remote.basepoints());
        let (holder_secrets, holder_bp, counter_bp) = match holder {
            Party::Local => (&self.local, &l, &r),
            Party::Remote => (&self.remote, &r, &l),
        };
        let point = holder_secrets.per_commitment_point(n)?;
        let keys = CommitmentKeys::derive(&point, holder_bp, counter_bp).map_err(SimError::Key)?;
        let ours = holder == Party::Local;
        let htlcs = state
            .htlcs
            .values()
            .map(|h| CommitmentHtlc {
                id: h.key.htlc_id,
                offered: (h.key.direction == HtlcDirection::Outgoing) == ours,
                amount_msat: h.amount_msat,
                payment_hash: h.payment_hash(),
                cltv_expiry: h.cltv_expiry,
            })
            .collect();
        let (to_local_msat, to_remote_msat) = if ours {
            (state.local_msat, state.remote_msat)
        } else {
            (state.remote_msat, state.local_msat)
        };
        Ok(CommitmentSpec {
            channel_type: self.setup.channel_type,
            funding_outpoint: self.funding.outpoint,
            funding_sat: self.funding.value_sat,
            commitment_number: n,
            obscuring_factor: self.obscuring_factor(),
            keys,
            local_funding_pubkey: holder_bp.funding_pubkey,
            remote_funding_pubkey: counter_bp.funding_pubkey,
            to_self_delay: if ours {
                self.setup.local_to_self_delay
            } else {
                self.setup.remote_to_self_delay
            },
            dust_limit_sat: if ours {
                self.setup.local_dust_limit_sat
            } else {
                self.setup.remote_dust_limit_sat
            },
            feerate_per_kw: state.feerate_per_kw,
            to_local_msat,
            to_remote_msat,
            holder_is_funder: self.setup.funder == holder,
            htlcs,
        })
    }
}

fn tagged_hash(seed: &[u8; 32], label: &str) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(seed);
    engine.input(label.as_bytes());
    sha256::Hash::from_engine(engine).to_byte_array()
}

#[cfg(test)]
mod tests;

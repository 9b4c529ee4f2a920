//! What the engine knows about one channel: its static facts and its live commitments, enough to
//! rebuild every commitment transaction either party can broadcast.

use bitcoin::ecdsa::Signature;
use bitcoin::secp256k1::PublicKey;
use bitcoin::{OutPoint, ScriptBuf, Txid};
use serde::{Deserialize, Serialize};

use crate::bolt3::commitment::{
    build_commitment, obscuring_factor, BuiltCommitment, CommitmentError, CommitmentHtlc,
    CommitmentSpec,
};
use crate::bolt3::keys::KeyError;
use crate::bolt3::shachain::SecretStore;
use crate::bolt3::{ChannelBasepoints, ChannelType, CommitmentKeys};
use crate::event::{ChannelRegistration, CommitmentHtlcInfo, FundingOutput, MaxAcceptedHtlcs};
use crate::types::{ChannelId, HtlcDirection, Party};

/// The static facts of a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// The channel.
    pub id: ChannelId,
    /// The commitment format.
    pub channel_type: ChannelType,
    /// Every funding output a close may spend.
    pub funding: Vec<FundingOutput>,
    /// Who funded the channel.
    pub funder: Party,
    /// Our basepoints.
    pub local_basepoints: ChannelBasepoints,
    /// The peer's basepoints.
    pub remote_basepoints: ChannelBasepoints,
    /// The CSV delay on our outputs.
    pub local_to_self_delay: u16,
    /// The CSV delay on the peer's outputs.
    pub remote_to_self_delay: u16,
    /// Our dust limit.
    pub local_dust_limit_sat: u64,
    /// The peer's dust limit.
    pub remote_dust_limit_sat: u64,
    /// The obscuring factor of commitment numbers (funder's payment basepoint first).
    pub obscuring_factor: u64,
    /// Both sides' shutdown scripts, once negotiated.
    pub shutdown: Option<ShutdownScripts>,
    /// A label for reports.
    pub label: Option<String>,
    /// Both sides' `max_accepted_htlcs`, when the node registered them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_accepted_htlcs: Option<MaxAcceptedHtlcs>,
}

/// Both sides' shutdown scripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownScripts {
    /// Ours.
    pub local: ScriptBuf,
    /// The peer's.
    pub remote: ScriptBuf,
}

impl ChannelInfo {
    /// The facts of a newly registered channel.
    pub fn from_registration(id: ChannelId, r: &ChannelRegistration) -> ChannelInfo {
        let (opener, accepter) = match r.funder {
            Party::Local => (&r.local_basepoints, &r.remote_basepoints),
            Party::Remote => (&r.remote_basepoints, &r.local_basepoints),
        };
        ChannelInfo {
            id,
            channel_type: r.channel_type,
            funding: r.funding.clone(),
            funder: r.funder,
            local_basepoints: r.local_basepoints,
            remote_basepoints: r.remote_basepoints,
            local_to_self_delay: r.local_to_self_delay,
            remote_to_self_delay: r.remote_to_self_delay,
            local_dust_limit_sat: r.local_dust_limit_sat,
            remote_dust_limit_sat: r.remote_dust_limit_sat,
            obscuring_factor: obscuring_factor(
                &opener.payment_basepoint,
                &accepter.payment_basepoint,
            ),
            shutdown: None,
            label: r.label.clone(),
            max_accepted_htlcs: r.max_accepted_htlcs,
        }
    }

    /// The funding output with this outpoint, if it is one of the channel's.
    pub fn funding_output(&self, outpoint: &OutPoint) -> Option<&FundingOutput> {
        self.funding.iter().find(|f| f.outpoint == *outpoint)
    }

    /// The BOLT 3 description of a commitment held by `holder`, spending `funding`.
    pub fn spec(
        &self,
        holder: Party,
        commitment: &CommitmentRecord,
        funding: &FundingOutput,
    ) -> Result<CommitmentSpec, KeyError> {
        let (holder_bp, counter_bp) = match holder {
            Party::Local => (&self.local_basepoints, &self.remote_basepoints),
            Party::Remote => (&self.remote_basepoints, &self.local_basepoints),
        };
        let keys = CommitmentKeys::derive(&commitment.per_commitment_point, holder_bp, counter_bp)?;
        let ours = holder == Party::Local;
        Ok(CommitmentSpec {
            channel_type: self.channel_type,
            funding_outpoint: funding.outpoint,
            funding_sat: funding.value_sat,
            commitment_number: commitment.number,
            obscuring_factor: self.obscuring_factor,
            keys,
            local_funding_pubkey: holder_bp.funding_pubkey,
            remote_funding_pubkey: counter_bp.funding_pubkey,
            to_self_delay: if ours {
                self.local_to_self_delay
            } else {
                self.remote_to_self_delay
            },
            dust_limit_sat: if ours {
                self.local_dust_limit_sat
            } else {
                self.remote_dust_limit_sat
            },
            feerate_per_kw: commitment.feerate_per_kw,
            to_local_msat: commitment.to_local_msat,
            to_remote_msat: commitment.to_remote_msat,
            holder_is_funder: self.funder == holder,
            htlcs: commitment
                .htlcs
                .iter()
                .map(|h| h.as_commitment_htlc(holder))
                .collect(),
        })
    }

    /// Rebuild a commitment held by `holder` on `funding`.
    pub fn build(
        &self,
        holder: Party,
        commitment: &CommitmentRecord,
        funding: &FundingOutput,
    ) -> Result<(CommitmentSpec, BuiltCommitment), RebuildError> {
        let spec = self
            .spec(holder, commitment, funding)
            .map_err(RebuildError::Key)?;
        let built = build_commitment(&spec).map_err(RebuildError::Commitment)?;
        Ok((spec, built))
    }
}

/// Why a commitment could not be rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebuildError {
    /// Its keys could not be derived.
    Key(KeyError),
    /// BOLT 3 refused the commitment.
    Commitment(CommitmentError),
}

impl std::fmt::Display for RebuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RebuildError::Key(e) => write!(f, "cannot derive the commitment's keys: {e}"),
            RebuildError::Commitment(e) => write!(f, "cannot build the commitment: {e}"),
        }
    }
}

impl std::error::Error for RebuildError {}

impl CommitmentHtlcInfo {
    /// This HTLC as BOLT 3 sees it on a commitment held by `holder`.
    pub fn as_commitment_htlc(&self, holder: Party) -> CommitmentHtlc {
        // Our outgoing HTLCs are offered on our commitment and received on theirs.
        let offered = (self.direction == HtlcDirection::Outgoing) == (holder == Party::Local);
        CommitmentHtlc {
            id: self.htlc_id,
            offered,
            amount_msat: self.amount_msat,
            payment_hash: self.payment_hash,
            cltv_expiry: self.cltv_expiry,
        }
    }
}

/// A commitment the engine knows, enough to rebuild it (balances from its holder's view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecord {
    /// Its number.
    pub number: u64,
    /// Its holder's per-commitment point.
    pub per_commitment_point: PublicKey,
    /// Its fee rate.
    pub feerate_per_kw: u32,
    /// The holder's balance, before fees.
    pub to_local_msat: u64,
    /// The counterparty's balance, before fees.
    pub to_remote_msat: u64,
    /// Every HTLC on it, with its output index (`None`: trimmed).
    pub htlcs: Vec<CommitmentHtlcInfo>,
    /// Its txid on each funding output, in the order of [`ChannelInfo::funding`].
    pub txids: Vec<Txid>,
}

impl CommitmentRecord {
    /// A record of a commitment whose txids are not computed yet.
    pub fn new(
        number: u64,
        per_commitment_point: PublicKey,
        feerate_per_kw: u32,
        (to_local_msat, to_remote_msat): (u64, u64),
        htlcs: Vec<CommitmentHtlcInfo>,
    ) -> CommitmentRecord {
        CommitmentRecord {
            number,
            per_commitment_point,
            feerate_per_kw,
            to_local_msat,
            to_remote_msat,
            htlcs,
            txids: Vec::new(),
        }
    }
}

/// Our latest commitment, with the peer's signatures that make it broadcastable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCommitmentRecord {
    /// The commitment.
    pub commitment: CommitmentRecord,
    /// The peer's signature of it.
    pub commitment_signature: Signature,
    /// The peer's HTLC signatures, in output order.
    pub htlc_signatures: Vec<Signature>,
    /// The index in [`ChannelInfo::funding`] of the funding output the peer signed it on.
    pub funding_index: usize,
}

/// The commitments that can still confirm, and what we know of revoked ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitments {
    /// Our latest commitment.
    pub local: Option<LocalCommitmentRecord>,
    /// The highest number of ours we have revoked (never broadcast it or any lower).
    pub local_revoked_through: Option<u64>,
    /// The peer's current commitment.
    pub remote_current: Option<CommitmentRecord>,
    /// The peer's pending commitment (signed by us, its predecessor not yet revoked).
    pub remote_pending: Option<CommitmentRecord>,
    /// The peer's revealed per-commitment secrets (compact shachain store).
    pub remote_secrets: SecretStore,
    /// Set when the peer proved it has newer state than ours.
    pub data_loss: Option<DataLoss>,
}

/// What `channel_reestablish` told us when we had lost data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLoss {
    /// The peer's `next_commitment_number`.
    pub remote_next_commitment_number: u64,
    /// The peer's current per-commitment point, if sent.
    pub remote_per_commitment_point: Option<PublicKey>,
}

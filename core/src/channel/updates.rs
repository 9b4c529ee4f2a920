//! Applying a channel update: validate it against what the engine knows, rebuild commitments with
//! BOLT 3, and refuse anything that does not match. Pure: the caller persists the result and only
//! then acknowledges it with `UpdatePersisted`.

use bitcoin::secp256k1::Message;
use bitcoin::Amount;

use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
use crate::bolt3::htlc_tx::{
    htlc_txs_for_commitment, htlc_witness_script, remote_htlc_sighash_type,
};
use crate::bolt3::shachain::{checked_secret_index, ShachainError};
use crate::bolt3::{keys, scripts, secp, sign, UnsupportedChannelType};
use crate::event::{
    ChannelChange, ChannelRegistration, ChannelUpdate, CommitmentHtlcInfo, FundingOutput,
    LocalCommitment, RemoteCommitment,
};
use crate::types::{HtlcDirection, Party};

use crate::commitments::{
    ChannelInfo, CommitmentRecord, Commitments, DataLoss, LocalCommitmentRecord, ShutdownScripts,
};

/// A channel's static facts and commitments, as channel updates build them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelData {
    /// Static facts.
    pub info: ChannelInfo,
    /// Live commitments and revealed secrets.
    pub commitments: Commitments,
    /// The last applied `update_id`.
    pub last_update_id: u64,
}

/// What applying an update produced besides the new data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The update was already applied (a repeat): nothing changed.
    Repeat,
    /// Applied; `revoked` is the peer's commitment it revoked, whose HTLC data goes to the
    /// append-only log (read only on a breach).
    Changed {
        /// The revoked remote commitment, if this update revoked one.
        revoked: Option<CommitmentRecord>,
    },
}

/// Why an update was refused. The channel is unchanged after a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// `update_id` skipped ahead.
    Gap {
        /// The id expected.
        expected: u64,
        /// The id given.
        got: u64,
    },
    /// An update for a channel that was never registered.
    NotRegistered,
    /// A second registration.
    AlreadyRegistered,
    /// A funding set with no outputs.
    NoFunding,
    /// A new funding set leaves out the funding output our latest commitment is signed on: that
    /// commitment could no longer be broadcast (send a commitment signed on a remaining funding
    /// output first).
    SignedFundingRemoved {
        /// The funding output our latest commitment spends.
        outpoint: bitcoin::OutPoint,
    },
    /// A commitment number out of sequence.
    UnexpectedCommitmentNumber {
        /// Whose commitment.
        holder: Party,
        /// The number expected.
        expected: u64,
        /// The number given.
        got: u64,
    },
    /// A revocation of something that is not revocable now.
    UnexpectedRevocation {
        /// The number given.
        commitment_number: u64,
    },
    /// The commitment could not be rebuilt with BOLT 3.
    Rebuild(String),
    /// An HTLC's output index differs from the rebuilt commitment's.
    OutputIndexMismatch {
        /// The HTLC id.
        htlc_id: u64,
        /// The index given.
        given: Option<u32>,
        /// The index BOLT 3 gives.
        rebuilt: Option<u32>,
    },
    /// The peer's commitment signature does not verify.
    BadCommitmentSignature,
    /// The number of HTLC signatures differs from the number of untrimmed HTLCs.
    HtlcSignatureCount {
        /// Signatures given.
        given: usize,
        /// Untrimmed HTLCs.
        expected: usize,
    },
    /// An HTLC signature does not verify.
    BadHtlcSignature {
        /// Its position in output order.
        index: usize,
    },
    /// A revealed secret does not match the commitment's point.
    SecretDoesNotMatchPoint {
        /// The commitment number.
        commitment_number: u64,
    },
    /// The secret store refused the secret.
    Shachain(ShachainError),
    /// A registration's `max_accepted_htlcs` above the channel type's limit (BOLT 2
    /// `open_channel`: 114 with zero-fee commitments, 483 otherwise).
    MaxAcceptedHtlcsAboveLimit {
        /// Whose value.
        party: Party,
        /// The value given.
        value: u16,
        /// The channel type's limit.
        limit: u16,
    },
    /// A zero-fee commitment carrying more HTLCs one way than the receiving side accepts (its
    /// registered `max_accepted_htlcs`, else 114): it could exceed TRUC's 10,000 vB.
    TooManyHtlcs {
        /// Whose commitment.
        holder: Party,
        /// Which way (from our node's point of view).
        direction: HtlcDirection,
        /// How many it carries that way.
        count: usize,
        /// The most allowed.
        max: u16,
    },
    /// A registration of a channel type the engine cannot resolve on chain yet (simple
    /// taproot): refused rather than half-handled.
    ChannelTypeNotResolved(UnsupportedChannelType),
}

impl std::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateError::Gap { expected, got } => write!(f, "update id gap: expected {expected}, got {got}"),
            UpdateError::NotRegistered => f.write_str("channel is not registered"),
            UpdateError::AlreadyRegistered => f.write_str("channel is already registered"),
            UpdateError::NoFunding => f.write_str("funding set is empty"),
            UpdateError::SignedFundingRemoved { outpoint } => write!(
                f,
                "the new funding set leaves out {outpoint}, which our latest commitment spends"
            ),
            UpdateError::UnexpectedCommitmentNumber { holder, expected, got } => {
                let whose = if *holder == Party::Local { "local" } else { "remote" };
                write!(f, "unexpected {whose} commitment number {got}, expected {expected}")
            }
            UpdateError::UnexpectedRevocation { commitment_number } => {
                write!(f, "commitment {commitment_number} cannot be revoked now")
            }
            UpdateError::Rebuild(e) => write!(f, "commitment does not rebuild: {e}"),
            UpdateError::OutputIndexMismatch { htlc_id, given, rebuilt } => write!(
                f,
                "htlc {htlc_id} output index {given:?} differs from the rebuilt commitment's {rebuilt:?}"
            ),
            UpdateError::BadCommitmentSignature => f.write_str("peer's commitment signature does not verify"),
            UpdateError::HtlcSignatureCount { given, expected } => {
                write!(f, "{given} htlc signatures for {expected} untrimmed htlcs")
            }
            UpdateError::BadHtlcSignature { index } => write!(f, "htlc signature {index} does not verify"),
            UpdateError::SecretDoesNotMatchPoint { commitment_number } => write!(
                f,
                "revealed secret does not match the point of commitment {commitment_number}"
            ),
            UpdateError::Shachain(e) => write!(f, "revealed secret refused: {e}"),
            UpdateError::MaxAcceptedHtlcsAboveLimit { party, value, limit } => {
                let whose = if *party == Party::Local { "our" } else { "the peer's" };
                write!(f, "{whose} max_accepted_htlcs {value} is above this channel type's limit of {limit}")
            }
            UpdateError::TooManyHtlcs { holder, direction, count, max } => {
                let whose = if *holder == Party::Local { "local" } else { "remote" };
                let way = if *direction == HtlcDirection::Incoming { "incoming" } else { "outgoing" };
                write!(f, "{whose} zero-fee commitment carries {count} {way} htlcs, more than the {max} allowed")
            }
            UpdateError::ChannelTypeNotResolved(e) => write!(f, "registration refused: {e}"),
        }
    }
}

impl std::error::Error for UpdateError {}

/// Check an update's id against the channel's last one: `Ok(true)` to apply, `Ok(false)` for a
/// repeat, an error for a gap.
pub fn check_sequence(
    data: Option<&ChannelData>,
    update: &ChannelUpdate,
) -> Result<bool, UpdateError> {
    match (data, &update.change) {
        (None, ChannelChange::Registered(_)) => Ok(true),
        (None, _) => Err(UpdateError::NotRegistered),
        (Some(d), _) if update.update_id <= d.last_update_id => Ok(false),
        (Some(d), _) if update.update_id != d.last_update_id + 1 => Err(UpdateError::Gap {
            expected: d.last_update_id + 1,
            got: update.update_id,
        }),
        (Some(_), ChannelChange::Registered(_)) => Err(UpdateError::AlreadyRegistered),
        (Some(_), _) => Ok(true),
    }
}

/// Apply `update` to a channel. On success returns the new data (the caller replaces the old
/// one only once it is persisted); on error nothing changes.
pub fn apply_update(
    data: Option<&ChannelData>,
    update: &ChannelUpdate,
) -> Result<(Option<ChannelData>, Applied), UpdateError> {
    if !check_sequence(data, update)? {
        return Ok((data.cloned(), Applied::Repeat));
    }
    let mut next = match (data, &update.change) {
        (None, ChannelChange::Registered(r)) => {
            if r.funding.is_empty() {
                return Err(UpdateError::NoFunding);
            }
            r.channel_type
                .engine_support()
                .map_err(UpdateError::ChannelTypeNotResolved)?;
            check_max_accepted_htlcs(r)?;
            ChannelData {
                info: ChannelInfo::from_registration(update.channel, r),
                commitments: Commitments::default(),
                last_update_id: update.update_id,
            }
        }
        (Some(d), _) => d.clone(),
        (None, _) => return Err(UpdateError::NotRegistered),
    };
    let mut revoked = None;
    match &update.change {
        ChannelChange::Registered(_) => {}
        ChannelChange::FundingChanged { funding } => {
            if funding.is_empty() {
                return Err(UpdateError::NoFunding);
            }
            // Our latest commitment is signed on one funding output, kept by position: follow
            // that output to its position in the new set.
            if let Some(local) = next.commitments.local.as_mut() {
                let signed_on = next.info.funding.get(local.funding_index).copied();
                if let Some(signed_on) = signed_on {
                    local.funding_index = funding.iter().position(|f| *f == signed_on).ok_or(
                        UpdateError::SignedFundingRemoved {
                            outpoint: signed_on.outpoint,
                        },
                    )?;
                }
            }
            next.info.funding = funding.clone();
            refresh_txids(&mut next)?;
        }
        ChannelChange::LocalCommitment(c) => apply_local(&mut next, c)?,
        ChannelChange::RemoteCommitment(c) => apply_remote(&mut next, c)?,
        ChannelChange::LocalCommitmentRevoked { commitment_number } => {
            let current = next.commitments.local.as_ref().map(|l| l.commitment.number);
            let already = next.commitments.local_revoked_through;
            let ok = current.is_some_and(|c| *commitment_number < c)
                && already.is_none_or(|a| *commitment_number > a);
            if !ok {
                return Err(UpdateError::UnexpectedRevocation {
                    commitment_number: *commitment_number,
                });
            }
            next.commitments.local_revoked_through = Some(*commitment_number);
        }
        ChannelChange::RevocationSecret {
            commitment_number,
            secret,
        } => {
            revoked = Some(apply_revocation(&mut next, *commitment_number, secret)?);
        }
        ChannelChange::ShutdownScripts { local, remote } => {
            next.info.shutdown = Some(ShutdownScripts {
                local: local.clone(),
                remote: remote.clone(),
            });
        }
        ChannelChange::DataLossDetected {
            remote_next_commitment_number,
            remote_per_commitment_point,
        } => {
            next.commitments.data_loss = Some(DataLoss {
                remote_next_commitment_number: *remote_next_commitment_number,
                remote_per_commitment_point: *remote_per_commitment_point,
            });
        }
    }
    next.last_update_id = update.update_id;
    Ok((Some(next), Applied::Changed { revoked }))
}

/// Rebuild a commitment on every funding output; the txids, in funding order.
fn rebuild_all(
    info: &ChannelInfo,
    holder: Party,
    record: &CommitmentRecord,
) -> Result<Vec<(FundingOutput, CommitmentSpec, BuiltCommitment)>, UpdateError> {
    info.funding
        .iter()
        .map(|f| {
            let (spec, built) = info
                .build(holder, record, f)
                .map_err(|e| UpdateError::Rebuild(e.to_string()))?;
            Ok((*f, spec, built))
        })
        .collect()
}

fn refresh_txids(data: &mut ChannelData) -> Result<(), UpdateError> {
    let info = data.info.clone();
    let c = &mut data.commitments;
    if let Some(local) = c.local.as_mut() {
        local.commitment.txids = txids(&rebuild_all(&info, Party::Local, &local.commitment)?);
    }
    for remote in [c.remote_current.as_mut(), c.remote_pending.as_mut()]
        .into_iter()
        .flatten()
    {
        remote.txids = txids(&rebuild_all(&info, Party::Remote, remote)?);
    }
    Ok(())
}

fn txids(built: &[(FundingOutput, CommitmentSpec, BuiltCommitment)]) -> Vec<bitcoin::Txid> {
    built.iter().map(|(_, _, b)| b.tx.compute_txid()).collect()
}

fn check_output_indices(
    holder: Party,
    htlcs: &[CommitmentHtlcInfo],
    built: &BuiltCommitment,
) -> Result<(), UpdateError> {
    for h in htlcs {
        let rebuilt = built.htlc_output_index(h.as_commitment_htlc(holder).offered, h.htlc_id);
        if rebuilt != h.output_index {
            return Err(UpdateError::OutputIndexMismatch {
                htlc_id: h.htlc_id,
                given: h.output_index,
                rebuilt,
            });
        }
    }
    Ok(())
}

/// A registration's `max_accepted_htlcs` within its channel type's limit (BOLT 2 `open_channel`:
/// the receiver fails the channel if `zero_fee_commitments` and `max_accepted_htlcs` is greater
/// than 114, or without it greater than 483).
fn check_max_accepted_htlcs(r: &ChannelRegistration) -> Result<(), UpdateError> {
    let Some(m) = r.max_accepted_htlcs else {
        return Ok(());
    };
    let limit = r.channel_type.max_accepted_htlcs_limit();
    for (party, value) in [(Party::Local, m.local), (Party::Remote, m.remote)] {
        if value > limit {
            return Err(UpdateError::MaxAcceptedHtlcsAboveLimit {
                party,
                value,
                limit,
            });
        }
    }
    Ok(())
}

/// A zero-fee commitment's HTLCs each way within what the receiving side accepts: incoming
/// within our `max_accepted_htlcs`, outgoing within the peer's (114 each when not registered),
/// trimmed ones included — so the commitment stays within TRUC's 10,000 vB (BOLT 2, BOLT 5
/// "Limitations of v3 transactions").
fn check_htlc_count(
    info: &ChannelInfo,
    holder: Party,
    htlcs: &[CommitmentHtlcInfo],
) -> Result<(), UpdateError> {
    if !info.channel_type.zero_fee_commitment() {
        return Ok(());
    }
    let limit = info.channel_type.max_accepted_htlcs_limit();
    let (incoming, outgoing) = info
        .max_accepted_htlcs
        .map_or((limit, limit), |m| (m.local, m.remote));
    for (direction, max) in [
        (HtlcDirection::Incoming, incoming),
        (HtlcDirection::Outgoing, outgoing),
    ] {
        let count = htlcs.iter().filter(|h| h.direction == direction).count();
        if count > usize::from(max) {
            return Err(UpdateError::TooManyHtlcs {
                holder,
                direction,
                count,
                max,
            });
        }
    }
    Ok(())
}

fn apply_local(data: &mut ChannelData, c: &LocalCommitment) -> Result<(), UpdateError> {
    check_htlc_count(&data.info, Party::Local, &c.htlcs)?;
    let expected = data
        .commitments
        .local
        .as_ref()
        .map_or(c.commitment_number, |l| l.commitment.number + 1);
    if c.commitment_number != expected {
        return Err(UpdateError::UnexpectedCommitmentNumber {
            holder: Party::Local,
            expected,
            got: c.commitment_number,
        });
    }
    let mut record = CommitmentRecord::new(
        c.commitment_number,
        c.per_commitment_point,
        c.feerate_per_kw,
        (c.to_local_msat, c.to_remote_msat),
        c.htlcs.clone(),
    );
    let rebuilt = rebuild_all(&data.info, Party::Local, &record)?;
    // The peer signs our commitment on one funding output; it must verify on one of them.
    let mut verified = None;
    for (index, (funding, spec, built)) in rebuilt.iter().enumerate() {
        check_output_indices(Party::Local, &c.htlcs, built)?;
        if verified.is_none() && verify_commitment_signature(&data.info, funding, built, c) {
            verify_htlc_signatures(&data.info, spec, built, c)?;
            verified = Some(index);
        }
    }
    let funding_index = verified.ok_or(UpdateError::BadCommitmentSignature)?;
    record.txids = txids(&rebuilt);
    data.commitments.local = Some(LocalCommitmentRecord {
        commitment: record,
        commitment_signature: c.commitment_signature,
        htlc_signatures: c.htlc_signatures.clone(),
        funding_index,
    });
    Ok(())
}

fn verify_commitment_signature(
    info: &ChannelInfo,
    funding: &FundingOutput,
    built: &BuiltCommitment,
    c: &LocalCommitment,
) -> bool {
    let script = scripts::funding_script(
        &info.local_basepoints.funding_pubkey,
        &info.remote_basepoints.funding_pubkey,
    );
    let Ok(msg) = sign::p2wsh_sighash(
        &built.tx,
        0,
        &script,
        Amount::from_sat(funding.value_sat),
        c.commitment_signature.sighash_type,
    ) else {
        return false;
    };
    c.commitment_signature.sighash_type == bitcoin::sighash::EcdsaSighashType::All
        && verify(
            &msg,
            &c.commitment_signature.signature,
            &info.remote_basepoints.funding_pubkey,
        )
}

fn verify(
    msg: &Message,
    sig: &bitcoin::secp256k1::ecdsa::Signature,
    key: &bitcoin::secp256k1::PublicKey,
) -> bool {
    secp().verify_ecdsa(msg, sig, key).is_ok()
}

fn verify_htlc_signatures(
    info: &ChannelInfo,
    spec: &CommitmentSpec,
    built: &BuiltCommitment,
    c: &LocalCommitment,
) -> Result<(), UpdateError> {
    let txs = htlc_txs_for_commitment(built, spec);
    if txs.len() != c.htlc_signatures.len() {
        return Err(UpdateError::HtlcSignatureCount {
            given: c.htlc_signatures.len(),
            expected: txs.len(),
        });
    }
    let sighash = remote_htlc_sighash_type(info.channel_type);
    let remote_htlc_key = spec.keys.remote_htlc_pubkey;
    for (index, ((htlc, tx), sig)) in txs.iter().zip(&c.htlc_signatures).enumerate() {
        let script = htlc_witness_script(htlc, &spec.keys, spec.channel_type);
        let value = Amount::from_sat(htlc.amount_msat / 1000);
        let ok = sig.sighash_type == sighash
            && sign::p2wsh_sighash(tx, 0, &script, value, sighash)
                .is_ok_and(|msg| verify(&msg, &sig.signature, &remote_htlc_key));
        if !ok {
            return Err(UpdateError::BadHtlcSignature { index });
        }
    }
    Ok(())
}

fn apply_remote(data: &mut ChannelData, c: &RemoteCommitment) -> Result<(), UpdateError> {
    check_htlc_count(&data.info, Party::Remote, &c.htlcs)?;
    let commitments = &data.commitments;
    let expected = match (&commitments.remote_current, &commitments.remote_pending) {
        (_, Some(p)) => p.number + 1, // refused below: one pending at a time
        (Some(cur), None) => cur.number + 1,
        (None, None) => c.commitment_number,
    };
    if commitments.remote_pending.is_some() || c.commitment_number != expected {
        return Err(UpdateError::UnexpectedCommitmentNumber {
            holder: Party::Remote,
            expected,
            got: c.commitment_number,
        });
    }
    let mut record = CommitmentRecord::new(
        c.commitment_number,
        c.per_commitment_point,
        c.feerate_per_kw,
        (c.to_local_msat, c.to_remote_msat),
        c.htlcs.clone(),
    );
    let rebuilt = rebuild_all(&data.info, Party::Remote, &record)?;
    for (_, _, built) in &rebuilt {
        check_output_indices(Party::Remote, &c.htlcs, built)?;
    }
    record.txids = txids(&rebuilt);
    if data.commitments.remote_current.is_none() {
        // The very first remote commitment is current at once: there is nothing to revoke.
        data.commitments.remote_current = Some(record);
    } else {
        data.commitments.remote_pending = Some(record);
    }
    Ok(())
}

fn apply_revocation(
    data: &mut ChannelData,
    n: u64,
    secret: &[u8; 32],
) -> Result<CommitmentRecord, UpdateError> {
    let current = data.commitments.remote_current.clone();
    let Some(current) =
        current.filter(|c| c.number == n && data.commitments.remote_pending.is_some())
    else {
        return Err(UpdateError::UnexpectedRevocation {
            commitment_number: n,
        });
    };
    let point =
        keys::per_commitment_point(secret).map_err(|_| UpdateError::SecretDoesNotMatchPoint {
            commitment_number: n,
        })?;
    if point != current.per_commitment_point {
        return Err(UpdateError::SecretDoesNotMatchPoint {
            commitment_number: n,
        });
    }
    let index = checked_secret_index(n).ok_or(UpdateError::UnexpectedRevocation {
        commitment_number: n,
    })?;
    data.commitments
        .remote_secrets
        .insert(index, *secret)
        .map_err(UpdateError::Shachain)?;
    data.commitments.remote_current = data.commitments.remote_pending.take();
    Ok(current)
}

#[cfg(test)]
mod tests;

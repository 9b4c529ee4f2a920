//! The setup of a simulation: the wallet's coins and the channel's funding on the chain, the
//! `sim` channel on that funding with the scenario's HTLCs.

use bitcoin::{Amount, FeeRate, OutPoint, TxOut};
use contractcourt_core::bolt3::scripts::funding_script;
use contractcourt_core::event::Event;
use contractcourt_core::sim::{PartySecrets, SimChannel, SimHtlc, SimSetup};
use contractcourt_core::types::{HtlcDirection, HtlcKey};

use super::scenario::{self, Direction};
use super::state::Funding;
use super::{err, Scenario, SimError};
use crate::chain::embedded::{EmbeddedChain, TestWallet};

/// The fund-channel part of the setup on `chain`: the wallet's coins, one funding transaction
/// paying every channel's 2-of-2 output (in the order of `views`), and the block that confirms
/// it (the scenario's height 0).
pub(super) fn fund_channels(
    views: &[Scenario],
    chain: &mut EmbeddedChain,
    wallet: &TestWallet,
) -> Result<Vec<Funding>, SimError> {
    let miner = wallet.script_pubkey().to_owned();
    chain
        .mine_blocks(101, &miner)
        .map_err(err("mining the wallet's coins"))?;
    let outputs: Vec<TxOut> = views
        .iter()
        .map(|view| {
            let setup = sim_setup(view);
            let local = PartySecrets::from_seed(&setup.seed, "local").basepoints();
            let remote = PartySecrets::from_seed(&setup.seed, "remote").basepoints();
            TxOut {
                value: Amount::from_sat(view.capacity_sat),
                script_pubkey: funding_script(&local.funding_pubkey, &remote.funding_pubkey)
                    .to_p2wsh(),
            }
        })
        .collect();
    let funding_tx = wallet
        .send(chain, outputs.clone(), FeeRate::from_sat_per_vb_u32(2))
        .map_err(err("funding the channel from the test wallet"))?;
    let funding_txid = chain
        .submit(funding_tx.clone())
        .map_err(err("the mempool refused the funding transaction"))?;
    chain
        .mine_blocks(1, &miner)
        .map_err(err("mining the funding transaction"))?;
    let start = chain.height();
    outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            // `send` keeps the outputs in order (change last).
            match funding_tx.output.get(i) {
                Some(o) if o == out => Ok(Funding {
                    outpoint: OutPoint {
                        txid: funding_txid,
                        vout: i as u32,
                    },
                    start,
                }),
                _ => Err(SimError(
                    "the funding transaction has no funding output".into(),
                )),
            }
        })
        .collect()
}

/// Our and the peer's shutdown scripts: the test wallet's and the peer's wallet's.
pub(super) fn shutdown_scripts(scenario: &Scenario) -> (bitcoin::ScriptBuf, bitcoin::ScriptBuf) {
    (
        TestWallet::new(scenario.seed).script_pubkey().to_owned(),
        TestWallet::new(super::PEER_WALLET_SEED)
            .script_pubkey()
            .to_owned(),
    )
}

/// The `sim` channel's parameters (without the funding outpoint).
pub(super) fn sim_setup(scenario: &Scenario) -> SimSetup {
    let mut setup = SimSetup::new(scenario.seed, scenario.core_channel_type());
    setup.funding_sat = scenario.capacity_sat;
    setup.local_balance_msat = scenario.local_balance_sat.saturating_mul(1000);
    setup.local_to_self_delay = scenario.to_self_delay;
    setup.remote_to_self_delay = scenario.to_self_delay;
    setup.local_dust_limit_sat = scenario.dust_limit_sat;
    setup.remote_dust_limit_sat = scenario.dust_limit_sat;
    setup.feerate_per_kw = scenario.commitment_feerate_per_kw;
    setup
}

/// The `sim` channel on `funding`, its HTLCs added and committed, with the channel events a
/// node would have sent the engine meanwhile, in order. Deterministic: a resumed run rebuilds
/// the very same channel.
pub(super) type BuiltChannel = (SimChannel, Vec<Event>, Vec<(SimHtlc, usize)>);

pub(super) fn sim_channel(
    scenario: &Scenario,
    funding: &Funding,
    earlier: &[Vec<(SimHtlc, usize)>],
) -> Result<BuiltChannel, SimError> {
    let mut setup = sim_setup(scenario);
    setup.funding_outpoint = Some(funding.outpoint);
    let (mut simc, mut events) = SimChannel::open(setup).map_err(err("opening the channel"))?;
    let mut htlcs = Vec::new();
    for (i, h) in scenario.htlcs.iter().enumerate() {
        let dir = match h.direction {
            Direction::Incoming => HtlcDirection::Incoming,
            Direction::Outgoing => HtlcDirection::Outgoing,
        };
        let expiry = funding.start.saturating_add(h.cltv_expiry);
        if expiry >= scenario::LOCKTIME_THRESHOLD {
            return Err(SimError(format!(
                "htlc {i}: cltv_expiry {} from start height {} is {expiry}, at or above {}: a time, not a height",
                h.cltv_expiry,
                funding.start,
                scenario::LOCKTIME_THRESHOLD
            )));
        }
        // A forwarded HTLC shares the preimage of the incoming one it came from.
        let from = h.forwarded_from.and_then(|f| {
            earlier
                .get(f.channel)?
                .iter()
                .find(|(_, j)| *j == f.htlc)
                .map(|(htlc, _)| htlc.preimage)
        });
        let added = match from {
            Some(preimage) => {
                let key = HtlcKey {
                    channel: simc.channel_id,
                    htlc_id: htlcs
                        .iter()
                        .filter(|(x, _): &&(SimHtlc, usize)| x.key.direction == dir)
                        .count() as u64,
                    direction: dir,
                };
                simc.add_htlc_with_preimage(key, h.amount_msat, expiry, preimage)
            }
            None => simc.add_htlc(dir, h.amount_msat, expiry),
        }
        .map_err(|e| SimError(format!("htlc {i}: {e}")))?;
        htlcs.push((added, i));
    }
    if !scenario.htlcs.is_empty() {
        events.extend(updates_of_close_kind(scenario, &mut simc)?);
    }
    if scenario.close.kind == scenario::CloseKind::Cooperative {
        let (local, remote) = shutdown_scripts(scenario);
        events.push(simc.shutdown(local, remote));
    }
    Ok((simc, events, htlcs))
}

/// Commit the scenario's HTLCs as its kind of close needs, returning the events the engine is
/// given: every update (current, revoked), the HTLCs only on the peer's pending commitment
/// (pending), one more update after them so the commitment with HTLCs is revoked
/// (revoked_with_htlcs), or none of them (data loss: the engine lost that update).
fn updates_of_close_kind(
    scenario: &Scenario,
    simc: &mut SimChannel,
) -> Result<Vec<Event>, SimError> {
    use scenario::CloseKind;
    match scenario.close.kind {
        CloseKind::Current | CloseKind::Revoked | CloseKind::Cooperative => {
            simc.commit().map_err(err("committing the htlcs"))
        }
        CloseKind::Pending => simc.propose().map_err(err("proposing the htlcs")),
        CloseKind::RevokedWithHtlcs => {
            let mut events = simc.commit().map_err(err("committing the htlcs"))?;
            simc.update_fee(scenario.commitment_feerate_per_kw);
            events.extend(simc.commit().map_err(err("committing a fee update"))?);
            Ok(events)
        }
        CloseKind::DataLoss => {
            let backup = simc.next_update_id();
            simc.commit().map_err(err("committing the htlcs"))?;
            simc.restore_update_numbering(backup);
            Ok(Vec::new())
        }
    }
}

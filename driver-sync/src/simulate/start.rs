//! The start of a run: a fresh one (the setup, then the channels fed to a fresh engine) and
//! the parts every run is assembled from.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bitcoin::FeeRate;
use contractcourt_core::chain::Config;
use contractcourt_core::event::{Event, IncomingLeg, PreimageSource};
use contractcourt_core::sweeper::SweeperConfig;

use super::io::{lock, Log, SimBroadcaster, SimChainSource, SimNode, Steps};
use super::scenario::Direction;
use super::setup::{fund_channels, sim_channel, BuiltChannel};
use super::state::Funding;
use super::{
    basepoint_secrets, err, EngineSettings, Lane, Scenario, Sim, SimError, DEFAULT_SAT_PER_VB,
    PEER_WALLET_SEED,
};
use crate::chain::embedded::{ChainWallet, EmbeddedChain, TestWallet};
use crate::driver::{Driver, Io};
use crate::signer::{InMemorySigner, NodeSigner};
use crate::store::SqliteStore;

/// A lane of `view` from its built channel (`tag`: the timeline's prefix for it).
pub(super) fn lane(view: Scenario, (simc, _, htlcs): BuiltChannel, tag: String) -> Lane {
    Lane {
        spec: view,
        sim: simc,
        htlcs,
        candidates: Vec::new(),
        closing: None,
        closing_built: None,
        peer_done: Default::default(),
        tag,
    }
}

/// The timeline prefix of channel `i` of `n`.
pub(super) fn tag(i: usize, n: usize) -> String {
    if n > 1 {
        format!("ch{i}: ")
    } else {
        String::new()
    }
}

impl<'a> Sim<'a> {
    /// A new run on `chain`: the setup, then the channels fed to a fresh engine.
    pub(super) fn fresh(
        scenario: &'a Scenario,
        settings: &EngineSettings,
        mut chain: EmbeddedChain,
        db_path: &Path,
        steps: Steps,
    ) -> Result<Sim<'a>, SimError> {
        let wallet = TestWallet::new(scenario.seed);
        let views = scenario.channel_views();
        let fundings = fund_channels(&views, &mut chain, &wallet)?;
        steps.tick();
        let n = views.len();
        let mut lanes = Vec::new();
        let mut events = Vec::new();
        for (i, (view, funding)) in views.into_iter().zip(&fundings).enumerate() {
            let earlier: Vec<_> = lanes.iter().map(|l: &Lane| l.htlcs.clone()).collect();
            let mut built = sim_channel(&view, funding, &earlier)?;
            events.push(std::mem::take(&mut built.1));
            lanes.push(lane(view, built, tag(i, n)));
        }
        let mut sim = Sim::assemble(
            scenario,
            settings,
            chain,
            db_path,
            steps,
            &fundings[0],
            lanes,
        )?;
        // The funding block first: the engine's chain starts there.
        let block = lock(&sim.chain)
            .block_at(sim.start)
            .ok_or_else(|| SimError("the funding block is missing".into()))?;
        sim.feed(Event::BlockConnected(block))?;
        for (l, funding) in fundings.iter().enumerate() {
            sim.log_open(l, funding);
        }
        // The fee rate of height 0 before the channel: a close the engine decides at once
        // is priced with it.
        sim.apply_fee_rate(0, sim.start)?;
        for lane_events in events {
            for e in lane_events {
                sim.feed(e)?;
            }
        }
        for e in sim.circuits() {
            sim.feed(e)?;
        }
        for l in 0..sim.lanes.len() {
            for (htlc, i) in sim.lanes[l].htlcs.clone() {
                let spec = &sim.lanes[l].spec.htlcs[i];
                if spec.direction == Direction::Incoming && spec.we_know_preimage {
                    sim.feed(Event::PreimageLearned {
                        preimage: htlc.preimage,
                        source: PreimageSource::Invoice { htlc: htlc.key },
                    })?;
                }
            }
        }
        Ok(sim)
    }

    /// `CircuitAdded` of every forwarded HTLC: its outgoing leg and the incoming one it came
    /// from.
    fn circuits(&self) -> Vec<Event> {
        let mut events = Vec::new();
        for lane in &self.lanes {
            for (htlc, i) in &lane.htlcs {
                let Some(from) = lane.spec.htlcs[*i].forwarded_from else {
                    continue;
                };
                let incoming = self
                    .lanes
                    .get(from.channel)
                    .and_then(|l| l.htlcs.iter().find(|(_, j)| *j == from.htlc));
                if let Some((inc, _)) = incoming {
                    events.push(Event::CircuitAdded {
                        outgoing: htlc.key,
                        incoming: IncomingLeg {
                            htlc: inc.key,
                            cltv_expiry: inc.cltv_expiry,
                            amount_msat: inc.amount_msat,
                        },
                    });
                }
            }
        }
        events
    }

    /// The timeline's line of lane `l`'s opening.
    fn log_open(&self, l: usize, funding: &Funding) {
        let lane = &self.lanes[l];
        let spec = &lane.spec;
        let incoming = spec
            .htlcs
            .iter()
            .filter(|h| h.direction == Direction::Incoming)
            .count();
        let line = format!(
            "{}channel open: {} sat, ours {} sat, {} incoming and {} outgoing htlc(s)",
            lane.tag,
            spec.capacity_sat,
            spec.local_balance_sat,
            incoming,
            spec.htlcs.len() - incoming
        );
        lock(&self.log).push(
            self.start,
            line,
            Some(funding.outpoint.txid),
            None,
            Some(spec.capacity_sat),
        );
    }

    /// The parts of a run around `chain` and its `lanes`: the driver over the store at
    /// `db_path` (loaded, nothing fed), the names of the outputs.
    pub(super) fn assemble(
        scenario: &'a Scenario,
        settings: &EngineSettings,
        chain: EmbeddedChain,
        db_path: &Path,
        steps: Steps,
        funding: &Funding,
        lanes: Vec<Lane>,
    ) -> Result<Sim<'a>, SimError> {
        let wallet = TestWallet::new(scenario.seed);
        let miner = wallet.script_pubkey().to_owned();
        let peer_script = TestWallet::new(PEER_WALLET_SEED).script_pubkey().to_owned();
        let chain = Arc::new(Mutex::new(chain));
        let log = Arc::new(Mutex::new(Log::default()));
        let mut signer = InMemorySigner::new();
        for lane in &lanes {
            signer.add_channel(lane.sim.channel_id, basepoint_secrets(&lane.sim.local));
        }
        // The node's wallet funds zero-fee HTLC transactions and CPFP children, and signs its
        // own inputs of them.
        let node_wallet = Arc::new(Mutex::new(ChainWallet::new(wallet, chain.clone())));
        let io = Io {
            signer: Box::new(NodeSigner {
                channels: signer,
                wallet: node_wallet.clone(),
            }),
            broadcaster: Box::new(SimBroadcaster {
                chain: chain.clone(),
                log: log.clone(),
                steps: steps.clone(),
            }),
            wallet: Box::new(node_wallet),
            chain: Box::new(SimChainSource::new(chain.clone(), funding.start)),
            node: Box::new(SimNode {
                chain: chain.clone(),
                log: log.clone(),
                steps: steps.clone(),
            }),
        };
        let first_rate = scenario.fee_rate_at(0).unwrap_or(DEFAULT_SAT_PER_VB);
        let config = settings.apply(Config {
            sweep_to: Some(SweeperConfig {
                destination: miner.clone(),
                fallback_feerate: FeeRate::from_sat_per_vb_u32(first_rate),
                fee_wallet: None,
            }),
            ..Config::default()
        })?;
        let store = SqliteStore::open(db_path).map_err(err("opening the store"))?;
        // Every record, log entry and recorded event checked before anything is added: a run
        // never writes into a store whose flight recorder `replay` would refuse.
        store.verify().map_err(err("checking the store"))?;
        let driver = Driver::load(config, store, io).map_err(err("loading the engine"))?;
        let mut sim = Sim {
            scenario,
            chain,
            log,
            driver,
            lanes,
            start: funding.start,
            miner: miner.clone(),
            peer_script,
            fee_rate: None,
            notes: Vec::new(),
            steps,
            persist: None,
        };
        lock(&sim.log).wallet_script = Some(miner);
        for l in 0..sim.lanes.len() {
            sim.name_outputs(l)?;
        }
        Ok(sim)
    }
}

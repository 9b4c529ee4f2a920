//! Lazy loading (issue 18): quiet open channels stay dormant after a load, are indexed as the
//! decoded ones are, and the engine refuses an event that may change one until it is given back
//! whole; once given, it answers exactly as a fully loaded engine.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;

use super::{ChainArbitrator, ChannelRecords, Config, LoadError, StepError};
use crate::action::{Action, Record, RecordKey};
use crate::bolt3::ChannelType;
use crate::event::{Block, Event, ForceCloseReason, PreimageSource};
use crate::sim::{SimChannel, SimHtlc, SimSetup};
use crate::types::{ChannelId, HtlcDirection, Party, RawTx};

/// An engine and the store its steps wrote.
struct Node {
    arb: ChainArbitrator,
    store: BTreeMap<RecordKey, Record>,
    log: BTreeMap<(ChannelId, u64), Record>,
    height: u32,
}

impl Node {
    fn new() -> Node {
        Node {
            arb: ChainArbitrator::new(Config::default()),
            store: BTreeMap::new(),
            log: BTreeMap::new(),
            height: 499,
        }
    }

    fn feed(&mut self, event: &Event) -> Vec<Action> {
        let actions = self.arb.step(event).expect("step");
        for a in &actions {
            if let Action::Persist(batch) = a {
                batch.apply_to(&mut self.store, &mut self.log);
            }
        }
        actions
    }

    fn block(&mut self, txs: Vec<RawTx>) -> Vec<Action> {
        let event = self.next_block(txs);
        self.height += 1;
        self.feed(&event)
    }

    fn next_block(&self, txs: Vec<RawTx>) -> Event {
        block(self.height + 1, txs)
    }

    fn open(&mut self, seed: u64, channel_type: ChannelType) -> SimChannel {
        let (sim, events) = SimChannel::open(SimSetup::new(seed, channel_type)).expect("open");
        for e in &events {
            self.feed(e);
        }
        sim
    }

    /// Add HTLCs to a sim channel and commit them.
    fn add(&mut self, sim: &mut SimChannel, htlcs: &[(HtlcDirection, u64, u32)]) -> Vec<SimHtlc> {
        let added = htlcs
            .iter()
            .map(|(d, msat, expiry)| sim.add_htlc(*d, *msat, *expiry).expect("add"))
            .collect();
        for e in sim.commit().expect("commit") {
            self.feed(&e);
        }
        added
    }

    fn lazily(&self) -> ChainArbitrator {
        ChainArbitrator::from_records_lazily(Config::default(), &self.store).expect("lazy load")
    }

    fn fully(&self) -> ChainArbitrator {
        ChainArbitrator::from_records(Config::default(), &self.store).expect("full load")
    }

    fn records_of(&self, id: ChannelId) -> ChannelRecords {
        ChannelRecords::of_channel(id, &self.store).expect("records")
    }
}

fn block(height: u32, txs: Vec<RawTx>) -> Event {
    let hash = |h: u32| {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&h.to_le_bytes());
        BlockHash::from_byte_array(b)
    };
    Event::BlockConnected(Block {
        height,
        hash: hash(height),
        prev_hash: if height == 500 {
            BlockHash::all_zeros()
        } else {
            hash(height - 1)
        },
        time: 0,
        txs,
    })
}

const IN: HtlcDirection = HtlcDirection::Incoming;
const OUT: HtlcDirection = HtlcDirection::Outgoing;

/// Four channels: two quiet open ones with HTLCs (anchors, one of them trimmed; static remote
/// key), a quiet zero-fee-commitments one, and one we force closed (busy).
fn four_channels() -> (Node, Vec<SimChannel>) {
    let mut node = Node::new();
    node.block(Vec::new());
    let mut anchors = node.open(1, ChannelType::AnchorsZeroFeeHtlc);
    node.add(
        &mut anchors,
        &[
            (OUT, 50_000_000, 700),
            (IN, 40_000_000, 650),
            (IN, 1_000, 600),
        ],
    );
    let mut static_key = node.open(2, ChannelType::StaticRemoteKey);
    node.add(&mut static_key, &[(IN, 30_000_000, 800)]);
    let zero_fee = node.open(3, ChannelType::ZeroFeeCommitments);
    let busy = node.open(4, ChannelType::AnchorsZeroFeeHtlc);
    node.feed(&Event::ForceCloseRequested {
        channel: busy.channel_id,
        reason: ForceCloseReason::User,
    });
    node.block(Vec::new());
    (node, vec![anchors, static_key, zero_fee, busy])
}

#[test]
fn quiet_open_channels_load_dormant_and_are_indexed_as_the_decoded_ones_but_for_an_earlier_wakeup()
{
    let (node, sims) = four_channels();
    let lazy = node.lazily();
    let full = node.fully();
    let ids: Vec<ChannelId> = sims.iter().map(|s| s.channel_id).collect();
    assert!(lazy.is_dormant(&ids[0]) && lazy.is_dormant(&ids[1]) && lazy.is_dormant(&ids[2]));
    assert!(
        !lazy.is_dormant(&ids[3]),
        "a force-closed channel is decoded"
    );
    assert!(lazy.channel(&ids[3]).is_some() && lazy.channel(&ids[0]).is_none());
    assert_eq!(lazy.dormant_count(), 3);
    assert_eq!(
        lazy.index.outpoints, full.index.outpoints,
        "funding outputs"
    );
    assert_eq!(
        lazy.index.hashes, full.index.hashes,
        "incoming payment hashes"
    );
    assert_eq!(lazy.index.exposure, full.index.exposure, "fee exposure");
    assert_eq!(
        lazy.fee_reserve(),
        full.fee_reserve(),
        "the fee reserve is priced the same"
    );
    // Anchors: the outgoing HTLC fires at 700 (delta 0); the incoming ones only with their
    // preimage, at expiry − 24. Dormant: every HTLC counted, preimage or not, trimmed or not.
    assert_eq!(full.next_wakeup(&ids[0]), Some(700));
    assert_eq!(lazy.next_wakeup(&ids[0]), Some(600 - 24));
    assert_eq!(full.next_wakeup(&ids[1]), None, "no preimage known");
    assert_eq!(lazy.next_wakeup(&ids[1]), Some(800 - 24));
    assert_eq!(
        (full.next_wakeup(&ids[2]), lazy.next_wakeup(&ids[2])),
        (None, None)
    );
    let mut hydrated = lazy.clone();
    hydrated.hydrate_all(&node.store).expect("hydrate");
    assert_eq!(hydrated, full, "every channel decoded: the full load");
}

#[test]
fn an_event_that_may_change_a_dormant_channel_is_refused_until_the_channel_is_given_whole() {
    let (node, mut sims) = four_channels();
    let mut lazy = node.lazily();
    let mut full = node.fully();
    let id = sims[0].channel_id;
    let update = sims[0].commit().expect("commit");
    let before = lazy.clone();
    assert_eq!(lazy.step(&update[0]), Err(StepError::NotLoaded(vec![id])));
    assert_eq!(lazy, before, "a refusal changes nothing");
    let force = Event::ForceCloseRequested {
        channel: sims[1].channel_id,
        reason: ForceCloseReason::User,
    };
    assert_eq!(lazy.dormant_needed(&force), vec![sims[1].channel_id]);
    lazy.hydrate(&node.records_of(id)).expect("hydrate");
    assert!(!lazy.is_dormant(&id));
    for event in &update {
        assert_eq!(lazy.step(event), full.step(event), "the same answer");
    }
    lazy.hydrate(&node.records_of(sims[1].channel_id))
        .expect("hydrate");
    assert_eq!(lazy.step(&force), full.step(&force));
    assert!(lazy
        .channel(&sims[1].channel_id)
        .unwrap()
        .force_close
        .is_some());
}

#[test]
fn a_block_spending_a_dormant_funding_output_or_reaching_its_wakeup_needs_the_channel() {
    let (mut node, sims) = four_channels();
    let lazy = node.lazily();
    let (anchors, static_key) = (sims[0].channel_id, sims[1].channel_id);
    // An idle block needs nothing, and is answered as by a fully loaded engine.
    let idle = node.next_block(Vec::new());
    assert_eq!(lazy.dormant_needed(&idle), Vec::<ChannelId>::new());
    let mut stepped = lazy.clone();
    assert_eq!(stepped.step(&idle), node.fully().step(&idle));
    // The peer's commitment spends the static-remote-key channel's funding output.
    let theirs = sims[1]
        .commitment_tx(Party::Remote, sims[1].remote_commitment_number())
        .expect("their commitment");
    let spend = node.next_block(vec![RawTx(theirs)]);
    assert_eq!(lazy.dormant_needed(&spend), vec![static_key]);
    // The anchors channel's wake-up (576): the block before it needs nothing.
    while node.height + 1 < 576 {
        node.block(Vec::new());
    }
    let mut lazy = node.lazily();
    assert_eq!(
        lazy.dormant_needed(&node.next_block(Vec::new())),
        vec![anchors]
    );
    let resumed = Event::Resumed { tip: lazy.tip() };
    assert_eq!(lazy.dormant_needed(&resumed), Vec::<ChannelId>::new());
    node.block(Vec::new());
    let reloaded = node.lazily();
    assert_eq!(
        reloaded.dormant_needed(&Event::Resumed {
            tip: reloaded.tip()
        }),
        vec![anchors],
        "a restart at or past a wake-up needs the channel at once"
    );
    assert_eq!(
        reloaded.dormant_needed(&Event::Tick { unix_secs: 0 }),
        vec![anchors],
        "so does any event, should it come before Resumed"
    );
    // Given whole, the anchors channel is indexed as decoded.
    lazy.hydrate(&node.records_of(anchors)).expect("hydrate");
    assert_eq!(lazy.next_wakeup(&anchors), Some(700));
}

#[test]
fn a_preimage_of_a_dormant_channels_incoming_htlc_needs_the_channel() {
    let (node, mut sims) = four_channels();
    let lazy = node.lazily();
    let sim = &mut sims[1];
    let key = crate::types::HtlcKey {
        channel: sim.channel_id,
        htlc_id: 0,
        direction: IN,
    };
    let committed = sim
        .state(Party::Local, sim.local_commitment_number())
        .expect("state")
        .htlcs
        .get(&key)
        .expect("the committed incoming HTLC")
        .clone();
    let learned = Event::PreimageLearned {
        preimage: committed.preimage,
        source: PreimageSource::Invoice { htlc: key },
    };
    assert_eq!(lazy.dormant_needed(&learned), vec![key.channel]);
    let queued = sim.add_htlc(IN, 1_000_000, 900).expect("add");
    let unrelated = Event::PreimageLearned {
        preimage: queued.preimage,
        source: PreimageSource::Invoice { htlc: queued.key },
    };
    assert_eq!(
        lazy.dormant_needed(&unrelated),
        Vec::<ChannelId>::new(),
        "an HTLC not committed yet concerns no channel"
    );
}

#[test]
fn records_of_another_channel_or_that_do_not_decode_are_refused_and_the_channel_stays_dormant() {
    let (node, sims) = four_channels();
    let mut lazy = node.lazily();
    let (a, b) = (sims[0].channel_id, sims[1].channel_id);
    let of_b: Vec<(RecordKey, Record)> = node
        .store
        .iter()
        .filter(|(k, _)| k.channel() == Some(b))
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    assert!(matches!(
        ChannelRecords::from_stored(a, of_b),
        Err(LoadError::Malformed { .. })
    ));
    let mut broken: Vec<(RecordKey, Record)> = node
        .store
        .iter()
        .filter(|(k, _)| k.channel() == Some(a))
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    let header = broken
        .iter_mut()
        .find(|(k, _)| matches!(k, RecordKey::Channel { .. }))
        .expect("header");
    let mut value = header.1.body.to_value();
    value["last_update_id"] = serde_json::Value::String("x".into());
    header.1.body = crate::action::RecordBody::from_value(&value);
    let before = lazy.clone();
    let records = ChannelRecords::from_stored(a, broken).expect("grouped");
    assert!(matches!(
        lazy.hydrate(&records),
        Err(LoadError::Malformed { .. })
    ));
    assert_eq!(lazy, before, "nothing changed");
    assert!(lazy.is_dormant(&a));
}

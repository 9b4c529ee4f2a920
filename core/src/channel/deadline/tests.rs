use std::collections::BTreeMap;

use super::*;
use crate::bolt3::{ChannelType, PaymentHash};
use crate::channel::updates::apply_update;
use crate::event::Event;
use crate::sim::{SimChannel, SimSetup};

#[derive(Default)]
struct Ctx {
    incoming: BTreeMap<HtlcKey, Height>,
    preimages: Vec<PaymentHash>,
}

impl HtlcContext for Ctx {
    fn incoming_expiry(&self, outgoing: &HtlcKey) -> Option<Height> {
        self.incoming.get(outgoing).copied()
    }
    fn preimage_known(&self, _: &HtlcKey, htlc: &CommitmentHtlcInfo) -> bool {
        self.preimages.contains(&htlc.payment_hash)
    }
}

fn feed(data: Option<ChannelData>, events: Vec<Event>) -> Option<ChannelData> {
    events.into_iter().fold(data, |d, e| match e {
        Event::ChannelUpdate(u) => apply_update(d.as_ref(), &u).unwrap().0,
        _ => d,
    })
}

fn channel() -> (SimChannel, ChannelData) {
    let (sim, events) =
        SimChannel::open(SimSetup::new(11, ChannelType::AnchorsZeroFeeHtlc)).unwrap();
    let data = feed(None, events).unwrap();
    (sim, data)
}

#[test]
fn outgoing_htlc_fires_at_its_expiry_with_the_incoming_leg_as_deadline() {
    let (mut sim, data) = channel();
    let h = sim
        .add_htlc(HtlcDirection::Outgoing, 50_000_000, 800)
        .unwrap();
    let data = feed(Some(data), sim.commit().unwrap()).unwrap();
    let mut ctx = Ctx::default();
    let cfg = DeadlineConfig::default();
    assert_eq!(fired(&data, 799, &ctx, &cfg), None);
    let t = fired(&data, 800, &ctx, &cfg).unwrap();
    assert_eq!((t.htlc, t.deadline, t.fires_at), (h.key, 800, 800));
    ctx.incoming.insert(h.key, 840);
    assert_eq!(fired(&data, 800, &ctx, &cfg).unwrap().deadline, 840);
}

#[test]
fn incoming_htlc_fires_only_with_a_preimage_and_delta_blocks_early() {
    let (mut sim, data) = channel();
    let h = sim
        .add_htlc(HtlcDirection::Incoming, 50_000_000, 900)
        .unwrap();
    let data = feed(Some(data), sim.commit().unwrap()).unwrap();
    let cfg = DeadlineConfig {
        outgoing_broadcast_delta: 0,
        incoming_broadcast_delta: 10,
    };
    let mut ctx = Ctx::default();
    assert_eq!(
        fired(&data, 899, &ctx, &cfg),
        None,
        "no preimage: nothing to claim, no close"
    );
    ctx.preimages.push(h.payment_hash());
    assert_eq!(fired(&data, 889, &ctx, &cfg), None);
    assert_eq!(fired(&data, 890, &ctx, &cfg).unwrap().htlc, h.key);
}

#[test]
fn dust_htlcs_never_force_a_close() {
    let (mut sim, data) = channel();
    sim.add_htlc(HtlcDirection::Outgoing, 100_000, 700).unwrap(); // 100 sat: dust at 354
    let data = feed(Some(data), sim.commit().unwrap()).unwrap();
    assert_eq!(
        earliest_trigger(&data, &Ctx::default(), &DeadlineConfig::default()),
        None
    );
}

#[test]
fn an_outgoing_htlc_only_on_the_peers_pending_commitment_still_counts() {
    let (mut sim, data) = channel();
    let h = sim
        .add_htlc(HtlcDirection::Outgoing, 40_000_000, 750)
        .unwrap();
    let events = sim.propose().unwrap(); // signed for the peer only: dangling
    let data = feed(Some(data), events).unwrap();
    assert!(data
        .commitments
        .local
        .as_ref()
        .unwrap()
        .commitment
        .htlcs
        .is_empty());
    assert_eq!(
        fired(&data, 750, &Ctx::default(), &DeadlineConfig::default())
            .unwrap()
            .htlc,
        h.key
    );
}

#[test]
fn the_earliest_of_several_htlcs_wins() {
    let (mut sim, data) = channel();
    sim.add_htlc(HtlcDirection::Outgoing, 40_000_000, 760)
        .unwrap();
    let early = sim
        .add_htlc(HtlcDirection::Outgoing, 40_000_000, 740)
        .unwrap();
    let data = feed(Some(data), sim.commit().unwrap()).unwrap();
    assert_eq!(
        earliest_trigger(&data, &Ctx::default(), &DeadlineConfig::default())
            .unwrap()
            .htlc,
        early.key
    );
}

//! Several channels per case (issue 20 §1): beside the case's channel, up to five more of the
//! same node, each of any type with its own HTLCs, sharing the chain (every reorg reaches their
//! closes too), the fee wallet (a thin one must fund them all), the fee conditions, the signer
//! and the wallet's refusals, and every crash and restart. Their peers never claim an HTLC
//! (idle, as BOLT 5 allows), so each of their outputs ends by the rules alone; a neighbour
//! closes when its peer broadcasts its current or revoked commitment, when we ask, or when the
//! engine must (an expired outgoing HTLC, an incoming one whose preimage we learned).
//!
//! At the end every neighbour is checked like the case's channel: if still open, it had no
//! reason to close; if closed, the ledger, resolution reports and close summary equal the
//! reference ledger, and the close fully resolved (nothing stuck).

use super::*;

/// A neighbour channel: its type, its HTLCs, and its setup's seed.
#[derive(Clone, Debug)]
pub(super) struct NeighbourSpec {
    /// 0: static remote key, 1: anchors, 2: zero-fee commitments.
    pub kind: u8,
    pub seed: u64,
    pub htlcs: Vec<HtlcSpec>,
    /// We lost data: the channel moved on by one more update we never heard of, and
    /// `channel_reestablish` told us (`DataLossDetected`). We must never broadcast our
    /// commitment; only the peer's future one can close it.
    pub data_loss: bool,
}

/// What happens to one neighbour.
#[derive(Clone, Debug)]
pub(super) enum NeighbourMove {
    /// We ask for a force close.
    OurClose,
    /// Its peer broadcasts its current commitment.
    PeerClose,
    /// Its peer broadcasts its previous (revoked) commitment.
    PeerRevokedClose,
    /// We learn the preimage of one of its incoming HTLCs.
    Learn(Index),
}

/// A neighbour as the model knows it.
pub(super) struct Neighbour {
    pub id: ChannelId,
    pub specs: Vec<HtlcSpec>,
    pub htlcs: Vec<SimHtlc>,
    pub commitments: Vec<(Party, u64, BuiltCommitment)>,
    pub learned: BTreeMap<usize, u32>,
    pub close_requested: bool,
    pub data_loss: bool,
}

/// Up to five neighbours with up to four HTLCs each way; their peers know no preimage and
/// forward nothing.
pub(super) fn neighbour_specs() -> impl Strategy<Value = Vec<NeighbourSpec>> {
    let one = (0u8..3).prop_flat_map(|kind| {
        let anchors = kind > 0;
        (
            any::<u64>(),
            prop::collection::vec(htlc(true, anchors), 0..=4),
            prop::collection::vec(htlc(false, anchors), 0..=4),
            prop::bool::weighted(0.25),
        )
            .prop_map(move |(seed, out, inc, data_loss)| NeighbourSpec {
                kind,
                seed,
                data_loss,
                htlcs: out
                    .into_iter()
                    .chain(inc)
                    .map(|mut s| {
                        s.circuit = false;
                        s.peer_knows = false;
                        s.we_learn = !s.outgoing && s.we_learn;
                        s
                    })
                    .collect(),
            })
    });
    prop::collection::vec(one, 1..=5)
}

/// A move of any neighbour.
pub(super) fn neighbour_op() -> BoxedStrategy<Op> {
    prop_oneof![
        1 => Just(NeighbourMove::OurClose),
        1 => Just(NeighbourMove::PeerClose),
        1 => Just(NeighbourMove::PeerRevokedClose),
        2 => any::<Index>().prop_map(NeighbourMove::Learn),
    ]
    .prop_flat_map(|m| any::<Index>().prop_map(move |k| Op::Neighbour(k, m.clone())))
    .boxed()
}

/// [`faulty_op`]s and neighbours' moves.
pub(super) fn several_channels_op() -> BoxedStrategy<Op> {
    prop_oneof![
        4 => faulty_op(),
        1 => neighbour_op(),
    ]
    .boxed()
}

/// A [`faulty_case`]-like case (any type, failing signers and wallets) with neighbours.
pub(super) fn several_channels_case(max: usize, ops: Range<usize>) -> impl Strategy<Value = Case> {
    let types = prop_oneof![
        Just((false, false)),
        Just((true, false)),
        Just((true, true)),
    ];
    (
        case_of(max, ops, types, several_channels_op),
        neighbour_specs(),
    )
        .prop_map(|(mut case, neighbours)| {
            case.neighbours = neighbours;
            case
        })
}

impl Model {
    /// Open the case's neighbours, after its channel (whose setup is unchanged by them).
    pub(super) fn open_neighbours(&mut self, case: &Case) {
        for spec in &case.neighbours {
            let channel_type = match spec.kind {
                0 => ChannelType::StaticRemoteKey,
                1 => ChannelType::AnchorsZeroFeeHtlc,
                _ => ChannelType::ZeroFeeCommitments,
            };
            let id = self.h.open(SimSetup::new(spec.seed, channel_type));
            let (htlcs, specs) = add_htlcs(&mut self.h, id, &spec.htlcs);
            if spec.data_loss {
                // One more update the engine never hears of (an HTLC added and committed),
                // then the reestablish that reveals it.
                let next = self
                    .h
                    .arb
                    .channel(&id)
                    .map_or(1, |c| c.data.last_update_id + 1);
                let sim = self.h.sims.get_mut(&id).expect("the neighbour's sim");
                sim.add_htlc(HtlcDirection::Outgoing, 10_000_000, START_HEIGHT + 300)
                    .expect("room for one more HTLC");
                sim.commit().expect("commit");
                sim.restore_update_numbering(next);
                let event = sim.data_loss_detected().expect("data loss");
                let actions = self.h.feed(event);
                self.h.answer(&actions);
            }
            let commitments = Model::commitments(self.h.sim(id));
            self.neighbours.push(Neighbour {
                id,
                specs,
                htlcs,
                commitments,
                learned: BTreeMap::new(),
                close_requested: false,
                data_loss: spec.data_loss,
            });
        }
        self.check_step();
    }

    /// Carry out `m` on neighbour `k`.
    pub(super) fn neighbour_move(&mut self, k: &Index, m: &NeighbourMove) {
        if self.neighbours.is_empty() {
            return;
        }
        let k = k.index(self.neighbours.len());
        let id = self.neighbours[k].id;
        let funding = self.h.sim(id).funding.outpoint;
        let open = self.utxos().contains_key(&funding);
        *self
            .tally
            .entry(
                format!("neighbour {m:?}")
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            )
            .or_default() += 1;
        match m {
            NeighbourMove::OurClose => {
                if let Ok(actions) = self.h.try_feed(Event::ForceCloseRequested {
                    channel: id,
                    reason: ForceCloseReason::User,
                }) {
                    let n = &mut self.neighbours[k];
                    n.close_requested = n.close_requested || open;
                    self.h.answer(&actions);
                }
                self.check_step();
            }
            // The commitment the engine knows as the peer's current one is revoked after a data
            // loss, but the engine cannot know it: no breach to punish, so not generated.
            NeighbourMove::PeerRevokedClose if self.neighbours[k].data_loss => {}
            NeighbourMove::PeerClose | NeighbourMove::PeerRevokedClose if open => {
                let sim = self.h.sim(id);
                let current = sim.remote_commitment_number();
                let n = if matches!(m, NeighbourMove::PeerClose) {
                    Some(current)
                } else {
                    current.checked_sub(1)
                };
                if let Some(tx) = n.and_then(|n| sim.commitment_tx(Party::Remote, n).ok()) {
                    self.peer_txs.push(tx.clone());
                    self.mine_block(vec![tx], false);
                }
            }
            NeighbourMove::PeerClose | NeighbourMove::PeerRevokedClose => {}
            NeighbourMove::Learn(idx) => {
                let n = &self.neighbours[k];
                let eligible: Vec<usize> = (0..n.specs.len())
                    .filter(|i| n.specs[*i].we_learn && !n.learned.contains_key(i))
                    .collect();
                if eligible.is_empty() {
                    return;
                }
                let i = eligible[idx.index(eligible.len())];
                let x = n.htlcs[i].clone();
                let event = Event::PreimageLearned {
                    preimage: x.preimage,
                    source: PreimageSource::Invoice { htlc: x.key },
                };
                let tip = self.tip();
                self.neighbours[k].learned.insert(i, tip);
                let actions = self.h.feed(event);
                self.h.answer(&actions);
                self.check_step();
            }
        }
    }

    /// The height the end phase must reach for the neighbours: 30 blocks past every expiry,
    /// and past our CSV delay after a close of ours.
    pub(super) fn neighbours_target(&self) -> u32 {
        let mut target = 0;
        for n in &self.neighbours {
            for x in &n.htlcs {
                target = target.max(x.cltv_expiry + 30);
            }
            if let Some((Party::Local, _, _, ch, _)) = self.lane_close(&n.lane()) {
                let delay = u32::from(self.h.sim(n.id).setup().local_to_self_delay);
                target = target.max(ch + delay + 12);
            }
        }
        target
    }

    /// Whether every neighbour is archived, fully resolved, or was never closed.
    pub(super) fn neighbours_settled(&self) -> bool {
        self.neighbours.iter().all(|n| {
            self.h
                .arb
                .channel(&n.id)
                .is_none_or(|c| matches!(c.state(), ArbState::FullyResolved | ArbState::Default))
        })
    }

    /// The end checks of every neighbour.
    pub(super) fn check_neighbours(&self) {
        for n in &self.neighbours {
            let lane = n.lane();
            let funding = self.h.sim(n.id).funding.outpoint;
            if self.spender(&funding).is_none() {
                let forced = self.lane_forced_close(&lane);
                assert!(
                    forced.is_none(),
                    "neighbour {:?} is still open at {} though {} forced a close",
                    n.id,
                    self.tip(),
                    forced.unwrap_or_default()
                );
                continue;
            }
            let open = self.unresolved(n.id);
            assert!(
                open.is_empty(),
                "neighbour {:?} (idle peer): its close never fully resolved by {}: {open:#?}",
                n.id,
                self.tip()
            );
        }
    }
}

impl Neighbour {
    pub(super) fn lane(&self) -> Lane<'_> {
        Lane {
            id: self.id,
            htlcs: &self.htlcs,
            peer_knows: self.specs.iter().map(|s| s.peer_knows).collect(),
            commitments: &self.commitments,
            learned: &self.learned,
            close_requested: self.close_requested,
            data_loss: self.data_loss,
        }
    }
}

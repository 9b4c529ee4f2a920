//! The chain as the sweeper sees it: spends of claimed outputs, disconnections, and finished
//! claims leaving once their spend is final.

use bitcoin::{OutPoint, Txid};

use crate::types::Height;

use super::claim::ClaimState;
use super::Sweeper;

impl Sweeper {
    /// `outpoint` was spent by the confirmed transaction `txid` at `height` — one of our attempts,
    /// or someone else's transaction: either way the claim stops. Someone else's spend of a
    /// batched input re-plans the rest of its batch.
    pub fn on_spent(&mut self, outpoint: &OutPoint, txid: Txid, height: Height) {
        let Some(id) = self.claim_for(outpoint) else {
            return;
        };
        let ours = self.by_txid.contains_key(&txid);
        let spent = ClaimState::Spent { txid, height, ours };
        if self.claims.get(&id).is_some_and(|c| c.state == spent) {
            return;
        }
        if self.by_txid.get(&txid) == Some(&id) {
            // Our transaction, counted once (by the claim whose attempt it is): its top-up has
            // reached the fee wallet, whose balance shows it only once told again.
            let topup = self.claims.get(&id).map_or(0, |c| {
                c.attempts
                    .iter()
                    .filter(|a| a.txid == txid)
                    .fold(0u64, |s, a| s.saturating_add(a.topup_sat))
            });
            self.topup_landed = self.topup_landed.saturating_add(topup);
        }
        if !ours {
            self.dissolve_batch_of(id, true);
        }
        if let Some(claim) = self.claims.get_mut(&id) {
            claim.state = spent;
            self.schedule.place(id, claim, self.tip);
            self.changed.insert(id);
        }
    }

    /// The block at `height` was disconnected: spends confirmed at or above it are undone and
    /// their claims resume at the next block.
    pub fn on_disconnect(&mut self, height: Height) {
        self.tip = Some(height.saturating_sub(1));
        for id in self.schedule.spent_from(height) {
            if let Some(claim) = self.claims.get_mut(&id) {
                claim.state = ClaimState::Active;
                self.schedule.place(id, claim, self.tip);
                self.changed.insert(id);
            }
        }
    }

    /// The claims whose spend is `finality_depth` deep at `tip` leave: their records are
    /// deleted (the channel kept what it needs — the fee paid — when its resolver became final
    /// at the same depth, earlier in the same block).
    pub fn drop_finished(&mut self, tip: Height, finality_depth: u32) {
        for id in self.schedule.take_final(tip, finality_depth) {
            let Some(claim) = self.claims.remove(&id) else {
                continue;
            };
            if self.by_outpoint.get(&claim.request.outpoint) == Some(&id) {
                self.by_outpoint.remove(&claim.request.outpoint);
            }
            for a in &claim.attempts {
                if self.by_txid.get(&a.txid) == Some(&id) {
                    self.by_txid.remove(&a.txid);
                }
            }
            self.changed.insert(id);
        }
    }
}

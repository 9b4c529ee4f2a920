//! A reorganisation of the chain during a run: the last blocks replaced by a heavier fork,
//! fed to the engine as Bitcoin Core reports it.

use std::collections::BTreeMap;

use crate::chain::embedded::ChainUpdate;

use super::io::lock;
use super::scenario::{Reorg, ReorgConfirms};
use super::{err, Sim, SimError};
use contractcourt_core::types::Party;

impl Sim<'_> {
    /// Replace the last `reorg.depth` blocks with a fork one block longer (so the tip moves one
    /// block up, as a mined block would), whose first block confirms what `reorg` says; feed the
    /// changes to the engine; find again which commitment closed each channel.
    pub(super) fn reorg(&mut self, reorg: Reorg) -> Result<(), SimError> {
        let tip = self.tip();
        let fork_height = tip.saturating_sub(reorg.depth);
        let mut blocks: Vec<Vec<bitcoin::Transaction>> = vec![Vec::new(); reorg.depth as usize + 1];
        let what = match reorg.confirms_instead {
            ReorgConfirms::Nothing => "empty blocks".to_string(),
            ReorgConfirms::PeerCommitment => {
                let lane = &self.lanes[0];
                let number = lane.sim.remote_commitment_number();
                let tx = lane
                    .sim
                    .commitment_tx(Party::Remote, number)
                    .map_err(err("the peer's commitment"))?;
                blocks[0].push(tx);
                format!(
                    "the peer's commitment {number} confirmed at {}",
                    fork_height + 1
                )
            }
        };
        lock(&self.log).push(
            tip,
            format!(
                "REORG: blocks {}..={tip} replaced by a fork of {} blocks ({what})",
                fork_height + 1,
                reorg.depth + 1
            ),
            None,
            None,
            None,
        );
        let updates = lock(&self.chain)
            .reorg(fork_height, blocks, &self.miner)
            .map_err(err("bitcoin core refused the fork"))?;
        self.steps.tick();
        for update in updates {
            if let ChainUpdate::Connected(block) = &update {
                self.log_confirmations(block, &BTreeMap::new());
            }
            self.feed(update.to_event())?;
        }
        for l in 0..self.lanes.len() {
            let closing = self.confirmed_closing(l);
            let lane = &mut self.lanes[l];
            if lane.closing.map(|c| (c.holder, c.number)) != closing.map(|c| (c.holder, c.number)) {
                lane.closing = closing;
                lane.closing_built = None;
                lane.peer_done.clear();
            }
        }
        Ok(())
    }
}

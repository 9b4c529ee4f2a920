//! The confirmed commitment rebuilt, kept beside the close: what the channel's resolvers read
//! their scripts, keys and second-level transactions from.

use std::borrow::Cow;

use crate::action::CloseKind;
use crate::bolt3::commitment::{BuiltCommitment, CommitmentSpec};
pub use crate::resolver::Confirmed;
use crate::types::Party;

use super::ChannelArbitrator;

/// What rebuilding the confirmed commitment gives (`None`: not one we know).
type Rebuilt = Option<Confirmed>;

/// The confirmed commitment rebuilt, kept beside the close that confirmed it: an explicit cache,
/// filled only by a `&mut` refresh ([`ChannelArbitrator::refresh_confirmed_commitment`], run when
/// a close confirms and whenever the chain arbitrator re-indexes a changed channel). Rebuilding it
/// derives the commitment's keys (several point multiplications) and the transaction, and a
/// closing channel needs it many times a step (its claims, its second-level and zero-fee HTLC
/// transactions, the dangling-HTLC rule). What it holds depends only on the close and the
/// channel's data, which changes only by an update with a new `update_id`: it is used only while
/// the `update_id` it was built at is the channel's, and a stale or empty cache is rebuilt on
/// the spot, so it never changes an answer. Never persisted; any two are equal, so a loaded
/// channel equals the one that was stored.
#[derive(Clone, Default)]
pub struct RebuiltCommitment(Option<(u64, Rebuilt)>);

impl RebuiltCommitment {
    fn get(&self, update_id: u64) -> Option<&Rebuilt> {
        self.0
            .as_ref()
            .filter(|(at, _)| *at == update_id)
            .map(|(_, rebuilt)| rebuilt)
    }

    /// Keep `rebuilt` as the confirmed commitment at `update_id`.
    pub(super) fn set(&mut self, update_id: u64, rebuilt: Rebuilt) {
        self.0 = Some((update_id, rebuilt));
    }
}

impl std::fmt::Debug for RebuiltCommitment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RebuiltCommitment")
    }
}

impl PartialEq for RebuiltCommitment {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for RebuiltCommitment {}

impl ChannelArbitrator {
    /// The commitment that confirmed, rebuilt, with its holder — when it is one we know. Read
    /// from the cache while it is current (see [`RebuiltCommitment`]), rebuilt otherwise.
    pub(crate) fn confirmed_commitment(&self) -> Option<(Party, CommitmentSpec, BuiltCommitment)> {
        let close = self.close.as_ref()?;
        match close.rebuilt.get(self.data.last_update_id) {
            Some(rebuilt) => rebuilt.clone(),
            None => self.rebuild_confirmed_commitment(),
        }
    }

    /// [`Self::confirmed_commitment`], borrowed from the cache while it is current.
    pub(crate) fn confirmed_commitment_ref(&self) -> Cow<'_, Rebuilt> {
        match self
            .close
            .as_ref()
            .and_then(|c| c.rebuilt.get(self.data.last_update_id))
        {
            Some(rebuilt) => Cow::Borrowed(rebuilt),
            None => Cow::Owned(self.rebuild_confirmed_commitment()),
        }
    }

    /// Rebuild the cached confirmed commitment if the channel changed since it was built.
    pub fn refresh_confirmed_commitment(&mut self) {
        let update_id = self.data.last_update_id;
        if self
            .close
            .as_ref()
            .is_none_or(|c| c.rebuilt.get(update_id).is_some())
        {
            return;
        }
        let rebuilt = self.rebuild_confirmed_commitment();
        if let Some(close) = &mut self.close {
            close.rebuilt.set(update_id, rebuilt);
        }
    }

    /// [`Self::confirmed_commitment`] without the cache.
    fn rebuild_confirmed_commitment(&self) -> Rebuilt {
        let close = self.close.as_ref()?;
        let c = &self.data.commitments;
        let (holder, record) = match close.kind {
            CloseKind::Local { .. } => (Party::Local, &c.local.as_ref()?.commitment),
            CloseKind::Remote { pending: false, .. } => (Party::Remote, c.remote_current.as_ref()?),
            CloseKind::Remote { pending: true, .. } => (Party::Remote, c.remote_pending.as_ref()?),
            _ => return None,
        };
        let (spec, built) = self.data.info.build(holder, record, &close.funding).ok()?;
        (built.tx.compute_txid() == close.txid).then_some((holder, spec, built))
    }
}

#[cfg(test)]
mod tests {
    use super::RebuiltCommitment;

    /// The cache answers only at the `update_id` it was built at: after any update it is stale
    /// and the commitment is rebuilt.
    #[test]
    fn the_rebuilt_commitment_is_used_only_at_the_update_it_was_built_at() {
        let mut cache = RebuiltCommitment::default();
        assert!(cache.get(7).is_none(), "empty");
        cache.set(7, None);
        assert!(cache.get(7).is_some(), "built at 7");
        assert!(cache.get(8).is_none(), "stale after an update");
        assert!(cache.get(6).is_none());
    }
}

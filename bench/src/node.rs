//! Playing the node: answer the engine's sign requests with the template's keys and accept every
//! broadcast, feeding each answer back one at a time in action order (the driver contract).

use contractcourt_core::action::Action;
use contractcourt_core::chain::ChainArbitrator;
use contractcourt_core::event::{BroadcastOutcome, Event};
use contractcourt_core::sim::PartySecrets;

/// What the engine asked for while it was answered until it had nothing more to ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    /// Steps taken (the answers fed).
    pub steps: usize,
    /// Sign requests answered.
    pub signs: usize,
    /// Transactions (or packages) broadcast.
    pub broadcasts: usize,
    /// Wallet funding requests (left unanswered: there is no wallet here).
    pub funding_requests: usize,
    /// Actions of every kind.
    pub actions: usize,
}

/// Answer `actions` (and whatever the answers produce) until nothing is left to answer.
/// Returns what was asked; a refused answer is counted as a step and otherwise ignored.
pub fn answer_all(
    arb: &mut ChainArbitrator,
    signer: &PartySecrets,
    actions: Vec<Action>,
) -> Answered {
    let mut done = Answered::default();
    let mut queue = std::collections::VecDeque::from(actions);
    while let Some(action) = queue.pop_front() {
        done.actions += 1;
        let event = match &action {
            Action::Sign(req) => {
                done.signs += 1;
                Event::Signed {
                    request: req.request,
                    outcome: signer.sign(req),
                }
            }
            Action::Broadcast { request, tx } => {
                done.broadcasts += 1;
                Event::BroadcastResult {
                    request: *request,
                    txid: tx.compute_txid(),
                    outcome: BroadcastOutcome::Accepted,
                }
            }
            Action::BroadcastPackage { request, child, .. } => {
                done.broadcasts += 1;
                Event::BroadcastResult {
                    request: *request,
                    txid: child.compute_txid(),
                    outcome: BroadcastOutcome::Accepted,
                }
            }
            Action::FundFromWallet(_) => {
                done.funding_requests += 1;
                continue;
            }
            _ => continue,
        };
        done.steps += 1;
        if let Ok(more) = arb.step(&event) {
            // Depth first, as a driver executes a step's effects before the next action.
            for a in more.into_iter().rev() {
                queue.push_front(a);
            }
        }
    }
    done
}

//! `contractcourt inspect`: a store's channels, ledger and pending decisions (read only).

use std::path::Path;

use contractcourt_core::action::Action;
use contractcourt_sync::driver::load_engine;
use contractcourt_sync::simulate;
use serde::Serialize;

use crate::exit::Findings;
use crate::{open_store, print_out, stored_config};

#[derive(Serialize)]
struct ChannelLine {
    channel: String,
    state: String,
    funding: Vec<String>,
    last_update_id: u64,
}

#[derive(Serialize)]
struct Inspection {
    tip: Option<contractcourt_core::types::BlockRef>,
    channels: Vec<ChannelLine>,
    ledger: contractcourt_core::chain::ledger::Ledger,
    pending_upstream: Vec<Action>,
    known_preimages: usize,
    circuits: usize,
    recorded_events: u64,
}

/// Inspect the store at `path`.
pub fn inspect(path: &Path, json: bool) -> Result<Findings, String> {
    let store = open_store(path)?;
    // Everything checked, the flight recorder included, as `replay` reads it.
    let verified = store
        .verify()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let config = stored_config(&store)?;
    let engine = load_engine(&config, &store).map_err(|e| format!("{}: {e}", path.display()))?;
    let node = engine.node();
    let inspection = Inspection {
        tip: engine.tip(),
        channels: engine
            .channels()
            .map(|c| ChannelLine {
                channel: c.data.info.id.to_string(),
                state: format!("{:?}", c.state()),
                funding: c
                    .data
                    .info
                    .funding
                    .iter()
                    .map(|f| format!("{} ({} sat)", f.outpoint, f.value_sat))
                    .collect(),
                last_update_id: c.data.last_update_id,
            })
            .collect(),
        ledger: engine.ledger(),
        pending_upstream: node.pending_upstream(),
        known_preimages: node.preimages.len(),
        circuits: node.circuits.len(),
        recorded_events: verified.events,
    };
    if json {
        let text = serde_json::to_string_pretty(&inspection).map_err(|e| e.to_string())?;
        print_out(&format!("{text}\n"))?;
        return Ok(Findings::default());
    }
    let mut s = String::new();
    match inspection.tip {
        Some(t) => s.push_str(&format!("tip: {} {}\n", t.height, t.hash)),
        None => s.push_str("tip: none\n"),
    }
    s.push_str(&format!(
        "recorded events: {}, known preimages: {}, circuits: {}\n\nCHANNELS\n",
        inspection.recorded_events, inspection.known_preimages, inspection.circuits
    ));
    if inspection.channels.is_empty() {
        s.push_str("  (none)\n");
    }
    for c in &inspection.channels {
        s.push_str(&format!(
            "  {}  {}  update {}  funding {}\n",
            c.channel,
            c.state,
            c.last_update_id,
            c.funding.join(", ")
        ));
    }
    s.push_str(&simulate::render_ledger(&inspection.ledger));
    s.push_str("\nPENDING UPSTREAM DECISIONS\n");
    if inspection.pending_upstream.is_empty() {
        s.push_str("  (none)\n");
    }
    for a in &inspection.pending_upstream {
        s.push_str(&format!(
            "  {}\n",
            serde_json::to_string(a).map_err(|e| e.to_string())?
        ));
    }
    print_out(&s)?;
    Ok(Findings::default())
}

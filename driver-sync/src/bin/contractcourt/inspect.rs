//! `contractcourt inspect`: a store's channels, every output of theirs that matters to us, the
//! ledger's totals and pending decisions (read only; readable while a run holds the store).
//! `--json` prints [`Inspection`], the versioned document described in
//! `docs/inspect-json.md`.

use std::path::Path;

use contractcourt_core::action::Action;
use contractcourt_core::chain::ledger::{OutputEntry, OutputStatus};
use contractcourt_core::chain::ChainArbitrator;
use contractcourt_core::resolver::ResolverKind;
use contractcourt_core::types::{Height, HtlcKey};
use contractcourt_sync::driver::load_engine;
use serde::Serialize;

use crate::exit::Findings;
use crate::{open_store, print_out, stored_config};

/// `schema` of the document.
pub const SCHEMA: &str = "contractcourt-inspect";
/// `version` of the document: raised whenever a field changes meaning or goes away.
pub const VERSION: u32 = 1;

/// The whole document.
#[derive(Serialize)]
pub struct Inspection {
    pub(crate) schema: &'static str,
    pub(crate) version: u32,
    pub(crate) tip: Option<Tip>,
    pub(crate) recorded_events: u64,
    pub(crate) known_preimages: usize,
    pub(crate) circuits: usize,
    pub(crate) channels: Vec<ChannelLine>,
    /// Channels no close confirmed for, with what a close of ours would give us.
    pub(crate) open_channels: Vec<crate::inspect_open::OpenChannel>,
    pub(crate) outputs: Vec<OutputLine>,
    pub(crate) totals: Totals,
    pub(crate) pending_upstream: Vec<Action>,
}

#[derive(Serialize)]
pub(crate) struct Tip {
    pub(crate) height: Height,
    pub(crate) hash: String,
}

#[derive(Serialize)]
pub(crate) struct Funding {
    pub(crate) outpoint: String,
    pub(crate) value_sat: u64,
}

#[derive(Serialize)]
pub(crate) struct ChannelLine {
    pub(crate) channel: String,
    pub(crate) state: String,
    pub(crate) funding: Vec<Funding>,
    pub(crate) last_update_id: u64,
}

/// One output of a confirmed close that matters to us.
#[derive(Serialize)]
pub(crate) struct OutputLine {
    pub(crate) channel: String,
    pub(crate) outpoint: String,
    pub(crate) what: String,
    pub(crate) amount_sat: u64,
    pub(crate) fees_paid_sat: u64,
    pub(crate) status: String,
    pub(crate) status_txid: Option<String>,
    pub(crate) maturity_height: Option<Height>,
    pub(crate) blocks_to_maturity: Option<Height>,
    pub(crate) next_step: Option<Height>,
    pub(crate) htlc_id: Option<u64>,
    pub(crate) direction: Option<&'static str>,
    pub(crate) payment_hash: Option<String>,
    pub(crate) preimage_known: Option<bool>,
}

#[derive(Serialize)]
pub(crate) struct Totals {
    pub(crate) recovered_sat: u64,
    pub(crate) fees_sat: u64,
    pub(crate) net_sat: i64,
    pub(crate) taken_by_peer_sat: u64,
    pub(crate) claiming_sat: u64,
    pub(crate) contested_sat: u64,
    pub(crate) timelocked_sat: u64,
    pub(crate) uneconomical_sat: u64,
    pub(crate) third_party_sat: u64,
    pub(crate) unknown_spend_sat: u64,
}

/// A status's name (the ledger's tag) and the transaction it names, if any.
fn status_parts(status: &OutputStatus) -> (String, Option<String>) {
    let name = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let txid = match status {
        OutputStatus::Confirming { txid, .. }
        | OutputStatus::Recovered { txid }
        | OutputStatus::SecondLevel { txid }
        | OutputStatus::TakenByPeer { txid }
        | OutputStatus::TakenByThirdParty { txid }
        | OutputStatus::UnknownSpend { txid } => Some(txid.to_string()),
        _ => None,
    };
    (name, txid)
}

/// The output's line, with what its resolver knows (the HTLC, its maturity).
fn output_line(engine: &ChainArbitrator, channel: &str, out: &OutputEntry) -> OutputLine {
    let (status, status_txid) = status_parts(&out.status);
    let tip = engine.tip().map_or(0, |t| t.height);
    let kind = engine
        .channels()
        .find(|c| c.data.info.id.to_string() == channel)
        .and_then(|c| c.resolvers.get(&out.outpoint))
        .map(|r| &r.kind);
    let htlc = |key: &HtlcKey, hash: &contractcourt_core::bolt3::PaymentHash, dir| {
        let known = engine.node().preimages.contains_key(hash);
        (
            Some(key.htlc_id),
            Some(dir),
            Some(hash.to_string()),
            Some(known),
        )
    };
    let (htlc_id, direction, payment_hash, preimage_known) = match kind {
        Some(ResolverKind::IncomingHtlc {
            htlc: key,
            payment_hash,
            ..
        }) => htlc(key, payment_hash, "incoming"),
        Some(ResolverKind::OutgoingHtlc {
            htlc: key,
            payment_hash,
            ..
        }) => htlc(key, payment_hash, "outgoing"),
        _ => (None, None, None, None),
    };
    // When the output becomes ours to take: its timelock (our balance's CSV delay, a
    // second-level output's), or an outgoing HTLC's timeout (claimable in the block after
    // its expiry).
    let maturity_height = match (&out.status, kind) {
        (OutputStatus::Timelocked { until }, _) => Some(*until),
        (_, Some(ResolverKind::CommitSweep { mature_at })) => Some(*mature_at),
        (_, Some(ResolverKind::OutgoingHtlc { cltv_expiry, .. })) => {
            Some(cltv_expiry.saturating_add(1))
        }
        _ => None,
    };
    OutputLine {
        channel: channel.to_owned(),
        outpoint: out.outpoint.to_string(),
        what: out.what.clone(),
        amount_sat: out.amount_sat,
        fees_paid_sat: out.fees_paid_sat,
        status,
        status_txid,
        maturity_height,
        blocks_to_maturity: maturity_height.map(|m| m.saturating_sub(tip)),
        next_step: out.next_step,
        htlc_id,
        direction,
        payment_hash,
        preimage_known,
    }
}

/// Everything `inspect` shows, from a loaded engine.
fn inspection(engine: &ChainArbitrator, recorded_events: u64) -> Inspection {
    let node = engine.node();
    let ledger = engine.ledger();
    let t = ledger.totals;
    Inspection {
        schema: SCHEMA,
        version: VERSION,
        tip: engine.tip().map(|t| Tip {
            height: t.height,
            hash: t.hash.to_string(),
        }),
        recorded_events,
        known_preimages: node.preimages.len(),
        circuits: node.circuits.len(),
        channels: engine
            .channels()
            .map(|c| ChannelLine {
                channel: c.data.info.id.to_string(),
                state: serde_json::to_value(c.state())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("{:?}", c.state())),
                funding: c
                    .data
                    .info
                    .funding
                    .iter()
                    .map(|f| Funding {
                        outpoint: f.outpoint.to_string(),
                        value_sat: f.value_sat,
                    })
                    .collect(),
                last_update_id: c.data.last_update_id,
            })
            .collect(),
        open_channels: crate::inspect_open::open_channels(engine),
        outputs: ledger
            .channels
            .iter()
            .flat_map(|ch| {
                let id = ch.channel.to_string();
                ch.outputs
                    .iter()
                    .map(move |o| output_line(engine, &id, o))
                    .collect::<Vec<_>>()
            })
            .collect(),
        totals: Totals {
            recovered_sat: t.recovered_sat,
            fees_sat: t.fees_sat,
            net_sat: t.recovered_sat as i64 - t.fees_sat as i64,
            taken_by_peer_sat: t.taken_by_peer_sat,
            claiming_sat: t.claiming_sat,
            contested_sat: t.contested_sat,
            timelocked_sat: t.timelocked_sat,
            uneconomical_sat: t.uneconomical_sat,
            third_party_sat: t.third_party_sat,
            unknown_spend_sat: t.unknown_spend_sat,
        },
        pending_upstream: node.pending_upstream(),
    }
}

/// Inspect a PostgreSQL store (read only, without its lease). Its rows are verified as they
/// are read (every record by the load; events as the recorder's count).
pub fn inspect_postgres(
    pg: contractcourt_sync::store::PostgresConfig,
    json: bool,
) -> Result<Findings, String> {
    use contractcourt_sync::store::{PostgresStore, Store};
    let schema = pg.schema.clone();
    let failed =
        |e: contractcourt_sync::store::StoreError| format!("postgres schema {schema}: {e}");
    let store = PostgresStore::open_read_only(pg).map_err(failed)?;
    let node = store
        .load()
        .map_err(failed)?
        .remove(&contractcourt_core::action::RecordKey::Node);
    let config = node
        .as_ref()
        .and_then(contractcourt_core::chain::stored_config)
        .unwrap_or_default();
    let engine =
        load_engine(&config, &store).map_err(|e| format!("postgres schema {schema}: {e}"))?;
    let doc = inspection(&engine, store.event_count().map_err(failed)?);
    if json {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        print_out(&format!("{text}\n"))?;
    } else {
        print_out(&crate::inspect_text::render(&doc)?)?;
    }
    Ok(Findings::default())
}

/// Inspect the store at `path`.
pub fn inspect(path: &Path, json: bool, svg: Option<&Path>) -> Result<Findings, String> {
    let store = open_store(path)?;
    // Everything checked, the flight recorder included, as `replay` reads it.
    let verified = store
        .verify()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let config = stored_config(&store)?;
    let engine = load_engine(&config, &store).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc = inspection(&engine, verified.events);
    if json {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        print_out(&format!("{text}\n"))?;
    } else {
        print_out(&crate::inspect_text::render(&doc)?)?;
    }
    if let Some(out) = svg {
        crate::draw::write_svg(&format!("store {}", path.display()), path, out)?;
    }
    Ok(Findings::default())
}

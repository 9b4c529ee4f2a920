//! The text form of a [`SimOutcome`]: the timeline table, the close summary and the ledger.

use std::fmt::Write as _;

use contractcourt_core::chain::ledger::{Ledger, OutputStatus};

use super::io::TimelineEntry;
use super::SimOutcome;

/// A txid shortened for a table: its first 8 and last 4 hex digits.
pub fn short_txid(txid: &bitcoin::Txid) -> String {
    let s = txid.to_string();
    format!("{}..{}", &s[..8], &s[s.len() - 4..])
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// Render a run for people. Deterministic. The same text as [`render_head`], a
/// [`render_line`] per timeline line, then [`render_tail`]: what a program streaming the lines
/// as they come prints.
pub fn render_text(o: &SimOutcome) -> String {
    let mut s = render_head(&o.scenario);
    for e in &o.timeline {
        s.push_str(&render_line(e));
    }
    s.push_str(&render_tail(o));
    s
}

/// The scenario's name and the timeline's column titles.
pub fn render_head(scenario: &str) -> String {
    let mut s = String::new();
    let name = if scenario.is_empty() {
        "(unnamed)"
    } else {
        scenario
    };
    let _ = writeln!(s, "scenario: {name}\n\nTIMELINE");
    let _ = writeln!(
        s,
        "{:>7}  {:<14}  {:>8}  {:>12}  event",
        "height", "txid", "fee", "amount"
    );
    s
}

/// One timeline line.
pub fn render_line(e: &TimelineEntry) -> String {
    format!(
        "{:>7}  {:<14}  {:>8}  {:>12}  {}\n",
        e.height,
        e.txid.as_ref().map_or_else(|| "-".to_string(), short_txid),
        opt(e.fee_sat),
        opt(e.amount_sat),
        e.event
    )
}

/// Everything after the timeline: the channel and heights, the close summary, the ledger, the
/// broadcast counts and the notes.
pub fn render_tail(o: &SimOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nchannel {} ({}), start height {} (scenario height 0), end height {}",
        o.channel, o.channel_type, o.start_height, o.end_height
    );
    let _ = writeln!(s, "\nCLOSE SUMMARY");
    if o.close_summaries.is_empty() {
        let _ = writeln!(s, "  (none: no close confirmed)");
    }
    for c in &o.close_summaries {
        if o.close_summaries.len() > 1 {
            let _ = writeln!(s, "  channel:      {}", c.channel);
        }
        let _ = writeln!(s, "  close:        {}", super::io::describe_close(&c.close));
        let _ = writeln!(
            s,
            "  trigger:      {}",
            super::io::describe_trigger(&c.trigger)
        );
        let _ = writeln!(
            s,
            "  closing tx:   {} at height {}",
            c.closing_txid, c.height
        );
        let _ = writeln!(s, "  our balance:  {} sat", c.our_balance_sat);
        let _ = writeln!(
            s,
            "  dust htlcs:   {} ({} msat)",
            c.dust_htlcs.len(),
            c.dust_msat
        );
    }
    s.push_str(&render_ledger(&o.ledger));
    let _ = writeln!(
        s,
        "\nbroadcasts: {} transaction(s), {} rebroadcast(s), {} refused by the mempool",
        o.broadcasts, o.rebroadcasts, o.rejections
    );
    for n in &o.notes {
        let _ = writeln!(s, "NOTE: {n}");
    }
    s
}

/// Render a ledger: per output status and the totals.
pub fn render_ledger(l: &Ledger) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nLEDGER (at height {})", l.tip);
    for ch in &l.channels {
        let _ = writeln!(s, "  channel {}: {:?}", ch.channel, ch.state);
        for out in &ch.outputs {
            let status = match &out.status {
                OutputStatus::Timelocked { until } => format!("timelocked until {until}"),
                OutputStatus::Contested => "contested".to_string(),
                OutputStatus::Claiming => "claiming".to_string(),
                OutputStatus::Confirming { txid, final_at } => {
                    format!("confirming in {} (final at {final_at})", short_txid(txid))
                }
                OutputStatus::Recovered { txid } => format!("recovered by {}", short_txid(txid)),
                OutputStatus::SecondLevel { txid } => {
                    format!("claimed by our htlc transaction {}", short_txid(txid))
                }
                OutputStatus::TakenByPeer { txid } => {
                    format!("taken by peer in {}", short_txid(txid))
                }
                OutputStatus::Expired => "expired, the peer's".to_string(),
                OutputStatus::TakenByThirdParty { txid } => {
                    format!("taken by a third party in {}", short_txid(txid))
                }
                OutputStatus::UnknownSpend { txid } => {
                    format!("SPENT BY AN UNKNOWN WITNESS in {}", short_txid(txid))
                }
                OutputStatus::Uneconomical => "left: worth less than claiming it".to_string(),
            };
            let next = out
                .next_step
                .map(|h| format!(", next step at {h}"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "    {:<24} {:>12} sat  fees {:>6}  {}{}",
                out.what, out.amount_sat, out.fees_paid_sat, status, next
            );
        }
    }
    let t = &l.totals;
    let _ = writeln!(
        s,
        "  totals: recovered {} sat (before fees), fees {} sat, net to our wallet and destination {} sat; taken by peer {} sat, still claiming {} sat, contested {} sat, timelocked {} sat, left as uneconomical {} sat",
        t.recovered_sat,
        t.fees_sat,
        t.recovered_sat as i64 - t.fees_sat as i64,
        t.taken_by_peer_sat,
        t.claiming_sat,
        t.contested_sat,
        t.timelocked_sat,
        t.uneconomical_sat
    );
    if t.third_party_sat > 0 || t.unknown_spend_sat > 0 {
        let _ = writeln!(
            s,
            "  also: taken by third parties {} sat, spent by unknown witnesses {} sat",
            t.third_party_sat, t.unknown_spend_sat
        );
    }
    s
}

/// What the ledger's figures mean (the same definitions as `contractcourt_core::chain::ledger`).
pub const LEDGER_HELP: &str = "\
Ledger figures, in satoshis:
  amount     an output's value in the transaction that created it
  fees       every fee we paid (or are paying, while a claim is out) to bring that output to our
             wallet or sweep destination: its share of our sweep or justice transaction, the fee
             of our second-level HTLC transaction that spent it (pre-signed and taken out of the
             HTLC's value on legacy channels, paid by wallet inputs under anchors), and for our
             anchor the CPFP child's fee; nothing for a spend of someone else's
  recovered  the value on the close of the outputs that ended ours, BEFORE fees: an HTLC output
             our own second-level transaction spent counts at its value on the commitment (its
             second-level output's row shows the smaller amount left after a pre-signed fee)
  net        recovered - fees: exactly what reached our wallet and sweep destination
Every other total counts outputs of the close, before fees, where they stand now.";

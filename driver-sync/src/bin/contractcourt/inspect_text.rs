//! The text form of `contractcourt inspect`.

use std::fmt::Write as _;

use crate::inspect::{Inspection, OutputLine};

/// An output's status in words, with its transaction shortened.
fn status_words(o: &OutputLine) -> String {
    let txid = o.status_txid.as_deref().map_or_else(String::new, |t| {
        let short = if t.len() > 12 {
            format!("{}..{}", &t[..8], &t[t.len() - 4..])
        } else {
            t.to_owned()
        };
        format!(" {short}")
    });
    format!("{}{txid}", o.status.replace('_', " "))
}

/// Details of an output: its maturity, its HTLC and whether we know the preimage.
fn details(o: &OutputLine) -> String {
    let mut parts = Vec::new();
    if let (Some(id), Some(dir)) = (o.htlc_id, o.direction) {
        parts.push(format!("{dir} htlc {id}"));
    }
    if let Some(hash) = &o.payment_hash {
        parts.push(format!("payment hash {hash}"));
    }
    match o.preimage_known {
        Some(true) => parts.push("preimage known".to_owned()),
        Some(false) => parts.push("no preimage".to_owned()),
        None => {}
    }
    if let (Some(at), Some(left)) = (o.maturity_height, o.blocks_to_maturity) {
        if left == 0 {
            parts.push(format!("mature since {at}"));
        } else {
            parts.push(format!("matures at {at}, in {left} block(s)"));
        }
    }
    if let Some(next) = o.next_step {
        parts.push(format!("next step at {next}"));
    }
    parts.join("; ")
}

/// Render an inspection for people.
pub fn render(d: &Inspection) -> Result<String, String> {
    let mut s = String::new();
    match &d.tip {
        Some(t) => {
            let _ = writeln!(s, "tip: {} {}", t.height, t.hash);
        }
        None => s.push_str("tip: none\n"),
    }
    let _ = writeln!(
        s,
        "recorded events: {}, known preimages: {}, circuits: {}\n\nCHANNELS",
        d.recorded_events, d.known_preimages, d.circuits
    );
    if d.channels.is_empty() {
        s.push_str("  (none)\n");
    }
    for c in &d.channels {
        let funding: Vec<String> = c
            .funding
            .iter()
            .map(|f| format!("{} ({} sat)", f.outpoint, f.value_sat))
            .collect();
        let _ = writeln!(
            s,
            "  {}  {}  update {}  funding {}",
            c.channel,
            c.state,
            c.last_update_id,
            funding.join(", ")
        );
    }
    open_channels(&mut s, d);
    s.push_str("\nOUTPUTS\n");
    if d.outputs.is_empty() {
        s.push_str("  (none: no close confirmed)\n");
    }
    for o in &d.outputs {
        let _ = writeln!(
            s,
            "  {}  {:<24} {:>12} sat  fees {:>6}  {}",
            o.outpoint,
            o.what,
            o.amount_sat,
            o.fees_paid_sat,
            status_words(o)
        );
        let more = details(o);
        if !more.is_empty() {
            let _ = writeln!(s, "      {more}");
        }
    }
    let t = &d.totals;
    let _ = writeln!(
        s,
        "  totals: recovered {} sat (before fees), fees {} sat, net to our wallet and destination {} sat; taken by peer {} sat, still claiming {} sat, contested {} sat, timelocked {} sat, left as uneconomical {} sat, taken by third parties {} sat, spent by unknown witnesses {} sat",
        t.recovered_sat,
        t.fees_sat,
        t.net_sat,
        t.taken_by_peer_sat,
        t.claiming_sat,
        t.contested_sat,
        t.timelocked_sat,
        t.uneconomical_sat,
        t.third_party_sat,
        t.unknown_spend_sat
    );
    s.push_str("\nPENDING UPSTREAM DECISIONS\n");
    if d.pending_upstream.is_empty() {
        s.push_str("  (none)\n");
    }
    for a in &d.pending_upstream {
        let line = serde_json::to_string(a).map_err(|e| e.to_string())?;
        let _ = writeln!(s, "  {line}");
    }
    Ok(s)
}

/// The channels not closed yet, with what a close of ours would give us now.
fn open_channels(s: &mut String, d: &Inspection) {
    s.push_str("\nOPEN CHANNELS (what a close of ours would give us now)\n");
    if d.open_channels.is_empty() {
        s.push_str("  (none)\n");
    }
    for c in &d.open_channels {
        let _ = writeln!(
            s,
            "  {}  commitment {}: our balance {} sat after a commitment fee of {} sat{}, claimable {} blocks after it confirms",
            c.channel,
            c.commitment_number
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
            c.claimable_on_close_sat,
            c.commitment_fee_sat,
            if c.we_fund { " (we pay it)" } else { " (the peer pays it)" },
            c.to_self_delay
        );
        for h in &c.htlcs {
            let _ = writeln!(
                s,
                "      {} htlc {} {} sat, expiry {}: {}{}",
                h.direction,
                h.htlc_id,
                h.amount_sat,
                h.cltv_expiry,
                h.claimable.replace('_', " "),
                if h.direction == "incoming" && !h.preimage_known {
                    " (no preimage)"
                } else {
                    ""
                }
            );
        }
    }
}

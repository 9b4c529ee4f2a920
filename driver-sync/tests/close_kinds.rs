//! Every kind of close the scenario format has, each a shipped scenario in `scenarios/`, run
//! through the program; each test checks what BOLT 5 (and BOLT 2/3) demands of the outcome,
//! from the scenario's own numbers, not what the program printed before.

use std::process::Command;

use serde_json::Value;

mod program;
use program::root;

/// The scenario file and the `simulate --json` document of it (a run that exits 0).
fn simulate(name: &str) -> (Value, Value) {
    simulate_exiting(name, 0)
}

/// The same, of a run that exits with `code` (the documented exit codes).
fn simulate_exiting(name: &str, code: i32) -> (Value, Value) {
    let path = format!("scenarios/{name}");
    let o = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .args(["simulate", "--json", &path])
        .current_dir(root())
        .output()
        .expect("the binary runs");
    assert_eq!(
        o.status.code(),
        Some(code),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let text = std::fs::read_to_string(root().join(&path)).expect("the scenario");
    let scenario: Value = serde_json::from_str(&text).expect("scenario JSON");
    assert_eq!(doc["rejections"], 0, "{name}: a broadcast was refused");
    (scenario, doc)
}

fn outputs(doc: &Value) -> &Vec<Value> {
    doc["ledger"]["channels"][0]["outputs"]
        .as_array()
        .expect("the channel's outputs")
}

fn status(o: &Value) -> &str {
    o["status"]["status"].as_str().unwrap_or_default()
}

fn summary(doc: &Value) -> &Value {
    let all = doc["close_summaries"].as_array().expect("close summaries");
    assert_eq!(all.len(), 1, "one close: {all:?}");
    &all[0]
}

/// The first timeline entry whose event starts with `prefix`: (absolute height, entry).
fn first_event<'a>(doc: &'a Value, prefix: &str) -> Option<(u64, &'a Value)> {
    doc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .find(|e| e["event"].as_str().is_some_and(|t| t.starts_with(prefix)))
        .map(|e| (e["height"].as_u64().expect("height"), e))
}

fn start(doc: &Value) -> u64 {
    doc["start_height"].as_u64().expect("start height")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("a number")
}

#[test]
fn a_revoked_commitment_with_htlcs_has_every_output_taken_by_justice() {
    let (scenario, doc) = simulate("breach-with-htlcs.json");
    let s = summary(&doc);
    assert_eq!(s["close"]["kind"], "breach", "{s}");
    // BOLT 5: on a revoked commitment every output but ours (to_remote) is claimed through
    // the revocation key: the peer's to_local and each HTLC output, offered and received.
    let n_htlcs = scenario["htlcs"].as_array().expect("htlcs").len();
    let revoked: Vec<&Value> = outputs(&doc)
        .iter()
        .filter(|o| {
            o["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("revoked commitment"))
        })
        .collect();
    assert_eq!(revoked.len(), n_htlcs + 1, "to_local and each htlc");
    for o in &revoked {
        assert_eq!(status(o), "recovered", "{o}");
    }
    // The HTLC outputs' amounts are the scenario's HTLCs (none trimmed at this fee rate).
    let mut htlc_sats: Vec<u64> = scenario["htlcs"]
        .as_array()
        .expect("htlcs")
        .iter()
        .map(|h| u(&h["amount_msat"]) / 1000)
        .collect();
    let mut claimed: Vec<u64> = revoked.iter().map(|o| u(&o["amount_sat"])).collect();
    htlc_sats.sort_unstable();
    claimed.sort_unstable();
    for sat in &htlc_sats {
        let i = claimed
            .iter()
            .position(|c| c == sat)
            .unwrap_or_else(|| panic!("htlc of {sat} sat claimed by justice: {claimed:?}"));
        claimed.remove(i);
    }
    // Justice must land before the peer's CSV delay lets it take its to_local.
    let confirmed = u(&s["height"]);
    let delay = u(&scenario["to_self_delay"]);
    let last_spend = doc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|e| {
            e["event"]
                .as_str()
                .is_some_and(|t| t.starts_with("confirmed: claim of"))
        })
        .map(|e| u(&e["height"]))
        .max()
        .expect("justice claims confirmed");
    assert!(
        last_spend < confirmed + delay,
        "{last_spend} vs {confirmed}+{delay}"
    );
    assert_eq!(doc["ledger"]["totals"]["taken_by_peer_sat"], 0);
}

#[test]
fn the_peers_pending_commitment_is_resolved_as_its_commitment() {
    let (scenario, doc) = simulate("peer-pending-commitment.json");
    let s = summary(&doc);
    // The commitment that confirmed is the pending one (only it has the HTLCs).
    assert_eq!(s["close"]["kind"], "remote", "{s}");
    assert_eq!(s["close"]["pending"], true, "{s}");
    let (_, confirmed) =
        first_event(&doc, "confirmed: peer's pending commitment").expect("the pending one");
    assert_eq!(confirmed["txid"], s["closing_txid"]);
    let htlcs = scenario["htlcs"].as_array().expect("htlcs");
    let base = start(&doc);
    for (what, spec) in [
        ("outgoing htlc 0", &htlcs[0]),
        ("incoming htlc 0", &htlcs[1]),
        ("incoming htlc 1", &htlcs[2]),
    ] {
        let row = outputs(&doc)
            .iter()
            .find(|o| o["what"] == what)
            .unwrap_or_else(|| panic!("{what} in the ledger"));
        let expiry = base + u(&spec["cltv_expiry"]);
        match what {
            // BOLT 5: an HTLC we offered is timed out once its expiry is reached — not before.
            "outgoing htlc 0" => {
                assert_eq!(status(row), "recovered", "{row}");
                let (h, _) =
                    first_event(&doc, "broadcast claim of outgoing htlc 0").expect("claim");
                assert!(h >= expiry, "timed out at {h}, before its expiry {expiry}");
            }
            // One we received and know the preimage of is claimed with it.
            "incoming htlc 0" => {
                assert_eq!(spec["we_know_preimage"], true);
                assert_eq!(status(row), "recovered", "{row}");
                let (h, _) =
                    first_event(&doc, "broadcast claim of incoming htlc 0").expect("claim");
                assert!(h < expiry, "claimed at {h}, after its expiry {expiry}");
            }
            // Without the preimage it is the peer's once it times out.
            _ => assert_eq!(status(row), "taken_by_peer", "{row}"),
        }
    }
}

#[test]
fn a_cooperative_close_leaves_the_engine_nothing_to_claim() {
    let (_, doc) = simulate("cooperative-close.json");
    let s = summary(&doc);
    assert_eq!(s["close"]["kind"], "cooperative", "{s}");
    let (_, confirmed) = first_event(&doc, "confirmed: cooperative close").expect("confirmed");
    assert_eq!(confirmed["txid"], s["closing_txid"]);
    // Both balances went straight to the shutdown scripts: no commitment, no claim.
    assert_eq!(doc["broadcasts"], 0);
    assert!(outputs(&doc).is_empty(), "{:?}", outputs(&doc));
    assert_eq!(doc["ledger"]["channels"][0]["state"], "fully_resolved");
    assert!(first_event(&doc, "broadcast our commitment").is_none());
}

#[test]
fn after_data_loss_we_never_broadcast_our_commitment_and_sweep_our_balance() {
    let (scenario, doc) = simulate("data-loss.json");
    let s = summary(&doc);
    // The peer's commitment is newer than any the engine has: a future commitment.
    assert_eq!(s["close"]["kind"], "future_remote", "{s}");
    assert_eq!(s["trigger"]["kind"], "data_loss", "{s}");
    // Our commitment is revoked for all we know: broadcasting it would hand the peer
    // everything (BOLT 2, option_data_loss_protect).
    assert!(first_event(&doc, "broadcast our commitment").is_none());
    // static_remotekey: our balance on their commitment pays our own key, claimable though we
    // lost the per-commitment point.
    assert_eq!(scenario["channel_type"], "static_remote_key");
    let ours = outputs(&doc)
        .iter()
        .find(|o| o["what"] == "our balance")
        .expect("our balance");
    assert_eq!(status(ours), "recovered", "{ours}");
    // The HTLC the lost update added is not ours to claim: the engine does not claim it.
    assert!(first_event(&doc, "broadcast claim of incoming htlc").is_none());
    assert!(first_event(&doc, "broadcast claim of our to_remote").is_some());
}

#[test]
fn a_preimage_learned_at_a_height_is_claimed_from_then_on_if_before_expiry() {
    let (scenario, doc) = simulate("preimage-learned.json");
    let base = start(&doc);
    let htlcs = scenario["htlcs"].as_array().expect("htlcs");
    for (i, h) in htlcs.iter().enumerate() {
        let learned = base + u(&h["learns_preimage"]["at_height"]);
        let expiry = base + u(&h["cltv_expiry"]);
        let what = format!("incoming htlc {i}");
        let row = outputs(&doc)
            .iter()
            .find(|o| o["what"] == what.as_str())
            .unwrap_or_else(|| panic!("{what} in the ledger"));
        let claim = first_event(&doc, &format!("broadcast claim of {what}"));
        if learned < expiry {
            // BOLT 5: claimed with HTLC-success once known — not before (no preimage) — and
            // before the peer may time it out.
            let (h_claim, _) = claim.unwrap_or_else(|| panic!("{what} claimed"));
            assert!(
                h_claim >= learned,
                "{what} claimed at {h_claim} before {learned}"
            );
            assert!(
                h_claim < expiry,
                "{what} claimed at {h_claim}, expiry {expiry}"
            );
            assert_eq!(status(row), "second_level", "{row}");
        } else {
            // Learned after its expiry, when the peer has timed it out: lost, never claimed.
            assert!(claim.is_none(), "{what}: {claim:?}");
            assert_eq!(status(row), "taken_by_peer", "{row}");
        }
    }
}

#[test]
fn claims_made_during_a_fee_spike_are_priced_for_it_and_pre_signed_ones_are_not() {
    let (scenario, doc) = simulate("fee-spike.json");
    let rates = scenario["fee_rates"].as_array().expect("fee rates");
    let (spike_from, spike) = (u(&rates[1]["from_height"]), u(&rates[1]["sat_per_vb"]));
    let spike_to = u(&rates[2]["from_height"]);
    let base = start(&doc);
    let feerate_per_kw = 2500; // the scenario's default commitment fee rate
    let mut during_spike = 0;
    for e in doc["timeline"].as_array().expect("timeline") {
        let text = e["event"].as_str().unwrap_or_default();
        if !text.starts_with("broadcast claim of") {
            continue;
        }
        let (h, fee) = (u(&e["height"]), u(&e["fee_sat"]));
        if text.ends_with("(second level)") || text.contains("to_local") {
            // Our own sweeps: one P2WSH input (over 100 vB with its output) during the spike
            // pay at least the spike's rate.
            if (base + spike_from..base + spike_to).contains(&h) {
                assert!(fee >= spike * 100, "{text} at {h}: {fee} sat");
                during_spike += 1;
            }
        } else if text.starts_with("broadcast claim of outgoing htlc") {
            // BOLT 3: an HTLC-timeout of a non-anchor channel pays its pre-signed fee,
            // feerate_per_kw * 663 / 1000, whatever the market.
            assert_eq!(fee, feerate_per_kw * 663 / 1000, "{text}");
        } else if text.starts_with("broadcast claim of incoming htlc") {
            // HTLC-success: feerate_per_kw * 703 / 1000.
            assert_eq!(fee, feerate_per_kw * 703 / 1000, "{text}");
        }
    }
    assert!(during_spike > 0, "a sweep was made during the spike");
    for o in outputs(&doc) {
        let s = status(o);
        assert!(s == "recovered" || s == "second_level", "{o}");
    }
}

/// The ledger rows of the channel `id`.
fn channel<'a>(doc: &'a Value, id: &Value) -> &'a Value {
    doc["ledger"]["channels"]
        .as_array()
        .expect("ledger channels")
        .iter()
        .find(|c| c["channel"] == *id)
        .unwrap_or_else(|| panic!("channel {id} in the ledger"))
}

fn summary_of<'a>(doc: &'a Value, id: &Value) -> &'a Value {
    doc["close_summaries"]
        .as_array()
        .expect("close summaries")
        .iter()
        .find(|s| s["channel"] == *id)
        .unwrap_or_else(|| panic!("the close of {id}"))
}

#[test]
fn several_channels_in_one_scenario_each_close_on_their_own_terms() {
    let (scenario, doc) = simulate("multi-channel.json");
    let ids: Vec<Value> = std::iter::once(doc["channel"].clone())
        .chain(doc["extra_channels"].as_array().expect("extra").clone())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(doc["ledger"]["channels"].as_array().map(Vec::len), Some(3));
    for id in &ids {
        assert_eq!(channel(&doc, id)["state"], "fully_resolved", "{id}");
    }
    let base = start(&doc);
    // Channel 0: our force close. BOLT 5: to_local only after to_self_delay; the outgoing HTLC
    // timed out only from its expiry; the incoming one claimed with its preimage.
    let s0 = summary_of(&doc, &ids[0]);
    assert_eq!(s0["close"]["kind"], "local", "{s0}");
    let confirmed = u(&s0["height"]);
    let delay = u(&scenario["to_self_delay"]);
    let (to_local, _) =
        first_event(&doc, "confirmed: claim of ch0: our to_local").expect("to_local swept");
    assert!(
        to_local >= confirmed + delay,
        "{to_local} < {confirmed}+{delay}"
    );
    let expiry = base + u(&scenario["htlcs"][0]["cltv_expiry"]);
    let (timeout, _) =
        first_event(&doc, "confirmed: claim of ch0: outgoing htlc 0").expect("timed out");
    assert!(timeout >= expiry, "{timeout} < {expiry}");
    for row in channel(&doc, &ids[0])["outputs"].as_array().expect("rows") {
        let s = status(row);
        assert!(s == "recovered" || s == "second_level", "{row}");
    }
    // Channel 1: a breach with HTLCs: every output of the revoked commitment is ours.
    let s1 = summary_of(&doc, &ids[1]);
    assert_eq!(s1["close"]["kind"], "breach", "{s1}");
    let rows = channel(&doc, &ids[1])["outputs"].as_array().expect("rows");
    let revoked = rows
        .iter()
        .filter(|o| o["what"].as_str().is_some_and(|w| w.starts_with("revoked")))
        .count();
    let n_htlcs = scenario["extra_channels"][0]["htlcs"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(revoked, n_htlcs + 1);
    assert!(rows.iter().all(|o| status(o) == "recovered"), "{rows:?}");
    // Channel 2: cooperative: nothing to claim.
    let s2 = summary_of(&doc, &ids[2]);
    assert_eq!(s2["close"]["kind"], "cooperative", "{s2}");
    assert_eq!(channel(&doc, &ids[2])["outputs"], serde_json::json!([]));
    assert_eq!(doc["ledger"]["totals"]["taken_by_peer_sat"], 0);
}

#[test]
fn a_resumable_run_of_several_channels_is_refused_in_one_line() {
    let dir = std::env::temp_dir().join(format!("cc-close-kinds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let db = dir.join("run.sqlite");
    let chain = dir.join("chain");
    let o = Command::new(env!("CARGO_BIN_EXE_contractcourt"))
        .args(["simulate", "--db"])
        .arg(&db)
        .arg("--chain-dir")
        .arg(&chain)
        .arg("scenarios/multi-channel.json")
        .current_dir(root())
        .output()
        .expect("runs");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("extra_channels"), "{err}");
    assert!(!db.exists(), "nothing written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn after_a_reorg_the_commitment_that_confirms_instead_is_the_one_resolved() {
    // A close reorged out is an alert for the operator: exit code 5.
    let (scenario, doc) = simulate_exiting("reorg.json", 5);
    assert!(u(&doc["alerts"]) >= 1);
    let base = start(&doc);
    let all = doc["close_summaries"].as_array().expect("summaries");
    // Our commitment confirmed first; the reorg replaced it with the peer's.
    assert_eq!(
        all.first().map(|s| &s["close"]["kind"]),
        Some(&"local".into())
    );
    let last = all.last().expect("a close");
    assert_eq!(last["close"]["kind"], "remote", "{last}");
    let (_, peer) = first_event(&doc, "confirmed: peer's commitment").expect("confirmed");
    assert_eq!(peer["txid"], last["closing_txid"]);
    let ours = all[0]["closing_txid"].as_str().expect("txid");
    let reorg = &scenario["reorg"];
    let fork = base + u(&reorg["at_height"]) - u(&reorg["depth"]);
    assert_eq!(u(&last["height"]), fork + 1, "in the fork's first block");
    // Nothing of ours is left on our (reorged-out) commitment: every row is an output of the
    // peer's commitment, resolved as BOLT 5 says for the remote commitment.
    let rows = outputs(&doc);
    assert!(!rows.is_empty());
    for row in rows {
        let outpoint = row["outpoint"].as_str().expect("outpoint");
        assert!(!outpoint.starts_with(ours), "{row}");
        assert!(
            outpoint.starts_with(last["closing_txid"].as_str().expect("txid")),
            "{row}"
        );
        // On their commitment there is no second level: each HTLC output is claimed directly.
        assert_eq!(status(row), "recovered", "{row}");
    }
    let expiry = base + u(&scenario["htlcs"][0]["cltv_expiry"]);
    let (timeout, _) = first_event(&doc, "confirmed: claim of outgoing htlc 0").expect("timeout");
    assert!(timeout >= expiry, "{timeout} < {expiry}");
    assert!(rows.iter().any(|r| r["what"] == "our balance"), "to_remote");
}

#[test]
fn an_idle_peer_cannot_keep_the_channel_open_and_its_unspent_htlc_is_not_called_spent() {
    let (scenario, doc) = simulate("peer-idle.json");
    let base = start(&doc);
    let htlc = &scenario["htlcs"][0];
    assert_eq!(htlc["direction"], "incoming");
    let expiry = base + u(&htlc["cltv_expiry"]);
    let idle = base + u(&scenario["peer"]["idle_from"]);
    assert!(
        idle < expiry,
        "the peer went idle before it could time the htlc out"
    );
    // Nobody spent the incoming HTLC's output: no transaction of the peer's for it.
    assert!(first_event(&doc, "peer times out").is_none());
    // Without its preimage we can never claim it; once expired it is the peer's (BOLT 5: the
    // offerer may time it out), and the channel does not wait forever for the peer.
    assert_eq!(doc["ledger"]["channels"][0]["state"], "fully_resolved");
    let row = outputs(&doc)
        .iter()
        .find(|o| o["what"] == "incoming htlc 0")
        .expect("the incoming htlc");
    assert_ne!(status(row), "recovered", "{row}");
    assert!(first_event(&doc, "broadcast claim of incoming htlc 0").is_none());
    // The timeline says it stayed unspent (it said "spent at", naming no transaction).
    let (h, line) = first_event(&doc, "final: incoming htlc 0").expect("its final line");
    assert!(h >= expiry);
    let text = line["event"].as_str().expect("text");
    assert!(line["txid"].is_null(), "{line}");
    assert!(!text.contains("spent at"), "{text}");
    assert!(text.contains("unspent"), "{text}");
}

#[test]
fn a_third_party_spending_the_anchors_leaves_our_claims_untouched() {
    let (scenario, doc) = simulate("third-party-anchor.json");
    assert_eq!(scenario["channel_type"], "anchors_zero_fee_htlc");
    let s = summary(&doc);
    let confirmed = u(&s["height"]);
    // BOLT 3: anyone may spend an anchor once its commitment has 16 confirmations; Bitcoin
    // Core's script interpreter accepted it no earlier.
    let (spent, _) =
        first_event(&doc, "confirmed: third party's anchor spend").expect("the anchors spent");
    assert!(spent >= confirmed + 15, "{spent} vs {confirmed}");
    // Our to_remote is ours all the same; the anchor's 330 sat are not counted as recovered.
    let ours = outputs(&doc)
        .iter()
        .find(|o| o["what"] == "our balance")
        .expect("to_remote");
    assert_eq!(status(ours), "recovered", "{ours}");
    for row in outputs(&doc).iter().filter(|o| o["what"] == "anchor") {
        assert_ne!(status(row), "recovered", "{row}");
        assert_eq!(u(&row["amount_sat"]), 330);
    }
    assert_eq!(doc["ledger"]["channels"][0]["state"], "fully_resolved");
    assert_eq!(doc["alerts"], 0);
}

#[test]
fn a_preimage_learned_from_the_chain_claims_the_incoming_leg_before_its_expiry() {
    let (scenario, doc) = simulate("preimage-from-chain.json");
    let base = start(&doc);
    let incoming = &scenario["htlcs"][0];
    let outgoing = &scenario["extra_channels"][0]["htlcs"][0];
    assert_eq!(
        outgoing["forwarded_from"],
        serde_json::json!({ "channel": 0, "htlc": 0 })
    );
    // The peer of channel 1 claims the forwarded HTLC with its preimage, on chain.
    let (revealed, _) = first_event(
        &doc,
        "confirmed: ch1: peer claims outgoing htlc 0 with the preimage",
    )
    .expect("the peer's preimage claim confirmed");
    // Without any other source of the preimage, the engine claims the incoming leg on
    // channel 0 only once it has read it there — and before that leg expires (BOLT 5: an
    // HTLC-success must confirm before the offerer can time it out).
    let (claimed, _) =
        first_event(&doc, "broadcast claim of ch0: incoming htlc 0").expect("the incoming leg");
    let expiry = base + u(&incoming["cltv_expiry"]);
    assert!(
        claimed >= revealed,
        "claimed at {claimed} before {revealed}"
    );
    assert!(claimed < expiry, "claimed at {claimed}, expiry {expiry}");
    let ids = [doc["channel"].clone(), doc["extra_channels"][0].clone()];
    let in_row = channel(&doc, &ids[0])["outputs"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|o| o["what"] == "incoming htlc 0")
        .cloned()
        .expect("the incoming leg");
    assert_eq!(status(&in_row), "second_level", "{in_row}");
    let out_row = channel(&doc, &ids[1])["outputs"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|o| o["what"] == "outgoing htlc 0")
        .cloned()
        .expect("the outgoing leg");
    assert_eq!(status(&out_row), "taken_by_peer", "{out_row}");
    // What the peer took downstream we got upstream: more, by our forwarding fee.
    assert!(u(&in_row["amount_sat"]) >= u(&out_row["amount_sat"]));
}

//! Scenario validation: every BOLT 2 limit a node would refuse a channel for is refused here too,
//! with an error naming the field.

use super::*;

fn base() -> serde_json::Value {
    serde_json::json!({
        "channel_type": "static_remote_key",
        "capacity_sat": 1_000_000,
        "local_balance_sat": 600_000,
        "to_self_delay": 20,
        "htlcs": [
            { "direction": "outgoing", "amount_msat": 90_000_000, "cltv_expiry": 20 },
            { "direction": "incoming", "amount_msat": 60_000_000, "cltv_expiry": 120,
              "we_know_preimage": true }
        ],
        "close": { "by": "us" },
        "run_blocks": 80
    })
}

/// The field the scenario is refused for, with `edit` applied to the base scenario.
fn refused_field(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = base();
    edit(&mut v);
    match Scenario::from_json(&v.to_string()) {
        Err(ScenarioError::Invalid { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_base_scenario_and_every_shipped_scenario_are_valid() {
    Scenario::from_json(&base().to_string()).expect("base");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read");
            Scenario::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 5, "{n} scenarios");
}

#[test]
fn a_commitment_fee_rate_below_253_sat_per_kw_is_refused() {
    assert_eq!(
        refused_field(|v| v["commitment_feerate_per_kw"] = 0.into()),
        "commitment_feerate_per_kw"
    );
    assert_eq!(
        refused_field(|v| v["commitment_feerate_per_kw"] = 252.into()),
        "commitment_feerate_per_kw"
    );
    let mut v = base();
    v["commitment_feerate_per_kw"] = 253.into();
    Scenario::from_json(&v.to_string()).expect("253 sat/kw is the floor, allowed");
}

#[test]
fn a_dust_limit_below_354_sat_is_refused() {
    assert_eq!(
        refused_field(|v| v["dust_limit_sat"] = 0.into()),
        "dust_limit_sat"
    );
    assert_eq!(
        refused_field(|v| v["dust_limit_sat"] = 353.into()),
        "dust_limit_sat"
    );
    let mut v = base();
    v["dust_limit_sat"] = 354.into();
    Scenario::from_json(&v.to_string()).expect("354 sat is the floor, allowed");
}

#[test]
fn a_time_based_cltv_expiry_is_refused() {
    assert_eq!(
        refused_field(|v| v["htlcs"][1]["cltv_expiry"] = 500_000_000.into()),
        "htlcs[1].cltv_expiry"
    );
    assert_eq!(
        refused_field(|v| v["htlcs"][0]["cltv_expiry"] = 0.into()),
        "htlcs[0].cltv_expiry"
    );
}

#[test]
fn preimage_flags_on_the_wrong_direction_are_refused_not_ignored() {
    assert_eq!(
        refused_field(|v| v["htlcs"][0]["we_know_preimage"] = true.into()),
        "htlcs[0].we_know_preimage"
    );
    assert_eq!(
        refused_field(|v| v["htlcs"][1]["peer_knows_preimage"] = true.into()),
        "htlcs[1].peer_knows_preimage"
    );
}

#[test]
fn to_self_delay_out_of_range_is_refused() {
    assert_eq!(
        refused_field(|v| v["to_self_delay"] = 0.into()),
        "to_self_delay"
    );
    assert_eq!(
        refused_field(|v| v["to_self_delay"] = 2017.into()),
        "to_self_delay"
    );
}

#[test]
fn htlcs_worth_more_than_the_offering_side_has_are_refused() {
    // We have 600,000 sat: outgoing HTLCs of 600,001 sat cannot be ours to offer.
    assert_eq!(
        refused_field(|v| v["htlcs"][0]["amount_msat"] = 600_000_001u64.into()),
        "htlcs"
    );
    // The peer has 400,000 sat.
    assert_eq!(
        refused_field(|v| v["htlcs"][1]["amount_msat"] = 400_000_001u64.into()),
        "htlcs"
    );
}

#[test]
fn the_error_names_the_field() {
    let mut v = base();
    v["dust_limit_sat"] = 0.into();
    let e = Scenario::from_json(&v.to_string()).expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("scenario is not valid: dust_limit_sat: 0 is out of range"),
        "{e}"
    );
}

#[test]
fn a_fee_rate_of_0_sat_per_vb_and_a_height_given_twice_are_refused() {
    assert_eq!(
        refused_field(|v| {
            v["fee_rates"] = serde_json::json!([
                { "from_height": 0, "sat_per_vb": 2 },
                { "from_height": 10, "sat_per_vb": 0 }
            ])
        }),
        "fee_rates[1].sat_per_vb"
    );
    assert_eq!(
        refused_field(|v| {
            v["fee_rates"] = serde_json::json!([
                { "from_height": 5, "sat_per_vb": 2 },
                { "from_height": 5, "sat_per_vb": 9 }
            ])
        }),
        "fee_rates[1].from_height"
    );
}

#[test]
fn a_funder_who_cannot_pay_the_commitment_fee_is_refused() {
    // 2,500 sat/kw on a static_remote_key commitment with two HTLCs: (724 + 2 * 172) * 2.5 =
    // 2,670 sat. We offer 90,000 sat of HTLCs, so 92,669 sat is one short.
    assert_eq!(
        refused_field(|v| {
            v["capacity_sat"] = 200_000.into();
            v["local_balance_sat"] = 92_669.into();
            v["htlcs"][1]["amount_msat"] = 60_000_000.into();
        }),
        "local_balance_sat"
    );
    let mut v = base();
    v["capacity_sat"] = 200_000.into();
    v["local_balance_sat"] = 92_670.into();
    Scenario::from_json(&v.to_string()).expect("92,670 sat pays the fee exactly");
    // Under anchors the funder pays the two 330-sat anchors too: (1124 + 2 * 172) * 2.5 =
    // 3,670 sat, plus 660.
    let mut v = base();
    v["channel_type"] = "anchors_zero_fee_htlc".into();
    v["capacity_sat"] = 200_000.into();
    v["local_balance_sat"] = (90_000 + 3_670 + 660).into();
    Scenario::from_json(&v.to_string()).expect("pays fee and anchors exactly");
    v["local_balance_sat"] = (90_000 + 3_670 + 659).into();
    let e = Scenario::from_json(&v.to_string()).expect_err("one short");
    assert!(e.to_string().contains("local_balance_sat"), "{e}");
}

#[test]
fn each_kind_of_close_is_refused_where_it_cannot_happen_naming_the_field() {
    use serde_json::json;
    // A commitment of the peer's: only the peer broadcasts it.
    for kind in ["revoked_with_htlcs", "pending", "data_loss"] {
        assert_eq!(
            refused_field(|v| v["close"] = json!({ "by": "us", "at_height": 5, "kind": kind })),
            "close.kind",
            "{kind}"
        );
        // They are about the update that added HTLCs: none, nothing to show.
        assert_eq!(
            refused_field(|v| {
                v["close"] = json!({ "by": "peer", "at_height": 5, "kind": kind });
                v["htlcs"] = json!([]);
            }),
            "htlcs",
            "{kind}"
        );
    }
    // A cooperative close is negotiated at a height, with no HTLC left.
    assert_eq!(
        refused_field(|v| v["close"] = json!({ "by": "us", "kind": "cooperative" })),
        "close.at_height"
    );
    assert_eq!(
        refused_field(
            |v| v["close"] = json!({ "by": "peer", "at_height": 5, "kind": "cooperative" })
        ),
        "htlcs"
    );
    let mut ok = base();
    ok["htlcs"] = json!([]);
    ok["close"] = json!({ "by": "us", "at_height": 5, "kind": "cooperative" });
    Scenario::from_json(&ok.to_string()).expect("a cooperative close without htlcs");
}

#[test]
fn a_preimage_learned_during_the_run_is_checked_naming_the_field() {
    use serde_json::json;
    let learn = json!({ "at_height": 10, "from": "downstream" });
    // Outgoing: its preimage is the peer's to reveal.
    assert_eq!(
        refused_field(|v| v["htlcs"][0]["learns_preimage"] = learn.clone()),
        "htlcs[0].learns_preimage"
    );
    // Known from the start already.
    assert_eq!(
        refused_field(|v| v["htlcs"][1]["learns_preimage"] = learn.clone()),
        "htlcs[1].learns_preimage"
    );
    // After the last block.
    assert_eq!(
        refused_field(|v| {
            v["htlcs"][1]["we_know_preimage"] = false.into();
            v["htlcs"][1]["learns_preimage"] = json!({ "at_height": 80, "from": "invoice" });
        }),
        "htlcs[1].learns_preimage.at_height"
    );
    let mut ok = base();
    ok["htlcs"][1]["we_know_preimage"] = false.into();
    ok["htlcs"][1]["learns_preimage"] = learn;
    let s = Scenario::from_json(&ok.to_string()).expect("valid");
    assert_eq!(
        s.htlcs[1].learns_preimage.map(|l| l.from),
        Some(PreimageFrom::Downstream)
    );
    // An unknown source is a JSON error, not a silently ignored value.
    let mut bad = base();
    bad["htlcs"][1]["learns_preimage"] = json!({ "at_height": 10, "from": "the moon" });
    assert!(matches!(
        Scenario::from_json(&bad.to_string()),
        Err(ScenarioError::Json(_))
    ));
}

#[test]
fn an_extra_channel_is_checked_as_a_channel_naming_its_field() {
    use serde_json::json;
    let extra = json!({ "seed": 9, "channel_type": "static_remote_key",
        "capacity_sat": 500_000, "local_balance_sat": 200_000,
        "close": { "by": "peer", "at_height": 5 } });
    let mut ok = base();
    ok["extra_channels"] = json!([extra.clone()]);
    let s = Scenario::from_json(&ok.to_string()).expect("valid");
    assert_eq!(s.channel_views().len(), 2);
    assert_eq!(s.channel_views()[1].capacity_sat, 500_000);
    assert_eq!(
        refused_field(|v| {
            let mut e = extra.clone();
            e["dust_limit_sat"] = 100.into();
            v["extra_channels"] = json!([e]);
        }),
        "extra_channels[0].dust_limit_sat"
    );
    assert_eq!(
        refused_field(|v| {
            let mut e = extra.clone();
            e["seed"] = 1.into();
            v["extra_channels"] = json!([e]);
        }),
        "extra_channels[0].seed"
    );
    assert_eq!(
        refused_field(|v| {
            let mut e = extra.clone();
            e["close"] = json!({ "by": "us", "kind": "pending", "at_height": 3 });
            v["extra_channels"] = json!([e]);
        }),
        "extra_channels[0].close.kind"
    );
}

#[test]
fn a_reorg_is_checked_naming_its_field() {
    use serde_json::json;
    let mut ok = base();
    ok["reorg"] = json!({ "at_height": 8, "depth": 3, "confirms_instead": "peer_commitment" });
    Scenario::from_json(&ok.to_string()).expect("valid");
    for (reorg, field) in [
        (json!({ "at_height": 0, "depth": 1 }), "reorg.at_height"),
        (json!({ "at_height": 80, "depth": 1 }), "reorg.at_height"),
        (json!({ "at_height": 8, "depth": 0 }), "reorg.depth"),
        (json!({ "at_height": 8, "depth": 9 }), "reorg.depth"),
    ] {
        assert_eq!(
            refused_field(|v| v["reorg"] = reorg.clone()),
            field,
            "{reorg}"
        );
    }
}

#[test]
fn a_third_party_and_an_idle_peer_are_checked_naming_their_field() {
    use serde_json::json;
    // Anchor spends need anchor outputs.
    assert_eq!(
        refused_field(|v| v["third_party"] = json!({ "spends_anchors_from": 10 })),
        "third_party.spends_anchors_from"
    );
    let mut ok = base();
    ok["channel_type"] = "anchors_zero_fee_htlc".into();
    ok["third_party"] = json!({ "spends_anchors_from": 10 });
    Scenario::from_json(&ok.to_string()).expect("valid under anchors");
    // A peer idle before it closes cannot close.
    assert_eq!(
        refused_field(|v| {
            v["close"] = json!({ "by": "peer", "at_height": 10 });
            v["peer"] = json!({ "idle_from": 5 });
        }),
        "peer.idle_from"
    );
}

#[test]
fn a_forwarded_htlc_names_an_earlier_incoming_htlc_worth_more_and_expiring_later() {
    use serde_json::json;
    let extra = |htlc: serde_json::Value| {
        json!([{ "seed": 9, "channel_type": "static_remote_key",
            "capacity_sat": 500_000, "local_balance_sat": 300_000,
            "htlcs": [htlc], "close": { "by": "peer", "at_height": 5 } }])
    };
    // base(): htlcs[1] is incoming, 60,000 sat, expiry 120.
    let ok = |amount: u64, expiry: u32, from: serde_json::Value| {
        json!({ "direction": "outgoing", "amount_msat": amount, "cltv_expiry": expiry,
            "forwarded_from": from })
    };
    let mut v = base();
    v["extra_channels"] = extra(ok(59_000_000, 100, json!({ "channel": 0, "htlc": 1 })));
    Scenario::from_json(&v.to_string()).expect("valid");
    let field = "extra_channels[0].htlcs[0].forwarded_from";
    for bad in [
        ok(59_000_000, 100, json!({ "channel": 0, "htlc": 0 })), // an outgoing one
        ok(59_000_000, 100, json!({ "channel": 0, "htlc": 7 })), // none
        ok(59_000_000, 100, json!({ "channel": 1, "htlc": 0 })), // not earlier
        ok(61_000_000, 100, json!({ "channel": 0, "htlc": 1 })), // worth more
        ok(59_000_000, 120, json!({ "channel": 0, "htlc": 1 })), // not earlier expiry
    ] {
        assert_eq!(
            refused_field(|v| v["extra_channels"] = extra(bad.clone())),
            field,
            "{bad}"
        );
    }
    // The scenario's own channel has no earlier one.
    assert_eq!(
        refused_field(|v| v["htlcs"][0]["forwarded_from"] = json!({ "channel": 0, "htlc": 1 })),
        "htlcs[0].forwarded_from"
    );
}

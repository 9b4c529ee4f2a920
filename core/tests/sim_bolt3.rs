//! The `sim` channel model, given the BOLT 3 appendices' keys and HTLCs, reproduces every
//! commitment of Appendices C and F byte for byte — signatures included — and the peer's HTLC
//! signatures and the signed HTLC transactions of each. So the channel events `sim` emits are the
//! ones a real node would.

mod common;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use common::{hex32, hex_bytes, secret, vector};
use contractcourt_core::bolt3::{ChannelType, PaymentPreimage};
use contractcourt_core::event::{ChannelChange, Event};
use contractcourt_core::sim::{PartySecrets, SimChannel, SimSetup};
use contractcourt_core::types::{HtlcDirection, HtlcKey, Party};
use serde_json::Value;

/// The appendices' secrets, with the parts they leave out derived from a seed.
fn appendix_parties(params: &Value, internal: &Value) -> (PartySecrets, PartySecrets) {
    let mut local = PartySecrets::from_seed(&[0xa5; 32], "local");
    local.funding = secret(&params["local_funding_privkey"]);
    local.payment_base = secret(&internal["local_payment_basepoint_secret"]);
    local.htlc_base = local.payment_base; // local_htlc_basepoint == local_payment_basepoint
    local.delayed_payment_base = secret(&internal["local_delayed_payment_basepoint_secret"]);
    let commitment_number = params["commitment_number"].as_u64().unwrap();
    let x = hex_bytes(&internal["x_local_per_commitment_secret"]);
    local
        .fixed_commitment_secrets
        .insert(commitment_number, x[..32].try_into().unwrap());

    let mut remote = PartySecrets::from_seed(&[0x5a; 32], "remote");
    remote.funding = secret(&internal["remote_funding_privkey"]);
    remote.revocation_base = secret(&internal["remote_revocation_basepoint_secret"]);
    remote.payment_base = secret(&internal["remote_payment_basepoint_secret"]);
    remote.htlc_base = remote.payment_base; // remote_htlc_basepoint == remote_payment_basepoint
    (local, remote)
}

struct Case<'a> {
    name: String,
    channel_type: ChannelType,
    to_local_msat: u64,
    to_remote_msat: u64,
    feerate_per_kw: u32,
    dust_limit_sat: u64,
    htlcs_used: Vec<usize>,
    commit_tx: String,
    /// (remote HTLC signature, signed HTLC tx), in commitment output order.
    htlc_txs: Vec<(Vec<u8>, String)>,
    params: &'a Value,
    internal: &'a Value,
    htlcs: &'a Value,
}

/// Open a sim channel one commitment before the appendix's, add the HTLCs, commit, and return
/// the channel and the events of that update.
fn reproduce(case: &Case) -> (SimChannel, Vec<Event>) {
    let (local, remote) = appendix_parties(case.params, case.internal);
    let n = case.params["commitment_number"].as_u64().unwrap();
    let htlcs: Vec<&Value> = case
        .htlcs_used
        .iter()
        .map(|i| &case.htlcs.as_array().unwrap()[*i])
        .collect();
    let outgoing = |h: &Value| h["direction"] == "local->remote";
    let amount = |h: &Value| h["amount_msat"].as_u64().unwrap();
    let local_offered: u64 = htlcs
        .iter()
        .filter(|h| outgoing(h))
        .map(|h| amount(h))
        .sum();
    let remote_offered: u64 = htlcs
        .iter()
        .filter(|h| !outgoing(h))
        .map(|h| amount(h))
        .sum();
    let funding_sat = case.params["funding_amount_satoshi"].as_u64().unwrap();
    let mut funding_txid = hex32(&case.params["funding_tx_id"]);
    funding_txid.reverse(); // display order -> internal order
    let setup = SimSetup {
        seed: [7; 32],
        channel_type: case.channel_type,
        funding_sat,
        funder: Party::Local,
        local_balance_msat: case.to_local_msat + local_offered,
        local_to_self_delay: case.params["local_delay"].as_u64().unwrap() as u16,
        remote_to_self_delay: 144,
        local_dust_limit_sat: case.dust_limit_sat,
        remote_dust_limit_sat: 546,
        feerate_per_kw: case.feerate_per_kw,
        funding_outpoint: Some(OutPoint {
            txid: Txid::from_byte_array(funding_txid),
            vout: case.params["funding_output_index"].as_u64().unwrap() as u32,
        }),
        initial_commitment_number: n - 1,
    };
    assert_eq!(
        setup.local_balance_msat + case.to_remote_msat + remote_offered,
        funding_sat * 1000
    );
    let (mut sim, _) = SimChannel::open_with(setup, local, remote).unwrap();
    for h in &htlcs {
        let direction = if outgoing(h) {
            HtlcDirection::Outgoing
        } else {
            HtlcDirection::Incoming
        };
        let key = HtlcKey {
            channel: sim.channel_id,
            htlc_id: h["id"].as_u64().unwrap(),
            direction,
        };
        let preimage = PaymentPreimage(hex32(&h["payment_preimage"]));
        sim.add_htlc_with_preimage(
            key,
            amount(h),
            h["expiry"].as_u64().unwrap() as u32,
            preimage,
        )
        .unwrap();
    }
    let events = sim.commit().unwrap();
    assert_eq!(sim.local_commitment_number(), n, "{}", case.name);
    (sim, events)
}

fn check(case: &Case) {
    let (sim, events) = reproduce(case);
    let n = sim.local_commitment_number();
    let tx = sim.commitment_tx(Party::Local, n).unwrap();
    assert_eq!(
        serialize_hex(&tx),
        case.commit_tx,
        "commitment of {:?}",
        case.name
    );

    let local_commitment = events
        .iter()
        .find_map(|e| match e {
            Event::ChannelUpdate(u) => match &u.change {
                ChannelChange::LocalCommitment(c) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("the update carries our new commitment");
    let sigs: Vec<Vec<u8>> = local_commitment
        .htlc_signatures
        .iter()
        .map(|s| s.signature.serialize_der().to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = case.htlc_txs.iter().map(|(sig, _)| sig.clone()).collect();
    assert_eq!(sigs, expected, "peer's htlc signatures of {:?}", case.name);

    // Each HTLC transaction, signed by both (HTLC-success with its preimage), byte for byte.
    let built = sim.built_commitment(Party::Local, n).unwrap();
    let mut produced = Vec::new();
    for output in &built.outputs {
        use contractcourt_core::bolt3::commitment::OutputKind;
        let (htlc_id, direction) = match output.kind {
            OutputKind::OfferedHtlc { htlc_id } => (htlc_id, HtlcDirection::Outgoing),
            OutputKind::ReceivedHtlc { htlc_id } => (htlc_id, HtlcDirection::Incoming),
            _ => continue,
        };
        let key = HtlcKey {
            channel: sim.channel_id,
            htlc_id,
            direction,
        };
        produced.push(serialize_hex(&sim.htlc_tx(Party::Local, n, key).unwrap()));
    }
    let expected: Vec<String> = case.htlc_txs.iter().map(|(_, tx)| tx.clone()).collect();
    assert_eq!(produced, expected, "htlc transactions of {:?}", case.name);
}

#[test]
fn sim_reproduces_all_16_appendix_c_commitments_with_their_htlc_transactions() {
    let v = vector("bolt03-commitment-static-remotekey.json");
    let tests = v["tests"].as_array().unwrap();
    let mut htlc_count = 0;
    for t in tests {
        let case = Case {
            name: t["name"].as_str().unwrap().to_string(),
            channel_type: ChannelType::StaticRemoteKey,
            to_local_msat: t["to_local_msat"].as_u64().unwrap(),
            to_remote_msat: t["to_remote_msat"].as_u64().unwrap(),
            feerate_per_kw: t["local_feerate_per_kw"].as_u64().unwrap() as u32,
            dust_limit_sat: v["params"]["local_dust_limit_satoshi"].as_u64().unwrap(),
            htlcs_used: t["htlcs_used"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize)
                .collect(),
            commit_tx: t["commit_tx"].as_str().unwrap().to_string(),
            htlc_txs: t["htlc_txs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        hex_bytes(&h["remote_htlc_signature"]),
                        h["tx"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
            params: &v["params"],
            internal: &v["internal_params_from_html_comment"],
            htlcs: &v["htlcs"],
        };
        htlc_count += case.htlc_txs.len();
        check(&case);
    }
    assert_eq!((tests.len(), htlc_count), (16, 33));
}

#[test]
fn sim_reproduces_all_9_appendix_f_anchor_commitments_with_their_htlc_transactions() {
    let v = vector("bolt03-commitment-anchors.json");
    let tests = v["tests"].as_array().unwrap();
    let mut htlc_count = 0;
    for t in tests {
        let htlcs_used: Vec<usize> = t["derived"]["htlcs_used"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        let case = Case {
            name: t["Name"].as_str().unwrap().to_string(),
            channel_type: ChannelType::AnchorsZeroFeeHtlc,
            to_local_msat: t["LocalBalance"].as_u64().unwrap(),
            to_remote_msat: t["RemoteBalance"].as_u64().unwrap(),
            feerate_per_kw: t["FeePerKw"].as_u64().unwrap() as u32,
            dust_limit_sat: t["DustLimitSatoshis"].as_u64().unwrap(),
            htlcs_used,
            commit_tx: t["ExpectedCommitmentTxHex"].as_str().unwrap().to_string(),
            htlc_txs: t["HtlcDescs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        hex_bytes(&h["RemoteSigHex"]),
                        h["ResolutionTxHex"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
            params: &v["params_from_appendix_c"],
            internal: &v["internal_params_from_appendix_c"],
            htlcs: &v["htlcs_from_appendix_c"],
        };
        htlc_count += case.htlc_txs.len();
        check(&case);
    }
    assert_eq!((tests.len(), htlc_count), (9, 15));
}

//! Support for `bolt3_spends`: the Appendix C and F fixtures (vector transactions and the
//! secrets that spend their outputs), one [`Case`] per spend path, and the checks every claim
//! goes through.

use bitcoin::ecdsa::Signature;
use bitcoin::opcodes::all::OP_RETURN;
use bitcoin::script::Builder;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, CompressedPublicKey, OutPoint, ScriptBuf, Transaction, TxOut, Witness};
use contractcourt_core::bolt3::classify::{classify_htlc_spend, HtlcOutputKind, HtlcSpend};
use contractcourt_core::bolt3::weights::claim_tx_weight;
use contractcourt_core::bolt3::witness::*;
use contractcourt_core::bolt3::{keys, scripts, secp, sign, ChannelType, PaymentPreimage};
use contractcourt_core::policy::{check_final, check_standard, PolicyConfig};
use contractcourt_core::testkit::verify_with_bitcoin_core;
use serde_json::Value;

use crate::common::{self, hex_bytes, pubkey, secret, tx, vector};

pub const STATIC: ChannelType = ChannelType::StaticRemoteKey;
pub const ANCHORS: ChannelType = ChannelType::AnchorsZeroFeeHtlc;
pub const ZERO_FEE: ChannelType = ChannelType::ZeroFeeCommitments;
/// The height the vector commitments confirm at here: below every vector HTLC expiry.
pub const COMMIT_HEIGHT: u32 = 400;
/// The height the vector HTLC transactions confirm at here.
pub const HTLC_TX_HEIGHT: u32 = 520;
/// Claims pay 2 sat/vB on their predicted weight.
pub const FEE_SAT_PER_VB: u64 = 2;
/// The most the weight prediction may exceed the signed transaction, per signature.
pub const SLACK_PER_SIGNATURE: u64 = 4;

/// The secrets of Appendix C (repeated in Appendix F).
pub struct Keys {
    /// `local_htlcpubkey`'s secret.
    pub local_htlc: SecretKey,
    /// `remote_htlcpubkey`'s secret.
    pub remote_htlc: SecretKey,
    pub local_delayed: SecretKey,
    /// `remotepubkey` (static: the remote payment basepoint).
    pub remote_payment: SecretKey,
    /// The revocation secret, from the remote revocation basepoint secret and the local
    /// per-commitment secret.
    pub revocation: SecretKey,
    pub revocation_pubkey: PublicKey,
    pub local_funding: SecretKey,
    pub remote_funding: SecretKey,
}

/// One vector commitment, its HTLC transactions and everything needed to spend their outputs.
pub struct Fixture {
    pub channel_type: ChannelType,
    pub commit: Transaction,
    pub outputs: Vec<Value>,
    pub htlcs: Vec<Value>,
    pub htlc_txs: Vec<Transaction>,
    pub to_self_delay: u16,
    pub keys: Keys,
}

pub fn load_keys(params: &Value, internal: &Value) -> Keys {
    let revocation = keys::derive_revocation_privkey(
        &secret(&internal["remote_revocation_basepoint_secret"]),
        &secret(&internal["x_local_per_commitment_secret"]),
    )
    .unwrap();
    let revocation_pubkey = pubkey(&params["local_revocation_pubkey"]);
    assert_eq!(
        PublicKey::from_secret_key(secp(), &revocation),
        revocation_pubkey
    );
    Keys {
        local_htlc: secret(&params["local_privkey"]),
        remote_htlc: secret(&internal["remote_privkey"]),
        local_delayed: secret(&internal["local_delayed_privkey"]),
        remote_payment: secret(&internal["remote_payment_basepoint_secret"]),
        revocation,
        revocation_pubkey,
        local_funding: secret(&params["local_funding_privkey"]),
        remote_funding: secret(&internal["remote_funding_privkey"]),
    }
}

pub fn case<'a>(tests: &'a Value, field: &str, name: &str) -> &'a Value {
    tests
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t[field] == name)
        .unwrap_or_else(|| panic!("no vector case {name}"))
}

/// Appendix C, "all five HTLCs untrimmed (minimum feerate)": every kind of static-remotekey
/// output, and HTLC transactions that keep the whole HTLC amount.
pub fn appendix_c() -> Fixture {
    let json = vector("bolt03-commitment-static-remotekey.json");
    let test = case(
        &json["tests"],
        "name",
        "commitment tx with all five HTLCs untrimmed (minimum feerate)",
    );
    Fixture {
        channel_type: STATIC,
        commit: tx(&test["commit_tx"]),
        outputs: test["derived"]["outputs"].as_array().unwrap().clone(),
        htlcs: json["htlcs"].as_array().unwrap().clone(),
        htlc_txs: test["htlc_txs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| tx(&h["tx"]))
            .collect(),
        to_self_delay: json["params"]["local_delay"].as_u64().unwrap() as u16,
        keys: load_keys(&json["params"], &json["internal_params_from_html_comment"]),
    }
}

/// Appendix F, "seven outputs untrimmed": both anchors, anchors `to_remote` and HTLC outputs.
pub fn appendix_f() -> Fixture {
    let json = vector("bolt03-commitment-anchors.json");
    let test = case(
        &json["tests"],
        "Name",
        "commitment tx with seven outputs untrimmed",
    );
    let params = &json["params_from_appendix_c"];
    Fixture {
        channel_type: ANCHORS,
        commit: tx(&test["ExpectedCommitmentTxHex"]),
        outputs: test["derived"]["outputs"].as_array().unwrap().clone(),
        htlcs: json["htlcs_from_appendix_c"].as_array().unwrap().clone(),
        htlc_txs: test["HtlcDescs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| tx(&h["ResolutionTxHex"]))
            .collect(),
        to_self_delay: params["local_delay"].as_u64().unwrap() as u16,
        keys: load_keys(params, &json["internal_params_from_appendix_c"]),
    }
}

/// An output to spend: where it is, what it is, its witness script and when it confirmed.
#[derive(Clone)]
pub struct Prevout {
    pub outpoint: OutPoint,
    pub txout: TxOut,
    /// The P2WSH witness script (empty for P2WPKH).
    pub script: ScriptBuf,
    pub height: u32,
}

impl Fixture {
    /// The commitment output of `kind` (and HTLC id, for HTLC outputs).
    pub fn output(&self, kind: &str, htlc: Option<u64>) -> Prevout {
        let o = self
            .outputs
            .iter()
            .find(|o| o["kind"] == kind && htlc.is_none_or(|id| o["htlc"] == id))
            .unwrap_or_else(|| panic!("no {kind} output {htlc:?}"));
        let index = o["index"].as_u64().unwrap() as u32;
        let txout = self.commit.output[index as usize].clone();
        let script = match o.get("wscript") {
            Some(w) => ScriptBuf::from_bytes(hex_bytes(w)),
            None => ScriptBuf::new(),
        };
        if !script.is_empty() {
            assert_eq!(script.to_p2wsh(), txout.script_pubkey);
        }
        Prevout {
            outpoint: OutPoint::new(self.commit.compute_txid(), index),
            txout,
            script,
            height: COMMIT_HEIGHT,
        }
    }

    /// The `to_local` witness script, which every HTLC transaction output also pays to.
    pub fn to_local_script(&self) -> ScriptBuf {
        self.output("to_local", None).script
    }

    /// The output of the vector HTLC transaction `i`.
    pub fn htlc_tx_output(&self, i: usize) -> Prevout {
        let htlc_tx = &self.htlc_txs[i];
        let script = self.to_local_script();
        assert_eq!(script.to_p2wsh(), htlc_tx.output[0].script_pubkey);
        Prevout {
            outpoint: OutPoint::new(htlc_tx.compute_txid(), 0),
            txout: htlc_tx.output[0].clone(),
            script,
            height: HTLC_TX_HEIGHT,
        }
    }

    pub fn htlc(&self, id: u64) -> &Value {
        self.htlcs.iter().find(|h| h["id"] == id).unwrap()
    }

    pub fn preimage(&self, id: u64) -> PaymentPreimage {
        PaymentPreimage(common::hex32(&self.htlc(id)["payment_preimage"]))
    }

    pub fn expiry(&self, id: u64) -> u32 {
        self.htlc(id)["expiry"].as_u64().unwrap() as u32
    }

    /// The first HTLC id of the fixture with this direction.
    pub fn htlc_id(&self, direction: &str) -> u64 {
        self.outputs
            .iter()
            .filter_map(|o| o["htlc"].as_u64())
            .find(|id| self.htlc(*id)["direction"] == direction)
            .unwrap()
    }

    pub fn offered_id(&self) -> u64 {
        self.htlc_id("local->remote")
    }

    pub fn received_id(&self) -> u64 {
        self.htlc_id("remote->local")
    }
}

/// Where claims pay to: a P2WPKH wallet script.
pub fn wallet_script() -> ScriptBuf {
    let key = PublicKey::from_secret_key(secp(), &SecretKey::from_slice(&[0x77; 32]).unwrap());
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(key).wpubkey_hash())
}

/// Sign input `index` of `tx`, spending `prevout`, with SIGHASH_ALL.
pub fn sign_input(tx: &Transaction, index: usize, prevout: &Prevout, key: &SecretKey) -> Signature {
    let all = EcdsaSighashType::All;
    let value = prevout.txout.value;
    if prevout.txout.script_pubkey.is_p2wpkh() {
        let msg =
            sign::p2wpkh_sighash(tx, index, &prevout.txout.script_pubkey, value, all).unwrap();
        sign::sign_message(&msg, key, all)
    } else {
        sign::sign_p2wsh(tx, index, &prevout.script, value, all, key).unwrap()
    }
}

pub type WitnessFn = Box<dyn Fn(&Signature, &Prevout) -> Witness>;

/// One spend path of one real output.
pub struct Case {
    pub prevout: Prevout,
    pub path: ClaimPath,
    pub key: SecretKey,
    pub witness: WitnessFn,
    /// Signatures in the witness (the weight slack allowance).
    pub signatures: u64,
    /// Send the whole value to fees through an `OP_RETURN` (an anchor alone cannot pay for a
    /// non-dust output).
    pub burn: bool,
}

impl Case {
    pub fn destination(&self) -> ScriptBuf {
        if self.burn {
            Builder::new()
                .push_opcode(OP_RETURN)
                .push_slice([0u8; 4])
                .into_script()
        } else {
            wallet_script()
        }
    }

    pub fn predicted_weight(&self) -> u64 {
        claim_tx_weight(&self.path, self.destination().len())
    }

    /// The claim, with `tweak` applied to the envelope before signing with `key`.
    pub fn build_with(&self, key: &SecretKey, tweak: impl FnOnce(&mut Transaction)) -> Transaction {
        let fee = self.predicted_weight().div_ceil(4) * FEE_SAT_PER_VB;
        let value = if self.burn {
            Amount::ZERO
        } else {
            self.prevout.txout.value - Amount::from_sat(fee)
        };
        let mut tx = build_claim_tx(self.prevout.outpoint, &self.path, self.destination(), value);
        tweak(&mut tx);
        let sig = sign_input(&tx, 0, &self.prevout, key);
        tx.input[0].witness = (self.witness)(&sig, &self.prevout);
        tx
    }

    pub fn signed(&self) -> Transaction {
        self.build_with(&self.key, |_| {})
    }

    /// The first height the claim can be mined at, from the vector's own expiry and delay.
    pub fn first_valid_height(&self) -> u32 {
        let after_csv = self.prevout.height + u32::from(self.path.csv_delay().unwrap_or(1));
        let after_cltv = self.path.cltv_expiry().map_or(0, |expiry| expiry + 1);
        after_csv.max(after_cltv)
    }

    pub fn core(&self, tx: &Transaction) -> Result<(), String> {
        verify_with_bitcoin_core(tx, std::slice::from_ref(&self.prevout.txout))
            .map_err(|e| e.to_string())
    }
}

/// The claim is accepted by Bitcoin Core and the relay policy, is final exactly from its first
/// valid height, and weighs no more than predicted (and at most a few units less).
pub fn assert_accepted(case: &Case) -> Transaction {
    let tx = case.signed();
    case.core(&tx).unwrap();
    let prevouts = [case.prevout.txout.clone()];
    check_standard(&tx, &prevouts, &PolicyConfig::default()).unwrap();
    let height = case.first_valid_height();
    let confirmed = [Some(case.prevout.height)];
    check_final(&tx, height, &confirmed).unwrap();
    if height > case.prevout.height + 1 {
        assert!(check_final(&tx, height - 1, &confirmed).is_err());
    }
    let predicted = case.predicted_weight();
    let actual = tx.weight().to_wu();
    assert!(
        predicted >= actual,
        "predicted {predicted} < actual {actual}"
    );
    assert!(
        predicted - actual <= SLACK_PER_SIGNATURE * case.signatures,
        "predicted {predicted}, actual {actual}"
    );
    tx
}

pub fn assert_rejected(case: &Case, tx: &Transaction) {
    assert!(case.core(tx).is_err(), "bitcoin core accepted {tx:?}");
}

pub fn htlc_kind(f: &Fixture, id: u64) -> HtlcOutputKind {
    if f.htlc(id)["direction"] == "local->remote" {
        HtlcOutputKind::Offered
    } else {
        HtlcOutputKind::Received
    }
}

pub fn assert_htlc_spend(f: &Fixture, id: u64, tx: &Transaction, expected: HtlcSpend) {
    let hash = f.preimage(id).payment_hash();
    let spend = classify_htlc_spend(&tx.input[0].witness, htlc_kind(f, id), &hash);
    assert_eq!(spend, expected);
}

// ---- the cases -------------------------------------------------------------------------------

pub fn to_local_delayed(f: &Fixture, prevout: Prevout) -> Case {
    Case {
        prevout,
        path: ClaimPath::ToLocalDelayed {
            to_self_delay: f.to_self_delay,
        },
        key: f.keys.local_delayed,
        witness: Box::new(|sig, p| to_local_delayed_witness(sig, &p.script)),
        signatures: 1,
        burn: false,
    }
}

pub fn to_local_revocation(f: &Fixture, prevout: Prevout) -> Case {
    Case {
        prevout,
        path: ClaimPath::ToLocalRevocation {
            to_self_delay: f.to_self_delay,
        },
        key: f.keys.revocation,
        witness: Box::new(|sig, p| to_local_revocation_witness(sig, &p.script)),
        signatures: 1,
        burn: false,
    }
}

pub fn to_remote(f: &Fixture) -> Case {
    let remote_payment = PublicKey::from_secret_key(secp(), &f.keys.remote_payment);
    // The fixtures are the P2WSH types' (simple taproot spends: `bolt3::taproot::spend_tests`).
    let witness: WitnessFn = if f.channel_type == ANCHORS {
        Box::new(|sig, p| to_remote_anchor_witness(sig, &p.script))
    } else {
        Box::new(move |sig, _| to_remote_p2wpkh_witness(sig, &remote_payment))
    };
    Case {
        prevout: f.output("to_remote", None),
        path: ClaimPath::ToRemote {
            channel_type: f.channel_type,
        },
        key: f.keys.remote_payment,
        witness,
        signatures: 1,
        burn: false,
    }
}

/// The remote party claims an HTLC the holder offered: on its side, an HTLC it received.
pub fn offered_preimage(f: &Fixture, preimage: PaymentPreimage) -> Case {
    let id = f.offered_id();
    Case {
        prevout: f.output("htlc", Some(id)),
        path: ClaimPath::preimage_claim_on_remote_commitment(f.channel_type),
        key: f.keys.remote_htlc,
        witness: Box::new(move |sig, p| offered_htlc_preimage_witness(sig, &preimage, &p.script)),
        signatures: 1,
        burn: false,
    }
}

/// The remote party times out an HTLC the holder received: on its side, an HTLC it offered.
pub fn received_timeout(f: &Fixture) -> Case {
    let id = f.received_id();
    Case {
        prevout: f.output("htlc", Some(id)),
        path: ClaimPath::timeout_claim_on_remote_commitment(f.expiry(id), f.channel_type),
        key: f.keys.remote_htlc,
        witness: Box::new(|sig, p| received_htlc_timeout_witness(sig, &p.script)),
        signatures: 1,
        burn: false,
    }
}

pub fn htlc_revocation(f: &Fixture, id: u64, revocation_pubkey: PublicKey) -> Case {
    let path = match htlc_kind(f, id) {
        HtlcOutputKind::Offered => ClaimPath::OfferedHtlcRevocation {
            channel_type: f.channel_type,
        },
        HtlcOutputKind::Received => ClaimPath::ReceivedHtlcRevocation {
            cltv_expiry: f.expiry(id),
            channel_type: f.channel_type,
        },
    };
    Case {
        prevout: f.output("htlc", Some(id)),
        path,
        key: f.keys.revocation,
        witness: Box::new(move |sig, p| {
            htlc_revocation_witness(sig, &revocation_pubkey, &p.script)
        }),
        signatures: 1,
        burn: false,
    }
}

pub fn anchor_owner(f: &Fixture, kind: &str, key: SecretKey) -> Case {
    Case {
        prevout: f.output(kind, None),
        path: ClaimPath::AnchorOwner,
        key,
        witness: Box::new(|sig, p| anchor_owner_witness(sig, &p.script)),
        signatures: 1,
        burn: true,
    }
}

pub fn anchor_anyone(f: &Fixture, kind: &str) -> Case {
    Case {
        prevout: f.output(kind, None),
        path: ClaimPath::AnchorAnyone,
        key: f.keys.local_funding,
        witness: Box::new(|_, p| anchor_anyone_witness(&p.script)),
        signatures: 0,
        burn: true,
    }
}

pub fn both() -> [Fixture; 2] {
    [appendix_c(), appendix_f()]
}

// ---- the vectors' own transactions -----------------------------------------------------------------

/// A vector commitment, the funding output it spends, and its HTLC transactions with the
/// expiry of the HTLC each one resolves.
pub struct VectorCommitment {
    pub commit: Transaction,
    pub funding: TxOut,
    pub channel_type: ChannelType,
    pub htlc_txs: Vec<(Transaction, u32)>,
}

/// Every commitment of Appendices C and F.
pub fn vector_commitments() -> Vec<VectorCommitment> {
    let c = vector("bolt03-commitment-static-remotekey.json");
    let f = vector("bolt03-commitment-anchors.json");
    let mut all = Vec::new();
    for (channel_type, params, htlcs, tests) in [
        (STATIC, &c["params"], &c["htlcs"], &c["tests"]),
        (
            ANCHORS,
            &f["params_from_appendix_c"],
            &f["htlcs_from_appendix_c"],
            &f["tests"],
        ),
    ] {
        let funding = TxOut {
            value: Amount::from_sat(params["funding_amount_satoshi"].as_u64().unwrap()),
            script_pubkey: scripts::funding_script(
                &pubkey(&params["local_funding_pubkey"]),
                &pubkey(&params["remote_funding_pubkey"]),
            )
            .to_p2wsh(),
        };
        let expiry = |id: &Value| {
            let htlc = htlcs
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h["id"] == *id)
                .unwrap();
            htlc["expiry"].as_u64().unwrap() as u32
        };
        for test in tests.as_array().unwrap() {
            // Appendix C (static remote key) or F (anchors); appendix H is read below.
            let (commit, htlc_txs) = if channel_type == STATIC {
                (
                    tx(&test["commit_tx"]),
                    test["htlc_txs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| (tx(&h["tx"]), expiry(&h["htlc"])))
                        .collect(),
                )
            } else {
                (
                    tx(&test["ExpectedCommitmentTxHex"]),
                    test["HtlcDescs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| (tx(&h["ResolutionTxHex"]), expiry(&h["derived"]["htlc"])))
                        .collect(),
                )
            };
            all.push(VectorCommitment {
                commit,
                funding: funding.clone(),
                channel_type,
                htlc_txs,
            });
        }
    }
    all.extend(appendix_h_commitments());
    all
}

/// Every commitment of Appendix H (zero-fee commitments), each HTLC transaction with the expiry
/// of the HTLC it resolves (the vector HTLC of its direction and amount, whose expiry is the
/// timeout's nLockTime or whose hash the success reveals).
fn appendix_h_commitments() -> Vec<VectorCommitment> {
    use common::appendix_h::{cases, fixture};
    let f = fixture();
    cases()
        .into_iter()
        .map(|case| {
            let expiry = |htlc_tx: &Transaction, offered: bool| {
                let value = case.commit_tx.output[htlc_tx.input[0].previous_output.vout as usize]
                    .value
                    .to_sat();
                let found: Vec<u32> = case
                    .htlcs
                    .iter()
                    .filter(|h| h.offered == offered && h.amount_msat / 1000 == value)
                    .filter(|h| {
                        if offered {
                            htlc_tx.lock_time.to_consensus_u32() == h.cltv_expiry
                        } else {
                            htlc_tx.input[0].witness.nth(3)
                                == Some(&f.preimage(&h.payment_hash).0[..])
                        }
                    })
                    .map(|h| h.cltv_expiry)
                    .collect();
                assert!(!found.is_empty() && found.iter().all(|e| *e == found[0]));
                found[0]
            };
            let mut htlc_txs: Vec<(Transaction, u32)> = case
                .success_txs
                .iter()
                .map(|t| (t.clone(), expiry(t, false)))
                .collect();
            htlc_txs.extend(
                case.timeout_txs
                    .iter()
                    .map(|t| (t.clone(), expiry(t, true))),
            );
            VectorCommitment {
                commit: case.commit_tx,
                funding: f.funding_txout(),
                channel_type: ZERO_FEE,
                htlc_txs,
            }
        })
        .collect()
}

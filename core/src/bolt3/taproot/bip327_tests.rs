//! BIP 327 (MuSig2) test vectors (`vectors/bip327/`, copied verbatim from bitcoin/bips
//! `bip-0327/vectors/` at `7fe0b034ec967b52a5a28276419117326df93263`) reproduced with the
//! `musig2` crate the funding output is built with, and `KeySort` with our
//! [`super::funding::key_sort`]: every valid case gives the expected bytes, every error case an
//! error at the stage (and signer) the vector names.

use bitcoin::secp256k1::PublicKey;
use musig2::secp::{MaybeScalar, Point, Scalar};
use musig2::{
    aggregate_partial_signatures, sign_partial, verify_partial, AggNonce, KeyAggContext,
    LiftedSignature, PubNonce, SecNonce,
};
use serde_json::Value;

use super::funding::key_sort;

fn load(name: &str) -> Value {
    let text = match name {
        "key_sort" => include_str!("../../../../vectors/bip327/key_sort_vectors.json"),
        "key_agg" => include_str!("../../../../vectors/bip327/key_agg_vectors.json"),
        "nonce_agg" => include_str!("../../../../vectors/bip327/nonce_agg_vectors.json"),
        "sign_verify" => include_str!("../../../../vectors/bip327/sign_verify_vectors.json"),
        "tweak" => include_str!("../../../../vectors/bip327/tweak_vectors.json"),
        "sig_agg" => include_str!("../../../../vectors/bip327/sig_agg_vectors.json"),
        _ => unreachable!("no such vector file"),
    };
    serde_json::from_str(text).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn indices(v: &Value) -> Vec<usize> {
    let list = v.as_array().cloned().unwrap_or_default();
    list.iter().map(|i| i.as_u64().unwrap() as usize).collect()
}

fn pick(list: &Value, at: &Value) -> Vec<Vec<u8>> {
    indices(at).iter().map(|&i| bytes(&list[i])).collect()
}

/// Where a setup failed, in the vectors' terms.
#[derive(Debug, PartialEq, Eq)]
enum Fail {
    /// `invalid_contribution` of this signer (its pubkey, pubnonce or psig does not parse).
    Contribution(Option<usize>, &'static str),
    /// `The tweak must be less than n.`
    TweakRange,
    /// `The result of tweaking cannot be infinity.`
    TweakInfinity,
    /// Signing or verification refused.
    Refused,
}

fn expected_fail(error: &Value) -> Fail {
    match error["type"].as_str().unwrap() {
        "invalid_contribution" => {
            let signer = error["signer"].as_u64().map(|s| s as usize);
            let contrib = match error["contrib"].as_str().unwrap() {
                "pubkey" => "pubkey",
                "pubnonce" => "pubnonce",
                "aggnonce" => "aggnonce",
                "psig" => "psig",
                other => panic!("{other}"),
            };
            Fail::Contribution(signer, contrib)
        }
        _ => match error["message"].as_str().unwrap() {
            "The tweak must be less than n." => Fail::TweakRange,
            "The result of tweaking cannot be infinity." => Fail::TweakInfinity,
            _ => Fail::Refused,
        },
    }
}

fn points(keys: &[Vec<u8>]) -> Result<Vec<Point>, Fail> {
    let parse = |(i, k): (usize, &Vec<u8>)| {
        Point::from_slice(k).map_err(|_| Fail::Contribution(Some(i), "pubkey"))
    };
    keys.iter().enumerate().map(parse).collect()
}

/// KeyAgg of `keys` (no sorting), then the tweaks in order.
fn key_agg(v: &Value, case: &Value) -> Result<KeyAggContext, Fail> {
    let keys = points(&pick(&v["pubkeys"], &case["key_indices"]))?;
    let mut ctx = KeyAggContext::new(keys).map_err(|_| Fail::Refused)?;
    let tweaks = pick(&v["tweaks"], &case["tweak_indices"]);
    let xonly = case["is_xonly"].as_array().cloned().unwrap_or_default();
    for (tweak, is_xonly) in tweaks.iter().zip(xonly) {
        let tweak = Scalar::from_slice(tweak).map_err(|_| Fail::TweakRange)?;
        let is_xonly = is_xonly.as_bool().unwrap();
        ctx = ctx
            .with_tweak(tweak, is_xonly)
            .map_err(|_| Fail::TweakInfinity)?;
    }
    Ok(ctx)
}

#[test]
fn bip327_key_sort_vector_is_our_key_sort() {
    let v = load("key_sort");
    let parse = |k: &Value| PublicKey::from_slice(&bytes(k)).unwrap();
    let mut keys: Vec<PublicKey> = v["pubkeys"].as_array().unwrap().iter().map(parse).collect();
    let sorted: Vec<PublicKey> = v["sorted_pubkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(parse)
        .collect();
    assert_ne!(keys, sorted);
    key_sort(&mut keys);
    assert_eq!(keys, sorted);
}

#[test]
fn bip327_key_agg_vectors() {
    let v = load("key_agg");
    for case in v["valid_test_cases"].as_array().unwrap() {
        let ctx = key_agg(&v, case).unwrap();
        let agg: Point = ctx.aggregated_pubkey();
        assert_eq!(agg.serialize_xonly().to_vec(), bytes(&case["expected"]));
    }
    let errors = v["error_test_cases"].as_array().unwrap();
    for case in errors {
        let got = key_agg(&v, case).err();
        assert_eq!(
            got,
            Some(expected_fail(&case["error"])),
            "{}",
            case["comment"]
        );
    }
    assert_eq!(errors.len(), 5);
}

#[test]
fn bip327_nonce_agg_vectors() {
    let v = load("nonce_agg");
    let agg = |case: &Value| -> Result<AggNonce, Fail> {
        let nonces = pick(&v["pnonces"], &case["pnonce_indices"]);
        let parse = |(i, n): (usize, &Vec<u8>)| {
            PubNonce::from_bytes(n).map_err(|_| Fail::Contribution(Some(i), "pubnonce"))
        };
        let nonces: Vec<PubNonce> = nonces
            .iter()
            .enumerate()
            .map(parse)
            .collect::<Result<_, _>>()?;
        Ok(AggNonce::sum(nonces))
    };
    for case in v["valid_test_cases"].as_array().unwrap() {
        let got = agg(case).unwrap().serialize();
        assert_eq!(got.to_vec(), bytes(&case["expected"]));
    }
    for case in v["error_test_cases"].as_array().unwrap() {
        let expected = expected_fail(&case["error"]);
        assert_eq!(agg(case).err(), Some(expected), "{}", case["comment"]);
    }
}

struct Session {
    ctx: KeyAggContext,
    aggnonce: AggNonce,
    msg: Vec<u8>,
}

/// Signs as the vectors' `sk` with `secnonce`: the partial signature's 32 bytes.
fn sign(v: &Value, s: &Session, secnonce: &[u8]) -> Result<[u8; 32], Fail> {
    let seckey = Scalar::from_slice(&bytes(&v["sk"])).unwrap();
    let secnonce = SecNonce::from_bytes(secnonce).map_err(|_| Fail::Refused)?;
    let psig: MaybeScalar =
        sign_partial(&s.ctx, seckey, secnonce, &s.aggnonce, &s.msg).map_err(|_| Fail::Refused)?;
    Ok(psig.serialize())
}

fn session(v: &Value, case: &Value, aggnonce: &Value, msg: &Value) -> Result<Session, Fail> {
    let ctx = key_agg(v, case)?;
    let aggnonce =
        AggNonce::from_bytes(&bytes(aggnonce)).map_err(|_| Fail::Contribution(None, "aggnonce"))?;
    Ok(Session {
        ctx,
        aggnonce,
        msg: bytes(msg),
    })
}

/// Verifies `psig` as signer `signer_index` of the case, with its public nonce.
fn verify(v: &Value, case: &Value, s: &Session, psig: &[u8]) -> Result<(), Fail> {
    let signer = case["signer_index"].as_u64().unwrap() as usize;
    let nonces = pick(&v["pnonces"], &case["nonce_indices"]);
    let parse = |(i, n): (usize, &Vec<u8>)| {
        PubNonce::from_bytes(n).map_err(|_| Fail::Contribution(Some(i), "pubnonce"))
    };
    let nonces: Vec<PubNonce> = nonces
        .iter()
        .enumerate()
        .map(parse)
        .collect::<Result<_, _>>()?;
    let keys = points(&pick(&v["pubkeys"], &case["key_indices"]))?;
    let psig = MaybeScalar::from_slice(psig).map_err(|_| Fail::Refused)?;
    verify_partial(
        &s.ctx,
        psig,
        &s.aggnonce,
        keys[signer],
        &nonces[signer],
        &s.msg,
    )
    .map_err(|_| Fail::Refused)
}

#[test]
fn bip327_sign_verify_vectors() {
    let v = load("sign_verify");
    let secnonce = bytes(&v["secnonces"][0]);
    let at =
        |list: &str, case: &Value, key: &str| v[list][case[key].as_u64().unwrap() as usize].clone();
    for case in v["valid_test_cases"].as_array().unwrap() {
        let (aggnonce, msg) = (
            at("aggnonces", case, "aggnonce_index"),
            at("msgs", case, "msg_index"),
        );
        let s = session(&v, case, &aggnonce, &msg).unwrap();
        // The case's aggnonce is the sum of its pubnonces.
        let nonces = pick(&v["pnonces"], &case["nonce_indices"]);
        let sum = AggNonce::sum(nonces.iter().map(|n| PubNonce::from_bytes(n).unwrap()));
        assert_eq!(sum, s.aggnonce);
        let psig = sign(&v, &s, &secnonce).unwrap();
        assert_eq!(
            psig.to_vec(),
            bytes(&case["expected"]),
            "{}",
            case["comment"]
        );
        assert_eq!(verify(&v, case, &s, &psig), Ok(()));
    }
    for case in v["sign_error_test_cases"].as_array().unwrap() {
        let (aggnonce, msg) = (
            at("aggnonces", case, "aggnonce_index"),
            at("msgs", case, "msg_index"),
        );
        let secnonce = bytes(&at("secnonces", case, "secnonce_index"));
        let got = session(&v, case, &aggnonce, &msg).and_then(|s| sign(&v, &s, &secnonce));
        let expected = match expected_fail(&case["error"]) {
            Fail::Contribution(Some(i), "pubkey") => Fail::Contribution(Some(i), "pubkey"),
            Fail::Contribution(None, "aggnonce") => Fail::Contribution(None, "aggnonce"),
            _ => Fail::Refused,
        };
        assert_eq!(got.err(), Some(expected), "{}", case["comment"]);
    }
    let agg0 = v["aggnonces"][0].clone();
    for list in ["verify_fail_test_cases", "verify_error_test_cases"] {
        for case in v[list].as_array().unwrap() {
            let msg = at("msgs", case, "msg_index");
            let got = session(&v, case, &agg0, &msg)
                .and_then(|s| verify(&v, case, &s, &bytes(&case["sig"])));
            let expected = match case.get("error") {
                Some(error) => expected_fail(error),
                None => Fail::Refused,
            };
            assert_eq!(got.err(), Some(expected), "{}", case["comment"]);
        }
    }
}

#[test]
fn bip327_tweak_vectors() {
    let v = load("tweak");
    let secnonce = bytes(&v["secnonce"]);
    for case in v["valid_test_cases"].as_array().unwrap() {
        let s = session(&v, case, &v["aggnonce"], &v["msg"]).unwrap();
        let psig = sign(&v, &s, &secnonce).unwrap();
        assert_eq!(
            psig.to_vec(),
            bytes(&case["expected"]),
            "{}",
            case["comment"]
        );
        assert_eq!(verify(&v, case, &s, &psig), Ok(()));
    }
    for case in v["error_test_cases"].as_array().unwrap() {
        let got = session(&v, case, &v["aggnonce"], &v["msg"]).err();
        assert_eq!(
            got,
            Some(expected_fail(&case["error"])),
            "{}",
            case["comment"]
        );
    }
}

#[test]
fn bip327_sig_agg_vectors() {
    let v = load("sig_agg");
    let aggregate = |case: &Value| -> Result<[u8; 64], Fail> {
        let s = session(&v, case, &case["aggnonce"], &v["msg"])?;
        let nonces = pick(&v["pnonces"], &case["nonce_indices"]);
        let sum = AggNonce::sum(nonces.iter().map(|n| PubNonce::from_bytes(n).unwrap()));
        assert_eq!(sum, s.aggnonce);
        let psigs = pick(&v["psigs"], &case["psig_indices"]);
        let parse = |(i, p): (usize, &Vec<u8>)| {
            MaybeScalar::from_slice(p).map_err(|_| Fail::Contribution(Some(i), "psig"))
        };
        let psigs: Vec<MaybeScalar> = psigs
            .iter()
            .enumerate()
            .map(parse)
            .collect::<Result<_, _>>()?;
        let sig: LiftedSignature = aggregate_partial_signatures(&s.ctx, &s.aggnonce, psigs, &s.msg)
            .map_err(|_| Fail::Refused)?;
        Ok(sig.serialize())
    };
    for case in v["valid_test_cases"].as_array().unwrap() {
        assert_eq!(aggregate(case).unwrap().to_vec(), bytes(&case["expected"]));
    }
    for case in v["error_test_cases"].as_array().unwrap() {
        let expected = expected_fail(&case["error"]);
        assert_eq!(aggregate(case).err(), Some(expected), "{}", case["comment"]);
    }
}

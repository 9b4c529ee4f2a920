//! Benchmark: the sweeper planning one block with 10,000 mature inputs — grouping them into
//! batches (contested and only-ours apart, deadlines within the window, at most
//! `max_batch_inputs` each), pricing each batch on its fee function and building its unsigned
//! transaction and sign request. Each iteration starts from the same sweeper (a clone made
//! outside the timing), so every block finds the same work.

use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, TxOut, Txid, WPubkeyHash};
use contractcourt_core::action::{Action, Basepoint, KeyTweak, SigningKey, SweepRequest};
use contractcourt_core::bolt3::scripts::to_local_script;
use contractcourt_core::bolt3::witness::ClaimPath;
use contractcourt_core::node::NodeState;
use contractcourt_core::sweeper::{Sweeper, SweeperConfig, SweeperPolicy};
use contractcourt_core::types::ChannelId;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const INPUTS: u32 = 10_000;
const TIP: u32 = 800_000;

fn key(i: u8) -> PublicKey {
    let secret = SecretKey::from_slice(&[i.max(1); 32]).expect("a valid secret");
    PublicKey::from_secret_key(&Secp256k1::new(), &secret)
}

/// 10,000 mature `to_local`-style outputs claimed by revocation: every other one contested,
/// deadlines spread over 40 blocks.
fn sweeper() -> Sweeper {
    let script = to_local_script(&key(1), 144, &key(2));
    let mut sweeper = Sweeper::new();
    let mut node = NodeState::default();
    for i in 0..INPUTS {
        let mut txid = [0u8; 32];
        txid[..4].copy_from_slice(&i.to_le_bytes());
        let channel = ChannelId([(i % 251) as u8; 32]);
        let req = SweepRequest {
            channel,
            outpoint: OutPoint::new(Txid::from_byte_array(txid), i % 3),
            txout: TxOut {
                value: Amount::from_sat(50_000 + u64::from(i % 1000) * 100),
                script_pubkey: script.to_p2wsh(),
            },
            path: ClaimPath::ToLocalRevocation { to_self_delay: 144 },
            script: script.clone(),
            key: SigningKey::Channel {
                channel,
                basepoint: Basepoint::Revocation,
                tweak: KeyTweak::None,
            },
            preimage: None,
            witness_pubkey: None,
            deadline: TIP + 20 + i % 40,
            budget_sat: 10_000,
            contestable: i % 2 == 0,
            exclusive_group: None,
            mature_at: TIP - 10,
        };
        sweeper.request(req, &mut node);
    }
    sweeper
}

fn plan(c: &mut Criterion) {
    let base = sweeper();
    let cfg = SweeperConfig {
        destination: ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array([0x11; 20])),
        fallback_feerate: FeeRate::from_sat_per_vb_u32(2),
        fee_wallet: None,
    };
    let policy = SweeperPolicy::default();
    // Check once that the block does what it should: one sign request per batch.
    let actions = base.clone().on_block(TIP, None, &cfg, &policy);
    let signs = actions
        .iter()
        .filter(|a| matches!(a, Action::Sign(_)))
        .count();
    let expected = INPUTS.div_ceil(u32::from(policy.max_batch_inputs)) as usize;
    assert!(
        signs >= expected && signs <= expected + 8,
        "{signs} sign requests for {INPUTS} inputs"
    );
    let mut group = c.benchmark_group("sweeper_plan");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(300));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("10000_inputs", |b| {
        b.iter_batched(
            || base.clone(),
            |mut s| s.on_block(TIP, None, &cfg, &policy),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, plan);
criterion_main!(benches);

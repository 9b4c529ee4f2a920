//! Per-commitment secret generation and the compact secret store against Appendix D.

mod common;

use common::{hex32, vector};
use contractcourt_core::bolt3::shachain::{
    generate_from_seed, secret_index, SecretStore, ShachainError, MAX_INDEX, MAX_SLOTS,
};

#[test]
fn appendix_d_all_5_generation_cases_match() {
    let v = vector("bolt03-shachain.json");
    let cases = v["generation_tests"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let seed = hex32(&case["seed"]);
        let index = case["I_int"].as_u64().unwrap();
        // The integer agrees with the spec's string (decimal, or hex with a `0x` prefix).
        let spec_index = case["I"].as_str().unwrap();
        let parsed = match spec_index.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => spec_index.parse::<u64>().unwrap(),
        };
        assert_eq!(parsed, index);
        assert_eq!(
            generate_from_seed(&seed, index),
            hex32(&case["output"]),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn appendix_d_all_9_storage_sequences_accept_and_reject_where_the_spec_says() {
    let v = vector("bolt03-shachain.json");
    let sequences = v["storage_tests"].as_array().unwrap();
    assert_eq!(sequences.len(), 9);
    let mut failing = 0;
    for sequence in sequences {
        let name = sequence["name"].as_str().unwrap();
        let steps = sequence["steps"].as_array().unwrap();
        let mut store = SecretStore::new();
        for (n, step) in steps.iter().enumerate() {
            let index = step["I_int"].as_u64().unwrap();
            let secret = hex32(&step["secret"]);
            let is_last = n + 1 == steps.len();
            match step["output"].as_str().unwrap() {
                "OK" => {
                    store
                        .insert(index, secret)
                        .unwrap_or_else(|e| panic!("{name} step {n}: {e}"));
                    assert_eq!(store.get(index), Some(secret), "{name} step {n}");
                }
                "ERROR" => {
                    assert!(is_last, "{name}: only the last step fails");
                    let before = store.clone();
                    let err = store.insert(index, secret).unwrap_err();
                    assert!(
                        matches!(err, ShachainError::SecretMismatch { index: i, .. } if i == index),
                        "{name}: {err}"
                    );
                    assert_eq!(store, before, "{name}: store changed by a refused insert");
                    assert_eq!(store.get(index), None);
                    assert_eq!(store.next_index(), Some(index));
                    failing += 1;
                }
                other => panic!("{name}: unknown output {other}"),
            }
        }
        // Every accepted secret is still retrievable.
        for step in steps.iter().filter(|s| s["output"] == "OK") {
            let index = step["I_int"].as_u64().unwrap();
            assert_eq!(store.get(index), Some(hex32(&step["secret"])), "{name}");
        }
    }
    assert_eq!(failing, 8);
}

#[test]
fn a_thousand_consecutive_secrets_stay_retrievable_in_at_most_49_slots() {
    let seed = [0x5a; 32];
    let mut store = SecretStore::new();
    for n in 0..1_000u64 {
        let index = secret_index(n);
        assert_eq!(store.next_index(), Some(index));
        store
            .insert(index, generate_from_seed(&seed, index))
            .unwrap();
        assert!(store.len() <= MAX_SLOTS, "{} entries", store.len());
        // Spot-check that every earlier secret survives the slot being overwritten.
        if n % 97 == 0 {
            for m in 0..=n {
                let expected = generate_from_seed(&seed, secret_index(m));
                assert_eq!(store.get_by_commitment_number(m), Some(expected), "{m}");
            }
        }
    }
    for m in 0..1_000u64 {
        let index = secret_index(m);
        assert_eq!(store.get(index), Some(generate_from_seed(&seed, index)));
        assert_eq!(
            store.get_by_commitment_number(m),
            Some(generate_from_seed(&seed, index))
        );
    }
    // Not yet revealed, or not an index at all.
    assert_eq!(store.get_by_commitment_number(1_000), None);
    assert_eq!(store.next_index(), Some(secret_index(1_000)));
    assert_eq!(store.get(MAX_INDEX + 1), None);
    assert_eq!(store.latest_commitment_number(), Some(999));

    // A secret from another seed is refused once it has a lower slot to check against: index
    // 2^48-1-1000 is odd (slot 0, nothing to check), 2^48-1-1001 is in slot 1.
    let odd = secret_index(1_000);
    store.insert(odd, generate_from_seed(&seed, odd)).unwrap();
    let mut wrong = store.clone();
    let next = secret_index(1_001);
    let err = wrong
        .insert(next, generate_from_seed(&[0xa5; 32], next))
        .unwrap_err();
    assert!(matches!(err, ShachainError::SecretMismatch { .. }), "{err}");
    assert_eq!(wrong, store);
}

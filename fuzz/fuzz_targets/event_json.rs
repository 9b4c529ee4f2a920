#![no_main]
// Golden traces whose setups and steps put the arbitrator in a rich state before the fuzzed
// events: a close with claims, anchors with a CPFP, a breach.
const STARTS: [&str; 3] = [
    include_str!("../../tests/golden/remote_close_claims.json"),
    include_str!("../../tests/golden/anchors_cpfp_local_commitment.json"),
    include_str!("../../tests/golden/breach_handoff.json"),
];
libfuzzer_sys::fuzz_target!(|data: &[u8]| contractcourt_core::fuzzing::event_json(&STARTS, data));

//! Entry points for the fuzz targets in `fuzz/`: each target is a one-line call into a function
//! here, so the logic is built and tested with the rest of the core.

use bitcoin::consensus::Decodable;
use bitcoin::Witness;

use crate::bolt3::classify::{
    classify_anchor_spend, classify_htlc_spend, classify_to_local_spend, HtlcOutputKind,
};
use crate::bolt3::PaymentHash;

/// Witness classification on arbitrary bytes: the first 32 bytes are a payment hash, the rest a
/// consensus-encoded witness (anything that does not decode is skipped). Must never panic.
pub fn classify_witness(data: &[u8]) {
    let (hash, rest) = match data.split_first_chunk::<32>() {
        Some((hash, rest)) => (PaymentHash(*hash), rest),
        None => return,
    };
    let mut reader = rest;
    let Ok(witness) = Witness::consensus_decode(&mut reader) else {
        return;
    };
    for kind in [HtlcOutputKind::Offered, HtlcOutputKind::Received] {
        let _ = classify_htlc_spend(&witness, kind, &hash);
    }
    let _ = classify_to_local_spend(&witness);
    let _ = classify_anchor_spend(&witness);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_witness_takes_any_bytes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..2_000usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            classify_witness(&data);
        }
        // A well-formed witness after the hash is classified too.
        let mut data = vec![0u8; 32];
        data.extend(bitcoin::consensus::serialize(&Witness::from_slice(&[
            vec![1u8; 72],
            vec![],
        ])));
        classify_witness(&data);
    }
}

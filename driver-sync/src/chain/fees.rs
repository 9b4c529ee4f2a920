//! What a long-running driver (`serve`) asks a chain source besides blocks and broadcasts
//! ([`LiveSource`]): fee conditions, initial-block-download state, where a new engine starts.
//!
//! - bitcoind: `estimatesmartfee` at each of the core's [`ESTIMATE_TARGETS`] (a target bitcoind
//!   has no estimate for yet is left out) and `getmempoolinfo` (`mempoolminfee`,
//!   `minrelaytxfee`, `incrementalrelayfee`); `getblockchaininfo`'s `initialblockdownload`.
//! - Esplora: `GET /fee-estimates` (sat/vB per target); Esplora says nothing of relay floors, so
//!   those are the core's defaults (Bitcoin Core's).
//!
//! Conversions only: which targets to ask for and what the rates mean are the core's.

use std::collections::HashMap;

use bitcoin::{Amount, FeeRate};
use bitcoincore_rpc::json::EstimateSmartFeeResult;
use bitcoincore_rpc::RpcApi;
use contractcourt_core::event::{FeeConditions, FeeEstimate};
use contractcourt_core::fee::{DEFAULT_INCREMENTAL_RELAY, DEFAULT_MIN_RELAY, ESTIMATE_TARGETS};
use contractcourt_core::types::Height;
use serde::Deserialize;

use super::bitcoind::{undecodable, BitcoindSource, BitcoindSyncError};
use super::esplora::{EsploraSource, EsploraSyncError};
use crate::driver::SourceError;

/// What a long-running driver asks a chain source besides blocks and broadcasts.
pub trait LiveSource: Send {
    /// The current fee conditions, or `None` if the source has none.
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError>;
    /// Whether the source is still in initial block download (its tip is not the network's):
    /// the driver waits. Sources that cannot tell say no.
    fn in_initial_download(&mut self) -> Result<bool, SourceError> {
        Ok(false)
    }
    /// Answer an empty locator (a new engine) from `height` on instead of from genesis.
    fn start_at(&mut self, height: Height);
}

/// A rate in BTC per 1000 virtual bytes (bitcoind's unit) as a fee rate; `None` if it is not a
/// finite, non-negative number.
pub fn btc_per_kvb(rate: f64) -> Option<FeeRate> {
    let sat_per_kvb = Amount::from_btc(rate).ok()?.to_sat();
    // sat/kvB = sat per 4000 weight units: sat/kwu = sat/kvB / 4.
    Some(FeeRate::from_sat_per_kwu(sat_per_kvb / 4))
}

/// The part of `getmempoolinfo` used.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct MempoolInfo {
    mempoolminfee: f64,
    minrelaytxfee: f64,
    #[serde(default)]
    incrementalrelayfee: Option<f64>,
}

/// A `getmempoolinfo` answer.
pub(crate) fn mempool_info(answer: serde_json::Value) -> Result<MempoolInfo, serde_json::Error> {
    serde_json::from_value(answer)
}

/// bitcoind's fee conditions: `getmempoolinfo`'s relay floors (a rate that is not a finite,
/// non-negative number is the core's default) and the `estimatesmartfee` answers at their
/// targets, those without an estimate left out.
pub(crate) fn bitcoind_conditions<'a>(
    info: &MempoolInfo,
    estimates: impl IntoIterator<Item = (u16, &'a EstimateSmartFeeResult)>,
) -> FeeConditions {
    let estimates = estimates
        .into_iter()
        .filter_map(|(target, answer)| {
            answer.fee_rate.map(|a| FeeEstimate {
                target_blocks: target,
                feerate: FeeRate::from_sat_per_kwu(a.to_sat() / 4),
            })
        })
        .collect();
    FeeConditions {
        estimates,
        mempool_min: btc_per_kvb(info.mempoolminfee).unwrap_or(DEFAULT_MIN_RELAY),
        min_relay: btc_per_kvb(info.minrelaytxfee).unwrap_or(DEFAULT_MIN_RELAY),
        incremental_relay: info
            .incrementalrelayfee
            .and_then(btc_per_kvb)
            .unwrap_or(DEFAULT_INCREMENTAL_RELAY),
    }
}

/// The part of `getblockchaininfo` used.
#[derive(Deserialize)]
struct DownloadState {
    #[serde(default)]
    initialblockdownload: bool,
}

/// Whether a `getblockchaininfo` answer says the node is in initial block download (an answer
/// without `initialblockdownload` says no).
pub(crate) fn initial_download(answer: serde_json::Value) -> Result<bool, serde_json::Error> {
    let state: DownloadState = serde_json::from_value(answer)?;
    Ok(state.initialblockdownload)
}

/// Esplora's fee conditions: its `/fee-estimates` (as `esplora-client` converts them), in target
/// order; the relay floors are the core's defaults (Esplora says nothing of them).
pub(crate) fn esplora_conditions(estimates: HashMap<u16, FeeRate>) -> FeeConditions {
    let mut estimates: Vec<FeeEstimate> = estimates
        .into_iter()
        .map(|(target_blocks, feerate)| FeeEstimate {
            target_blocks,
            feerate,
        })
        .collect();
    estimates.sort_by_key(|e| e.target_blocks);
    FeeConditions {
        estimates,
        mempool_min: DEFAULT_MIN_RELAY,
        min_relay: DEFAULT_MIN_RELAY,
        incremental_relay: DEFAULT_INCREMENTAL_RELAY,
    }
}

fn client_error(e: bitcoincore_rpc::Error) -> SourceError {
    Box::new(BitcoindSyncError::Client(e))
}

impl LiveSource for BitcoindSource {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        let info = self
            .client()
            .call::<serde_json::Value>("getmempoolinfo", &[])
            .and_then(|answer| mempool_info(answer).map_err(undecodable))
            .map_err(client_error)?;
        let mut answers = Vec::new();
        for target in ESTIMATE_TARGETS {
            let answer = self
                .client()
                .estimate_smart_fee(target, None)
                .map_err(client_error)?;
            answers.push((target, answer));
        }
        Ok(Some(bitcoind_conditions(
            &info,
            answers.iter().map(|(target, answer)| (*target, answer)),
        )))
    }

    fn in_initial_download(&mut self) -> Result<bool, SourceError> {
        self.client()
            .call::<serde_json::Value>("getblockchaininfo", &[])
            .and_then(|answer| initial_download(answer).map_err(undecodable))
            .map_err(client_error)
    }

    fn start_at(&mut self, height: Height) {
        self.set_first_height(height);
    }
}

impl LiveSource for EsploraSource {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        let estimates = self
            .client()
            .get_fee_estimates()
            .map_err(|e| -> SourceError { Box::new(EsploraSyncError::Client(e)) })?;
        Ok(Some(esplora_conditions(estimates)))
    }

    fn start_at(&mut self, height: Height) {
        self.set_first_height(height);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitcoind_rates_in_btc_per_kvb_convert_to_sat_per_kwu() {
        // 0.00001 BTC/kvB = 1000 sat/kvB = 1 sat/vB = 250 sat/kwu.
        assert_eq!(btc_per_kvb(0.00001), Some(FeeRate::from_sat_per_kwu(250)));
        assert_eq!(
            btc_per_kvb(0.00012345),
            Some(FeeRate::from_sat_per_kwu(3086))
        );
        assert_eq!(btc_per_kvb(-1.0), None);
        assert_eq!(btc_per_kvb(f64::NAN), None);
    }
}

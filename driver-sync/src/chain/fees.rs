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

use bitcoin::{Amount, FeeRate};
use bitcoincore_rpc::RpcApi;
use contractcourt_core::event::{FeeConditions, FeeEstimate};
use contractcourt_core::fee::{DEFAULT_INCREMENTAL_RELAY, DEFAULT_MIN_RELAY, ESTIMATE_TARGETS};
use contractcourt_core::types::Height;
use serde::Deserialize;

use super::bitcoind::{BitcoindSource, BitcoindSyncError};
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
#[derive(Deserialize)]
struct MempoolInfo {
    mempoolminfee: f64,
    minrelaytxfee: f64,
    #[serde(default)]
    incrementalrelayfee: Option<f64>,
}

/// The part of `getblockchaininfo` used.
#[derive(Deserialize)]
struct DownloadState {
    #[serde(default)]
    initialblockdownload: bool,
}

fn client_error(e: bitcoincore_rpc::Error) -> SourceError {
    Box::new(BitcoindSyncError::Client(e))
}

impl LiveSource for BitcoindSource {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        let info: MempoolInfo = self
            .client()
            .call("getmempoolinfo", &[])
            .map_err(client_error)?;
        let mut estimates = Vec::new();
        for target in ESTIMATE_TARGETS {
            let answer = self
                .client()
                .estimate_smart_fee(target, None)
                .map_err(client_error)?;
            if let Some(feerate) = answer.fee_rate.map(|a| a.to_sat() / 4) {
                estimates.push(FeeEstimate {
                    target_blocks: target,
                    feerate: FeeRate::from_sat_per_kwu(feerate),
                });
            }
        }
        Ok(Some(FeeConditions {
            estimates,
            mempool_min: btc_per_kvb(info.mempoolminfee).unwrap_or(DEFAULT_MIN_RELAY),
            min_relay: btc_per_kvb(info.minrelaytxfee).unwrap_or(DEFAULT_MIN_RELAY),
            incremental_relay: info
                .incrementalrelayfee
                .and_then(btc_per_kvb)
                .unwrap_or(DEFAULT_INCREMENTAL_RELAY),
        }))
    }

    fn in_initial_download(&mut self) -> Result<bool, SourceError> {
        let state: DownloadState = self
            .client()
            .call("getblockchaininfo", &[])
            .map_err(client_error)?;
        Ok(state.initialblockdownload)
    }

    fn start_at(&mut self, height: Height) {
        self.set_first_height(height);
    }
}

impl LiveSource for EsploraSource {
    fn fee_conditions(&mut self) -> Result<Option<FeeConditions>, SourceError> {
        let mut estimates: Vec<FeeEstimate> = self
            .client()
            .get_fee_estimates()
            .map_err(|e| -> SourceError { Box::new(EsploraSyncError::Client(e)) })?
            .into_iter()
            .map(|(target_blocks, feerate)| FeeEstimate {
                target_blocks,
                feerate,
            })
            .collect();
        estimates.sort_by_key(|e| e.target_blocks);
        Ok(Some(FeeConditions {
            estimates,
            mempool_min: DEFAULT_MIN_RELAY,
            min_relay: DEFAULT_MIN_RELAY,
            incremental_relay: DEFAULT_INCREMENTAL_RELAY,
        }))
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

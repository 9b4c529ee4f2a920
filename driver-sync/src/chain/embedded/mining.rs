//! Block assembly: the coinbase (BIP 34 height, BIP 141 witness commitment, subsidy plus
//! fees), the header (deterministic time, regtest difficulty) and the proof of work.

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hashes::Hash;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::script::Builder;
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, Block, BlockHash, OutPoint, Script, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use contractcourt_core::types::Height;

use super::ChainError;

/// Regtest's proof-of-work limit in compact form (`nBits`): about one hash in two meets it.
pub const REGTEST_BITS: u32 = 0x207f_ffff;
/// Regtest halves the subsidy every 150 blocks.
pub const REGTEST_HALVING_INTERVAL: Height = 150;
/// Seconds between consecutive block times (header time = genesis time + 600 · height).
pub const BLOCK_SPACING_SECS: u32 = 600;
/// Blocks before a coinbase output may be spent.
pub const COINBASE_MATURITY: Height = 100;
/// The consensus block weight limit.
pub const MAX_BLOCK_WEIGHT: u64 = 4_000_000;
/// Weight kept free for the coinbase when filling a block from the mempool.
pub const COINBASE_RESERVED_WEIGHT: u64 = 4_000;

/// The BIP 141 witness reserved value (in the coinbase witness).
const WITNESS_RESERVED_VALUE: [u8; 32] = [0; 32];
/// `OP_RETURN OP_PUSHBYTES_36 0xaa21a9ed`: the witness commitment output's prefix.
const WITNESS_COMMITMENT_PREFIX: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// The block subsidy at `height` on regtest.
pub fn block_subsidy(height: Height) -> Amount {
    let halvings = height / REGTEST_HALVING_INTERVAL;
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat((50 * 100_000_000) >> halvings)
}

/// The header time of the block at `height`: strictly increasing, no wall clock.
pub fn block_time(genesis_time: u32, height: Height) -> u32 {
    genesis_time.saturating_add(BLOCK_SPACING_SECS.saturating_mul(height))
}

/// What a block is made of.
pub(super) struct BlockTemplate<'a> {
    /// The parent's hash.
    pub prev_hash: BlockHash,
    /// The new block's height.
    pub height: Height,
    /// Its header time.
    pub time: u32,
    /// The transactions after the coinbase, in order.
    pub txs: Vec<Transaction>,
    /// Where the coinbase pays.
    pub payout: &'a Script,
    /// The fees the coinbase may claim besides the subsidy.
    pub fees: Amount,
    /// Distinguishes blocks of competing branches that would otherwise be identical (0 on the
    /// main line, a fresh number per fork); pushed after the height in the coinbase `scriptSig`.
    pub branch: u32,
}

fn coinbase(t: &BlockTemplate<'_>) -> Transaction {
    // BIP 34: the height is the first push, encoded as Bitcoin Core's `CScript() << height`
    // (OP_1..OP_16 for small heights), which `push_int` matches. The branch push also keeps
    // the scriptSig at the two bytes `CheckTransaction` requires.
    let script_sig = Builder::new()
        .push_int(i64::from(t.height))
        .push_int(i64::from(t.branch))
        .into_script();
    Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig,
            sequence: Sequence::MAX,
            witness: Witness::from_slice(&[WITNESS_RESERVED_VALUE]),
        }],
        output: vec![TxOut {
            value: block_subsidy(t.height)
                .checked_add(t.fees)
                .unwrap_or(Amount::MAX_MONEY),
            script_pubkey: t.payout.to_owned(),
        }],
    }
}

/// The branch number a block's coinbase carries (see [`BlockTemplate::branch`]), if it has one.
pub(super) fn branch_of(block: &Block) -> Option<u32> {
    use bitcoin::script::Instruction;
    let script_sig = &block.txdata.first()?.input.first()?.script_sig;
    let mut pushes = script_sig.instructions();
    pushes.next()?.ok()?;
    match pushes.next()?.ok()? {
        Instruction::PushBytes(bytes) => {
            u32::try_from(bitcoin::script::read_scriptint(bytes.as_bytes()).ok()?).ok()
        }
        Instruction::Op(op) => {
            let code = op.to_u8();
            let op_1 = bitcoin::opcodes::all::OP_PUSHNUM_1.to_u8();
            let op_16 = bitcoin::opcodes::all::OP_PUSHNUM_16.to_u8();
            (op_1..=op_16)
                .contains(&code)
                .then(|| u32::from(code - op_1 + 1))
        }
    }
}

/// Assemble and mine a block: coinbase with the witness commitment, merkle root, header at
/// regtest difficulty, nonce ground until the hash meets the target.
pub(super) fn assemble(t: BlockTemplate<'_>) -> Result<Block, ChainError> {
    let mut txdata = Vec::with_capacity(t.txs.len() + 1);
    txdata.push(coinbase(&t));
    txdata.extend(t.txs);
    let mut block = Block {
        header: Header {
            version: BlockVersion::from_consensus(0x2000_0000),
            prev_blockhash: t.prev_hash,
            merkle_root: TxMerkleNode::all_zeros(),
            time: t.time,
            bits: CompactTarget::from_consensus(REGTEST_BITS),
            nonce: 0,
        },
        txdata,
    };

    // BIP 141: commit to the witness merkle root (the coinbase counts as zero) and the
    // reserved value, in an OP_RETURN output of the coinbase.
    let witness_root = block
        .witness_root()
        .ok_or_else(|| ChainError::Inconsistent("a block without transactions".to_owned()))?;
    let commitment = Block::compute_witness_commitment(&witness_root, &WITNESS_RESERVED_VALUE);
    let mut script = WITNESS_COMMITMENT_PREFIX.to_vec();
    script.extend_from_slice(commitment.as_byte_array());
    block.txdata[0].output.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: ScriptBuf::from_bytes(script),
    });

    block.header.merkle_root = block
        .compute_merkle_root()
        .ok_or_else(|| ChainError::Inconsistent("a block without transactions".to_owned()))?;
    let target = Target::from_compact(block.header.bits);
    for nonce in 0..=u32::MAX {
        block.header.nonce = nonce;
        if target.is_met_by(block.header.block_hash()) {
            return Ok(block);
        }
    }
    Err(ChainError::ProofOfWorkNotFound { height: t.height })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(block_subsidy(0), Amount::from_btc(50.0).unwrap());
        assert_eq!(block_subsidy(149), Amount::from_btc(50.0).unwrap());
        assert_eq!(block_subsidy(150), Amount::from_btc(25.0).unwrap());
        assert_eq!(block_subsidy(150 * 64), Amount::ZERO);
    }

    #[test]
    fn assembled_block_meets_pow_and_commits_to_witnesses() {
        let payout = ScriptBuf::new_op_return([1u8; 4]);
        let block = assemble(BlockTemplate {
            prev_hash: BlockHash::all_zeros(),
            height: 17,
            time: 1_296_688_602 + 600 * 17,
            txs: vec![],
            payout: &payout,
            fees: Amount::ZERO,
            branch: 0,
        })
        .unwrap();
        assert!(block.check_merkle_root());
        assert!(block.check_witness_commitment());
        assert!(block.header.validate_pow(block.header.target()).is_ok());
        assert_eq!(block.bip34_block_height(), Ok(17));
    }

    #[test]
    fn the_branch_number_is_read_back_from_the_coinbase() {
        let payout = ScriptBuf::new_op_return([1u8; 4]);
        for branch in [0, 1, 16, 17, 300, 70_000] {
            let block = assemble(BlockTemplate {
                prev_hash: BlockHash::all_zeros(),
                height: 17,
                time: 1_296_688_602 + 600 * 17,
                txs: vec![],
                payout: &payout,
                fees: Amount::ZERO,
                branch,
            })
            .unwrap();
            assert_eq!(branch_of(&block), Some(branch));
        }
    }
}

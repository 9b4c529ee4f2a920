//! The block journal of a chain kept on disk: every block the kernel took, appended, and synced
//! to disk before the call that submitted it returns.
//!
//! `libbitcoinkernel` writes its block index and chainstate only when it flushes (on a clean
//! shutdown, or about once an hour), and its block files through buffered writes: a process
//! killed without a shutdown leaves a data directory whose chain is back at genesis. The
//! journal is what makes the chain survive that. [`super::EmbeddedChain::open`] feeds the
//! journal's blocks to the kernel again, in their original order (blocks the kernel still has
//! are duplicates to it), so the reopened kernel picks the same active chain.
//!
//! Format: the 8-byte magic `ccblkj01`, then one record per block: its length (`u32`, little
//! endian), the SHA-256 of its bytes, its consensus serialisation. A record cut short or whose
//! checksum fails at the end of the file is a write the kill interrupted: it is cut off. A
//! damaged record followed by more data is corruption and refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bitcoin::hashes::{sha256, Hash};

use super::tempdir::io_error;
use super::ChainError;

/// The journal's file name inside the chain's data directory.
pub(super) const FILE_NAME: &str = "contractcourt-blocks.journal";
const MAGIC: &[u8; 8] = b"ccblkj01";
/// A record's header: the length and the checksum.
const HEADER: usize = 4 + 32;

/// An open journal, positioned at its end.
pub(super) struct Journal {
    file: File,
    path: PathBuf,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Open (or create) the journal of `data_dir` and read its blocks, in order. A torn last
    /// record is cut off.
    pub(super) fn open(data_dir: &Path) -> Result<(Journal, Vec<bitcoin::Block>), ChainError> {
        let path = data_dir.join(FILE_NAME);
        let io = |e: std::io::Error| io_error(&path, &e);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let corrupt = |offset: usize, what: &str| ChainError::Io {
            path: path.clone(),
            message: format!("block journal damaged at byte {offset}: {what}"),
        };
        if bytes.len() < MAGIC.len() {
            // New, or killed while writing the magic: nothing in it yet.
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            file.write_all(MAGIC).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok((Journal { file, path }, Vec::new()));
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt(0, "not a block journal of this program"));
        }
        let mut blocks = Vec::new();
        let mut offset = MAGIC.len();
        while offset < bytes.len() {
            let torn_or = |what: &str, end: usize| {
                if end >= bytes.len() {
                    None
                } else {
                    Some(corrupt(offset, what))
                }
            };
            let Some(header) = bytes.get(offset..offset + HEADER) else {
                break;
            };
            let mut len = [0u8; 4];
            len.copy_from_slice(&header[..4]);
            let len = u32::from_le_bytes(len) as usize;
            let end = offset.saturating_add(HEADER).saturating_add(len);
            let Some(body) = bytes.get(offset + HEADER..end) else {
                break;
            };
            if sha256::Hash::hash(body).to_byte_array()[..] != header[4..] {
                match torn_or("checksum mismatch", end) {
                    Some(e) => return Err(e),
                    None => break,
                }
            }
            match bitcoin::consensus::deserialize::<bitcoin::Block>(body) {
                Ok(block) => blocks.push(block),
                Err(e) => return Err(corrupt(offset, &format!("not a block: {e}"))),
            }
            offset = end;
        }
        if offset < bytes.len() {
            // The last append was cut short by a kill: drop it (nobody saw that block).
            file.set_len(offset as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok((Journal { file, path }, blocks))
    }

    /// Append `block` (in the file, not yet synced to disk: see [`Journal::sync`]).
    pub(super) fn append(&mut self, block: &bitcoin::Block) -> Result<(), ChainError> {
        let body = bitcoin::consensus::serialize(block);
        let len = u32::try_from(body.len()).map_err(|_| ChainError::Io {
            path: self.path.clone(),
            message: "a block too large for the journal".to_owned(),
        })?;
        let mut record = Vec::with_capacity(HEADER + body.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(sha256::Hash::hash(&body).as_byte_array());
        record.extend_from_slice(&body);
        self.file
            .write_all(&record)
            .map_err(|e| io_error(&self.path, &e))
    }

    /// Sync what was appended to disk.
    pub(super) fn sync(&mut self) -> Result<(), ChainError> {
        self.file.sync_data().map_err(|e| io_error(&self.path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "contractcourt-journal-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn blocks_come_back_in_order_and_a_torn_tail_is_cut_off() {
        let dir = scratch("torn");
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let other = bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin);
        {
            let (mut journal, blocks) = Journal::open(&dir).unwrap();
            assert!(blocks.is_empty());
            journal.append(&genesis).unwrap();
            journal.append(&other).unwrap();
        }
        // A kill in the middle of a third append.
        let path = dir.join(FILE_NAME);
        let full = std::fs::read(&path).unwrap();
        let mut torn = full.clone();
        torn.extend_from_slice(&full[8..8 + 40]);
        std::fs::write(&path, &torn).unwrap();
        let (mut journal, blocks) = Journal::open(&dir).unwrap();
        assert_eq!(blocks, vec![genesis.clone(), other.clone()]);
        assert_eq!(std::fs::read(&path).unwrap(), full);
        journal.append(&genesis).unwrap();
        drop(journal);
        let (_, blocks) = Journal::open(&dir).unwrap();
        assert_eq!(blocks.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_record_before_the_end_is_refused() {
        let dir = scratch("damaged");
        let genesis = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        {
            let (mut journal, _) = Journal::open(&dir).unwrap();
            journal.append(&genesis).unwrap();
            journal.append(&genesis).unwrap();
        }
        let path = dir.join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[8 + HEADER + 10] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = Journal::open(&dir).unwrap_err().to_string();
        assert!(e.contains("block journal damaged at byte 8"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

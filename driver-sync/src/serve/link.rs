//! The node's end of `serve`: a Unix socket (owner-only, 0600; no TCP), one connected node at a
//! time (another connection gets a `busy` error and is closed until that one goes away),
//! newline-delimited JSON.
//!
//! [`NodeLink`] is the driver's [`NodeHandle`], [`Signer`] and [`Wallet`]: notifications are
//! written to the node, or kept in an outbox while none is connected and written after its next
//! `hello`; a sign or funding request is written and the answer awaited (up to the configured
//! timeout; messages that arrive meanwhile are kept for the serve loop). Without a node, or
//! without an answer in time, a request fails with a reason (the core asks again later).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contractcourt_core::action::{FailReason, FundingRequest, Report, SignRequest};
use contractcourt_core::bolt3::PaymentPreimage;
use contractcourt_core::event::{FundingOutcome, SignOutcome};
use contractcourt_core::types::{ChannelId, ClaimId, HtlcKey, RequestId};

use super::protocol::{self, Inbound, Outbound};
use crate::driver::{NodeHandle, Signer, Wallet};

/// The most notifications kept for a node that is not connected (the oldest are dropped first;
/// settle and fail decisions are re-emitted by the engine after `hello` anyway).
pub const OUTBOX_LIMIT: usize = 100_000;
/// The longest line accepted from the node.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// A line the node sent, as read.
pub type Line = String;

struct Connection {
    stream: UnixStream,
    buffer: Vec<u8>,
    greeted: bool,
}

/// The node's socket. See the module documentation.
pub struct NodeLink {
    listener: UnixListener,
    path: PathBuf,
    connection: Option<Connection>,
    outbox: VecDeque<String>,
    inbox: VecDeque<Line>,
    timeout: Duration,
}

impl std::fmt::Debug for NodeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLink")
            .field("path", &self.path)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

/// Bind `path` owner-only: the socket is made in a fresh 0700 directory beside it, set to 0600,
/// then moved into place, so it is never reachable with wider permissions. A stale socket at
/// `path` (one nothing listens on; not any other file) is replaced.
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                ErrorKind::AddrInUse,
                format!("{} is the socket of a running engine", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    let staging = parent.join(format!(".contractcourt-socket-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let staged = staging.join("s");
    let result = UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    });
    let _ = std::fs::remove_dir_all(&staging);
    let listener = result?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The complete lines at the front of `buffer` (each ended by `\n`), taken out of it, oldest
/// first: each read as UTF-8 (a byte that is not becomes U+FFFD), trimmed, the empty ones
/// dropped. What is left in `buffer` is an unfinished line. One pass over the buffer, however
/// many lines it holds.
pub fn take_lines(buffer: &mut Vec<u8>) -> Vec<Line> {
    let Some(last) = buffer.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let lines = buffer[..last]
        .split(|b| *b == b'\n')
        .map(|line| String::from_utf8_lossy(line).trim().to_owned())
        .filter(|text| !text.is_empty())
        .collect();
    buffer.drain(..=last);
    lines
}

/// Turn a second connection down: one `busy` error line, then close it.
fn refuse(mut stream: UnixStream) {
    tracing::warn!("a second node connection refused: one is connected");
    let line = protocol::line(&Outbound::Error {
        id: None,
        code: protocol::ErrorCode::Busy,
        message: "another node is connected".into(),
    });
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(line.as_bytes());
}

impl NodeLink {
    /// Listen at `path`; requests wait `timeout` for the node's answer.
    pub fn bind(path: &Path, timeout: Duration) -> std::io::Result<NodeLink> {
        Ok(NodeLink {
            listener: bind_private(path)?,
            path: path.to_owned(),
            connection: None,
            outbox: VecDeque::new(),
            inbox: VecDeque::new(),
            timeout,
        })
    }

    /// Whether a node is connected and has said `hello`.
    pub fn greeted(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| c.greeted)
    }

    /// Mark the connection as greeted and write the outbox to it.
    pub fn greet(&mut self) {
        if let Some(c) = &mut self.connection {
            c.greeted = true;
        }
        while let Some(line) = self.outbox.pop_front() {
            if !self.write_now(&line) {
                self.outbox.push_front(line);
                break;
            }
        }
    }

    /// Accept a waiting connection (replacing the current one) and read what the node sent;
    /// returns the complete lines received, oldest first (kept ones first).
    pub fn poll(&mut self) -> Vec<Line> {
        // Read first: a node that went away is noticed before a new one is turned down.
        self.read_available();
        match self.listener.accept() {
            Ok((stream, _)) if self.connection.is_some() => refuse(stream),
            Ok((stream, _)) => {
                if stream.set_nonblocking(true).is_ok() {
                    tracing::info!("node connected");
                    self.connection = Some(Connection {
                        stream,
                        buffer: Vec::new(),
                        greeted: false,
                    });
                    self.read_available();
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => tracing::warn!(error = %e, "accepting a node connection"),
        }
        self.inbox.drain(..).collect()
    }

    /// Read whatever is available into the inbox; drop the connection on end of file or error.
    fn read_available(&mut self) {
        let Some(c) = &mut self.connection else {
            return;
        };
        let mut chunk = [0u8; 64 * 1024];
        let closed = loop {
            match c.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => c.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        self.inbox.extend(take_lines(&mut c.buffer));
        if closed || c.buffer.len() > MAX_LINE {
            tracing::info!("node disconnected");
            self.connection = None;
        }
    }

    /// Write a reply to the connected node (replies are not kept for a later connection).
    pub fn reply(&mut self, message: &Outbound) {
        let line = protocol::line(message);
        let _ = self.write_now(&line);
    }

    /// Write a notification, or keep it for the next `hello`.
    pub fn notify(&mut self, message: &Outbound) {
        let line = protocol::line(message);
        if self.greeted() && self.write_now(&line) {
            return;
        }
        if self.outbox.len() >= OUTBOX_LIMIT {
            self.outbox.pop_front();
        }
        self.outbox.push_back(line);
    }

    /// Write one line, blocking until written; false (and the connection dropped) on failure.
    fn write_now(&mut self, line: &str) -> bool {
        let Some(c) = &mut self.connection else {
            return false;
        };
        let written = c
            .stream
            .set_nonblocking(false)
            .and_then(|()| c.stream.set_write_timeout(Some(self.timeout)))
            .and_then(|()| c.stream.write_all(line.as_bytes()))
            .and_then(|()| c.stream.set_nonblocking(true));
        if written.is_err() {
            tracing::info!("node disconnected");
            self.connection = None;
        }
        written.is_ok()
    }

    /// Write a request and wait for the answer `pick` recognises; other lines are kept for the
    /// serve loop. `None` without a node or an answer in time.
    fn ask<T>(&mut self, message: &Outbound, pick: impl Fn(&Inbound) -> Option<T>) -> Option<T> {
        if !self.greeted() || !self.write_now(&protocol::line(message)) {
            return None;
        }
        // No deadline for a timeout beyond any the clock can count to: wait as long as the node
        // is connected.
        let deadline = Instant::now().checked_add(self.timeout);
        let mut checked = self.inbox.len();
        loop {
            while checked < self.inbox.len() {
                let (id, parsed) = protocol::parse(&self.inbox[checked]);
                if let Some(answer) = parsed.as_ref().ok().and_then(&pick) {
                    self.inbox.remove(checked);
                    if let Some(id) = id {
                        self.reply(&Outbound::Ok { id });
                    }
                    return Some(answer);
                }
                checked += 1;
            }
            if self.connection.is_none() || deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
            self.read_available();
        }
    }
}

impl NodeHandle for NodeLink {
    fn update_persisted(&mut self, channel: ChannelId, update_id: u64) {
        self.notify(&Outbound::UpdatePersisted { channel, update_id });
    }
    fn settle_upstream(&mut self, htlc: HtlcKey, preimage: PaymentPreimage) {
        self.notify(&Outbound::SettleUpstream { htlc, preimage });
    }
    fn fail_upstream(&mut self, htlc: HtlcKey, reason: &FailReason) {
        self.notify(&Outbound::FailUpstream {
            htlc,
            reason: reason.clone(),
        });
    }
    fn report(&mut self, report: &Report) {
        self.notify(&Outbound::Report(report.clone()));
    }
}

fn answers(request: RequestId) -> impl Fn(&Inbound) -> Option<Inbound> {
    move |message| match message {
        Inbound::Signed { request: r, .. } | Inbound::Funded { request: r, .. }
            if *r == request =>
        {
            Some(message.clone())
        }
        _ => None,
    }
}

impl Signer for NodeLink {
    fn sign(&mut self, request: &SignRequest) -> SignOutcome {
        let message = Outbound::SignRequest(request.clone());
        match self.ask(&message, answers(request.request)) {
            Some(Inbound::Signed { outcome, .. }) => outcome,
            _ => SignOutcome::Failed {
                reason: "the node did not answer the sign request".into(),
            },
        }
    }
}

impl Wallet for NodeLink {
    fn fund(&mut self, request: &FundingRequest) -> FundingOutcome {
        let message = Outbound::FundRequest(request.clone());
        match self.ask(&message, answers(request.request)) {
            Some(Inbound::Funded { outcome, .. }) => outcome,
            _ => FundingOutcome::Failed {
                reason: "the node did not answer the funding request".into(),
            },
        }
    }
    fn release(&mut self, claim: ClaimId) {
        self.notify(&Outbound::ReleaseInputs { claim });
    }
}

impl Drop for NodeLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve --node-timeout-secs 18446744073709551615` (or a `NodeLink` bound with any timeout
    /// no deadline can be counted to) panicked at the first request to a connected node, adding
    /// the timeout to the clock.
    #[test]
    fn a_request_with_a_timeout_beyond_any_deadline_waits_for_the_answer() {
        let dir = std::env::temp_dir().join(format!("cc-link-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.sock");
        let mut link = NodeLink::bind(&path, Duration::MAX).unwrap();
        let mut node = UnixStream::connect(&path).unwrap();
        assert!(link.poll().is_empty());
        link.greet();
        node.write_all(b"{\"v\":1,\"id\":7,\"type\":\"ping\"}\n")
            .unwrap();
        let answer = link.ask(&Outbound::Ok { id: 1 }, |m| {
            matches!(m, Inbound::Ping).then_some("pinged")
        });
        assert_eq!(answer, Some("pinged"));
        drop(link);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

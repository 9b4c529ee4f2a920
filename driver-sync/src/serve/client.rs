//! A reference client of the node protocol, in Rust: what a Lightning node does over the
//! socket (`docs/node-protocol.md`). Blocking; the tests drive `serve` through it.
//!
//! [`NodeClient::send`] writes a message and reads until its reply; whatever the engine sends
//! meanwhile is kept ([`NodeClient::received`]), and its sign and funding requests are answered
//! at once by the client's [`Answerer`] (the engine waits for them before it can reply).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use contractcourt_core::action::{FundingRequest, SignRequest};
use contractcourt_core::event::{FundingOutcome, SignOutcome};

use super::protocol::{request_line, Inbound, Outbound};

/// What answers the engine's requests: the node's signer and wallet.
pub trait Answerer {
    /// Sign `request`.
    fn sign(&mut self, request: &SignRequest) -> SignOutcome;
    /// Fund `request`.
    fn fund(&mut self, request: &FundingRequest) -> FundingOutcome;
}

/// Why a client call failed.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed or closed.
    Io(std::io::Error),
    /// The engine sent a line that is not a message of this protocol.
    Garbled(String),
    /// No reply in time.
    Timeout,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "socket: {e}"),
            ClientError::Garbled(line) => write!(f, "not a protocol message: {line}"),
            ClientError::Timeout => write!(f, "no reply in time"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}

/// A connection to `serve`. See the module documentation.
pub struct NodeClient {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
    timeout: Duration,
    /// Every message from the engine that is not a reply, in order.
    pub received: Vec<Outbound>,
}

impl NodeClient {
    /// Connect to the socket at `path`; replies are awaited up to `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<NodeClient, ClientError> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(NodeClient {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            next_id: 1,
            timeout,
            received: Vec::new(),
        })
    }

    /// Send `message` and return its reply, answering requests meanwhile with `answerer`.
    pub fn send(
        &mut self,
        message: &Inbound,
        answerer: &mut dyn Answerer,
    ) -> Result<Outbound, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer
            .write_all(request_line(id, message).as_bytes())?;
        self.await_reply(id, answerer)
    }

    /// Send a raw line (a test of the engine's error replies) and return the next reply.
    pub fn send_raw(
        &mut self,
        line: &str,
        answerer: &mut dyn Answerer,
    ) -> Result<Outbound, ClientError> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_one(deadline)? {
                reply @ (Outbound::Ok { .. }
                | Outbound::Error { .. }
                | Outbound::Pong { .. }
                | Outbound::Welcome { .. }) => return Ok(reply),
                other => self.take(other, answerer)?,
            }
        }
    }

    /// Read messages for `wait`, answering requests; returns how many were received.
    pub fn pump(
        &mut self,
        wait: Duration,
        answerer: &mut dyn Answerer,
    ) -> Result<usize, ClientError> {
        let deadline = Instant::now() + wait;
        let before = self.received.len();
        loop {
            match self.read_one(deadline) {
                Ok(message) => self.take(message, answerer)?,
                Err(ClientError::Timeout) => return Ok(self.received.len() - before),
                Err(e) => return Err(e),
            }
        }
    }

    fn await_reply(
        &mut self,
        id: u64,
        answerer: &mut dyn Answerer,
    ) -> Result<Outbound, ClientError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let message = self.read_one(deadline)?;
            let reply_id = match &message {
                Outbound::Ok { id } | Outbound::Pong { id, .. } | Outbound::Welcome { id, .. } => {
                    Some(*id)
                }
                Outbound::Error { id, .. } => *id,
                _ => None,
            };
            match reply_id {
                Some(r) if r == id => return Ok(message),
                // The reply to one of our answers (or an earlier message): nothing to do.
                Some(_) => {}
                None if matches!(message, Outbound::Error { .. }) => return Ok(message),
                None => self.take(message, answerer)?,
            }
        }
    }

    /// Keep a message; answer it first if it is a request.
    fn take(&mut self, message: Outbound, answerer: &mut dyn Answerer) -> Result<(), ClientError> {
        let answer = match &message {
            Outbound::SignRequest(request) => Some(Inbound::Signed {
                request: request.request,
                outcome: answerer.sign(request),
            }),
            Outbound::FundRequest(request) => Some(Inbound::Funded {
                request: request.request,
                outcome: answerer.fund(request),
            }),
            _ => None,
        };
        if let Some(answer) = answer {
            let id = self.next_id;
            self.next_id += 1;
            self.writer
                .write_all(request_line(id, &answer).as_bytes())?;
        }
        if !matches!(message, Outbound::Ok { .. }) {
            self.received.push(message);
        }
        Ok(())
    }

    fn read_one(&mut self, deadline: Instant) -> Result<Outbound, ClientError> {
        let mut line = String::new();
        loop {
            match self.reader.read_line(&mut line) {
                Ok(0) => {
                    return Err(ClientError::Io(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "the engine closed the connection",
                    )))
                }
                Ok(_) if line.ends_with('\n') => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if Instant::now() >= deadline {
                        return Err(ClientError::Timeout);
                    }
                }
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        serde_json::from_str(line.trim()).map_err(|_| ClientError::Garbled(line))
    }
}

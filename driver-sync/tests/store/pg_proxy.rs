//! A Unix-socket proxy in front of the test server that can cut a connection at its next
//! `COMMIT`: before forwarding it (the transaction never commits) or after the server answered
//! it (the transaction committed, the client never hears so): a store's write whose outcome is
//! unknown, on demand.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::pg_support::server_url;

/// Where the next `COMMIT` is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The connection is closed instead of forwarding it: nothing commits.
    BeforeCommit,
    /// It is forwarded, the server's answer read and dropped, and the connection closed.
    AfterCommit,
}

/// A running proxy (its thread lives as long as the test process).
pub struct Proxy {
    /// The connection string through the proxy.
    pub url: String,
    armed: Arc<Mutex<Option<Cut>>>,
    /// How many cuts were made.
    cuts: Arc<AtomicU64>,
    dir: PathBuf,
}

impl Proxy {
    pub fn start(name: &str) -> Self {
        let server = server_url();
        let host = field(&server, "host").expect("the test server's url names a socket directory");
        let port = field(&server, "port").unwrap_or_else(|| "5432".into());
        let upstream = PathBuf::from(host).join(format!(".s.PGSQL.{port}"));
        let dir = std::env::temp_dir().join(format!("cc-pgproxy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))).unwrap();
        let armed = Arc::new(Mutex::new(None));
        let cuts = Arc::new(AtomicU64::new(0));
        let (a, c) = (armed.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if let Ok(server) = UnixStream::connect(&upstream) {
                    let (a, c) = (a.clone(), c.clone());
                    std::thread::spawn(move || relay(client, server, &a, &c));
                }
            }
        });
        let url = server
            .split_whitespace()
            .map(|kv| match kv.split_once('=') {
                Some(("host", _)) => format!("host={}", dir.display()),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ");
        Proxy {
            url,
            armed,
            cuts,
            dir,
        }
    }

    /// Cut the next `COMMIT` (of any connection through the proxy).
    pub fn arm(&self, cut: Cut) {
        *self.armed.lock().unwrap() = Some(cut);
    }

    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `key=value` of a libpq connection string.
fn field(url: &str, key: &str) -> Option<String> {
    url.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(String::from))
}

/// One message from the client: the untyped startup ones, then typed ones.
fn read_message(from: &mut UnixStream, typed: bool) -> Option<Vec<u8>> {
    let mut head = vec![0u8; if typed { 5 } else { 4 }];
    from.read_exact(&mut head).ok()?;
    let len = u32::from_be_bytes(head[head.len() - 4..].try_into().ok()?) as usize;
    let mut body = vec![0u8; len.checked_sub(4)?];
    from.read_exact(&mut body).ok()?;
    head.extend(body);
    Some(head)
}

fn relay(
    mut client: UnixStream,
    mut server: UnixStream,
    armed: &Mutex<Option<Cut>>,
    cuts: &AtomicU64,
) {
    let swallow = Arc::new(AtomicBool::new(false));
    let (mut from_server, mut to_client) =
        (server.try_clone().unwrap(), client.try_clone().unwrap());
    let s = swallow.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from_server.read(&mut buf) {
            if n == 0 || s.load(Ordering::SeqCst) {
                break; // the answer to a cut COMMIT is dropped
            }
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Both);
        let _ = from_server.shutdown(std::net::Shutdown::Both);
    });
    let mut typed = false;
    while let Some(message) = read_message(&mut client, typed) {
        let code = (!typed).then(|| u32::from_be_bytes(message[4..8].try_into().unwrap()));
        // SSLRequest and GSSENCRequest come before the startup message, untyped too.
        typed = typed || !matches!(code, Some(80877103 | 80877104));
        let commit = message.first() == Some(&b'Q') && message[5..].starts_with(b"COMMIT");
        let cut = if commit {
            armed.lock().unwrap().take()
        } else {
            None
        };
        if cut.is_some() {
            cuts.fetch_add(1, Ordering::SeqCst);
        }
        match cut {
            Some(Cut::BeforeCommit) => break,
            Some(Cut::AfterCommit) => swallow.store(true, Ordering::SeqCst),
            None => {}
        }
        if server.write_all(&message).is_err() {
            break;
        }
    }
    if !swallow.load(Ordering::SeqCst) {
        let _ = server.shutdown(std::net::Shutdown::Both);
        let _ = client.shutdown(std::net::Shutdown::Both);
    }
}

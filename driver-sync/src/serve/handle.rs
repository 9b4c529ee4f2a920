//! What `serve` does with each line from the node: parse it, check it may be sent now, feed it
//! to the driver, reply. A refused message gets a typed `error` reply and changes nothing.

use contractcourt_core::event::Event;

use super::link::NodeLink;
use super::protocol::{self, ErrorCode, Inbound, Outbound};
use super::ServeStore;
use crate::driver::{Driver, DriverError, DriverErrorKind};

/// The shared link, as the serve loop holds it.
pub type Link = std::sync::Arc<std::sync::Mutex<NodeLink>>;

fn error(link: &Link, id: Option<u64>, code: ErrorCode, message: String) {
    tracing::info!(?id, ?code, %message, "node message refused");
    crate::driver::io::lock(link).reply(&Outbound::Error { id, code, message });
}

/// Handle one line from the node. `starting`: the engine has not resumed yet (its chain source
/// was unreachable so far): `hello` and `ping` are answered, anything else is refused as
/// `unavailable` (and changes nothing).
pub fn line(driver: &mut Driver<ServeStore>, link: &Link, text: &str, starting: bool) {
    let (id, parsed) = protocol::parse(text);
    let message = match parsed {
        Ok(message) => message,
        Err((code, message)) => return error(link, id, code, message),
    };
    let Some(id) = id else {
        return error(link, None, ErrorCode::Malformed, "no id".into());
    };
    let greeted = crate::driver::io::lock(link).greeted();
    match message {
        Inbound::Hello { node } => hello(driver, link, id, node, starting),
        _ if !greeted => error(
            link,
            Some(id),
            ErrorCode::HelloFirst,
            "send hello first".into(),
        ),
        Inbound::Ping => crate::driver::io::lock(link).reply(&Outbound::Pong {
            id,
            tip: driver.engine().tip(),
        }),
        _ if starting => error(
            link,
            Some(id),
            ErrorCode::Unavailable,
            "the engine is starting: its chain source is not reachable yet".into(),
        ),
        Inbound::Event { event } => feed(driver, link, id, event),
        Inbound::Signed { request, .. } | Inbound::Funded { request, .. } => error(
            link,
            Some(id),
            ErrorCode::Unexpected,
            format!(
                "no outstanding request for claim {} attempt {}",
                request.claim.0, request.attempt
            ),
        ),
    }
}

/// `hello`: welcome, then everything pending — the outbox, and what the engine re-emits after
/// `Resumed` (settle and fail decisions not yet acknowledged, broadcasts).
fn hello(
    driver: &mut Driver<ServeStore>,
    link: &Link,
    id: u64,
    node: Option<String>,
    starting: bool,
) {
    tracing::info!(node = node.as_deref().unwrap_or("?"), "node said hello");
    {
        let mut link = crate::driver::io::lock(link);
        link.reply(&Outbound::Welcome {
            id,
            tip: driver.engine().tip(),
        });
        link.greet();
    }
    // A starting engine resumes once its source answers, and re-sends then.
    if starting {
        return;
    }
    if let Err(e) = driver.resume() {
        tracing::warn!(error = %e, "resuming for the node");
    }
}

fn feed(driver: &mut Driver<ServeStore>, link: &Link, id: u64, event: Event) {
    if !protocol::node_may_send(&event) {
        return error(
            link,
            Some(id),
            ErrorCode::NotAllowed,
            "the node may send channel, HTLC, force-close and wallet-balance events only".into(),
        );
    }
    match driver.feed(event) {
        Ok(_) => crate::driver::io::lock(link).reply(&Outbound::Ok { id }),
        Err(DriverError {
            kind: DriverErrorKind::Refused(e),
            ..
        }) => error(link, Some(id), ErrorCode::Refused, e.to_string()),
        // The event was stepped and committed; a later effect failed (the chain source,
        // say): what remains is re-emitted by the engine.
        Err(DriverError {
            kind: e @ (DriverErrorKind::Chain(_) | DriverErrorKind::EventRefused { .. }),
            ..
        }) => {
            tracing::warn!(error = %e, "an effect of a node event failed");
            crate::driver::io::lock(link).reply(&Outbound::Ok { id });
        }
        Err(e) => error(link, Some(id), ErrorCode::Unavailable, e.to_string()),
    }
}

//! The node protocol (`docs/node-protocol.md`): what a node writes to `serve`'s socket.

use crate::serve::link::take_lines;
use crate::serve::protocol::{self, ErrorCode, Inbound, Outbound};

/// The lines of `bytes` as the socket reader took them before [`take_lines`] (one line at a
/// time, each taken out of the front of the buffer): the reference [`take_lines`] must agree
/// with.
fn lines_one_by_one(buffer: &mut Vec<u8>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..end]).trim().to_owned();
        if !text.is_empty() {
            lines.push(text);
        }
    }
    lines
}

/// `data` as bytes from a node: the first byte sets the size of the reads they arrive in, the
/// rest is the stream. Cut into lines ([`take_lines`]) the same whatever the reads, and as the
/// line-at-a-time reader did; each line read as a node message ([`protocol::parse`]): a message
/// that is read has an `id` and survives a round trip through [`protocol::request_line`], one
/// that is not gets a code a node can be told; each line also read as an engine message (what
/// the reference client does), which survives a round trip through [`protocol::line`].
pub fn node_protocol(data: &[u8]) {
    let Some((&read_size, stream)) = data.split_first() else {
        return;
    };
    let mut whole = stream.to_vec();
    let lines = take_lines(&mut whole);
    let mut reference = stream.to_vec();
    assert_eq!(
        lines,
        lines_one_by_one(&mut reference),
        "the lines differ from the line-at-a-time reader's"
    );
    assert_eq!(whole, reference, "the unfinished lines differ");
    let mut buffer = Vec::new();
    let mut in_reads = Vec::new();
    for chunk in stream.chunks(usize::from(read_size) + 1) {
        buffer.extend_from_slice(chunk);
        in_reads.extend(take_lines(&mut buffer));
    }
    assert_eq!(
        in_reads, lines,
        "the lines depend on how the bytes were read"
    );
    assert_eq!(buffer, whole, "the unfinished line depends on the reads");
    for line in &lines {
        node_message(line);
        engine_message(line);
    }
}

fn node_message(line: &str) {
    match protocol::parse(line) {
        (Some(id), Ok(message)) => {
            if let Inbound::Event { event } = &message {
                let _ = protocol::node_may_send(event);
            }
            let text = protocol::request_line(id, &message);
            assert!(text.ends_with('\n') && !text[..text.len() - 1].contains('\n'));
            assert_eq!(
                protocol::parse(text.trim_end()),
                (Some(id), Ok(message)),
                "a node message changed in a round trip: {text}"
            );
        }
        (None, Ok(message)) => panic!("a message without an id was read: {message:?}"),
        (_, Err((code, _))) => assert!(
            matches!(code, ErrorCode::Malformed | ErrorCode::UnsupportedVersion),
            "a line is refused with {code:?}, which is not about the line"
        ),
    }
}

fn engine_message(line: &str) {
    let Ok(message) = serde_json::from_str::<Outbound>(line) else {
        return;
    };
    let text = protocol::line(&message);
    assert!(text.ends_with('\n') && !text[..text.len() - 1].contains('\n'));
    match serde_json::from_str::<Outbound>(text.trim_end()) {
        Ok(again) => assert_eq!(
            again, message,
            "an engine message changed in a round trip: {text}"
        ),
        Err(e) => panic!("an engine message, written, does not read back: {e}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_the_same_in_one_read_and_in_many() {
        let mut data = vec![2u8];
        data.extend_from_slice(
            b"{\"v\":1,\"id\":1,\"type\":\"hello\",\"node\":\"n\"}\r\n\n  \n\
              {\"v\":1,\"id\":2,\"type\":\"ping\"}\n\xff\xfe\n{\"v\":2,\"id\":3,\"type\":\"ping\"}\n{\"v\":1",
        );
        node_protocol(&data);
        let mut buffer = data[1..].to_vec();
        let lines = take_lines(&mut buffer);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[2], "\u{fffd}\u{fffd}");
        assert_eq!(buffer, b"{\"v\":1");
    }

    #[test]
    fn the_protocol_documents_examples_are_read_and_round_trip() {
        let doc = include_str!("../../../docs/node-protocol.md");
        let mut read = 0;
        for line in doc.lines().map(str::trim).filter(|l| l.starts_with('{')) {
            if protocol::parse(line).1.is_ok() {
                read += 1;
            }
            node_message(line);
            engine_message(line);
        }
        assert!(read >= 15, "only {read} node messages in the document");
    }
}

//! `GET /records` without a name: the whole table, rendered a chunk at a
//! time as the client takes them. Rendered in one piece it is 37 MB for
//! 130,000 names, held for as long as a client that does not read keeps
//! the connection; streamed, such a client holds the snapshot (which the
//! server holds anyway) and a few chunks.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame};
use tokio::sync::mpsc;

use crate::export::Row;
use crate::snapshot::Snapshot;

/// The size of a chunk. Rendered ahead of the client, at most: the chunk
/// being filled or waiting to be sent, one in the channel, and what hyper
/// buffers before it stops asking (a few hundred KB).
const CHUNK_BYTES: usize = 64 * 1024;

/// The rows of `snapshot`'s table as one pretty-printed JSON array (as
/// `serde_json::to_string_pretty` writes it, and a final newline).
pub fn all(snapshot: Arc<Snapshot>) -> Chunks {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let table = &snapshot.table;
        let mut chunk = String::from("[");
        for (i, node) in table.nodes().enumerate() {
            chunk.push_str(if i == 0 { "\n" } else { ",\n" });
            let row = serde_json::to_string_pretty(&Row::new(table, node)).unwrap_or_default();
            // An element of the array is its own text one level in; JSON
            // strings hold no newline, so each line is one of its own.
            for (j, line) in row.lines().enumerate() {
                chunk.push_str(if j == 0 { "  " } else { "\n  " });
                chunk.push_str(line);
            }
            if chunk.len() >= CHUNK_BYTES && tx.send(take(&mut chunk)).await.is_err() {
                // The client went away.
                return;
            }
        }
        chunk.push_str(if table.is_empty() { "]\n" } else { "\n]\n" });
        let _ = tx.send(take(&mut chunk)).await;
    });
    Chunks(rx)
}

fn take(chunk: &mut String) -> Bytes {
    Bytes::from(std::mem::take(chunk))
}

/// A response body of the chunks [`all`] renders; the rendering stops when
/// it is dropped.
pub struct Chunks(mpsc::Receiver<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

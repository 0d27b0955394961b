//! The socket as hyper sees it: reads tell the connection when a request starts
//! arriving (so the header deadline runs from its first byte, not from the end of the
//! previous answer), writes tell it when the client stops taking its answer (a full
//! receive window would otherwise hold the slot forever), and hyper's own answers to unparsable requests are replaced by the
//! API's JSON error body.
//!
//! hyper 1.x answers parse errors itself (`proto/h1/conn.rs`, `on_parse_error`, with the
//! head built by `role.rs`, `Server::on_error`): a bare head (`400`, `414` or `431`,
//! `content-length: 0`) that no service or hook ever sees. The only place left to shape
//! that answer is the byte stream, so this wrapper recognises exactly that head (a 4xx
//! status, `content-length: 0`, no `content-type`: every answer of ours carries a JSON
//! body, see `json_errors`) and writes a JSON answer in its place. hyper closes the
//! connection right after it, so nothing follows on the wire.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::table::ConnShared;

/// A connection's socket, watched.
pub(super) struct WatchedIo {
    inner: TcpStream,
    conn: Arc<ConnShared>,
    /// Limits named in the replacement messages.
    max_headers: usize,
    max_header_bytes: usize,
    /// A replacement answer still being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl WatchedIo {
    pub(super) fn new(
        inner: TcpStream,
        conn: Arc<ConnShared>,
        max_headers: usize,
        max_header_bytes: usize,
    ) -> Self {
        Self {
            inner,
            conn,
            max_headers,
            max_header_bytes,
            pending: None,
        }
    }

    /// Writes out what is left of a replacement answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() > before {
            this.conn.bytes_arrived();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(status) = automatic_error_status(buf) {
            let answer = json_answer(status, this.max_headers, this.max_header_bytes);
            this.pending = Some((answer, 0));
            // hyper's head counts as written; ours goes out in its place.
            ready!(this.poll_pending(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Pending => {
                this.conn.send_stalled();
                Poll::Pending
            }
            ready => {
                this.conn.send_progressed();
                ready
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The status of hyper's automatic parse-error answer, if `buf` is one.
fn automatic_error_status(buf: &[u8]) -> Option<u16> {
    let rest = buf.strip_prefix(b"HTTP/1.")?;
    let status: u16 = std::str::from_utf8(rest.get(2..5)?).ok()?.parse().ok()?;
    if !(400..500).contains(&status) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if end + 4 != buf.len() {
        // A body follows: not hyper's bare head.
        return None;
    }
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let bare = head.contains("\r\ncontent-length: 0") && !head.contains("\r\ncontent-type:");
    bare.then_some(status)
}

/// The JSON answer that replaces hyper's bare one.
fn json_answer(status: u16, max_headers: usize, max_header_bytes: usize) -> Vec<u8> {
    let (reason, kind, message) = match status {
        431 => (
            "Request Header Fields Too Large",
            "headers_too_large",
            format!(
                "the request has too many or too large headers (at most {max_headers} headers and {max_header_bytes} bytes of request head)"
            ),
        ),
        414 => (
            "URI Too Long",
            "uri_too_long",
            "the request URL is too long".to_string(),
        ),
        _ => (
            "Bad Request",
            "bad_request",
            "the request cannot be parsed as HTTP/1.1 (malformed request line, URL or header)"
                .to_string(),
        ),
    };
    let body = serde_json::json!({ "error": kind, "message": message }).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_error_heads_are_recognised() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 09:31:56 GMT\r\n\r\n";
        assert_eq!(automatic_error_status(bare), Some(431));
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error_status(ours), None);
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(automatic_error_status(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error_status(ok), None);
        assert_eq!(automatic_error_status(b"{\"a\":1}"), None);
    }

    #[test]
    fn the_replacement_is_a_whole_json_answer() {
        let answer = String::from_utf8(json_answer(400, 100, 65536)).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "bad_request");
    }
}

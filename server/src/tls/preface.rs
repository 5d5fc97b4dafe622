//! The HTTP/2 preface read through TLS before a gRPC connection is served, so a client that
//! completes the handshake and then sends nothing holds a connection slot no longer than the
//! preface deadline (as the cleartext listener's peek does), and the bytes read are handed back
//! to the HTTP/2 server in front of the rest of the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The client's connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A stream whose first bytes were read already and are served again before the rest.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

/// Reads the 24-byte preface from `stream` within `deadline`; `None` when it does not arrive
/// in time, the stream ends, or the bytes are not the preface (hyper would refuse them anyway).
pub async fn read_preface<S: AsyncRead + Unpin>(
    mut stream: S,
    deadline: Duration,
) -> Option<Prefixed<S>> {
    let mut buf = [0u8; PREFACE.len()];
    match tokio::time::timeout(deadline, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) if &buf == PREFACE => Some(Prefixed {
            prefix: buf.to_vec(),
            at: 0,
            inner: stream,
        }),
        _ => None,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_preface_is_read_again_before_the_rest() {
        let (mut client, server) = tokio::io::duplex(256);
        client.write_all(PREFACE).await.unwrap();
        client.write_all(b"frames").await.unwrap();
        drop(client);
        let mut stream = read_preface(server, Duration::from_secs(1)).await.unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, [&PREFACE[..], b"frames"].concat());
    }

    #[tokio::test]
    async fn silence_and_other_bytes_are_refused() {
        let (_client, server) = tokio::io::duplex(256);
        assert!(read_preface(server, Duration::from_millis(50))
            .await
            .is_none());
        let (mut client, server) = tokio::io::duplex(256);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(read_preface(server, Duration::from_secs(1)).await.is_none());
    }
}

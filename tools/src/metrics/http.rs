//! A small, bounded HTTP/1.1 server for the metrics endpoint: one request per
//! connection, answered and closed.
//!
//! ```text
//!   acceptor thread ──accepted──▶ [bounded queue] ──▶ HTTP_WORKERS worker threads
//!     (a full queue closes the          read the head (≤ REQUEST_HEAD_BYTES_MAX, within
//!      new connection at once)          REQUEST_TIME_MAX) ─▶ httparse ─▶ handler ─▶ write
//! ```
//!
//! Every request is bounded: its head in bytes, its reading in time, the write in time;
//! threads and queued connections are bounded in number. A head that does not parse gets
//! 400, a too large one 431, a slow one 408, a method other than GET or HEAD 405. The
//! body of a request is never read. Parsing is `httparse`'s (the parser under hyper);
//! this module only bounds the socket around it, which small server crates such as
//! `tiny_http` leave unbounded (header lines of any length, no read timeout). Nothing a
//! client sends may make it panic.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Largest request head (request line and headers) read, in bytes.
pub const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// Most headers in a request.
pub const REQUEST_HEADERS_MAX: usize = 32;
/// Longest a client may take to send its request head.
pub const REQUEST_TIME_MAX: Duration = Duration::from_secs(5);
/// Longest the answer's write may block.
pub const WRITE_TIME_MAX: Duration = Duration::from_secs(10);
/// Threads answering requests.
pub const HTTP_WORKERS: usize = 2;
/// Accepted connections waiting for a worker; more are closed at once.
pub const CONNECTIONS_QUEUED_MAX: usize = 16;

/// A parsed request: what the handler needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (others are answered 405 before the handler).
    pub method: String,
    /// The path, without the query string.
    pub path: String,
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (not sent for HEAD).
    pub body: String,
}

impl Response {
    /// A plain-text answer.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// Why a request head was refused.
#[derive(Debug)]
enum HeadError {
    /// It does not parse as HTTP/1.x.
    Malformed(String),
    /// It is longer than [`REQUEST_HEAD_BYTES_MAX`] or has too many headers.
    TooLarge,
    /// It did not arrive within [`REQUEST_TIME_MAX`].
    TimedOut,
    /// The connection failed or closed; nothing can be answered.
    Gone,
}

/// Serves `listener` on its own threads until the process exits; `handler` answers
/// each well-formed GET or HEAD request.
pub fn serve<H>(listener: TcpListener, handler: H) -> io::Result<()>
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    let (queue, accepted) = flume::bounded::<TcpStream>(CONNECTIONS_QUEUED_MAX);
    for index in 0..HTTP_WORKERS {
        let accepted = accepted.clone();
        let handler = Arc::clone(&handler);
        thread::Builder::new()
            .name(format!("tutti-metrics-{index}"))
            .spawn(move || {
                while let Ok(stream) = accepted.recv() {
                    answer(stream, &*handler);
                }
            })?;
    }
    thread::Builder::new()
        .name("tutti-metrics-accept".to_owned())
        .spawn(move || accept_loop(&listener, &queue))?;
    Ok(())
}

fn accept_loop(listener: &TcpListener, queue: &flume::Sender<TcpStream>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                // A full queue drops (closes) the connection: the scraper retries.
                if let Err(flume::TrySendError::Disconnected(_)) = queue.try_send(stream) {
                    return;
                }
            }
            Err(error) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%error, "the metrics endpoint cannot accept a connection");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Reads one request from `stream`, answers it and closes the connection.
fn answer(mut stream: TcpStream, handler: &dyn Fn(&Request) -> Response) {
    let (response, head_only) = match read_head(&mut stream, Instant::now() + REQUEST_TIME_MAX) {
        Ok(request) if request.method == "GET" || request.method == "HEAD" => {
            (handler(&request), request.method == "HEAD")
        }
        Ok(request) => (
            Response::text(
                405,
                format!("method {} is not allowed: use GET\n", request.method),
            ),
            false,
        ),
        Err(HeadError::Malformed(reason)) => (
            Response::text(400, format!("bad request: {reason}\n")),
            false,
        ),
        Err(HeadError::TooLarge) => (
            Response::text(
                431,
                format!(
                    "request head too large: at most {REQUEST_HEAD_BYTES_MAX} bytes and \
                     {REQUEST_HEADERS_MAX} headers\n"
                ),
            ),
            false,
        ),
        Err(HeadError::TimedOut) => (
            Response::text(
                408,
                format!("the request did not arrive within {REQUEST_TIME_MAX:?}\n"),
            ),
            false,
        ),
        Err(HeadError::Gone) => return,
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIME_MAX));
    let _ = write_response(&mut stream, &response, head_only);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads until the head is complete, bounded in bytes and by `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Request, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::TimedOut);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| HeadError::Gone)?;
        let room = REQUEST_HEAD_BYTES_MAX - head.len();
        let limit = room.min(chunk.len());
        let read = match stream.read(&mut chunk[..limit]) {
            Ok(0) if head.is_empty() => return Err(HeadError::Gone),
            Ok(0) => {
                return Err(HeadError::Malformed(
                    "the connection closed before the request head ended".to_owned(),
                ))
            }
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HeadError::TimedOut)
            }
            Err(_) => return Err(HeadError::Gone),
        };
        head.extend_from_slice(&chunk[..read]);
        if let Some(request) = parse_head(&head)? {
            return Ok(request);
        }
        if head.len() >= REQUEST_HEAD_BYTES_MAX {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a request head: `Ok(None)` while it is incomplete.
fn parse_head(head: &[u8]) -> Result<Option<Request>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {
            let (Some(method), Some(target)) = (request.method, request.path) else {
                return Err(HeadError::Malformed("no request line".to_owned()));
            };
            let path = target.split('?').next().unwrap_or_default();
            Ok(Some(Request {
                method: method.to_owned(),
                path: path.to_owned(),
            }))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooLarge),
        Err(error) => Err(HeadError::Malformed(error.to_string())),
    }
}

fn write_response(stream: &mut TcpStream, response: &Response, head_only: bool) -> io::Result<()> {
    let allow = if response.status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
    );
    let mut bytes = head.into_bytes();
    if !head_only {
        bytes.extend_from_slice(response.body.as_bytes());
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        serve(listener, |request: &Request| match request.path.as_str() {
            "/hello" => Response::text(200, "hi\n"),
            _ => Response::text(404, "no\n"),
        })
        .expect("serve");
        address
    }

    fn exchange(address: std::net::SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.write_all(request).expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    }

    #[test]
    fn a_get_is_answered_and_the_connection_closed() {
        let address = start();
        let answer = exchange(address, b"GET /hello?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Content-Length: 3\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhi\n"), "{answer}");
        let head = exchange(address, b"HEAD /hello HTTP/1.0\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let missing = exchange(address, b"GET /nothing HTTP/1.1\r\n\r\n");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason_and_the_server_keeps_serving() {
        let address = start();
        let garbage = exchange(address, b"\x00\x01garbage\r\n\r\n");
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        let post = exchange(address, b"POST /hello HTTP/1.1\r\n\r\n");
        assert!(
            post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD"),
            "{post}"
        );
        let mut long = b"GET /hello HTTP/1.1\r\nX: ".to_vec();
        long.resize(REQUEST_HEAD_BYTES_MAX + 10, b'a');
        let too_large = exchange(address, &long);
        assert!(too_large.starts_with("HTTP/1.1 431 "), "{too_large}");
        let mut many = b"GET /hello HTTP/1.1\r\n".to_vec();
        for index in 0..=REQUEST_HEADERS_MAX {
            many.extend_from_slice(format!("X-{index}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let too_many = exchange(address, &many);
        assert!(too_many.starts_with("HTTP/1.1 431 "), "{too_many}");
        let fine = exchange(address, b"GET /hello HTTP/1.1\r\n\r\n");
        assert!(fine.starts_with("HTTP/1.1 200 "), "{fine}");
    }

    #[test]
    fn a_request_that_stops_halfway_gets_408_within_the_bound() {
        let address = start();
        let started = Instant::now();
        let answer = exchange(address, b"GET /hello HTTP/1.1\r\n");
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(started.elapsed() < REQUEST_TIME_MAX + Duration::from_secs(5));
    }
}

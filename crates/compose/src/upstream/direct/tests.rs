//! The direct path against a hand-written HTTP/1.1 upstream, which says how many connections
//! it was opened and what it was sent.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// What the upstream does after writing an answer.
#[derive(Clone, Copy, PartialEq)]
enum Then {
    /// Waits for the next request on the connection.
    Wait,
    /// Closes the connection (without saying so in the answer's headers).
    Close,
    /// Sends nothing more, and says when the caller has closed the connection.
    Hold,
}

struct Upstream {
    port: u16,
    accepted: Arc<AtomicUsize>,
    /// Each request's head and body, as received.
    received: Arc<Mutex<Vec<String>>>,
    /// Told when the caller closed a held connection.
    closed: Arc<tokio::sync::Notify>,
}

/// An upstream that answers the requests it gets, on whatever connection, with `answers` in
/// turn.
async fn upstream(answers: Vec<(&'static str, Then)>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(tokio::sync::Notify::new());
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let (count, log, told) = (accepted.clone(), received.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let (answers, log, told) = (answers.clone(), log.clone(), told.clone());
            tokio::spawn(async move {
                while let Some(request) = read_request(&mut socket).await {
                    log.lock().push(request);
                    let Some((answer, then)) = answers.lock().pop_front() else {
                        return;
                    };
                    socket.write_all(answer.as_bytes()).await.unwrap();
                    match then {
                        Then::Wait => continue,
                        Then::Close => return,
                        Then::Hold => {
                            let mut rest = [0u8; 64];
                            if matches!(socket.read(&mut rest).await, Ok(0) | Err(_)) {
                                told.notify_one();
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    Upstream {
        port,
        accepted,
        received,
        closed,
    }
}

/// One request's head and its body (as long as its `Content-Length`), or `None` at the end.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    while bytes.len() < end + length {
        let n = socket.read(&mut buf).await.ok()?;
        bytes.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn post(port: u16, path: &str, body: &str) -> reqwest::Request {
    let url = format!("http://127.0.0.1:{port}{path}").parse().unwrap();
    let mut request = reqwest::Request::new(reqwest::Method::POST, url);
    *request.body_mut() = Some(body.to_string().into());
    request
}

async fn answer(direct: &Arc<Direct>, request: &reqwest::Request) -> Answer {
    match direct.send(request).await {
        Ok(Sent::Answer(answer)) => answer,
        Ok(Sent::Elsewhere) => panic!("redirected"),
        Err(_) => panic!("failed"),
    }
}

/// The whole body, or what failed it.
async fn read(answer: Answer) -> Result<String, String> {
    let mut text = String::new();
    let mut body = answer.body;
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|err| err.to_string())?;
        text.push_str(std::str::from_utf8(&piece).unwrap());
    }
    Ok(text)
}

const PLAIN: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
/// A streamed answer's head and first piece, the rest not sent.
const BEGUN: &str = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n";

#[tokio::test]
async fn an_answer_read_to_its_end_leaves_its_connection_for_the_next_request() {
    let events = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                  6\r\ndata: \r\n2\r\nhi\r\n0\r\n\r\n";
    let up = upstream(vec![(events, Then::Wait), (PLAIN, Then::Wait)]).await;
    let direct = Arc::new(Direct::default());
    let first = answer(&direct, &post(up.port, "/v1/chat?x=1", "{\"a\":1}")).await;
    assert_eq!(first.status, 200);
    assert_eq!(read(first).await.unwrap(), "data: hi");
    let second = answer(&direct, &post(up.port, "/v1/chat", "")).await;
    assert_eq!(read(second).await.unwrap(), "ok");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
    let received = up.received.lock();
    let first = received[0].to_lowercase();
    assert!(
        first.starts_with("post /v1/chat?x=1 http/1.1\r\n"),
        "{first}"
    );
    let host = format!("host: 127.0.0.1:{}\r\n", up.port);
    for header in [
        host.as_str(),
        "user-agent: model-compose/",
        "accept: */*\r\n",
    ] {
        assert!(first.contains(header), "{header:?} missing from {first}");
    }
    assert!(
        first.ends_with("content-length: 7\r\n\r\n{\"a\":1}"),
        "{first}"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closed_meanwhile_is_not_used_again() {
    let up = upstream(vec![(PLAIN, Then::Close), (PLAIN, Then::Close)]).await;
    let direct = Arc::new(Direct::default());
    for _ in 0..2 {
        let got = answer(&direct, &post(up.port, "/", "x")).await;
        assert_eq!(read(got).await.unwrap(), "ok");
        // Time for the upstream's close to reach this side.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_answer_dropped_before_its_end_closes_its_connection() {
    let up = upstream(vec![(BEGUN, Then::Hold), (PLAIN, Then::Wait)]).await;
    let direct = Arc::new(Direct::default());
    let mut body = answer(&direct, &post(up.port, "/", "x")).await.body;
    assert_eq!(&body.next().await.unwrap().unwrap()[..], b"first");
    drop(body);
    // The upstream reads the end of its connection at once; 5 s is for a busy machine.
    tokio::time::timeout(Duration::from_secs(5), up.closed.notified())
        .await
        .expect("the connection was left open");
    let next = answer(&direct, &post(up.port, "/", "x")).await;
    assert_eq!(read(next).await.unwrap(), "ok");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_answer_cut_short_is_an_error_not_an_end() {
    let up = upstream(vec![(BEGUN, Then::Close)]).await;
    let direct = Arc::new(Direct::default());
    let got = answer(&direct, &post(up.port, "/", "x")).await;
    assert!(read(got).await.is_err());
}

#[tokio::test]
async fn a_head_larger_than_the_read_buffer_is_refused() {
    let head = |filler: usize| {
        let head = format!(
            "HTTP/1.1 200 OK\r\nx-filler: {}\r\ncontent-length: 2\r\n\r\nok",
            "y".repeat(filler)
        );
        &*Box::leak(head.into_boxed_str())
    };
    // A head of 8,000 bytes is read; one past the buffer is not.
    let up = upstream(vec![
        (head(8000), Then::Wait),
        (head(READ_BUFFER), Then::Hold),
    ])
    .await;
    let direct = Arc::new(Direct::default());
    let got = answer(&direct, &post(up.port, "/", "x")).await;
    assert_eq!(read(got).await.unwrap(), "ok");
    match direct.send(&post(up.port, "/", "x")).await {
        Err(Failed::Broken(err)) => assert!(err.is_parse_too_large(), "{err}"),
        _ => panic!("a head past the buffer was taken"),
    }
}

#[tokio::test]
async fn a_redirect_is_left_to_reqwest() {
    let moved = "HTTP/1.1 307 Temporary Redirect\r\nlocation: /there\r\ncontent-length: 0\r\n\r\n";
    let up = upstream(vec![(moved, Then::Wait)]).await;
    let direct = Arc::new(Direct::default());
    assert!(matches!(
        direct.send(&post(up.port, "/", "x")).await,
        Ok(Sent::Elsewhere)
    ));
}

#[tokio::test]
async fn a_redirected_request_is_sent_again_where_it_was_sent() {
    let moved = "HTTP/1.1 307 Temporary Redirect\r\nlocation: /there\r\ncontent-length: 0\r\n\r\n";
    // Redirected once as sent directly, once as reqwest sends it again, which follows.
    let up = upstream(vec![
        (moved, Then::Wait),
        (moved, Then::Wait),
        (PLAIN, Then::Wait),
    ])
    .await;
    let lanes = super::super::Lanes::new(super::super::Trust::default()).unwrap();
    let Ok(got) = lanes.send(post(up.port, "/here", "x")).await else {
        panic!("the redirect was not followed");
    };
    assert_eq!(read(got).await.unwrap(), "ok");
    let received = up.received.lock();
    let lines: Vec<&str> = received.iter().map(|r| r.lines().next().unwrap()).collect();
    assert_eq!(
        lines,
        [
            "POST /here HTTP/1.1",
            "POST /here HTTP/1.1",
            "POST /there HTTP/1.1"
        ]
    );
    assert!(received[2].ends_with("\r\n\r\nx"), "{}", received[2]);
}

#[tokio::test]
async fn a_closed_port_is_unreachable_with_what_the_system_said() {
    // Port 1: nothing listens there, and the system gives it to no other test.
    let direct = Arc::new(Direct::default());
    match direct.send(&post(1, "/", "x")).await {
        Err(Failed::Unreachable { host, detail }) => {
            assert_eq!(host, "127.0.0.1:1");
            assert!(detail.contains("refused"), "{detail}");
        }
        _ => panic!("a closed port was reached"),
    }
}

#[test]
fn only_plain_http_with_its_body_in_memory_goes_directly() {
    assert!(eligible(&post(8000, "/", "x")));
    let https = reqwest::Request::new(
        reqwest::Method::POST,
        "https://api.example.com/v1".parse().unwrap(),
    );
    assert!(!eligible(&https));
    let mut streamed = post(8000, "/", "x");
    let pieces = futures::stream::empty::<Result<Bytes, std::io::Error>>();
    *streamed.body_mut() = Some(reqwest::Body::wrap_stream(pieces));
    assert!(!eligible(&streamed));
}

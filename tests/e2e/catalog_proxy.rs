//! A catalog's bad moments, on demand: an HTTP proxy in front of a REST or Glue catalog that
//! forwards every request and, when told to, loses the answer to a commit the server applied
//! (answers 503 instead: an outcome the client cannot know) or lets another writer's commit
//! land just before the next one (a race lost after the client's own checks).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Turns a commit request's body into another writer's commit against the same version.
pub type Competitor = fn(&[u8]) -> Vec<u8>;

pub struct CatalogProxy {
    pub url: String,
    lose: Arc<AtomicU32>,
    cut_in: Arc<Mutex<Option<Competitor>>>,
}

impl CatalogProxy {
    /// A proxy to `upstream`; `is_commit` picks commits from a request's head.
    pub fn start(upstream: &str, is_commit: fn(&str) -> bool) -> CatalogProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let proxy = CatalogProxy { url, lose: Default::default(), cut_in: Default::default() };
        let (lose, cut_in) = (proxy.lose.clone(), proxy.cut_in.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, lose, cut_in) = (upstream.clone(), lose.clone(), cut_in.clone());
                std::thread::spawn(move || {
                    let Some((head, body)) = read_request(&client) else { return };
                    let commit = is_commit(&head);
                    if let Some(competitor) = cut_in.lock().unwrap().take_if(|_| commit) {
                        let theirs = competitor(&body);
                        forward(&upstream, &with_length(&head, theirs.len()), &theirs);
                    }
                    let answer = forward(&upstream, &head, &body);
                    let lost = commit
                        && lose
                            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                            .is_ok();
                    let mut client = client;
                    let _ = match lost {
                        true => client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        ),
                        false => client.write_all(&answer),
                    };
                });
            }
        });
        proxy
    }

    /// A REST catalog's commit: a POST to a table endpoint.
    pub fn rest_commit(head: &str) -> bool {
        head.starts_with("POST ") && head.lines().next().unwrap_or("").contains("/tables/")
    }

    /// A Glue commit: the UpdateTable action.
    pub fn glue_commit(head: &str) -> bool {
        head.to_ascii_lowercase().contains("x-amz-target: awsglue.updatetable")
    }

    /// Loses the answers to the next `n` commits.
    pub fn lose_next_commit_answers(&self, n: u32) {
        self.lose.store(n, Ordering::SeqCst);
    }

    /// How many of the answers it was told to lose are still to be lost.
    pub fn answers_still_to_lose(&self) -> u32 {
        self.lose.load(Ordering::SeqCst)
    }

    /// Sends `competitor(body)` upstream just before the next commit is forwarded.
    pub fn cut_in_before_next_commit(&self, competitor: Competitor) {
        *self.cut_in.lock().unwrap() = Some(competitor);
    }

    /// Whether the competitor cut in already.
    pub fn cut_in_done(&self) -> bool {
        self.cut_in.lock().unwrap().is_none()
    }
}

/// `head` with its Content-Length set to `length`.
fn with_length(head: &str, length: usize) -> String {
    head.lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("content-length:") && !line.is_empty())
        .map(|line| format!("{line}\r\n"))
        .chain(std::iter::once(format!("Content-Length: {length}\r\n\r\n")))
        .collect()
}

/// One request: its head (request line and headers, with `Connection: close` so each
/// connection carries one exchange) and its body.
fn read_request(client: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(client.try_clone().ok()?);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// Sends the request upstream and returns the whole answer (the server closes after it).
fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut server = TcpStream::connect(upstream).unwrap();
    server.write_all(head.as_bytes()).unwrap();
    server.write_all(body).unwrap();
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    answer
}

//! A real Iceberg REST catalog for catalog tests: rustberg (a Rust implementation of the REST
//! spec, installed once by `scripts/test.sh`) on a free 127.0.0.1 port, storing its catalog in
//! a redb file and table files in the workspace's warehouse.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{S3Settings, Workspace};

pub struct RestServer {
    child: Child,
    pub url: String,
}

fn rustberg() -> PathBuf {
    if let Ok(path) = std::env::var("INGOT_RUSTBERG") {
        return path.into();
    }
    let home_bin = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/rustberg");
    if home_bin.exists() { home_bin } else { "rustberg".into() }
}

impl RestServer {
    /// A server whose warehouse is `warehouse` (`file://` or `s3://`) and whose catalog
    /// database is a file in `dir`; no authentication. `s3` is how it reaches an `s3://`
    /// warehouse.
    pub fn start(dir: &std::path::Path, warehouse: &str, s3: Option<&S3Settings>) -> RestServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = format!(
            "[storage]\nwarehouse_location = \"{warehouse}\"\ncatalog_url = \"file://{}\"\n",
            dir.join("rustberg").display()
        );
        if let Some(s3) = s3 {
            config.push_str(&format!(
                "\n[storage.properties]\n\"s3.endpoint\" = \"{}\"\n\"s3.path-style-access\" = \"true\"\n\"s3.region\" = \"{}\"\n\"s3.access-key-id\" = \"{}\"\n\"s3.secret-access-key\" = \"env:RUSTBERG_TEST_S3_SECRET\"\n\"s3.allow-http\" = \"true\"\n",
                s3.env("AWS_ENDPOINT_URL"),
                s3.env("AWS_REGION"),
                s3.env("AWS_ACCESS_KEY_ID"),
            ));
        }
        let config_file = dir.join("rustberg.toml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new(rustberg())
            .arg("--config")
            .arg(&config_file)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--insecure-http", "--no-auth", "--dev"])
            .env("RUSTBERG_TEST_S3_SECRET", s3.map(|s3| s3.env("AWS_SECRET_ACCESS_KEY")).unwrap_or_default())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rustberg.log")).unwrap())
            .spawn()
            .expect("start rustberg (run scripts/test.sh, or set INGOT_RUSTBERG)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "rustberg did not listen on {addr}: {}", log(dir));
            std::thread::sleep(Duration::from_millis(50));
        }
        RestServer { child, url: format!("http://{addr}") }
    }
}

fn log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("rustberg.log")).unwrap_or_default()
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Workspace {
    /// Moves this workspace's catalog to a REST catalog started for it (before any table
    /// exists). The warehouse stays where it is — the workspace's directory as a `file://`
    /// URI, or the bucket `on_s3` chose — and the server and ingot both use it.
    pub fn on_rest(mut self) -> (Workspace, RestServer) {
        let local = format!("file://{}", self.dir.path().join("warehouse").display());
        let warehouse = self.s3.as_ref().map(|s3| s3.warehouse.clone()).unwrap_or(local.clone());
        if self.s3.is_none() {
            std::fs::create_dir_all(self.dir.path().join("warehouse")).unwrap();
        }
        let server = RestServer::start(self.dir.path(), &warehouse, self.s3.as_ref());
        let text = std::fs::read_to_string(&self.config).unwrap();
        let uri_line = format!("uri = \"{}\"", self.catalog_uri);
        assert!(text.contains(&uri_line), "{text}");
        let text = text.replacen(&uri_line, &format!("type = \"rest\"\nuri = \"{}\"", server.url), 1);
        let text = text.replace("warehouse = \"warehouse\"", &format!("warehouse = \"{local}\""));
        std::fs::write(&self.config, text).unwrap();
        self.catalog_uri = server.url.clone();
        (self, server)
    }
}

/// An HTTP proxy in front of a REST catalog that forwards every request and, for the next
/// `n` commits (POSTs to a table endpoint), lets the server apply the commit but answers 503
/// instead of the server's answer: a commit whose outcome the client cannot know.
pub struct LossyProxy {
    pub url: String,
    lose: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

impl LossyProxy {
    pub fn start(upstream: &str) -> LossyProxy {
        use std::sync::atomic::{AtomicU32, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let lose = std::sync::Arc::new(AtomicU32::new(0));
        let counter = lose.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                std::thread::spawn(move || {
                    let Some((head, body)) = read_request(&client) else { return };
                    let is_commit =
                        head.starts_with("POST ") && head.lines().next().unwrap_or("").contains("/tables/");
                    let answer = forward(&upstream, &head, &body);
                    let lost = is_commit
                        && counter
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
        LossyProxy { url, lose }
    }

    /// How many of the answers it was told to lose are still to be lost.
    pub fn answers_still_to_lose(&self) -> u32 {
        self.lose.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Loses the answers to the next `n` commits.
    pub fn lose_next_commit_answers(&self, n: u32) {
        self.lose.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

use std::io::{BufRead, BufReader, Read, Write};

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

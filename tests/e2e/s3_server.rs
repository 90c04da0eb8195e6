//! A real S3 server for object-storage tests: moto's standalone server (from the test venv)
//! on a free 127.0.0.1 port, one bucket per workspace.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Workspace;
pub use crate::harness::{ACCESS_KEY_ID, SECRET_ACCESS_KEY};
use crate::readers::python;

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let server = python().with_file_name("moto_server");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("moto.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} ({e}); scripts/test.sh installs it", server.display()));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server { child, endpoint: format!("http://{addr}"), _dir: dir }
    }

    /// One plain HTTP request; returns the status code.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        // moto answers anonymous reads with 403 but does not verify signatures: any
        // well-formed Authorization header will do.
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
        );
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
    }

    pub fn create_bucket(&self, bucket: &str) {
        let status = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "create bucket {bucket}");
    }

    /// Whether an object exists (`s3://bucket/key` location).
    pub fn exists(&self, location: &str) -> bool {
        let path = location.strip_prefix("s3://").expect("an s3:// location");
        self.request("HEAD", &format!("/{path}"), b"") == 200
    }

    pub fn put(&self, location: &str, body: &[u8]) {
        let path = location.strip_prefix("s3://").expect("an s3:// location");
        assert_eq!(self.request("PUT", &format!("/{path}"), body), 200, "put {location}");
    }

    /// What an outside reader (PyIceberg, DuckDB, boto3) needs to reach the server: the usual
    /// AWS environment.
    pub fn reader_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Workspace {
    /// Moves this workspace's warehouse to a fresh bucket on `s3` (before any table exists).
    /// The endpoint and key id go in the config file; the secret only in the environment
    /// (`INGOT_CATALOG__STORAGE__SECRET_ACCESS_KEY`), as a deployment would pass it.
    pub fn on_s3(mut self, s3: &S3Server) -> Workspace {
        let bucket =
            format!("lake-{}", self.dir.path().file_name().unwrap().to_string_lossy().to_lowercase())
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
        s3.create_bucket(&bucket);
        let warehouse = format!("s3://{bucket}/warehouse");
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains("warehouse = \"warehouse\""), "{text}");
        let text = text.replace("warehouse = \"warehouse\"", &format!("warehouse = \"{warehouse}\""));
        let storage = format!(
            "\n[catalog.storage]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"{ACCESS_KEY_ID}\"\nallow_http = true\n",
            s3.endpoint
        );
        std::fs::write(&self.config, text + &storage).unwrap();
        self.s3 = Some(crate::harness::S3Settings { warehouse, reader_env: s3.reader_env() });
        self
    }
}

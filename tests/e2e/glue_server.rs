//! A real AWS Glue API for catalog tests: MiniStack (from the test venv; it enforces Glue's
//! `VersionId` check on UpdateTable) on a free 127.0.0.1 port, Glue only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{ACCESS_KEY_ID, GLUE_URI_PREFIX, Workspace};
use crate::readers::python;

pub struct GlueServer {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl GlueServer {
    pub fn start() -> GlueServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let server = python().with_file_name("ministack");
        let child = Command::new(&server)
            .envs([("BIND_HOST", "127.0.0.1"), ("GATEWAY_PORT", &port.to_string()), ("SERVICES", "glue")])
            // Its optional listeners (MQTT over TLS, SFTP) would contend for fixed ports.
            .envs([("IOT_MTLS_ENABLED", "0"), ("SFTP_ENABLED", "0"), ("MINISTACK_WORKER_THREADS", "8")])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("ministack.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} ({e}); scripts/test.sh installs it", server.display()));
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&addr).is_err() {
            let log = std::fs::read_to_string(dir.path().join("ministack.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "MiniStack did not listen on {addr}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        GlueServer { child, endpoint: format!("http://{addr}"), _dir: dir }
    }
}

impl GlueServer {
    /// One Glue action, answered as JSON (MiniStack does not check signatures).
    pub fn call(&self, action: &str, body: &serde_json::Value) -> serde_json::Value {
        let addr = self.endpoint.trim_start_matches("http://");
        let body = body.to_string();
        let mut stream = TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: AWSGlue.{action}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/us-east-1/glue/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let json = answer.split_once("\r\n\r\n").map(|(_, json)| json).unwrap_or_default();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{action}: {e}: {answer}"))
    }
}

impl Drop for GlueServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Workspace {
    /// Moves this workspace's catalog to a Glue API started for it (before any table exists).
    /// The warehouse stays where it is (the workspace's directory, or the bucket `on_s3`
    /// chose); Glue is reached with the same AWS identity as the warehouse, its secret only
    /// in the environment.
    pub fn on_glue(mut self) -> (Workspace, GlueServer) {
        let server = GlueServer::start();
        let text = std::fs::read_to_string(&self.config).unwrap();
        let uri_line = format!("uri = \"{}\"", self.catalog_uri);
        assert!(text.contains(&uri_line), "{text}");
        let mut text = text.replacen(&uri_line, "type = \"glue\"", 1)
            + &format!("\n[catalog.glue]\nendpoint = \"{}\"\nregion = \"us-east-1\"\n", server.endpoint);
        if self.s3.is_none() {
            text.push_str(&format!("\n[catalog.storage]\naccess_key_id = \"{ACCESS_KEY_ID}\"\n"));
        }
        std::fs::write(&self.config, text).unwrap();
        self.catalog_uri = format!("{GLUE_URI_PREFIX}{}", server.endpoint);
        (self, server)
    }
}

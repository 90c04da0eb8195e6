//! A real Iceberg REST catalog for catalog tests: rustberg (a Rust implementation of the REST
//! spec, installed once by `scripts/test.sh`) on a free 127.0.0.1 port, storing its catalog in
//! a redb file and table files in the workspace's warehouse.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Workspace;

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
    /// A server whose warehouse is `warehouse` (a `file://` URI) and whose catalog database
    /// is a file in `dir`; no authentication.
    pub fn start(dir: &std::path::Path, warehouse: &str) -> RestServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let catalog = format!("file://{}", dir.join("rustberg.redb").display());
        let child = Command::new(rustberg())
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--warehouse", warehouse])
            .args(["--catalog-url", &catalog, "--insecure-http", "--no-auth", "--dev"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("rustberg.log")).unwrap())
            .spawn()
            .expect("start rustberg (run scripts/test.sh, or set INGOT_RUSTBERG)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "rustberg did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        RestServer { child, url: format!("http://{addr}") }
    }
}

impl Drop for RestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Workspace {
    /// Moves this workspace's catalog to a REST catalog started for it (before any table
    /// exists); the warehouse stays the workspace's directory, as a `file://` URI both the
    /// server and ingot use.
    pub fn on_rest(mut self) -> (Workspace, RestServer) {
        let warehouse = format!("file://{}", self.dir.path().join("warehouse").display());
        std::fs::create_dir_all(self.dir.path().join("warehouse")).unwrap();
        let server = RestServer::start(self.dir.path(), &warehouse);
        let text = std::fs::read_to_string(&self.config).unwrap();
        let uri_line = format!("uri = \"{}\"", self.catalog_uri);
        assert!(text.contains(&uri_line), "{text}");
        let text = text.replacen(&uri_line, &format!("type = \"rest\"\nuri = \"{}\"", server.url), 1);
        let text = text.replace("warehouse = \"warehouse\"", &format!("warehouse = \"{warehouse}\""));
        std::fs::write(&self.config, text).unwrap();
        self.catalog_uri = server.url.clone();
        (self, server)
    }
}

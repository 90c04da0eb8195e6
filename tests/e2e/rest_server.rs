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
    /// database is a file in `dir`. `s3` is how it reaches an `s3://` warehouse; with
    /// `api_key` (`rb_` and at least 8 more characters) every request must present it as a
    /// bearer token, without it there is no authentication.
    pub fn start(
        dir: &std::path::Path,
        warehouse: &str,
        s3: Option<&S3Settings>,
        api_key: Option<&str>,
    ) -> RestServer {
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
        if api_key.is_some() {
            config.push_str(
                "\n[[server.auth.api_keys]]\nname = \"ingot\"\ntenant = \"default\"\nroles = [\"admin\"]\nkey_env = \"RUSTBERG_TEST_KEY\"\n",
            );
        }
        let config_file = dir.join("rustberg.toml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new(rustberg())
            .arg("--config")
            .arg(&config_file)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--insecure-http", "--dev"])
            .args(api_key.is_none().then_some("--no-auth"))
            .env("RUSTBERG_TEST_KEY", api_key.unwrap_or_default())
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
    pub fn on_rest(self) -> (Workspace, RestServer) {
        self.on_rest_server(None)
    }

    /// Like `on_rest`, with a server that accepts only `api_key` (see `RestServer::start`).
    pub fn on_rest_requiring(self, api_key: &str) -> (Workspace, RestServer) {
        self.on_rest_server(Some(api_key))
    }

    fn on_rest_server(mut self, api_key: Option<&str>) -> (Workspace, RestServer) {
        let local = format!("file://{}", self.dir.path().join("warehouse").display());
        let warehouse = self.s3.as_ref().map(|s3| s3.warehouse.clone()).unwrap_or(local.clone());
        if self.s3.is_none() {
            std::fs::create_dir_all(self.dir.path().join("warehouse")).unwrap();
        }
        let server = RestServer::start(self.dir.path(), &warehouse, self.s3.as_ref(), api_key);
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

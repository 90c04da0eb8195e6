//! The Kafka-protocol broker of the end-to-end tests: tansu, one per test, on a free
//! 127.0.0.1 port.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker storing in SQLite in a temp dir, killed when dropped. (Its `memory://`
/// engine serves fetches from an offset inside a record batch wrongly, which breaks any
/// consumer that resumes mid-partition; see the README's notes on tansu.)
pub struct Broker {
    child: Child,
    pub addr: String,
    advertised: String,
    dir: tempfile::TempDir,
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with(None, &[])
    }

    /// A broker that tells clients to connect to `advertised` (a TLS proxy in front of it)
    /// instead of its own address, with extra `tansu broker` arguments.
    pub fn start_with(advertised: Option<&str>, extra: &[&str]) -> Broker {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let advertised = format!("tcp://{}", advertised.unwrap_or(&addr));
        let child = launch(&addr, &advertised, dir.path(), extra);
        Broker { child, addr, advertised, dir }
    }

    /// Stops the broker and starts it again on the same address and storage, with `extra`
    /// arguments (e.g. `--authentication` once its users exist).
    pub fn restart_with(&mut self, extra: &[&str]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = launch(&self.addr, &self.advertised, self.dir.path(), extra);
    }
}

fn launch(addr: &str, advertised: &str, dir: &std::path::Path, extra: &[&str]) -> Child {
    let url = format!("tcp://{addr}");
    let child = Command::new(tansu())
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", advertised])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("broker.log")).unwrap())
        .spawn()
        .expect("start tansu (run scripts/broker.sh install, or set INGOT_TANSU)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tansu() -> PathBuf {
    if let Ok(path) = std::env::var("INGOT_TANSU") {
        return path.into();
    }
    let home_bin = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tansu");
    if home_bin.exists() { home_bin } else { "tansu".into() }
}

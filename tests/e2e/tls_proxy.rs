//! TLS for the Kafka tests: a certificate authority made for the test with `openssl`, and
//! stunnel (Debian's TLS terminator) in front of the broker, so clients speak TLS to it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CA and a server certificate it signed for 127.0.0.1.
pub struct TestCa {
    dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let san = d.join("san.cnf");
        std::fs::write(&san, "subjectAltName = IP:127.0.0.1, DNS:localhost\n").unwrap();
        let subject = format!("/CN={name}");
        let steps: [&[&str]; 3] = [
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key", "-out",
                "ca.pem", "-subj", &subject,
            ],
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                san.to_str().unwrap(),
                "-out",
                "server.pem",
            ],
        ];
        for args in steps {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(status.unwrap().success(), "openssl {args:?}");
        }
        TestCa { ca: d.join("ca.pem"), dir }
    }

    fn server_files(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("server.pem"), self.dir.path().join("server.key"))
    }
}

/// stunnel accepting TLS on `addr` and forwarding plaintext to `upstream`.
pub struct Stunnel {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Stunnel {
    /// A free port for the proxy, to advertise before it starts.
    pub fn free_addr() -> String {
        format!("127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
    }

    pub fn start(addr: &str, upstream: &str, ca: &TestCa) -> Stunnel {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = ca.server_files();
        let config = dir.path().join("stunnel.conf");
        std::fs::write(
            &config,
            format!(
                "foreground = yes\npid =\n[kafka]\naccept = {addr}\nconnect = {upstream}\ncert = {}\nkey = {}\n",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new("stunnel4")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stunnel.log")).unwrap())
            .spawn()
            .expect("start stunnel4 (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            let log = std::fs::read_to_string(dir.path().join("stunnel.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "stunnel did not listen on {addr}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Stunnel { child, _dir: dir }
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

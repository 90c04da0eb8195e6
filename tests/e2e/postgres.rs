//! A PostgreSQL server for the JDBC-compatible catalog tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway PostgreSQL server (Debian's package) in a temp dir on a free port, stopped
/// when dropped. Run as the `postgres` user when the tests run as root (initdb refuses root).
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_root: bool,
    pub uri: String,
}

impl Postgres {
    /// A server that trusts every local connection.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// A server whose `postgres` user must give `password` (SCRAM); the URI holds it.
    pub fn start_with_password(password: &str) -> Postgres {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Postgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().unwrap();
        let as_root =
            Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
        if as_root {
            let status = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown the postgres temp dir");
        }
        let data = dir.path().join("data");
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            let mut cmd = server_command(&bin, as_root, program);
            cmd.args(args);
            cmd
        };
        let pwfile = dir.path().join("pwfile");
        let mut initdb: Vec<&std::ffi::OsStr> =
            vec!["-D".as_ref(), data.as_os_str(), "-U".as_ref(), "postgres".as_ref()];
        match password {
            Some(password) => {
                std::fs::write(&pwfile, password).unwrap();
                initdb.extend(["--auth=scram-sha-256".as_ref(), "--pwfile".as_ref(), pwfile.as_os_str()]);
            }
            None => initdb.push("--auth=trust".as_ref()),
        }
        let out = run("initdb", &initdb).output().unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.path().display());
        let log = dir.path().join("postgres.log");
        let out = run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        let user = match password {
            Some(password) => format!("postgres:{password}"),
            None => "postgres".into(),
        };
        Postgres { uri: format!("postgres://{user}@127.0.0.1:{port}/postgres"), dir, bin, as_root }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = server_command(&self.bin, self.as_root, "pg_ctl");
        let _ = cmd.arg("-D").arg(data).args(["-m", "immediate", "stop"]).output();
    }
}

/// A PostgreSQL server program, run as the `postgres` user when we are root.
fn server_command(bin: &Path, as_root: bool, program: &str) -> Command {
    if as_root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
        cmd
    } else {
        Command::new(bin.join(program))
    }
}

/// Debian installs the server binaries outside PATH, per major version.
fn postgres_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("INGOT_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (scripts/test.sh installs Debian's postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

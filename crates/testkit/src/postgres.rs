//! A PostgreSQL server of a test's own: Debian's `postgresql` binaries, a temporary data
//! directory, a free port on 127.0.0.1, run as an unprivileged user (`postgres` when the tests
//! run as root, which PostgreSQL refuses to be). Stopped and removed when dropped.
//!
//! Without the binaries a test fails, saying how to install them: never a silent skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running server.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    child: Child,
    databases: AtomicUsize,
    _dir: tempfile::TempDir,
}

/// Who runs the server: `postgres` (uid, gid) when this process is root, else this user.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find(|l| l.starts_with("postgres:"));
    let ids = entry.and_then(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
    });
    Some(ids.unwrap_or_else(|| {
        panic!("the tests run as root, and PostgreSQL refuses root: no `postgres` user to run it as (Debian's `postgresql` package creates one)")
    }))
}

/// Debian's binaries: `/usr/lib/postgresql/<newest>/bin`, or `$PG_BIN`.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is needed for these tests and was not found in /usr/lib/postgresql: \
             install Debian's package (`sudo apt-get install postgresql`, or run \
             `bash scripts/setup.sh`), or point PG_BIN at its bin directory"
        ),
    }
}

impl Postgres {
    /// Initialises a data directory and starts the server; returns once it accepts connections.
    pub fn start() -> Self {
        let bin = binaries();
        let user = unprivileged();
        let dir = tempfile::Builder::new().prefix("mc-pg-").tempdir().unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let as_user = |program: &str| {
            let mut command = Command::new(bin.join(program));
            if let Some((uid, gid)) = user {
                use std::os::unix::process::CommandExt;
                command.uid(uid).gid(gid);
            }
            command.env_clear().env("LC_ALL", "C");
            command
        };
        let init = as_user("initdb")
            .args(["-U", "mc", "--auth=trust", "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path().join("server.log"), Some(uid), Some(gid)).unwrap();
        }
        let child = as_user("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            port,
            bin,
            child,
            databases: AtomicUsize::new(0),
            _dir: dir,
        };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "mc"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self._dir.path().join("server.log")
    }

    /// A new, empty database on this server; its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::SeqCst));
        let created = Command::new(self.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mc",
                &name,
            ])
            .output()
            .unwrap();
        assert!(
            created.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        format!("postgres://mc@127.0.0.1:{}/{name}", self.port)
    }

    /// Where the server keeps its data (for a test that needs to look).
    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: a fast shutdown (clients are disconnected).
        // SAFETY: kill has no preconditions; the pid is our child's.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

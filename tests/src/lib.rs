//! Test harness: starts the real `gregor` binary on an ephemeral port with a
//! temporary data directory, and stops it by PID (SIGTERM or SIGKILL).
//!
//! The binary is `$GREGOR_BIN`, or `target/debug/gregor` of this workspace
//! (`make test` builds it first).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;

pub mod proxy;
pub mod raw;

/// Path of the broker binary under test.
pub fn gregor_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GREGOR_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/gregor");
    assert!(
        p.exists(),
        "{} not found: run `cargo build -p gregor-server` (make test does) or set GREGOR_BIN",
        p.display()
    );
    p
}

/// A running broker process.
pub struct Gregor {
    child: Option<Child>,
    /// `host:port` the broker listens on.
    pub addr: String,
    /// `host:port` of `/metrics`, when served.
    pub metrics_addr: Option<String>,
    /// Data directory (`log.dirs`).
    pub data_dir: PathBuf,
    /// Kept alive while the broker may use it.
    _tmp: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    log_path: PathBuf,
}

impl Gregor {
    /// Starts a broker on 127.0.0.1 with a fresh temporary data directory.
    pub fn start() -> Gregor {
        Self::start_with(&[])
    }

    /// Starts a broker with extra `GREGOR_*` environment settings.
    pub fn start_with(env: &[(&str, &str)]) -> Gregor {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut g = Gregor {
            child: None,
            addr: String::new(),
            metrics_addr: None,
            data_dir,
            _tmp: None,
            env,
            log_path: tmp.path().join("gregor.log"),
        };
        g._tmp = Some(tmp);
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let mut cmd = Command::new(gregor_bin());
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "RUST_LOG",
                std::env::var("GREGOR_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("GREGOR_LISTENERS", "PLAINTEXT://127.0.0.1:0")
            .env("GREGOR_METRICS_LISTENER", "127.0.0.1:0")
            .env("GREGOR_LOG_DIRS", &self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.data_dir.parent().expect("parent"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn gregor");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(m) = l.strip_prefix("gregor metrics on ") {
                        self.metrics_addr = Some(m.trim().to_string());
                    }
                    if let Some(a) = l.strip_prefix("gregor listening on ") {
                        break a.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.wait();
                    panic!("gregor exited before listening; log:\n{}", self.log());
                }
            }
        };
        std::thread::spawn(move || for _ in lines {});
        self.addr = addr;
        self.child = Some(child);
    }

    /// The broker's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns the exit code after the graceful shutdown.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the broker again on the same data directory (new port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker first");
        self.spawn();
    }

    /// A librdkafka client config pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.addr)
            .set("broker.address.family", "v4");
        c
    }
}

impl Drop for Gregor {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until `f` returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

//! One `tjid-intake run` child process on PostgreSQL with an instance name and an ops port
//! (tests/instances.rs, examples/instances_bench.rs).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::support::{free_port, World};

/// One `tjid-intake run` process with its instance name and ops port.
pub struct Instance {
    bin: PathBuf,
    pub name: String,
    pub port: u16,
    config: PathBuf,
    url: String,
    /// More environment (configuration as `TJID__…`) for the next `start`.
    pub env: Vec<(String, String)>,
    pub child: Option<Child>,
}

impl Instance {
    pub fn new(bin: &str, name: &str, world: &World, url: &str) -> Instance {
        Instance {
            bin: bin.into(),
            name: name.into(),
            port: free_port(),
            config: world.config_path(),
            url: url.into(),
            env: Vec::new(),
            child: None,
        }
    }

    pub fn start(&mut self) {
        let child = Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config)
            .arg("run")
            .env("TJID__STORE__KIND", "postgres")
            .env("TJID__STORE__URL", &self.url)
            .env("TJID__INSTANCE__NAME", &self.name)
            .env("TJID__HTTP__LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .spawn()
            .expect("start the daemon");
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
    }

    /// SIGTERM and wait: a clean stop.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(40);
            while c.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "{} did not stop", self.name);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
        Some((status, body))
    }

    /// The value of `tjid_imap_lease_held{instance="<name>"}`.
    pub async fn lease_gauge(&self) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        let key = format!("tjid_imap_lease_held{{instance=\"{}\"}}", self.name);
        body.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

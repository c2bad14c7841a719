//! The Debian package and its systemd unit (packaging/, `[package.metadata.deb]`): `cargo deb`
//! builds the package, which holds the binary, the unit and /etc/tjid-intake/config.toml as a
//! conffile, and the unit as installed passes `systemd-analyze verify` without a word. And the
//! daemon speaks `Type=notify`: READY=1 once it runs, WATCHDOG=1 while it runs, STOPPING=1.
//!
//! The package is built around this test build's binary (`cargo deb --no-build`, the binary
//! put where cargo-deb looks for the release build): cargo-deb refuses the dev profile, and a
//! release build would add some ten minutes to every run of the tests. `cargo deb` itself
//! builds the release binary from the same metadata.
//!
//! cargo-deb (`cargo install cargo-deb --locked`), dpkg-deb and systemd-analyze (Debian's
//! `systemd`) are needed: scripts/setup-test-deps.sh installs them. Without them the tests fail
//! when `CI` is set and are skipped, loudly, otherwise.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::Installation;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `program args` runs; a missing tool fails under CI and skips loudly elsewhere.
fn tool(program: &str, args: &[&str], package: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("`{program}` is not installed ({package})");
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: scripts/setup-test-deps.sh installs it; CI does not skip");
        }
        eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    }
    ok
}

/// Runs a command; panics with its output when it fails. Returns its standard output and error.
fn run(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Builds the package into `dir` and returns its path.
fn build_deb(dir: &Path) -> PathBuf {
    let target = dir.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_tjid-intake"),
        target.join("release/tjid-intake"),
    )
    .unwrap();
    let deb = dir.join("tjid-intake.deb");
    let started = Instant::now();
    run(Command::new("cargo")
        .current_dir(root())
        .env("CARGO_TARGET_DIR", &target)
        // Stripped, without the dbgsym package and with light compression: the test build's
        // binary carries 300 MB of debug info, which `cargo deb` would move into a .ddeb.
        .args([
            "deb",
            "--no-build",
            "--no-dbgsym",
            "--strip",
            "--fast",
            "--output",
        ])
        .arg(&deb));
    eprintln!("cargo deb: {:.1} s", started.elapsed().as_secs_f32());
    deb
}

#[test]
fn the_deb_builds_and_its_unit_passes_systemd_analyze_verify() {
    if !(tool(
        "cargo",
        &["deb", "--version"],
        "cargo install cargo-deb --locked",
    ) && tool("dpkg-deb", &["--version"], "Debian package dpkg")
        && tool("systemd-analyze", &["--version"], "Debian package systemd"))
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let deb = build_deb(dir.path());

    // The control fields: the conffile, and the programs it needs.
    let (control, _) = run(Command::new("dpkg-deb").arg("--field").arg(&deb));
    assert!(control.contains("Package: tjid-intake"), "{control}");
    assert!(control.contains("poppler-utils"), "{control}");
    // IMAP and SMTP over TLS check the server against the system's CA bundle.
    assert!(control.contains("ca-certificates"), "{control}");
    let ctrl = dir.path().join("control");
    run(Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&ctrl));
    let conffiles = std::fs::read_to_string(ctrl.join("conffiles")).unwrap_or_default();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/tjid-intake/config.toml"),
        "conffiles: {conffiles:?}"
    );

    // The files, unpacked as dpkg would install them.
    let tree = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree));
    let unit_dir = ["usr/lib/systemd/system", "lib/systemd/system"]
        .iter()
        .map(|d| tree.join(d))
        .find(|d| d.join("tjid-intake.service").exists())
        .expect("the unit is installed");
    let config = tree.join("etc/tjid-intake/config.toml");
    assert!(config.exists(), "the configuration is installed");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the configuration may hold passwords");
    let binary = tree.join("usr/bin/tjid-intake");
    // The packaged configuration is a valid one for the packaged binary, once the two data
    // files it names exist (the administrator puts them in /etc/tjid-intake; until then the
    // unit's ExecStartPre says what is missing).
    let out = Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .output()
        .unwrap();
    let missing = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && missing.contains("2 problem(s)")
            && missing.contains("/etc/tjid-intake/kiv.ldif"),
        "{missing}"
    );
    run(Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .env("TJID__KIV__LDIF", root().join("fixtures/kiv.ldif"))
        .env(
            "TJID__PROVIDERS__CSV",
            root().join("fixtures/providers.csv"),
        )
        .arg("check-config"));

    // systemd-analyze verify, with the unpacked package as the root: the unit is read as
    // installed, its ExecStart= binary found where the package puts it. The system's own units
    // (the targets it orders itself after) are copied beside it.
    let system_units = Path::new("/usr/lib/systemd/system");
    let mut cp = Command::new("cp");
    cp.arg("-rn")
        .arg(system_units.join("."))
        .arg(tree.join("usr/lib/systemd/system"));
    std::fs::create_dir_all(tree.join("usr/lib/systemd/system")).unwrap();
    run(&mut cp);
    if unit_dir != tree.join("usr/lib/systemd/system") {
        std::fs::copy(
            unit_dir.join("tjid-intake.service"),
            tree.join("usr/lib/systemd/system/tjid-intake.service"),
        )
        .unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", tree.display()))
        .arg("tjid-intake.service")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

/// The unit in the repository keeps the sandbox and the notification type it is documented
/// with (checked without the package or systemd, on any machine).
#[test]
fn the_unit_says_what_the_issue_asks() {
    let unit = std::fs::read_to_string(root().join("packaging/tjid-intake.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tjid-intake",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=",
        "StateDirectory=tjid-intake",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "the unit has no {line}"
        );
    }
}

/// What systemd receives on its notification socket from `run`.
#[test]
fn the_daemon_notifies_systemd_ready_watchdog_and_stopping() {
    let inst = Installation::new("");
    let socket_path = inst.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = inst
        .command()
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .arg("run")
        .spawn()
        .unwrap();
    let mut said = String::new();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(20) && said.matches("WATCHDOG=1").count() < 2 {
        if let Ok(n) = socket.recv(&mut buf) {
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    // SAFETY: kill with a pid this test started.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let stopping_by = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stopping_by && !said.contains("STOPPING=1") {
        if let Ok(n) = socket.recv(&mut buf) {
            said.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(said.contains("READY=1"), "{said}");
    assert!(
        said.matches("WATCHDOG=1").count() >= 2,
        "pings go on: {said}"
    );
    assert!(said.contains("STOPPING=1"), "{said}");
}

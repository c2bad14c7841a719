//! Running an external program (pdftoppm, tesseract) on bytes: input on stdin, output read
//! up to a cap, killed when its time is up. Never through a shell. Writer and readers run on
//! their own threads so that no pipe can fill up and stall the others.

use std::cell::Cell;
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a finished program gave.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The first 64 KiB of its standard error.
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum ChildError {
    Start(std::io::Error),
    Timeout,
    Wait(std::io::Error),
}

/// The address space each external program gets by default, in MiB: a page at 400 dpi and
/// Tesseract's models need well under 300 MiB; a PDF image declaring 60000×60000 pixels makes
/// pdftoppm ask for gigabytes and fail instead.
pub const DEFAULT_MEMORY_MB: u64 = 768;

static MEMORY_LIMIT_MB: AtomicU64 = AtomicU64::new(DEFAULT_MEMORY_MB);

thread_local! {
    /// When the work this thread does for one email must stop (its time limit).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `work` with `deadline` as this thread's deadline: a program started by `run` past it
/// is killed, and OCR starts no page past it. The email's time limit thereby stops the work
/// too, not only the wait for it.
pub fn with_deadline<R>(deadline: Option<Instant>, work: impl FnOnce() -> R) -> R {
    let before = DEADLINE.with(|d| d.replace(deadline));
    let result = work();
    DEADLINE.with(|d| d.set(before));
    result
}

/// This thread's deadline, to hand on to the threads it starts.
pub fn deadline() -> Option<Instant> {
    DEADLINE.with(|d| d.get())
}

/// Whether this thread's deadline has passed.
pub fn past_deadline() -> bool {
    deadline().is_some_and(|d| Instant::now() >= d)
}

/// Sets the address-space limit of the programs started from now on (`[ocr] child_memory_mb`);
/// 0 lifts it.
pub fn set_memory_limit_mb(mb: u64) {
    MEMORY_LIMIT_MB.store(mb, Ordering::Relaxed);
}

/// Runs `cmd` with `input` on stdin; at most `stdout_cap` bytes of stdout are kept. The program
/// gets the configured address-space limit (`RLIMIT_AS`): it fails to allocate beyond it.
pub fn run(
    mut cmd: Command,
    input: Vec<u8>,
    stdout_cap: u64,
    timeout: Duration,
) -> Result<Finished, ChildError> {
    let limit = MEMORY_LIMIT_MB
        .load(Ordering::Relaxed)
        .saturating_mul(1 << 20);
    if limit > 0 {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only setrlimit is called, which is async-signal-safe
        // and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let rl = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ChildError::Start)?;
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let read = |pipe: Option<Box<dyn Read + Send>>, cap: u64| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(cap).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        stdout_cap,
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        64 * 1024,
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() > timeout || past_deadline() => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(ChildError::Timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(ChildError::Wait(e));
            }
        }
    };
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Finished {
        status: status?,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(mb: u32) -> Result<Finished, ChildError> {
        let mut cmd = Command::new("python3");
        cmd.arg("-c")
            .arg(format!("b = bytearray({mb} * 1024 * 1024); print(len(b))"));
        run(cmd, Vec::new(), 1024, Duration::from_secs(30))
    }

    #[test]
    fn a_program_still_running_at_the_deadline_is_killed() {
        let started = Instant::now();
        let soon = Some(started + Duration::from_millis(300));
        let result = with_deadline(soon, || {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            run(cmd, Vec::new(), 1024, Duration::from_secs(60))
        });
        assert!(matches!(result, Err(ChildError::Timeout)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(deadline(), None, "the deadline ends with the work");
    }

    #[test]
    fn the_memory_limit_stops_a_program_that_asks_for_more() {
        // One test changes the process-wide limit: nothing else here runs children.
        set_memory_limit_mb(200);
        let over = allocate(400).expect("runs");
        let under = allocate(20).expect("runs");
        set_memory_limit_mb(0);
        let free = allocate(400).expect("runs");
        set_memory_limit_mb(DEFAULT_MEMORY_MB);
        assert!(!over.status.success(), "400 MiB under a 200 MiB limit");
        assert!(under.status.success());
        assert!(free.status.success());
    }
}

//! Running an external program (pdftoppm, tesseract) on bytes: input on stdin, output read
//! up to a cap, killed when its time is up. Never through a shell. Writer and readers run on
//! their own threads so that no pipe can fill up and stall the others.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// It used up its processor time (or its piece of the budget), or the deadline passed.
    Timeout,
    /// It waited far longer than it worked: the machine is busy or the program is stuck. Not
    /// the input's fault, so not a reason to call it unreadable.
    Starved,
    Wait(std::io::Error),
}

impl ChildError {
    /// Whether the program was stopped for time rather than failing on its own.
    pub fn out_of_time(&self) -> bool {
        matches!(self, ChildError::Timeout | ChildError::Starved)
    }
}

/// A program may run this many times its processor-time limit on the wall clock (plus
/// [`WALL_SLACK`]) before it is taken for starved or stuck: with both cores busy elsewhere a
/// page takes about twice its processor time.
const WALL_FACTOR: u32 = 4;
const WALL_SLACK: Duration = Duration::from_secs(2);

/// The address space each external program gets by default, in MiB: a page at 400 dpi and
/// Tesseract's models need well under 300 MiB; a PDF image declaring 60000×60000 pixels makes
/// pdftoppm ask for gigabytes and fail instead.
pub const DEFAULT_MEMORY_MB: u64 = 768;

static MEMORY_LIMIT_MB: AtomicU64 = AtomicU64::new(DEFAULT_MEMORY_MB);

thread_local! {
    /// When the work this thread does for one email must stop (its time limit).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The time the programs run for one attachment may still take together.
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Processor time that the external programs run for one piece of work (an attachment) may
/// take together, shared by the threads that work on it. Each program is killed when what is
/// left runs out, and once nothing is left [`stopped`] is true, so no further page is started.
/// Only the programs' own processor time counts, not the wait for a free OCR worker nor for a
/// core: a page costs the same on an idle machine and a busy one, so the decision does not
/// depend on load (issue 20).
#[derive(Clone, Debug)]
pub struct Budget(Arc<Mutex<Duration>>);

impl Budget {
    pub fn new(limit: Duration) -> Budget {
        Budget(Arc::new(Mutex::new(limit)))
    }

    /// What is left.
    pub fn left(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spend(&self, spent: Duration) {
        let mut left = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *left = left.saturating_sub(spent);
    }
}

/// Runs `work` with `budget` as this thread's budget for external programs.
pub fn with_budget<R>(budget: Option<Budget>, work: impl FnOnce() -> R) -> R {
    let before = BUDGET.with(|b| b.replace(budget));
    let result = work();
    BUDGET.with(|b| *b.borrow_mut() = before);
    result
}

/// This thread's budget, to hand on to the threads it starts.
pub fn budget() -> Option<Budget> {
    BUDGET.with(|b| b.borrow().clone())
}

/// Whether this thread's work must stop: its email's deadline has passed or its attachment's
/// budget is spent.
pub fn stopped() -> bool {
    past_deadline() || budget().is_some_and(|b| b.left().is_zero())
}

/// Runs `work` on another thread's deadline and budget (the thread that starts it).
pub fn inherit<R>(from: &(Option<Instant>, Option<Budget>), work: impl FnOnce() -> R) -> R {
    with_deadline(from.0, || with_budget(from.1.clone(), work))
}

/// This thread's deadline and budget, for [`inherit`].
pub fn context() -> (Option<Instant>, Option<Budget>) {
    (deadline(), budget())
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

/// The address-space limit of the programs started from now on, in MiB (0: none).
pub fn memory_limit_mb() -> u64 {
    MEMORY_LIMIT_MB.load(Ordering::Relaxed)
}

/// Runs `cmd` with `input` on stdin; at most `stdout_cap` bytes of stdout are kept. The program
/// gets the configured address-space limit (`RLIMIT_AS`): it fails to allocate beyond it. It is
/// killed when its processor time passes `timeout` or what is left of this thread's budget
/// ([`ChildError::Timeout`]), at this thread's deadline (the same), or when it has run
/// [`WALL_FACTOR`] times that long on the wall clock ([`ChildError::Starved`]); its processor
/// time is taken from the budget.
pub fn run(
    mut cmd: Command,
    input: Vec<u8>,
    stdout_cap: u64,
    timeout: Duration,
) -> Result<Finished, ChildError> {
    if stopped() {
        return Err(ChildError::Timeout);
    }
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
    // Its own process group, so that killing it kills what it started too: a helper it left
    // running would hold its pipes open and keep this thread waiting for their end.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
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
    let budget = budget();
    let limit = budget.as_ref().map_or(timeout, |b| timeout.min(b.left()));
    let wall_limit = limit * WALL_FACTOR + WALL_SLACK;
    let pid = child.id();
    let mut used = Duration::ZERO;
    let status = loop {
        // Read before asking whether it ended: an ended program's figures are its last.
        if let Some(t) = cpu_time(pid) {
            used = used.max(t);
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if used > limit || past_deadline() => {
                kill_group(&mut child);
                break Err(ChildError::Timeout);
            }
            Ok(None) if started.elapsed() > wall_limit => {
                kill_group(&mut child);
                break Err(ChildError::Starved);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(&mut child);
                break Err(ChildError::Wait(e));
            }
        }
    };
    if let Some(b) = &budget {
        b.spend(used);
    }
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Finished {
        status: status?,
        stdout,
        stderr,
    })
}

/// The processor time (user and system, all threads) that process `pid` has used, from
/// `/proc/PID/stat`; `None` once it is reaped or where there is no /proc.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

/// Kills the program and every process in its group, and reaps it.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill() with the negated id of the group this module made for the child.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
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

    /// A program that spends `secs` of processor time, then ends.
    fn busy(secs: f32) -> Command {
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(format!(
            "import time\nt = time.process_time()\nwhile time.process_time() - t < {secs}: pass"
        ));
        cmd
    }

    #[test]
    fn what_the_program_started_is_killed_with_it() {
        let started = Instant::now();
        let mut cmd = Command::new("sh");
        // The shell waits for a sleep that holds its output open; neither works, so they are
        // stopped by the wall clock, as stuck.
        cmd.arg("-c").arg("sleep 30; echo done");
        let result = run(cmd, Vec::new(), 1024, Duration::from_millis(300));
        assert!(matches!(result, Err(ChildError::Starved)));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_program_is_held_to_its_processor_time_not_to_the_wall_clock() {
        // Waiting costs nothing: 0.8 s asleep fits a limit of 0.3 s of processor time.
        let mut cmd = Command::new("sleep");
        cmd.arg("0.8");
        let budget = Budget::new(Duration::from_secs(10));
        let slept = with_budget(Some(budget.clone()), || {
            run(cmd, Vec::new(), 1024, Duration::from_millis(300))
        });
        assert!(slept.is_ok_and(|f| f.status.success()));
        assert!(
            budget.left() > Duration::from_millis(9900),
            "{:?}",
            budget.left()
        );
        // Working does: 5 s of work is stopped at 0.3 s.
        let started = Instant::now();
        let worked = run(busy(5.0), Vec::new(), 1024, Duration::from_millis(300));
        assert!(matches!(worked, Err(ChildError::Timeout)));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn programs_share_a_budget_and_stop_when_it_is_spent() {
        let started = Instant::now();
        let budget = Budget::new(Duration::from_millis(700));
        let results: Vec<_> = with_budget(Some(budget.clone()), || {
            (0..5)
                .map(|_| {
                    let r = run(busy(0.4), Vec::new(), 1024, Duration::from_secs(60));
                    (r.is_ok(), stopped())
                })
                .collect()
        });
        // 0.4 s of work, then killed when the rest is spent, then nothing is left.
        assert_eq!(results[0], (true, false));
        assert_eq!(results[1], (false, true));
        assert!(budget.left().is_zero());
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(!stopped(), "the budget ends with the work");
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

    #[test]
    fn the_processor_time_of_a_process_is_read() {
        let own = cpu_time(std::process::id()).unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            std::hint::black_box(0u64.wrapping_add(1));
        }
        assert!(cpu_time(std::process::id()).unwrap() > own);
    }
}

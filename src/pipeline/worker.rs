//! Untrusted attachments are read in worker processes: `tjid-intake worker`, the same binary,
//! talking over its stdin and stdout. PDF parsing and text extraction, image decoding, page
//! rendering and OCR (with the pdftoppm and tesseract it starts) happen there, under an
//! address-space limit (`RLIMIT_AS`) and a processor-time limit, so that what an attachment
//! costs is paid, and stopped, outside the daemon: a worker that runs out of memory, crashes,
//! uses up its processor time or outlives the email's time limit is killed and replaced, and
//! its attachment is unreadable. The daemon's own memory stays flat whatever the mail holds.
//!
//! A small pool of long-lived workers (one per OCR slot) is kept; each is replaced after
//! `recycle_after` attachments, so that what a reader leaks or fragments does not add up.
//!
//! Protocol, one request and one answer at a time: the request is a 4-byte big-endian length
//! and a JSON header ([`Request`]), then a 4-byte length and the attachment's bytes; the
//! answer is a 4-byte length and a JSON [`Answer`].
//!
//! Without [`enable`] (unit tests, and inside a worker itself) attachments are read in-process.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{mpsc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::forms::layout::RawForm;
use crate::forms::spec::FormKind;
use crate::forms::FieldBox;
use crate::ocr::child::cpu_time;
use crate::ocr::{OcrSettings, RasterLimits};
use crate::pdf::PdfLimits;
use crate::pipeline::extract::{AttachmentRead, ExtractLimits};
use crate::pipeline::parse::Attachment;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The program started as `PROGRAM worker` (this binary).
    pub program: PathBuf,
    /// Workers at most (attachments read at once).
    pub workers: usize,
    /// Address space of each worker, in MiB.
    pub memory_mb: u64,
    /// Processor time one attachment may take in its worker (the programs it starts, which
    /// have their own limit, not counted).
    pub cpu_per_attachment: Duration,
    /// A worker is replaced after this many attachments.
    pub recycle_after: usize,
    /// How a worker logs (to the daemon's standard error, which it shares).
    pub log: crate::telemetry::LogSettings,
}

/// The default address space of a worker: the largest page image (`max_pixels`, 16 M) decoded
/// at 4 bytes a pixel, its grey copy, the clean-up's copies and a parsed PDF within its bounds
/// fit with room to spare; the attacks of issue 20 asked for 2–4 GB.
pub const DEFAULT_MEMORY_MB: u64 = 1024;

/// How long after the email's deadline a worker still reading is killed: it kills what it runs
/// at the deadline and answers within this.
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// Largest answer read from a worker.
const MAX_ANSWER_BYTES: u32 = 64 << 20;

static POOL: OnceLock<Pool> = OnceLock::new();

/// Reads attachments in workers from now on (`run` and `process`). Once per process.
pub fn enable(settings: WorkerSettings) {
    let _ = POOL.set(Pool {
        settings,
        state: Mutex::new(PoolState::default()),
        freed: Condvar::new(),
    });
}

/// Whether attachments are read in workers.
pub fn enabled() -> bool {
    POOL.get().is_some()
}

/// Reads `att` in a worker when workers are enabled (`None`: read it in this process).
pub(crate) fn read_elsewhere(att: &Attachment, limits: &ExtractLimits) -> Option<AttachmentRead> {
    let pool = POOL.get()?;
    Some(pool.read(att, limits))
}

// ---------------------------------------------------------------------------------------------
// The protocol.

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    name: Option<String>,
    content_type: String,
    depth: usize,
    limits: WireLimits,
    /// What is left of the email's time limit, in milliseconds.
    time_left_ms: Option<u64>,
    /// `[ocr] child_memory_mb` for the programs the worker starts.
    child_memory_mb: u64,
    /// Pages of one attachment recognised at once (`[ocr] workers`, as in the daemon).
    ocr_workers: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireLimits {
    max_attachment_bytes: usize,
    max_attachments: usize,
    pdf: PdfLimits,
    ocr_enabled: bool,
    ocr_lang: String,
    ocr_page_timeout: Duration,
    raster: RasterLimits,
}

impl WireLimits {
    fn of(l: &ExtractLimits) -> WireLimits {
        WireLimits {
            max_attachment_bytes: l.max_attachment_bytes,
            max_attachments: l.max_attachments,
            pdf: l.pdf.clone(),
            ocr_enabled: l.ocr.enabled,
            ocr_lang: l.ocr.lang.clone(),
            ocr_page_timeout: l.ocr.page_timeout,
            raster: l.ocr.raster.clone(),
        }
    }

    fn limits(self) -> ExtractLimits {
        ExtractLimits {
            max_attachment_bytes: self.max_attachment_bytes,
            max_attachments: self.max_attachments,
            pdf: self.pdf,
            ocr: OcrSettings {
                enabled: self.ocr_enabled,
                lang: self.ocr_lang,
                page_timeout: self.ocr_page_timeout,
                raster: self.raster,
            },
        }
    }
}

/// What a worker answers: [`AttachmentRead`] on the wire.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    Forms(Vec<WireForm>),
    NoForm,
    ScanNoForm,
    Unreadable(String),
    OcrUnavailable,
    OutOfTime(String),
}

/// A [`RawForm`] on the wire: field keys as text, mapped back to the form's own keys.
#[derive(Debug, Serialize, Deserialize)]
struct WireForm {
    kind: String,
    values: Vec<(String, String)>,
    pages: Vec<usize>,
    low_confidence: Vec<String>,
    ocr_pages: Vec<usize>,
    boxes: Vec<FieldBox>,
    needs_ink: bool,
    signature: Option<crate::forms::signature::SignatureReading>,
}

impl Answer {
    fn of(read: AttachmentRead) -> Answer {
        match read {
            AttachmentRead::Forms(forms) => Answer::Forms(
                forms
                    .into_iter()
                    .map(|f| WireForm {
                        kind: f.kind.as_str().to_string(),
                        values: f
                            .values
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                        pages: f.pages,
                        low_confidence: f.low_confidence.iter().map(|k| k.to_string()).collect(),
                        ocr_pages: f.ocr_pages,
                        boxes: f.boxes,
                        needs_ink: f.needs_ink,
                        signature: f.signature,
                    })
                    .collect(),
            ),
            AttachmentRead::NoForm => Answer::NoForm,
            AttachmentRead::ScanNoForm => Answer::ScanNoForm,
            AttachmentRead::Unreadable(why) => Answer::Unreadable(why),
            AttachmentRead::OcrUnavailable => Answer::OcrUnavailable,
            AttachmentRead::OutOfTime(why) => Answer::OutOfTime(why),
        }
    }

    fn read(self) -> Result<AttachmentRead, String> {
        Ok(match self {
            Answer::Forms(forms) => AttachmentRead::Forms(
                forms
                    .into_iter()
                    .map(WireForm::form)
                    .collect::<Result<_, _>>()?,
            ),
            Answer::NoForm => AttachmentRead::NoForm,
            Answer::ScanNoForm => AttachmentRead::ScanNoForm,
            Answer::Unreadable(why) => AttachmentRead::Unreadable(why),
            Answer::OcrUnavailable => AttachmentRead::OcrUnavailable,
            Answer::OutOfTime(why) => AttachmentRead::OutOfTime(why),
        })
    }
}

impl WireForm {
    fn form(self) -> Result<RawForm, String> {
        let kind = FormKind::ALL
            .into_iter()
            .find(|k| k.as_str() == self.kind)
            .ok_or_else(|| format!("unknown form kind {:?}", self.kind))?;
        let key = |name: &str| -> Result<&'static str, String> {
            kind.fields()
                .iter()
                .map(|f| f.key)
                .find(|k| *k == name)
                .ok_or_else(|| format!("unknown field {name:?}"))
        };
        Ok(RawForm {
            kind,
            values: self
                .values
                .into_iter()
                .map(|(k, v)| Ok((key(&k)?, v)))
                .collect::<Result<_, String>>()?,
            pages: self.pages,
            low_confidence: self
                .low_confidence
                .iter()
                .map(|k| key(k))
                .collect::<Result<_, _>>()?,
            ocr_pages: self.ocr_pages,
            boxes: self.boxes,
            needs_ink: self.needs_ink,
            signature: self.signature,
        })
    }
}

fn write_frame(out: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    for part in parts {
        let len = u32::try_from(part.len())
            .map_err(|_| std::io::Error::other("a frame larger than 4 GiB"))?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(part)?;
    }
    out.flush()
}

/// One length-prefixed part; `None` at a clean end of input.
fn read_part(input: &mut impl Read, max: u32) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(std::io::Error::other(format!("a part of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf)?;
    Ok(Some(buf))
}

// ---------------------------------------------------------------------------------------------
// The worker's side.

/// `tjid-intake worker`: reads attachments from stdin until it closes.
pub fn serve() -> ExitCode {
    let log = crate::telemetry::LogSettings {
        format: match std::env::var("TJID_WORKER_LOG_FORMAT").as_deref() {
            Ok("json") => crate::telemetry::LogFormat::Json,
            _ => crate::telemetry::LogFormat::Text,
        },
        level: std::env::var("TJID_WORKER_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
    };
    crate::telemetry::init(&log);
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    // Should the whole service run out of memory, the kernel kills a worker, not the daemon.
    let _ = std::fs::write("/proc/self/oom_score_adj", "800");
    loop {
        let header = match read_part(&mut input, 1 << 20) {
            Ok(Some(h)) => h,
            Ok(None) => return ExitCode::SUCCESS,
            Err(_) => return ExitCode::FAILURE,
        };
        let Ok(Some(data)) = read_part(&mut input, u32::MAX) else {
            return ExitCode::FAILURE;
        };
        let Ok(request) = serde_json::from_slice::<Request>(&header) else {
            return ExitCode::FAILURE;
        };
        let answer = Answer::of(read_here(request, data));
        let Ok(json) = serde_json::to_vec(&answer) else {
            return ExitCode::FAILURE;
        };
        if write_frame(&mut output, &[&json]).is_err() {
            return ExitCode::FAILURE;
        }
    }
}

fn read_here(request: Request, data: Vec<u8>) -> AttachmentRead {
    crate::ocr::child::set_memory_limit_mb(request.child_memory_mb);
    crate::ocr::set_workers(request.ocr_workers);
    let att = Attachment {
        name: request.name,
        content_type: request.content_type,
        data,
        depth: request.depth,
    };
    let limits = request.limits.limits();
    let deadline = request
        .time_left_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    // Test hooks, debug builds only: `abort:NAME` makes the worker die on the attachment
    // NAME (as an allocation failure at its memory limit does), `spin:NAME` makes it spin on
    // the processor until it is stopped.
    if cfg!(debug_assertions) {
        if let Ok(hook) = std::env::var("TJID_DEBUG_WORKER_HOOK") {
            match hook.split_once(':') {
                Some(("abort", name)) if att.name.as_deref() == Some(name) => std::process::abort(),
                Some(("spin", name)) if att.name.as_deref() == Some(name) => loop {
                    std::hint::black_box(0u64);
                },
                _ => {}
            }
        }
    }
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::ocr::child::with_deadline(deadline, || {
            crate::pipeline::extract::read_attachment(&att, &limits)
        })
    }));
    read.unwrap_or_else(|_| AttachmentRead::Unreadable("reading failed unexpectedly".into()))
}

// ---------------------------------------------------------------------------------------------
// The daemon's side: the pool.

struct Pool {
    settings: WorkerSettings,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Worker>,
    /// Workers started and not yet ended (idle or busy).
    live: usize,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Option<ChildStdout>,
    jobs: usize,
}

/// Why a worker did not answer.
#[derive(Debug)]
enum Failure {
    /// The email's time limit passed: the worker was killed.
    Deadline,
    /// The attachment used up its processor time: the worker was killed.
    Cpu(Duration),
    /// The worker ended without an answer (killed by its memory limit, a crash).
    Died(String),
    /// It could not be started or talked to.
    Broken(String),
}

impl Pool {
    fn read(&self, att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
        let deadline = crate::ocr::child::deadline();
        let mut worker = match self.checkout() {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a worker; the attachment is read here");
                return in_process(att, limits);
            }
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // The time ran out while waiting for a free worker: it is not the worker's fault.
            self.checkin(Some(worker));
            return AttachmentRead::Unreadable(
                "the email's time limit ran out while it was read".into(),
            );
        }
        let request = Request {
            name: att.name.clone(),
            content_type: att.content_type.clone(),
            depth: att.depth,
            limits: WireLimits::of(limits),
            time_left_ms: deadline
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
            child_memory_mb: crate::ocr::child::memory_limit_mb(),
            ocr_workers: crate::ocr::workers(),
        };
        let started = Instant::now();
        let result = self.call(&mut worker, &request, &att.data, deadline);
        metrics::histogram!(crate::telemetry::WORKER_SECONDS)
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(read) => {
                self.checkin(Some(worker));
                read
            }
            Err(failure) => {
                kill(&mut worker.child);
                self.checkin(None);
                metrics::counter!(crate::telemetry::WORKER_KILLED).increment(1);
                let why = match failure {
                    Failure::Deadline => "the email's time limit ran out while it was read".into(),
                    Failure::Cpu(t) => {
                        let why = format!(
                            "reading it took more than {} s of processor time",
                            t.as_secs()
                        );
                        tracing::warn!(reason = %why, attachment_type = %att.content_type, "worker stopped for time");
                        return AttachmentRead::OutOfTime(why);
                    }
                    Failure::Died(how) => format!(
                        "its reader stopped ({how}), most likely at its memory limit of {} MB",
                        self.settings.memory_mb
                    ),
                    Failure::Broken(e) => format!("its reader failed: {e}"),
                };
                tracing::warn!(reason = %why, attachment_type = %att.content_type, "worker stopped; attachment unreadable");
                AttachmentRead::Unreadable(why)
            }
        }
    }

    fn checkout(&self) -> Result<Worker, String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(w) = state.idle.pop() {
                return Ok(w);
            }
            if state.live < self.settings.workers.max(1) {
                state.live += 1;
                drop(state);
                return self.spawn().inspect_err(|_| self.checkin(None));
            }
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Hands a worker back (`None`: it ended); one that has read `recycle_after` attachments
    /// is ended and replaced by a fresh one when next needed.
    fn checkin(&self, worker: Option<Worker>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match worker {
            Some(mut w) if w.jobs >= self.settings.recycle_after.max(1) => {
                // Idle between attachments: nothing is lost by killing it.
                kill(&mut w.child);
                state.live -= 1;
            }
            Some(w) => state.idle.push(w),
            None => state.live -= 1,
        }
        drop(state);
        self.freed.notify_one();
    }

    fn spawn(&self) -> Result<Worker, String> {
        let mut cmd = Command::new(&self.settings.program);
        cmd.arg("worker")
            // Fewer malloc arenas: address space, not memory, is what RLIMIT_AS counts.
            .env("MALLOC_ARENA_MAX", "2")
            .env("RUST_BACKTRACE", "0")
            .env(
                "TJID_WORKER_LOG_FORMAT",
                match self.settings.log.format {
                    crate::telemetry::LogFormat::Json => "json",
                    crate::telemetry::LogFormat::Text => "text",
                },
            )
            .env("TJID_WORKER_LOG_LEVEL", &self.settings.log.level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // What a dying worker says (an allocation failure) goes to the daemon's log.
            .stderr(Stdio::inherit());
        let memory = self.settings.memory_mb.saturating_mul(1 << 20);
        // Processor time of the whole life of a worker: a backstop behind the per-attachment
        // check in `call`.
        let cpu = self
            .settings
            .cpu_per_attachment
            .as_secs()
            .max(1)
            .saturating_mul(self.settings.recycle_after.max(1) as u64 + 1);
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec only setrlimit is called, which is
            // async-signal-safe and allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    for (resource, value) in [(libc::RLIMIT_AS, memory), (libc::RLIMIT_CPU, cpu)] {
                        if value == 0 {
                            continue;
                        }
                        let rl = libc::rlimit {
                            rlim_cur: value as libc::rlim_t,
                            rlim_max: value as libc::rlim_t,
                        };
                        if libc::setrlimit(resource, &rl) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
            // Its own process group: killing it kills the pdftoppm or tesseract it runs.
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.settings.program.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take();
        metrics::counter!(crate::telemetry::WORKER_STARTED).increment(1);
        Ok(Worker {
            child,
            stdin,
            stdout,
            jobs: 0,
        })
    }

    fn call(
        &self,
        worker: &mut Worker,
        request: &Request,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<AttachmentRead, Failure> {
        worker.jobs += 1;
        let header = serde_json::to_vec(request).map_err(|e| Failure::Broken(e.to_string()))?;
        let mut stdout = worker
            .stdout
            .take()
            .ok_or_else(|| Failure::Broken("no stdout".into()))?;
        // The answer is read on its own thread, so that this one watches the worker meanwhile;
        // a worker killed here ends the read with an error.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let answer = read_part(&mut stdout, MAX_ANSWER_BYTES);
            let _ = tx.send((answer, stdout));
        });
        let pid = worker.child.id();
        let cpu_before = cpu_time(pid);
        let limit = self.settings.cpu_per_attachment;
        // A worker that died before reading it all fails this write; its status says why.
        let written = write_frame(&mut worker.stdin, &[&header, data]);
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok((Ok(Some(json)), stdout)) => {
                    worker.stdout = Some(stdout);
                    let answer: Answer = serde_json::from_slice(&json)
                        .map_err(|e| Failure::Broken(format!("a bad answer: {e}")))?;
                    return answer.read().map_err(Failure::Broken);
                }
                Ok((_, _)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Died(exit_cause(&mut worker.child)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if written.is_err() {
                if let Ok(Some(_)) = worker.child.try_wait() {
                    return Err(Failure::Died(exit_cause(&mut worker.child)));
                }
            }
            // The worker stops at the deadline itself (it kills the programs it runs and
            // answers); killing it is for one that does not.
            if deadline.is_some_and(|d| Instant::now() >= d + DEADLINE_GRACE) {
                return Err(Failure::Deadline);
            }
            if let (Some(before), Some(now)) = (cpu_before, cpu_time(pid)) {
                if now.saturating_sub(before) > limit {
                    return Err(Failure::Cpu(limit));
                }
            }
        }
    }
}

fn in_process(att: &Attachment, limits: &ExtractLimits) -> AttachmentRead {
    crate::pipeline::extract::read_attachment_here(att, limits)
}

/// Kills the worker and the programs it started, and reaps it. The programs run in process
/// groups of their own (`ocr::child`): each child's group is killed too.
fn kill(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        let groups = child_groups(pid);
        // SAFETY: kill() with the negated id of the group made for this worker, then of the
        // groups its children lead (made by ocr::child for each program).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            for group in groups {
                libc::kill(-group, libc::SIGKILL);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The process groups led by the children of `parent` (from /proc).
fn child_groups(parent: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split(' ');
            // state, ppid, pgrp
            let ppid: libc::pid_t = fields.nth(1)?.parse().ok()?;
            let pgrp: libc::pid_t = fields.next()?.parse().ok()?;
            (ppid == parent && pgrp == pid && pgrp > 1).then_some(pgrp)
        })
        .collect()
}

/// How a worker that gave no answer ended.
fn exit_cause(child: &mut Child) -> String {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match status.signal() {
                    Some(libc::SIGXCPU) => "its processor time ran out".into(),
                    Some(s) => format!("signal {s}"),
                    None => format!("exit status {}", status.code().unwrap_or(-1)),
                }
            }
            Ok(None) if started.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => return "it stopped answering".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_goes_over_the_wire_and_back() {
        let mut form = RawForm::new(FormKind::Order);
        let key = FormKind::Order.fields()[0].key;
        form.values.insert(key, "Anna".into());
        form.low_confidence.push(key);
        form.pages = vec![1, 2];
        let json =
            serde_json::to_vec(&Answer::of(AttachmentRead::Forms(vec![form.clone()]))).unwrap();
        let back = serde_json::from_slice::<Answer>(&json)
            .unwrap()
            .read()
            .unwrap();
        assert_eq!(back, AttachmentRead::Forms(vec![form]));
        let bad = Answer::Forms(vec![WireForm {
            kind: "order".into(),
            values: vec![("no_such_field".into(), String::new())],
            pages: vec![],
            low_confidence: vec![],
            ocr_pages: vec![],
            boxes: vec![],
            needs_ink: false,
            signature: None,
        }]);
        assert!(bad.read().is_err());
    }

    #[test]
    fn frames_are_length_prefixed() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &[b"{}", b"data"]).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_part(&mut r, 100).unwrap().unwrap(), b"{}");
        assert_eq!(read_part(&mut r, 3).map_err(|_| ()), Err(()));
        assert!(read_part(&mut &b""[..], 100).unwrap().is_none());
    }
}

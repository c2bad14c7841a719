//! Issue 20, bounded by construction: each hostile input of the table, generated here,
//! gets one outcome through `process --dry-run --json` and through the daemon, within 200 MB
//! of the daemon's own memory and 35 s; an email the daemon dies on is quarantined after at
//! most two attempts, and the mail after it is answered (no crash loop).

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{sample_mail, Installation};
use tjid_testkit::mime::{build, MailSpec, NameEncoding, Part};

/// The daemon's own peak resident memory, whatever the mail holds.
const MAX_PEAK_MIB: u64 = 200;
/// Time for one hostile email, from start to outcome.
const MAX_SECS: u64 = 35;

fn pdf_of(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(body);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer << /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    [
        format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes(),
        data.to_vec(),
        b"\nendstream".to_vec(),
    ]
    .concat()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A one-page PDF: `content` (Flate) drawn with font F1 (`font`, object 5), plus `extra`
/// objects from 6 on.
fn page_pdf(content: &[u8], font: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>".to_vec(),
        stream("/Filter /FlateDecode", &zlib(content)),
        font.as_bytes().to_vec(),
    ];
    objects.extend(extra);
    pdf_of(&objects)
}

const HELVETICA: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/// A ToUnicode CMap that maps one code to 30 000 characters, shown 30 000 times.
fn cmap_bomb() -> Vec<u8> {
    let cmap = format!(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n1 begincodespacerange <00> <FF> endcodespacerange\n1 beginbfchar <01> <{}> endbfchar\nendcmap",
        "0041".repeat(30_000)
    );
    let content = format!("BT /F1 12 Tf 10 800 Td <{}> Tj ET", "01".repeat(30_000));
    page_pdf(
        content.as_bytes(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        vec![stream("/Filter /FlateDecode", &zlib(cmap.as_bytes()))],
    )
}

/// `n` numbers in one array: "0 0 0 …".
fn numbers(n: usize) -> Vec<u8> {
    let mut a = Vec::with_capacity(2 * n + 2);
    a.push(b'[');
    for _ in 0..n {
        a.extend_from_slice(b"0 ");
    }
    a.push(b']');
    a
}

/// A 20 MB array of numbers in an object no page uses.
fn unused_array() -> Vec<u8> {
    page_pdf(
        b"BT /F1 12 Tf 10 800 Td (Hej) Tj ET",
        HELVETICA,
        vec![numbers(10_000_000)],
    )
}

/// The same array as the font's /Widths.
fn huge_widths() -> Vec<u8> {
    page_pdf(
        b"BT /F1 12 Tf 10 800 Td (Hej) Tj ET",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /FirstChar 0 /LastChar 255 /Widths 6 0 R >>",
        vec![numbers(10_000_000)],
    )
}

/// One `TJ` with 7 million operands (14 MB of content, within the 16 MiB a page may inflate
/// to; 30 million would be refused by that bound before the operands are counted).
fn tj_operands() -> Vec<u8> {
    let mut content = b"BT /F1 12 Tf 10 800 Td ".to_vec();
    content.extend_from_slice(&numbers(7_000_000));
    content.extend_from_slice(b" TJ ET");
    page_pdf(&content, HELVETICA, vec![])
}

/// 50 pages sharing one 60 MB content stream of 15 million operators.
fn fifty_big_pages() -> Vec<u8> {
    let content = b"q Q\n".repeat(15_000_000);
    let kids: String = (0..50).map(|i| format!("{} 0 R ", i + 4)).collect();
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{kids}] /Count 50 >>").into_bytes(),
        stream("/Filter /FlateDecode", &zlib(&content)),
    ];
    for _ in 0..50 {
        objects.push(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 3 0 R >>".to_vec(),
        );
    }
    pdf_of(&objects)
}

/// A scan whose JBIG2 image's dictionary says 2480 × 3508 and whose page-information segment
/// says 60 000 × 60 000.
fn jbig2_liar() -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&[0, 0, 0, 0, 48, 0, 1, 0, 0, 0, 19]);
    data.extend_from_slice(&60_000u32.to_be_bytes());
    data.extend_from_slice(&60_000u32.to_be_bytes());
    data.extend_from_slice(&[0; 11]);
    data.extend_from_slice(&[0, 0, 0, 1, 49, 0, 1, 0, 0, 0, 0]);
    pdf_of(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>".to_vec(),
        stream("", b"q 595 0 0 842 0 0 cm /Im0 Do Q"),
        stream("/Type /XObject /Subtype /Image /Width 2480 /Height 3508 /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /JBIG2Decode", &data),
    ])
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A page-sized PNG with an iCCP chunk that inflates to 1 GiB.
fn png_iccp_bomb() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(1240, 1754, image::Luma([255]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        z.write_all(&zeros).unwrap();
    }
    let mut body = b"iCCPbomb\0\0".to_vec();
    body.extend_from_slice(&z.finish().unwrap());
    let mut chunk = ((body.len() - 4) as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    // After the signature and IHDR.
    let at = 8 + 25;
    [&png[..at], &chunk, &png[at..]].concat()
}

fn with_file(name: &str, content_type: &str, data: Vec<u8>) -> Vec<u8> {
    let mut spec = MailSpec::new(
        "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
        name,
        &format!("<{name}@bounded.tjid>"),
        "Wed, 18 Nov 2026 10:00:00 +0100",
    );
    spec.parts.push(Part::File {
        name: name.into(),
        content_type: content_type.into(),
        data,
        encoding: NameEncoding::Plain,
    });
    build(&spec)
}

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let pdf = "application/pdf";
    vec![
        ("cmap_bomb", with_file("cmap_bomb", pdf, cmap_bomb())),
        (
            "unused_array",
            with_file("unused_array", pdf, unused_array()),
        ),
        ("huge_widths", with_file("huge_widths", pdf, huge_widths())),
        ("tj_operands", with_file("tj_operands", pdf, tj_operands())),
        (
            "png_iccp",
            with_file("png_iccp", "image/png", png_iccp_bomb()),
        ),
        ("jbig2_liar", with_file("jbig2_liar", pdf, jbig2_liar())),
        (
            "fifty_big_pages",
            with_file("fifty_big_pages", pdf, fifty_big_pages()),
        ),
    ]
}

/// The peak resident memory (VmHWM) of process `pid`, in MiB; 0 once it has exited (a
/// zombie's status has no VmHWM: it may exit between `try_wait` and this look).
fn peak_mib(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) else {
        return 0;
    };
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

/// Runs `process --dry-run --json` on one email under a small python3 that reads the largest
/// peak of the programs it waited for (the program itself; workers and what they run are
/// bounded by their own limits and reported apart).
fn process_measured(inst: &Installation, dir: &std::path::Path) -> (String, String, u64, Duration) {
    const MEASURE: &str = "import resource, subprocess, sys\n\
        code = subprocess.run(sys.argv[2:]).returncode\n\
        open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(code)\n";
    let rss = tempfile::NamedTempFile::new().unwrap();
    let cmd = inst.command();
    let mut wrapped = std::process::Command::new("python3");
    wrapped
        .arg("-c")
        .arg(MEASURE)
        .arg(rss.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .args(["process", "--dry-run", "--json", dir.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .env("OMP_THREAD_LIMIT", "1");
    let started = Instant::now();
    let out = wrapped.output().unwrap();
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib: u64 = std::fs::read_to_string(rss.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        kib / 1024,
        elapsed,
    )
}

#[test]
fn each_hostile_input_gets_one_outcome_through_process() {
    let inst = Installation::new("");
    for (name, raw) in hostile() {
        let dir = inst.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("in.eml"), raw).unwrap();
        let (stdout, stderr, peak, elapsed) = process_measured(&inst, &dir);
        eprintln!("{name}: peak {peak} MiB (largest of the program, its workers and their programs), {elapsed:.1?}");
        let lines: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {stdout}");
        let decision = lines[0]["decision"].as_str().unwrap();
        assert!(
            ["processed", "quarantined"].contains(&decision),
            "{name}: {}",
            lines[0]
        );
        assert!(peak < MAX_PEAK_MIB, "{name}: peak {peak} MiB\n{stderr}");
        assert!(
            elapsed < Duration::from_secs(MAX_SECS),
            "{name}: {elapsed:?}"
        );
    }
}

/// Starts the daemon (under `prefix`, e.g. prlimit) and waits until `done` or `limit` passes;
/// returns the daemon's peak memory in MiB and whether it was still running at the end.
fn run_daemon_until(
    inst: &Installation,
    prefix: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
    done: impl Fn() -> bool,
) -> (u64, Option<std::process::ExitStatus>) {
    let base = inst.command();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = std::process::Command::new(first);
            c.args(rest).arg(base.get_program());
            c
        }
        None => std::process::Command::new(base.get_program()),
    };
    cmd.args(base.get_args()).arg("run").env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let mut peak = 0;
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        peak = peak.max(peak_mib(child.id()));
        if done() || started.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if exited.is_none() {
        // SAFETY: SIGTERM to the daemon this test started.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().unwrap();
    }
    (peak, exited)
}

fn outcomes(inst: &Installation) -> Vec<(String, String, Option<String>)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", inst.path("intake.db").display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT source_ref, outcome, error FROM messages ORDER BY source_ref")
                .fetch_all(&pool)
                .await
                .unwrap();
        rows
    })
}

#[test]
fn the_daemon_settles_every_hostile_input_and_stays_small() {
    let inst = Installation::new("");
    let mail = hostile();
    let total = mail.len() + 1;
    for (i, (name, raw)) in mail.into_iter().enumerate() {
        inst.deliver(&format!("{i:02}.{name}.test"), &raw);
    }
    inst.deliver("99.valid.test", &sample_mail(0));
    let started = Instant::now();
    let limit = Duration::from_secs(MAX_SECS * 2);
    let (peak, exited) = run_daemon_until(&inst, &[], &[], limit, || {
        inst.count("maildir/cur") == total
    });
    eprintln!(
        "daemon: {total} emails in {:.1?}, peak {peak} MiB",
        started.elapsed()
    );
    assert!(exited.is_none(), "the daemon stopped: {exited:?}");
    assert_eq!(inst.count("maildir/cur"), total, "every email settled");
    let rows = outcomes(&inst);
    assert_eq!(rows.len(), total, "one outcome per email: {rows:?}");
    assert!(inst.count("outbox") >= 1, "the valid email is answered");
    assert!(peak < MAX_PEAK_MIB, "the daemon's peak: {peak} MiB");
}

fn poison_and_valid(inst: &Installation) {
    let mut spec = MailSpec::new(
        "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
        "poison",
        "<poison@bounded.tjid>",
        "Wed, 18 Nov 2026 10:00:00 +0100",
    );
    spec = spec.attach_pdf("a.pdf", cmap_bomb());
    inst.deliver("01.poison.test", &build(&spec));
    inst.deliver("02.valid.test", &sample_mail(0));
}

/// The daemon dies while reading one email (the test hook aborts it, as an allocation failure
/// under a memory limit does), is started again as systemd would: after at most two attempts
/// the email is quarantined unread, with its reason, and the valid one is answered.
#[test]
fn an_email_the_daemon_dies_on_is_quarantined_without_a_crash_loop() {
    let inst = Installation::new("");
    poison_and_valid(&inst);
    let mut deaths = 0;
    for start in 0..5 {
        let (_, exited) = run_daemon_until(
            &inst,
            &[],
            &[("TJID_DEBUG_ABORT_ON_SUBJECT", "poison")],
            Duration::from_secs(20),
            || inst.count("maildir/cur") == 2 && inst.count("outbox") >= 1,
        );
        match exited {
            Some(status) => {
                eprintln!("start {start}: the daemon died ({status})");
                deaths += 1;
            }
            None => break,
        }
    }
    assert!(deaths <= 2, "{deaths} deaths: a crash loop");
    assert!(deaths >= 1, "the test hook did not fire");
    assert_eq!(inst.count("maildir/cur"), 2);
    assert!(inst.count("outbox") >= 1, "the valid email is answered");
    let rows = outcomes(&inst);
    let poison = rows
        .iter()
        .find(|r| r.0.contains("poison"))
        .expect("the poison email is recorded");
    assert_eq!(poison.1, "quarantined", "{rows:?}");
    let error = poison.2.as_deref().unwrap_or("");
    assert!(
        error.starts_with("processing stopped before it finished"),
        "{error}"
    );
    let valid = rows.iter().find(|r| r.0.contains("valid")).unwrap();
    assert_eq!(valid.1, "processed");
}

/// Under an address-space limit (what `LimitAS=`/`MemoryMax=` give) the CMap bomb is read in a
/// worker: the daemon neither aborts nor loops, and the valid email is answered.
#[test]
fn under_a_memory_limit_the_daemon_survives_the_cmap_bomb() {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("\n!!!!!!!! SKIPPED: prlimit (util-linux) is not installed !!!!!!!!\n");
        assert!(
            std::env::var_os("CI").is_none(),
            "prlimit is required in CI"
        );
        return;
    }
    let inst = Installation::new("");
    poison_and_valid(&inst);
    let (peak, exited) = run_daemon_until(
        &inst,
        &["prlimit", "--as=1500000000", "--"],
        &[],
        Duration::from_secs(MAX_SECS),
        || inst.count("maildir/cur") == 2 && inst.count("outbox") >= 1,
    );
    assert!(exited.is_none(), "the daemon stopped: {exited:?}");
    assert_eq!(inst.count("maildir/cur"), 2);
    assert!(inst.count("outbox") >= 1);
    let rows = outcomes(&inst);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(peak < MAX_PEAK_MIB, "the daemon's peak: {peak} MiB");
}

/// The attempts of poison protection, on both backends: counted per source and content,
/// started afresh for other content, forgotten once settled.
async fn attempts_contract(store: tjid_intake::store::Store) {
    assert_eq!(
        store.unfinished_attempts("maildir:a", "h1").await.unwrap(),
        0
    );
    assert_eq!(store.begin_attempt("maildir:a", "h1", 1).await.unwrap(), 0);
    assert_eq!(
        store.unfinished_attempts("maildir:a", "h1").await.unwrap(),
        1
    );
    assert_eq!(store.begin_attempt("maildir:a", "h1", 2).await.unwrap(), 1);
    assert_eq!(
        store.unfinished_attempts("maildir:a", "h1").await.unwrap(),
        2
    );
    // The same reference with other content (an IMAP UID after UIDVALIDITY changed).
    assert_eq!(
        store.unfinished_attempts("maildir:a", "h2").await.unwrap(),
        0
    );
    assert_eq!(store.begin_attempt("maildir:a", "h2", 3).await.unwrap(), 0);
    assert_eq!(store.begin_attempt("maildir:b", "h1", 3).await.unwrap(), 0);
    store.end_attempt("maildir:a").await.unwrap();
    assert_eq!(
        store.unfinished_attempts("maildir:a", "h2").await.unwrap(),
        0
    );
    assert_eq!(
        store.unfinished_attempts("maildir:b", "h1").await.unwrap(),
        1
    );
}

#[test]
fn attempts_are_kept_the_same_way_on_sqlite_and_postgresql() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = tjid_intake::store::Store::open_sqlite(&dir.path().join("s.db"))
            .await
            .unwrap();
        attempts_contract(sqlite).await;
        if let Some(db) = pg::PgDatabase::create().await {
            let pg = tjid_intake::store::Store::open_postgres(&db.url)
                .await
                .unwrap();
            attempts_contract(pg).await;
            drop(db);
        }
    });
}

/// A worker that dies or uses up its processor time is killed and replaced: its attachment is
/// unreadable (answered as such), and the next email is read by a fresh worker.
#[test]
fn a_worker_that_dies_or_spins_is_replaced_and_its_attachment_is_unreadable() {
    let inst = Installation::new("[limits]\nworker_cpu_secs = 1\n[ocr]\nworkers = 1\n");
    let dir = inst.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = |subject: &str, file: &str| {
        let spec = MailSpec::new(
            "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
            subject,
            &format!("<{subject}@bounded.tjid>"),
            "Wed, 18 Nov 2026 10:00:00 +0100",
        );
        build(&spec.attach_pdf(file, cmap_bomb()))
    };
    std::fs::write(dir.join("a.eml"), spec("a", "dies.pdf")).unwrap();
    std::fs::write(dir.join("b.eml"), spec("b", "spins.pdf")).unwrap();
    std::fs::write(dir.join("c.eml"), sample_mail(0)).unwrap();
    for (hook, slow) in [("abort:dies.pdf", false), ("spin:spins.pdf", true)] {
        let started = Instant::now();
        let out = inst
            .command()
            .env("TJID_DEBUG_WORKER_HOOK", hook)
            .env("RUST_LOG", "warn")
            .args(["process", "--dry-run", "--json", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let victim = if slow { &lines[1] } else { &lines[0] };
        assert_eq!(
            victim["cases"][0]["reasons"][0]["code"], "unreadable_attachment",
            "{hook}: {victim}"
        );
        let cause = if slow {
            "processor time"
        } else {
            "its reader stopped"
        };
        assert!(stderr.contains(cause), "{hook}: {stderr}");
        assert_eq!(lines[2]["decision"], "processed", "{hook}: {}", lines[2]);
        let reasons = lines[2]["cases"][0]["reasons"].as_array().unwrap();
        assert!(
            reasons.iter().all(|r| r["code"] != "unreadable_attachment"),
            "{hook}: {}",
            lines[2]
        );
        assert!(started.elapsed() < Duration::from_secs(MAX_SECS));
    }
}

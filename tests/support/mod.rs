//! Shared pieces of the integration tests: a throwaway installation (config, Maildir, SQLite,
//! reply folder in a temp dir) and test mail built with the project's own form writer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tjid_intake::forms::spec::FormKind;
use tjid_testkit::mime::{build, MailSpec};
use tjid_testkit::pdf_writer::{example_values, render, FilledForm, Layout};

pub const BIN: &str = env!("CARGO_BIN_EXE_tjid-intake");

pub struct Installation {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Installation {
    pub fn new(extra: &str) -> Installation {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = dir.path().join("config.toml");
        let text = format!(
            "[kiv]\nldif = {:?}\n[providers]\ncsv = {:?}\n[intake]\nown_address = \"tjansteid-intake@vgregion.se\"\nrequire_authenticated_sender = false\nauthserv_id = \"mx.vgregion.se\"\n[source]\nmaildir = {:?}\npoll_interval_ms = 50\n[store]\nsqlite = {:?}\n[sink]\ndir = {:?}\n[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n[http]\nlisten = \"\"\n{extra}",
            root.join("fixtures/kiv.ldif"),
            root.join("fixtures/providers.csv"),
            dir.path().join("maildir"),
            dir.path().join("intake.db"),
            dir.path().join("outbox"),
        );
        std::fs::write(&config, text).unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join("maildir").join(sub)).unwrap();
        }
        Installation { dir, config }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(BIN);
        c.arg("--config").arg(&self.config).env("RUST_LOG", "warn");
        c
    }

    /// Delivers a message into the Maildir the way an MTA does: write to tmp/, rename to new/.
    pub fn deliver(&self, name: &str, raw: &[u8]) {
        let tmp = self.path("maildir/tmp").join(name);
        std::fs::write(&tmp, raw).unwrap();
        std::fs::rename(&tmp, self.path("maildir/new").join(name)).unwrap();
    }

    pub fn count(&self, rel: &str) -> usize {
        std::fs::read_dir(self.path(rel))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Emails of every kind the pipeline decides differently: valid and incomplete orders,
/// a deregistration, a mail with no form, an auto-reply.
pub fn sample_mail(i: usize) -> Vec<u8> {
    let order = example_values(FormKind::Order);
    let mut incomplete = order.clone();
    incomplete.remove("mobil");
    let dereg = example_values(FormKind::Deregistration);
    let spec = MailSpec::new(
        "Örjan Lindqvist <orjan.lindqvist@vgregion.se>",
        &format!("Blankett {i}"),
        &format!("<sample-{i}@test.tjid>"),
        "Wed, 18 Nov 2026 10:00:00 +0100",
    );
    let form = |kind, layout, values| {
        render(&[FilledForm {
            kind,
            layout,
            values,
        }])
        .unwrap()
    };
    let spec = match i % 5 {
        0 => spec.attach_pdf("b.pdf", form(FormKind::Order, Layout::SameLine, &order)),
        1 => spec.attach_pdf("b.pdf", form(FormKind::Order, Layout::Fillable, &order)),
        2 => spec.attach_pdf("b.pdf", form(FormKind::Order, Layout::Table, &incomplete)),
        3 => spec.attach_pdf(
            "a.pdf",
            form(FormKind::Deregistration, Layout::SameLine, &dereg),
        ),
        _ => spec,
    };
    build(&spec)
}

//! The store contract, run against both backends: each test body is written once as
//! `async fn contract_x(b: Backend)` and `contract!` runs it on SQLite (a temp file) and on
//! PostgreSQL (a fresh database, dropped afterwards). Mail goes in through the real intake
//! (`process --json`), so what is checked is what the daemon writes.
//!
//! Below the contract: the golden decisions on both backends, the PostgreSQL concurrency
//! promises (outbox claims, case numbers) and `migrate-store`.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::path::Path;
use std::sync::Arc;

use pg::PgDatabase;
use support::Installation;
use tjid_intake::casework::lifecycle::{apply, Action, Request};
use tjid_intake::config::Settings;
use tjid_intake::pipeline::reply::ReplySettings;
use tjid_intake::store::{CaseFilter, ImapPosition, MailRecord, Recorded, Store, WaitingMail};

const REPLY: ReplySettings<'static> = ReplySettings {
    own_address: "tjansteid-intake@vgregion.se",
    display_name: "TjänsteID-service",
    office_address: "tjansteid@vgregion.se",
};

/// One installation with its store on one backend.
pub struct Backend {
    inst: Installation,
    pg: Option<PgDatabase>,
}

impl Backend {
    fn sqlite() -> Backend {
        Backend {
            inst: Installation::new(""),
            pg: None,
        }
    }

    /// `None`: PostgreSQL is not here and this is not CI (skipped loudly).
    async fn postgres() -> Option<Backend> {
        let pg = PgDatabase::create().await?;
        Some(Backend {
            inst: Installation::new(""),
            pg: Some(pg),
        })
    }

    fn name(&self) -> &'static str {
        if self.pg.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match &self.pg {
            Some(pg) => vec![
                ("TJID__STORE__KIND".into(), "postgres".into()),
                ("TJID__STORE__URL".into(), pg.url.clone()),
            ],
            None => Vec::new(),
        }
    }

    fn settings(&self) -> Settings {
        Settings::load_with_env(Some(&self.inst.config), self.env()).unwrap()
    }

    async fn store(&self) -> Store {
        Store::open(&self.settings().store).await.unwrap()
    }

    /// Runs statements on the store's database outside the store, one at a time.
    async fn sql(&self, statements: &[&str]) {
        let store = self.settings().store;
        match &self.pg {
            Some(pg) => {
                let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
                for q in statements {
                    // The test's own statements.
                    sqlx::query(sqlx::AssertSqlSafe(*q))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&store.sqlite);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                for q in statements {
                    // The test's own statements.
                    sqlx::query(sqlx::AssertSqlSafe(*q))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
        }
    }

    fn command(&self) -> std::process::Command {
        let mut c = self.inst.command();
        c.envs(self.env());
        c
    }

    /// `process --json` of these fixtures (fixtures/mail/NAME.eml), one JSON value per email
    /// in the order given.
    fn process(&self, names: &[&str]) -> Vec<serde_json::Value> {
        let input = self
            .inst
            .path(&format!("in-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&input).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        for name in names {
            let to = input.join(format!("{name}.eml"));
            std::fs::copy(root.join(format!("fixtures/mail/{name}.eml")), &to).unwrap();
            paths.push(to);
        }
        let out = self
            .command()
            .args(["process", "--json"])
            .args(&paths)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "process on {}: {}",
            self.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Backend {
    /// Records these fixtures through the intake in this process, as the daemon does: their
    /// replies stay pending in the outbox (`process` would deliver them).
    async fn record(&self, store: &Store, names: &[&str]) {
        let intake =
            Arc::new(tjid_intake::pipeline::Intake::load(self.settings().intake_parts()).unwrap());
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let inputs = names
            .iter()
            .map(|name| tjid_intake::source::Input {
                display: name.to_string(),
                source_ref: format!("test:{name}:{}", uuid::Uuid::new_v4().simple()),
                raw: std::fs::read(root.join(format!("fixtures/mail/{name}.eml"))).unwrap(),
                oversized: None,
            })
            .collect();
        let recorder = tjid_intake::pipeline::Recorder::Store(store.clone());
        intake
            .process_batch(
                inputs,
                tjid_intake::pipeline::Order::AsGiven,
                &recorder,
                |_, _| Ok(()),
            )
            .await
            .unwrap();
    }
}

macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::sqlite()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(b) = super::Backend::postgres().await else {
                    return;
                };
                super::$name(b).await
            }
        }
    };
}

fn case_ids(outcomes: &[serde_json::Value]) -> Vec<String> {
    outcomes
        .iter()
        .flat_map(|o| o["cases"].as_array().unwrap().iter())
        .map(|c| c["case_id"].as_str().unwrap().to_string())
        .collect()
}

const MAIL: &[&str] = &[
    "order_table_ok",
    "order_person_not_in_kiv",
    "dereg_table_ok",
    "ignored_auto_reply",
    "no_form_question",
    "order_acroform_ok",
];

contract!(contract_recording_and_staff_reads);
async fn contract_recording_and_staff_reads(b: Backend) {
    let out = b.process(MAIL);
    let ids = case_ids(&out);
    let year = chrono::Utc::now().format("%Y").to_string();
    let numbers: Vec<String> = (1..=ids.len())
        .map(|n| format!("TJID-{year}-{n:06}"))
        .collect();
    assert_eq!(ids, numbers, "case numbers run 1, 2, 3 … without gaps");
    let store = b.store().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.messages, MAIL.len() as i64);
    assert_eq!(counts.cases, ids.len() as i64);

    assert!(counts.outbox_pending + counts.outbox_sent > 0);
    // Each `process` run is a new delivery: the same emails again are ignored duplicates.
    let again = b.process(MAIL);
    assert_eq!(again.len(), MAIL.len());
    assert!(
        again.iter().all(|o| o["decision"] == "ignored"),
        "{again:?}"
    );
    assert_eq!(store.counts().await.unwrap().cases, counts.cases);
    // A replay of one source reference (a crash before its acknowledgement) records nothing.
    let first = store.case_detail(&ids[0]).await.unwrap().unwrap();
    let replay = MailRecord {
        source_ref: first.case.source_ref.clone(),
        message_id: None,
        content_hash: String::new(),
        received_at: 0,
        email_date: None,
        sender: None,
        subject: String::new(),
        headers: String::new(),
        ignored: None,
        error: None,
        bounce: None,
    };
    let none = |_: &_, _: &str, _: &str| None;
    let r = store.record(&replay, &[], &none, 0).await.unwrap();
    assert_eq!(r, Recorded::AlreadyRecorded);
    let before = store.counts().await.unwrap();

    let all = store
        .list_cases(&CaseFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let listed: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    let mut newest_first: Vec<&str> = ids.iter().map(String::as_str).collect();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    let oldest = store
        .list_cases(&CaseFilter {
            limit: 2,
            oldest_first: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(oldest.len(), 2);
    assert_eq!(oldest[0].id, ids[0]);

    let rejected = store
        .list_cases(&CaseFilter {
            decision: Some("rejected".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!rejected.is_empty());
    assert!(rejected.iter().all(|c| c.decision == "rejected"));
    let code = {
        let reasons: serde_json::Value = serde_json::from_str(&rejected[0].reasons).unwrap();
        reasons[0]["code"].as_str().unwrap().to_string()
    };
    let by_reason = store
        .list_cases(&CaseFilter {
            reason: Some(code.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_reason.iter().any(|c| c.id == rejected[0].id));
    assert!(by_reason.iter().all(|c| c.reasons.contains(&code)));

    // The unit filter and its choices: unit HSA-ids, upper-case, sorted.
    let queued = CaseFilter {
        state: Some("queued".into()),
        limit: 100,
        ..Default::default()
    };
    let units = store.case_units(&queued).await.unwrap();
    assert!(!units.is_empty());
    let mut sorted = units.clone();
    sorted.sort();
    assert_eq!(units, sorted);
    assert!(units.iter().all(|u| *u == u.to_uppercase()), "{units:?}");
    let in_unit = store
        .list_cases(&CaseFilter {
            unit: Some(units[0].to_lowercase()),
            ..queued.clone()
        })
        .await
        .unwrap();
    assert!(!in_unit.is_empty());
    assert!(in_unit
        .iter()
        .all(|c| c.fields.to_uppercase().contains(&units[0])));

    // Counting and paging: the count ignores limit and offset; pages do not overlap.
    let total = store.count_cases(&CaseFilter::default()).await.unwrap();
    assert_eq!(total, ids.len() as i64);
    assert_eq!(
        store
            .count_cases(&CaseFilter {
                decision: Some("rejected".into()),
                limit: 1,
                offset: 1,
                ..Default::default()
            })
            .await
            .unwrap(),
        rejected.len() as i64
    );
    let second = store
        .list_cases(&CaseFilter {
            limit: 2,
            offset: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let second: Vec<&str> = second.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(second, newest_first[2..4].to_vec());
    // The period: last changed within [from, before).
    let newest = &all[0];
    let in_period = store
        .list_cases(&CaseFilter {
            changed_from: Some(newest.updated_at),
            changed_before: Some(newest.updated_at + 1),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(in_period.iter().any(|c| c.id == newest.id));
    assert!(in_period.iter().all(|c| c.updated_at == newest.updated_at));
    assert!(store
        .list_cases(&CaseFilter {
            changed_from: Some(newest.updated_at + 1),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());

    assert_eq!(store.counts().await.unwrap(), before);
    // Search: case number, personnummer, unit HSA-id (any case).
    assert_eq!(
        store.search(&ids[0].to_lowercase(), 10, 0).await.unwrap()[0].id,
        ids[0]
    );
    let fields: serde_json::Value = serde_json::from_str(&first.case.fields).unwrap();
    let pnr = fields["personnummer"].as_str().unwrap();
    let found = store.search(pnr, 10, 0).await.unwrap();
    assert!(
        found.iter().any(|c| c.id == ids[0]),
        "search by personnummer"
    );
    let hsa = fields["vardenhet_hsaid"].as_str().unwrap().to_lowercase();
    let found = store.search(&hsa, 10, 0).await.unwrap();
    assert!(
        found.iter().any(|c| c.id == ids[0]),
        "search by unit HSA-id"
    );
    assert!(store.search("  ", 10, 0).await.unwrap().is_empty());
    // Free text: a part of the name, the subject, the sender, the unit; wildcards are text.
    let first_name = fields["fornamn"].as_str().unwrap();
    for q in [
        first_name.to_string(),
        first_name.to_lowercase(),
        "ekmansgatan".into(),
        "LINDQVIST@".into(),
        "Fråga om kort".into(),
    ] {
        assert!(!store.search(&q, 50, 0).await.unwrap().is_empty(), "{q}");
    }
    assert!(store.search("%%%", 50, 0).await.unwrap().is_empty());
    assert!(store.search("a_b", 50, 0).await.unwrap().is_empty());
    // Issue 21: a case number's tail, a name without its diacritics, KIV's spelling, the
    // organisation number; all words must match.
    let tail = ids[0].rsplit('-').next().unwrap().trim_start_matches('0');
    let folded: String = tjid_intake::store::terms::words(first_name).join(" ");
    let orgnr = fields["vardgivare_orgnr"].as_str().unwrap();
    let kiv = first.case.kiv_name.clone().expect("KIV knew the person");
    for q in [
        tail.to_string(),
        format!("000{tail}"),
        folded.to_uppercase(),
        kiv.clone(),
        orgnr.to_string(),
        orgnr.replace('-', ""),
    ] {
        let found = store.search(&q, 50, 0).await.unwrap();
        assert!(found.iter().any(|c| c.id == ids[0]), "{q} on {}", b.name());
    }
    assert!(store
        .search(&format!("{first_name} zzzyx"), 50, 0)
        .await
        .unwrap()
        .is_empty());
    // The cases of one email, for its view on a case page.
    let siblings = store.message_cases(&first.case.message_row).await.unwrap();
    assert_eq!(siblings.len(), 1);
    assert_eq!(siblings[0].id, ids[0]);
    assert_eq!(siblings[0].attachment_index, first.case.attachment_index);

    // The case page: the reply and the audit trail in the order written.
    assert_eq!(first.replies.len(), 1);
    assert_eq!(first.replies[0].id, format!("{}-1", ids[0]));
    assert_eq!(first.audit[0].action, "created");
    assert!(store
        .case_detail("TJID-1999-000001")
        .await
        .unwrap()
        .is_none());
    let qc = store.queue_counts().await.unwrap();
    assert_eq!(qc.rejected as usize, rejected.len());
    // The overview's figures (issue 21): the same cases, counted by kind and decision, and the
    // time of the oldest in each list.
    let received = store.received_since(0).await.unwrap();
    let rejected_received: i64 = received
        .iter()
        .filter(|r| r.decision == "rejected")
        .map(|r| r.n)
        .sum();
    assert!(rejected_received as usize >= rejected.len(), "{received:?}");
    assert!(store.received_since(i64::MAX).await.unwrap().is_empty());
    let oldest = store.oldest_waiting().await.unwrap();
    assert_eq!(oldest.rejected.is_some(), qc.rejected > 0);
    assert_eq!(oldest.held_replies.is_some(), qc.held_replies > 0);
    let mail = store.unprocessed_mail(10, 0).await.unwrap();
    assert!(mail
        .iter()
        .any(|m| m.ignored_reason.as_deref() == Some("duplicate")));
    let one = store.mail(&mail[0].id).await.unwrap().unwrap();
    store.mark_reprocessed(&one.id, 5).await.unwrap();
    assert_eq!(
        store.mail(&one.id).await.unwrap().unwrap().reprocessed_at,
        Some(5)
    );
    assert!(store.source_recorded(&first.case.source_ref).await.unwrap());
    assert_eq!(
        store
            .source_outcome(&first.case.source_ref)
            .await
            .unwrap()
            .as_deref(),
        Some("processed")
    );
}

contract!(contract_outbox_hand_over_fences_the_end_of_data);
/// The commit an SMTP send makes just before its end of data: only under the sender's own
/// claim, once; a handed-over reply is sent and not taken again; a refusal at the end of data
/// makes it pending again.
async fn contract_outbox_hand_over_fences_the_end_of_data(b: Backend) {
    let first = b.store().await;
    b.record(&first, &["order_table_ok"]).await;
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let taken = first.take_due_replies(now, 10, 1_000).await.unwrap();
    assert_eq!(taken.len(), 1);
    let id = &taken[0].id;
    // The claim ran out and a second sender took the reply: the first may not end its data.
    let later = now + 2_000;
    let second = b.store().await;
    assert_eq!(
        second
            .take_due_replies(later, 10, 60_000)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!first.reply_handed_over(id, later).await.unwrap());
    assert!(second.reply_handed_over(id, later).await.unwrap());
    assert!(!second.reply_handed_over(id, later).await.unwrap(), "once");
    let c = second.counts().await.unwrap();
    assert_eq!(
        (c.outbox_pending, c.outbox_sent),
        (0, 1),
        "sent from the hand-over on"
    );
    assert!(second
        .take_due_replies(later + 120_000, 10, 1_000)
        .await
        .unwrap()
        .is_empty());
    // A 4xx answer to the end of data: pending again, and taken again.
    second
        .reply_retry(id, later, "451 try later", later)
        .await
        .unwrap();
    let again = second.take_due_replies(later, 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(second.reply_handed_over(id, later + 1).await.unwrap());
    // Its sender is gone and no answer was recorded: within the deadline nothing happens,
    // past it the reply is held in doubt, not taken again by itself, and staff may release it.
    assert!(second
        .hold_replies_in_doubt(later, later + 5)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        second
            .hold_replies_in_doubt(later + 1, later + 5)
            .await
            .unwrap(),
        std::slice::from_ref(id)
    );
    let c = second.counts().await.unwrap();
    assert_eq!((c.outbox_sent, c.outbox_held), (0, 1));
    // A late answer from the sender that handed it over changes nothing (issue 23): held it
    // stays, for staff.
    second
        .reply_retry(id, later + 6, "451 late", later + 6)
        .await
        .unwrap();
    second
        .reply_failed(id, later + 6, "550 late")
        .await
        .unwrap();
    second.reply_sent(id, later + 6, "250 late").await.unwrap();
    let c = second.counts().await.unwrap();
    assert_eq!((c.outbox_pending, c.outbox_sent, c.outbox_held), (0, 0, 1));
    assert!(second
        .take_due_replies(later + 10, 10, 1_000)
        .await
        .unwrap()
        .is_empty());
    let case_id = &taken[0].case_id;
    let detail = second.case_detail(case_id).await.unwrap().unwrap();
    assert!(detail.audit.iter().any(|a| a.action == "reply_held"
        && a.comment
            .as_deref()
            .is_some_and(|c| c.starts_with(tjid_intake::store::IN_DOUBT))));
    assert_eq!(
        second
            .release_held(case_id, Some(id), "anna", later + 6)
            .await
            .unwrap(),
        1
    );
    let again = second
        .take_due_replies(later + 10, 10, 1_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(second.reply_handed_over(id, later + 11).await.unwrap());
    second
        .reply_sent(id, later + 12, "accepted: 250 ok")
        .await
        .unwrap();
    let c = second.counts().await.unwrap();
    assert_eq!((c.outbox_pending, c.outbox_sent, c.outbox_held), (0, 1, 0));
}

contract!(contract_an_upgrade_holds_the_replies_the_earlier_form_left_in_doubt);
/// The previous version marked a reply `sending` (still pending) before SMTP and sent it again
/// later when the mark stayed; the upgrade's migration holds such a reply for staff instead.
async fn contract_an_upgrade_holds_the_replies_the_earlier_form_left_in_doubt(b: Backend) {
    let store = b.store().await;
    b.record(&store, &["order_table_ok", "dereg_table_ok"])
        .await;
    let taken = store
        .take_due_replies(i64::MAX - 1, 1, 1_000)
        .await
        .unwrap();
    drop(store);
    // Back to what the previous version could leave behind, before the migration.
    let mark = format!(
        "UPDATE outbox SET sending_at = 5 WHERE id = '{}'",
        taken[0].id
    );
    b.sql(&[
        &mark,
        "DROP INDEX outbox_awaiting_answer",
        "DELETE FROM _sqlx_migrations WHERE version = 20270101000001",
    ])
    .await;
    let store = b.store().await;
    let c = store.counts().await.unwrap();
    assert_eq!((c.outbox_pending, c.outbox_held), (1, 1));
    let held = store.held_replies(10, 0).await.unwrap();
    assert_eq!(held[0].id, taken[0].id);
    assert!(held[0]
        .last_error
        .as_deref()
        .is_some_and(|e| e.starts_with(tjid_intake::store::IN_DOUBT)));
    let detail = store.case_detail(&held[0].case_id).await.unwrap().unwrap();
    assert!(detail.audit.iter().any(|a| a.action == "reply_held"));
}

contract!(contract_outbox_a_pass_drops_its_own_stale_claims);
/// A reply claimed by a pass whose store call then failed is taken again by the next pass of
/// the same store at once; another store's claim stays until it runs out.
async fn contract_outbox_a_pass_drops_its_own_stale_claims(b: Backend) {
    let mine = b.store().await;
    b.record(&mine, &["order_table_ok", "dereg_table_ok"]).await;
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let other = b.store().await;
    assert_eq!(
        other.take_due_replies(now, 1, 600_000).await.unwrap().len(),
        1
    );
    assert_eq!(
        mine.take_due_replies(now, 10, 600_000).await.unwrap().len(),
        1
    );
    assert!(mine
        .take_due_replies(now, 10, 600_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(mine.drop_my_claims().await.unwrap(), 1);
    assert_eq!(
        mine.take_due_replies(now, 10, 600_000).await.unwrap().len(),
        1,
        "mine again"
    );
}

contract!(contract_outbox_take_and_settle);
async fn contract_outbox_take_and_settle(b: Backend) {
    let store = b.store().await;
    b.record(
        &store,
        &[
            "order_table_ok",
            "order_person_not_in_kiv",
            "dereg_table_ok",
        ],
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let due = store.due_replies(now, 100).await.unwrap();
    assert_eq!(due.len(), 3);
    let taken = store.take_due_replies(now, 2, 60_000).await.unwrap();
    let ids: Vec<&str> = taken.iter().map(|r| r.id.as_str()).collect();
    let oldest: Vec<&str> = due[..2].iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, oldest, "oldest first");
    // Claimed: a second taker (the same store, or another instance) gets only the rest.
    let rest = store.take_due_replies(now, 10, 60_000).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, due[2].id);
    assert!(store
        .take_due_replies(now, 10, 60_000)
        .await
        .unwrap()
        .is_empty());
    // A claim runs out (its instance died): the reply is taken again.
    let later = store
        .take_due_replies(now + 60_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(later.len(), 3);

    store.reply_sent(&due[0].id, now, "250 ok").await.unwrap();
    store
        .reply_retry(&due[1].id, now, "421 busy", now + 5_000)
        .await
        .unwrap();
    store.reply_failed(&due[2].id, now, "550 no").await.unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!(
        (c.outbox_pending, c.outbox_sent, c.outbox_failed),
        (1, 1, 1)
    );
    // Settled replies are free of their claim: the retried one is due at its next time.
    assert!(store
        .take_due_replies(now + 4_000, 10, 60_000)
        .await
        .unwrap()
        .is_empty());
    let retry = store
        .take_due_replies(now + 5_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(
        store
            .replies_sent_to(&due[0].recipient.to_uppercase(), 0)
            .await
            .unwrap(),
        1
    );

    // Held by the rate limit, then released by staff.
    store.reply_held(&retry[0].id, now, "limit").await.unwrap();
    assert_eq!(store.counts().await.unwrap().outbox_held, 1);
    // The "Spärrade svar" list and its count in the navigation.
    assert_eq!(store.queue_counts().await.unwrap().held_replies, 1);
    let held = store.held_replies(10, 0).await.unwrap();
    assert_eq!(held.len(), 1, "{}", b.name());
    assert_eq!(
        (held[0].id.as_str(), held[0].case_id.as_str()),
        (retry[0].id.as_str(), retry[0].case_id.as_str())
    );
    assert_eq!(held[0].recipient, retry[0].recipient);
    assert!(!held[0].subject.is_empty());
    assert_eq!(held[0].last_error.as_deref(), Some("limit"));
    assert_eq!(
        held[0].held_at, now,
        "held since the hold, not the creation"
    );
    // Releasing another reply of the case releases nothing.
    let other = format!("{}-9", retry[0].case_id);
    assert_eq!(
        store
            .release_held(&retry[0].case_id, Some(&other), "anna", now + 6_000)
            .await
            .unwrap(),
        0
    );
    let released = store
        .release_held(&retry[0].case_id, None, "anna", now + 6_000)
        .await
        .unwrap();
    assert_eq!(released, 1);
    assert!(store.held_replies(10, 0).await.unwrap().is_empty());
    assert_eq!(store.queue_counts().await.unwrap().held_replies, 0);
    let again = store
        .take_due_replies(now + 6_000, 10, 60_000)
        .await
        .unwrap();
    assert_eq!(again[0].released_by.as_deref(), Some("anna"));
    store
        .replies_sent(&[(again[0].id.clone(), "written".into())], now + 7_000)
        .await
        .unwrap();
    let detail = store.case_detail(&again[0].case_id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].status, "sent");
    let actions: Vec<&str> = detail.audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.ends_with(&["reply_held", "reply_released"]),
        "{actions:?}"
    );

    // The outbox worker over a reply folder sends what is due, once.
    b.record(&store, &["order_acroform_ok"]).await;
    let settings = b.settings();
    let sink = tjid_intake::sink::ReplySink::File(
        tjid_intake::sink::FileSink::open(&b.inst.path("outbox")).unwrap(),
    );
    let report =
        tjid_intake::outbox::deliver_due(&store, &sink, &settings.outbox, &settings.rate_limit)
            .await
            .unwrap();
    assert_eq!(report.sent, 1);
    assert_eq!(b.inst.count("outbox"), 1);
}

contract!(contract_a_failed_reply_is_resent_once);
async fn contract_a_failed_reply_is_resent_once(b: Backend) {
    let store = b.store().await;
    b.record(&store, &["order_table_ok", "dereg_table_ok"])
        .await;
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let due = store.due_replies(now, 100).await.unwrap();
    assert_eq!(due.len(), 2);
    let (failed, other) = (&due[0], &due[1]);
    store.reply_failed(&failed.id, now, "550 no").await.unwrap();
    // Nothing to resend on a case whose reply did not fail.
    assert!(store
        .resend_failed(&other.case_id, None, "anna", now + 1)
        .await
        .unwrap()
        .is_empty());
    let ids = store
        .resend_failed(&failed.case_id, Some(&failed.id), "anna", now + 1)
        .await
        .unwrap();
    assert_eq!(ids, [failed.id.as_str()], "{}", b.name());
    // Once: it is pending now, not failed.
    assert!(store
        .resend_failed(&failed.case_id, None, "anna", now + 2)
        .await
        .unwrap()
        .is_empty());
    let taken = store.take_due_replies(now + 3, 10, 60_000).await.unwrap();
    let again = taken.iter().find(|r| r.id == failed.id).expect("due again");
    assert_eq!(again.released_by.as_deref(), Some("anna"));
    let detail = store.case_detail(&failed.case_id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].status, "pending");
    let resent: Vec<_> = detail
        .audit
        .iter()
        .filter(|a| a.action == "reply_resent")
        .collect();
    assert_eq!(resent.len(), 1);
    assert_eq!(
        (
            resent[0].actor.as_str(),
            resent[0].before.as_deref(),
            resent[0].after.as_deref()
        ),
        ("anna", Some("failed"), Some("pending"))
    );
}

contract!(contract_lifecycle_users_retention);
async fn contract_lifecycle_users_retention(b: Backend) {
    let out = b.process(&[
        "order_table_ok",
        "order_person_not_in_kiv",
        "ignored_auto_reply",
    ]);
    let ids = case_ids(&out);
    let store = b.store().await;

    // Users and sessions.
    assert!(store
        .add_user("anna", "Anna", "$argon2id$x", 1)
        .await
        .unwrap());
    assert!(!store
        .add_user("anna", "Anna", "$argon2id$y", 2)
        .await
        .unwrap());
    assert!(store.add_user("bo", "Bo", "$argon2id$z", 2).await.unwrap());
    let users: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(users, ["anna", "bo"]);
    store
        .create_session("h1", "anna", "c1", 10, 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.session("h1", 20).await.unwrap().unwrap().display_name,
        "Anna"
    );
    assert!(
        store.session("h1", 1_000).await.unwrap().is_none(),
        "expired"
    );
    assert!(store.set_password("anna", "$argon2id$n", 30).await.unwrap());
    assert!(
        store.session("h1", 40).await.unwrap().is_none(),
        "a new password ends sessions"
    );
    store
        .create_session("h2", "bo", "c2", 10, 1_000)
        .await
        .unwrap();
    assert!(store.set_user_disabled("bo", true, 50).await.unwrap());
    assert!(store.session("h2", 60).await.unwrap().is_none());
    assert_eq!(store.user("bo").await.unwrap().unwrap().disabled, 1);
    store
        .create_session("h3", "anna", "c3", 10, 1_000)
        .await
        .unwrap();
    store.delete_session("h3").await.unwrap();
    assert!(store.session("h3", 20).await.unwrap().is_none());

    // The lifecycle: an order to handed out, its card recorded.
    let t0 = chrono::Utc::now().timestamp_millis();
    let card = "9752267900100000120";
    for action in [Action::OrderedAtTelia, Action::CardReady, Action::HandedOut] {
        apply(
            &store,
            &REPLY,
            t0,
            Request {
                case_id: ids[0].clone(),
                action,
                actor: "anna".into(),
                comment: Some("ringde".into()),
                card_number: Some(card.into()),
                checksum_confirmed: false,
            },
        )
        .await
        .unwrap();
    }
    let known = store.known_card(card).await.unwrap().unwrap();
    assert_eq!(known.order_case, ids[0]);
    assert!(store
        .deregistrations_of_card(card)
        .await
        .unwrap()
        .is_empty());
    // A transition from a state the case left is refused.
    let stale = apply(
        &store,
        &REPLY,
        t0,
        Request {
            case_id: ids[0].clone(),
            action: Action::CardReady,
            actor: "anna".into(),
            comment: None,
            card_number: None,
            checksum_confirmed: false,
        },
    )
    .await;
    assert!(stale.is_err());
    let lc = store.lifecycle_case(&ids[0]).await.unwrap().unwrap();
    assert_eq!(lc.state, "handed_out");
    assert_eq!(lc.card_number.as_deref(), Some(card));
    let detail = store.case_detail(&ids[0]).await.unwrap().unwrap();
    let audit: Vec<&str> = detail.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(audit[0], "created");
    assert!(audit.len() >= 4, "{audit:?}");

    // A wrong card number is corrected: with a comment, never to a number that fails its
    // check digit unconfirmed; the known card moves to the new number, the audit shows both.
    let correct = |number: &str, comment: Option<&str>, confirmed: bool| Request {
        case_id: ids[0].clone(),
        action: Action::CorrectCard,
        actor: "anna".into(),
        comment: comment.map(str::to_string),
        card_number: Some(number.into()),
        checksum_confirmed: confirmed,
    };
    let right = "9752267900100000138";
    for (request, expected) in [
        (correct(right, None, false), "CommentRequired"),
        (
            correct("9752267900100000121", Some("fel"), false),
            "ChecksumUnconfirmed",
        ),
        (correct(card, Some("samma"), false), "SameCardNumber"),
    ] {
        let err = apply(&store, &REPLY, t0, request).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(expected), "{err:?}");
    }
    apply(
        &store,
        &REPLY,
        t0 + 1,
        correct(right, Some("Skrev fel siffra"), false),
    )
    .await
    .unwrap();
    assert!(store.known_card(card).await.unwrap().is_none());
    assert_eq!(
        store.known_card(right).await.unwrap().unwrap().order_case,
        ids[0]
    );
    let lc = store.lifecycle_case(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (lc.state.as_str(), lc.card_number.as_deref()),
        ("handed_out", Some(right))
    );
    let detail = store.case_detail(&ids[0]).await.unwrap().unwrap();
    let last = detail.audit.last().unwrap();
    assert_eq!(last.action, "correct_card");
    assert_eq!(
        (last.before.as_deref(), last.after.as_deref()),
        (Some(card), Some(right))
    );

    // The closed list: handed out, deregistered and confirmed rejections only.
    let closed = CaseFilter {
        closed: true,
        limit: 100,
        ..Default::default()
    };
    let listed: Vec<String> = store
        .list_cases(&closed)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, [ids[0].clone()]);
    apply(
        &store,
        &REPLY,
        t0 + 2,
        Request {
            case_id: ids[1].clone(),
            action: Action::Confirm,
            actor: "anna".into(),
            comment: None,
            card_number: None,
            checksum_confirmed: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(store.count_cases(&closed).await.unwrap(), 2);
    for c in store.list_cases(&closed).await.unwrap() {
        assert!(
            tjid_intake::store::CLOSED_STATES.contains(&c.state.as_str()),
            "{}",
            c.state
        );
    }

    // Retention: the rejected case and the ignored mail go after their time.
    let before: serde_json::Value = serde_json::from_str(
        &store
            .case_detail(&ids[1])
            .await
            .unwrap()
            .unwrap()
            .case
            .fields,
    )
    .unwrap();
    let surname = before["efternamn"].as_str().unwrap().to_string();
    let found = |hits: Vec<tjid_intake::store::CaseSummary>| hits.iter().any(|c| c.id == ids[1]);
    assert!(found(store.search(&surname, 50, 0).await.unwrap()));
    let settings = b.settings();
    let day = tjid_intake::clock::DAY_MS;
    let r =
        tjid_intake::casework::retention::purge(&store, &settings.retention, None, t0 + 800 * day)
            .await
            .unwrap();
    assert_eq!(r.messages, 3, "{r:?}");
    assert_eq!((r.rejected_cases, r.completed_cases), (1, 1));
    let shell = store.case_detail(&ids[1]).await.unwrap().unwrap();
    assert_eq!(shell.case.fields, "{}");
    assert!(shell.case.purged_at.is_some());
    assert_eq!(shell.audit.last().unwrap().action, "purged");
    // Confirmed by staff before: it stays so.
    assert_eq!(shell.case.state, "rejection_confirmed");
    // The search index forgets the person with the rest; the shell is found by its number.
    assert!(!found(store.search(&surname, 50, 0).await.unwrap()));
    assert!(found(store.search(&ids[1], 50, 0).await.unwrap()));
    let again =
        tjid_intake::casework::retention::purge(&store, &settings.retention, None, t0 + 801 * day)
            .await
            .unwrap();
    assert_eq!((again.messages, again.rejected_cases), (0, 0));
    assert!(
        store.expired_on_server().await.unwrap().is_empty(),
        "no IMAP mail here"
    );
}

contract!(contract_waiting_and_imap_state);
async fn contract_waiting_and_imap_state(b: Backend) {
    let store = b.store().await;
    let mail = WaitingMail {
        source_ref: "maildir:a".into(),
        message_id: Some("<a@x>".into()),
        sender: None,
        subject: "s".into(),
        error: "ldap down".into(),
    };
    assert_eq!(
        store.mark_waiting(&mail, 1_000, 100, 1_000).await.unwrap(),
        1
    );
    assert_eq!(
        store.mark_waiting(&mail, 2_000, 100, 1_000).await.unwrap(),
        2
    );
    let rows = store.list_waiting().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].first_seen_at, rows[0].next_attempt_at),
        (1_000, 2_200)
    );
    assert!(store
        .waiting_not_due(2_100)
        .await
        .unwrap()
        .contains("maildir:a"));
    assert!(store.waiting_not_due(2_200).await.unwrap().is_empty());
    assert_eq!(store.counts().await.unwrap().kiv_waiting, 1);
    store.clear_waiting("maildir:a").await.unwrap();
    assert!(store.list_waiting().await.unwrap().is_empty());

    assert_eq!(store.imap_position("u@h:993/INBOX").await.unwrap(), None);
    let pos = ImapPosition {
        uid_validity: u32::MAX,
        last_uid: 7,
    };
    store
        .set_imap_position("u@h:993/INBOX", pos, 1)
        .await
        .unwrap();
    store
        .set_imap_position("u@h:993/INBOX", pos, 2)
        .await
        .unwrap();
    assert_eq!(
        store.imap_position("u@h:993/INBOX").await.unwrap(),
        Some(pos)
    );
    store
        .erased_on_server(&["<a@x>".to_string()], 3)
        .await
        .unwrap();
}

/// `process --json` over every golden email with the golden configuration, on both backends:
/// each decision equals its golden file, and both backends give the same lines (case numbers
/// included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_decisions_identical_on_both_backends() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |env: Vec<(&str, String)>| {
        let out = std::process::Command::new(support::BIN)
            .current_dir(root)
            .env("OMP_THREAD_LIMIT", "1")
            .env("RUST_LOG", "warn")
            .env("TJID__STORE__ORIGINALS_DIR", dir.path().join("originals"))
            .envs(env)
            .args([
                "--config",
                "tests/golden.toml",
                "process",
                "--json",
                "fixtures/mail",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let sqlite = run(vec![(
        "TJID__STORE__SQLITE",
        dir.path().join("g.db").display().to_string(),
    )]);
    let postgres = run(vec![
        ("TJID__STORE__KIND", "postgres".into()),
        ("TJID__STORE__URL", pg.url.clone()),
    ]);
    let emails = support_count(&root.join("fixtures/mail"));
    assert_eq!(sqlite.lines().count(), emails);
    for (s, p) in sqlite.lines().zip(postgres.lines()) {
        assert_eq!(s, p, "SQLite and PostgreSQL decide alike");
        let mut actual: serde_json::Value = serde_json::from_str(s).unwrap();
        for case in actual["cases"].as_array_mut().unwrap() {
            case.as_object_mut().unwrap().remove("case_id");
            // The golden files are a dry run's (nothing stored): a stored run also flags an
            // order whose person already has an open one from an earlier email of the run.
            case["warnings"]
                .as_array_mut()
                .unwrap()
                .retain(|w| w["code"] != "open_order_exists");
        }
        let golden = root.join(actual["source"].as_str().unwrap().replace(".eml", ".json"));
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
        assert_eq!(actual, expected, "{}", golden.display());
    }
}

fn support_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count()
}

/// Two instances on one PostgreSQL database taking due replies at the same time never get the
/// same one, and between them take every one.
/// An instance restarted after a kill drops the claims of its earlier run at once; another
/// instance's claims are left to run out.
#[tokio::test]
async fn postgres_a_restarted_instance_takes_back_its_own_claims() {
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let first = b.store().await.named("a");
    b.record(&first, &["order_table_ok", "dereg_table_ok"])
        .await;
    let now = chrono::Utc::now().timestamp_millis() + 1_000;
    let taken = first.take_due_replies(now, 1, 600_000).await.unwrap();
    assert_eq!(taken.len(), 1);
    let other = b.store().await.named("b");
    assert_eq!(
        other
            .take_due_replies(now, 10, 600_000)
            .await
            .unwrap()
            .len(),
        1
    );
    // "a" killed and started again: its claim is dropped, "b"'s stays.
    let again = b.store().await.named("a");
    assert_eq!(again.drop_own_stale_claims().await.unwrap(), 1);
    let back = again.take_due_replies(now, 10, 600_000).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, taken[0].id);
    assert_eq!(
        other.drop_own_stale_claims().await.unwrap(),
        0,
        "b's own claim is current"
    );
    // "a" hands the reply over and is killed before the server's answer: its next run holds
    // the reply in doubt at once; "b" would wait for the deadline.
    assert!(again.reply_handed_over(&back[0].id, now).await.unwrap());
    assert!(other
        .hold_replies_in_doubt(now - 1, now)
        .await
        .unwrap()
        .is_empty());
    let third = b.store().await.named("a");
    assert_eq!(
        third.hold_replies_in_doubt(now - 1, now).await.unwrap(),
        [back[0].id.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_instances_never_take_the_same_reply() {
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let expected = {
        let s = b.store().await;
        b.record(&s, MAIL).await;
        s.counts().await.unwrap().outbox_pending as usize
    };
    assert!(expected > 0);
    // Many more replies: the same cases' rows copied under other ids.
    let url = b.pg.as_ref().unwrap().url.clone();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    for n in 2..=60 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO outbox (id, case_id, message_id, sender, recipient, subject, raw, status, attempts, created_at, next_attempt_at)
             SELECT id || '-x{n}', case_id, message_id, sender, recipient, subject, raw, status, attempts, created_at + {n}, next_attempt_at
             FROM outbox WHERE id NOT LIKE '%-x%'"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let total = expected * 60;
    let stores = [b.store().await, b.store().await, b.store().await];
    let now = chrono::Utc::now().timestamp_millis() + 1_000;
    let mut tasks = Vec::new();
    for store in stores {
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let taken = store.take_due_replies(now, 7, 600_000).await.unwrap();
                if taken.is_empty() {
                    return mine;
                }
                mine.extend(taken.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = Vec::new();
    let mut per_instance = Vec::new();
    for t in tasks {
        let mine = t.await.unwrap();
        per_instance.push(mine.len());
        all.extend(mine);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "a reply taken twice");
    assert_eq!(n, total, "every reply taken: {per_instance:?}");
}

/// N emails recorded at once by three instances: case numbers 1..=N, no gap, no double; and
/// two copies of one email recorded at once by two instances: one case, one duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_recording_numbers_without_gaps() {
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let settings = b.settings();
    let intake = Arc::new(tjid_intake::pipeline::Intake::load(settings.intake_parts()).unwrap());
    let today = chrono::Utc::now().date_naive();
    let mut analyses = Vec::new();
    for i in 0..40 {
        let raw = support::sample_mail(i);
        let a = intake.analyse(&raw, today).await.unwrap();
        analyses.push((i, a));
    }
    let analyses = Arc::new(analyses);
    let stores = [b.store().await, b.store().await, b.store().await];
    let now = chrono::Utc::now().timestamp_millis();
    let mut tasks = Vec::new();
    for (k, store) in stores.into_iter().enumerate() {
        let analyses = analyses.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for (i, a) in analyses.iter().filter(|(i, _)| i % 3 == k) {
                let rec = record_of(&format!("test:{i}"), Some(format!("<m{i}@t>")), a);
                match store
                    .record(&rec, &a.cases, &|_, _, _| None, now)
                    .await
                    .unwrap()
                {
                    Recorded::Processed { case_ids, .. } => ids.extend(case_ids),
                    other => panic!("{other:?}"),
                }
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    let year = chrono::Utc::now().format("%Y").to_string();
    ids.sort();
    let expected: Vec<String> = (1..=ids.len())
        .map(|n| format!("TJID-{year}-{n:06}"))
        .collect();
    assert!(!ids.is_empty());
    assert_eq!(ids, expected, "gap-free, unique case numbers");

    // Two copies of one email (same Message-ID) at once on two instances.
    let (s1, s2) = (b.store().await, b.store().await);
    let a = &analyses[0].1;
    let r1 = record_of("copy:1", Some("<same@t>".into()), a);
    let r2 = record_of("copy:2", Some("<same@t>".into()), a);
    let none = |_: &_, _: &str, _: &str| None;
    let (x, y) = tokio::join!(
        s1.record(&r1, &a.cases, &none, now),
        s2.record(&r2, &a.cases, &none, now)
    );
    let mut kinds = [x.unwrap(), y.unwrap()].map(|r| match r {
        Recorded::Processed { .. } => "processed",
        Recorded::Ignored(_) => "ignored",
        _ => "other",
    });
    kinds.sort();
    assert_eq!(kinds, ["ignored", "processed"]);
    // The same source reference at once: recorded once.
    let r3 = record_of("copy:3", None, a);
    let (x, y) = tokio::join!(
        s1.record(&r3, &a.cases, &none, now),
        s2.record(&r3, &a.cases, &none, now)
    );
    let replays = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|r| **r == Recorded::AlreadyRecorded)
        .count();
    assert_eq!(replays, 1);
}

fn record_of(
    source_ref: &str,
    message_id: Option<String>,
    a: &tjid_intake::pipeline::Analysis,
) -> MailRecord {
    MailRecord {
        source_ref: source_ref.into(),
        message_id,
        content_hash: a.content_hash.clone(),
        received_at: 1,
        email_date: None,
        sender: None,
        subject: String::new(),
        headers: String::new(),
        ignored: a.ignored,
        error: a.error.clone(),
        bounce: None,
    }
}

/// A SQLite store filled through the normal intake, copied by `migrate-store`: PostgreSQL
/// gives the same case list and case pages, numbering continues, a second copy is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_sqlite_into_postgres() {
    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    let sqlite = Backend::sqlite();
    let out = sqlite.process(MAIL);
    let ids = case_ids(&out);
    let source = sqlite.store().await;
    source
        .add_user("anna", "Anna", "$argon2id$x", 1)
        .await
        .unwrap();
    let t0 = chrono::Utc::now().timestamp_millis();
    apply(
        &source,
        &REPLY,
        t0,
        Request {
            case_id: ids[0].clone(),
            action: Action::OrderedAtTelia,
            actor: "anna".into(),
            comment: Some("beställt".into()),
            card_number: None,
            checksum_confirmed: false,
        },
    )
    .await
    .unwrap();
    drop(source);

    let from = format!("sqlite:{}", sqlite.inst.path("intake.db").display());
    let run = |to: &str| {
        std::process::Command::new(support::BIN)
            .args(["migrate-store", "--from", &from, "--to", to])
            .output()
            .unwrap()
    };
    let out = run(&pg.url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("cases: "));

    let source = sqlite.store().await;
    let target = Store::open_postgres(&pg.url).await.unwrap();
    let filter = CaseFilter {
        limit: 1000,
        ..Default::default()
    };
    let json = |v: &dyn erased::Ser| v.json();
    let a = source.list_cases(&filter).await.unwrap();
    let b = target.list_cases(&filter).await.unwrap();
    assert_eq!(json(&a), json(&b));
    for id in &ids {
        let a = source.case_detail(id).await.unwrap().unwrap();
        let b = target.case_detail(id).await.unwrap().unwrap();
        assert_eq!(json(&a), json(&b), "{id}");
        assert_eq!(a.case.message_row, b.case.message_row);
    }
    assert_eq!(
        source.counts().await.unwrap(),
        target.counts().await.unwrap()
    );
    assert_eq!(
        json(&source.users().await.unwrap()),
        json(&target.users().await.unwrap())
    );
    assert_eq!(
        json(&source.unprocessed_mail(100, 0).await.unwrap()),
        json(&target.unprocessed_mail(100, 0).await.unwrap())
    );

    // Every table of the schema is copied (none forgotten by migrate::TABLES).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&sqlx::PgPool::connect(&pg.url).await.unwrap())
    .await
    .unwrap();
    let mut known: Vec<String> = tjid_intake::store::migrate::TABLES
        .iter()
        .map(|t| t.to_string())
        .chain(EXTRA_TABLES.iter().map(|t| t.to_string()))
        .collect();
    known.sort();
    assert_eq!(tables, known);

    // Numbering continues on PostgreSQL.
    let pg_backend = Backend {
        inst: sqlite.inst,
        pg: Some(pg),
    };
    let next = pg_backend.process(&["order_first_name_part_ok"]);
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(
        case_ids(&next),
        [format!("TJID-{year}-{:06}", ids.len() + 1)]
    );
    // A second copy into the now non-empty database is refused.
    let out = run(&pg_backend.pg.as_ref().unwrap().url);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
}

/// Tables that hold nothing to move: instance coordination, rebuilt at start, and failed
/// logins (a lockout lasts minutes; a migration forgives them).
const EXTRA_TABLES: &[&str] = &["leases", "login_attempts", "processing_attempts"];

mod erased {
    /// Serialises any `Serialize` value to a JSON value (object-safe for the closure above).
    pub trait Ser {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap()
        }
    }
}

contract!(contract_login_attempts);
async fn contract_login_attempts(b: Backend) {
    let store = b.store().await;
    let keys = ["u:anna".to_string(), "c:192.0.2.1".to_string()];
    assert_eq!(store.login_failures("u:anna", 0).await.unwrap(), (0, None));
    store.login_failed(&keys, 1_000, 0).await.unwrap();
    store.login_failed(&keys, 2_000, 0).await.unwrap();
    store.login_failed(&keys[1..], 3_000, 0).await.unwrap();
    assert_eq!(
        store.login_failures("u:anna", 500).await.unwrap(),
        (2, Some(1_000))
    );
    assert_eq!(
        store.login_failures("c:192.0.2.1", 1_500).await.unwrap(),
        (2, Some(2_000))
    );
    // A success clears the account, not the client.
    store.clear_login_failures("u:anna").await.unwrap();
    assert_eq!(store.login_failures("u:anna", 0).await.unwrap(), (0, None));
    assert_eq!(store.login_failures("c:192.0.2.1", 0).await.unwrap().0, 3);
    // Failures outside the window are forgotten when the next one is recorded.
    store
        .login_failed(&["u:bo".to_string()], 10_000, 2_000)
        .await
        .unwrap();
    assert_eq!(
        store.login_failures("c:192.0.2.1", 0).await.unwrap(),
        (1, Some(3_000))
    );
}

contract!(contract_leases);
async fn contract_leases(b: Backend) {
    let store = b.store().await;
    let name = "imap:u@h:993/INBOX";
    assert_eq!(store.lease_state(name).await.unwrap(), None);
    assert!(store.try_take_lease(name, "a", 1_000, 0).await.unwrap());
    assert!(
        !store.try_take_lease(name, "b", 1_000, 500).await.unwrap(),
        "held by a"
    );
    assert!(
        store.try_take_lease(name, "a", 1_000, 600).await.unwrap(),
        "a takes its own again"
    );
    assert!(store.renew_lease(name, "a", 1_000, 900).await.unwrap());
    assert!(
        !store.renew_lease(name, "b", 1_000, 900).await.unwrap(),
        "only the holder renews"
    );
    let state = store.lease_state(name).await.unwrap().unwrap();
    assert_eq!((state.holder.as_str(), state.expires_at), ("a", 1_900));
    // Expired: a cannot renew it, b takes it.
    assert!(!store.renew_lease(name, "a", 1_000, 1_900).await.unwrap());
    assert!(store.try_take_lease(name, "b", 1_000, 1_900).await.unwrap());
    assert!(
        !store.release_lease(name, "a").await.unwrap(),
        "a no longer holds it"
    );
    assert!(store.release_lease(name, "b").await.unwrap());
    assert!(
        store.try_take_lease(name, "a", 1_000, 2_000).await.unwrap(),
        "free again"
    );
    assert!(
        store
            .try_take_lease("other", "b", 1_000, 2_000)
            .await
            .unwrap(),
        "leases are per name"
    );
}

/// Many instances try to take one free lease at the same moment: exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_one_lease_holder_under_contention() {
    let Some(b) = Backend::postgres().await else {
        return;
    };
    let stores = [b.store().await, b.store().await, b.store().await];
    for round in 0..20 {
        let now = round * 10_000;
        let mut tasks = Vec::new();
        for k in 0..6 {
            let store = stores[k % 3].clone();
            tasks.push(tokio::spawn(async move {
                store
                    .try_take_lease("imap", &format!("h{k}"), 5_000, now)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

contract!(contract_an_overturn_withdraws_the_unsent_rejection);
/// Issue 21: a rejection reply that has not been handed over when staff overturn its case is
/// withdrawn (audited), never sent and never offered on Spärrade svar: while pending, while
/// claimed by a sender that has not reached the hand-over, held by the rate limit, held in
/// doubt, or failed. The overturn notice itself goes out.
async fn contract_an_overturn_withdraws_the_unsent_rejection(b: Backend) {
    let store = b.store().await;
    b.record(
        &store,
        &[
            "order_person_not_in_kiv",
            "order_person_not_at_unit",
            "order_unit_not_in_kiv",
            "order_provider_not_connected",
            "order_sender_not_manager",
        ],
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis() + 1000;
    let due = store.due_replies(now, 100).await.unwrap();
    assert_eq!(due.len(), 5);
    let ids: Vec<String> = due.iter().map(|r| r.id.clone()).collect();
    let case_of = |i: usize| due[i].case_id.clone();
    // 0 stays pending. 1 is claimed (its sender has not reached the hand-over).
    let claimed = store.take_due_replies(now, 5, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 5);
    // 2 is held by the rate limit.
    store.reply_held(&ids[2], now, "limit").await.unwrap();
    // 3 was handed over and its answer never came: held in doubt.
    assert!(store.reply_handed_over(&ids[3], now).await.unwrap());
    assert_eq!(
        store.hold_replies_in_doubt(now, now + 5).await.unwrap(),
        std::slice::from_ref(&ids[3])
    );
    // 4 failed.
    store.reply_failed(&ids[4], now, "550 no").await.unwrap();
    // 0's claim runs out: it is pending again, unclaimed.
    store
        .reply_retry(&ids[0], now, "421 busy", now)
        .await
        .unwrap();
    assert_eq!(store.queue_counts().await.unwrap().held_replies, 2);

    for (i, id) in ids.iter().enumerate() {
        let applied = apply(
            &store,
            &REPLY,
            now + 10,
            Request {
                case_id: case_of(i),
                action: Action::Overturn,
                actor: "anna".into(),
                comment: Some("Registrerad i KIV i dag.".into()),
                card_number: None,
                checksum_confirmed: false,
            },
        )
        .await
        .unwrap();
        assert_eq!(applied.notices.len(), 1, "the overturn notice");
        let detail = store.case_detail(&case_of(i)).await.unwrap().unwrap();
        let rejection = detail.replies.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(rejection.status, "withdrawn", "case {i} on {}", b.name());
        assert!(
            detail
                .audit
                .iter()
                .any(|a| a.action == "reply_withdrawn" && a.comment.as_deref() == Some(id)),
            "audited"
        );
    }
    // Nothing to release on Spärrade svar, and releasing by hand does nothing.
    assert!(store.held_replies(10, 0).await.unwrap().is_empty());
    assert_eq!(store.queue_counts().await.unwrap().held_replies, 0);
    for i in [2, 3] {
        assert_eq!(
            store
                .release_held(&case_of(i), Some(&ids[i]), "anna", now + 20)
                .await
                .unwrap(),
            0
        );
    }
    // The sender that had claimed 1 may not end its data, and its late answer changes nothing.
    assert!(!store.reply_handed_over(&ids[1], now + 30).await.unwrap());
    store
        .reply_retry(&ids[1], now + 30, "451 later", now + 30)
        .await
        .unwrap();
    store
        .reply_failed(&ids[1], now + 30, "550 late")
        .await
        .unwrap();
    // Only the five overturn notices are due, none of the rejections.
    let taken = store
        .take_due_replies(now + 120_000, 20, 60_000)
        .await
        .unwrap();
    assert_eq!(taken.len(), 5);
    assert!(taken.iter().all(|r| !ids.contains(&r.id)), "{taken:?}");
    for (i, id) in ids.iter().enumerate() {
        let detail = store.case_detail(&case_of(i)).await.unwrap().unwrap();
        let rejection = detail.replies.iter().find(|r| r.id == *id).unwrap();
        assert_eq!(rejection.status, "withdrawn");
    }
}

contract!(contract_the_rate_limit_holds_only_automatic_replies);
/// Loop protection is for robots (issue 21): the rate limit counts and holds the replies the
/// service sends by itself; a notice staff trigger goes out past it and is not counted.
async fn contract_the_rate_limit_holds_only_automatic_replies(b: Backend) {
    let store = b.store().await;
    b.record(
        &store,
        &[
            "order_person_not_in_kiv",
            "order_unit_not_in_kiv",
            "order_provider_not_connected",
        ],
    )
    .await;
    // One recipient for all three (the fixtures come from different units).
    b.sql(&["UPDATE outbox SET recipient = 'Chef@Enhet.example'"])
        .await;
    let mut settings = b.settings();
    settings.rate_limit.max_per_window = 1;
    let sink = tjid_intake::sink::ReplySink::File(
        tjid_intake::sink::FileSink::open(&b.inst.path("outbox")).unwrap(),
    );
    let deliver =
        || tjid_intake::outbox::deliver_due(&store, &sink, &settings.outbox, &settings.rate_limit);
    let report = deliver().await.unwrap();
    assert_eq!((report.sent, report.held), (1, 2), "{}", b.name());
    let held = store.held_replies(10, 0).await.unwrap();
    assert_eq!(held.len(), 2);

    // Staff overturn the last case: its held rejection is withdrawn, the notice is theirs.
    let overturned = held[1].case_id.clone();
    let applied = apply(
        &store,
        &REPLY,
        chrono::Utc::now().timestamp_millis(),
        Request {
            case_id: overturned.clone(),
            action: Action::Overturn,
            actor: "anna".into(),
            comment: Some("Registrerad i KIV i dag.".into()),
            card_number: None,
            checksum_confirmed: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(applied.notices.len(), 1);
    b.sql(&["UPDATE outbox SET recipient = 'Chef@Enhet.example'"])
        .await;
    let due = store
        .due_replies(chrono::Utc::now().timestamp_millis() + 1000, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert!(!due[0].rate_limited(), "a staff notice is not rate-limited");
    let report = deliver().await.unwrap();
    assert_eq!(
        (report.sent, report.held),
        (1, 0),
        "the notice went out past the limit"
    );
    // Only the automatic reply counts against the limit.
    assert_eq!(
        store
            .replies_sent_to("chef@enhet.example", 0)
            .await
            .unwrap(),
        1
    );
    // "Skicka alla till mottagaren": the one rejection the limit still holds.
    let for_recipient = store.held_by_limit_to("CHEF@enhet.example").await.unwrap();
    assert_eq!(for_recipient, [held[0].id.clone()]);
}

contract!(contract_the_provider_register);
/// The register of connected providers kept in the store (issue 22): add, change, disconnect
/// and connect again, each with its event; the connected-on-date rule across a disconnection;
/// an import that adds, renames, never deletes, is idempotent, and writes nothing when dry.
async fn contract_the_provider_register(b: Backend) {
    use chrono::NaiveDate;
    use tjid_intake::store::providers::{ProviderDetails, RegisterActor, RegisterChange};
    let store = b.store().await;
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let who = |comment| RegisterActor {
        actor: "anna",
        comment,
        now_ms: 1_000,
    };
    let details = ProviderDetails {
        name: "Hälsan Väst AB",
        kansli: "Kansliet Väst",
        note: "",
    };
    assert_eq!(store.providers_count().await.unwrap(), 0);
    assert_eq!(
        store
            .provider_add(
                "5560160680",
                details,
                d("2026-01-01"),
                who("ansökan vidarebefordrad")
            )
            .await
            .unwrap(),
        RegisterChange::Done
    );
    assert_eq!(
        store
            .provider_add("5560160680", details, d("2026-01-01"), who("igen"))
            .await
            .unwrap(),
        RegisterChange::Exists,
        "added once"
    );
    // Disconnected from a date: connected for emails dated before it only.
    assert_eq!(
        store
            .provider_disconnect("5560160680", d("2025-12-31"), who("för tidigt"))
            .await
            .unwrap(),
        RegisterChange::DateOutOfOrder
    );
    assert_eq!(
        store
            .provider_disconnect("5560160680", d("2026-06-01"), who("avtalet upphör"))
            .await
            .unwrap(),
        RegisterChange::Done
    );
    assert_eq!(
        store
            .provider_disconnect("5560160680", d("2026-07-01"), who("igen"))
            .await
            .unwrap(),
        RegisterChange::NotConnected
    );
    let register = store.provider_register().await.unwrap();
    assert!(!register.is_connected("5560160680", d("2025-12-31")));
    assert!(register.is_connected("5560160680", d("2026-01-01")));
    assert!(register.is_connected("5560160680", d("2026-05-31")));
    assert!(!register.is_connected("5560160680", d("2026-06-01")));
    // Connected again later: the gap stays a gap.
    assert_eq!(
        store
            .provider_reconnect("5560160680", d("2026-05-01"), who("före slutet"))
            .await
            .unwrap(),
        RegisterChange::DateOutOfOrder
    );
    assert_eq!(
        store
            .provider_reconnect("5560160680", d("2026-09-01"), who("nytt avtal"))
            .await
            .unwrap(),
        RegisterChange::Done
    );
    let register = store.provider_register().await.unwrap();
    assert!(register.is_connected("5560160680", d("2026-05-31")));
    assert!(!register.is_connected("5560160680", d("2026-08-31")));
    assert!(register.is_connected("5560160680", d("2026-09-01")));
    assert!(register.is_connected("5560160680", d("2030-01-01")));
    let changed = ProviderDetails {
        name: "Hälsan Väst Aktiebolag",
        ..details
    };
    assert_eq!(
        store
            .provider_change("5560160680", changed, None, who("nytt namn"))
            .await
            .unwrap(),
        RegisterChange::Done
    );
    assert_eq!(
        store
            .provider_change("9999999999", changed, None, who("x"))
            .await
            .unwrap(),
        RegisterChange::Unknown
    );
    // The open period's start can move, not into the earlier period.
    assert_eq!(
        store
            .provider_change(
                "5560160680",
                changed,
                Some(d("2026-05-15")),
                who("fel datum")
            )
            .await
            .unwrap(),
        RegisterChange::DateOutOfOrder
    );
    assert_eq!(
        store
            .provider_change(
                "5560160680",
                changed,
                Some(d("2026-08-15")),
                who("ansökan äldre")
            )
            .await
            .unwrap(),
        RegisterChange::Done
    );
    assert!(store
        .provider_register()
        .await
        .unwrap()
        .is_connected("5560160680", d("2026-08-15")));
    let (entry, events) = store.provider_entry("5560160680").await.unwrap().unwrap();
    assert_eq!(entry.name, "Hälsan Väst Aktiebolag");
    assert_eq!(entry.number(), "556016-0680");
    assert_eq!(entry.periods.len(), 2);
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    let mut sorted = actions.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["added", "changed", "changed", "disconnected", "reconnected"],
        "one event per change, refusals none: {actions:?}"
    );
    assert!(events
        .iter()
        .all(|e| e.actor == "anna" && !e.comment.is_empty()));
    assert!(
        events
            .iter()
            .any(|e| e.detail.contains("Hälsan Väst AB → Hälsan Väst Aktiebolag")),
        "{events:?}"
    );

    // Import: adds the new, renames the known, keeps the rest; again: nothing.
    let rows = tjid_intake::providers::parse_csv(
        "organisationsnummer,vardgivare,ansluten\n\
         556016-0680,Hälsan Väst AB,2020-01-01\n\
         232100-0131,Västra Götalandsregionen,2020-01-01\n",
    )
    .unwrap();
    let dry = store
        .provider_import(&rows, who("import"), true)
        .await
        .unwrap();
    assert_eq!((dry.added.len(), dry.renamed.len()), (1, 1));
    assert_eq!(
        store.providers_count().await.unwrap(),
        1,
        "a dry run writes nothing"
    );
    let done = store
        .provider_import(&rows, who("import"), false)
        .await
        .unwrap();
    assert_eq!((done.added.len(), done.renamed.len()), (1, 1));
    let again = store
        .provider_import(&rows, who("import"), false)
        .await
        .unwrap();
    assert_eq!(
        (again.added.len(), again.renamed.len(), again.unchanged),
        (0, 0, 2),
        "idempotent"
    );
    let register = store.provider_register().await.unwrap();
    assert!(register.is_connected("2321000131", d("2020-01-01")));
    // The import does not touch a known provider's periods.
    assert!(!register.is_connected("5560160680", d("2026-08-01")));
    assert!(!register.is_connected("5560160680", d("2025-01-01")));
}

/// Issue 25's synthetic cases: order forms of `units` units, three in four rejected (person not
/// in KIV, or the sender not the manager), recorded straight into the store at `at(i)`.
async fn record_synthetic(store: &Store, n: usize, at: impl Fn(usize) -> i64) -> Vec<String> {
    use tjid_intake::case::{CaseContext, CaseKind, CheckedCase, Fields, Finding, ReasonCode};
    let none = |_: &CheckedCase, _: &str, _: &str| None;
    let mut ids = Vec::new();
    for i in 0..n {
        let fields = Fields(vec![
            ("fornamn", Some(format!("Anna{i}"))),
            ("efternamn", Some("Lind".to_string())),
            // Written in lower case by some: the unit column is upper-case.
            (
                "vardenhet_hsaid",
                Some(format!("se2321000131-E{:012}", i % 3)),
            ),
        ]);
        let reasons = match i % 4 {
            0 => Vec::new(),
            1 => vec![Finding::new(ReasonCode::SenderNotManager, None)],
            _ => vec![
                Finding::new(ReasonCode::PersonNotInKiv, Some("personnummer")),
                Finding::new(ReasonCode::SenderNotManager, None),
            ],
        };
        let case = CheckedCase::new(
            CaseKind::Order,
            reasons,
            Vec::new(),
            fields,
            CaseContext::default(),
        );
        let mail = MailRecord {
            source_ref: format!("synthetic:{i}"),
            message_id: Some(format!("<{i}@synthetic.example>")),
            content_hash: format!("{i:x}"),
            received_at: at(i),
            email_date: None,
            sender: Some("chef@vgregion.se".into()),
            subject: format!("Beställning {i}"),
            headers: String::new(),
            ignored: None,
            error: None,
            bounce: None,
        };
        match store.record(&mail, &[case], &none, at(i)).await.unwrap() {
            Recorded::Processed { case_ids, .. } => ids.extend(case_ids),
            other => panic!("{other:?}"),
        }
    }
    ids
}

/// Issue 25: the lists filter on columns (the unit, the reason codes) that say what the JSON
/// says, also after a verification changed the reasons; pages of a list are its cases in
/// order, without gaps or overlaps, oldest or newest first; the unit filter's choices.
async fn contract_lists_filter_on_columns_and_page_through(b: Backend) {
    let store = b.store().await;
    let t0 = 1_800_000_000_000_i64;
    let ids = record_synthetic(&store, 23, |i| t0 + (i as i64 / 2) * 1000).await;
    let rejected = CaseFilter {
        state: Some("rejected".into()),
        ..Default::default()
    };
    let all = store.list_cases(&rejected).await.unwrap();
    assert_eq!(all.len(), 23 - 6, "{all:?}");
    assert_eq!(store.count_cases(&rejected).await.unwrap(), 17);
    // Newest first; cases of one millisecond by number.
    let mut expected: Vec<&str> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 != 0)
        .map(|(_, id)| id.as_str())
        .collect();
    expected.reverse();
    let listed: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(listed, expected);
    for oldest_first in [false, true] {
        let mut paged = Vec::new();
        for page in 0..5 {
            let rows = store
                .list_cases(&CaseFilter {
                    limit: 4,
                    offset: page * 4,
                    oldest_first,
                    ..rejected.clone()
                })
                .await
                .unwrap();
            assert!(rows.len() <= 4);
            paged.extend(rows.into_iter().map(|c| c.id));
        }
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        if oldest_first {
            want.reverse();
        }
        assert_eq!(paged, want, "oldest_first {oldest_first}");
    }
    // The unit filter's choices and the filter, whatever the case of the form or the query.
    let units = store.case_units(&rejected).await.unwrap();
    let want: Vec<String> = (0..3).map(|u| format!("SE2321000131-E{u:012}")).collect();
    assert_eq!(units, want);
    for (u, unit) in units.iter().enumerate() {
        let f = CaseFilter {
            unit: Some(unit.to_lowercase()),
            ..rejected.clone()
        };
        let rows = store.list_cases(&f).await.unwrap();
        let want: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|id| ids.iter().position(|x| x == id).unwrap() % 3 == u)
            .collect();
        let got: Vec<&str> = rows.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(got, want, "{unit}");
        assert_eq!(store.count_cases(&f).await.unwrap(), want.len() as i64);
    }
    // A filter beside the state reads the units of its own cases.
    let in_one_reason = CaseFilter {
        reason: Some("person_not_in_kiv".into()),
        ..rejected.clone()
    };
    assert_eq!(store.case_units(&in_one_reason).await.unwrap(), units);
    // Reason codes: a case with two is in both lists.
    let by = |code: &str| CaseFilter {
        reason: Some(code.into()),
        ..rejected.clone()
    };
    let not_in_kiv = store.list_cases(&by("person_not_in_kiv")).await.unwrap();
    let not_manager = store.list_cases(&by("sender_not_manager")).await.unwrap();
    assert_eq!(not_in_kiv.len(), 11);
    assert_eq!(not_manager.len(), 17);
    assert!(not_in_kiv
        .iter()
        .all(|c| c.reasons.contains("person_not_in_kiv")));
    assert_eq!(
        store.count_cases(&by("person_not_in_kiv")).await.unwrap(),
        11
    );
    // A verification that takes a reason away takes the case out of that reason's list.
    let case = &not_in_kiv[0];
    let detail = store.case_detail(&case.id).await.unwrap().unwrap();
    let v = tjid_intake::store::Verification {
        case_id: case.id.clone(),
        from: "rejected".into(),
        to: "rejected".into(),
        decision: None,
        actor: "anna".into(),
        at: t0 + 100_000,
        fields: detail.case.fields.clone(),
        reasons: r#"[{"code":"sender_not_manager","field":null}]"#.into(),
        warnings: "[]".into(),
        verify: "[]".into(),
        manager_mail: None,
        holder_mail: None,
        corrections: Vec::new(),
        confirmed: None,
        reply: None,
        no_reply: None,
    };
    store.apply_verification(&v).await.unwrap();
    let after = store.list_cases(&by("person_not_in_kiv")).await.unwrap();
    assert_eq!(after.len(), 10);
    assert!(after.iter().all(|c| c.id != case.id));
    assert!(store
        .list_cases(&by("sender_not_manager"))
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == case.id));
    // The lists read what was just written (the pages read on their own connections).
    let unit_of_case = units[ids.iter().position(|x| *x == case.id).unwrap() % 3].clone();
    let t = tjid_intake::store::Verification {
        fields: r#"{"vardenhet_hsaid":"SE2321000131-E000000000099"}"#.into(),
        at: t0 + 200_000,
        ..v
    };
    store.apply_verification(&t).await.unwrap();
    let moved = CaseFilter {
        unit: Some("SE2321000131-E000000000099".into()),
        ..rejected.clone()
    };
    let rows = store.list_cases(&moved).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, case.id);
    let old_unit = CaseFilter {
        unit: Some(unit_of_case),
        ..rejected.clone()
    };
    assert!(store
        .list_cases(&old_unit)
        .await
        .unwrap()
        .iter()
        .all(|c| c.id != case.id));
    // Avslutade: the closed states, newest first.
    let closed = CaseFilter {
        closed: true,
        ..Default::default()
    };
    assert_eq!(store.count_cases(&closed).await.unwrap(), 0);
}
contract!(contract_lists_filter_on_columns_and_page_through);

/// Issue 25: retention runs in batches (more due than one batch holds), erases them all,
/// closes every rejection it purges (Avvisade is empty after it, Avslutade holds them, the
/// audit says rejected -> rejection_confirmed) and leaves the cases not yet due alone; the
/// pages read while it runs.
async fn contract_retention_in_batches_closes_purged_rejections(b: Backend) {
    let store = b.store().await;
    let day = tjid_intake::clock::DAY_MS;
    let t0 = 1_800_000_000_000_i64;
    let n = tjid_intake::store::PURGE_BATCH as usize * 2 + 30;
    // All but the last four are old enough for retention.
    let ids = record_synthetic(&store, n, |i| if i + 4 < n { t0 } else { t0 + 100 * day }).await;
    let rejected = CaseFilter {
        state: Some("rejected".into()),
        ..Default::default()
    };
    let before = store.count_cases(&rejected).await.unwrap();
    assert_eq!(before as usize, n - n.div_ceil(4));
    let policy = tjid_intake::store::RetentionPolicy {
        ignored_ms: 30 * day,
        quarantined_ms: 90 * day,
        rejected_ms: 90 * day,
        completed_ms: 730 * day,
    };
    let purge = {
        let store = store.clone();
        tokio::spawn(async move { store.purge(&policy, t0 + 95 * day).await.unwrap() })
    };
    // Pages and the readiness check answer while it runs.
    let mut read_during = 0;
    while !purge.is_finished() {
        store.list_cases(&rejected).await.unwrap();
        store.server_version().await.unwrap();
        read_during += 1;
    }
    let report = purge.await.unwrap();
    assert!(read_during > 0);
    let due_rejected = (0..n - 4).filter(|i| i % 4 != 0).count() as u64;
    assert_eq!(report.rejected_cases, due_rejected, "{report:?}");
    assert_eq!(report.completed_cases, 0);
    assert_eq!(report.messages, due_rejected);
    // Avvisade keeps only the rejections not yet due.
    let left = store.list_cases(&rejected).await.unwrap();
    let young: Vec<&String> = ids[n - 4..]
        .iter()
        .enumerate()
        .filter(|(i, _)| !(n - 4 + i).is_multiple_of(4))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(left.len(), young.len());
    assert!(left.iter().all(|c| young.contains(&&c.id)));
    let closed = CaseFilter {
        closed: true,
        ..Default::default()
    };
    assert_eq!(
        store.count_cases(&closed).await.unwrap() as u64,
        due_rejected
    );
    let shell = store.case_detail(&ids[1]).await.unwrap().unwrap();
    assert_eq!(shell.case.state, "rejection_confirmed");
    assert_eq!(shell.case.fields, "{}");
    let last = shell.audit.last().unwrap();
    assert_eq!(
        (
            last.action.as_str(),
            last.before.as_deref(),
            last.after.as_deref()
        ),
        ("purged", Some("rejected"), Some("rejection_confirmed"))
    );
    // The shell keeps its reason codes; no unit (the fields are gone).
    assert!(store
        .list_cases(&CaseFilter {
            reason: Some("sender_not_manager".into()),
            closed: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == ids[1]));
    // Done: the next run finds nothing.
    let again = store.purge(&policy, t0 + 96 * day).await.unwrap();
    assert_eq!((again.messages, again.rejected_cases), (0, 0));
}
contract!(contract_retention_in_batches_closes_purged_rejections);

/// Issue 25: the daemon clears the outbox's dead rows itself (PostgreSQL: VACUUM of the
/// outbox; SQLite: nothing to do), and the pending-only index serves the claims.
async fn contract_the_outbox_is_tidied_by_the_daemon(b: Backend) {
    b.process(&["order_table_ok", "order_person_not_in_kiv"]);
    let store = b.store().await;
    store.tidy_outbox().await.unwrap();
    if let Some(pg) = &b.pg {
        let pool = sqlx::PgPool::connect(&pg.url).await.unwrap();
        let vacuumed: bool = sqlx::query_scalar(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'outbox'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(vacuumed, "the outbox was vacuumed");
        pool.close().await;
    }
    // Still whole: the replies are all there.
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.outbox_pending + counts.outbox_sent, 2);
}
contract!(contract_the_outbox_is_tidied_by_the_daemon);

contract!(contract_two_orders_for_one_person_at_once_flag_the_later);
/// Issue 22, SPEC §4.3: two orders for the same person at the same unit recorded at the same
/// moment by two store instances (on PostgreSQL: two daemons on one database) never both miss
/// each other: the later one (the higher case number) carries `open_order_exists` and links the
/// earlier one; the earlier one carries nothing. Eight rounds, each at a unit of its own.
async fn contract_two_orders_for_one_person_at_once_flag_the_later(b: Backend) {
    let settings = b.settings();
    let intake = tjid_intake::pipeline::Intake::load(settings.intake_parts()).unwrap();
    let today = chrono::Utc::now().date_naive();
    // Two valid orders for the same person (the test kit's example values), in two layouts.
    let first = intake
        .analyse(&support::sample_mail(0), today)
        .await
        .unwrap();
    let second = intake
        .analyse(&support::sample_mail(5), today)
        .await
        .unwrap();
    for a in [&first, &second] {
        assert_eq!(a.cases.len(), 1);
        assert_eq!(a.cases[0].decision.as_str(), "queued");
    }
    let pnr = first.cases[0].fields.get("personnummer").unwrap();
    let pnr12: String = pnr.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(pnr12.len(), 12, "{pnr}");
    let (s1, s2) = (b.store().await, b.store().await);
    let now = chrono::Utc::now().timestamp_millis();
    let none = |_: &_, _: &str, _: &str| None;
    let open_order = |warnings: &str| warnings.contains("open_order_exists");
    for round in 0..8 {
        let unit = format!("SE2321000131-E{round:012}");
        let at_unit = |a: &tjid_intake::pipeline::Analysis| {
            let mut case = a.cases[0].clone();
            for (k, v) in case.fields.0.iter_mut() {
                if *k == "vardenhet_hsaid" {
                    *v = Some(unit.clone());
                }
            }
            vec![case]
        };
        let (c1, c2) = (at_unit(&first), at_unit(&second));
        let r1 = record_of(&format!("at-once:{round}:1"), None, &first);
        let r2 = record_of(&format!("at-once:{round}:2"), None, &second);
        let (x, y) = tokio::join!(
            s1.record(&r1, &c1, &none, now),
            s2.record(&r2, &c2, &none, now)
        );
        let mut recorded = Vec::new();
        for r in [x.unwrap(), y.unwrap()] {
            let Recorded::Processed {
                case_ids,
                open_order_exists,
            } = r
            else {
                panic!("{r:?}");
            };
            assert_eq!(case_ids.len(), 1);
            recorded.push((case_ids[0].clone(), open_order_exists == [0]));
        }
        // The later case number is the flagged one, and only it.
        recorded.sort();
        let [(earlier, earlier_flagged), (later, later_flagged)] = &recorded[..] else {
            unreachable!()
        };
        assert!(
            !earlier_flagged && *later_flagged,
            "round {round} on {}: {recorded:?}",
            b.name()
        );
        let stored = |id: String| {
            let store = &s1;
            async move { store.case_detail(&id).await.unwrap().unwrap().case }
        };
        assert!(!open_order(&stored(earlier.clone()).await.warnings));
        assert!(open_order(&stored(later.clone()).await.warnings));
        // The case page links the other open order (the unit as written, any case).
        let open = s2
            .open_orders(&pnr12, &unit.to_ascii_lowercase())
            .await
            .unwrap();
        assert_eq!(open, [earlier.clone(), later.clone()], "round {round}");
    }
}

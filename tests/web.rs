//! Handler tests of the staff pages: every page and action through the real `Router` with
//! tower's `oneshot`, over a store filled by `process` from golden fixtures.

mod support;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use support::Installation;
use tjid_intake::clock::Clock;
use tjid_intake::config::Settings;
use tjid_intake::store::Store;
use tjid_intake::web::{auth::hash_password, router, WebState};
use tjid_testkit::mime::{build, MailSpec};

const PASSWORD: &str = "ett långt lösenord";

pub struct World {
    pub inst: Installation,
    pub store: Store,
    pub clock: Clock,
    pub settings: Settings,
    /// Case ids by fixture name.
    pub cases: HashMap<String, String>,
}

const FIXTURES: &[&str] = &[
    "order_table_ok",
    "order_missing_fields",
    "order_person_not_in_kiv",
    "dereg_table_ok",
    "ignored_auto_reply",
    "no_form_question",
];

async fn world(extra: &str) -> World {
    let inst = Installation::new(extra);
    let input = inst.path("in");
    std::fs::create_dir_all(&input).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in FIXTURES {
        std::fs::copy(
            root.join(format!("fixtures/mail/{name}.eml")),
            input.join(format!("{name}.eml")),
        )
        .unwrap();
    }
    let spec = MailSpec::new(
        "Mallory <mallory@example.se>",
        "<script>alert(1)</script>",
        "<xss@example.se>",
        "Wed, 18 Nov 2026 10:00:00 +0100",
    );
    std::fs::write(input.join("zz_script_subject.eml"), build(&spec)).unwrap();
    let cases = process(&inst, &input);
    let store = Store::open_sqlite(&inst.path("intake.db")).await.unwrap();
    let settings = Settings::load_with_env(Some(&inst.config), []).unwrap();
    let clock = Clock::fixed(chrono::Utc::now().timestamp_millis());
    store
        .add_user(
            "anna",
            "Anna Handläggare",
            &hash_password(PASSWORD).unwrap(),
            clock.now_ms(),
        )
        .await
        .unwrap();
    World {
        inst,
        store,
        clock,
        settings,
        cases,
    }
}

/// Runs `process` over the .eml files in `input` (stored like the daemon's); case ids by file stem.
fn process(inst: &Installation, input: &std::path::Path) -> HashMap<String, String> {
    let out = inst
        .command()
        .args(["process", "--json"])
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cases = HashMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let source = v["source"].as_str().unwrap();
        let name = std::path::Path::new(source)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        if let Some(c) = v["cases"].get(0) {
            cases.insert(name, c["case_id"].as_str().unwrap().to_string());
        }
    }
    cases
}

impl World {
    /// The store's database, to put rows in states only the outbox worker writes.
    async fn db(&self) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}", self.inst.path("intake.db").display());
        sqlx::SqlitePool::connect(&url).await.unwrap()
    }

    /// Processes more fixtures (`dir/name.eml` under `fixtures/`) into the same store.
    fn add(&mut self, fixtures: &[&str]) {
        let input = self.inst.path("more");
        let _ = std::fs::remove_dir_all(&input);
        std::fs::create_dir_all(&input).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in fixtures {
            let name = std::path::Path::new(rel).file_name().unwrap();
            std::fs::copy(root.join("fixtures").join(rel), input.join(name)).unwrap();
        }
        let more = process(&self.inst, &input);
        self.cases.extend(more);
    }

    fn app(&self) -> Router {
        router(WebState::new(
            self.store.clone(),
            &self.settings.web_parts(),
            self.clock.clone(),
        ))
    }

    fn case(&self, fixture: &str) -> &str {
        self.cases
            .get(fixture)
            .unwrap_or_else(|| panic!("no case for {fixture}"))
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
    bytes: Vec<u8>,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().iter().find_map(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The value of the first hidden input `name`.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 10 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes: bytes.to_vec(),
    }
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

fn encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn post(app: &Router, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Reply {
    let mut req =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::from(encode(form))).unwrap()).await
}

/// Sends the login form (from the page `/logga-in{query}`), from `peer` with `X-Forwarded-For`
/// `xff` when given.
async fn login_from(
    app: &Router,
    user: &str,
    password: &str,
    peer: Option<(&str, &str)>,
    query: &str,
) -> Reply {
    let page = get(app, &format!("/logga-in{query}"), None).await;
    let token = page.hidden("csrf");
    let login_cookie = format!("tjid_login={}", page.cookie("tjid_login").unwrap());
    let mut form = vec![("username", user), ("password", password), ("csrf", &token)];
    let next = page.body.contains("name=\"till\"").then(|| {
        page.hidden("till")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    });
    if let Some(n) = &next {
        form.push(("till", n));
    }
    let mut req = Request::post("/logga-in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, login_cookie);
    if let Some((addr, xff)) = peer {
        req = req.header("x-forwarded-for", xff);
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        req = req.extension(axum::extract::ConnectInfo(addr));
    }
    send(app, req.body(Body::from(encode(&form))).unwrap()).await
}

/// Logs in; returns the session cookie header and the session's CSRF token.
async fn login(app: &Router, user: &str, password: &str) -> Result<(String, String), Reply> {
    let r = login_from(app, user, password, None, "").await;
    if r.status != StatusCode::SEE_OTHER {
        return Err(r);
    }
    let cookie = format!("tjid_session={}", r.cookie("tjid_session").unwrap());
    let page = get(app, "/avvisade", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.hidden("csrf");
    Ok((cookie, csrf))
}

async fn state_of(store: &Store, id: &str) -> String {
    store.case_detail(id).await.unwrap().unwrap().case.state
}

/// An email that made no case can be opened to see what it was (issue 21): its header, text
/// and attachments from the kept raw email; one that is no MIME shows its start as it came;
/// one whose file is another email now is not shown.
#[tokio::test]
async fn an_ignored_email_is_opened_to_see_what_it_was() {
    use sha2::Digest;
    let w = world("").await;
    let app = w.app();
    let no_reply = |_: &tjid_intake::case::CheckedCase, _: &str, _: &str| None;
    let auto = "From: Bo Ek <bo.ek@vgregion.se>\r\nSubject: =?utf-8?q?Fr=C3=A5nvaro?=\r\nMessage-ID: <fr1@vgregion.se>\r\nAuto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nJag är på semester till den 4 januari.\r\n";
    let mut ids = Vec::new();
    for (i, (name, raw, ignored, on_disk)) in [
        (
            "1765000010.auto.host",
            auto,
            Some(tjid_intake::case::IgnoreReason::AutoReply),
            auto,
        ),
        (
            "1765000011.bad.host",
            "\u{1}\u{2} <script>x</script>",
            None,
            "\u{1}\u{2} <script>x</script>",
        ),
        (
            "1765000012.gone.host",
            auto,
            Some(tjid_intake::case::IgnoreReason::AutoReply),
            "another email",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(
            w.inst.path("maildir/cur").join(format!("{name}:2,S")),
            on_disk,
        )
        .unwrap();
        let record = tjid_intake::store::MailRecord {
            source_ref: format!("maildir:{name}"),
            message_id: None,
            content_hash: hex::encode(sha2::Sha256::digest(raw.as_bytes())),
            received_at: w.clock.now_ms() + i as i64,
            email_date: None,
            sender: None,
            subject: String::new(),
            headers: String::new(),
            ignored,
            error: ignored
                .is_none()
                .then(|| "the message is not an email".to_string()),
            bounce: None,
        };
        w.store
            .record(&record, &[], &no_reply, w.clock.now_ms())
            .await
            .unwrap();
        ids.push(w.store.unprocessed_mail(1, 0).await.unwrap()[0].id.clone());
    }
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let list = get(&app, "/ignorerat", Some(&cookie)).await;
    assert!(
        list.body
            .contains(&format!("href=\"/ignorerat/{}\"", ids[0])),
        "{}",
        list.body
    );
    let page = get(&app, &format!("/ignorerat/{}", ids[0]), Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Jag är på semester till den 4 januari."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Auto-Submitted: auto-replied"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Inga bilagor."));
    let page = get(&app, &format!("/ignorerat/{}", ids[1]), Some(&cookie)).await;
    assert!(
        page.body.contains("kunde inte tolkas som e-post"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<script>x"), "escaped");
    let page = get(&app, &format!("/ignorerat/{}", ids[2]), Some(&cookie)).await;
    assert!(!page.body.contains("semester"), "{}", page.body);
    assert!(page.body.contains("id=\"email-note\""), "{}", page.body);
    let r = get(&app, "/ignorerat/nothing-here", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_staff_page_and_action_requires_login() {
    let w = world("").await;
    let app = w.app();
    let case = w.case("order_missing_fields");
    for path in [
        "/".to_string(),
        "/avvisade".into(),
        "/att-bestalla".into(),
        "/att-avregistrera".into(),
        format!("/arende/{case}"),
        "/sok?q=19121212-1212".into(),
        "/ignorerat".into(),
        "/ignorerat/x".into(),
        "/vardgivare".into(),
        "/vardgivare/2321000131".into(),
    ] {
        let r = get(&app, &path, None).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert!(r.location().starts_with("/logga-in"), "{path}");
        // A made-up session is no session.
        let r = get(&app, &path, Some("tjid_session=forged")).await;
        assert!(r.location().starts_with("/logga-in"), "{path}");
    }
    for path in [
        format!("/arende/{case}"),
        "/logga-ut".into(),
        "/ignorerat/x/igen".into(),
        "/vardgivare".into(),
        "/vardgivare/2321000131/koppla-fran".into(),
        "/vardgivare/2321000131/kontrollera-igen".into(),
    ] {
        let r = post(
            &app,
            &path,
            None,
            &[("action", "overturn"), ("comment", "x")],
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.location(), "/logga-in");
    }
    assert_eq!(state_of(&w.store, case).await, "rejected");
}

#[tokio::test]
async fn the_public_form_page_needs_no_login() {
    let w = world("").await;
    let app = w.app();
    let r = get(&app, "/blanketter", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("TJID-101"));
    for file in ["TJID-101.pdf", "TJID-102.pdf"] {
        let r = get(&app, &format!("/blanketter/{file}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/pdf");
        assert!(r.body.starts_with("%PDF"));
    }
    assert_eq!(
        get(&app, "/blanketter/..%2Fintake.db", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&app, "/stil.css", None).await.status, StatusCode::OK);
    assert_eq!(get(&app, "/nope", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_and_logout_ends_it() {
    let w = world("").await;
    let app = w.app();
    let page = get(&app, "/logga-in", None).await;
    assert_eq!(page.status, StatusCode::OK);
    // Without the login form's token: refused.
    let r = post(
        &app,
        "/logga-in",
        None,
        &[("username", "anna"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Wrong password.
    let err = login(&app, "anna", "fel lösenord här").await.err().unwrap();
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert!(err.body.contains("Fel användarnamn eller lösenord"));

    let page = get(&app, "/logga-in", None).await;
    let token = page.hidden("csrf");
    let r = post(
        &app,
        "/logga-in",
        Some(&format!(
            "tjid_login={}",
            page.cookie("tjid_login").unwrap()
        )),
        &[
            ("username", "anna"),
            ("password", PASSWORD),
            ("csrf", &token),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let set = r
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("tjid_session="))
        .unwrap();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains("Secure"), "{set}");
    let cookie = format!("tjid_session={}", r.cookie("tjid_session").unwrap());
    let page = get(&app, "/avvisade", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Anna Handläggare"));
    let csrf = page.hidden("csrf");
    // Logout needs the token too.
    let r = post(&app, "/logga-ut", Some(&cookie), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, "/logga-ut", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.location(), "/logga-in");
    assert_eq!(
        get(&app, "/avvisade", Some(&cookie)).await.location(),
        "/logga-in?till=/avvisade"
    );
}

#[tokio::test]
async fn secure_cookies_when_configured_and_sessions_expire() {
    let w = world("[web]\nsecure_cookies = true\nsession_hours = 1\n").await;
    let app = w.app();
    let page = get(&app, "/logga-in", None).await;
    assert!(page.cookies()[0].contains("; Secure"));
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    w.clock.advance_ms(3_600_000 + 1);
    assert_eq!(
        get(&app, "/avvisade", Some(&cookie)).await.location(),
        "/logga-in?till=/avvisade"
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let w = world("[web]\nmax_failed_logins = 3\nlockout_minutes = 10\n").await;
    let app = w.app();
    for _ in 0..3 {
        let r = login(&app, "anna", "fel lösenord här").await.err().unwrap();
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused now.
    let r = login(&app, "anna", PASSWORD).await.err().unwrap();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("För många misslyckade inloggningar"));
    w.clock.advance_ms(10 * 60_000 + 1);
    assert!(login(&app, "anna", PASSWORD).await.is_ok());
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_and_loses_the_session() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    w.store
        .set_user_disabled("anna", true, w.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(
        get(&app, "/avvisade", Some(&cookie)).await.location(),
        "/logga-in?till=/avvisade"
    );
    let r = login(&app, "anna", PASSWORD).await.err().unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn actions_without_the_csrf_token_are_refused() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case = w.case("order_missing_fields");
    for form in [
        vec![("action", "overturn"), ("comment", "ok")],
        vec![("action", "overturn"), ("comment", "ok"), ("csrf", "wrong")],
    ] {
        let r = post(&app, &format!("/arende/{case}"), Some(&cookie), &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(state_of(&w.store, case).await, "rejected");
    let mail = w.store.unprocessed_mail(10, 0).await.unwrap();
    let r = post(
        &app,
        &format!("/ignorerat/{}/igen", mail[0].id),
        Some(&cookie),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Issue 21: staff land on Översikt, which counts today's new cases by kind and decision and
/// says what waits in each list and since when.
#[tokio::test]
async fn the_overview_counts_today_and_what_waits() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let r = get(&app, "/", Some(&cookie)).await;
    assert_eq!(r.location(), "/oversikt");
    let r = get(&app, "/oversikt", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    let waiting = r.body.split("id=\"waiting\"").nth(1).unwrap();
    // The four rejected cases wait in Avvisade, with the time of the oldest.
    assert!(
        waiting.contains("Avvisade</a></td><td data-label=\"Antal\">4</td>"),
        "{waiting}"
    );
    assert!(waiting.contains(
        "Att granska</a></td><td data-label=\"Antal\">0</td><td data-label=\"Äldsta sedan\">–</td>"
    ));
    let today = r.body.split("id=\"today\"").nth(1).unwrap();
    assert!(today.contains("Beställning"), "{today}");
    assert!(
        today.contains("avvisade") && today.contains("godkända"),
        "{today}"
    );
    assert!(r.body.contains("Tjänstens delar"));
    assert!(r.body.contains("aria-current=\"page\">Översikt"));
}

#[tokio::test]
async fn the_rejection_queue_lists_filters_and_counts() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let r = get(&app, "/avvisade", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    for f in [
        "order_missing_fields",
        "order_person_not_in_kiv",
        "no_form_question",
    ] {
        assert!(r.body.contains(w.case(f)), "{f}");
    }
    assert!(!r.body.contains(w.case("order_table_ok")));
    assert!(r.body.contains("Personen finns inte i KIV"));
    assert!(r.body.contains("Fält saknas: "));
    assert!(r
        .body
        .contains("<span class=\"count\" id=\"count-rejected\">4</span>"));
    // No personnummer in lists.
    assert!(!r.body.contains("19660606-1239"));

    let r = get(&app, "/avvisade?reason=person_not_in_kiv", Some(&cookie)).await;
    assert!(r.body.contains(w.case("order_person_not_in_kiv")));
    assert!(!r.body.contains(w.case("order_missing_fields")));
    let r = get(&app, "/avvisade?kind=unknown", Some(&cookie)).await;
    assert!(r.body.contains(w.case("no_form_question")));
    assert!(!r.body.contains(w.case("order_person_not_in_kiv")));
    // The unit filter: by the unit's HSA-id (any case), its choices named as KIV names them.
    let r = get(
        &app,
        "/avvisade?unit=se2321000131-e000000000101",
        Some(&cookie),
    )
    .await;
    assert!(r.body.contains(w.case("order_person_not_in_kiv")));
    assert!(!r.body.contains(w.case("no_form_question")));
    assert!(
        r.body.contains(
            "<option value=\"SE2321000131-E000000000101\" selected>Vårdcentralen Ekmansgatan (SE2321000131-E000000000101)</option>"
        ),
        "{}",
        r.body
    );
    // A unit's name read off a form is not a choice: the page says so and filters nothing.
    let r = get(
        &app,
        "/avvisade?unit=V%C3%A5rdcentralen+Ekmansgatan",
        Some(&cookie),
    )
    .await;
    assert!(r
        .body
        .contains("Filtret känner inte till Vårdenhet ”Vårdcentralen Ekmansgatan”"));
    assert!(r.body.contains(w.case("no_form_question")));
    // An unknown code is no filter, not an error, and is named.
    let r = get(&app, "/avvisade?reason=%27%20OR%201%3D1", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Filtret känner inte till Skäl"),
        "{}",
        r.body
    );

    let r = get(&app, "/att-bestalla", Some(&cookie)).await;
    assert!(r.body.contains(w.case("order_table_ok")));
    // First in, first out, with the order's type and its warnings as columns.
    let queued = r.body.split("<h2").nth(1).unwrap_or_default();
    let ids: Vec<&str> = queued
        .split("href=\"/arende/")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(!ids.is_empty(), "{}", r.body);
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "oldest first: {ids:?}");
    assert!(r.body.contains("<th>Beställning</th>"));
    assert!(r.body.contains("<th>Varningar</th>"));
    assert!(r.body.contains(">Nytt kort<"), "{}", r.body);
    let r = get(&app, "/att-avregistrera", Some(&cookie)).await;
    assert!(r.body.contains(w.case("dereg_table_ok")));
}

#[tokio::test]
async fn attacker_controlled_subjects_are_escaped() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case = w.case("zz_script_subject");
    for path in [
        "/avvisade".to_string(),
        format!("/arende/{case}"),
        format!("/sok?q={case}"),
    ] {
        let r = get(&app, &path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.body.contains("<script>"), "{path}");
        assert!(
            r.body
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{path}: escaped form missing"
        );
    }
    let r = get(&app, "/avvisade", Some(&cookie)).await;
    assert!(r.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
}

#[tokio::test]
async fn the_case_page_shows_everything_staff_need() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let r = get(
        &app,
        &format!("/arende/{}", w.case("order_person_not_in_kiv")),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    for needle in [
        "19660606-1239",             // the full personnummer, only here
        "Personen finns inte i KIV", // the reason in Swedish
        "Vårdenhetens HSA-id",       // field labels
        "Message-ID:",               // the email's headers
        "Skickat",                   // the reply and its delivery status
        "Mottaget och bedömt",       // the audit trail
        "Häv avvisningen",
        "Bekräfta avvisningen",
    ] {
        assert!(r.body.contains(needle), "{needle}");
    }
    let r = get(&app, "/arende/TJID-1999-000001", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn overturning_needs_a_comment_and_notifies_the_sender() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case = w.case("order_person_not_in_kiv");
    let path = format!("/arende/{case}");
    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[("csrf", &csrf), ("action", "overturn"), ("comment", "  ")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("En kommentar krävs"));
    assert_eq!(state_of(&w.store, case).await, "rejected");

    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("action", "overturn"),
            ("comment", "Personen registrerad i KIV i dag"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(state_of(&w.store, case).await, "queued");
    let d = w.store.case_detail(case).await.unwrap().unwrap();
    assert_eq!(d.replies.len(), 2);
    let notice = &d.replies[1];
    assert_eq!(notice.status, "pending");
    assert!(notice.raw.contains("Auto-Submitted: auto-replied"));
    assert!(
        !notice.raw.contains("1239"),
        "full personnummer in a notice"
    );
    let last = d.audit.last().unwrap();
    assert_eq!(last.actor, "anna");
    assert_eq!(last.action, "overturn");
    assert_eq!(last.before.as_deref(), Some("rejected"));
    assert_eq!(last.after.as_deref(), Some("queued"));
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page.body.contains("Personen registrerad i KIV i dag"));
    assert!(page.body.contains("Avvisat → Att handlägga"));
    assert!(page.body.contains("Klart: ”Häv avvisningen”"));
    // The decision at reception is history; the current one stands beside it.
    assert!(page.body.contains("Beslut vid mottagandet: avvisat"));
    assert!(page.body.contains("Beslut nu: godkänt"));
    // The old reasons no longer stand: not listed as reasons, only under the reception's.
    assert!(!page.body.contains("<h3>Skäl till avvisning</h3>"));
    assert!(page
        .body
        .contains("Avvisningen är hävd; skälen gäller inte längre."));
    assert!(page.body.contains("<ul class=\"reasons overturned\">"));
    assert!(!page.body.contains("class=\"flagged\""));
    // It now waits in the order list.
    let r = get(&app, "/att-bestalla", Some(&cookie)).await;
    assert!(r.body.contains(case));
    // Overturning twice is a wrong transition.
    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[("csrf", &csrf), ("action", "overturn"), ("comment", "igen")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn confirming_a_rejection_and_unknown_cases_cannot_be_overturned() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let unknown = w.case("no_form_question");
    let r = post(
        &app,
        &format!("/arende/{unknown}"),
        Some(&cookie),
        &[("csrf", &csrf), ("action", "overturn"), ("comment", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = post(
        &app,
        &format!("/arende/{unknown}"),
        Some(&cookie),
        &[("csrf", &csrf), ("action", "confirm")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(state_of(&w.store, unknown).await, "rejection_confirmed");
    let r = post(
        &app,
        &format!("/arende/{unknown}"),
        Some(&cookie),
        &[("csrf", &csrf), ("action", "fly")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_order_goes_through_to_handed_out_and_a_deregistration_links_to_it() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let order = w.case("order_table_ok");
    let path = format!("/arende/{order}");
    let act = |action: &'static str, card: Option<&'static str>| {
        let mut form = vec![("csrf", csrf.clone()), ("action", action.to_string())];
        if let Some(c) = card {
            form.push(("card_number", c.to_string()));
        }
        form
    };
    let post_act = |form: Vec<(&'static str, String)>| {
        let app = app.clone();
        let path = path.clone();
        let cookie = cookie.clone();
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(&app, &path, Some(&cookie), &f).await
        }
    };
    // Not before it is ordered.
    let r = post_act(act("handed_out", Some("9752267900100000120"))).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("går inte i läget"));
    let r = post_act(act("deregistered", None)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    assert_eq!(
        post_act(act("ordered_at_telia", None)).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post_act(act("card_ready", None)).await.status,
        StatusCode::SEE_OTHER
    );
    let r = post_act(act("handed_out", None)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_act(act("handed_out", Some("1234"))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = post_act(act("handed_out", Some("9752 2679 0010 0000 120"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let d = w.store.case_detail(order).await.unwrap().unwrap();
    assert_eq!(d.case.state, "handed_out");
    assert_eq!(d.case.card_number.as_deref(), Some("9752267900100000120"));
    // Two notices to the verksamhetschef: ordered at Telia, card ready.
    let notices: Vec<_> = d.replies.iter().skip(1).collect();
    assert_eq!(notices.len(), 2);
    assert!(notices[0].subject.contains("lagd hos Telia"));
    assert!(notices[1].subject.contains("klart att hämta"));
    let actions: Vec<&str> = d.audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["created", "ordered_at_telia", "card_ready", "handed_out"]
    );

    // The deregistration of that card links to the order, and back.
    let dereg = w.case("dereg_table_ok");
    let page = get(&app, &format!("/arende/{dereg}"), Some(&cookie)).await;
    assert!(page.body.contains(&format!("href=\"/arende/{order}\"")));
    let page = get(&app, &path, Some(&cookie)).await;
    assert!(page.body.contains(&format!("href=\"/arende/{dereg}\"")));
    // Deregistered: notices to the verksamhetschef and the holder.
    let r = post(
        &app,
        &format!("/arende/{dereg}"),
        Some(&cookie),
        &[("csrf", &csrf), ("action", "deregistered")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let d = w.store.case_detail(dereg).await.unwrap().unwrap();
    assert_eq!(d.case.state, "deregistered");
    assert_eq!(d.replies.len(), 1 + 2, "{:?}", d.audit);
    let card = w
        .store
        .known_card("9752267900100000120")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.deregistered_case.as_deref(), Some(dereg));
}

#[tokio::test]
async fn search_finds_cases_by_number_personnummer_hsa_id_and_card() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let dereg = w.case("dereg_table_ok");
    let order = w.case("order_person_not_in_kiv");
    for (q, expect) in [
        (dereg.to_lowercase(), dereg),
        ("196606061239".to_string(), order),
        ("se2321000131-E000000000101".to_string(), order),
        ("9752 2679 0010 0000 120".to_string(), dereg),
    ] {
        let r = get(
            &app,
            &format!("/sok?q={}", encode(&[("x", &q)]).trim_start_matches("x=")),
            Some(&cookie),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains(expect), "{q}");
    }
    let r = get(&app, "/sok?q=nothing-like-this", Some(&cookie)).await;
    assert!(r.body.contains("Inga ärenden hittades"));
}

#[tokio::test]
async fn ignored_mail_is_listed_and_can_be_processed_again() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let r = get(&app, "/ignorerat", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Ignorerat: autosvar"));
    // Mail from `process` came from files, not the Maildir: nothing to put back.
    let mail = w.store.unprocessed_mail(10, 0).await.unwrap();
    let r = post(
        &app,
        &format!("/ignorerat/{}/igen", mail[0].id),
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

/// The PNG's width and height, after checking it is a PNG served as one, never cached.
fn png_size(r: &Reply) -> (u32, u32) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(r.headers[header::CACHE_CONTROL], "private, no-store");
    let img = image::load_from_memory_with_format(&r.bytes, image::ImageFormat::Png).unwrap();
    (img.width(), img.height())
}

#[tokio::test]
async fn the_case_page_shows_the_form_page_as_an_image_to_staff_only() {
    let w = world("").await;
    let app = w.app();
    let case = w.case("order_person_not_in_kiv");
    let url = format!("/arende/{case}/sida/1.png");
    // No session: the login page, and no image.
    for cookie in [None, Some("tjid_session=forged")] {
        let r = get(&app, &url, cookie).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.location().starts_with("/logga-in"));
        assert!(!r.bytes.starts_with(b"\x89PNG"));
    }
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, &format!("/arende/{case}"), Some(&cookie)).await;
    assert!(
        page.body
            .contains(&format!("<img src=\"{url}\" alt=\"Blankettens sida 1\"")),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"form-note\""));
    // The PDF page at 100 dpi: an A4 page is 827 pixels wide.
    let (width, height) = png_size(&get(&app, &url, Some(&cookie)).await);
    assert!((820..=830).contains(&width), "{width}");
    assert!(height > width);
    // Only the case's own pages, and only page numbers.
    for other in ["2.png", "0.png", "1", "x.png", "1.png.png"] {
        let r = get(&app, &format!("/arende/{case}/sida/{other}"), Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{other}");
    }
    let r = get(&app, "/arende/TJID-1999-000001/sida/1.png", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_scanned_image_attachment_is_shown_as_png() {
    let mut w = world("").await;
    w.add(&[
        "scans/scan_order_table_200dpi_bitonal_png.eml",
        "scans/scan_fax_two_pages_g4.eml",
    ]);
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case = w.case("scan_order_table_200dpi_bitonal_png");
    let page = get(&app, &format!("/arende/{case}"), Some(&cookie)).await;
    let url = format!("/arende/{case}/sida/1.png");
    assert!(page.body.contains(&url), "{}", page.body);
    let (width, height) = png_size(&get(&app, &url, Some(&cookie)).await);
    // A4 at 200 dpi is 1654 pixels wide: scaled down to 1240.
    assert_eq!(width, 1240);
    assert!(height > width);
    // A fax: a TIFF with a page per directory; the form goes on over both.
    let fax = w.case("scan_fax_two_pages_g4");
    let page = get(&app, &format!("/arende/{fax}"), Some(&cookie)).await;
    for n in [1, 2] {
        let url = format!("/arende/{fax}/sida/{n}.png");
        assert!(page.body.contains(&url), "{}", page.body);
        assert!(png_size(&get(&app, &url, Some(&cookie)).await).0 > 0);
    }
}

#[tokio::test]
async fn cases_without_an_attachment_to_show_say_why() {
    let mut w = world("").await;
    w.add(&["mail/dereg_body_notice.eml"]);
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    for (fixture, note) in [
        (
            "dereg_body_notice",
            "Anmälan kom i e-postmeddelandets text och inte som bilaga",
        ),
        ("no_form_question", "Ingen blankett hittades i meddelandet"),
    ] {
        let case = w.case(fixture);
        let page = get(&app, &format!("/arende/{case}"), Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(note), "{fixture}: {}", page.body);
        assert!(!page.body.contains("<img"), "{fixture}");
        let r = get(&app, &format!("/arende/{case}/sida/1.png"), Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{fixture}");
    }
}

#[tokio::test]
async fn an_erased_or_changed_original_shows_a_note_instead_of_a_broken_image() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case_page = |id: &str| format!("/arende/{id}");
    let image = |id: &str| format!("/arende/{id}/sida/1.png");

    // The original was replaced by another email, then removed, where it was read.
    let queued = w.case("order_table_ok");
    let original = w.inst.path("in/order_table_ok.eml");
    assert!(get(&app, &case_page(queued), Some(&cookie))
        .await
        .body
        .contains("<img"));
    let replace = |p: &std::path::Path| std::fs::write(p, b"Subject: x\r\n\r\nx\r\n").unwrap();
    let remove = |p: &std::path::Path| std::fs::remove_file(p).unwrap();
    for change in [replace, remove] {
        change(&original);
        let page = get(&app, &case_page(queued), Some(&cookie)).await;
        assert!(page
            .body
            .contains("Originalmeddelandet finns inte längre kvar"));
        assert!(!page.body.contains("<img"));
        let r = get(&app, &image(queued), Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    // Retention erased a rejected case: its attachment is gone, and so is the image.
    let rejected = w.case("order_person_not_in_kiv");
    png_size(&get(&app, &image(rejected), Some(&cookie)).await);
    let later = w.clock.now_ms() + 400 * tjid_intake::clock::DAY_MS;
    let report =
        tjid_intake::casework::retention::purge(&w.store, &w.settings.retention, None, later)
            .await
            .unwrap();
    assert!(report.rejected_cases > 0);
    let page = get(&app, &case_page(rejected), Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Bilagan är gallrad"), "{}", page.body);
    assert!(!page.body.contains("<img"));
    let r = get(&app, &image(rejected), Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert!(r.body.contains("Bilagan är gallrad"));
}

#[tokio::test]
async fn a_reply_held_by_the_rate_limit_can_be_sent_after_all() {
    let w = world("").await;
    let app = w.app();
    let id = w.case("order_missing_fields");
    // The rate limit held the case's reply (set directly: the fixtures were sent without one).
    let db = w.db().await;
    sqlx::query(
        "UPDATE outbox SET status = 'held', last_error = 'max 10 per 600 s' WHERE case_id = $1",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(
        page.body.contains("Skicka spärrade svar ändå"),
        "the button is shown"
    );
    let path = format!("/arende/{id}/slapp-svar");
    let r = post(&app, &path, Some(&cookie), &[("csrf", "wrong")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, &path, None, &[("csrf", &csrf)]).await;
    assert!(r.status.is_redirection() || r.status == StatusCode::UNAUTHORIZED);
    let detail = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].status, "held", "nothing released yet");

    let r = post(&app, &path, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let detail = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(
        detail.replies[0].status, "pending",
        "it goes out with the next pass"
    );
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(
        page.body.contains("Spärrat svar skickas ändå"),
        "in the audit trail"
    );
    assert!(
        !page.body.contains("Skicka spärrade svar ändå"),
        "nothing held any more"
    );
}

/// A reply held in doubt (its SMTP sender died between the hand-over and the server's
/// answer) is explained as such on Spärrade svar and on its case page, not as the rate limit.
#[tokio::test]
async fn a_reply_held_in_doubt_is_explained_to_staff() {
    let w = world("").await;
    let app = w.app();
    let id = w.case("order_missing_fields");
    // As an SMTP sender that died after its hand-over leaves it.
    let db = w.db().await;
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sending_at = 5, claimed_by = 'gone' WHERE case_id = $1",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    let held = w
        .store
        .hold_replies_in_doubt(10, w.clock.now_ms())
        .await
        .unwrap();
    assert_eq!(held, [format!("{id}-1")]);
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, "/sparrade-svar", Some(&cookie)).await;
    assert!(
        page.body
            .contains("Osäker leverans: svaret lämnades till e-postservern"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("in doubt"));
    assert!(page.body.contains(">Kom fram</button>"));
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(
        page.body.contains("1 svar har osäker leverans"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("hölls kvar av gränsen"));
    assert!(
        page.body.contains("Svar spärrat: osäker leverans"),
        "in the audit trail"
    );
    assert!(page.body.contains("Skickat → Spärrad"));

    // Staff found it in the relay's log: it arrived. Recorded as sent, never sent again.
    let reply = format!("{id}-1");
    let form = [
        ("csrf", csrf.as_str()),
        ("svar", reply.as_str()),
        ("tillbaka", "sparrade-svar"),
    ];
    let path = format!("/arende/{id}/svar-levererat");
    let r = post(&app, &path, Some(&cookie), &[("csrf", "wrong")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(&app, &path, Some(&cookie), &form).await;
    assert_eq!(r.location(), "/sparrade-svar?levererat=1");
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page
        .body
        .contains("Svaret är markerat som levererat och skickas inte igen."));
    let detail = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].status, "sent");
    assert_eq!(detail.replies[0].last_error, None);
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(page
        .body
        .contains("Spärrat svar kom fram (enligt reläets logg)"));
    assert!(page.body.contains("Spärrad → Skickat"));
    // A reply the rate limit held was never sent: it cannot be marked as arrived.
    sqlx::query("UPDATE outbox SET status = 'held', last_error = 'rate limit: 3 replies to this recipient within 600 s (max 3)' WHERE case_id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let r = post(&app, &path, Some(&cookie), &form).await;
    assert_eq!(r.location(), "/sparrade-svar?levererat=0");
    let detail = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(detail.replies[0].status, "held");
}

/// Spärrade svar: every held reply with its case, recipient and the rate limit's reason in
/// Swedish, its count in the navigation, and one reply released at a time (only within the
/// case named in the path), back to the list with a message.
#[tokio::test]
async fn held_replies_are_listed_and_released_one_at_a_time() {
    let w = world("").await;
    let app = w.app();
    let (a, b) = (w.case("order_missing_fields"), w.case("dereg_table_ok"));
    // `process` sent the replies; as if the outbox worker had held them instead.
    let db = w.db().await;
    sqlx::query("UPDATE outbox SET status = 'pending', sent_at = NULL WHERE case_id IN ($1, $2)")
        .bind(a)
        .bind(b)
        .execute(&db)
        .await
        .unwrap();
    let why = "rate limit: 3 replies to this recipient within 600 s (max 3)";
    for id in [a, b] {
        w.store
            .reply_held(&format!("{id}-1"), w.clock.now_ms(), why)
            .await
            .unwrap();
    }
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, "/sparrade-svar", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    for id in [a, b] {
        assert!(
            page.body
                .contains(&format!("href=\"/arende/{id}#replies\"")),
            "{}",
            page.body
        );
    }
    assert!(page.body.contains("orjan.lindqvist@vgregion.se"));
    assert!(page
        .body
        .contains("Spärrat: 3 svar till samma mottagare inom 10 minuter (högst 3)."));
    assert!(!page.body.contains("rate limit"));
    assert!(page.body.contains("id=\"count-held-replies\">2<"));

    // Another case's reply named under this case: nothing is released.
    let path = format!("/arende/{a}/slapp-svar");
    let other = format!("{b}-1");
    let form = [
        ("csrf", csrf.as_str()),
        ("svar", other.as_str()),
        ("tillbaka", "sparrade-svar"),
    ];
    let r = post(&app, &path, Some(&cookie), &form).await;
    assert_eq!(r.location(), "/sparrade-svar?slappt=0");
    let mine = format!("{a}-1");
    let form = [
        ("csrf", csrf.as_str()),
        ("svar", mine.as_str()),
        ("tillbaka", "sparrade-svar"),
    ];
    let r = post(&app, &path, Some(&cookie), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/sparrade-svar?slappt=1");
    let status = |d: tjid_intake::store::CaseDetail| d.replies[0].status.clone();
    assert_eq!(
        status(w.store.case_detail(a).await.unwrap().unwrap()),
        "pending"
    );
    assert_eq!(
        status(w.store.case_detail(b).await.unwrap().unwrap()),
        "held"
    );
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page
        .body
        .contains("Det spärrade svaret skickas nu, förbi gränsen för antal svar."));
    assert!(page.body.contains("id=\"count-held-replies\">1<"));
    assert!(!page.body.contains(&format!("href=\"/arende/{a}#replies\"")));

    // The case page: the statuses and the audit rows in Swedish, and from there the case's
    // own release goes back to the case.
    let page = get(&app, &format!("/arende/{b}"), Some(&cookie)).await;
    assert!(page.body.contains(">Spärrad<"), "{}", page.body);
    assert!(page.body.contains("Väntar → Spärrad"));
    let r = post(
        &app,
        &format!("/arende/{b}/slapp-svar"),
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.location(), format!("/arende/{b}?slappt=1#replies"));
    let page = get(&app, &format!("/arende/{b}?slappt=1"), Some(&cookie)).await;
    assert!(page.body.contains("Det spärrade svaret skickas nu"));
    assert!(page.body.contains("Spärrad → Väntar"));
    assert_eq!(w.store.queue_counts().await.unwrap().held_replies, 0);
}

/// Ignorerat och karantän: "Behandla igen" only where a new try can end differently (a
/// quarantined email, not one ignored for what it is), refused on the server too; afterwards
/// the page says what happened. An email whose header could not be read says so.
#[tokio::test]
async fn only_quarantined_mail_is_processed_again_with_a_message() {
    let w = world("").await;
    let app = w.app();
    let no_reply = |_: &tjid_intake::case::CheckedCase, _: &str, _: &str| None;
    let mut ids = Vec::new();
    for (i, (name, ignored, error)) in [
        (
            "1765000000.auto.host",
            Some(tjid_intake::case::IgnoreReason::AutoReply),
            None,
        ),
        (
            "1765000001.bad.host",
            None,
            Some("processing the email failed unexpectedly"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(w.inst.path("maildir/cur").join(format!("{name}:2,S")), "x").unwrap();
        let record = tjid_intake::store::MailRecord {
            source_ref: format!("maildir:{name}"),
            message_id: None,
            content_hash: name.into(),
            // Newest last: `unprocessed_mail(1)` is the one just recorded.
            received_at: w.clock.now_ms() + i as i64,
            email_date: None,
            sender: None,
            subject: String::new(),
            headers: String::new(),
            ignored,
            error: error.map(str::to_string),
            bounce: None,
        };
        w.store
            .record(&record, &[], &no_reply, w.clock.now_ms())
            .await
            .unwrap();
        let mail = w.store.unprocessed_mail(1, 0).await.unwrap();
        ids.push(mail[0].id.clone());
    }
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, "/ignorerat", Some(&cookie)).await;
    assert!(page.body.contains("(okänd avsändare)") && page.body.contains("(inget ämne)"));
    assert!(page
        .body
        .contains("Behandlingen avbröts av ett oväntat fel i tjänsten."));
    assert_eq!(
        page.body.matches("Behandla igen</button>").count(),
        1,
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("action=\"/ignorerat/{}/igen\"", ids[1])));

    let r = post(
        &app,
        &format!("/ignorerat/{}/igen", ids[0]),
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("skulle ignoreras igen"), "{}", r.body);
    assert!(w.inst.count("maildir/new") == 0, "nothing put back");

    let r = post(
        &app,
        &format!("/ignorerat/{}/igen", ids[1]),
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/ignorerat?igen=1");
    assert_eq!(w.inst.count("maildir/new"), 1, "the copy waits in new/");
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page
        .body
        .contains("Meddelandet är tillbaka i inkorgen och behandlas igen inom kort."));
    assert!(page.body.contains("Skickad för ny behandling"));
    assert_eq!(page.body.matches("Behandla igen</button>").count(), 0);
}

#[path = "support/held.rs"]
mod held;

/// SPEC §4.4 on the staff pages: Att granska lists the held case with its count, the case page
/// shows the crop of the uncertain field beside its value, and "Bekräfta" with the corrected
/// value decides the case, queues its reply and records the correction.
#[tokio::test]
async fn a_held_case_is_listed_cropped_and_verified_with_a_correction() {
    let w = world("").await;
    let h =
        held::record_held_scan(&w.inst.config, &w.store, &w.inst.path("held"), held::SCAN).await;
    let id = h.case_id.as_str();
    let app = w.app();
    let Ok((cookie, csrf)) = login(&app, "anna", PASSWORD).await else {
        panic!("login failed")
    };

    let list = get(&app, "/att-granska", Some(&cookie)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains(&format!("href=\"/arende/{id}\"")),
        "{}",
        list.body
    );
    let held_now = w.store.queue_counts().await.unwrap().held;
    assert!(held_now >= 1);
    assert!(
        list.body
            .contains(&format!("id=\"count-held\">{held_now}<")),
        "{}",
        list.body
    );
    // Held cases are not in the rejection queue: they have had no reply.
    let rejected = get(&app, "/avvisade", Some(&cookie)).await;
    assert!(!rejected.body.contains(&format!("href=\"/arende/{id}\"")));

    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let crop_url = format!("/arende/{id}/falt/{}.png", h.field);
    assert!(page.body.contains("Granska tolkningen"), "{}", page.body);
    assert!(
        page.body.contains(&format!("src=\"{crop_url}\"")),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains(&format!("name=\"f.{}\" value=\"{}\"", h.field, h.read)));
    assert!(page.body.contains("id=\"do-verify\""));
    assert!(page.body.contains("Inga svar."), "no reply yet");

    // The crop: a PNG much smaller than the page, only for fields with a box, only for staff.
    let crop = get(&app, &crop_url, Some(&cookie)).await;
    assert_eq!(crop.status, StatusCode::OK, "{}", crop.body);
    let (cw, ch) = png_size(&crop);
    let (pw, ph) = png_size(&get(&app, &format!("/arende/{id}/sida/1.png"), Some(&cookie)).await);
    assert!(cw > 100 && ch > 20, "{cw}x{ch}");
    assert!(
        (ch as f32 / ph as f32) < 0.2 && cw as f32 <= pw as f32 * 2.1,
        "{cw}x{ch} of {pw}x{ph}"
    );
    assert_eq!(crop.headers[header::CACHE_CONTROL], "private, no-store");
    assert!(get(&app, &crop_url, None)
        .await
        .location()
        .starts_with("/logga-in"));
    let none = get(&app, &format!("/arende/{id}/falt/nope.png"), Some(&cookie)).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    let field = format!("f.{}", h.field);
    // Without the token: refused, nothing changes.
    let r = post(
        &app,
        &format!("/arende/{id}/granska"),
        Some(&cookie),
        &[(&field, &h.right)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&w.store, id).await, "held");

    let r = post(
        &app,
        &format!("/arende/{id}/granska"),
        Some(&cookie),
        &[("csrf", &csrf), (&field, &h.right)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), format!("/arende/{id}?granskat=queued&svar=1"));
    assert_eq!(state_of(&w.store, id).await, "queued");
    let d = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].id, format!("{id}-1"));
    let fix = d
        .audit
        .iter()
        .find(|a| a.action == "field_corrected")
        .unwrap();
    assert_eq!(fix.actor, "anna");
    assert_eq!(
        (fix.before.as_deref(), fix.after.as_deref()),
        (Some(h.read.as_str()), Some(h.right.as_str()))
    );

    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(
        page.body.contains("Granskat: ärendet godkändes"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("E-postadress: {} → {}", h.read, h.right))
            || page.body.contains(&format!(": {} → {}", h.read, h.right)),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Granska tolkningen"));
    assert!(page
        .body
        .contains(&format!("id=\"count-held\">{}<", held_now - 1)));

    // Bekräfta again: the case moved on.
    let r = post(
        &app,
        &format!("/arende/{id}/granska"),
        Some(&cookie),
        &[("csrf", &csrf), (&field, &h.right)],
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        w.store
            .case_detail(id)
            .await
            .unwrap()
            .unwrap()
            .replies
            .len(),
        1
    );
}

/// A rejected case's fields can be corrected before an overturn: audited, no new reply.
#[tokio::test]
async fn a_rejected_case_can_have_a_field_corrected_without_a_reply() {
    let w = world("").await;
    let app = w.app();
    let Ok((cookie, csrf)) = login(&app, "anna", PASSWORD).await else {
        panic!("login failed")
    };
    let id = w.case("order_person_not_in_kiv");
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(
        page.body.contains("Rätta fält") && page.body.contains("name=\"f.mobil\""),
        "{}",
        page.body
    );
    let before = w.store.case_detail(id).await.unwrap().unwrap();
    let r = post(
        &app,
        &format!("/arende/{id}/ratta"),
        Some(&cookie),
        &[("csrf", &csrf), ("f.mobil", "070-123 45 67")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let after = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(after.case.state, "rejected");
    assert_eq!(after.replies.len(), before.replies.len());
    assert!(after
        .audit
        .iter()
        .any(|a| a.action == "field_corrected" && a.comment.as_deref() == Some("mobil")));
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(
        page.body.contains("Mobiltelefon: ") && page.body.contains(" → 070-123 45 67"),
        "{}",
        page.body
    );
    assert!(page.body.contains("1 fält rättat."), "{}", page.body);
}

#[tokio::test]
async fn a_login_returns_to_the_page_asked_for_and_only_to_a_local_one() {
    let w = world("").await;
    let app = w.app();
    let case = w.case("order_missing_fields");
    let r = get(&app, &format!("/arende/{case}?klart=confirm"), None).await;
    assert_eq!(
        r.location(),
        format!("/logga-in?till=/arende/{case}%3Fklart%3Dconfirm")
    );
    let r = login_from(
        &app,
        "anna",
        PASSWORD,
        None,
        &r.location()["/logga-in".len()..],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/arende/{case}?klart=confirm"));
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/%5Cevil.example",
        "evil.example",
        "/logga-in",
    ] {
        let r = login_from(&app, "anna", PASSWORD, None, &format!("?till={evil}")).await;
        assert_eq!(r.location(), "/oversikt", "{evil}");
    }
    // A wrong password keeps the page asked for.
    let page = get(&app, "/logga-in?till=/sok%3Fq%3Dx", None).await;
    assert!(
        page.body.contains("name=\"till\" value=\"&#x2f;sok?q=x\""),
        "{}",
        page.body
    );
}

/// `extra` lands in `[http]` until its own first table.
#[tokio::test]
async fn the_login_limit_is_per_account_and_per_client_behind_a_trusted_proxy_and_survives_a_restart(
) {
    let w = world(
        "trusted_proxies = [\"127.0.0.1\"]\n[web]\nmax_failed_logins = 3\nlockout_minutes = 10\n",
    )
    .await;
    w.store
        .add_user("bo", "Bo", &hash_password(PASSWORD).unwrap(), 0)
        .await
        .unwrap();
    let app = w.app();
    let proxy = "127.0.0.1:40000";
    // One person behind the proxy tries three wrong passwords on made-up names.
    for name in ["x1", "x2", "x3"] {
        let r = login_from(&app, name, "fel", Some((proxy, "198.51.100.7")), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // That client is locked, for any account…
    let r = login_from(&app, "anna", PASSWORD, Some((proxy, "198.51.100.7")), "").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // …but a colleague behind the same proxy is not.
    let r = login_from(&app, "anna", PASSWORD, Some((proxy, "198.51.100.8")), "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A client that is not a trusted proxy cannot choose its address by the header.
    for _ in 0..3 {
        let r = login_from(&app, "y", "fel", Some(("192.0.2.1:1", "198.51.100.9")), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = login_from(
        &app,
        "bo",
        PASSWORD,
        Some(("192.0.2.1:1", "198.51.100.10")),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Per account, from different clients; and a restart (a new state) forgets nothing.
    for (i, ip) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .enumerate()
    {
        let r = login_from(&app, "bo", "fel", Some((proxy, ip)), "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{i}");
    }
    let restarted = w.app();
    let r = login_from(&restarted, "bo", PASSWORD, Some((proxy, "203.0.113.4")), "").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.body.contains("Försök igen om 10 minuter"), "{}", r.body);
    w.clock.advance_ms(10 * 60_000 + 1);
    let r = login_from(&restarted, "bo", PASSWORD, Some((proxy, "203.0.113.4")), "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn hsts_only_when_the_pages_are_served_over_tls() {
    let w = world("").await;
    let r = get(&w.app(), "/logga-in", None).await;
    assert!(r.headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());
    let w = world("tls = true\n").await;
    let r = get(&w.app(), "/logga-in", None).await;
    assert_eq!(
        r.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
}

#[tokio::test]
async fn the_case_page_shows_the_email_its_text_and_its_attachments() {
    let mut w = world("").await;
    w.add(&["mail/dereg_html_only.eml"]);
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    // A question in the body, readable on the page.
    let r = get(
        &app,
        &format!("/arende/{}", w.case("no_form_question")),
        Some(&cookie),
    )
    .await;
    assert!(
        r.body
            .contains("Hur beställer vi eTjänstekort till en ny medarbetare?"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Inga bilagor."));
    assert!(r.body.contains("orjan.lindqvist@vgregion.se"));
    // The attachment by name, with what became of it.
    let r = get(
        &app,
        &format!("/arende/{}", w.case("order_table_ok")),
        Some(&cookie),
    )
    .await;
    assert!(r.body.contains("TJID-101.pdf"));
    assert!(
        r.body.contains("Blankett läst (Beställning, sida 1)"),
        "{}",
        r.body
    );
    assert!(r.body.contains("Se bifogad blankett."));
    // An HTML body as text, escaped.
    let r = get(
        &app,
        &format!("/arende/{}", w.case("dereg_html_only")),
        Some(&cookie),
    )
    .await;
    assert!(r.body.contains("Kortinnehavarens namn:"), "{}", r.body);
    assert!(!r.body.contains("<td>Sven"));
}

#[tokio::test]
async fn search_finds_cases_by_name_subject_sender_and_unit() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let order = w.case("order_table_ok");
    let tail = order.rsplit('-').next().unwrap().trim_start_matches('0');
    for q in [
        "Anna-Karin+%C3%85str%C3%B6m",
        "anna-karin",
        "Ekmansgatan",
        "orjan.lindqvist",
        // Issue 21: without diacritics, any case, a case number's tail.
        "astrom+ANNA",
        tail,
    ] {
        let r = get(&app, &format!("/sok?q={q}"), Some(&cookie)).await;
        assert!(r.body.contains(order), "{q}");
    }
    // The search sits in the header of every page.
    let r = get(&app, "/avvisade", Some(&cookie)).await;
    assert!(r.body.contains("class=\"quick-search\""));
    let r = get(&app, "/sok?q=Fr%C3%A5ga+om+kort", Some(&cookie)).await;
    assert!(r.body.contains(w.case("no_form_question")));
    assert!(!r.body.contains(order));
    // LIKE's wildcards are text; two letters are too few to search free text.
    for q in ["%25", "_", "an"] {
        let r = get(&app, &format!("/sok?q={q}"), Some(&cookie)).await;
        assert!(r.body.contains("Inga ärenden hittades."), "{q}");
    }
}

/// Spärrade svar in bulk (issue 21): the ticked rows at once, or every reply the rate limit
/// holds for one recipient; a reply held in doubt is never released by either.
#[tokio::test]
async fn held_replies_are_released_in_bulk() {
    let w = world("").await;
    let app = w.app();
    let cases = [
        w.case("order_missing_fields"),
        w.case("dereg_table_ok"),
        w.case("order_person_not_in_kiv"),
        w.case("order_table_ok"),
    ];
    let db = w.db().await;
    for (i, id) in cases.iter().enumerate() {
        // Two recipients: chef@a.example (0, 1, 3) and chef@b.example (2).
        let to = if i == 2 {
            "chef@b.example"
        } else {
            "chef@a.example"
        };
        sqlx::query(
            "UPDATE outbox SET status = 'pending', sent_at = NULL, recipient = $2 WHERE case_id = $1",
        )
        .bind(id)
        .bind(to)
        .execute(&db)
        .await
        .unwrap();
    }
    let why = "rate limit: 3 replies to this recipient within 600 s (max 3)";
    for id in &cases[..3] {
        w.store
            .reply_held(&format!("{id}-1"), w.clock.now_ms(), why)
            .await
            .unwrap();
    }
    // The fourth is held in doubt: bulk release leaves it alone.
    let doubt = format!("{}-1", cases[3]);
    sqlx::query(
        "UPDATE outbox SET status = 'held', last_error = 'in doubt: handed to the SMTP server without a recorded answer' WHERE id = $1",
    )
    .bind(&doubt)
    .execute(&db)
    .await
    .unwrap();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, "/sparrade-svar", Some(&cookie)).await;
    assert!(page.body.contains("Skicka markerade"), "{}", page.body);
    assert!(page.body.contains("Skicka alla till mottagaren"));
    // One checkbox per rate-limited reply, none for the one in doubt.
    assert_eq!(
        page.body.matches("type=\"checkbox\" name=\"svar\"").count(),
        3
    );
    assert!(!page
        .body
        .contains(&format!("value=\"{doubt}\" form=\"bulk\"")));

    let r = post(
        &app,
        "/sparrade-svar/slapp",
        Some(&cookie),
        &[("csrf", "wrong")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Everything the limit holds for chef@a.example (0 and 1, not the one in doubt).
    let r = post(
        &app,
        "/sparrade-svar/slapp",
        Some(&cookie),
        &[("csrf", &csrf), ("mottagare", "CHEF@a.example")],
    )
    .await;
    assert_eq!(r.location(), "/sparrade-svar?slappt=2");
    let status = |i: usize| {
        let store = w.store.clone();
        let id = cases[i].to_string();
        async move {
            store.case_detail(&id).await.unwrap().unwrap().replies[0]
                .status
                .clone()
        }
    };
    assert_eq!(status(0).await, "pending");
    assert_eq!(status(1).await, "pending");
    assert_eq!(status(2).await, "held");
    assert_eq!(status(3).await, "held");

    // The ticked row (two fields named svar).
    let two = format!("{}-1", cases[2]);
    let r = post(
        &app,
        "/sparrade-svar/slapp",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("svar", &two),
            ("svar", &format!("{}-1", cases[0])),
        ],
    )
    .await;
    assert_eq!(r.location(), "/sparrade-svar?slappt=1");
    assert_eq!(status(2).await, "pending");
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page.body.contains("Det spärrade svaret skickas nu"));
    assert!(page.body.contains("id=\"count-held-replies\">1<"));
    // The audit names who released each one.
    let detail = w.store.case_detail(cases[2]).await.unwrap().unwrap();
    assert!(detail
        .audit
        .iter()
        .any(|a| a.action == "reply_released" && a.actor == "anna"));
}

/// A name that differs from KIV shows KIV's spelling beside the warning (issue 21), and KIV's
/// spelling finds the case.
#[tokio::test]
async fn a_name_mismatch_shows_kivs_spelling() {
    let mut w = world("").await;
    w.add(&["mail/order_name_mismatch.eml"]);
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let case = w.case("order_name_mismatch");
    let page = get(&app, &format!("/arende/{case}"), Some(&cookie)).await;
    assert!(
        page.body
            .contains("Namnet skiljer sig från KIV (Förnamn): i KIV ”Anna-Karin Åström”"),
        "{}",
        page.body
    );
    let r = get(&app, "/sok?q=Anna-Karin+Astrom", Some(&cookie)).await;
    assert!(r.body.contains(case), "KIV's spelling finds it");
}

/// Avvisade: tick rows, one comment, "Bekräfta markerade" (issue 21); a case that is no longer
/// a rejection is counted as refused, not confirmed.
#[tokio::test]
async fn rejections_are_confirmed_in_a_batch() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let (a, b) = (
        w.case("order_missing_fields"),
        w.case("order_person_not_in_kiv"),
    );
    let queued = w.case("order_table_ok");
    let page = get(&app, "/avvisade", Some(&cookie)).await;
    assert!(page.body.contains("Bekräfta markerade"), "{}", page.body);
    assert!(page
        .body
        .contains(&format!("name=\"arende\" value=\"{a}\" form=\"batch\"")));
    let r = post(
        &app,
        "/avvisade/bekrafta",
        Some(&cookie),
        &[("csrf", "wrong"), ("arende", a)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&w.store, a).await, "rejected");

    let r = post(
        &app,
        "/avvisade/bekrafta",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("arende", a),
            ("arende", b),
            ("arende", queued),
            ("kommentar", "Inget att göra"),
        ],
    )
    .await;
    assert_eq!(r.location(), "/avvisade?bekraftade=2&ej=1");
    for id in [a, b] {
        assert_eq!(state_of(&w.store, id).await, "rejection_confirmed");
        let d = w.store.case_detail(id).await.unwrap().unwrap();
        let last = d.audit.last().unwrap();
        assert_eq!(
            (
                last.actor.as_str(),
                last.action.as_str(),
                last.comment.as_deref()
            ),
            ("anna", "confirm", Some("Inget att göra"))
        );
    }
    assert_eq!(state_of(&w.store, queued).await, "queued");
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page.body.contains(
        "2 avvisningar bekräftade. 1 ärende kunde inte bekräftas: det har ändrats sedan listan visades."
    ));
    assert!(!page.body.contains(&format!("value=\"{a}\"")));
}

/// A failed reply is sent again from the case page, once, audited (issue 24).
#[tokio::test]
async fn a_failed_reply_is_sent_again_from_the_case_page() {
    let w = world("").await;
    let app = w.app();
    let id = w.case("order_missing_fields");
    let db = w.db().await;
    sqlx::query("UPDATE outbox SET status = 'failed', last_error = '550 5.1.1 no such user' WHERE case_id = $1")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(page.body.contains("Skicka igen"), "{}", page.body);
    let path = format!("/arende/{id}/skicka-igen");
    let reply = format!("{id}-1");
    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[("csrf", "wrong"), ("svar", &reply)],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[("csrf", &csrf), ("svar", &reply)],
    )
    .await;
    assert_eq!(r.location(), format!("/arende/{id}?skickas_igen=1#replies"));
    let d = w.store.case_detail(id).await.unwrap().unwrap();
    assert_eq!(d.replies[0].status, "pending");
    assert!(d.audit.iter().any(|a| a.actor == "anna"), "audited");
    let page = get(&app, &format!("/arende/{id}?skickas_igen=1"), Some(&cookie)).await;
    assert!(page.body.contains("Svaret skickas igen med nästa utskick."));
    assert!(
        page.body.contains("Misslyckat svar skickas igen"),
        "in the audit trail"
    );
    assert!(
        !page.body.contains("Skicka igen<"),
        "once: it is no longer failed"
    );
    // Again: nothing failed is left.
    let r = post(
        &app,
        &path,
        Some(&cookie),
        &[("csrf", &csrf), ("svar", &reply)],
    )
    .await;
    assert_eq!(r.location(), format!("/arende/{id}?skickas_igen=0#replies"));
}

/// After an action the case page offers the next case of the list it came from (issue 21).
#[tokio::test]
async fn after_an_action_the_next_case_of_the_list_is_offered() {
    let w = world("").await;
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let rejected: Vec<&str> = ["order_missing_fields", "order_person_not_in_kiv"]
        .iter()
        .map(|f| w.case(f))
        .collect();
    let first = rejected[0];
    let r = post(
        &app,
        &format!("/arende/{first}"),
        Some(&cookie),
        &[("csrf", &csrf), ("action", "confirm")],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page.body.contains("id=\"next-case\""), "{}", page.body);
    assert!(page.body.contains("Nästa ärende i Avvisade:"));
    // The next one is still a rejection.
    let next = page
        .body
        .split("id=\"next-case\" href=\"/arende/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert_ne!(next, first);
    assert_eq!(state_of(&w.store, &next).await, "rejected");
}

/// A page past the list's end says so and links the last page; a period that ends before it
/// begins is named and not used (issue 21).
#[tokio::test]
async fn a_page_past_the_end_and_a_backwards_period_are_explained() {
    let w = world("").await;
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let r = get(&app, "/avvisade?page=9", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Sidan finns inte: listan har"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("0–400"), "{}", r.body);
    let nav = r.body.split("class=\"paging\"").nth(1).unwrap_or_default();
    assert!(
        // (minijinja writes the link's `/` as `&#x2f;`)
        nav.contains("avvisade\" rel=\"prev\"") && !nav.contains("page="),
        "the last page, here the first: {nav}"
    );
    let r = get(
        &app,
        "/avslutade?from=2026-12-10&to=2026-12-01",
        Some(&cookie),
    )
    .await;
    assert!(r
        .body
        .contains("Avslutat från ligger efter till och med; perioden används inte."));
}

/// A deregistration's correction text speaks of the deregistration, not of an order (issue 21).
#[tokio::test]
async fn a_deregistrations_correction_text_names_the_deregistration() {
    let mut w = world("").await;
    w.add(&["mail/dereg_cut_card_missing.eml"]);
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let id = w.case("dereg_cut_card_missing");
    let page = get(&app, &format!("/arende/{id}"), Some(&cookie)).await;
    assert!(page.body.contains("Rätta fält"), "{}", page.body);
    assert!(
        page.body.contains("så att avregistreringen"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("så att beställningen"));
}

/// Anslutna vårdgivare (issue 22): an invalid number is refused with a Swedish message and
/// nothing saved; a provider is added with a comment and its history shows it; once its
/// connection date covers an earlier rejected order, that order is offered for a new check,
/// which overturns it with one notice, once.
#[tokio::test]
async fn the_provider_register_page_adds_changes_and_rechecks_rejected_orders() {
    let mut w = world("").await;
    w.add(&["mail/order_provider_not_connected.eml"]);
    let case = w.case("order_provider_not_connected").to_string();
    let app = w.app();
    let (cookie, csrf) = login(&app, "anna", PASSWORD).await.ok().unwrap();

    let r = get(&app, "/vardgivare", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Västra Götalandsregionen"),
        "seeded from the CSV"
    );
    let r = get(&app, "/vardgivare?s=halsan", Some(&cookie)).await;
    assert!(r.body.contains("Hälsan Väst AB"), "search folds diacritics");
    assert!(!r.body.contains("Västra Götalandsregionen"));

    let before = w.store.providers_count().await.unwrap();
    let add = |number: &'static str, comment: &'static str| {
        let csrf = csrf.clone();
        let cookie = cookie.clone();
        let app = app.clone();
        async move {
            post(
                &app,
                "/vardgivare",
                Some(&cookie),
                &[
                    ("csrf", &csrf),
                    ("nummer", number),
                    ("namn", "Nya <b>Vården</b> AB"),
                    ("ansluten", "2026-12-01"),
                    ("kansli", "Kansliet Väst"),
                    ("kommentar", comment),
                ],
            )
            .await
        }
    };
    let r = add("556016-0681", "ansökan").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Organisationsnumret är inte giltigt"),
        "{}",
        r.body
    );
    assert!(r.body.contains("556016-0681"), "what was typed is kept");
    let r = add("556000-1116", "  ").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Skriv en kommentar"));
    assert_eq!(
        w.store.providers_count().await.unwrap(),
        before,
        "nothing saved"
    );
    let r = add("556000-1116", "Ansökan vidarebefordrad av kansliet").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/vardgivare/5560001116?klart=tillagd");
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(
        page.body.contains("Nya &lt;b&gt;Vården&lt;&#x2f;b&gt; AB"),
        "escaped"
    );
    assert!(page.body.contains("Ansökan vidarebefordrad av kansliet"));
    assert!(page.body.contains("Ansluten (tillagd)"));

    // Friskvård Syd is registered from 2027-01-01: its order of 2026-11-18 was rejected.
    let r = get(&app, "/vardgivare/5566771233", Some(&cookie)).await;
    assert!(!r.body.contains(&case), "not offered while not connected");
    let r = post(
        &app,
        "/vardgivare/5566771233/andra",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("namn", "Friskvård Syd, AB"),
            ("ansluten", "2026-11-01"),
            ("kommentar", "Kansliets besked kom redan i november"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = get(&app, "/vardgivare/5566771233", Some(&cookie)).await;
    assert!(
        page.body.contains("ansluten från: 2027-01-01 → 2026-11-01"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(&case),
        "the rejected order is offered: {}",
        page.body
    );
    assert_eq!(
        state_of(&w.store, &case).await,
        "rejected",
        "nothing without a person asking"
    );

    let r = post(
        &app,
        "/vardgivare/5566771233/kontrollera-igen",
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().contains("havda=1&kvar=0"), "{}", r.location());
    assert_eq!(state_of(&w.store, &case).await, "queued");
    let d = w.store.case_detail(&case).await.unwrap().unwrap();
    assert_eq!(d.replies.len(), 2, "the rejection and one overturn notice");
    assert!(
        d.audit
            .iter()
            .any(|a| a.action == "overturn" && a.actor == "anna"),
        "{:?}",
        d.audit
    );
    let page = get(&app, r.location(), Some(&cookie)).await;
    assert!(page.body.contains("1 ärende hävdes"), "{}", page.body);
    // Again: nothing left to check, no second notice.
    let r = post(
        &app,
        "/vardgivare/5566771233/kontrollera-igen",
        Some(&cookie),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(r.location().contains("havda=0&kvar=0"), "{}", r.location());
    let d = w.store.case_detail(&case).await.unwrap().unwrap();
    assert_eq!(d.replies.len(), 2);

    // Disconnecting needs a date after the start and a comment; it is kept as history.
    let r = post(
        &app,
        "/vardgivare/5560001116/koppla-fran",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("datum", "2026-11-30"),
            ("kommentar", "fel"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Datumet ligger före anslutningens början"));
    let r = post(
        &app,
        "/vardgivare/5560001116/koppla-fran",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("datum", "2027-03-01"),
            ("kommentar", "Avtalet upphör"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = get(&app, "/vardgivare/5560001116", Some(&cookie)).await;
    assert!(
        page.body.contains("2026-12-01 – 2027-02-28"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Frånkopplad") && page.body.contains("Avtalet upphör"));
    // Without the token nothing changes.
    let r = post(
        &app,
        "/vardgivare/5560001116/anslut-igen",
        Some(&cookie),
        &[("csrf", "fel"), ("datum", "2027-04-01"), ("kommentar", "x")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// A second open order for the same person at the same unit (issue 22): its case page says so
/// and links the first; the first links the second.
#[tokio::test]
async fn a_second_open_order_links_the_first_on_the_case_page() {
    let w = world("").await;
    let first = w.case("order_table_ok").to_string();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(root.join("fixtures/mail/order_table_ok.eml")).unwrap();
    let again = raw.replacen("Message-ID: <", "Message-ID: <again-", 1);
    assert_ne!(raw, again, "the fixture has a Message-ID");
    let dir = w.inst.path("again");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order_again.eml"), again).unwrap();
    let second = process(&w.inst, &dir)["order_again"].clone();
    let app = w.app();
    let (cookie, _) = login(&app, "anna", PASSWORD).await.ok().unwrap();
    let page = get(&app, &format!("/arende/{second}"), Some(&cookie)).await;
    assert!(
        page.body
            .contains("Personen har redan en öppen beställning vid enheten"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("<a href=\"/arende/{first}\">{first}</a>")),
        "{}",
        page.body
    );
    let page = get(&app, &format!("/arende/{first}"), Some(&cookie)).await;
    assert!(page
        .body
        .contains(&format!("<a href=\"/arende/{second}\">{second}</a>")));
}

/// One email of the day: fixture `name` as the verksamhetschef of unit `unit` sends it (the
/// reply goes to the unit's `Reply-To`, SPEC §5), with a Message-ID of its own.
fn day_mail(i: usize, name: &str, unit: usize) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(root.join(format!("fixtures/mail/{name}.eml"))).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or(raw.split_once("\n\n"))
        .unwrap();
    let eol = if raw.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = format!("Reply-To: <vc.enhet{unit}@vgregion.se>{eol}");
    for line in head.split(eol) {
        if line.to_ascii_lowercase().starts_with("message-id:") {
            out.push_str(&format!("Message-ID: <day-{i}-{name}@vgregion.se>{eol}"));
        } else if !line.to_ascii_lowercase().starts_with("reply-to:") {
            out.push_str(line);
            out.push_str(eol);
        }
    }
    out.push_str(eol);
    out.push_str(body);
    out.into_bytes()
}

/// The replies of a case, by id.
async fn replies_of(store: &Store, id: &str) -> HashMap<String, tjid_intake::store::ReplyRow> {
    let detail = store.case_detail(id).await.unwrap().unwrap();
    detail
        .replies
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect()
}

/// Issue 21's "Done when": a 120-email day from six units (twenty forms from each unit's
/// verksamhetschef within the hour), valid orders and deregistrations and rejections, under the
/// default rate limit. Staff overturn rejections (some after a correction), some after their
/// rejection went out and some before the outbox got to it, confirm the rest in a batch, and
/// send the notices (ordered at Telia, card ready, deregistered) for every open case. Then:
/// no reply is held (every receipt and every notice a person triggered was delivered), no
/// rejection of an overturned case went out after the overturn (those not yet sent are
/// `withdrawn`, and no file of theirs is in the outbox), and each case got one reply at
/// reception and at most one overturn notice, the only decision it was sent when its rejection
/// was withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_120_emails_holds_no_reply_a_person_triggered_and_sends_no_overturned_rejection() {
    let started = std::time::Instant::now();
    let inst = Installation::new("");
    // The default rate limit, not the test installation's "off".
    let text = std::fs::read_to_string(&inst.config).unwrap();
    let text = text.replace("[rate_limit]\nmax_per_window = 0\nmax_per_day = 0\n", "");
    assert!(!text.contains("[rate_limit]"));
    std::fs::write(&inst.config, text).unwrap();
    let settings = Settings::load_with_env(Some(&inst.config), []).unwrap();
    let rate = &settings.rate_limit;
    assert_eq!(
        (rate.max_per_window, rate.window_secs, rate.max_per_day),
        (30, 600, 100)
    );
    let store = Store::open_sqlite(&inst.path("intake.db")).await.unwrap();
    let clock = Clock::fixed(chrono::Utc::now().timestamp_millis());
    let now = || chrono::Utc::now().timestamp_millis();
    store
        .add_user(
            "anna",
            "Anna Handläggare",
            &hash_password(PASSWORD).unwrap(),
            now(),
        )
        .await
        .unwrap();
    let app = router(WebState::new(
        store.clone(),
        &settings.web_parts(),
        clock.clone(),
    ));
    let Ok((cookie, csrf)) = login(&app, "anna", PASSWORD).await else {
        panic!("login failed")
    };
    let intake =
        std::sync::Arc::new(tjid_intake::pipeline::Intake::load(settings.intake_parts()).unwrap());
    let recorder = tjid_intake::pipeline::Recorder::Store(store.clone());
    let sink = tjid_intake::sink::ReplySink::open(
        &settings.sink,
        &settings.smtp,
        &settings.intake.own_address,
    )
    .unwrap();
    // One outbox pass after another until nothing is due; none may hold a reply.
    let deliver = || async {
        let mut sent = 0;
        loop {
            let report = tjid_intake::outbox::deliver_due(&store, &sink, &settings.outbox, rate)
                .await
                .unwrap();
            assert_eq!(
                (report.held, report.failed, report.retried),
                (0, 0, 0),
                "{report:?}"
            );
            if report.sent == 0 {
                return sent;
            }
            sent += report.sent;
        }
    };

    const DAY: [&str; 10] = [
        "order_table_ok",
        "order_person_not_in_kiv",
        "order_acroform_ok",
        "order_missing_fields",
        "dereg_table_ok",
        "order_same_line_ok",
        "order_unit_not_in_kiv",
        "order_legacy_layout_ok",
        "dereg_body_notice",
        "order_person_not_at_unit",
    ];
    // Records emails `range` as the daemon does: their replies wait in the outbox.
    // Case ids by the fixture each came from.
    let record = |range: std::ops::Range<usize>| {
        let (intake, recorder) = (intake.clone(), &recorder);
        async move {
            let inputs = range
                .map(|i| {
                    let name = DAY[i % DAY.len()];
                    tjid_intake::source::Input {
                        display: name.to_string(),
                        source_ref: format!("day:{i}"),
                        raw: day_mail(i, name, i % 6),
                        oversized: None,
                    }
                })
                .collect();
            let mut cases: Vec<(String, String, String)> = Vec::new();
            intake
                .process_batch(
                    inputs,
                    tjid_intake::pipeline::Order::AsGiven,
                    recorder,
                    |input, outcome| {
                        assert_eq!(outcome.cases.len(), 1, "{}", input.display);
                        let c = &outcome.cases[0];
                        cases.push((
                            input.display.clone(),
                            c.case_id.clone(),
                            c.decision.as_str().to_string(),
                        ));
                        Ok(())
                    },
                )
                .await
                .unwrap();
            cases
        }
    };
    // What staff did: replies each POST created (all of them triggered by a person), and
    // when each case was overturned (with whether its rejection was still unsent then).
    let mut triggered: Vec<(String, String)> = Vec::new();
    let mut overturned: HashMap<String, (i64, bool, String)> = HashMap::new();
    let act = |id: String, path: String, form: Vec<(&'static str, String)>| {
        let (app, store, cookie, csrf, clock) = (&app, &store, &cookie, &csrf, &clock);
        async move {
            clock.advance_ms(now() - clock.now_ms());
            let before = replies_of(store, &id).await;
            let mut fields: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
            fields.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            let r = post(app, &path, Some(cookie), &fields).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}: {}", r.body);
            let after = replies_of(store, &id).await;
            let new: Vec<String> = after
                .keys()
                .filter(|k| !before.contains_key(*k))
                .cloned()
                .collect();
            (before, new)
        }
    };
    let action = |id: &str, what: &str| {
        let mut form = vec![("action", what.to_string())];
        if what == "overturn" {
            form.push((
                "comment",
                "Kontrollerat i dag: beställningen gäller.".to_string(),
            ));
        }
        (id.to_string(), format!("/arende/{id}"), form)
    };

    // Morning: the first 60 emails, answered at once.
    let mut cases = record(0..60).await;
    assert_eq!(cases.len(), 60);
    assert_eq!(
        deliver().await,
        60,
        "a receipt or rejection for every email"
    );
    // Staff overturn some of the morning's rejections (their rejection is out already) and
    // correct one field of the incomplete orders first.
    for (name, id, decision) in cases.clone() {
        if decision != "rejected" {
            continue;
        }
        if name == "order_missing_fields" {
            let (_, new) = act(
                id.clone(),
                format!("/arende/{id}/ratta"),
                vec![("f.mobil", "070-123 45 67".to_string())],
            )
            .await;
            assert!(new.is_empty(), "a correction sends nothing");
        }
        if matches!(
            name.as_str(),
            "order_person_not_in_kiv" | "order_missing_fields"
        ) {
            let (i, p, f) = action(&id, "overturn");
            let (before, new) = act(i, p, f).await;
            let unsent = before.values().any(|r| r.status != "sent");
            overturned.insert(id.clone(), (clock.now_ms(), unsent, new.join(",")));
            triggered.extend(new.into_iter().map(|r| (id.clone(), r)));
        }
    }
    // Afternoon: 60 more, recorded while the outbox is behind; staff overturn their rejections
    // (some corrected first) before it gets to them.
    let afternoon = record(60..120).await;
    assert_eq!(afternoon.len(), 60);
    for (name, id, decision) in afternoon.clone() {
        if decision != "rejected" {
            continue;
        }
        if name == "order_missing_fields" {
            let (_, new) = act(
                id.clone(),
                format!("/arende/{id}/ratta"),
                vec![("f.mobil", "070-123 45 67".to_string())],
            )
            .await;
            assert!(new.is_empty(), "a correction sends nothing");
        }
        if matches!(
            name.as_str(),
            "order_person_not_in_kiv" | "order_missing_fields" | "order_unit_not_in_kiv"
        ) {
            let (i, p, f) = action(&id, "overturn");
            let (before, new) = act(i, p, f).await;
            let unsent = before.values().any(|r| r.status != "sent");
            assert!(unsent, "the afternoon's rejections wait in the outbox");
            overturned.insert(id.clone(), (clock.now_ms(), unsent, new.join(",")));
            triggered.extend(new.into_iter().map(|r| (id.clone(), r)));
        }
    }
    cases.extend(afternoon);
    assert_eq!(cases.len(), 120);
    // The rest of the rejections confirmed in one batch ("Bekräfta markerade").
    let rest: Vec<&String> = cases
        .iter()
        .filter(|(_, id, d)| d == "rejected" && !overturned.contains_key(id))
        .map(|(_, id, _)| id)
        .collect();
    assert!(!rest.is_empty());
    let mut form = vec![("csrf", csrf.as_str()), ("kommentar", "Stämmer.")];
    form.extend(rest.iter().map(|id| ("arende", id.as_str())));
    let r = post(&app, "/avvisade/bekrafta", Some(&cookie), &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        r.location()
            .contains(&format!("bekraftade={}&ej=0", rest.len())),
        "{}",
        r.location()
    );
    // The notices, in bulk: every open order ordered at Telia, then its card ready; every
    // deregistration done.
    for step in ["ordered_at_telia", "card_ready", "deregistered"] {
        for (name, id, decision) in &cases {
            let open = decision == "queued" || overturned.contains_key(id);
            let order = name.starts_with("order_");
            if !open || (step == "deregistered") == order {
                continue;
            }
            let (i, p, f) = action(id, step);
            let (_, new) = act(i, p, f).await;
            // A deregistration tells the card holder too.
            assert!(!new.is_empty(), "{step} on {id} sends its notice");
            triggered.extend(new.into_iter().map(|r| (id.clone(), r)));
        }
    }
    deliver().await;

    // Nothing held, anywhere.
    assert_eq!(store.queue_counts().await.unwrap().held_replies, 0);
    assert!(store.held_replies(10, 0).await.unwrap().is_empty());
    let files: std::collections::HashSet<String> = std::fs::read_dir(inst.path("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".eml")
                .map(str::to_string)
        })
        .collect();
    // Every reply a person triggered went out.
    assert!(triggered.len() > 100, "{}", triggered.len());
    for (case, reply) in &triggered {
        let r = &replies_of(&store, case).await[reply];
        assert_eq!(r.status, "sent", "{case}: {reply} ({:?})", r.last_error);
        assert!(files.contains(reply), "{reply} is in the outbox folder");
    }
    let mut withdrawn = 0;
    for (_, id, _) in &cases {
        let replies = replies_of(&store, id).await;
        // One reply at reception.
        let first = &replies[&format!("{id}-1")];
        match overturned.get(id) {
            None => {
                assert_eq!(first.status, "sent", "{id}: {:?}", first.last_error);
                assert!(files.contains(&first.id));
            }
            Some((at, unsent, notice)) => {
                assert!(
                    !notice.is_empty() && !notice.contains(','),
                    "{id}: one overturn notice"
                );
                if *unsent {
                    // Withdrawn: never sent, no file; the overturn notice is the one decision.
                    assert_eq!(first.status, "withdrawn", "{id}");
                    assert!(
                        first.sent_at.is_none() && !files.contains(&first.id),
                        "{id}"
                    );
                    withdrawn += 1;
                } else {
                    // Out before the overturn, never after it.
                    assert_eq!(first.status, "sent", "{id}");
                    assert!(
                        first.sent_at.unwrap() <= *at,
                        "{id}: sent after the overturn"
                    );
                }
            }
        }
        // Besides the reception reply, only what staff triggered.
        for r in replies.values() {
            assert!(
                r.id == first.id || triggered.iter().any(|(c, t)| c == id && *t == r.id),
                "{id}: {} came from nowhere",
                r.id
            );
        }
    }
    assert!(withdrawn >= 12, "{withdrawn}");
    assert_eq!(
        files.len(),
        120 - withdrawn + triggered.len(),
        "the outbox folder holds exactly the replies sent"
    );
    let took = started.elapsed();
    eprintln!("the 120-email day took {} ms", took.as_millis());
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

//! Golden tests: every `fixtures/<set>/NAME.eml` must give, through `process --dry-run --json`,
//! the JSON in `NAME.json` (without `case_id`). On a mismatch the actual output is written to
//! `NAME.json.failed` beside it. Regenerate with `cargo run --example gen_fixtures -- --golden`.

#[allow(dead_code)]
#[path = "support/golden.rs"]
mod golden;

use golden::run_golden_set as run_set;

#[test]
fn golden_mail() {
    run_set("fixtures/mail", "tests/golden.toml");
}

#[test]
fn golden_mail_with_required_authentication() {
    run_set("fixtures/mail-auth", "tests/golden-auth.toml");
}

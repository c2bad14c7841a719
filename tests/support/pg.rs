//! A throwaway PostgreSQL database per test: `tjid_test_<random>` is created on the local
//! server (127.0.0.1:5432, trust auth, user postgres; `TJID_TEST_PG_ADMIN` overrides the admin
//! URL) and dropped when the guard goes, also when the test fails. When the server cannot be
//! reached the test fails if `CI` is set, and is skipped with a loud message otherwise.
#![allow(dead_code)]

use sqlx::Connection;

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("TJID_TEST_PG_ADMIN").unwrap_or_else(|_| ADMIN_URL.to_string())
}

pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// A new empty database, or `None` (skip) when PostgreSQL is not there outside CI.
    pub async fn create() -> Option<PgDatabase> {
        let admin = admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("PostgreSQL is not reachable at {admin}: {e}");
                if std::env::var_os("CI").is_some() {
                    panic!("{msg} (CI is set: start it, do not skip)");
                }
                eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
                return None;
            }
        };
        let name = format!("tjid_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime (or after it): a thread of its own with its own
        // runtime can block on the drop. FORCE ends the pools' connections still open.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&admin_url()).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

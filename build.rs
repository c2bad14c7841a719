//! `sqlx::migrate!` embeds the files under `migrations/` at compile time; cargo does not see a
//! new file there by itself. This makes it rebuild the crate when one is added or changed
//! (the cached target dir of CI would otherwise keep the old set).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

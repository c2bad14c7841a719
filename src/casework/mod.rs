//! What happens to a recorded case after the intake: staff's checked transitions and notices
//! (`lifecycle`), held cases corrected and decided again (`verification`), and the erasure of
//! personal data when its time is up (`retention`). The case's types are in `crate::case`.

pub mod lifecycle;
pub mod retention;
pub mod verification;

//! The settings of the directory (`[directory]`, `[kiv]`): owned here, gathered by `config`.
//! The LDAP backend's own are in `ldap_settings`.

use std::path::PathBuf;

use serde::Deserialize;

/// Where KIV is read from: the LDIF snapshot of `[kiv] ldif` (the embedded default) or LDAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryKind {
    Ldif,
    Ldap,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DirectorySettings {
    pub kind: DirectoryKind,
}

impl Default for DirectorySettings {
    fn default() -> Self {
        DirectorySettings {
            kind: DirectoryKind::Ldif,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KivSettings {
    /// KIV snapshot in LDIF (the embedded default directory).
    pub ldif: PathBuf,
}

impl Default for KivSettings {
    fn default() -> Self {
        KivSettings {
            ldif: "fixtures/kiv.ldif".into(),
        }
    }
}

impl KivSettings {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.ldif.is_file() {
            p.push(format!("kiv.ldif: no such file: {}", self.ldif.display()));
        }
        p
    }
}

//! rustls client configuration: the system's roots (or a configured CA file) and the ring
//! provider only. Two providers compiled in make `ClientConfig::builder()` panic, so the
//! builder is always given the provider explicitly, and `install_default_provider` is called at
//! start-up for the libraries that use the process default.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Where Debian, Fedora and Alpine keep the system's CA bundle (`SSL_CERT_FILE` wins).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Installs ring as the process-wide rustls provider. Idempotent.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every certificate of a PEM file.
pub fn read_pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect();
    let certs = certs.map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(certs)
}

/// A client configuration trusting `ca_file`, or else the system's CA bundle.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    let certs = match ca_file {
        Some(path) => read_pem_certificates(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?,
        None => {
            let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let found = env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from))
                .find(|p| p.is_file())
                .ok_or("no system CA bundle found (install ca-certificates, or set ca_file)")?;
            read_pem_certificates(&found)
                .map_err(|e| format!("cannot read the system CA bundle {}: {e}", found.display()))?
        }
    };
    let (_added, _ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err("no usable CA certificate".into());
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Whether an error (or one it wraps) is rustls refusing the server's certificate.
pub fn is_certificate_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return matches!(
                r,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        // io::Error hides the error it wraps from `source()`.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let inner: &(dyn std::error::Error + 'static) = inner;
            return is_certificate_refusal(inner);
        }
        current = err.source();
    }
    false
}

/// `message`, and when `e` is a refused certificate, what it was checked against, so that
/// ops know which setting (`ca_setting`, e.g. `imap.ca_file`) to fix.
pub fn explain_refusal(
    message: String,
    e: &(dyn std::error::Error + 'static),
    ca_file: Option<&Path>,
    ca_setting: &str,
) -> String {
    if !is_certificate_refusal(e) {
        return message;
    }
    match ca_file {
        Some(path) => format!(
            "{message} (the server's certificate is not signed by a CA in {ca_setting} = {})",
            path.display()
        ),
        None => format!(
            "{message} (the server's certificate is not signed by a CA in the system's bundle; set {ca_setting} for a private CA)"
        ),
    }
}

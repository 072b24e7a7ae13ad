//! The certificate authorities ARM's and Entra ID's certificates are
//! checked against: the Mozilla roots built in (a container without a CA
//! store still verifies Azure), the system's store (`SSL_CERT_FILE`, and
//! `SSL_CERT_DIR` or else `/etc/ssl/certs`, where a corporate CA is
//! installed) and the config's `ca_file` (a TLS-inspecting proxy's CA for
//! amldns alone).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Where the system's CA store is when `SSL_CERT_DIR` does not say
/// (Debian, Ubuntu, Alpine, and Red Hat's compatibility links).
const SYSTEM_CERT_DIR: &str = "/etc/ssl/certs";

/// TLS settings with every root above; an unreadable `ca_file`, or one
/// without a certificate, is an error: the operator meant it to be trusted.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut seen = HashSet::new();
    let mut add = |roots: &mut RootCertStore, certs: Vec<CertificateDer<'static>>| {
        let fresh: Vec<_> = certs
            .into_iter()
            .filter(|c| seen.insert(c.as_ref().to_vec()))
            .collect();
        // The system store may hold what rustls cannot use (a v1
        // certificate, say): such an entry is skipped, not fatal.
        roots.add_parsable_certificates(fresh).0
    };
    let env_dirs = std::env::var("SSL_CERT_DIR").ok().filter(|d| !d.is_empty());
    let dirs: Vec<String> = match &env_dirs {
        Some(d) => d.split(':').map(str::to_string).collect(),
        None => vec![SYSTEM_CERT_DIR.to_string()],
    };
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            // Symbolic links (the hash names) lead to the same files.
            if e.path().is_file() {
                add(&mut roots, pem_certs(&e.path()).unwrap_or_default());
            }
        }
    }
    if let Ok(file) = std::env::var("SSL_CERT_FILE") {
        add(&mut roots, pem_certs(Path::new(&file)).unwrap_or_default());
    }
    if let Some(file) = ca_file {
        let certs = pem_certs(file).map_err(|e| format!("ca_file {}: {e}", file.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file {}: no PEM certificate in it",
                file.display()
            ));
        }
        add(&mut roots, certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificates of a PEM file (other blocks, a key say, skipped).
fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok(CertificateDer::pem_slice_iter(&text)
        .filter_map(Result::ok)
        .collect())
}

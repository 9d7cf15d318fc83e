//! Every HTTP client of yarn-flink is built here: the ResourceManager's and
//! NodeManagers' web services (HTTPS where `yarn.http.policy=HTTPS_ONLY`),
//! sessions' REST APIs, blob fetches. TLS is rustls with the `ring` provider
//! (it builds for glibc 2.17 with zig, as the portable binary needs), and
//! certificates are checked against the system's roots plus any in the PEM
//! file `YF_TLS_CA_FILE` names: a cluster's own CA, exported from its Java
//! truststore with `keytool -exportcert -rfc`.

use std::sync::Once;

/// The variable naming extra trusted CA certificates (PEM).
pub const CA_FILE_ENV: &str = "YF_TLS_CA_FILE";

#[derive(Debug, thiserror::Error)]
pub enum HttpSetupError {
    #[error("cannot read the CA certificates in {path} ({CA_FILE_ENV}): {detail}; give a PEM file (keytool -exportcert -rfc -keystore <truststore.jks> -alias <alias>)")]
    CaFile { path: String, detail: String },
}

static PROVIDER: Once = Once::new();

/// A client builder with TLS ready: the crypto provider installed (once per
/// process) and the extra roots of [`CA_FILE_ENV`] merged.
pub fn client_builder() -> Result<reqwest::ClientBuilder, HttpSetupError> {
    let ca_file = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    client_builder_with(ca_file.as_deref())
}

/// [`client_builder`] with the extra roots of `ca_file` (PEM) instead of the environment's.
pub fn client_builder_with(ca_file: Option<&std::path::Path>) -> Result<reqwest::ClientBuilder, HttpSetupError> {
    PROVIDER.call_once(|| {
        // Another part of the process may have installed one: that is fine.
        // ring, not aws-lc-rs: it builds for the glibc 2.17 target (its post-quantum
        // key exchange, the deprecation's reason, is not what Hadoop's web servers offer).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let mut b = reqwest::Client::builder();
    if let Some(path) = ca_file {
        let shown = path.display().to_string();
        let bad = |detail: String| HttpSetupError::CaFile { path: shown.clone(), detail };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        b = b.tls_certs_merge(certs);
    }
    Ok(b)
}

//! The process's own TLS identity for hops that terminate TLS (`nginx: h2`).
//!
//! A throwaway certificate authority is generated once per process (rcgen, P-256), and it signs one
//! certificate for `localhost` and `127.0.0.1`. A TLS hop gets the certificate and its key written into its
//! private prefix; ssegate's own HTTP client (and the browser probe, by the certificate's key hash) trusts
//! that authority and nothing else learns of it: it is never written outside a hop's prefix, and it dies
//! with the process. So `https://127.0.0.1:PORT/` through a TLS hop is verified for real (a wrong
//! certificate still fails), without switching verification off.

use std::sync::OnceLock;

/// The authority and the certificate it issued for the loopback names.
pub struct LocalTls {
    /// The authority's certificate, DER: the one root ssegate adds to its client.
    pub root_der: Vec<u8>,
    /// The same, PEM (for another client told to trust this run's hops: `ssegate proxy` writes it).
    pub root_pem: String,
    /// The server certificate followed by the authority's, PEM (what a hop serves).
    pub chain_pem: String,
    /// The server certificate's private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The server certificate's public key (SubjectPublicKeyInfo), DER: a browser is told to trust
    /// exactly this key.
    pub spki_der: Vec<u8>,
}

/// Why the process's TLS identity could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to generate the local TLS certificate: {0}")]
pub struct TlsError(pub String);

/// The process's TLS identity, generated on first use.
pub fn local() -> Result<&'static LocalTls, TlsError> {
    static LOCAL: OnceLock<Result<LocalTls, TlsError>> = OnceLock::new();
    LOCAL
        .get_or_init(|| generate().map_err(|e| TlsError(e.to_string())))
        .as_ref()
        .map_err(Clone::clone)
}

fn generate() -> Result<LocalTls, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "ssegate local test authority");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name
        .push(DnType::CommonName, "ssegate local hop");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(LocalTls {
        root_der: ca_cert.der().to_vec(),
        root_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", leaf_cert.pem(), ca_cert.pem()),
        key_pem: leaf_key.serialize_pem(),
        spki_der: rcgen::PublicKeyData::subject_public_key_info(&leaf_key),
    })
}

impl LocalTls {
    /// The base64 SHA-256 of the server certificate's public key, as Chromium's
    /// `--ignore-certificate-errors-spki-list` takes it.
    pub fn spki_sha256_base64(&self) -> String {
        use base64::Engine as _;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.spki_der);
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    }
}

/// Write the certificate chain and key a TLS hop serves into `dir` (`tls/cert.pem`, `tls/key.pem`, the
/// key readable by its owner only).
pub fn write_into(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tls = local().map_err(std::io::Error::other)?;
    let at = dir.join("tls");
    std::fs::create_dir_all(&at)?;
    std::fs::write(at.join("cert.pem"), &tls.chain_pem)?;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(at.join("key.pem"))?;
    std::io::Write::write_all(&mut key, tls.key_pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_identity_per_process_with_a_chain_and_a_private_key() {
        let a = local().unwrap();
        let b = local().unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(a.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(a.key_pem.contains("PRIVATE KEY"));
        let dir = tempfile::tempdir().unwrap();
        write_into(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}

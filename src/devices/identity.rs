//! Device identities: the hub's device CA, the certificates it issues, and
//! reading a terminal's identity from the certificate it presents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};

use crate::tls::{self, TlsError, TlsFiles};
use etahoiva_proto::DEVICE_URI_PREFIX;

/// Paths of the device CA inside the data directory.
pub fn device_ca_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join("device-ca.pem"), dir.join("device-ca-key.pem"))
}

/// The CA that signs terminal certificates.
pub struct DeviceCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub cert_pem: String,
}

impl DeviceCa {
    /// Loads the device CA from the data directory, creating it on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<DeviceCa, TlsError> {
        let (cert_path, key_path) = device_ca_paths(data_dir);
        let (cert_pem, key) = tls::load_or_create_ca(&cert_path, &key_path, "Etahoiva device CA")?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .map_err(|e| TlsError::Generate(format!("device CA: {e}")))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(DeviceCa {
            cert,
            key,
            cert_pem,
        })
    }

    /// Issues a client certificate for `device_id`, valid between the given times.
    pub fn issue(
        &self,
        device_id: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<IssuedCert, TlsError> {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        params
            .distinguished_name
            .push(DnType::CommonName, device_id);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Etahoiva terminal");
        let uri = format!("{DEVICE_URI_PREFIX}{device_id}");
        params.subject_alt_names =
            vec![SanType::URI(uri.try_into().map_err(|e| {
                TlsError::Generate(format!("device id: {e}"))
            })?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(IssuedCert {
            fingerprint: fingerprint(cert.der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after_ms: (not_after.unix_timestamp_nanos() / 1_000_000) as i64,
        })
    }

    /// Issues a certificate valid from yesterday for `days` days.
    pub fn issue_for_days(&self, device_id: &str, days: i64) -> Result<IssuedCert, TlsError> {
        let now = time::OffsetDateTime::now_utc();
        self.issue(
            device_id,
            now - time::Duration::days(1),
            now + time::Duration::days(days),
        )
    }
}

pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// SHA-256 of the certificate's DER, lower-case hex.
    pub fingerprint: String,
    pub not_after_ms: i64,
}

/// SHA-256 of a DER certificate, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The certificate a terminal presented on its connection.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

/// Who a presented certificate says the terminal is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    pub device_id: String,
    pub fingerprint: String,
}

/// Reads the device id from the certificate's URI name.
pub fn peer_identity(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    let device_id = san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => uri
            .strip_prefix(DEVICE_URI_PREFIX)
            .filter(|id| !id.is_empty())
            .map(str::to_string),
        _ => None,
    })?;
    Some(PeerIdentity {
        device_id,
        fingerprint: fingerprint(der),
    })
}

/// TLS for the device listener: the hub's server certificate, and client
/// certificates required and checked against the device CA.
pub fn device_server_config(files: &TlsFiles, ca_pem: &str) -> Result<ServerConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::Identity(format!("device CA: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Identity(format!("device CA: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .map_err(|e| TlsError::Identity(format!("device CA: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Identity(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(tls::load_certs(&files.cert)?, tls::load_key(&files.key)?)
        .map_err(|e| TlsError::Identity(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

use rustls::pki_types::pem::PemObject;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_carry_the_device_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DeviceCa::load_or_create(dir.path()).expect("ca");
        let issued = ca.issue_for_days("dev-1", 30).expect("issue");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem");
        let identity = peer_identity(&der).expect("identity");
        assert_eq!(identity.device_id, "dev-1");
        assert_eq!(identity.fingerprint, issued.fingerprint);
        // The same CA is loaded again, not replaced.
        let again = DeviceCa::load_or_create(dir.path()).expect("ca");
        assert_eq!(again.cert_pem, ca.cert_pem);
        // A certificate without our URI name has no device identity.
        let server_only = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).expect("pem");
        assert_eq!(peer_identity(&server_only), None);
        assert_eq!(peer_identity(b"garbage"), None);
    }
}

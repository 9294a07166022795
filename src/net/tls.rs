//! TLS trust for a server connection: the system's roots by default; a pinned SHA-256
//! (or, as ESXi service tickets give it, SHA-1) thumbprint for self-signed hosts (vCenter
//! and ESXi ship with one); and a probe that fetches a host's thumbprint so a trust
//! failure can say exactly what to pin.

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::sync::Relock;

/// `AB:CD:…` (how vSphere shows thumbprints) of the SHA-256 of a DER certificate.
pub fn thumbprint(der: &[u8]) -> String {
    let d = Sha256::digest(der);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `AB:CD:…` of the SHA-1 of a DER certificate: what ESXi service tickets pin.
pub fn thumbprint_sha1(der: &[u8]) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A server-given SHA-1 or SHA-256 thumbprint in `AB:CD:…` form, if it is one.
pub fn normalize_any(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_uppercase();
    if !(hex.len() == 40 || hex.len() == 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        hex.as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("thumbprint {0:?} is not a SHA-256 fingerprint (64 hex digits, colons optional)")]
    BadThumbprint(String),
    #[error("no usable system root certificates ({0} errors loading them)")]
    NoRoots(usize),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Parses a user-given SHA-256 thumbprint: hex with or without colons, any case.
pub fn parse_thumbprint(s: &str) -> Result<String, TlsError> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(TlsError::BadThumbprint(s.to_owned()));
    }
    Ok(hex
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// Accepts exactly the leaf certificate whose thumbprint is `want` (any when None, for
/// the probe) and records what the server presented. Signatures are still checked, so
/// the peer must hold the pinned certificate's key.
#[derive(Debug)]
pub struct Pinned {
    want: Option<String>,
    pub seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl Pinned {
    pub fn new(want: Option<String>) -> Self {
        Self {
            want,
            seen: Arc::new(Mutex::new(None)),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    pub fn client_config(self: Arc<Self>) -> Result<rustls::ClientConfig, TlsError> {
        let mut cfg = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(self)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // A SHA-1 pin (59 characters) comes from an ESXi service ticket.
        let got = match &self.want {
            Some(w) if w.len() == 59 => thumbprint_sha1(end_entity.as_ref()),
            _ => thumbprint(end_entity.as_ref()),
        };
        *self.seen.lock().relock() = Some(got.clone());
        match &self.want {
            Some(want) if *want != got => Err(rustls::Error::General(format!(
                "certificate thumbprint {got} is not the pinned one"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whom the data path trusts: the same choice as the SOAP session's.
pub enum Trust {
    /// The system's roots.
    System,
    /// Exactly the certificate with this thumbprint.
    Pinned(String),
    /// Anyone (`-o insecure`, already logged).
    Any,
}

/// One TLS configuration, shared by the SOAP client and the data path, and for a pin the
/// slot where the certificate the server presented is recorded (the mismatch message
/// names it).
pub struct TrustConfig {
    pub config: Arc<rustls::ClientConfig>,
    pub seen: Option<Arc<Mutex<Option<String>>>>,
}

impl Trust {
    pub fn client_config(self) -> Result<TrustConfig, TlsError> {
        let want = match self {
            Trust::Pinned(t) => Some(t),
            Trust::Any => None,
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = rustls::RootCertStore::empty();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(TlsError::NoRoots(found.errors.len()));
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                return Ok(TrustConfig {
                    config: Arc::new(cfg),
                    seen: None,
                });
            }
        };
        let pinning = want.is_some();
        let verifier = Arc::new(Pinned::new(want));
        let seen = pinning.then(|| verifier.seen.clone());
        Ok(TrustConfig {
            config: Arc::new(verifier.client_config()?),
            seen,
        })
    }
}

/// Connects once to learn the thumbprint of the certificate `host:port` presents.
pub fn probe_thumbprint(host: &str, port: u16) -> Option<String> {
    let pinned = Arc::new(Pinned::new(None));
    let seen = pinned.seen.clone();
    let cfg = Arc::new(pinned.client_config().ok()?);
    let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned()).ok()?;
    let mut conn = rustls::ClientConnection::new(cfg, name).ok()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.trim_matches(['[', ']']), port))
        .ok()?
        .next()?;
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    sock.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    while conn.is_handshaking() {
        if conn.complete_io(&mut sock).is_err() {
            break;
        }
    }
    let got = seen.lock().relock().clone();
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_normalize() {
        let t = "ab".repeat(32);
        let want = vec!["AB"; 32].join(":");
        assert_eq!(parse_thumbprint(&t).unwrap(), want);
        assert_eq!(parse_thumbprint(&want.to_lowercase()).unwrap(), want);
        assert!(parse_thumbprint("AB:CD").is_err());
    }
}

//! TLS for the gRPC API, set as Matchbox sets it: TLS 1.2 and 1.3 only, ECDHE key exchange with
//! AES-GCM only, and a client certificate from the configured CA required in the handshake (and
//! not on the CA's revocation list, when one is given). The
//! server's own certificate is read again when its files change, so it rotates without a restart.

use super::GrpcTls;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as ring_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Matchbox's suites: TLS 1.3's AES-GCM ones, and TLS 1.2's ECDHE with AES-GCM.
pub fn cipher_suites() -> Vec<SupportedCipherSuite> {
    use ring_provider::cipher_suite::*;
    vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ]
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The listener's TLS settings; fails with a message naming the file at fault.
pub fn server_config(tls: &GrpcTls) -> Result<ServerConfig, String> {
    let provider = Arc::new(CryptoProvider { cipher_suites: cipher_suites(), ..ring_provider::default_provider() });
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&tls.client_ca)?) {
        let cert = cert.map_err(|e| format!("{}: not a PEM certificate: {e}", tls.client_ca.display()))?;
        roots.add(cert).map_err(|e| format!("{}: not a usable CA certificate: {e}", tls.client_ca.display()))?;
    }
    let mut crls = Vec::new();
    if let Some(file) = &tls.client_crl {
        for crl in CertificateRevocationListDer::pem_slice_iter(&read(file)?) {
            crls.push(crl.map_err(|e| format!("{}: not a PEM revocation list: {e}", file.display()))?);
        }
        if crls.is_empty() {
            return Err(format!("{}: holds no revocation list (-----BEGIN X509 CRL-----)", file.display()));
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| format!("{}: no CA to check client certificates with: {e}", tls.client_ca.display()))?;
    let certificate = RotatingCertificate::load(tls.cert.clone(), tls.key.clone(), provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(certificate));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The server's certificate and key, read again when either file's modification time changes.
#[derive(Debug)]
struct RotatingCertificate {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<(Stamp, Arc<CertifiedKey>)>,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl RotatingCertificate {
    fn load(cert: PathBuf, key: PathBuf, provider: Arc<CryptoProvider>) -> Result<RotatingCertificate, String> {
        let stamp = (modified(&cert), modified(&key));
        let loaded = Self::read(&cert, &key, &provider)?;
        Ok(RotatingCertificate { cert, key, provider, current: Mutex::new((stamp, loaded)) })
    }

    fn read(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
        let chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: not a PEM certificate: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: holds no certificate", cert.display()));
        }
        let der = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
        let signing = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| format!("{}: not a usable private key: {e}", key.display()))?;
        Ok(Arc::new(CertifiedKey::new(chain, signing)))
    }
}

impl ResolvesServerCert for RotatingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut current = self.current.lock().ok()?;
        let stamp = (modified(&self.cert), modified(&self.key));
        if stamp != current.0 {
            // A half-written pair fails to load: the previous one serves until both are in place.
            match Self::read(&self.cert, &self.key, &self.provider) {
                Ok(loaded) => {
                    tracing::info!(cert = %self.cert.display(), "serving the gRPC API's new certificate");
                    *current = (stamp, loaded);
                }
                Err(e) => tracing::warn!(error = %e, "the gRPC certificate changed but cannot be used yet"),
            }
        }
        Some(current.1.clone())
    }
}

/// Connections that completed the TLS handshake; each handshake runs on its own task, so a slow
/// or refused client holds up no one.
pub fn incoming(
    listener: TcpListener,
    config: ServerConfig,
) -> tokio_stream::wrappers::ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>> {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let (accepted, stream) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = accepted.closed() => break,
                next = listener.accept() => match next {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(error = %e, "the gRPC listener could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (acceptor, accepted) = (acceptor.clone(), accepted.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = accepted.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "a gRPC client was refused in the TLS handshake"),
                    Err(_) => tracing::info!(%peer, "a gRPC client did not finish the TLS handshake in 10 s"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(stream)
}

//! TLS for `--tls`: rustls over the TCP stream, checking the server's
//! certificate against `--cacert` (a PEM file of CA certificates) or, as
//! redis-cli does without it, the system's trusted roots.

use std::io;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A TLS stream to a server.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// How to check servers' certificates.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
}

impl Tls {
    /// Trusts the CA certificates in `cacert`, or the system's roots.
    pub fn new(cacert: Option<&Path>) -> io::Result<Tls> {
        let mut roots = RootCertStore::empty();
        match cacert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| io::Error::other(format!("--cacert {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(io::Error::other(format!(
                        "--cacert {}: no PEM certificate in the file",
                        path.display()
                    )));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| io::Error::other(format!("--cacert {}: {e}", path.display())))?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// Starts TLS on `stream` to `host` (the name the certificate must
    /// carry) and completes the handshake.
    pub fn connect(&self, host: &str, stream: TcpStream) -> io::Result<TlsStream> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        let connection = ClientConnection::new(self.config.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(connection, stream);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(stream)
    }
}

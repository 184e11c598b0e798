//! TLS for `tls-port` connections, in Rust (rustls with the ring provider): the server
//! configuration built from Redis's `tls-*` options, and the per-connection state that decrypts
//! what uvloop read into the connection's ciphertext buffer and encrypts replies for the socket.
//! Plaintext is copied once after decryption, into the session's input (or straight into a large
//! tensor's buffer); replies are encrypted from the session's output and stored tensors.
use std::io::{self, Read, Write};
use std::os::raw::c_int;
use std::sync::Arc;

use redisai_core::config::Config;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Bytes of ciphertext one socket read may bring.
pub const CIPHER_BUF: usize = 64 * 1024;

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("Failed to load certificate {path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("Failed to load certificate {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("Failed to load certificate {path}: no certificate in it"));
    }
    Ok(certs)
}

/// `tls-key-file-pass`: a PKCS#8 key encrypted with PBES2 (`-----BEGIN ENCRYPTED PRIVATE KEY-----`,
/// what `openssl pkcs8 -topk8 -v2 aes-256-cbc` and `openssl genpkey -aes256` write).
fn encrypted_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::pem;
    let fail = |why: String| format!("Failed to load private key {path}: {why}");
    let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let (label, der) = pem::decode_vec(&text).map_err(|e| fail(e.to_string()))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(fail(format!(
            "tls-key-file-pass needs a PKCS#8 encrypted key (ENCRYPTED PRIVATE KEY), not {label} (convert it with openssl pkcs8 -topk8 -v2 aes-256-cbc)"
        )));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| fail(e.to_string()))?;
    let plain = info.decrypt(pass.as_bytes()).map_err(|_| fail("wrong tls-key-file-pass, or an unsupported encryption".into()))?;
    Ok(PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())))
}

/// OpenSSL's TLS 1.3 suite names (`TLS_AES_256_GCM_SHA384`) and TLS 1.2 ones
/// (`ECDHE-RSA-AES256-GCM-SHA384`) for rustls's suites.
fn openssl_name(suite: rustls::CipherSuite) -> Option<&'static str> {
    use rustls::CipherSuite as S;
    Some(match suite {
        S::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        S::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        S::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => return None,
    })
}

/// The suites of `provider` that `tls-ciphersuites` (TLS 1.3) and `tls-ciphers` (TLS 1.2) allow
/// (colon-separated OpenSSL names; an empty option keeps every suite of that version).
fn restrict_suites(provider: &mut CryptoProvider, ciphersuites: &str, ciphers: &str) -> Result<(), String> {
    let wanted = |list: &str| -> Vec<String> { list.split(':').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect() };
    let (v13, v12) = (wanted(ciphersuites), wanted(ciphers));
    for name in v13.iter().chain(&v12) {
        if !provider.cipher_suites.iter().any(|s| openssl_name(s.suite()) == Some(name.as_str())) {
            return Err(format!("Unsupported TLS cipher suite '{name}'"));
        }
    }
    provider.cipher_suites.retain(|s| {
        let name = openssl_name(s.suite()).unwrap_or("");
        let is13 = s.version() == &rustls::version::TLS13;
        let list = if is13 { &v13 } else { &v12 };
        list.is_empty() || list.iter().any(|w| w == name)
    });
    Ok(())
}

/// The server configuration for `tls-port`, from the `tls-*` options.
pub fn server_config(cfg: &Config) -> Result<Arc<ServerConfig>, String> {
    let get = |n: &str| cfg.get(n).unwrap_or("").to_string();
    let (cert, key) = (get("tls-cert-file"), get("tls-key-file"));
    if cert.is_empty() || key.is_empty() {
        return Err("tls-port needs tls-cert-file and tls-key-file".into());
    }
    let chain = certs(&cert)?;
    let pass = get("tls-key-file-pass");
    let key_der = if pass.is_empty() {
        PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("Failed to load private key {key}: {e}"))?
    } else {
        encrypted_key(&key, &pass)?
    };
    let mut provider = rustls::crypto::ring::default_provider();
    restrict_suites(&mut provider, &get("tls-ciphersuites"), &get("tls-ciphers"))?;
    let provider = Arc::new(provider);
    let mut versions = Vec::new();
    let protocols = get("tls-protocols").to_ascii_lowercase();
    for p in protocols.split_whitespace() {
        versions.push(match p {
            "tlsv1.2" => &rustls::version::TLS12,
            "tlsv1.3" => &rustls::version::TLS13,
            other => return Err(format!("Unsupported tls-protocols value '{other}' (TLSv1.2 and TLSv1.3 are)")),
        });
    }
    if versions.is_empty() {
        versions = vec![&rustls::version::TLS12, &rustls::version::TLS13];
    }
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_protocol_versions(&versions).map_err(|e| format!("TLS: {e}"))?;
    let auth = get("tls-auth-clients").to_ascii_lowercase();
    let (ca_file, ca_dir) = (get("tls-ca-cert-file"), get("tls-ca-cert-dir"));
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let mut files = Vec::new();
        if !ca_file.is_empty() {
            files.push(ca_file.clone());
        }
        if !ca_dir.is_empty() {
            let dir = std::fs::read_dir(&ca_dir).map_err(|e| format!("Failed to read tls-ca-cert-dir {ca_dir}: {e}"))?;
            files.extend(dir.filter_map(|e| e.ok()).map(|e| e.path().to_string_lossy().into_owned()));
        }
        if files.is_empty() {
            return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-auth-clients is enabled!".into());
        }
        for f in &files {
            match certs(f) {
                Ok(list) => {
                    roots.add_parsable_certificates(list);
                }
                // a CA directory may hold other files (OpenSSL's hash links resolve to the same certificates)
                Err(e) if *f == ca_file => return Err(e),
                Err(_) => {}
            }
        }
        if roots.is_empty() {
            return Err("No CA certificate could be loaded from tls-ca-cert-file / tls-ca-cert-dir".into());
        }
        let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if auth == "optional" {
            v = v.allow_unauthenticated();
        }
        builder.with_client_cert_verifier(v.build().map_err(|e| format!("TLS client verifier: {e}"))?)
    };
    let config = builder.with_single_cert(chain, key_der).map_err(|e| format!("Failed to use certificate {cert} / key {key}: {e}"))?;
    Ok(Arc::new(config))
}

/// Writes to a non-blocking socket; EAGAIN comes back as `WouldBlock`.
pub struct FdWriter(pub c_int);

impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: writing from a live slice to our socket.
        let n = unsafe { libc::write(self.0, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
    /// rustls hands over every queued record at once: one writev for all of them.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = bufs.len().min(1024);
        // SAFETY: IoSlice has iovec's layout on Unix; every slice outlives the call.
        let r = unsafe { libc::writev(self.0, bufs.as_ptr() as *const libc::iovec, n as c_int) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One TLS connection: rustls's state and the buffer uvloop reads ciphertext into.
pub struct TlsConn {
    pub conn: ServerConnection,
    pub cipher: Box<[u8]>,
    /// The peer's close_notify arrived, or the TLS stream failed: close after the replies.
    pub finished: bool,
}

impl TlsConn {
    pub fn new(config: &Arc<ServerConfig>) -> Result<TlsConn, String> {
        let mut conn = ServerConnection::new(config.clone()).map_err(|e| e.to_string())?;
        // large replies (a 16 MiB tensor) are encrypted in one go, not refused past 64 KiB
        conn.set_buffer_limit(None);
        Ok(TlsConn { conn, cipher: vec![0u8; CIPHER_BUF].into_boxed_slice(), finished: false })
    }

    /// Feeds `n` bytes of ciphertext from `cipher` and moves the plaintext into `input` (one copy
    /// into its read window). Returns false when the TLS stream is broken (the connection then
    /// sends its alert and closes).
    pub fn receive(&mut self, n: usize, input: &mut redisai_core::resp::Input) -> bool {
        let TlsConn { conn, cipher, finished } = self;
        let mut rest: &[u8] = &cipher[..n.min(cipher.len())];
        loop {
            if !rest.is_empty() {
                match conn.read_tls(&mut rest) {
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            if conn.process_new_packets().is_err() {
                return false;
            }
            loop {
                let (ptr, len) = input.read_window();
                if len == 0 {
                    break;
                }
                // SAFETY: the window is writable memory of `input`, valid until the next call on it.
                let window = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                match conn.reader().read(window) {
                    Ok(0) => {
                        *finished = true;
                        break;
                    }
                    Ok(k) => input.commit(k),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        *finished = true;
                        break;
                    }
                }
            }
            if rest.is_empty() {
                return true;
            }
        }
    }

    /// Sends pending TLS records: to the socket directly when `direct`, and what it does not
    /// take is returned for the transport (then nothing more may go direct until it drains).
    pub fn drain(&mut self, fd: c_int, direct: bool) -> Vec<u8> {
        if direct && fd >= 0 {
            let mut w = FdWriter(fd);
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut w) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        let mut rest = Vec::new();
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut rest).is_err() {
                break;
            }
        }
        rest
    }
}

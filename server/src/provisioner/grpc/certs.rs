//! `pangea provisioner certs`: a CA, a server certificate and a client certificate for the gRPC
//! API, with the file names Matchbox's `scripts/tls/cert-gen` writes, for a quick start.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// What it writes into the folder.
pub const FILES: [&str; 6] = ["ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key"];

fn san(name: &str) -> Result<SanType, String> {
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => {
            let label =
                |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let host = name.strip_prefix("*.").unwrap_or(name);
            if name.len() <= 253 && host.split('.').all(label) {
                name.to_string().try_into().map(SanType::DnsName).map_err(|e| format!("\"{name}\": {e}"))
            } else {
                Err(format!("\"{name}\" is neither a DNS name nor an IP address"))
            }
        }
    }
}

fn params(common_name: &str, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
    params
}

/// Writes the six files into `dir` (created if missing); refuses to replace any of them.
/// `server_names` are the DNS names and IP addresses clients reach the gRPC API at.
pub fn generate(dir: &Path, server_names: &[String], client_name: &str) -> Result<Vec<PathBuf>, String> {
    if server_names.is_empty() {
        return Err("name at least one DNS name or IP address the server is reached at (--server-name)".into());
    }
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(format!("{} exists already; nothing was written", existing.display()));
    }
    fn failed(what: &'static str) -> impl Fn(rcgen::Error) -> String {
        move |e| format!("cannot make the {what}: {e}")
    }
    let mut ca = params("pangea-grpc-ca", 3650);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(failed("CA key"))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(failed("CA certificate"))?;

    let mut server = params(&server_names[0], 825);
    server.subject_alt_names = server_names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(failed("server key"))?;
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).map_err(failed("server certificate"))?;

    let mut client = params(client_name, 825);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(failed("client key"))?;
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).map_err(failed("client certificate"))?;

    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let contents = [
        ca_cert.pem(),
        ca_key.serialize_pem(),
        server_cert.pem(),
        server_key.serialize_pem(),
        client_cert.pem(),
        client_key.serialize_pem(),
    ];
    for (path, text) in paths.iter().zip(contents) {
        write_new(path, &text, path.extension().is_some_and(|e| e == "key"))?;
    }
    Ok(paths)
}

/// Creates `path` (never replacing a file); keys are readable by their owner only.
fn write_new(path: &Path, text: &str, secret: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_or_ip_alternative_names() {
        assert!(matches!(san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("matchbox.example.com"), Ok(SanType::DnsName(_))));
        assert!(san("not a name").is_err());
    }

    #[test]
    fn it_writes_six_files_once_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let written = generate(dir.path(), &["localhost".into()], "terraform").unwrap();
        assert_eq!(written.len(), 6);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("client.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = generate(dir.path(), &["localhost".into()], "terraform").unwrap_err();
        assert!(again.contains("exists already"), "{again}");
        assert!(generate(dir.path(), &[], "x").unwrap_err().contains("--server-name"));
    }
}

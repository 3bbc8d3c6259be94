//! The shared secret in a file, for a relay started without one: the relay generates a
//! secret once, writes it to a file only its owner can read (mode 0600), and reuses it on
//! every later start; the simulation-service reads the same file. The value itself is
//! never logged (whoever reads the logs could mint tokens and inject frames); logs name
//! the file.
//!
//! Several relays may share the file (a volume mounted into each): the file is made by
//! writing a private temporary file and hard-linking it into place, which fails if the
//! file appeared meanwhile, so every relay ends up with the one secret that won.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use shared_protocol::{SharedSecret, WeakSecret};
use tracing::warn;

/// Default `--shared-secret-file`: in the working directory, so that a relay and a
/// simulation-service started from the same directory (the repository, `make up`) find
/// the same file.
pub const DEFAULT_PATH: &str = ".v1-shared-secret";

/// Where the secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file existed and was read.
    Read,
    /// The file did not exist; a new secret was generated into it.
    Created,
}

/// The secret file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read the shared secret file {path}: {source}; point --shared-secret-file (V1_SHARED_SECRET_FILE) at the relay's secret file, or set V1_SHARED_SECRET")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write a new shared secret to {path}: {source}; make its directory writable, choose another path with --shared-secret-file (V1_SHARED_SECRET_FILE), or set V1_SHARED_SECRET")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the shared secret file {path} does not hold a usable secret: {source}; delete it to have the relay generate a new one, or write 64 random hex digits into it (`openssl rand -hex 32`)")]
    Weak { path: PathBuf, source: WeakSecret },
}

/// The secret in `path`, or a new one generated into it (see the module docs).
pub fn read_or_create(path: &Path) -> Result<(SharedSecret, Origin), SecretFileError> {
    match read(path) {
        Ok(secret) => return Ok((secret, Origin::Read)),
        Err(SecretFileError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let bytes: [u8; 32] = rand::random();
    let (secret, text) = SharedSecret::from_random_bytes(bytes).map_err(|source| SecretFileError::Weak { path: path.to_owned(), source })?;
    let write_err = |source| SecretFileError::Write { path: path.to_owned(), source };
    let mut tmp_name = path.as_os_str().to_owned();
    // Unique per attempt, so that racing writers never share a temporary file.
    tmp_name.push(format!(".{}-{:016x}.tmp", std::process::id(), rand::random::<u64>()));
    let tmp = PathBuf::from(tmp_name);
    let written = write_private(&tmp, &text).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok((secret, Origin::Created)),
        // Another process made the file first: use its secret, so that all agree.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok((read(path)?, Origin::Read)),
        Err(e) => Err(write_err(e)),
    }
}

/// The secret in `path` (surrounding whitespace ignored). Warns, naming the file, when
/// other users may read it.
pub fn read(path: &Path) -> Result<SharedSecret, SecretFileError> {
    let text = fs::read_to_string(path).map_err(|source| SecretFileError::Read { path: path.to_owned(), source })?;
    warn_if_shared(path);
    SharedSecret::new(text.trim()).map_err(|source| SecretFileError::Weak { path: path.to_owned(), source })
}

/// Creates `path` readable and writable by its owner only, holding `text` and a newline.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn!(file = %path.display(), mode = format!("{mode:o}"), "the shared secret file can be read by other users; `chmod 600` it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// A published secret on a service others can reach.
#[derive(Debug, thiserror::Error)]
#[error("the shared secret is a published example value, and the service listens on {bind}, reachable from other machines: anyone could mint session tokens and inject frames. Unset V1_SHARED_SECRET to have the relay generate one into its secret file, or set it to a random value (`openssl rand -hex 32`)")]
pub struct PublicSecret {
    pub bind: IpAddr,
}

/// Refuses a published secret ([`shared_protocol::auth::PUBLIC_SECRETS`]) unless the
/// service listens on loopback only.
pub fn refuse_public_secret(secret: &SharedSecret, bind: IpAddr) -> Result<(), PublicSecret> {
    if secret.is_public() && !bind.is_loopback() {
        return Err(PublicSecret { bind });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_private_reused_and_shared_by_racing_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let (first, origin) = read_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        let (again, origin) = read_or_create(&path).unwrap();
        assert_eq!(origin, Origin::Read);
        assert_eq!(again.bearer_header(), first.bearer_header());
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // Writers racing for a new file all end up with the same secret.
        let raced = dir.path().join("raced");
        let headers: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| read_or_create(&raced).unwrap().0.bearer_header())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(headers.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn bad_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("secret");
        let e = read_or_create(&missing).unwrap_err();
        assert!(matches!(e, SecretFileError::Write { .. }), "{e}");
        assert!(e.to_string().contains("no-such-dir"), "{e}");
        let e = read(&dir.path().join("absent")).unwrap_err();
        assert!(e.to_string().contains("--shared-secret-file"), "{e}");
        let short = dir.path().join("short");
        fs::write(&short, "abc\n").unwrap();
        let e = read_or_create(&short).unwrap_err();
        assert!(matches!(e, SecretFileError::Weak { .. }), "{e}");
        assert!(!e.to_string().contains("abc"), "the file's content is never echoed: {e}");
    }

    #[test]
    fn published_secrets_are_refused_off_loopback() {
        let public = SharedSecret::new(shared_protocol::auth::PUBLIC_SECRETS[0]).unwrap();
        assert!(refuse_public_secret(&public, "127.0.0.1".parse().unwrap()).is_ok());
        assert!(refuse_public_secret(&public, "0.0.0.0".parse().unwrap()).is_err());
        let private = SharedSecret::new("0123456789abcdef0123456789abcdef").unwrap();
        assert!(refuse_public_secret(&private, "0.0.0.0".parse().unwrap()).is_ok());
    }
}

//! The signing key on disk: generated on first start with mode 0600, loaded from a file or from the
//! `DOCKETOPS_SIGNING_KEY` environment variable, and swapped safely during a rotation.
//!
//! Rotation is crash-safe in this order: the new key is written to `<key>.next` and synced; the
//! rotation entry is committed to the ledger; the old key moves to `retired/<key id>.pem` and
//! `<key>.next` becomes `<key>`. If the process dies in between, the next start finishes the swap when
//! the ledger says the new key is active, or sets `<key>.next` aside (never deletes it) when it does
//! not. An exclusive lock on `<key>.lock` covers loading, recovery and the whole rotation, so two
//! processes never act on the key files at once.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ledger_core::LedgerSigningKey;
use storage::Store;

use crate::settings::{DatabaseArgs, SigningKeyArgs, create_private_dir};

/// Where the key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// PEM text in `DOCKETOPS_SIGNING_KEY` (for example from a Kubernetes Secret).
    Env,
    File(PathBuf),
}

pub fn source(database: &DatabaseArgs, key: &SigningKeyArgs) -> KeySource {
    if std::env::var_os("DOCKETOPS_SIGNING_KEY").is_some() {
        return KeySource::Env;
    }
    KeySource::File(
        key.signing_key_file
            .clone()
            .unwrap_or_else(|| database.data_dir.join("signing-key.pem")),
    )
}

/// Holds `<key>.lock` until dropped.
#[derive(Debug)]
pub struct KeyLock {
    _file: Option<File>,
}

impl KeyLock {
    fn acquire(key_path: &Path) -> anyhow::Result<KeyLock> {
        let path = sibling(key_path, ".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock().with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(KeyLock { _file: Some(file) })
    }
}

/// Loads the signing key after finishing or setting aside an interrupted rotation. A key is generated
/// only for an empty ledger: a missing key file beside a ledger with entries is an error, not a reason
/// to start a second chain of keys. The returned lock keeps other processes off the key files for as
/// long as the caller holds it.
pub async fn load_or_generate(source: &KeySource, store: &Store) -> anyhow::Result<(LedgerSigningKey, KeyLock)> {
    match source {
        KeySource::Env => {
            let pem = std::env::var("DOCKETOPS_SIGNING_KEY").context("DOCKETOPS_SIGNING_KEY is not valid UTF-8")?;
            let key = LedgerSigningKey::from_pkcs8_pem(&pem).context("DOCKETOPS_SIGNING_KEY")?;
            Ok((key, KeyLock { _file: None }))
        }
        KeySource::File(path) => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            let lock = KeyLock::acquire(path)?;
            finish_interrupted_rotation(path, store).await?;
            if path.exists() {
                return Ok((read(path)?, lock));
            }
            if let Some(active) = store.next_signing_key_id().await? {
                anyhow::bail!(
                    "no signing key at {}, but the ledger's entries are signed with {active}: restore that key file (or give it in DOCKETOPS_SIGNING_KEY)",
                    path.display()
                );
            }
            let key = LedgerSigningKey::generate();
            write_private(path, &key)?;
            tracing::info!(key_id = key.key_id(), path = %path.display(), "generated a new ledger signing key");
            Ok((key, lock))
        }
    }
}

pub fn read(path: &Path) -> anyhow::Result<LedgerSigningKey> {
    let pem = fs::read_to_string(path).with_context(|| format!("cannot read the signing key {}", path.display()))?;
    LedgerSigningKey::from_pkcs8_pem(&pem).with_context(|| format!("signing key {}", path.display()))
}

/// Writes `key` to a new file readable by the owner only, synced to disk. Refuses to overwrite.
pub fn write_private(path: &Path, key: &LedgerSigningKey) -> anyhow::Result<()> {
    let pem = key.to_pkcs8_pem()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    sync_dir(path)
}

/// Makes a file's creation or renaming durable: the directory entry itself must reach the disk.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?
        .sync_all()
        .with_context(|| format!("cannot sync {}", dir.display()))
}

pub fn next_path(path: &Path) -> PathBuf {
    sibling(path, ".next")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// After the rotation entry is committed: retire the old key file and put the new one in its place.
pub fn complete_rotation(path: &Path, old_key_id: &str) -> anyhow::Result<PathBuf> {
    let retired_dir = path.parent().unwrap_or(Path::new(".")).join("retired");
    create_private_dir(&retired_dir)?;
    let retired = retired_dir.join(format!("{}.pem", old_key_id.replace(':', "-")));
    if path.exists() {
        fs::rename(path, &retired).with_context(|| format!("cannot move the old key to {}", retired.display()))?;
    }
    fs::rename(next_path(path), path).with_context(|| format!("cannot install the new key at {}", path.display()))?;
    sync_dir(&retired)?;
    sync_dir(path)?;
    Ok(retired)
}

async fn finish_interrupted_rotation(path: &Path, store: &Store) -> anyhow::Result<()> {
    let next = next_path(path);
    if !next.exists() {
        return Ok(());
    }
    let next_key = read(&next)?;
    let active = store.next_signing_key_id().await?;
    if active.as_deref() == Some(next_key.key_id()) {
        let old = if path.exists() {
            read(path)?.key_id().to_string()
        } else {
            "unknown".into()
        };
        complete_rotation(path, &old)?;
        tracing::warn!(
            key_id = next_key.key_id(),
            "finished a key rotation that was interrupted"
        );
    } else {
        let unused = sibling(path, &format!(".unused-{}", next_key.key_id().replace(':', "-")));
        fs::rename(&next, &unused)?;
        tracing::warn!(
            key_id = next_key.key_id(),
            path = %unused.display(),
            "set aside a new signing key whose rotation never reached the ledger"
        );
    }
    Ok(())
}

/// For commands that must not write a key where none is expected.
pub fn require_file(source: &KeySource) -> anyhow::Result<&Path> {
    match source {
        KeySource::File(path) => Ok(path),
        KeySource::Env => bail!(
            "the signing key comes from DOCKETOPS_SIGNING_KEY; rotate with a key file (--signing-key-file) or give the new key with --new-key"
        ),
    }
}

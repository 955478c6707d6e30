//! Write faults (a full disk, a read-only database): noted when a statement ends in one, and probed for
//! readiness until a write works again. Reads keep working meanwhile.

use serde::Serialize;

use crate::{Backend, StorageError, Store, with_writer};

/// Why writes fail while reads work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteFault {
    /// The database's disk is full (SQLite SQLITE_FULL, PostgreSQL 53100 disk_full).
    Full,
    /// The database refuses writes: a read-only file, directory or file system, or a PostgreSQL server in
    /// read-only mode (25006).
    ReadOnly,
}

/// SQLite reports its extended result code (the primary code in the low byte), PostgreSQL its SQLSTATE.
pub(crate) fn fault_of(error: &sqlx::Error) -> Option<WriteFault> {
    const SQLITE_READONLY: i32 = 8;
    const SQLITE_FULL: i32 = 13;
    match error {
        sqlx::Error::Database(db) => match (db.try_downcast_ref::<sqlx::sqlite::SqliteError>(), db.code()) {
            (Some(_), Some(code)) => match code.parse::<i32>().ok()? & 0xff {
                SQLITE_FULL => Some(WriteFault::Full),
                SQLITE_READONLY => Some(WriteFault::ReadOnly),
                _ => None,
            },
            (None, Some(code)) if code == "53100" => Some(WriteFault::Full),
            (None, Some(code)) if code == "25006" => Some(WriteFault::ReadOnly),
            _ => None,
        },
        sqlx::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::StorageFull => Some(WriteFault::Full),
            std::io::ErrorKind::ReadOnlyFilesystem => Some(WriteFault::ReadOnly),
            _ => None,
        },
        _ => None,
    }
}

impl Store {
    /// Notes a write fault `result` ends in.
    pub(crate) fn observe<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(error) = &result
            && let Some(fault) = fault_of(error)
        {
            *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((fault, error.to_string()));
        }
        result
    }

    /// Notes `error` if it is a write fault.
    pub(crate) fn note_fault(&self, error: &StorageError) {
        if let Some(fault) = error.fault() {
            *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some((fault, error.to_string()));
        }
    }

    /// Forgets the last write fault: a write just succeeded.
    pub(crate) fn clear_fault(&self) {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Why writes fail, for readiness: None while no write fault was seen since the last successful write.
    /// After a fault, probes decide, so readiness returns by itself once space is back: on SQLite a
    /// scratch file of [`SPACE_PROBE_BYTES`] beside the database (a database write could still fit into
    /// the log space a failed write left behind), then a small write to the database.
    pub async fn write_fault(&self) -> Option<(WriteFault, String)> {
        let recorded = self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        if let Backend::Sqlite(pool) = &self.backend {
            let db = pool.connect_options().get_filename().to_path_buf();
            if let Some(fault) = space_probe(db).await {
                return Some(fault);
            }
        }
        let sql = "INSERT INTO settings (name, value) VALUES ('write_probe', $1) \
                   ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        match with_writer!(self, pool => sqlx::query(sql).bind(&now).execute(pool).await.map(|_| ())) {
            Ok(()) => {
                self.clear_fault();
                None
            }
            Err(error) => Some(fault_of(&error).map_or(recorded, |kind| (kind, error.to_string()))),
        }
    }
}

/// How much room the SQLite readiness probe asks of the database's file system after a write fault.
pub const SPACE_PROBE_BYTES: usize = 1 << 20;

/// Writes and removes a scratch file of [`SPACE_PROBE_BYTES`] beside `db`; the fault if that fails.
async fn space_probe(db: std::path::PathBuf) -> Option<(WriteFault, String)> {
    let mut path = db.into_os_string();
    path.push("-space-probe");
    let path = std::path::PathBuf::from(path);
    let written = tokio::task::spawn_blocking(move || {
        let result = std::fs::write(&path, vec![0u8; SPACE_PROBE_BYTES]);
        let _ = std::fs::remove_file(&path);
        result.map_err(|e| (e, path))
    })
    .await
    .ok()?;
    let (error, path) = written.err()?;
    let fault = match error.kind() {
        std::io::ErrorKind::StorageFull => WriteFault::Full,
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => WriteFault::ReadOnly,
        _ => return None,
    };
    let room = SPACE_PROBE_BYTES >> 20;
    Some((
        fault,
        format!(
            "cannot write {room} MiB beside the database ({}): {error}",
            path.display()
        ),
    ))
}

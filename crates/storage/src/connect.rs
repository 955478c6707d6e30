//! Opening a [`Store`]: connection pools for each backend (read-write or read-only), migrations, and
//! closing; and database URLs made fit for messages.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

use crate::{Backend, BackendKind, StorageError, Store, tlog, with_pool};

/// The migrations of each backend. A database migrated by a newer release has migrations this one does not
/// know; they only add, so this release ignores them instead of refusing to start (rollbacks, rolling upgrades).
fn migrator(backend: BackendKind) -> sqlx::migrate::Migrator {
    let mut migrator = match backend {
        BackendKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        BackendKind::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.set_ignore_missing(true);
    migrator
}

/// A connection that comes back to the pool still inside a transaction was interrupted by an error (a
/// failed COMMIT, SQLite's automatic rollback on SQLITE_FULL that left sqlx's depth counter behind, a
/// cancelled request). It may hold the database's write lock or refuse the next BEGIN, so it is closed
/// (closing rolls back) instead of being reused.
fn discard_if_in_transaction<C: Connection>(
    conn: &mut C,
    _: sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'_, Result<bool, sqlx::Error>> {
    let reusable = !conn.is_in_transaction();
    if !reusable {
        tracing::warn!("closing a database connection returned inside a transaction (an error interrupted it)");
    }
    Box::pin(std::future::ready(Ok(reusable)))
}

impl Store {
    /// Connects to `sqlite://PATH` (created if missing; WAL, synchronous=FULL) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Every acknowledged append survives a power loss: the WAL is fsynced at each commit.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true);
            let readers = sqlite_pool(options.clone(), 4).await?;
            let writer = sqlite_pool(options, 1).await?;
            return Ok(Store {
                sqlite_writer: Some(writer),
                ..Store::new(Backend::Sqlite(readers))
            });
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?.application_name("docketops");
            Backend::Postgres(postgres_pool(options, 8).await?)
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        Ok(Store::new(backend))
    }

    /// Connects for reading only (`verify`, `export`): no file, directory, WAL or -shm is created, no
    /// migration runs and no checkpoint writes, so a copy on a read-only file system can be checked.
    /// A SQLite database without a write-ahead log beside it (closed cleanly) opens as immutable when
    /// its directory is read-only, since SQLite could not create the -shm file it otherwise needs.
    pub async fn connect_read_only(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite_read_only(url).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?
                .application_name("docketops")
                .options([("default_transaction_read_only", "on")]);
            Backend::Postgres(postgres_pool(options, 2).await?)
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        Ok(Store::new(backend))
    }

    fn new(backend: Backend) -> Store {
        Store {
            backend,
            sqlite_writer: None,
            fault: Arc::default(),
            tree_cache: Arc::new(tlog::reads::TreeCache::new()),
            identity_budget_rows: Arc::default(),
            budget_queue: Arc::default(),
        }
    }

    /// Applies pending migrations. Migrations only ever add (expand/contract), so the previous release
    /// keeps running against a migrated database during a rolling upgrade.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match &self.backend {
            Backend::Sqlite(pool) => migrator(BackendKind::Sqlite).run(pool).await?,
            Backend::Postgres(pool) => migrator(BackendKind::Postgres).run(pool).await?,
        }
        Ok(())
    }

    /// For readiness probes.
    pub async fn ping(&self) -> Result<(), StorageError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// SQLite: copies the write-ahead log into the database file and empties it (`wal_checkpoint(TRUNCATE)`),
    /// so the file alone holds every committed entry (e.g. before copying it). PostgreSQL: nothing to do.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        if let Backend::Sqlite(pool) = &self.writer() {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await?;
        }
        Ok(())
    }

    /// Closes the pools (SQLite's writer connection too), waiting for connections in use to come back.
    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

pub(crate) async fn sqlite_pool(options: SqliteConnectOptions, size: u32) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(size)
        .after_release(discard_if_in_transaction)
        .connect_with(options)
        .await
}

async fn postgres_pool(options: PgConnectOptions, size: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_release(discard_if_in_transaction)
        .connect_with(options)
        .await
}

/// A read-only pool, tried with a first read (SQLite opens the file lazily). A WAL-mode database needs its
/// -shm file, which a read-only directory cannot get; without a -wal file the database file holds every
/// commit, so it is then opened immutable.
async fn sqlite_read_only(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .read_only(true)
        .busy_timeout(Duration::from_secs(30));
    let first_read = |pool: SqlitePool| async move {
        sqlx::query("SELECT count(*) FROM sqlite_master").execute(&pool).await?;
        Ok::<_, sqlx::Error>(pool)
    };
    let error = match first_read(sqlite_pool(options.clone(), 2).await?).await {
        Ok(pool) => return Ok(pool),
        Err(error) => error,
    };
    if wal_exists(options.get_filename()) {
        return Err(error);
    }
    tracing::debug!(%error, "read-only open failed; opening immutable (no write-ahead log beside the file)");
    let immutable = SqliteConnectOptions::from_str(&immutable_url(url))?.read_only(true);
    first_read(sqlite_pool(immutable, 2).await?).await.map_err(|_| error)
}

fn wal_exists(db: &std::path::Path) -> bool {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::path::Path::new(&wal).exists()
}

fn immutable_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}immutable=true")
}

/// A database URL without its password (user info or `password` parameter), for messages and logs.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable database URL>".to_string();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(name, _)| name.eq_ignore_ascii_case("password")) {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (name, value) in &pairs {
            let value = if name.eq_ignore_ascii_case("password") {
                "****"
            } else {
                value.as_str()
            };
            query.append_pair(name, value);
        }
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords_wherever_they_are() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:****@h/db");
        assert_eq!(
            super::redact("postgres://h/db?password=secret&sslmode=require"),
            "postgres://h/db?password=****&sslmode=require"
        );
        assert_eq!(super::redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert!(!super::redact("not a url with secret").contains("secret"));
    }
}

//! Creating and dropping PostgreSQL databases, for tests and benchmarks that each want one of their own.

use sqlx::postgres::PgPoolOptions;

use crate::{StorageError, redact};

/// Creates PostgreSQL database `name` through `admin_url` (a database the role can connect to) and
/// returns the URL of the new database. For tests and benchmarks that each want a database of their own.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StorageError> {
    check_database_name(name)?;
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let mut url = url::Url::parse(admin_url).map_err(|_| StorageError::UnsupportedUrl(redact(admin_url)))?;
    url.set_path(name);
    Ok(url.to_string())
}

/// Drops a database made by [`create_postgres_database`].
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), StorageError> {
    check_database_name(name)?;
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

fn check_database_name(name: &str) -> Result<(), StorageError> {
    // The name is spliced into DDL (which takes no bind parameters), so only plain identifiers pass.
    if !name.is_empty()
        && name.len() < 60
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(StorageError::UnsupportedUrl(format!("invalid database name {name:?}")))
    }
}

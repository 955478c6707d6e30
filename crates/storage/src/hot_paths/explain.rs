//! Asking the database about the hot paths: sample parameters from real rows, each statement's plan
//! (PostgreSQL's generic plan too), and the statistics the query-plan test reads.

use sqlx::Row;

use super::{GROWING_TABLES, HotPath, Plan, Sample, Samples, bind_all};
use crate::{Backend, StorageError, Store, with_pool};

/// [`bind_all`] on PostgreSQL, arrays too.
fn bind_postgres<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    params: &[Sample],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for param in params {
        query = match param {
            Sample::Texts(v) => query.bind(v.clone()),
            Sample::Text(v) => query.bind(v.clone()),
            Sample::Int(v) => query.bind(*v),
            Sample::Null => query.bind(None::<String>),
            Sample::NullInt => query.bind(None::<i64>),
        };
    }
    query
}

impl Store {
    /// Sample parameters taken from the database (the newest action, its requester and one of its keys).
    pub async fn hot_path_samples(&self) -> Result<Samples, StorageError> {
        let sql = "SELECT a.id, a.identity_id, COALESCE(a.namespace, 'default'), \
                   (SELECT k.digest FROM api_keys k WHERE k.identity_id = a.identity_id LIMIT 1), \
                   (SELECT e.id FROM ledger_entries e WHERE e.action_id = a.id ORDER BY e.seq LIMIT 1), \
                   (SELECT MAX(seq) FROM ledger_entries) \
                   FROM actions a ORDER BY a.created_at DESC, a.id DESC LIMIT 1";
        type Row = (String, String, String, Option<String>, Option<String>, Option<i64>);
        let row: Option<Row> = with_pool!(self, pool => sqlx::query_as(sql).fetch_optional(pool).await)?;
        let (action_id, identity_id, namespace, digest, entry_id, seq) = row.unwrap_or_default();
        Ok(Samples {
            action_id,
            identity_id,
            key_digest: digest.unwrap_or_default(),
            entry_id: entry_id.unwrap_or_default(),
            namespace,
            seq: seq.unwrap_or(0),
            now: ledger_core::entry::format_timestamp(time::OffsetDateTime::now_utc()),
            postgres: matches!(self.backend(), Backend::Postgres(_)),
        })
    }

    /// The plan the database picks for `path` with its sample parameters bound.
    pub async fn explain(&self, path: &HotPath) -> Result<Plan, StorageError> {
        let plan = match self.backend() {
            Backend::Postgres(pool) => {
                let sql = format!("EXPLAIN {}", path.sql);
                let rows = bind_postgres(sqlx::query(&sql), &path.params).fetch_all(pool).await?;
                let lines = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<Vec<_>, _>>()?;
                lines.join("\n")
            }
            Backend::Sqlite(pool) => {
                let sql = format!("EXPLAIN QUERY PLAN {}", path.sql);
                let rows = bind_all!(sqlx::query(&sql), &path.params).fetch_all(pool).await?;
                let lines = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>(3))
                    .collect::<Result<Vec<_>, _>>()?;
                lines.join("\n")
            }
        };
        Ok(Plan {
            name: path.name,
            sql: path.sql.clone(),
            plan,
        })
    }

    /// PostgreSQL only: the generic plan (the one a prepared statement may settle on after a few runs,
    /// whatever its parameters), through `PREPARE` and `EXPLAIN EXECUTE` under `force_generic_plan`.
    pub async fn explain_generic(&self, path: &HotPath) -> Result<Option<Plan>, StorageError> {
        let Backend::Postgres(pool) = self.backend() else {
            return Ok(None);
        };
        let literals = path.params.iter().map(literal).collect::<Vec<_>>().join(", ");
        let execute = if literals.is_empty() {
            "EXPLAIN EXECUTE docketops_hot".to_string()
        } else {
            format!("EXPLAIN EXECUTE docketops_hot({literals})")
        };
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *conn)
            .await?;
        sqlx::raw_sql(&format!("PREPARE docketops_hot AS {}", path.sql))
            .execute(&mut *conn)
            .await?;
        let rows = sqlx::query(&execute).fetch_all(&mut *conn).await;
        sqlx::raw_sql("DEALLOCATE docketops_hot; RESET plan_cache_mode")
            .execute(&mut *conn)
            .await?;
        let lines = rows?
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Plan {
            name: path.name,
            sql: path.sql.clone(),
            plan: lines.join("\n"),
        }))
    }

    /// PostgreSQL only: refreshes the planner's statistics (after a bulk load). SQLite: `ANALYZE` too.
    pub async fn analyze(&self) -> Result<(), StorageError> {
        with_pool!(self, pool => sqlx::raw_sql("ANALYZE").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// How many sequential scans PostgreSQL counted on each of [`GROWING_TABLES`] since the statistics
    /// were last reset, in that order (None on SQLite, which counts none). The counters lag by up to a
    /// statistics flush.
    pub async fn sequential_scans(&self) -> Result<Option<Vec<(String, i64)>>, StorageError> {
        let Backend::Postgres(pool) = self.backend() else {
            return Ok(None);
        };
        let sql = "SELECT t.name, COALESCE(SUM(s.seq_scan), 0)::BIGINT \
                   FROM UNNEST($1::text[]) WITH ORDINALITY AS t(name, n) \
                   LEFT JOIN pg_stat_user_tables s ON s.relname = t.name GROUP BY t.name, t.n ORDER BY t.n";
        sqlx::raw_sql("SELECT pg_stat_force_next_flush()").execute(pool).await?;
        let tables: Vec<String> = GROWING_TABLES.iter().map(|t| (*t).to_string()).collect();
        Ok(Some(sqlx::query_as(sql).bind(tables).fetch_all(pool).await?))
    }

    /// How many actions there are (a full count: for tests and reports, never on a request's path).
    pub async fn action_count(&self) -> Result<u64, StorageError> {
        let count: i64 =
            with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM actions").fetch_one(pool).await)?;
        Ok(count.max(0) as u64)
    }

    /// PostgreSQL only: zeroes this database's statistics counters (`pg_stat_reset`).
    pub async fn reset_statistics(&self) -> Result<(), StorageError> {
        if let Backend::Postgres(pool) = self.backend() {
            sqlx::raw_sql("SELECT pg_stat_reset()").execute(pool).await?;
        }
        Ok(())
    }
}

/// A sample as an SQL literal (for `EXECUTE`); text is quoted with its quotes doubled.
fn literal(sample: &Sample) -> String {
    match sample {
        Sample::Text(v) => format!("'{}'", v.replace('\'', "''")),
        Sample::Int(v) => v.to_string(),
        Sample::Null | Sample::NullInt => "NULL".to_string(),
        Sample::Texts(v) => {
            let items = v.iter().map(|item| format!("'{}'", item.replace('\'', "''")));
            format!("ARRAY[{}]::text[]", items.collect::<Vec<_>>().join(", "))
        }
    }
}

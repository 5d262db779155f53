//! [`ScratchDatabase`]: a uniquely named database created on a server and dropped with the
//! value, for tests and benchmarks that need an empty database of their own.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio_postgres::NoTls;

use crate::error::{Result, StoreError};

/// A database that exists from [`ScratchDatabase::create`] until the value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// Run `f` against the server at `url` on a throwaway runtime of its own thread (so it works
/// from any thread, async or not).
fn on_server<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(tokio_postgres::Client) -> std::pin::Pin<Box<dyn Future<Output = Result<T>> + Send>>
    + Send
    + 'static,
) -> Result<T> {
    let url = url.to_string();
    let run = move || -> Result<T> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
            let driver = tokio::spawn(conn);
            let out = f(client).await;
            driver.abort();
            out
        })
    };
    std::thread::scope(|scope| {
        scope
            .spawn(run)
            .join()
            .unwrap_or_else(|_| Err(StoreError::Panicked("scratch database setup".into())))
    })
}

/// `url` with its database (the path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The server the project's tests use when `RAMPART_TEST_PG_URL` is unset.
pub const TEST_SERVER_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl ScratchDatabase {
    /// A scratch database on the tests' server: `RAMPART_TEST_PG_URL`, or
    /// [`TEST_SERVER_DEFAULT`]. PostgreSQL tests never skip: an unreachable server is this
    /// error, and the test fails with it.
    pub fn for_tests(prefix: &str) -> Result<ScratchDatabase> {
        let url = std::env::var("RAMPART_TEST_PG_URL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| TEST_SERVER_DEFAULT.to_string());
        Self::create(&url, prefix)
    }

    /// Create a new database named `<prefix>_<pid>_<n>_<nanos>` on the server `admin_url`
    /// connects to (a `postgres://` URL of a database the user may `CREATE DATABASE` from).
    pub fn create(admin_url: &str, prefix: &str) -> Result<ScratchDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "{prefix}_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
        .to_ascii_lowercase()
        .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), "_");
        let ddl = format!("CREATE DATABASE \"{name}\"");
        on_server(admin_url, move |c| {
            Box::pin(async move {
                c.batch_execute(&ddl).await?;
                Ok(())
            })
        })?;
        Ok(ScratchDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// The URL of the scratch database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let ddl = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = on_server(&self.admin_url, move |c| {
            Box::pin(async move {
                c.batch_execute(&ddl).await?;
                Ok(())
            })
        });
        if let Err(e) = dropped {
            tracing::warn!(database = %self.name, error = %e, "cannot drop the scratch database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t1"),
            "postgres://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}

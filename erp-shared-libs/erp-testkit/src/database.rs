//! A database of its own for each test: a fresh PostgreSQL database named by a UUID on the
//! server of `ERP_TEST_DATABASE_URL` (dropped when the value is dropped), or a SQLite file
//! in a temporary folder.

use erp_db::DatabaseConfig;
use sea_orm::{ConnectionTrait, Database};

use crate::{DATABASE_URL_VAR, DEFAULT_DATABASE_URL};

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    backend: Backend,
}

enum Backend {
    Postgres { admin_url: String, name: String },
    Sqlite { _dir: tempfile::TempDir },
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("url", &self.url)
            .finish()
    }
}

impl TestDatabase {
    /// A new, empty PostgreSQL database.
    ///
    /// Panics with a how-to when the server is unreachable: a test without its database
    /// cannot say anything useful.
    pub async fn postgres() -> Self {
        let admin_url =
            std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let name = format!("erp_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "cannot reach PostgreSQL at {admin_url} ({error}); start it or set {DATABASE_URL_VAR}"
            )
        });
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
        admin.close().await.ok();
        Self {
            url: replace_database(&admin_url, &name),
            backend: Backend::Postgres { admin_url, name },
        }
    }

    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temp dir: {error}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        Self {
            url,
            backend: Backend::Sqlite { _dir: dir },
        }
    }

    /// An outage of a PostgreSQL database (no-op on SQLite): refuses new connections and
    /// ends the open ones, until [`allow_connections`](Self::allow_connections).
    pub async fn refuse_connections(&self) {
        self.administer(|name| {
            vec![
                format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            ]
        })
        .await;
    }

    /// Ends an outage started by [`refuse_connections`](Self::refuse_connections).
    pub async fn allow_connections(&self) {
        self.administer(|name| vec![format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")])
            .await;
    }

    async fn administer(&self, statements: impl FnOnce(&str) -> Vec<String>) {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return;
        };
        let admin = Database::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|error| panic!("cannot reach PostgreSQL at {admin_url}: {error}"));
        for statement in statements(name) {
            admin
                .execute_unprepared(&statement)
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"));
        }
        admin.close().await.ok();
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A service database config pointing at it, with a small pool.
    pub fn config(&self) -> DatabaseConfig {
        DatabaseConfig {
            max_connections: 5,
            ..DatabaseConfig::with_url(self.url.clone())
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop may run inside a runtime, which must not block; a short-lived thread with
        // its own runtime removes the database.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = Database::connect(&admin_url).await.ok()?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: test database {} was not dropped", self.url);
        }
    }
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            replace_database("postgres://u@h:5432/postgres", "t1"),
            "postgres://u@h:5432/t1"
        );
        assert_eq!(
            replace_database("postgres://u@h/postgres?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h", "t1"),
            "postgres://u@h/t1"
        );
    }
}

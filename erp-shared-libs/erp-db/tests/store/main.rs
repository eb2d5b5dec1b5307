//! erp-db's helpers against real databases: every test runs on a fresh PostgreSQL
//! database and on a SQLite file, with the same body.

mod widget;

use erp_db::{DbError, PageTokens, PageWindow, keyset, scoped, time, update_versioned};
use erp_kit::{auth::TenantId, error::invalid_argument};
use erp_proto::erp::common::v1::PageRequest;
use erp_testkit::TestDatabase;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use tonic::Code;
use widget::{Migrator, Widget};

/// Runs a test body on both backends: `<name>::postgres` and `<name>::sqlite`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                let database = erp_testkit::TestDatabase::postgres().await;
                super::$name(super::connect(&database).await).await;
            }

            #[tokio::test]
            async fn sqlite() {
                let database = erp_testkit::TestDatabase::sqlite();
                super::$name(super::connect(&database).await).await;
            }
        }
    )*};
}

on_both_backends!(
    tenant_scoping_hides_other_tenants_rows,
    a_stale_version_update_is_rejected,
    keyset_pages_walk_every_row_once_in_order,
    a_tampered_page_token_is_invalid_argument_on_the_token_field,
    timestamps_round_trip_at_microsecond_precision,
);

#[tokio::test]
async fn replicas_starting_together_migrate_one_at_a_time() {
    let database = TestDatabase::postgres().await;
    let config = database.config();
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { erp_db::connect_and_migrate::<Migrator>(&config).await })
        })
        .collect();
    for replica in replicas {
        replica
            .await
            .expect("joins")
            .expect("every replica starts, whoever applied the migrations");
    }
}

async fn connect(database: &TestDatabase) -> DatabaseConnection {
    erp_db::connect_and_migrate::<Migrator>(&database.config())
        .await
        .expect("connects and migrates")
}

async fn insert(db: &DatabaseConnection, tenant: &TenantId, id: &str, name: &str) -> widget::Model {
    let model = widget::ActiveModel {
        id: Set(id.to_owned()),
        tenant_id: Set("ignored: stamped from the scope".to_owned()),
        name: Set(name.to_owned()),
        version: Set(1),
        created_at: Set(time::now()),
    };
    scoped::<Widget>(tenant)
        .stamp(model)
        .insert(db)
        .await
        .expect("insert")
}

async fn tenant_scoping_hides_other_tenants_rows(db: DatabaseConnection) {
    let (a, b) = (TenantId::new("tenant-a"), TenantId::new("tenant-b"));
    insert(&db, &a, "a1", "alpha").await;
    insert(&db, &b, "b1", "bravo").await;

    let a_rows = scoped::<Widget>(&a).find().all(&db).await.expect("select");
    assert_eq!(
        a_rows.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
        ["a1"]
    );
    assert_eq!(
        a_rows[0].tenant_id, "tenant-a",
        "the scope stamped the tenant"
    );
    assert!(
        scoped::<Widget>(&a)
            .find_by_id("b1")
            .one(&db)
            .await
            .expect("select")
            .is_none(),
        "another tenant's row is invisible by id"
    );
    let deleted = scoped::<Widget>(&a)
        .delete_many()
        .filter(widget::Column::Id.eq("b1"))
        .exec(&db)
        .await
        .expect("delete");
    assert_eq!(
        deleted.rows_affected, 0,
        "another tenant's row cannot be deleted"
    );
    assert!(
        Widget::find_by_id("b1")
            .one(&db)
            .await
            .expect("select")
            .is_some()
    );
}

async fn a_stale_version_update_is_rejected(db: DatabaseConnection) {
    let tenant = TenantId::new("tenant-v");
    insert(&db, &tenant, "w1", "first").await;
    let rename = |name: &str| widget::ActiveModel {
        name: Set(name.to_owned()),
        ..Default::default()
    };

    let version = update_versioned(&db, &tenant, "w1", 1, rename("second"))
        .await
        .expect("current version wins");
    assert_eq!(version, 2);
    let stale = update_versioned(&db, &tenant, "w1", 1, rename("third")).await;
    assert!(
        matches!(
            stale,
            Err(DbError::StaleVersion {
                expected: 1,
                current: 2
            })
        ),
        "{stale:?}"
    );
    let stored = Widget::find_by_id("w1")
        .one(&db)
        .await
        .expect("select")
        .expect("row");
    assert_eq!(
        (stored.name.as_str(), stored.version),
        ("second", 2),
        "the stale write changed nothing"
    );

    let foreign = update_versioned(&db, &TenantId::new("other"), "w1", 2, rename("x")).await;
    assert!(matches!(foreign, Err(DbError::NotFound)), "{foreign:?}");

    // A change that names another tenant, id or version of its own moves nothing.
    let hijack = widget::ActiveModel {
        id: Set("w2".to_owned()),
        name: Set("fourth".to_owned()),
        tenant_id: Set("other".to_owned()),
        version: Set(99),
        ..Default::default()
    };
    let version = update_versioned(&db, &tenant, "w1", 2, hijack)
        .await
        .expect("the name changes");
    assert_eq!(version, 3);
    let stored = Widget::find_by_id("w1")
        .one(&db)
        .await
        .expect("select")
        .expect("row");
    assert_eq!(
        (
            stored.tenant_id.as_str(),
            stored.name.as_str(),
            stored.version
        ),
        ("tenant-v", "fourth", 3)
    );
}

async fn keyset_pages_walk_every_row_once_in_order(db: DatabaseConnection) {
    let tenant = TenantId::new("tenant-p");
    let names = [
        "delta", "alpha", "echo", "charlie", "bravo", "alpha", "foxtrot",
    ];
    for (index, name) in names.iter().enumerate() {
        insert(&db, &tenant, &format!("id-{index}"), name).await;
    }
    let tokens = PageTokens::new("test-secret");
    let list = "widgets";
    let mut seen = Vec::new();
    let mut request = PageRequest {
        page_size: 3,
        page_token: String::new(),
    };
    loop {
        let window: PageWindow<(String, String)> =
            tokens.window(list, Some(&request)).expect("valid window");
        let after = window
            .after
            .clone()
            .map(|(name, id)| vec![name.into(), id.into()]);
        let rows = keyset(
            scoped::<Widget>(&tenant).find(),
            &[widget::Column::Name, widget::Column::Id],
            after,
            window.fetch_limit(),
        )
        .all(&db)
        .await
        .expect("page");
        let (page, response) =
            tokens.finish(list, &window, rows, |w| (w.name.clone(), w.id.clone()));
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|w| (w.name, w.id)));
        if response.next_page_token.is_empty() {
            break;
        }
        request.page_token = response.next_page_token;
    }
    let mut expected: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(index, name)| ((*name).to_owned(), format!("id-{index}")))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "every row once, ordered by (name, id)");
}

async fn a_tampered_page_token_is_invalid_argument_on_the_token_field(db: DatabaseConnection) {
    let tenant = TenantId::new("tenant-t");
    for index in 0..3 {
        insert(&db, &tenant, &format!("t{index}"), "same").await;
    }
    let tokens = PageTokens::new("test-secret");
    let window: PageWindow<(String, String)> = PageWindow {
        size: 1,
        after: None,
    };
    let rows = keyset(
        scoped::<Widget>(&tenant).find(),
        &[widget::Column::Name, widget::Column::Id],
        None,
        2,
    )
    .all(&db)
    .await
    .expect("page");
    let (_, response) = tokens.finish("widgets", &window, rows, |w| (w.name.clone(), w.id.clone()));
    let mut tampered = response.next_page_token.clone();
    let flipped = if tampered.starts_with('e') { "f" } else { "e" };
    tampered.replace_range(0..1, flipped);

    let error = tokens
        .window::<(String, String)>(
            "widgets",
            Some(&PageRequest {
                page_size: 1,
                page_token: tampered,
            }),
        )
        .expect_err("tampered token refused");
    let status = invalid_argument("ERP:TEST:INVALID_REQUEST", &error);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        erp_kit::error::field_violations(&status)[0].0,
        "page.page_token"
    );
}

async fn timestamps_round_trip_at_microsecond_precision(db: DatabaseConnection) {
    let tenant = TenantId::new("tenant-time");
    let written = insert(&db, &tenant, "clock", "tick").await.created_at;
    let read = Widget::find_by_id("clock")
        .one(&db)
        .await
        .expect("select")
        .expect("row")
        .created_at;
    assert_eq!(read, written);
    assert_eq!(
        written.timestamp_subsec_nanos() % 1_000,
        0,
        "microsecond precision"
    );
}

#[derive(Debug)]
struct StoreTests;

impl erp_kit::error::ErrorDomain for StoreTests {
    const PREFIX: &'static str = "ERP:STORE";
}

fn status_of(error: sea_orm::DbErr) -> tonic::Status {
    erp_kit::error::ServiceError::<StoreTests>::from(error).into()
}

#[tokio::test]
async fn a_serialization_failure_is_aborted_and_an_unreachable_database_unavailable() {
    use sea_orm::{ConnectionTrait, IsolationLevel, TransactionTrait};

    let database = TestDatabase::postgres().await;
    let db = connect(&database).await;
    let tenant = TenantId::new("tenant-s");
    insert(&db, &tenant, "w1", "first").await;
    // Write skew: each reads the table, then adds a row; the second commit cannot be
    // serialised after the first.
    let one = db
        .begin_with_config(Some(IsolationLevel::Serializable), None)
        .await
        .expect("begin");
    let other = db
        .begin_with_config(Some(IsolationLevel::Serializable), None)
        .await
        .expect("begin");
    for txn in [&one, &other] {
        txn.execute_unprepared("SELECT COUNT(*) FROM widgets")
            .await
            .expect("read");
    }
    one.execute_unprepared(
        "INSERT INTO widgets (id, tenant_id, name, version, created_at) \
         VALUES ('w2', 'tenant-s', 'two', 1, NOW())",
    )
    .await
    .expect("first write");
    other
        .execute_unprepared(
            "INSERT INTO widgets (id, tenant_id, name, version, created_at) \
             VALUES ('w3', 'tenant-s', 'three', 1, NOW())",
        )
        .await
        .expect("second write");
    one.commit().await.expect("the first commits");
    let conflict = other
        .commit()
        .await
        .expect_err("the second cannot be serialised");
    let status = status_of(conflict);
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(
        erp_kit::error::reason(&status).as_deref(),
        Some("ERP:STORE:CONFLICT")
    );

    let mut nowhere = erp_db::DatabaseConfig::with_url("postgres://postgres@127.0.0.1:1/none");
    nowhere.connect_timeout = std::time::Duration::from_millis(500);
    let unreachable = erp_db::connect(&nowhere)
        .await
        .expect_err("nothing listens there");
    assert_eq!(status_of(unreachable).code(), Code::Unavailable);
}

#[tokio::test]
async fn a_statement_past_the_timeout_is_cancelled_and_unavailable() {
    use sea_orm::{ConnectionTrait, TransactionTrait};

    let database = TestDatabase::postgres().await;
    let mut config = database.config();
    config.statement_timeout = std::time::Duration::from_millis(200);
    // Migrations run without the timeout: this replica waits past it while another
    // holds the migration lock (erp-db's key, "erp_migr").
    let other_replica = erp_db::connect(&database.config()).await.expect("connects");
    let holding = other_replica.begin().await.expect("begin");
    holding
        .execute_unprepared("SELECT pg_advisory_xact_lock(7310028700335564658)")
        .await
        .expect("the migration lock");
    let starting = tokio::spawn({
        let config = config.clone();
        async move { erp_db::connect_and_migrate::<Migrator>(&config).await }
    });
    // Once the replica is seen waiting for the lock, it is kept waiting longer than the
    // statement timeout before the lock is released.
    erp_testkit::wait::eventually(std::time::Duration::from_secs(10), || async {
        let waiting = other_replica
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT COUNT(*) AS waiting FROM pg_locks \
                 WHERE locktype = 'advisory' AND NOT granted AND database = \
                 (SELECT oid FROM pg_database WHERE datname = current_database())",
            ))
            .await
            .ok()??
            .try_get::<i64>("", "waiting")
            .ok()?;
        (waiting > 0).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    holding.commit().await.expect("released");
    let db = starting
        .await
        .expect("joins")
        .expect("connects and migrates after waiting past the timeout");
    let runaway = db
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .expect_err("cancelled after 200 ms");
    let status = status_of(runaway);
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    db.execute_unprepared("SELECT pg_sleep(0.01)")
        .await
        .expect("a quick statement runs, on the same pool");

    config.statement_timeout = std::time::Duration::ZERO;
    let unlimited = erp_db::connect(&config).await.expect("connects");
    unlimited
        .execute_unprepared("SELECT pg_sleep(0.3)")
        .await
        .expect("0s turns the timeout off");
}

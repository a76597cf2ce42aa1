//! Row-level security: services act as `pyairtable_app`, which sees only the rows of the tenants
//! a transaction is scoped to. A store function that forgot its `where tenant_id = ...` still
//! leaks nothing, and a pooled connection never carries a scope into the next transaction.

use pyairtable_kit::db::{self, Scope, scoped};
use pyairtable_kit::testing::test_database;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;

/// The services' pool: one connection, so every transaction below reuses the same one.
async fn app_pool(url: &str) -> PgPool {
    let options: PgConnectOptions = url.parse().expect("url");
    db::connect_app(options, 1).await.expect("app pool")
}

/// A workspace of `tenant`, written as the owner of the tables (migrations' role).
async fn seed(owner: &PgPool, tenant: Uuid, name: &str) {
    sqlx::query(
        "insert into workspaces.workspaces (id, tenant_id, name, created_by) values ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(name)
    .bind(Uuid::now_v7())
    .execute(owner)
    .await
    .expect("seed");
}

/// Every name in the table, with no filter at all (the bug RLS is there for).
async fn everything(db: impl sqlx::PgExecutor<'_>) -> Vec<String> {
    sqlx::query_scalar("select name from workspaces.workspaces order by name")
        .fetch_all(db)
        .await
        .expect("select")
}

#[tokio::test]
async fn a_missing_filter_returns_only_the_scoped_tenants_rows() {
    let test = test_database().await;
    let owner = PgPool::connect(test.url()).await.expect("owner");
    let app = app_pool(test.url()).await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    seed(&owner, a, "a1").await;
    seed(&owner, a, "a2").await;
    seed(&owner, b, "b1").await;

    assert!(everything(&app).await.is_empty(), "no scope: nothing, not everything");
    let mut tx = scoped(&app, &Scope::tenant(a)).await.expect("scoped");
    assert_eq!(everything(&mut *tx).await, ["a1", "a2"]);
    // Writing into another tenant, or moving a row there, is refused; updating its rows finds none.
    let foreign = sqlx::query(
        "insert into workspaces.workspaces (id, tenant_id, name, created_by) values ($1, $2, 'x', $1)",
    )
    .bind(Uuid::now_v7())
    .bind(b)
    .execute(&mut *tx)
    .await;
    assert!(foreign.is_err(), "a row of another tenant was written");
    tx.rollback().await.expect("rollback");
    let mut tx = scoped(&app, &Scope::tenant(a)).await.expect("scoped");
    let moved = sqlx::query("update workspaces.workspaces set tenant_id = $1 where name = 'a1'")
        .bind(b)
        .execute(&mut *tx)
        .await;
    assert!(moved.is_err(), "a row was moved to another tenant");
    tx.rollback().await.expect("rollback");
    let mut tx = scoped(&app, &Scope::tenant(a)).await.expect("scoped");
    let touched = sqlx::query("update workspaces.workspaces set name = 'mine now'")
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(touched.rows_affected(), 2, "only the scoped tenant's rows");
    tx.rollback().await.expect("rollback");

    let mut tx = scoped(&app, &Scope::tenants([a, b])).await.expect("scoped");
    assert_eq!(everything(&mut *tx).await, ["a1", "a2", "b1"]);
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_pooled_connection_carries_no_tenant_into_the_next_transaction() {
    let test = test_database().await;
    let owner = PgPool::connect(test.url()).await.expect("owner");
    let app = app_pool(test.url()).await;
    let tenant = Uuid::now_v7();
    seed(&owner, tenant, "t1").await;

    let backend = |db: &PgPool| {
        let db = db.clone();
        async move { sqlx::query_scalar::<_, i32>("select pg_backend_pid()").fetch_one(&db).await.expect("pid") }
    };
    let pid = backend(&app).await;
    // Committed, rolled back, or failed half-way: the scope ends with the transaction.
    let mut tx = scoped(&app, &Scope::tenant(tenant)).await.expect("scoped");
    assert_eq!(everything(&mut *tx).await, ["t1"]);
    tx.commit().await.expect("commit");
    assert!(everything(&app).await.is_empty(), "after commit");
    let mut tx = scoped(&app, &Scope::tenant(tenant)).await.expect("scoped");
    assert_eq!(everything(&mut *tx).await, ["t1"]);
    tx.rollback().await.expect("rollback");
    assert!(everything(&app).await.is_empty(), "after rollback");
    let mut tx = scoped(&app, &Scope::tenant(tenant)).await.expect("scoped");
    assert!(sqlx::query("select 1/0").execute(&mut *tx).await.is_err());
    drop(tx);
    assert!(everything(&app).await.is_empty(), "after a failed transaction");
    let mut tx = app.begin().await.expect("plain transaction");
    assert!(everything(&mut *tx).await.is_empty(), "a transaction without a scope");
    tx.commit().await.expect("commit");
    assert_eq!(backend(&app).await, pid, "all of it on one pooled connection");
}

#[tokio::test]
async fn services_cannot_step_around_row_level_security() {
    let test = test_database().await;
    let app = app_pool(test.url()).await;
    let (user, bypass, superuser): (String, bool, bool) = sqlx::query_as(
        "select current_user::text, rolbypassrls, rolsuper from pg_roles where rolname = current_user",
    )
    .fetch_one(&app)
    .await
    .expect("role");
    assert_eq!((user.as_str(), bypass, superuser), (db::APP_ROLE, false, false));
    let ddl = sqlx::query("alter table workspaces.workspaces disable row level security").execute(&app).await;
    assert!(ddl.is_err(), "the app role changed a table's security");
    let ddl = sqlx::query("create table workspaces.sneaky (id int)").execute(&app).await;
    assert!(ddl.is_err(), "the app role created a table");

    // Every table with tenant rows has row-level security, forced on its owner too. Auth's tables
    // are about people, not tenants: a session's or a user's tenants, read before any is chosen.
    let owner = PgPool::connect(test.url()).await.expect("owner");
    let unprotected: Vec<String> = sqlx::query_scalar(
        "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'auth') \
         and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) \
         and not (c.relrowsecurity and c.relforcerowsecurity) order by 1",
    )
    .fetch_all(&owner)
    .await
    .expect("catalog");
    assert!(unprotected.is_empty(), "tenant tables without forced row-level security: {unprotected:?}");
}

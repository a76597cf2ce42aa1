-- The role every service acts as once connected: it reads and writes data but cannot change the
-- schema, and it does not bypass row-level security. Migrations run as the connecting role (the
-- owner of the tables); the pool then `SET ROLE pyairtable_app` on every connection.
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'pyairtable_app') then
        create role pyairtable_app nologin nosuperuser nobypassrls noinherit;
    end if;
exception
    -- Two databases of one cluster migrating at once (tests) may race to create the role.
    when duplicate_object or unique_violation then null;
end;
$$;

-- The owner must be able to become the app role (a superuser already can).
do $$
begin
    if not pg_has_role(current_user, 'pyairtable_app', 'member') then
        execute format('grant pyairtable_app to %I', current_user);
    end if;
end;
$$;

-- The tenants a transaction may see, set transaction-locally by kit::db::scoped
-- (`app.tenant_ids`, a uuid[] literal); none when unset, so a missing scope shows nothing.
create function kit.tenant_ids() returns uuid[]
language sql stable as $$
    select coalesce(nullif(current_setting('app.tenant_ids', true), '')::uuid[], '{}'::uuid[])
$$;

-- The signed-in user a transaction acts for (`app.user_id`), or null.
create function kit.user_id() returns uuid
language sql stable as $$
    select nullif(current_setting('app.user_id', true), '')::uuid
$$;

grant usage on schema kit, auth, users, tenants to pyairtable_app;
grant select, insert, update, delete on all tables in schema kit, auth, users, tenants to pyairtable_app;
grant usage, select on all sequences in schema kit, auth, users, tenants to pyairtable_app;
grant execute on all functions in schema kit to pyairtable_app;
alter default privileges in schema kit, auth, users, tenants
    grant select, insert, update, delete on tables to pyairtable_app;
alter default privileges in schema kit, auth, users, tenants
    grant usage, select on sequences to pyairtable_app;

-- The permissions subgraph owns role bindings: who has which role on which organization or
-- workspace. It takes over tenants.members (copied here, then dropped).
create schema if not exists permissions;
grant usage on schema permissions to pyairtable_app;
alter default privileges in schema permissions grant select, insert, update, delete on tables to pyairtable_app;

-- Organizations as the permissions subgraph learns them from the tenants subgraph's events; a
-- deleted one keeps its bindings (it may be restored) but is left out of lists.
create table permissions.organizations (
    id uuid primary key,
    deleted_at timestamptz
);

-- Workspaces and their organization, from the workspaces subgraph's events.
create table permissions.workspaces (
    id uuid primary key,
    tenant_id uuid not null references permissions.organizations (id) on delete cascade
);

create index workspaces_tenant_id_idx on permissions.workspaces (tenant_id);

-- One role per subject per resource. The id is a UUIDv7: binding order is join order.
create table permissions.role_bindings (
    id uuid primary key,
    tenant_id uuid not null references permissions.organizations (id) on delete cascade,
    subject_id uuid not null,
    resource_type text not null,
    resource_id uuid not null,
    role text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint role_bindings_subject_resource_key unique (resource_id, subject_id),
    constraint role_bindings_resource_type check (resource_type in ('organization', 'workspace')),
    constraint role_bindings_organization_is_tenant check (resource_type <> 'organization' or resource_id = tenant_id),
    constraint role_bindings_role check (
        (resource_type = 'organization' and role in ('owner', 'admin', 'member', 'guest'))
        or (resource_type = 'workspace' and role in ('owner', 'creator', 'editor', 'commenter', 'viewer'))
    )
);

create index role_bindings_subject_idx on permissions.role_bindings (subject_id, tenant_id);
create index role_bindings_tenant_idx on permissions.role_bindings (tenant_id, resource_type);

create trigger role_bindings_set_updated_at before update on permissions.role_bindings
    for each row execute function kit.set_updated_at();

insert into permissions.organizations (id) select id from tenants.organizations;
insert into permissions.role_bindings (id, tenant_id, subject_id, resource_type, resource_id, role, created_at)
    select gen_random_uuid(), organization_id, user_id, 'organization', organization_id, role, joined_at
    from tenants.members;
drop table tenants.members;

-- Row-level security: a transaction sees the rows of the tenants in its scope (kit::db::Scope),
-- and a user's own bindings (which organizations am I in?).
alter table permissions.role_bindings enable row level security;
alter table permissions.role_bindings force row level security;
create policy tenant_scope on permissions.role_bindings
    using (tenant_id = any (kit.tenant_ids()) or subject_id = kit.user_id())
    with check (tenant_id = any (kit.tenant_ids()));

alter table permissions.workspaces enable row level security;
alter table permissions.workspaces force row level security;
create policy tenant_scope on permissions.workspaces
    using (tenant_id = any (kit.tenant_ids()))
    with check (tenant_id = any (kit.tenant_ids()));

alter table permissions.organizations enable row level security;
alter table permissions.organizations force row level security;
create policy tenant_scope on permissions.organizations
    using (
        id = any (kit.tenant_ids())
        or exists (select 1 from permissions.role_bindings b where b.tenant_id = organizations.id and b.subject_id = kit.user_id())
    )
    with check (id = any (kit.tenant_ids()));

-- Versions of what decisions depend on, bumped in the same transaction as any change to it (by the
-- triggers below, so no code path can forget): a tenant's bindings, workspaces and deletion, and
-- (under the nil uuid) organization memberships anywhere, which decide who sees whose profile.
-- Cached decisions are keyed by these versions, so a change is seen by the very next check in
-- every process. No tenant data here: counters only, outside row-level security.
create table permissions.versions (
    scope uuid primary key,
    version bigint not null default 1
);

create function permissions.bump(scope uuid) returns void
language sql as $$
    insert into permissions.versions (scope) values (scope)
    on conflict (scope) do update set version = permissions.versions.version + 1
$$;

create function permissions.binding_changed() returns trigger
language plpgsql as $$
declare
    row permissions.role_bindings := coalesce(new, old);
begin
    perform permissions.bump(row.tenant_id);
    if row.resource_type = 'organization' and tg_op <> 'UPDATE' then
        perform permissions.bump('00000000-0000-0000-0000-000000000000');
    end if;
    return null;
end;
$$;

create function permissions.tenant_changed() returns trigger
language plpgsql as $$
begin
    if tg_table_name = 'organizations' then
        perform permissions.bump(coalesce(new.id, old.id));
        perform permissions.bump('00000000-0000-0000-0000-000000000000');
    else
        perform permissions.bump(coalesce(new.tenant_id, old.tenant_id));
    end if;
    return null;
end;
$$;

create trigger role_bindings_version after insert or update or delete on permissions.role_bindings
    for each row execute function permissions.binding_changed();
create trigger organizations_version after insert or update or delete on permissions.organizations
    for each row execute function permissions.tenant_changed();
create trigger workspaces_version after insert or update or delete on permissions.workspaces
    for each row execute function permissions.tenant_changed();

grant select, insert, update, delete on all tables in schema permissions to pyairtable_app;
grant execute on all functions in schema permissions to pyairtable_app;

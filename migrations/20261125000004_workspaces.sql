-- The workspaces subgraph owns workspaces; each belongs to one organization (tenant).
create schema if not exists workspaces;
grant usage on schema workspaces to pyairtable_app;

create table workspaces.workspaces (
    id uuid primary key,
    tenant_id uuid not null,
    name text not null,
    created_by uuid not null,
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint workspaces_name_length check (char_length(name) between 1 and 100)
);

create index workspaces_tenant_idx on workspaces.workspaces (tenant_id, id);

create trigger workspaces_set_updated_at before update on workspaces.workspaces
    for each row execute function kit.set_updated_at();

alter table workspaces.workspaces enable row level security;
alter table workspaces.workspaces force row level security;
create policy tenant_scope on workspaces.workspaces
    using (tenant_id = any (kit.tenant_ids()))
    with check (tenant_id = any (kit.tenant_ids()));

grant select, insert, update, delete on all tables in schema workspaces to pyairtable_app;

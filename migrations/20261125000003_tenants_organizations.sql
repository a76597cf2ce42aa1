-- Organizations are deleted softly (restorable for a grace period), and invite people by email.
alter table tenants.organizations add column deleted_at timestamptz;
alter table tenants.organizations add column created_by uuid;

create table tenants.invitations (
    id uuid primary key,
    tenant_id uuid not null references tenants.organizations (id) on delete cascade,
    email text not null,
    role text not null,
    -- SHA-256 of the secret part of the token; the token itself is only ever in the email.
    token_hash bytea not null,
    invited_by uuid not null,
    status text not null default 'pending',
    expires_at timestamptz not null,
    accepted_by uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint invitations_token_hash_key unique (token_hash),
    constraint invitations_role check (role in ('owner', 'admin', 'member', 'guest')),
    constraint invitations_status check (status in ('pending', 'accepted', 'revoked')),
    constraint invitations_email_lowercase check (email = lower(email))
);

-- At most one pending invitation per address per organization.
create unique index invitations_pending_email_key on tenants.invitations (tenant_id, email)
    where status = 'pending';

create trigger invitations_set_updated_at before update on tenants.invitations
    for each row execute function kit.set_updated_at();

alter table tenants.organizations enable row level security;
alter table tenants.organizations force row level security;
create policy tenant_scope on tenants.organizations
    using (id = any (kit.tenant_ids()))
    with check (id = any (kit.tenant_ids()));

alter table tenants.invitations enable row level security;
alter table tenants.invitations force row level security;
create policy tenant_scope on tenants.invitations
    using (tenant_id = any (kit.tenant_ids()))
    with check (tenant_id = any (kit.tenant_ids()));

-- Organizations whose grace period is over, across tenants: only this function (owned by the
-- migrating role) may look past row-level security, and it deletes what it returns.
create function tenants.purge_deleted_organizations(grace interval) returns setof uuid
language sql security definer set search_path = pg_catalog, tenants as $$
    delete from tenants.organizations where deleted_at < now() - grace returning id
$$;
revoke all on function tenants.purge_deleted_organizations(interval) from public;
grant execute on function tenants.purge_deleted_organizations(interval) to pyairtable_app;

grant select, insert, update, delete on all tables in schema tenants to pyairtable_app;

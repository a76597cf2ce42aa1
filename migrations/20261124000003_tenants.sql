-- The tenants subgraph owns organizations and their memberships.
create schema if not exists tenants;

create table tenants.organizations (
    id uuid primary key,
    name text not null,
    slug text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint organizations_slug_key unique (slug),
    constraint organizations_name_length check (char_length(name) between 1 and 100),
    constraint organizations_slug_format check (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);

create trigger organizations_set_updated_at before update on tenants.organizations
    for each row execute function kit.set_updated_at();

-- user_id references users.users by key only: subgraphs never read each other's tables.
create table tenants.members (
    organization_id uuid not null references tenants.organizations (id) on delete cascade,
    user_id uuid not null,
    role text not null,
    joined_at timestamptz not null default now(),
    constraint members_pkey primary key (organization_id, user_id),
    constraint members_role check (role in ('owner', 'admin', 'member', 'guest'))
);

create index members_user_id_idx on tenants.members (user_id);

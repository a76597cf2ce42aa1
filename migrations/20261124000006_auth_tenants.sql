-- Which tenants each user belongs to, as the auth subgraph learns it from the tenants subgraph's
-- member.added / member.removed events; a session may act in one of them (the `tid` claim).
create table auth.memberships (
    user_id uuid not null,
    tenant_id uuid not null,
    primary key (user_id, tenant_id)
);

alter table auth.sessions add column tenant_id uuid;

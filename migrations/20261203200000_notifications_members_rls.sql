-- notifications.members holds tenant rows: like every tenant table, row-level security scopes it
-- to the transaction's tenants, forced on its owner too (crates/kit/tests/rls.rs checks them all).
alter table notifications.members enable row level security;
alter table notifications.members force row level security;
create policy tenant_scope on notifications.members
    using (tenant_id = any (kit.tenant_ids()))
    with check (tenant_id = any (kit.tenant_ids()));

-- The webhooks subgraph: endpoints per tenant, the messages made from domain events (stored
-- before any attempt), the delivery queue taken by workers with FOR UPDATE SKIP LOCKED, and the
-- log of attempts.
create schema if not exists webhooks;
grant usage on schema webhooks to pyairtable_app;

create table webhooks.endpoints (
    id uuid primary key,
    tenant_id uuid not null,
    url text not null,
    description text not null default '',
    -- Event types delivered; empty: every type of the catalog.
    event_types text[] not null default '{}',
    enabled boolean not null default true,
    -- Why the platform disabled it (a 410, sustained failure); null when enabled or by hand.
    disabled_reason text,
    -- Attempts per second at most; null: no limit.
    rate_limit integer,
    -- Extra request headers, name -> value.
    headers jsonb not null default '{}',
    -- `whsec_` + base64 of the key bytes; during a rotation the previous one signs too.
    secret text not null,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    -- The first failed attempt since the last success.
    failing_since timestamptz,
    -- The last kit.events id committed when it was created: it receives later events only.
    after_event_id bigint not null default 0,
    created_by uuid not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint endpoints_rate_limit check (rate_limit is null or rate_limit > 0),
    constraint endpoints_url_length check (char_length(url) between 1 and 2048)
);
create index endpoints_tenant_idx on webhooks.endpoints (tenant_id, id);
create trigger endpoints_set_updated_at before update on webhooks.endpoints
    for each row execute function kit.set_updated_at();

-- One message per (event, endpoint): the body every attempt sends, signed anew each time.
create table webhooks.messages (
    id uuid primary key,
    tenant_id uuid not null,
    endpoint_id uuid not null references webhooks.endpoints (id) on delete cascade,
    -- The kit.events id it came from (null for test messages).
    event_id bigint,
    event_type text not null,
    body text not null,
    -- pending: attempts to come; delivered: a 2xx came back; failed: the schedule ran out.
    status text not null default 'pending',
    attempts integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint messages_event_endpoint unique (event_id, endpoint_id),
    constraint messages_status check (status in ('pending', 'delivered', 'failed'))
);
create index messages_endpoint_idx on webhooks.messages (tenant_id, endpoint_id, created_at, id);
create trigger messages_set_updated_at before update on webhooks.messages
    for each row execute function kit.set_updated_at();

-- Messages waiting for an attempt; `attempt` counts the attempts of the current schedule (a
-- replay starts a new one). A worker's claim is a lease: `due_at` moves past the attempt's
-- longest duration and `lease` names the claim, so no connection is held during the HTTP call
-- and a worker that dies mid-attempt leaves the message due again when the lease runs out.
create table webhooks.queue (
    message_id uuid primary key references webhooks.messages (id) on delete cascade,
    tenant_id uuid not null,
    attempt integer not null default 0,
    due_at timestamptz not null default now(),
    lease uuid
);
create index queue_due_idx on webhooks.queue (due_at);

create table webhooks.attempts (
    id uuid primary key,
    tenant_id uuid not null,
    message_id uuid not null references webhooks.messages (id) on delete cascade,
    endpoint_id uuid not null,
    -- succeeded (2xx) or failed (anything else, or no response).
    status text not null,
    response_status integer,
    latency_ms integer not null,
    -- The first bytes of the response body.
    response_body text not null default '',
    -- Why no response was counted (refused address, timeout, connection error, redirect).
    error text,
    created_at timestamptz not null default now(),
    constraint attempts_status check (status in ('succeeded', 'failed'))
);
create index attempts_message_idx on webhooks.attempts (tenant_id, message_id, id);
create index attempts_endpoint_idx on webhooks.attempts (endpoint_id, created_at);

do $$
declare t text;
begin
    foreach t in array array['endpoints', 'messages', 'queue', 'attempts'] loop
        execute format('alter table webhooks.%I enable row level security', t);
        execute format('alter table webhooks.%I force row level security', t);
        execute format(
            'create policy tenant_scope on webhooks.%I using (tenant_id = any (kit.tenant_ids())) '
            'with check (tenant_id = any (kit.tenant_ids()))', t);
    end loop;
end;
$$;

-- Leases the next message due for `lease_for` (rows other workers are claiming are skipped);
-- the worker then acts in that tenant's scope. Owned by the migrating role: the only
-- cross-tenant access.
create function webhooks.claim_due(lease_for interval)
returns table (message_id uuid, tenant_id uuid, attempt integer, lease uuid)
language sql security definer set search_path = pg_catalog, webhooks as $$
    update webhooks.queue q set due_at = now() + lease_for, lease = gen_random_uuid()
    where q.message_id = (select n.message_id from webhooks.queue n where n.due_at <= now()
                          order by n.due_at limit 1 for update skip locked)
    returning q.message_id, q.tenant_id, q.attempt, q.lease
$$;

revoke all on function webhooks.claim_due(interval) from public;
grant execute on function webhooks.claim_due(interval) to pyairtable_app;
grant select, insert, update, delete on all tables in schema webhooks to pyairtable_app;

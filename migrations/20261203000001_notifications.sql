-- The notifications subgraph: its own projection of accounts and memberships (from events), the
-- in-app feed, the delivery log of every channel, and preferences.
create schema if not exists notifications;
grant usage on schema notifications to pyairtable_app;

-- Accounts as user.registered announced them (never read from another subgraph's tables).
create table notifications.recipients (
    user_id uuid primary key,
    email text not null,
    display_name text not null default '',
    locale text not null default 'en',
    created_at timestamptz not null default now()
);
create unique index recipients_email_idx on notifications.recipients (lower(email));

-- Organization names and roles, from organization.* and member.* events (admins get alerts).
create table notifications.organizations (
    id uuid primary key,
    name text not null
);
create table notifications.members (
    tenant_id uuid not null,
    user_id uuid not null,
    role text not null,
    primary key (tenant_id, user_id)
);

-- The in-app feed. Engagement (seen, read, archived) lives here; delivery status in deliveries.
create table notifications.items (
    id uuid primary key,
    user_id uuid not null,
    event_id bigint not null,
    workflow text not null,
    locale text not null,
    data jsonb not null,
    created_at timestamptz not null default now(),
    seen_at timestamptz,
    read_at timestamptz,
    archived_at timestamptz,
    constraint items_once unique (event_id, user_id, workflow)
);
create index items_feed_idx on notifications.items (user_id, id desc);
create index items_unread_idx on notifications.items (user_id) where read_at is null and archived_at is null;

alter table notifications.items enable row level security;
alter table notifications.items force row level security;
create policy own_items on notifications.items
    using (user_id = kit.user_id())
    with check (user_id = kit.user_id());

-- One row per (event, recipient, channel): the same event applied twice delivers once.
create table notifications.deliveries (
    id uuid primary key,
    event_id bigint not null,
    workflow text not null,
    channel text not null,
    recipient text not null,
    user_id uuid,
    item_id uuid,
    locale text not null,
    data jsonb not null,
    status text not null default 'queued',
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    sent_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint deliveries_once unique (event_id, recipient, channel),
    constraint deliveries_status check (status in ('queued', 'retrying', 'sent', 'failed')),
    constraint deliveries_channel check (channel in ('email', 'in_app', 'sms', 'push'))
);
create index deliveries_due_idx on notifications.deliveries (next_attempt_at)
    where status in ('queued', 'retrying');

create trigger deliveries_set_updated_at before update on notifications.deliveries
    for each row execute function kit.set_updated_at();

-- A user's choices: workflow '*' is the global opt-out of a channel.
create table notifications.preferences (
    user_id uuid not null,
    workflow text not null,
    channel text not null,
    enabled boolean not null,
    updated_at timestamptz not null default now(),
    primary key (user_id, workflow, channel)
);

alter table notifications.preferences enable row level security;
alter table notifications.preferences force row level security;
create policy own_preferences on notifications.preferences
    using (user_id = kit.user_id())
    with check (user_id = kit.user_id());

grant select, insert, update, delete on all tables in schema notifications to pyairtable_app;

-- Events up to here happened before notifications existed: the consumer applies them to its
-- projections only (their publishers sent their emails then).
create table notifications.horizon (event_id bigint not null);
insert into notifications.horizon (event_id) select coalesce(max(id), 0) from kit.events;
grant select on notifications.horizon to pyairtable_app;

-- The key of unsubscribe links (made by the first process that needs it, shared by replicas).
create table notifications.signing_key (
    id integer primary key default 1,
    key bytea not null,
    constraint signing_key_single check (id = 1),
    constraint signing_key_length check (length(key) = 32)
);
grant select, insert on notifications.signing_key to pyairtable_app;

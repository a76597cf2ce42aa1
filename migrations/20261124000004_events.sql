-- The event log (transactional outbox): events are written in the same transaction as the change
-- that causes them; each consumer keeps its own cursor and applies events in id order.
-- Publishers take a transaction-level advisory lock before inserting, so ids commit in order and a
-- cursor never skips an event committed late.
create table kit.events (
    id bigint generated always as identity primary key,
    topic text not null,
    payload jsonb not null,
    created_at timestamptz not null default now()
);

create table kit.event_cursors (
    consumer text primary key,
    position bigint not null default 0,
    updated_at timestamptz not null default now()
);

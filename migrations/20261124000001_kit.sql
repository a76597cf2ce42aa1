-- Shared helpers of every subgraph schema.
create schema if not exists kit;

-- Keeps updated_at honest on every update, whatever the client sends.
create or replace function kit.set_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end;
$$;

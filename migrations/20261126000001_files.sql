-- The files subgraph: file metadata (the bytes live in the object store), per-tenant usage and
-- quota, per-workspace content-type allow-lists, and the thumbnail queue.
create schema if not exists files;
grant usage on schema files to pyairtable_app;

create table files.files (
    id uuid primary key,
    tenant_id uuid not null,
    workspace_id uuid not null,
    owner_id uuid not null,
    name text not null,
    -- What the client said; checked against the bytes, never trusted.
    declared_type text not null,
    declared_sha256 bytea,
    -- The declared size until the bytes arrive, then the size of the bytes.
    size bigint not null,
    -- From the bytes, once they are in.
    content_type text,
    sha256 bytea,
    -- pending: waiting for the bytes; receiving: bytes streaming in (signed endpoint);
    -- received: bytes in, checks to run; verifying: completeUpload at work; ready: visible.
    state text not null,
    upload_expires_at timestamptz,
    -- An S3 upload goes to a staging key first; true while that object may exist.
    staged boolean not null default false,
    thumbnail_width integer,
    thumbnail_height integer,
    deleted_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint files_state check (state in ('pending', 'receiving', 'received', 'verifying', 'ready')),
    constraint files_size check (size >= 0),
    constraint files_name_length check (char_length(name) between 1 and 255),
    constraint files_sha256_length check (sha256 is null or length(sha256) = 32)
);

create index files_workspace_idx on files.files (tenant_id, workspace_id, id)
    where state = 'ready' and deleted_at is null;
create index files_sweep_idx on files.files (coalesce(deleted_at, upload_expires_at))
    where deleted_at is not null or state <> 'ready' or staged;

create trigger files_set_updated_at before update on files.files
    for each row execute function kit.set_updated_at();

-- Which organization each workspace is in (from the workspaces subgraph's events).
create table files.workspaces (
    id uuid primary key,
    tenant_id uuid not null
);

-- Bytes each tenant holds (ready files and reservations of uploads in progress), and its quota
-- when it differs from PYAIRTABLE_FILES_QUOTA.
create table files.usage (
    tenant_id uuid primary key,
    used_bytes bigint not null default 0,
    quota_bytes bigint,
    constraint usage_used check (used_bytes >= 0),
    constraint usage_quota check (quota_bytes is null or quota_bytes >= 0)
);

-- Content types a workspace accepts (`image/*` matches every image); no row: any type but
-- executables.
create table files.workspace_settings (
    workspace_id uuid primary key,
    tenant_id uuid not null,
    allowed_types text[] not null,
    updated_at timestamptz not null default now()
);

-- Thumbnails to make, taken by workers with FOR UPDATE SKIP LOCKED.
create table files.thumbnail_jobs (
    file_id uuid primary key references files.files (id) on delete cascade,
    tenant_id uuid not null,
    attempts integer not null default 0,
    run_after timestamptz not null default now()
);
create index thumbnail_jobs_run_after_idx on files.thumbnail_jobs (run_after);

-- The key that signs upload and download URLs of the files service's own endpoint, shared by
-- every replica (made by the first one to start).
create table files.signing_key (
    id integer primary key default 1,
    key bytea not null,
    constraint signing_key_single check (id = 1),
    constraint signing_key_length check (length(key) = 32)
);

do $$
declare t text;
begin
    foreach t in array array['files', 'workspaces', 'usage', 'workspace_settings', 'thumbnail_jobs'] loop
        execute format('alter table files.%I enable row level security', t);
        execute format('alter table files.%I force row level security', t);
        execute format(
            'create policy tenant_scope on files.%I using (tenant_id = any (kit.tenant_ids())) '
            'with check (tenant_id = any (kit.tenant_ids()))', t);
    end loop;
end;
$$;

-- Background work looks across tenants through these functions only (owned by the migrating
-- role); each returns ids and tenants, and the worker then acts in that tenant's scope.

-- The next thumbnail job due, locked for the calling transaction (others skip it).
create function files.claim_thumbnail_job() returns table (file_id uuid, tenant_id uuid, attempts integer)
language sql security definer set search_path = pg_catalog, files as $$
    select j.file_id, j.tenant_id, j.attempts from files.thumbnail_jobs j
    where j.run_after <= now() order by j.run_after limit 1 for update skip locked
$$;

-- Files whose objects the sweep removes: deleted ones, uploads abandoned after `grace` past
-- their URL's expiry, and staging objects of completed uploads whose URL has expired.
create function files.sweep_candidates(at timestamptz, grace interval, max integer)
returns table (id uuid, tenant_id uuid)
language sql security definer set search_path = pg_catalog, files as $$
    select f.id, f.tenant_id from files.files f
    where f.deleted_at is not null
       or (f.state <> 'ready' and f.upload_expires_at < at - grace)
       or (f.staged and f.state = 'ready' and f.upload_expires_at < at)
    order by coalesce(f.deleted_at, f.upload_expires_at) limit max
$$;

-- A user's avatar: only an image that user owns, ready and not deleted (whoever may see the
-- profile sees it, whatever workspace it is in).
create function files.avatar(owner uuid, file uuid) returns setof files.files
language sql stable security definer set search_path = pg_catalog, files as $$
    select * from files.files f
    where f.id = file and f.owner_id = owner and f.state = 'ready' and f.deleted_at is null
      and f.content_type like 'image/%'
$$;

revoke all on function files.claim_thumbnail_job() from public;
revoke all on function files.sweep_candidates(timestamptz, interval, integer) from public;
revoke all on function files.avatar(uuid, uuid) from public;
grant execute on function files.claim_thumbnail_job() to pyairtable_app;
grant execute on function files.sweep_candidates(timestamptz, interval, integer) to pyairtable_app;
grant execute on function files.avatar(uuid, uuid) to pyairtable_app;

grant select, insert, update, delete on all tables in schema files to pyairtable_app;

-- The auth subgraph owns credentials, sessions, tokens, API keys and signing keys.
create schema if not exists auth;

create table auth.credentials (
    user_id uuid primary key,
    email text not null,
    password_hash text not null,
    email_verified_at timestamptz,
    totp_secret bytea,
    totp_enabled_at timestamptz,
    -- the TOTP step last accepted: a code is good once
    totp_last_step bigint,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint credentials_email_key unique (email),
    constraint credentials_email_lowercase check (email = lower(email))
);
create trigger credentials_set_updated_at before update on auth.credentials
    for each row execute function kit.set_updated_at();

-- A session is one sign-in on one device; its refresh tokens form one family.
create table auth.sessions (
    id uuid primary key,
    user_id uuid not null references auth.credentials (user_id) on delete cascade,
    user_agent text,
    ip text,
    created_at timestamptz not null default now(),
    last_used_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    revoked_reason text
);
create index sessions_user_idx on auth.sessions (user_id) where revoked_at is null;

create table auth.refresh_tokens (
    hash bytea primary key,
    session_id uuid not null references auth.sessions (id) on delete cascade,
    created_at timestamptz not null default now(),
    used_at timestamptz,
    -- the token that replaced this one (answered again to a concurrent refresh within the grace period)
    replaced_by bytea
);
create index refresh_tokens_session_idx on auth.refresh_tokens (session_id);

-- Single-use links: email verification and password reset.
create table auth.one_time_tokens (
    hash bytea primary key,
    user_id uuid not null references auth.credentials (user_id) on delete cascade,
    purpose text not null check (purpose in ('verify_email', 'reset_password')),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);

create table auth.api_keys (
    id uuid primary key,
    user_id uuid not null references auth.credentials (user_id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    prefix text not null,
    hash bytea not null unique,
    scopes text[] not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);
create index api_keys_user_idx on auth.api_keys (user_id);

create table auth.recovery_codes (
    user_id uuid not null references auth.credentials (user_id) on delete cascade,
    hash bytea not null,
    used_at timestamptz,
    primary key (user_id, hash)
);

-- Ed25519 keys that sign access tokens. Exactly one is current; the next one is published ahead
-- of use and the previous one stays published until tokens it signed have expired.
create table auth.signing_keys (
    kid text primary key,
    private_pkcs8 bytea not null,
    public_key bytea not null,
    state text not null check (state in ('next', 'current', 'previous', 'retired')),
    created_at timestamptz not null default now(),
    activated_at timestamptz,
    retired_at timestamptz
);
create unique index signing_keys_one_current on auth.signing_keys (state) where state = 'current';

-- Failed sign-in attempts, per account and per IP, counted atomically by upsert.
create table auth.login_failures (
    subject text primary key,
    failures integer not null,
    window_started_at timestamptz not null,
    locked_until timestamptz
);

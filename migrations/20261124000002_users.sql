-- The users subgraph owns user profiles.
create schema if not exists users;

create table users.users (
    id uuid primary key,
    email text not null,
    display_name text not null,
    avatar_file_id uuid,
    locale text not null default 'en',
    time_zone text not null default 'UTC',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint users_email_key unique (email),
    constraint users_email_lowercase check (email = lower(email)),
    constraint users_display_name_length check (char_length(display_name) between 1 and 100)
);

create trigger users_set_updated_at before update on users.users
    for each row execute function kit.set_updated_at();

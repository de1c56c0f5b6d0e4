-- 0002: people and API tokens.  Passwords are Argon2id strings from
-- libsodium's crypto_pwhash_str; tokens are stored only as their SHA-256, the
-- token itself is shown once by `precursor-server token create`.

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    role            text NOT NULL CHECK (role IN ('admin', 'operator', 'ml')),
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    disabled_at     timestamptz
);

CREATE TABLE api_tokens (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    role            text NOT NULL CHECK (role IN ('admin', 'operator', 'ml')),
    token_sha256    bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    user_id         bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);

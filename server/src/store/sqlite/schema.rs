//! Schema migrations, applied in order at open. Each entry runs once, inside a transaction,
//! and is recorded in `schema_migrations`. The SQL sticks to what SQLite and PostgreSQL
//! both accept (apart from `INTEGER PRIMARY KEY` row ids and `BLOB`, which map to
//! `BIGSERIAL` / `BYTEA`).

/// `(version, description, sql)`.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial schema",
        r#"
CREATE TABLE registrations (
    id                  TEXT PRIMARY KEY,
    secret_hash         BLOB NOT NULL,
    code                TEXT NOT NULL UNIQUE,
    device_id           BLOB NOT NULL,
    matching_code       TEXT NOT NULL,
    state               TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    given_name          TEXT,
    surname             TEXT,
    country             TEXT,
    national_id         TEXT,
    proof_attempts      INTEGER NOT NULL DEFAULT 0,
    account_id          TEXT
);

CREATE TABLE registration_keys (
    registration_id     TEXT NOT NULL REFERENCES registrations(id),
    key_type            TEXT NOT NULL,
    client_modulus      BLOB NOT NULL,
    server_modulus      BLOB NOT NULL,
    server_share_blob   BLOB,
    server_key_blob     BLOB,
    proof_hash          TEXT NOT NULL,
    proof_scheme        TEXT NOT NULL,
    proof_digest        BLOB NOT NULL,
    proof_message       BLOB NOT NULL,
    PRIMARY KEY (registration_id, key_type)
);

CREATE TABLE accounts (
    id                  TEXT PRIMARY KEY,
    document_number     TEXT NOT NULL UNIQUE,
    device_id           BLOB NOT NULL,
    device_secret_hash  BLOB NOT NULL,
    given_name          TEXT NOT NULL,
    surname             TEXT NOT NULL,
    country             TEXT NOT NULL,
    national_id         TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    state               TEXT NOT NULL,
    deleted_at          INTEGER
);
CREATE UNIQUE INDEX accounts_one_active_per_device ON accounts(device_id) WHERE state = 'ACTIVE';
CREATE INDEX accounts_person ON accounts(country, national_id);

CREATE TABLE key_pairs (
    id                   INTEGER PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    key_type             TEXT NOT NULL,
    client_modulus       BLOB NOT NULL,
    server_modulus       BLOB NOT NULL,
    composite_modulus    BLOB NOT NULL,
    server_share_blob    BLOB,
    server_key_blob      BLOB,
    status               TEXT NOT NULL,
    disabled_reason      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    locked_until         INTEGER,
    last_attempt_at      INTEGER,
    clone_token_hash     BLOB NOT NULL,
    UNIQUE (account_id, key_type)
);

CREATE TABLE transactions (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    relying_party       TEXT NOT NULL,
    key_type            TEXT NOT NULL,
    hash                TEXT NOT NULL,
    scheme              TEXT NOT NULL,
    digest              BLOB NOT NULL,
    display_text        TEXT NOT NULL,
    verification_code   TEXT NOT NULL,
    vc_choices          TEXT NOT NULL,
    state               TEXT NOT NULL,
    end_result          TEXT,
    signature           BLOB,
    answered_by         TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    completed_at        INTEGER
);
CREATE INDEX transactions_running ON transactions(state, expires_at);

CREATE TABLE transaction_targets (
    transaction_id      TEXT NOT NULL REFERENCES transactions(id),
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    encoded_message     BLOB NOT NULL,
    PRIMARY KEY (transaction_id, account_id)
);
CREATE INDEX transaction_targets_account ON transaction_targets(account_id);

-- Stored answers to state-changing device requests, by retransmission nonce.
CREATE TABLE replies (
    scope               TEXT NOT NULL,
    nonce               BLOB NOT NULL,
    request_hash        BLOB NOT NULL,
    response            BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (scope, nonce)
);

-- Append-only, hash-chained; never holds secrets.
CREATE TABLE audit_log (
    seq                 INTEGER PRIMARY KEY,
    at                  INTEGER NOT NULL,
    event               TEXT NOT NULL,
    account_id          TEXT,
    details             TEXT NOT NULL,
    prev_hash           BLOB NOT NULL,
    hash                BLOB NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"#,
    ),
    (
        2,
        "certificates and CRL numbers",
        r#"
CREATE TABLE certificates (
    serial              TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    key_type            TEXT NOT NULL,
    level               TEXT NOT NULL,
    der                 BLOB NOT NULL,
    not_before          INTEGER NOT NULL,
    not_after           INTEGER NOT NULL,
    status              TEXT NOT NULL,
    revoked_at          INTEGER,
    revocation_reason   INTEGER
);
CREATE INDEX certificates_account ON certificates(account_id, key_type);
CREATE INDEX certificates_revoked ON certificates(status);

CREATE TABLE crl_counter (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    next_number         INTEGER NOT NULL
);
INSERT INTO crl_counter (id, next_number) VALUES (1, 1);
"#,
    ),
    (
        3,
        "relying parties",
        r#"
CREATE TABLE relying_parties (
    uuid                TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    allowed_ips         TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    active              INTEGER NOT NULL
);
"#,
    ),
    (
        4,
        "index for pruning stored replies",
        "CREATE INDEX replies_created ON replies(created_at);",
    ),
    (
        5,
        "relying-party REST sessions",
        r#"
ALTER TABLE transactions ADD COLUMN end_detail TEXT;
ALTER TABLE transaction_targets ADD COLUMN outcome TEXT;
CREATE TABLE rp_sessions (
    transaction_id      TEXT PRIMARY KEY REFERENCES transactions(id),
    rp_uuid             TEXT NOT NULL,
    session_type        TEXT NOT NULL,
    flow                TEXT NOT NULL,
    session_token       TEXT UNIQUE,
    session_secret      BLOB,
    restriction         TEXT,
    params              TEXT NOT NULL,
    request_hash        BLOB NOT NULL,
    created_at_ms       INTEGER NOT NULL
);
CREATE INDEX rp_sessions_idempotency ON rp_sessions(rp_uuid, request_hash, created_at_ms);
"#,
    ),
    (
        6,
        "document number chosen at approval (test accounts)",
        "ALTER TABLE registrations ADD COLUMN document_number TEXT;",
    ),
    (
        7,
        "pool of pre-generated server keys (wrapped under the KEK), each taken once",
        r#"
CREATE TABLE server_key_pool (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    bits                INTEGER NOT NULL,
    modulus             BLOB NOT NULL,
    wrapped_private_key BLOB NOT NULL,
    created_at          INTEGER NOT NULL
);
"#,
    ),
    (
        8,
        "running targets indexed by account (pending lists independent of history)",
        // `running` is 1 while the transaction runs and NULL after; a trigger clears it when
        // the transaction's state leaves RUNNING, whichever statement does that. The partial
        // index holds only running targets, so listing an account's pending transactions no
        // longer walks every transaction the account ever had.
        r#"
ALTER TABLE transaction_targets ADD COLUMN running INTEGER DEFAULT 1;
UPDATE transaction_targets SET running = NULL
    WHERE transaction_id IN (SELECT id FROM transactions WHERE state <> 'RUNNING');
CREATE INDEX transaction_targets_running ON transaction_targets(account_id) WHERE running = 1;
CREATE TRIGGER transaction_targets_ended AFTER UPDATE OF state ON transactions
    WHEN NEW.state <> 'RUNNING'
BEGIN
    UPDATE transaction_targets SET running = NULL WHERE transaction_id = NEW.id;
END;
"#,
    ),
    (
        9,
        "REST sessions still holding a device-link secret, indexed (pruning independent of history)",
        // The once-a-second pruning of device-link secrets had scanned every completed
        // transaction and every REST session on each run. The partial index holds only the
        // sessions that still keep a secret (device-link sessions whose result retention has
        // not run out), by creation time.
        r#"
CREATE INDEX rp_sessions_secret_held ON rp_sessions(created_at_ms) WHERE session_secret IS NOT NULL;
"#,
    ),
    (
        10,
        "stored answers are sealed; those stored in clear before are discarded",
        // Answers are sealed from now on (service::retransmission). The ones an earlier
        // version stored in clear may hold a device secret or clone token: they are emptied
        // (`secure_delete` overwrites the old bytes; the store truncates the WAL after this
        // migration). A retry of such a request then gets an error instead of being judged
        // a second time.
        "UPDATE replies SET response = x'';",
    ),
    (
        11,
        "one or more names per relying party",
        // api_details.txt: relyingPartyName "must match one of the names configured for the
        // calling RP". Each relying party's single name becomes its first configured name.
        // Names are unique per relying party under Unicode default case folding
        // (tandem_rp::api::rp_name); the store checks that in its write transaction, because SQL has
        // no such folding (UNIQUE here only catches byte-equal names) and a folded key kept
        // in a column would go stale with a newer Unicode version.
        r#"
CREATE TABLE relying_party_names (
    rp_uuid             TEXT NOT NULL REFERENCES relying_parties(uuid),
    position            INTEGER NOT NULL,
    name                TEXT NOT NULL,
    added_at            INTEGER NOT NULL,
    PRIMARY KEY (rp_uuid, position),
    UNIQUE (rp_uuid, name)
);
INSERT INTO relying_party_names (rp_uuid, position, name, added_at)
    SELECT uuid, 1, name, created_at FROM relying_parties;
ALTER TABLE relying_parties DROP COLUMN name;
"#,
    ),
    (
        12,
        "permission of a relying party to request the mobile device's IP address",
        // openapi.yml `RequestProperties`: the IP address is shared only if "The RP has
        // privileges to request mobile device IP address (default configuration does not
        // allow the IP sharing)"; changes.txt 3.2.2: a request for it from a relying party
        // whose configuration forbids it is refused at once (403). Every relying party,
        // existing ones included, starts without the permission: it is the specification's
        // default; no relying party has ever received a device address from an earlier
        // server (none was recorded), so none depends on it; and the address is the
        // person's personal data, handed out only where the operator decided so
        // (`tandem operator rp-device-ip UUID allow`, audited).
        r#"
ALTER TABLE relying_parties ADD COLUMN device_ip_sharing INTEGER NOT NULL DEFAULT 0;
"#,
    ),
    (
        13,
        "revoked CA certificates and the root CRL's numbers",
        // response_verification.txt: "Intermediate CA certificates can be revoked and must be
        // checked". The operator revokes the issuing CA certificate (`tandem operator
        // revoke-ca`, audited); the root's CRL (`GET /crl/root.crl`) lists what is here, under
        // its own cRLNumber sequence. Serials are hex without leading zero bytes, as in
        // `certificates`. Nothing was revoked before, so the table starts empty.
        r#"
CREATE TABLE ca_revocations (
    serial              TEXT PRIMARY KEY,
    subject             TEXT NOT NULL,
    revoked_at          INTEGER NOT NULL,
    revocation_reason   INTEGER NOT NULL
);

CREATE TABLE root_crl_counter (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    next_number         INTEGER NOT NULL
);
INSERT INTO root_crl_counter (id, next_number) VALUES (1, 1);
"#,
    ),
    (
        14,
        "proofs of origin issued, one per AUTH session",
        // POST /tandem/v1/proof-of-origin (docs/DOCUMENTS.md): an AUTH session gives at most
        // one proof; the row is written with the proof's audit record. Nothing was issued
        // before, so the table starts empty.
        r#"
CREATE TABLE origin_proofs (
    auth_session_id     TEXT PRIMARY KEY,
    rp_uuid             TEXT NOT NULL,
    message_id          TEXT NOT NULL,
    issued_at           INTEGER NOT NULL
);
"#,
    ),
    (
        15,
        "the self-service portal: its permission and the AUTH sessions used for deletions",
        // POST /tandem/v1/portal/* (docs/RP_API.md, "Portal endpoints"): only a relying
        // party the operator allowed (`tandem operator rp-portal UUID allow`, audited) sees
        // a holder's accounts; every relying party starts without it. A deletion uses its
        // AUTH session once: the row is written in the deletion's database transaction. (The portal's list
        // of a person's transactions goes through `transaction_targets_account`; no new index.)
        r#"
ALTER TABLE relying_parties ADD COLUMN portal INTEGER NOT NULL DEFAULT 0;

CREATE TABLE portal_deletions (
    auth_session_id     TEXT PRIMARY KEY,
    rp_uuid             TEXT NOT NULL,
    account_id          TEXT NOT NULL,
    deleted_at          INTEGER NOT NULL
);
"#,
    ),
    (
        16,
        "software certificates for relying parties: credits, administrators, vouchers, creations, mutual TLS",
        // POST /tandem/v1/rp-certs/* (docs/RP_API.md, "Software certificates"). Credits and
        // administrators are given by the operator (`tandem operator rp-credit`, `rp-admin`,
        // audited); nothing existed before, so every relying party starts with no credit, no
        // administrator and mutual TLS optional. A voucher's code is stored with the SHA-256
        // of its normalised form (the lookup key): only the target's administrators can
        // redeem it, for that relying party, so its listing shows the whole code and a
        // voucher whose code was not noted is not lost. A creation keeps only the
        // CSR's public key (SPKI DER); serials are hex without leading zero bytes, as in
        // `certificates`. A creation cancelled while it was being signed keeps the serial
        // the worker made, revoked, so that certificate can never be used.
        r#"
ALTER TABLE relying_parties ADD COLUMN mtls_required INTEGER NOT NULL DEFAULT 0;

CREATE TABLE rp_credits (
    rp_uuid             TEXT PRIMARY KEY,
    credits             INTEGER NOT NULL CHECK (credits >= 0)
);

CREATE TABLE rp_admins (
    rp_uuid             TEXT NOT NULL,
    person              TEXT NOT NULL,
    added_at            INTEGER NOT NULL,
    PRIMARY KEY (rp_uuid, person)
);

CREATE TABLE rp_vouchers (
    code_hash           BLOB PRIMARY KEY,
    code                TEXT NOT NULL,
    rp_uuid             TEXT NOT NULL,
    cert_id             TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('ISSUED', 'REDEEMED')),
    issued_at           INTEGER NOT NULL,
    redeemed_at         INTEGER
);
CREATE INDEX rp_vouchers_rp ON rp_vouchers (rp_uuid, state);

CREATE TABLE rp_certs (
    id                  TEXT PRIMARY KEY,
    rp_uuid             TEXT NOT NULL,
    label               TEXT NOT NULL,
    state               TEXT NOT NULL
        CHECK (state IN ('QUEUED', 'CREATING', 'READY', 'CANCELLED', 'REVOKED')),
    queued_at           INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    public_key          BLOB NOT NULL,
    admin               TEXT NOT NULL,
    serial              TEXT UNIQUE,
    der                 BLOB,
    not_after           INTEGER,
    revoked_at          INTEGER,
    revocation_reason   INTEGER
);
CREATE INDEX rp_certs_queue ON rp_certs (state, seq);
CREATE INDEX rp_certs_rp ON rp_certs (rp_uuid, seq);
"#,
    ),
];

/// The migration after which the write-ahead log is truncated, so no frame of it keeps an
/// answer stored in clear.
pub(crate) const SEALED_REPLIES_MIGRATION: i64 = 10;

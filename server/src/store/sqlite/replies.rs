//! Stored replies for retransmission nonces (SQLite).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::*;

impl Replies for SqliteStore {
    fn lookup_reply(&self, scope: &str, nonce: &[u8], request_hash: &[u8]) -> Result<ReplyLookup> {
        let conn = self.conn();
        lookup_reply(&conn, scope, nonce, request_hash)
    }

    fn prune_replies(&self, before: i64) -> Result<usize> {
        self.write(|tx| {
            Ok(tx
                .prepare_cached("DELETE FROM replies WHERE created_at < ?1")?
                .execute(params![before])?)
        })
    }

    fn store_reply(&self, reply: &Reply) -> Result<()> {
        self.write(|tx| insert_reply(tx, reply))
    }
}

pub(super) fn lookup_reply(
    conn: &Connection,
    scope: &str,
    nonce: &[u8],
    request_hash: &[u8],
) -> Result<ReplyLookup> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT request_hash, response FROM replies WHERE scope = ?1 AND nonce = ?2",
        )?
        .query_row(params![scope, nonce], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => ReplyLookup::New,
        Some((h, resp)) if h == request_hash => ReplyLookup::Replay(resp),
        Some(_) => ReplyLookup::Mismatch,
    })
}

pub(super) fn insert_reply(tx: &Connection, reply: &Reply) -> Result<()> {
    match lookup_reply(tx, &reply.scope, &reply.nonce, &reply.request_hash)? {
        ReplyLookup::New => {
            tx.prepare_cached("INSERT INTO replies (scope, nonce, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
                params![reply.scope, reply.nonce, reply.request_hash, reply.response, unix_now()],
            )?;
            Ok(())
        }
        ReplyLookup::Replay(_) | ReplyLookup::Mismatch => Err(StoreError::Conflict(
            "this request nonce was already used".into(),
        )),
    }
}

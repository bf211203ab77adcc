//! Principals created at run time (`/v1/auth/users`, `/v1/auth/keys`), in the catalog: users with
//! their argon2id hash, keys with their secret sealed (`super::seal`).

use ipnet::IpNet;
use rusqlite::{OptionalExtension, params};

use crate::catalog::Catalog;
use crate::config::Grant;
use crate::error::Result;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS auth_users (
    name            TEXT PRIMARY KEY,
    password_hash   TEXT NOT NULL,
    grants          TEXT NOT NULL,
    cidrs           TEXT NOT NULL,
    created_at_us   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS auth_keys (
    access_key_id   TEXT PRIMARY KEY,
    secret_sealed   TEXT NOT NULL,
    grants          TEXT NOT NULL,
    cidrs           TEXT NOT NULL,
    description     TEXT NOT NULL,
    created_at_us   INTEGER NOT NULL,
    rotated_at_us   INTEGER
);
";

pub struct UserRow {
    pub name: String,
    pub password_hash: String,
    pub grants: Vec<Grant>,
    pub cidrs: Vec<IpNet>,
    pub created_at_us: i64,
}

pub struct KeyRow {
    pub access_key_id: String,
    pub secret_sealed: String,
    pub grants: Vec<Grant>,
    pub cidrs: Vec<IpNet>,
    pub description: String,
    pub created_at_us: i64,
    pub rotated_at_us: Option<i64>,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("grants serialize")
}

fn parse<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub fn users(catalog: &Catalog) -> Result<Vec<UserRow>> {
    catalog.transaction(|tx| {
        let mut st = tx.prepare(
            "SELECT name, password_hash, grants, cidrs, created_at_us FROM auth_users ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(UserRow {
                name: r.get(0)?,
                password_hash: r.get(1)?,
                grants: parse(&r.get::<_, String>(2)?)?,
                cidrs: parse(&r.get::<_, String>(3)?)?,
                created_at_us: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
}

pub fn keys(catalog: &Catalog) -> Result<Vec<KeyRow>> {
    catalog.transaction(|tx| {
        let mut st = tx.prepare(
            "SELECT access_key_id, secret_sealed, grants, cidrs, description, created_at_us,
                    rotated_at_us FROM auth_keys ORDER BY access_key_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(KeyRow {
                access_key_id: r.get(0)?,
                secret_sealed: r.get(1)?,
                grants: parse(&r.get::<_, String>(2)?)?,
                cidrs: parse(&r.get::<_, String>(3)?)?,
                description: r.get(4)?,
                created_at_us: r.get(5)?,
                rotated_at_us: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    })
}

/// Inserts or replaces a user.
pub fn put_user(catalog: &Catalog, u: &UserRow) -> Result<()> {
    catalog.transaction(|tx| {
        tx.execute(
            "INSERT OR REPLACE INTO auth_users (name, password_hash, grants, cidrs, created_at_us)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.name, u.password_hash, json(&u.grants), json(&u.cidrs), u.created_at_us],
        )?;
        Ok(())
    })
}

/// Inserts or replaces a key.
pub fn put_key(catalog: &Catalog, k: &KeyRow) -> Result<()> {
    catalog.transaction(|tx| {
        tx.execute(
            "INSERT OR REPLACE INTO auth_keys (access_key_id, secret_sealed, grants, cidrs,
                 description, created_at_us, rotated_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                k.access_key_id,
                k.secret_sealed,
                json(&k.grants),
                json(&k.cidrs),
                k.description,
                k.created_at_us,
                k.rotated_at_us
            ],
        )?;
        Ok(())
    })
}

/// Deletes a user (`table = auth_users`) or a key; false when there was none.
pub fn delete(catalog: &Catalog, user: bool, id: &str) -> Result<bool> {
    let sql = if user {
        "DELETE FROM auth_users WHERE name = ?1"
    } else {
        "DELETE FROM auth_keys WHERE access_key_id = ?1"
    };
    catalog.transaction(|tx| Ok(tx.execute(sql, params![id])? > 0))
}

pub fn user_exists(catalog: &Catalog, name: &str) -> Result<bool> {
    catalog.transaction(|tx| {
        Ok(tx
            .query_row("SELECT 1 FROM auth_users WHERE name = ?1", params![name], |_| Ok(()))
            .optional()?
            .is_some())
    })
}

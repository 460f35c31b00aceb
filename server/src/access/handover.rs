//! Handing a console sign-in over to another origin: the clusters' Grafanas, on a listener of
//! their own (`--grafana-listen`), so that no script there runs beside the console's session.
//!
//! The console mints a one-time code, valid for a minute, bound to the person, their console
//! session and one scope (a cluster); only its hash is stored. The other origin redeems it once,
//! on any replica, for a *pass*: its own cookie, an HMAC (under a key derived from the audit
//! chain's key, the same on every replica) of the scope, the person, the console session and the
//! time it was issued. A pass signs its person in while that console session is listed (signing
//! out, "sign out everywhere" and the IdP end it) and for at most the absolute session timeout.

use super::sessions::now_ms as unix_ms;
use super::*;
use crate::secrets::ChainKey;

/// How long a code may wait to be redeemed.
pub const CODE_LIFETIME: Duration = Duration::from_secs(60);

fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Whether two texts are equal, compared in constant time.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl Access {
    fn pass_key(&self) -> ChainKey {
        ChainKey::from_bytes(self.db.chain_key().mac(b"pangea origin passes v1"))
    }

    /// `{user}.{session key}.{issued, unix s}.{mac}`; the scope is in the MAC, not the text.
    fn pass(&self, scope: &str, user_id: i64, session_key: &str, issued: i64) -> String {
        let mac = self.pass_key().mac(format!("{scope}|{user_id}|{session_key}|{issued}").as_bytes());
        format!("{user_id}.{session_key}.{issued}.{}", hex::encode(mac))
    }

    /// A one-time code for `scope`, for the person signed in to the console session stored
    /// under `session_key`.
    pub async fn hand_over(&self, user_id: i64, session_key: &str, scope: &str) -> Result<String, AppError> {
        let code = hex::encode(rand::random::<[u8; 32]>());
        let now = unix_ms();
        let expires = now + CODE_LIFETIME.as_millis() as i64;
        store::insert_handover(&self.db, &code_hash(&code), session_key, user_id, scope, now, expires)
            .await
            .or_internal()?;
        Ok(code)
    }

    /// Redeems `code` for `scope`, once: the pass for the other origin's cookie, or `None` for a
    /// code that is unknown, used, expired or for another scope.
    pub async fn redeem_handover(&self, code: &str, scope: &str) -> Result<Option<String>, AppError> {
        if code.len() != 64 {
            return Ok(None);
        }
        let taken = store::take_handover(&self.db, &code_hash(code), scope, unix_ms()).await.or_internal()?;
        Ok(taken.map(|(session_key, user_id)| {
            self.pass(scope, user_id, &session_key, time::OffsetDateTime::now_utc().unix_timestamp())
        }))
    }

    /// The person `pass` signs in for `scope`: checked by its MAC and age (at most `absolute`)
    /// before anything is read, then while its console session is listed, used within `idle`
    /// and younger than `absolute`, and the person may sign in.
    pub async fn principal_for_pass(
        &self,
        pass: &str,
        scope: &str,
        (idle, absolute): (Duration, Duration),
        origin: &Origin,
    ) -> Result<Option<Principal>, AppError> {
        let parts: Vec<&str> = pass.split('.').collect();
        let [user_id, session_key, issued, _] = parts[..] else { return Ok(None) };
        let (Ok(user_id), Ok(issued)) = (user_id.parse::<i64>(), issued.parse::<i64>()) else { return Ok(None) };
        let age = time::OffsetDateTime::now_utc().unix_timestamp() - issued;
        if !same(pass, &self.pass(scope, user_id, session_key, issued))
            || !(0..=absolute.as_secs() as i64).contains(&age)
        {
            return Ok(None);
        }
        let now = time::OffsetDateTime::now_utc();
        let (idle_before, created_before) = (crate::db::timestamp(now - idle), crate::db::timestamp(now - absolute));
        if !store::session_in_use(&self.db, session_key, &idle_before, &created_before).await.or_internal()? {
            return Ok(None);
        }
        self.principal_for_user(user_id, origin).await
    }
}

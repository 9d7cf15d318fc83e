//! Fresh HDFS delegation tokens for an application that outlives the tokens
//! it was submitted with, as Flink's delegation token framework (FLIP-211)
//! does: with `submit --keytab`, the keytab reaches the AM as a private
//! local resource of the application, and the AM logs in from it and obtains
//! new tokens before the current ones expire. The new tokens replace the
//! AM's own (in its `HADOOP_TOKEN_FILE_LOCATION`, for its staging cleanup and
//! output commits), go to every running TaskExecutor (the ResourceManager's
//! `UpdateDelegationTokens`) and into every TaskManager container started
//! after (the driver reads the newest at each launch).
//!
//! When: a token is obtained with the AM's own principal as renewer and
//! renewed once, which tells its expiry (the NameNode's renew interval, 24 h
//! by default); the next token is obtained at `ratio` (0.75, Flink's
//! `security.delegation.tokens.renewal.time-ratio`) of the time left until the
//! earlier of that expiry and 60 s before its maximum date (hdfs-native skips
//! a token that close to its maximum date). Failures are retried with backoff
//! and logged; the current tokens stay in use meanwhile.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use hadoop::conf::HadoopConf;
use hadoop::credentials::{Credentials, TokenIdentifier};
use hadoop::kerberos::KerberosLogin;
use tokio::sync::watch;
use tracing::{info, warn};

use super::application_master::AMRM_TOKEN_KIND;

/// Flink's default renewal time ratio.
pub const RATIO: f64 = 0.75;
/// hdfs-native 0.14.8 skips a token within this much of its maximum date.
const CLIENT_MARGIN_MS: i64 = 60_000;
/// Never sooner than this, whatever the arithmetic says (no hot loop).
const MIN_WAIT: Duration = Duration::from_secs(1);

pub struct Renewal {
    pub principal: String,
    pub keytab: PathBuf,
    pub conf: HadoopConf,
    /// The AM's own token file (`HADOOP_TOKEN_FILE_LOCATION`).
    pub token_file: PathBuf,
    pub ratio: f64,
}

/// When to obtain the next token: `ratio` of what is left until the token
/// stops being usable (pure; times in ms since the epoch).
pub fn next_obtain(now_ms: i64, expiry_ms: i64, max_date_ms: i64, ratio: f64) -> Duration {
    let end = expiry_ms.min(max_date_ms - CLIENT_MARGIN_MS);
    let left = (end - now_ms).max(0) as f64;
    Duration::from_millis((left * ratio) as u64).max(MIN_WAIT)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// What one round hands out.
pub struct Fresh {
    /// The AM's credentials minus the AMRMToken: what new containers get.
    pub for_containers: Vec<u8>,
    /// Only the HDFS tokens: what running TaskExecutors get (no secret on the wire).
    pub hdfs_only: Vec<u8>,
    /// When to obtain the next ones.
    pub next: Duration,
}

/// One round: log in from the keytab, obtain and renew a token, replace the
/// AM's own HDFS tokens.
pub async fn obtain(r: &Renewal) -> Result<Fresh, String> {
    let (keytab, principal) = (r.keytab.clone(), r.principal.clone());
    let login = tokio::task::spawn_blocking(move || KerberosLogin::from_keytab(&keytab, &principal))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    use hadoop::hdfs::delegation::{default_fs_token_service, kerberos_client};
    let service = default_fs_token_service(&r.conf)
        .map_err(|e| e.to_string())?
        .ok_or("fs.defaultFS is not HDFS: there is no HDFS delegation token to renew")?;
    // One connection for both calls. Renewable by ourselves: renewing once tells
    // the token's expiry. Old tokens are left to expire, as Flink leaves them.
    let nn = kerberos_client(&r.conf, &login).map_err(|e| e.to_string())?;
    let mut token = nn
        .get_delegation_token(login.principal())
        .await
        .map_err(|e| format!("cannot obtain an HDFS delegation token: {e}"))?;
    token.service = service;
    let expiry_ms = nn
        .renew_delegation_token(&token)
        .await
        .map_err(|e| format!("cannot renew the new HDFS delegation token: {e}"))? as i64;
    let max_date_ms = match token.decode_identifier() {
        TokenIdentifier::Delegation(d) => d.max_date_ms,
        _ => expiry_ms,
    };
    let mut fresh = Credentials::default();
    fresh.tokens.push((token.service.clone(), token));
    let hdfs_only = fresh.to_bytes();
    let (path, update) = (r.token_file.clone(), hdfs_only.clone());
    let for_containers = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        common::hdfs::replace_tokens_in(&path, &update).map_err(|e| e.to_string())?;
        let mut mine = Credentials::read_file(&path).map_err(|e| e.to_string())?;
        mine.tokens.retain(|(_, t)| t.kind != AMRM_TOKEN_KIND);
        Ok(mine.to_bytes())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(Fresh { for_containers, hdfs_only, next: next_obtain(now_ms(), expiry_ms, max_date_ms, r.ratio) })
}

/// Runs rounds until `stop`: each one's tokens go to `launch_tokens` (new
/// containers) and to `hand_out` (running TaskExecutors).
pub async fn run(
    r: Renewal,
    launch_tokens: watch::Sender<Arc<Vec<u8>>>,
    hand_out: impl Fn(Vec<u8>),
    stop: tokio_util::sync::CancellationToken,
) {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(60))
        .without_max_times();
    loop {
        let round = (|| obtain(&r))
            .retry(backoff)
            .notify(|e, after| warn!(error = %e, retry_in = ?after, "obtaining fresh delegation tokens failed"));
        let fresh = tokio::select! {
            f = round => f,
            _ = stop.cancelled() => return,
        };
        let Ok(fresh) = fresh else { continue };
        info!(next_in_s = fresh.next.as_secs(), "fresh HDFS delegation tokens obtained");
        launch_tokens.send_replace(Arc::new(fresh.for_containers));
        hand_out(fresh.hdfs_only);
        tokio::select! {
            _ = tokio::time::sleep(fresh.next) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn the_next_token_comes_at_three_quarters_of_what_is_left() {
        // A day's renew interval, a week's lifetime: 18 h.
        assert_eq!(next_obtain(0, 24 * H, 7 * 24 * H, RATIO), Duration::from_secs(18 * 3600));
        // Near the maximum date, the maximum (less the client's minute) decides.
        let max = 2 * H;
        assert_eq!(next_obtain(0, 24 * H, max, RATIO), Duration::from_millis(((max - 60_000) as f64 * 0.75) as u64));
        // Already past: soon, but not at once.
        assert_eq!(next_obtain(10 * H, 9 * H, 100 * H, RATIO), MIN_WAIT);
    }
}

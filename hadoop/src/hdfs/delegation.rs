//! ClientNamenodeProtocol's delegation token calls: get, renew, cancel.
//!
//! On a secure cluster the connection authenticates with Kerberos (a GSSAPI
//! mechanism from `crate::sasl`); the mechanisms are injected through
//! [`Auth`], so tests can use SIMPLE or a token instead.

use crate::credentials::Token;
use crate::error::Error;
use crate::ipc::{ConnectionConfig, FailoverProxy};
use crate::proto::common as pb;

use crate::yarn::types::{token_from_proto, token_to_proto};

/// The protocol name on the wire (the Java interface, not the PB one).
pub const PROTOCOL: &str = "org.apache.hadoop.hdfs.protocol.ClientProtocol";

pub struct NameNodeClient {
    proxy: FailoverProxy,
}

impl NameNodeClient {
    /// `addrs`: NameNode RPC addresses (`fs.defaultFS` host:port, or each of an HA pair).
    pub fn new(addrs: Vec<String>, auth: crate::ipc::Auth) -> Self {
        Self { proxy: FailoverProxy::new(addrs, ConnectionConfig::new(PROTOCOL, auth)) }
    }

    /// Over an already configured proxy (its protocol must be [`PROTOCOL`]).
    pub fn with_proxy(proxy: FailoverProxy) -> Self {
        Self { proxy }
    }

    /// A new HDFS_DELEGATION_TOKEN that `renewer` (usually the RM principal's
    /// short name, e.g. `yarn`) may renew. The NameNode leaves the service
    /// empty; it is set to the address that answered, as Hadoop's client does.
    pub async fn get_delegation_token(&self, renewer: &str) -> Result<Token, Error> {
        let request = pb::GetDelegationTokenRequestProto { renewer: renewer.to_string() };
        let response: pb::GetDelegationTokenResponseProto = self.proxy.call("getDelegationToken", &request).await?;
        let Some(token) = response.token else {
            return Err(Error::BadResponse {
                method: "getDelegationToken",
                detail: "no token: the NameNode issues delegation tokens only to Kerberos-authenticated callers \
                         (is security on and did we log in?)"
                    .into(),
            });
        };
        let mut token = token_from_proto(token);
        if token.service.is_empty() {
            token.service = self.proxy.current_addr().await.unwrap_or_default();
        }
        Ok(token)
    }

    /// Renew `token`; returns the new expiry time (ms since the epoch).
    pub async fn renew_delegation_token(&self, token: &Token) -> Result<u64, Error> {
        let request = pb::RenewDelegationTokenRequestProto { token: token_to_proto(token) };
        let response: pb::RenewDelegationTokenResponseProto = self.proxy.call("renewDelegationToken", &request).await?;
        Ok(response.new_expiry_time)
    }

    pub async fn cancel_delegation_token(&self, token: &Token) -> Result<(), Error> {
        let request = pb::CancelDelegationTokenRequestProto { token: token_to_proto(token) };
        let _: pb::CancelDelegationTokenResponseProto = self.proxy.call("cancelDelegationToken", &request).await?;
        Ok(())
    }
}

/// A new HDFS delegation token for `fs.defaultFS`, obtained over Kerberos as
/// `login`, renewable by `renewer` (a full principal: the NameNode shortens it
/// by its own rules), with the service Hadoop files it under
/// ([`default_fs_token_service`]). `None` when the default file system is not
/// HDFS. Used by the client at submission and by an AM that obtains fresh
/// tokens from a keytab.
pub async fn obtain_for_default_fs(
    conf: &crate::conf::HadoopConf,
    login: &crate::kerberos::KerberosLogin,
    renewer: &str,
) -> Result<Option<Token>, Error> {
    let Some(service) = default_fs_token_service(conf)? else { return Ok(None) };
    let mut token = kerberos_client(conf, login)?.get_delegation_token(renewer).await?;
    token.service = service;
    Ok(Some(token))
}

/// The service an HDFS delegation token of `fs.defaultFS` is filed under:
/// `ha-hdfs:<nameservice>` for an HA file system, else the NameNode's address
/// (by IP with `hadoop.security.token.service.use_ip`). `None` when the default
/// file system is not HDFS.
pub fn default_fs_token_service(conf: &crate::conf::HadoopConf) -> Result<Option<String>, Error> {
    let namenodes = conf.namenode_addresses()?;
    let Some(first) = namenodes.first() else { return Ok(None) };
    let default_fs = conf.default_fs()?;
    let authority = default_fs.trim_start_matches("hdfs://").split('/').next().unwrap_or_default();
    Ok(Some(if conf.is_nameservice(authority)? {
        format!("ha-hdfs:{authority}")
    } else {
        crate::credentials::token_service(&first.address, conf.token_service_use_ip()?)
    }))
}

/// A client of `fs.defaultFS`'s NameNode(s) that authenticates as `login`
/// (GSSAPI, to `dfs.namenode.kerberos.principal`).
pub fn kerberos_client(
    conf: &crate::conf::HadoopConf,
    login: &crate::kerberos::KerberosLogin,
) -> Result<NameNodeClient, Error> {
    let namenodes = conf.namenode_addresses()?;
    let nn_principal = conf.get("dfs.namenode.kerberos.principal")?;
    let l = login.clone();
    let auth = crate::ipc::Auth::sasl(
        move || {
            let mut g = crate::sasl::gssapi::Gssapi::new(l.clone());
            if let Some(p) = &nn_principal {
                g = g.with_server_principal(p.clone());
            }
            vec![Box::new(g) as Box<dyn crate::sasl::SaslMechanism>]
        },
        Some(login.principal().to_owned()),
    );
    Ok(NameNodeClient::new(namenodes.iter().map(|e| e.address.clone()).collect(), auth))
}

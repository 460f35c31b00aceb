//! Matchbox's gRPC admin API (`rpcpb.Groups`, `Profiles`, `Ignition`, `Generic`, `Select`), so
//! terraform-provider-matchbox and `bootcmd` work against Pangea unchanged. Like Matchbox it
//! listens only with TLS and a client certificate from the configured CA; the certificate's
//! subject names the caller in the audit log, with the operator role. Each method is one call
//! of the same [`Provisioner`] the console and the JSON API use.

// Methods answer tonic's `Status`, as tonic's generated services do; it is large by design.
#![allow(clippy::result_large_err)]

pub mod certs;
pub mod tls;

use super::Provisioner;
use app::access::{ConsoleRole, Identity, Principal};
use app::error::AppError;
use app::provisioning::{Group, NetBoot, Profile, TemplateFile, TemplateKind};
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::codec::ProstCodec;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Status};

/// The wire messages, with Matchbox's names and field numbers (`storagepb`, `serverpb`).
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Group {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub profile: String,
        #[prost(map = "string, string", tag = "4")]
        pub selector: std::collections::HashMap<String, String>,
        /// A JSON object.
        #[prost(bytes = "vec", tag = "5")]
        pub metadata: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NetBoot {
        #[prost(string, tag = "1")]
        pub kernel: String,
        #[prost(string, repeated, tag = "2")]
        pub initrd: Vec<String>,
        #[prost(string, repeated, tag = "4")]
        pub args: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub ignition_id: String,
        #[prost(string, tag = "4")]
        pub cloud_id: String,
        #[prost(message, optional, tag = "5")]
        pub boot: Option<NetBoot>,
        #[prost(string, tag = "6")]
        pub generic_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GroupPutRequest {
        #[prost(message, optional, tag = "1")]
        pub group: Option<Group>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProfilePutRequest {
        #[prost(message, optional, tag = "1")]
        pub profile: Option<Profile>,
    }
    /// `GroupGet`, `GroupDelete`, `ProfileGet`, `ProfileDelete` requests.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct IdRequest {
        #[prost(string, tag = "1")]
        pub id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GroupGetResponse {
        #[prost(message, optional, tag = "1")]
        pub group: Option<Group>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProfileGetResponse {
        #[prost(message, optional, tag = "1")]
        pub profile: Option<Profile>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GroupListResponse {
        #[prost(message, repeated, tag = "1")]
        pub groups: Vec<Group>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProfileListResponse {
        #[prost(message, repeated, tag = "1")]
        pub profiles: Vec<Profile>,
    }
    /// `IgnitionPut` and `GenericPut` requests.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TemplatePutRequest {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(bytes = "vec", tag = "2")]
        pub config: Vec<u8>,
    }
    /// `IgnitionGet`, `IgnitionDelete`, `GenericGet`, `GenericDelete` requests.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NameRequest {
        #[prost(string, tag = "1")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TemplateGetResponse {
        #[prost(bytes = "vec", tag = "1")]
        pub config: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SelectRequest {
        #[prost(map = "string, string", tag = "1")]
        pub labels: std::collections::HashMap<String, String>,
    }
    /// Every `…Put`, `…Delete` and `…List` request or response without fields.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
}

fn status(error: AppError) -> Status {
    let message = error.to_string();
    match error {
        AppError::Invalid { .. } | AppError::TooLarge { .. } => Status::invalid_argument(message),
        AppError::NotFound { .. } => Status::not_found(message),
        AppError::Conflict { .. } => Status::failed_precondition(message),
        AppError::Unauthorized { .. } => Status::unauthenticated(message),
        AppError::Forbidden { .. } => Status::permission_denied(message),
        AppError::RateLimited { .. } => Status::resource_exhausted(message),
        AppError::Upstream { .. } | AppError::Unavailable { .. } => Status::unavailable(message),
        AppError::Internal { .. } | AppError::Request { .. } => Status::internal(message),
    }
}

fn group_to_pb(g: Group) -> pb::Group {
    let metadata = if g.metadata.is_empty() { Vec::new() } else { serde_json::to_vec(&g.metadata).unwrap_or_default() };
    pb::Group { id: g.id, name: g.name, profile: g.profile, selector: g.selector.into_iter().collect(), metadata }
}

fn group_from_pb(g: pb::Group) -> Result<Group, Status> {
    let metadata = if g.metadata.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_slice(&g.metadata)
            .map_err(|e| Status::invalid_argument(format!("group {}: metadata is not a JSON object: {e}", g.id)))?
    };
    Ok(Group { id: g.id, name: g.name, profile: g.profile, selector: g.selector.into_iter().collect(), metadata })
}

fn profile_to_pb(p: Profile) -> pb::Profile {
    pb::Profile {
        id: p.id,
        name: p.name,
        ignition_id: p.ignition_id,
        cloud_id: p.cloud_id,
        boot: Some(pb::NetBoot { kernel: p.boot.kernel, initrd: p.boot.initrd, args: p.boot.args }),
        generic_id: p.generic_id,
    }
}

fn profile_from_pb(p: pb::Profile) -> Profile {
    let boot = p.boot.unwrap_or_default();
    Profile {
        id: p.id,
        name: p.name,
        boot: NetBoot { kernel: boot.kernel, initrd: boot.initrd, args: boot.args },
        ignition_id: p.ignition_id,
        generic_id: p.generic_id,
        cloud_id: p.cloud_id,
    }
}

impl Provisioner {
    /// The role of a gRPC client, by its actor name (`cert:<CN>`): the role bound to that name
    /// as a user (`pangea access bind cert:terraform --user --role operator`), else the role
    /// bound to `cert:*` (every client of the CA), else none: a certificate alone gives no role.
    pub async fn certificate_role(&self, actor: &str) -> Result<Option<ConsoleRole>, String> {
        let bound: Vec<(String, String)> = sqlx::query_as(
            "SELECT subject, role FROM role_bindings \
             WHERE subject_kind = 'user' AND subject IN ($1, $2) AND cluster = ''",
        )
        .bind(actor)
        .bind(EVERY_CERTIFICATE)
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| format!("cannot read the role bindings: {e}"))?;
        let role_of =
            |subject: &str| bound.iter().find(|(s, _)| s == subject).and_then(|(_, r)| ConsoleRole::parse(r).ok());
        Ok(role_of(actor).or_else(|| role_of(EVERY_CERTIFICATE)))
    }
}

/// The subject a role is bound to for every client certificate the CA signed.
pub const EVERY_CERTIFICATE: &str = "cert:*";

/// The caller: the subject of the client certificate the TLS handshake verified.
fn caller<T>(request: &Request<T>) -> Result<Principal, Status> {
    let certificates =
        request.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let first = certificates.first().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    let subject = x509_parser::parse_x509_certificate(first.as_ref())
        .ok()
        .and_then(|(_, cert)| {
            cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).map(str::to_string)
        })
        .unwrap_or_else(|| "unnamed client".into());
    Ok(Principal {
        identity: Identity::Certificate { subject },
        role: None,
        cluster_roles: Default::default(),
        ip: request.remote_addr().map(|a| a.ip()),
        user_agent: request.metadata().get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_string),
    })
}

type Answer = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

/// One unary method: decode `Req`, run `call` for the caller, encode `Resp`.
fn unary<Req, Resp, F, Fut>(provisioner: Arc<Provisioner>, request: http::Request<tonic::body::Body>, call: F) -> Answer
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
    F: FnOnce(Arc<Provisioner>, Principal, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
{
    struct Method<F>(Arc<Provisioner>, F);
    impl<Req, Resp, F, Fut> UnaryService<Req> for Method<F>
    where
        Req: Send + 'static,
        F: FnOnce(Arc<Provisioner>, Principal, Req) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        type Response = Resp;
        type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Resp>, Status>> + Send>>;
        fn call(&mut self, request: Request<Req>) -> Self::Future {
            let (provisioner, call) = (self.0.clone(), self.1.clone());
            Box::pin(async move {
                let mut who = caller(&request)?;
                let actor = who.actor();
                who.role = provisioner.certificate_role(&actor).await.map_err(Status::internal)?;
                if who.role.is_none() {
                    return Err(Status::permission_denied(format!(
                        "the client certificate {actor} has no role in Pangea: an admin binds one with \
                         `pangea access bind {actor} --user --role operator` (or {EVERY_CERTIFICATE} for every \
                         client of the CA)"
                    )));
                }
                call(provisioner, who, request.into_inner()).await.map(tonic::Response::new)
            })
        }
    }
    Box::pin(async move {
        let mut grpc = Grpc::new(ProstCodec::<Resp, Req>::default());
        Ok(grpc.unary(Method(provisioner, call), request).await)
    })
}

fn unimplemented(path: &str) -> Answer {
    let status = Status::unimplemented(format!("{path} is not a method of Matchbox's API"));
    Box::pin(async move { Ok(status.into_http()) })
}

macro_rules! rpc_service {
    ($name:ident, $grpc_name:literal, { $($path:literal => $method:expr),* $(,)? }) => {
        #[derive(Clone)]
        pub struct $name(pub Arc<Provisioner>);

        impl NamedService for $name {
            const NAME: &'static str = $grpc_name;
        }

        impl tower::Service<http::Request<tonic::body::Body>> for $name {
            type Response = http::Response<tonic::body::Body>;
            type Error = Infallible;
            type Future = Answer;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<tonic::body::Body>) -> Answer {
                let provisioner = self.0.clone();
                match request.uri().path() {
                    $($path => unary(provisioner, request, $method),)*
                    other => unimplemented(other),
                }
            }
        }
    };
}

rpc_service!(GroupsRpc, "rpcpb.Groups", {
    "/rpcpb.Groups/GroupPut" => |p: Arc<Provisioner>, who, r: pb::GroupPutRequest| async move {
        let group = group_from_pb(r.group.ok_or_else(|| Status::invalid_argument("GroupPut needs a group"))?)?;
        p.put_group(&who, group).await.map(|_| pb::Empty {}).map_err(status)
    },
    "/rpcpb.Groups/GroupGet" => |p: Arc<Provisioner>, who, r: pb::IdRequest| async move {
        p.group(&who, &r.id).await.map(|g| pb::GroupGetResponse { group: Some(group_to_pb(g)) }).map_err(status)
    },
    "/rpcpb.Groups/GroupDelete" => |p: Arc<Provisioner>, who, r: pb::IdRequest| async move {
        p.delete_group(&who, &r.id).await.map(|_| pb::Empty {}).map_err(status)
    },
    "/rpcpb.Groups/GroupList" => |p: Arc<Provisioner>, who, _: pb::Empty| async move {
        let catalog = p.catalog(&who).await.map_err(status)?;
        Ok(pb::GroupListResponse { groups: catalog.groups.into_iter().map(group_to_pb).collect() })
    },
});

rpc_service!(ProfilesRpc, "rpcpb.Profiles", {
    "/rpcpb.Profiles/ProfilePut" => |p: Arc<Provisioner>, who, r: pb::ProfilePutRequest| async move {
        let profile = profile_from_pb(r.profile.ok_or_else(|| Status::invalid_argument("ProfilePut needs a profile"))?);
        p.put_profile(&who, profile).await.map(|_| pb::Empty {}).map_err(status)
    },
    "/rpcpb.Profiles/ProfileGet" => |p: Arc<Provisioner>, who, r: pb::IdRequest| async move {
        p.profile(&who, &r.id).await.map(|x| pb::ProfileGetResponse { profile: Some(profile_to_pb(x)) }).map_err(status)
    },
    "/rpcpb.Profiles/ProfileDelete" => |p: Arc<Provisioner>, who, r: pb::IdRequest| async move {
        p.delete_profile(&who, &r.id).await.map(|_| pb::Empty {}).map_err(status)
    },
    "/rpcpb.Profiles/ProfileList" => |p: Arc<Provisioner>, who, _: pb::Empty| async move {
        let catalog = p.catalog(&who).await.map_err(status)?;
        Ok(pb::ProfileListResponse { profiles: catalog.profiles.into_iter().map(profile_to_pb).collect() })
    },
});

/// `IgnitionPut` / `GenericPut`: the template text arrives as bytes.
async fn put_template(
    p: Arc<Provisioner>,
    who: Principal,
    kind: TemplateKind,
    r: pb::TemplatePutRequest,
) -> Result<pb::Empty, Status> {
    let content = String::from_utf8(r.config)
        .map_err(|_| Status::invalid_argument(format!("{}: the template is not UTF-8 text", r.name)))?;
    p.put_template(&who, TemplateFile { kind, id: r.name, content }).await.map(|_| pb::Empty {}).map_err(status)
}

rpc_service!(IgnitionRpc, "rpcpb.Ignition", {
    "/rpcpb.Ignition/IgnitionPut" => |p, who, r: pb::TemplatePutRequest| put_template(p, who, TemplateKind::Ignition, r),
    "/rpcpb.Ignition/IgnitionGet" => |p: Arc<Provisioner>, who, r: pb::NameRequest| async move {
        p.template(&who, TemplateKind::Ignition, &r.name).await.map(|t| pb::TemplateGetResponse { config: t.content.into_bytes() }).map_err(status)
    },
    "/rpcpb.Ignition/IgnitionDelete" => |p: Arc<Provisioner>, who, r: pb::NameRequest| async move {
        p.delete_template(&who, TemplateKind::Ignition, &r.name).await.map(|_| pb::Empty {}).map_err(status)
    },
});

rpc_service!(GenericRpc, "rpcpb.Generic", {
    "/rpcpb.Generic/GenericPut" => |p, who, r: pb::TemplatePutRequest| put_template(p, who, TemplateKind::Generic, r),
    "/rpcpb.Generic/GenericGet" => |p: Arc<Provisioner>, who, r: pb::NameRequest| async move {
        p.template(&who, TemplateKind::Generic, &r.name).await.map(|t| pb::TemplateGetResponse { config: t.content.into_bytes() }).map_err(status)
    },
    "/rpcpb.Generic/GenericDelete" => |p: Arc<Provisioner>, who, r: pb::NameRequest| async move {
        p.delete_template(&who, TemplateKind::Generic, &r.name).await.map(|_| pb::Empty {}).map_err(status)
    },
});

/// `SelectGroup` / `SelectProfile`: what the boot listener would choose for these labels.
fn selected(p: &Provisioner, labels: HashMap<String, String>) -> Result<(Group, Option<Profile>), Status> {
    let labels: BTreeMap<String, String> = labels.into_iter().collect();
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&labels).finish();
    let labels = super::index::labels_from_query(&query);
    let index = p.index();
    let group = index.select(&labels).cloned().ok_or_else(|| Status::not_found("no group matches these labels"))?;
    let profile = index.profile_of(&group).ok().cloned();
    Ok((group, profile))
}

rpc_service!(SelectRpc, "rpcpb.Select", {
    "/rpcpb.Select/SelectGroup" => |p: Arc<Provisioner>, who, r: pb::SelectRequest| async move {
        p.allow(&who, app::access::Permission::ViewProvisioning, "provisioning.view").await.map_err(status)?;
        let (group, _) = selected(&p, r.labels)?;
        Ok(pb::GroupGetResponse { group: Some(group_to_pb(group)) })
    },
    "/rpcpb.Select/SelectProfile" => |p: Arc<Provisioner>, who, r: pb::SelectRequest| async move {
        p.allow(&who, app::access::Permission::ViewProvisioning, "provisioning.view").await.map_err(status)?;
        let (group, profile) = selected(&p, r.labels)?;
        let profile = profile.ok_or_else(|| Status::not_found(format!("group {} names a profile that does not exist", group.id)))?;
        Ok(pb::ProfileGetResponse { profile: Some(profile_to_pb(profile)) })
    },
});

/// The gRPC listener's TLS: its own certificate and key, and the CA its clients' certificates
/// must come from (PEM files, as Matchbox's `-cert-file`, `-key-file`, `-ca-file`).
#[derive(Debug, Clone)]
pub struct GrpcTls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub client_ca: std::path::PathBuf,
    /// PEM revocation lists of that CA: a revoked client certificate fails the handshake.
    pub client_crl: Option<std::path::PathBuf>,
}

/// Serves Matchbox's gRPC API on `listener` until `shutdown`, with TLS and client certificates.
pub async fn serve(
    provisioner: Arc<Provisioner>,
    listener: tokio::net::TcpListener,
    tls: &GrpcTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let config = tls::server_config(tls)?;
    tonic::transport::Server::builder()
        .add_service(GroupsRpc(provisioner.clone()))
        .add_service(ProfilesRpc(provisioner.clone()))
        .add_service(IgnitionRpc(provisioner.clone()))
        .add_service(GenericRpc(provisioner.clone()))
        .add_service(SelectRpc(provisioner))
        .serve_with_incoming_shutdown(tls::incoming(listener, config), shutdown)
        .await
        .map_err(|e| format!("the gRPC listener failed: {e}"))
}

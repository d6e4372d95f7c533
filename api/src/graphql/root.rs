//! The gateway's own root fields: the Relay `Node` interface with `node(id)` and
//! `nodes(ids)`, which dispatch on the type named in a global ID.
//!
//! A malformed ID is `BAD_USER_INPUT`; a well-formed ID of something that does not
//! exist, or that belongs to another tenant, is `NOT_FOUND`. `EntityState` and
//! `AuditEntry` IDs cannot be fetched yet (the domain has no lookup by id for them):
//! `BAD_USER_INPUT` saying so.

use super::admin::{ApiKey, AuditEntry, Tenant, User};
use super::call;
use super::errors::{ResultExt, to_gql};
use super::ids::{self, GlobalId};
use super::memory::{Entity, EntityState, Event, Foreshadowing, Relation};
use super::story::{Chapter, ChapterRevision, GenerationJob, Novel, Volume};
use async_graphql::{Context, ID, Interface, Object};
use znovel_domain::Error;
use znovel_domain::auth::Actor;
use znovel_domain::services::Services;

/// Most IDs `nodes` accepts at once.
pub const MAX_NODES: usize = 100;

/// An object with a global ID, which `node(id)` fetches again.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "Global ID: opaque, stable, unique across types."
))]
pub enum Node {
    /// A novel.
    Novel(Novel),
    /// A volume.
    Volume(Volume),
    /// A chapter.
    Chapter(Chapter),
    /// A chapter revision.
    ChapterRevision(ChapterRevision),
    /// A generation job.
    GenerationJob(GenerationJob),
    /// A story-bible entity.
    Entity(Entity),
    /// An entity state change.
    EntityState(EntityState),
    /// A relation.
    Relation(Relation),
    /// A timeline event.
    Event(Event),
    /// A foreshadowing thread.
    Foreshadowing(Foreshadowing),
    /// A tenant.
    Tenant(Tenant),
    /// A user.
    User(User),
    /// An API key.
    ApiKey(ApiKey),
    /// An audit-log entry.
    AuditEntry(AuditEntry),
}

/// `node` and `nodes`.
#[derive(Default)]
pub struct RootQuery;

/// `node` and `nodes`.
#[Object]
impl RootQuery {
    /// Any object by its global ID.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID, as returned in any `id` field.")] id: ID,
    ) -> async_graphql::Result<Node> {
        let (s, actor) = call(ctx)?;
        node(s, &actor, &id).await
    }

    /// Several objects by their global IDs, in the same order; `null` for those that do
    /// not exist or are not visible to the caller. At most 100 IDs.
    #[graphql(complexity = "ids.len().max(1).saturating_mul(child_complexity)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global IDs, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        let (s, actor) = call(ctx)?;
        nodes(s, &actor, &ids).await
    }
}

/// `node(id)`: the object `id` names, if the actor may see it.
pub(crate) async fn node(s: &Services, actor: &Actor, id: &ID) -> async_graphql::Result<Node> {
    let (ty, uuid) = parse(id, "id")?;
    load(s, actor, ty, uuid, "id").await.gql()
}

/// `nodes(ids)`: the objects `ids` name, `None` where one does not exist or is not
/// visible; `BAD_USER_INPUT` for more than [`MAX_NODES`] IDs or a malformed one.
pub(crate) async fn nodes(
    s: &Services,
    actor: &Actor,
    ids: &[ID],
) -> async_graphql::Result<Vec<Option<Node>>> {
    if ids.len() > MAX_NODES {
        return Err(to_gql(Error::invalid(
            "ids",
            format!("at most {MAX_NODES} IDs"),
        )));
    }
    let parsed = ids
        .iter()
        .map(|id| parse(id, "ids"))
        .collect::<async_graphql::Result<Vec<_>>>()?;
    let loads = parsed.into_iter().map(|(ty, uuid)| async move {
        match load(s, actor, ty, uuid, "ids").await {
            Ok(n) => Ok(Some(n)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    });
    futures_util::future::try_join_all(loads).await.gql()
}

fn parse(id: &ID, field: &str) -> async_graphql::Result<(&'static str, uuid::Uuid)> {
    ids::parse(id.as_str()).ok_or_else(|| to_gql(Error::invalid(field, "not a valid ID")))
}

fn id<T: GlobalId>(uuid: uuid::Uuid) -> T {
    T::from_uuid(uuid)
}

/// Fetches the object of type `ty` with id `uuid` through its service.
async fn load(
    s: &Services,
    actor: &Actor,
    ty: &str,
    uuid: uuid::Uuid,
    field: &str,
) -> Result<Node, Error> {
    Ok(match ty {
        "Novel" => Node::Novel(Novel(s.story.novel(actor, id(uuid)).await?)),
        "Volume" => Node::Volume(Volume(s.story.volume(actor, id(uuid)).await?)),
        "Chapter" => Node::Chapter(Chapter(s.story.chapter(actor, id(uuid)).await?)),
        "ChapterRevision" => Node::ChapterRevision(ChapterRevision(
            s.story.revision_by_id(actor, id(uuid)).await?,
        )),
        "Entity" => Node::Entity(Entity(s.memory.entity(actor, id(uuid)).await?)),
        "Relation" => Node::Relation(Relation(s.memory.relation(actor, id(uuid)).await?)),
        "Event" => Node::Event(Event(s.memory.event(actor, id(uuid)).await?)),
        "Foreshadowing" => Node::Foreshadowing(Foreshadowing(
            s.memory.foreshadowing_by_id(actor, id(uuid)).await?,
        )),
        "User" => Node::User(User(s.admin.user(actor, id(uuid)).await?)),
        "Tenant" if uuid == actor.tenant_id.as_uuid() => {
            Node::Tenant(Tenant(s.admin.tenant(actor).await?))
        }
        "Tenant" => return Err(Error::NotFound { resource: "tenant" }),
        "ApiKey" => Node::ApiKey(ApiKey(s.admin.api_key(actor, id(uuid)).await?)),
        "GenerationJob" => {
            Node::GenerationJob(GenerationJob(s.generation()?.job(actor, id(uuid)).await?))
        }
        other => {
            return Err(Error::invalid(
                field,
                format!("{other} objects cannot be fetched by ID yet"),
            ));
        }
    })
}

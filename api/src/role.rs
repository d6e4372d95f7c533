//! The roles one `znovel` process can play (`znovel serve --role <role>`), named like the
//! Kubernetes Deployments that run them. Without a role, `znovel serve` is the all-in-one
//! embedded default: the gateway schema (every subgraph merged) plus in-process workers.
//!
//! | role | serves | runs jobs |
//! |---|---|---|
//! | `story-gen` | the story-gen subgraph on `/graphql` (novels, chapters, generation, `chapterStream`) | only without `REDIS_URL` (in-process queue) |
//! | `memory` | the memory subgraph | no |
//! | `admin` | the admin subgraph (also `node`/`nodes`) | no |
//! | `rag-retrieval` | the rag-retrieval subgraph (`recall`) | no |
//! | `validator` | the validator subgraph (`checkDraft`, `validateChapter`, `Chapter.validation`) | no |
//! | `file` | the file subgraph (`files`, `previewImport`, `importManuscript`, `exportNovel`, `deleteFile`, `GenerationJob.file`) and the file routes (`POST /files`, `POST /files/import`, `GET /files/{id}`) | no |
//! | `job-worker` | `/health`, `/ready`, `/metrics` (same as `znovel worker`) | yes |
//!
//! Every role serves `/health` and `/ready` on `ZNOVEL_LISTEN` and `/metrics` on
//! `ZNOVEL_METRICS_LISTEN`. Only the all-in-one server bootstraps the local admin key by
//! default; a role does so only when `ZNOVEL_BOOTSTRAP=true` is set.

use crate::graphql;
use std::fmt;
use std::str::FromStr;

/// One service of the distributed deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The story-gen subgraph: novels, volumes, chapters, revisions, generation jobs and
    /// their subscriptions.
    StoryGen,
    /// The memory subgraph: the story bible.
    Memory,
    /// The admin subgraph: tenants, users, API keys, quotas, audit; `node`/`nodes`.
    Admin,
    /// The rag-retrieval subgraph: `recall`.
    RagRetrieval,
    /// The validator subgraph: continuity checking (`checkDraft`, `validateChapter`,
    /// `Chapter.validation`).
    Validator,
    /// The file subgraph: stored files, manuscript import and book export, with the file
    /// routes (uploads and downloads).
    File,
    /// Runs queued jobs; no GraphQL API.
    JobWorker,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::StoryGen,
        Role::Memory,
        Role::Admin,
        Role::RagRetrieval,
        Role::Validator,
        Role::File,
        Role::JobWorker,
    ];

    /// Its name: the `--role` value and the Kubernetes Deployment's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::StoryGen => graphql::STORY_GEN,
            Role::Memory => graphql::MEMORY,
            Role::Admin => graphql::ADMIN,
            Role::RagRetrieval => graphql::RAG_RETRIEVAL,
            Role::Validator => graphql::VALIDATOR,
            Role::File => graphql::FILE,
            Role::JobWorker => "job-worker",
        }
    }

    /// The subgraph this role serves on `/graphql`, if any (one of
    /// [`graphql::SUBGRAPHS`]).
    pub fn subgraph(self) -> Option<&'static str> {
        let name = self.name();
        graphql::SUBGRAPHS.contains(&name).then_some(name)
    }

    /// Whether this role runs generation workers: the job worker always; story-gen when
    /// the queue is in-process (`REDIS_URL` unset), since no other process could run its
    /// jobs then.
    pub fn runs_workers(self, shared_queue: bool) -> bool {
        match self {
            Role::JobWorker => true,
            Role::StoryGen => !shared_queue,
            Role::Memory | Role::Admin | Role::RagRetrieval | Role::Validator | Role::File => false,
        }
    }

    /// Every role's name, comma-separated (for messages).
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown role {s:?}; known: {}", Self::names()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_subgraph_roles_are_the_subgraphs() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        let subgraphs: Vec<&str> = Role::ALL.iter().filter_map(|r| r.subgraph()).collect();
        assert_eq!(subgraphs, graphql::SUBGRAPHS);
        let err = "story".parse::<Role>().unwrap_err();
        assert!(
            err.contains("story-gen") && err.contains("job-worker"),
            "{err}"
        );
    }

    #[test]
    fn only_the_job_worker_and_an_unshared_story_gen_run_jobs() {
        assert!(Role::JobWorker.runs_workers(true) && Role::JobWorker.runs_workers(false));
        assert!(Role::StoryGen.runs_workers(false) && !Role::StoryGen.runs_workers(true));
        for r in [Role::Memory, Role::Admin, Role::File] {
            assert!(!r.runs_workers(false));
        }
    }
}

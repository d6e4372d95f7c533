//! Stored files: bytes round-trip (binary and large), metadata without bytes, the
//! job's file, newest-first pages, delete, the tenant's total, isolation, and the
//! novel's cascade.

use crate::support::*;
use znovel_domain::ids::*;
use znovel_domain::model::*;
use znovel_domain::ports::*;

fn file(n: &Novel, name: &str, bytes: &[u8], job: Option<JobId>) -> StoredFile {
    StoredFile {
        id: FileId::new(),
        tenant_id: n.tenant_id,
        novel_id: n.id,
        job_id: job,
        name: name.into(),
        content_type: "application/octet-stream".into(),
        size: bytes.len() as i64,
        created_by: None,
        created_at: at(0),
    }
}

pub async fn files_round_trip(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "files").await;
    // Every byte value, NULs included, and a 3 MB body.
    let binary: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    let a = file(&n, "长路.epub", &binary, None);
    s.insert_file(&a, &binary).await.unwrap();
    assert_eq!(s.get_file(t.id, a.id).await.unwrap(), a);
    assert_eq!(s.get_file_content(t.id, a.id).await.unwrap(), binary);

    let b = file(&n, "b.txt", "中文".as_bytes(), None);
    s.insert_file(&b, "中文".as_bytes()).await.unwrap();
    let c = file(&n, "c.md", b"", None);
    s.insert_file(&c, b"").await.unwrap();
    assert_eq!(
        s.get_file_content(t.id, c.id).await.unwrap(),
        Vec::<u8>::new()
    );
    assert_eq!(
        s.file_bytes_used(t.id).await.unwrap(),
        binary.len() as i64 + "中文".len() as i64
    );

    // Newest first, in pages.
    let first = s.list_files(t.id, n.id, page(2, None)).await.unwrap();
    let ids: Vec<FileId> = first.items.iter().map(|f| f.id).collect();
    assert_eq!(ids, [c.id, b.id]);
    assert!(first.has_next_page);
    let rest = s
        .list_files(t.id, n.id, page(2, Some(b.id.as_uuid())))
        .await
        .unwrap();
    assert_eq!(rest.items.iter().map(|f| f.id).collect::<Vec<_>>(), [a.id]);
    assert!(!rest.has_next_page);

    // A size that does not match the bytes is refused.
    let mut wrong = file(&n, "x", b"abc", None);
    wrong.size = 10;
    assert!(s.insert_file(&wrong, b"abc").await.is_err());
    // A novel of no one: NotFound, nothing written.
    let mut orphan = file(&n, "y", b"abc", None);
    orphan.novel_id = NovelId::new();
    assert_not_found(s.insert_file(&orphan, b"abc").await);

    s.delete_file(t.id, b.id).await.unwrap();
    assert_not_found(s.get_file(t.id, b.id).await);
    assert_not_found(s.get_file_content(t.id, b.id).await);
    assert_not_found(s.delete_file(t.id, b.id).await);
}

pub async fn files_of_jobs_isolation_and_cascade(ctx: &Ctx) {
    let s = &ctx.store;
    let (t, n) = tenant_with_novel(s, "files-a").await;
    let (u, m) = tenant_with_novel(s, "files-b").await;
    let job = GenerationJob {
        id: JobId::new(),
        tenant_id: t.id,
        novel_id: n.id,
        chapter_id: None,
        kind: JobKind::Export,
        status: JobStatus::Queued,
        priority: 0,
        input: JobInput {
            export: Some(ExportSpec {
                format: ExportFormat::Epub,
                from_seq: Some(2),
                to_seq: None,
            }),
            ..JobInput::default()
        },
        idempotency_key: None,
        provider: None,
        model: None,
        fallback_used: false,
        prompt_tokens: 0,
        completion_tokens: 0,
        queued_at: at(0),
        started_at: None,
        first_token_at: None,
        finished_at: None,
        attempts: 0,
        error: None,
        created_by: None,
        context: Vec::new(),
        progress: None,
    };
    s.insert_job(&job).await.unwrap();
    assert_eq!(s.get_job(t.id, job.id).await.unwrap().input, job.input);
    assert_eq!(s.find_file_by_job(t.id, job.id).await.unwrap(), None);
    let f = file(&n, "book.epub", b"PK", Some(job.id));
    s.insert_file(&f, b"PK").await.unwrap();
    assert_eq!(
        s.find_file_by_job(t.id, job.id).await.unwrap(),
        Some(f.clone())
    );

    // Another tenant reaches none of it.
    assert_not_found(s.get_file(u.id, f.id).await);
    assert_not_found(s.get_file_content(u.id, f.id).await);
    assert_not_found(s.delete_file(u.id, f.id).await);
    assert_eq!(s.find_file_by_job(u.id, job.id).await.unwrap(), None);
    assert!(
        s.list_files(u.id, n.id, page(10, None))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(s.file_bytes_used(u.id).await.unwrap(), 0);
    // Nor can it store a file in this tenant's novel.
    let mut foreign = file(&m, "z", b"z", None);
    foreign.novel_id = n.id;
    assert_not_found(s.insert_file(&foreign, b"z").await);

    // Deleting the novel deletes its files.
    ctx.exec(&format!("DELETE FROM novels WHERE id = '{}'", n.id))
        .await;
    assert_not_found(s.get_file(t.id, f.id).await);
}

//! Books in and out. Out: a novel (or a range of its chapters) rendered as Markdown, plain
//! text or EPUB 3; in: a manuscript split into volumes and chapters ([`parse_manuscript`]).
//! Pure functions; the EXPORT and IMPORT jobs (see [`runner`](crate::services::runner))
//! read and store.

mod epub;
mod import;
mod zip;

pub use self::zip::{ZipEntry, read_stored_zip, write_stored_zip};
pub use import::*;

use crate::model::ExportFormat;

/// What a book is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct Book {
    /// A stable identifier (the novel's id), for the EPUB's `dc:identifier`.
    pub id: uuid::Uuid,
    /// The title.
    pub title: String,
    /// The novel's description (may be empty).
    pub description: String,
    /// BCP 47 language tag, e.g. `zh-CN` or `en`.
    pub language: String,
    /// When it was produced (the EPUB's `dcterms:modified`).
    pub modified: chrono::DateTime<chrono::Utc>,
    /// The chapters, in order.
    pub chapters: Vec<BookChapter>,
}

/// One chapter of a [`Book`].
#[derive(Debug, Clone, PartialEq)]
pub struct BookChapter {
    /// Its place in the novel.
    pub seq: i32,
    /// Its title (may be empty: then the heading is `Chapter <seq>`).
    pub title: String,
    /// Its text: paragraphs separated by line breaks.
    pub content: String,
}

impl BookChapter {
    /// The heading shown for the chapter: its title, or `Chapter <seq>` without one.
    pub fn heading(&self) -> String {
        let title = self.title.trim();
        if title.is_empty() {
            format!("Chapter {}", self.seq)
        } else {
            title.to_owned()
        }
    }

    /// The chapter's paragraphs: its non-blank lines, trimmed.
    pub fn paragraphs(&self) -> impl Iterator<Item = &str> {
        self.content
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
    }
}

/// Renders `book` in `format`.
pub fn render(book: &Book, format: ExportFormat) -> Vec<u8> {
    match format {
        ExportFormat::Markdown => markdown(book).into_bytes(),
        ExportFormat::Txt => text(book).into_bytes(),
        ExportFormat::Epub => epub::epub(book),
    }
}

/// Markdown: the title as `#`, each chapter as `##` followed by its paragraphs.
pub fn markdown(book: &Book) -> String {
    let mut out = format!("# {}\n\n", one_line(&book.title));
    if !book.description.trim().is_empty() {
        out.push_str(book.description.trim());
        out.push_str("\n\n");
    }
    for c in &book.chapters {
        out.push_str(&format!("## {}\n\n", one_line(&c.heading())));
        for p in c.paragraphs() {
            out.push_str(p);
            out.push_str("\n\n");
        }
    }
    out
}

/// Plain text: the title, then each chapter's heading and paragraphs, separated by
/// blank lines.
pub fn text(book: &Book) -> String {
    let mut out = format!("{}\n\n", one_line(&book.title));
    for c in &book.chapters {
        out.push_str(&format!("\n{}\n\n", one_line(&c.heading())));
        for p in c.paragraphs() {
            out.push_str(p);
            out.push('\n');
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> Book {
        Book {
            id: uuid::Uuid::nil(),
            title: "The <Long> Road & 长路".into(),
            description: "A test.".into(),
            language: "zh-CN".into(),
            modified: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            chapters: vec![
                BookChapter {
                    seq: 1,
                    title: "Departure".into(),
                    content: "Ned left at dawn.\n\nThe road was long.".into(),
                },
                BookChapter {
                    seq: 2,
                    title: "第二章 山中".into(),
                    content: "山中无甲子。\n寒尽不知年。".into(),
                },
                BookChapter {
                    seq: 3,
                    title: String::new(),
                    content: "The end.".into(),
                },
            ],
        }
    }

    #[test]
    fn markdown_has_a_heading_per_chapter_and_every_paragraph() {
        let md = markdown(&sample());
        assert!(md.starts_with("# The <Long> Road & 长路\n\n"), "{md}");
        assert!(md.contains("## Departure\n\nNed left at dawn.\n\nThe road was long.\n\n"));
        assert!(md.contains("## 第二章 山中\n\n山中无甲子。\n\n寒尽不知年。\n\n"));
        assert!(md.contains("## Chapter 3\n\nThe end.\n\n"));
    }

    #[test]
    fn text_keeps_chapter_order() {
        let t = text(&sample());
        let a = t.find("Departure").unwrap_or(usize::MAX);
        let b = t.find("第二章 山中").unwrap_or(usize::MAX);
        let c = t.find("Chapter 3").unwrap_or(usize::MAX);
        assert!(a < b && b < c, "{t}");
        assert!(t.contains("寒尽不知年。\n"));
    }
}

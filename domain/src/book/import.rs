//! Books in: a manuscript (TXT, Markdown, EPUB or DOCX) split into volumes and chapters. Pure
//! functions over bytes; the IMPORT job (see [`runner`](crate::services::runner)) stores
//! what they find.
//!
//! - **Text** is decoded by its byte order mark (UTF-8, UTF-16 LE/BE), else as UTF-8
//!   when it is valid UTF-8, else as GB18030 (a superset of GBK and GB2312, what most
//!   Chinese web-novel files are). NUL bytes or characters no encoding allows: refused
//!   as binary.
//! - **TXT** is split at heading lines: "Chapter 12", "CHAPTER XII", "Chapter Twelve:
//!   Title", "Prologue", "第十二章 标题", "第12章", "楔子"; volumes at "Volume 2", "Book
//!   One", "Part II", "第一卷". Text before the first heading: its first line is the
//!   title, the rest the description. No heading at all: one chapter, with a warning.
//! - **Markdown** is split at `#` headings: a single top-level heading first is the
//!   book's title; of the levels below, the first two are volumes and chapters when
//!   the second is the more numerous, else the first is chapters (deeper headings are
//!   part of the text).
//! - **EPUB** is read in spine order; chapters are the documents the table of contents
//!   (navigation document, else NCX) names, titled as it names them; a document it does
//!   not name continues the chapter before it. Without a table of contents each document
//!   is a chapter, titled by its first heading. Paths that leave the book (`..`,
//!   absolute, URLs) are refused, and so is an archive that unpacks to too much (a zip
//!   bomb).
//! - **DOCX** (Word) is read from `word/document.xml`: paragraphs styled as headings
//!   (a style whose outline level or name says so: "heading 1", "Title", a localized
//!   style with `w:outlineLvl`) split it as Markdown's `#` headings do; a document
//!   without heading styles is split at its heading lines as TXT is. The title falls
//!   back to the document's properties. The same archive limits as EPUB apply.
//!
//! A chapter's content is its paragraphs (non-blank lines, trimmed) separated by blank
//! lines.

use crate::model::ManuscriptFormat;
use std::io::Read;

/// Most chapters one manuscript may hold.
pub const MAX_IMPORT_CHAPTERS: usize = 10_000;
/// Longest chapter or volume title kept (longer ones are cut).
const MAX_TITLE_CHARS: usize = 200;

/// Why a manuscript cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// Not text: NUL bytes, control characters, or bytes no supported encoding allows.
    #[error(
        "the file is not text: it holds NUL bytes or bytes that are neither UTF-8, UTF-16 nor GB18030"
    )]
    Binary,
    /// Nothing to import.
    #[error("the file holds no text")]
    Empty,
    /// Not an EPUB archive, or one missing what an EPUB must have.
    #[error("not a valid EPUB: {0}")]
    NotEpub(String),
    /// Not a DOCX archive, or one missing what a DOCX must have.
    #[error("not a valid DOCX: {0}")]
    NotDocx(String),
    /// The archive unpacks to more than the limits allow.
    #[error(
        "the archive unpacks to more than {max_bytes} bytes or holds more than {max_entries} entries; refused as a possible zip bomb"
    )]
    ZipBomb {
        /// The largest total unpacked size.
        max_bytes: u64,
        /// The most entries.
        max_entries: usize,
    },
    /// A path in the archive or its manifest leaves the book.
    #[error("the archive names a path outside the book: {0:?}")]
    UnsafePath(String),
    /// More chapters than one import may create.
    #[error(
        "the manuscript has {0} chapters; at most {MAX_IMPORT_CHAPTERS} can be imported at once"
    )]
    TooManyChapters(usize),
}

/// Limits on what an EPUB may unpack to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpubLimits {
    /// Largest total unpacked size of the entries (declared, and as read).
    pub max_bytes: u64,
    /// Most entries.
    pub max_entries: usize,
}

impl Default for EpubLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            max_entries: 10_000,
        }
    }
}

/// A manuscript, split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manuscript {
    /// The format it was read as.
    pub format: ManuscriptFormat,
    /// The text encoding it was decoded from (`UTF-8`, `UTF-16LE`, `UTF-16BE`, `GB18030`).
    pub encoding: String,
    /// The book's title, when the manuscript names one.
    pub title: Option<String>,
    /// Text before the first chapter (after the title), or the EPUB's description.
    pub description: String,
    /// Volume titles, in order.
    pub volumes: Vec<String>,
    /// Chapters, in order.
    pub chapters: Vec<ManuscriptChapter>,
    /// What the reader should know about the split (e.g. no chapter heading was found).
    pub warnings: Vec<String>,
}

/// One chapter of a [`Manuscript`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManuscriptChapter {
    /// Its title (never empty).
    pub title: String,
    /// Its text: paragraphs separated by blank lines.
    pub content: String,
    /// The volume it is in (an index into [`Manuscript::volumes`]).
    pub volume: Option<usize>,
}

/// The format of a file named `name` with these bytes: by extension, else by content
/// (a ZIP archive is an EPUB; text with `#` headings Markdown; anything else TXT).
pub fn detect_format(name: &str, bytes: &[u8]) -> ManuscriptFormat {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "epub" => return ManuscriptFormat::Epub,
        "docx" => return ManuscriptFormat::Docx,
        "md" | "markdown" | "mdown" | "mkd" => return ManuscriptFormat::Markdown,
        "txt" | "text" => return ManuscriptFormat::Txt,
        _ => {}
    }
    if bytes.starts_with(b"PK\x03\x04") {
        // A Word document's parts live under `word/`; an EPUB's never do.
        if contains(&bytes[..bytes.len().min(1024 * 1024)], b"word/document.xml") {
            return ManuscriptFormat::Docx;
        }
        return ManuscriptFormat::Epub;
    }
    let head = &bytes[..bytes.len().min(64 * 1024)];
    if head.starts_with(b"# ") || head.starts_with(b"## ") || contains(head, b"\n# ") {
        return ManuscriptFormat::Markdown;
    }
    ManuscriptFormat::Txt
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Splits a manuscript named `name` (its file name: a fallback title) read as `format`
/// (detected when `None`), with the default EPUB limits.
pub fn parse_manuscript(
    bytes: &[u8],
    name: &str,
    format: Option<ManuscriptFormat>,
) -> Result<Manuscript, ImportError> {
    parse_with_limits(bytes, name, format, EpubLimits::default())
}

/// [`parse_manuscript`] with explicit EPUB limits.
pub fn parse_with_limits(
    bytes: &[u8],
    name: &str,
    format: Option<ManuscriptFormat>,
    limits: EpubLimits,
) -> Result<Manuscript, ImportError> {
    let format = format.unwrap_or_else(|| detect_format(name, bytes));
    let stem = file_stem(name);
    let mut m = match format {
        ManuscriptFormat::Epub => epub(bytes, limits)?,
        ManuscriptFormat::Docx => docx(bytes, limits, &stem)?,
        ManuscriptFormat::Markdown => {
            let (text, encoding) = decode(bytes)?;
            markdown(&text, encoding, &stem)
        }
        ManuscriptFormat::Txt => {
            let (text, encoding) = decode(bytes)?;
            plain(&text, encoding, &stem, ManuscriptFormat::Txt)
        }
    };
    if m.chapters.is_empty() || m.chapters.iter().all(|c| c.content.trim().is_empty()) {
        return Err(ImportError::Empty);
    }
    if m.chapters.len() > MAX_IMPORT_CHAPTERS {
        return Err(ImportError::TooManyChapters(m.chapters.len()));
    }
    for (i, c) in m.chapters.iter_mut().enumerate() {
        c.title = clip(&c.title, MAX_TITLE_CHARS);
        if c.title.is_empty() {
            c.title = format!("Chapter {}", i + 1);
        }
    }
    for v in &mut m.volumes {
        *v = clip(v, MAX_TITLE_CHARS);
    }
    m.title = m
        .title
        .map(|t| clip(&t, MAX_TITLE_CHARS))
        .filter(|t| !t.is_empty());
    Ok(m)
}

/// `name` without its directory and extension.
fn file_stem(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = match base.rsplit_once('.') {
        Some((s, _)) if !s.is_empty() => s,
        _ => base,
    };
    stem.trim().to_owned()
}

/// Whitespace collapsed, at most `max` characters.
fn clip(s: &str, max: usize) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(max).collect::<String>().trim().to_owned()
}

/// Decodes text: by byte order mark, else UTF-8 when valid, else GB18030. Returns the
/// text (line ends normalized to `\n`) and the encoding's name.
pub fn decode(bytes: &[u8]) -> Result<(String, &'static str), ImportError> {
    let (text, encoding) = if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = enc.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(ImportError::Binary);
        }
        (text.into_owned(), enc.name())
    } else if bytes.contains(&0) {
        return Err(ImportError::Binary);
    } else if let Ok(s) = std::str::from_utf8(bytes) {
        (s.to_owned(), "UTF-8")
    } else {
        match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
            Some(s) => (s.into_owned(), "GB18030"),
            None => return Err(ImportError::Binary),
        }
    };
    // Old DOS files may end with ^Z; otherwise control characters mean binary.
    let text = text.trim_end_matches('\u{1a}');
    let controls = text
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
        .count();
    if text.contains('\0') || controls * 1000 > text.chars().count().max(1) {
        return Err(ImportError::Binary);
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    if text.trim().is_empty() {
        return Err(ImportError::Empty);
    }
    Ok((text, encoding))
}

/// Non-blank lines, trimmed, separated by blank lines.
fn paragraphs<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    lines
        .into_iter()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A heading line of a plain-text manuscript.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heading {
    Volume,
    Chapter,
}

/// Whether `line` is a chapter or volume heading (and which).
fn heading(line: &str) -> Option<Heading> {
    let l = line.trim();
    if l.is_empty() || l.chars().count() > 80 {
        return None;
    }
    chinese_heading(l).or_else(|| english_heading(l))
}

fn is_cn_numeral(c: char) -> bool {
    "零〇一二三四五六七八九十百千万两壹贰叁肆伍陆柒捌玖拾佰仟".contains(c)
        || c.is_ascii_digit()
        || ('０'..='９').contains(&c)
}

/// Sentence punctuation a heading never ends with.
fn ends_like_a_sentence(l: &str) -> bool {
    l.ends_with(['。', '，', ',', '；', ';', '、'])
}

fn chinese_heading(l: &str) -> Option<Heading> {
    if l.chars().count() > 40 || ends_like_a_sentence(l) {
        return None;
    }
    for special in ["序章", "楔子", "引子", "尾声", "终章", "后记", "番外"] {
        if let Some(rest) = l.strip_prefix(special)
            && (rest.is_empty()
                || rest.starts_with(char::is_whitespace)
                || rest.starts_with(['：', ':', '、', '·', '-', '—']))
        {
            return Some(Heading::Chapter);
        }
    }
    let rest = l.strip_prefix('第')?;
    let digits: usize = rest
        .chars()
        .take_while(|c| is_cn_numeral(*c))
        .map(char::len_utf8)
        .sum();
    if digits == 0 {
        return None;
    }
    let unit = rest[digits..].chars().next()?;
    match unit {
        '章' | '回' => Some(Heading::Chapter),
        '卷' | '部' | '集' => Some(Heading::Volume),
        _ => None,
    }
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "last",
    "final",
];

fn is_number_word(w: &str) -> bool {
    !w.is_empty()
        && w.split('-')
            .all(|p| NUMBER_WORDS.iter().any(|n| p.eq_ignore_ascii_case(n)))
}

fn is_roman(w: &str) -> bool {
    !w.is_empty()
        && w.len() <= 9
        && (w.chars().all(|c| "IVXLCDM".contains(c)) || w.chars().all(|c| "ivxlcdm".contains(c)))
}

/// Separators between a heading's number and its title.
const SEPARATORS: &[char] = &[':', '.', '-', '—', '–', ')', '：'];

fn english_heading(l: &str) -> Option<Heading> {
    if l.split_whitespace().count() > 15 || ends_like_a_sentence(l) {
        return None;
    }
    for special in ["prologue", "epilogue", "preface", "interlude", "afterword"] {
        if l.len() >= special.len()
            && l.is_char_boundary(special.len())
            && l[..special.len()].eq_ignore_ascii_case(special)
        {
            let rest = &l[special.len()..];
            if rest.is_empty() || rest.trim_start().starts_with(SEPARATORS) {
                return Some(Heading::Chapter);
            }
        }
    }
    for (keyword, kind) in [
        ("chapter", Heading::Chapter),
        ("volume", Heading::Volume),
        ("book", Heading::Volume),
        ("part", Heading::Volume),
    ] {
        if l.len() <= keyword.len()
            || !l.is_char_boundary(keyword.len())
            || !l[..keyword.len()].eq_ignore_ascii_case(keyword)
        {
            continue;
        }
        let rest = &l[keyword.len()..];
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let mut words = rest.split_whitespace().peekable();
        let first = words.next()?;
        let core = first.trim_end_matches(SEPARATORS);
        let mut separated = core.len() != first.len();
        let digits = !core.is_empty() && core.chars().all(|c| c.is_ascii_digit());
        let numbered = if digits || is_roman(core) {
            true
        } else if is_number_word(core) {
            // "Twenty One", "One Hundred and Two"
            while !separated {
                let Some(next) = words.peek() else { break };
                let c = next.trim_end_matches(SEPARATORS);
                if is_number_word(c) || c.eq_ignore_ascii_case("and") {
                    separated = c.len() != next.len();
                    words.next();
                } else {
                    break;
                }
            }
            true
        } else {
            false
        };
        if !numbered {
            continue;
        }
        // "Chapter 12 was fun." is prose; "Chapter 12 The Storm" a heading.
        if !separated
            && let Some(next) = words.next()
            && next.starts_with(|c: char| c.is_lowercase())
        {
            return None;
        }
        return Some(kind);
    }
    None
}

/// Splits plain text at its heading lines.
fn plain(text: &str, encoding: &str, stem: &str, format: ManuscriptFormat) -> Manuscript {
    let mut m = Manuscript {
        format,
        encoding: encoding.to_owned(),
        ..Manuscript::default()
    };
    let mut preamble: Vec<&str> = Vec::new();
    let mut current: Option<(String, Option<usize>, Vec<&str>)> = None;
    let mut found = false;
    for line in text.lines() {
        match heading(line) {
            Some(Heading::Volume) => {
                found = true;
                if let Some((title, volume, lines)) = current.take() {
                    m.chapters.push(chapter(title, volume, lines));
                }
                m.volumes.push(line.trim().to_owned());
            }
            Some(Heading::Chapter) => {
                found = true;
                if let Some((title, volume, lines)) = current.take() {
                    m.chapters.push(chapter(title, volume, lines));
                }
                let volume = m.volumes.len().checked_sub(1);
                current = Some((line.trim().to_owned(), volume, Vec::new()));
            }
            None => match &mut current {
                Some((_, _, lines)) => lines.push(line),
                // Text before the first chapter (even after a volume heading): the
                // title and description.
                None => preamble.push(line),
            },
        }
    }
    if let Some((title, volume, lines)) = current.take() {
        m.chapters.push(chapter(title, volume, lines));
    }
    if !found {
        let title = if stem.is_empty() { "Chapter 1" } else { stem };
        m.chapters.push(ManuscriptChapter {
            title: title.to_owned(),
            content: paragraphs(text.lines()),
            volume: None,
        });
        m.warnings.push(
            "no chapter headings were found (such as \"Chapter 1\" or \"第一章\"): the whole text is imported as one chapter"
                .into(),
        );
        return m;
    }
    let mut lines = preamble.iter().map(|l| l.trim()).filter(|l| !l.is_empty());
    if let Some(first) = lines.next() {
        let t = first.trim_start_matches('《').trim_end_matches('》').trim();
        if t.chars().count() <= MAX_TITLE_CHARS {
            m.title = Some(t.to_owned());
            m.description = paragraphs(lines);
        } else {
            m.description = paragraphs(preamble.iter().copied());
        }
    }
    m
}

fn chapter(title: String, volume: Option<usize>, lines: Vec<&str>) -> ManuscriptChapter {
    ManuscriptChapter {
        title,
        content: paragraphs(lines),
        volume,
    }
}

/// A Markdown heading line: its level and text.
fn md_heading(line: &str) -> Option<(usize, &str)> {
    let l = line.trim_end();
    let level = l.chars().take_while(|c| *c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &l[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some((level, rest.trim().trim_end_matches('#').trim()))
}

/// Splits Markdown at its headings.
fn markdown(text: &str, encoding: &str, stem: &str) -> Manuscript {
    let lines: Vec<&str> = text.lines().collect();
    let mut fenced = false;
    let mut headings: Vec<(usize, usize, &str)> = Vec::new(); // (line, level, text)
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if !fenced && let Some((level, text)) = md_heading(line) {
            headings.push((i, level, text));
        }
    }
    if headings.is_empty() {
        return plain(text, encoding, stem, ManuscriptFormat::Markdown);
    }
    let mut levels: Vec<usize> = headings.iter().map(|h| h.1).collect();
    levels.sort_unstable();
    levels.dedup();
    let top = levels[0];
    let title_line = (levels.len() > 1
        && headings.iter().filter(|h| h.1 == top).count() == 1
        && headings[0].1 == top)
        .then_some(headings[0].0);
    let rest: Vec<usize> = if title_line.is_some() {
        levels[1..].to_vec()
    } else {
        levels.clone()
    };
    let count = |level: usize| headings.iter().filter(|h| h.1 == level).count();
    // Two levels below the title: volumes and chapters, when the deeper one is the more
    // numerous (else the deeper headings are sections within chapters).
    let (volume_level, chapter_level) = match rest.as_slice() {
        [v, c, ..] if count(*c) > count(*v) => (Some(*v), *c),
        [c, ..] => (None, *c),
        [] => (None, top),
    };
    let mut m = Manuscript {
        format: ManuscriptFormat::Markdown,
        encoding: encoding.to_owned(),
        ..Manuscript::default()
    };
    let mut preamble: Vec<&str> = Vec::new();
    let mut current: Option<(String, Option<usize>, Vec<&str>)> = None;
    let mut hi = 0;
    for (i, line) in lines.iter().enumerate() {
        let here = headings.get(hi).filter(|h| h.0 == i).copied();
        if here.is_some() {
            hi += 1;
        }
        match here {
            Some((_, _, text)) if Some(i) == title_line => m.title = Some(text.to_owned()),
            Some((_, level, text)) if Some(level) == volume_level => {
                if let Some((t, v, ls)) = current.take() {
                    m.chapters.push(chapter(t, v, ls));
                }
                m.volumes.push(text.to_owned());
            }
            Some((_, level, text)) if level == chapter_level => {
                if let Some((t, v, ls)) = current.take() {
                    m.chapters.push(chapter(t, v, ls));
                }
                current = Some((text.to_owned(), m.volumes.len().checked_sub(1), Vec::new()));
            }
            // Deeper headings are part of the chapter's text.
            Some((_, _, text)) => match &mut current {
                Some((_, _, ls)) => ls.push(text),
                None => preamble.push(text),
            },
            None => match &mut current {
                Some((_, _, ls)) => ls.push(line),
                None => preamble.push(line),
            },
        }
    }
    if let Some((t, v, ls)) = current.take() {
        m.chapters.push(chapter(t, v, ls));
    }
    m.description = paragraphs(preamble);
    m
}

// ---- DOCX ----

/// What kind of heading a Word paragraph style is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordHeading {
    /// The document's title ("Title").
    Title,
    /// A heading of this outline level (0 = "heading 1").
    Level(usize),
}

/// The level a style's name gives ("heading 2" → 1; "Title" → the title).
fn heading_by_name(name: &str) -> Option<WordHeading> {
    let n = name.trim().to_ascii_lowercase();
    if n == "title" {
        return Some(WordHeading::Title);
    }
    let rest = n.strip_prefix("heading")?.trim();
    rest.parse::<usize>()
        .ok()
        .filter(|l| (1..=9).contains(l))
        .map(|l| WordHeading::Level(l - 1))
}

/// The heading styles of `word/styles.xml`: style id → heading kind (by outline level,
/// else by name).
fn word_styles(doc: &str) -> std::collections::HashMap<String, WordHeading> {
    let mut out = std::collections::HashMap::new();
    let mut current: Option<(String, Option<WordHeading>, Option<usize>)> = None;
    for t in tokens(doc) {
        let Token::Tag {
            name,
            attrs,
            closing,
            ..
        } = t
        else {
            continue;
        };
        match (local(name).as_str(), closing) {
            ("style", false) => {
                current = attr(attrs, "w:styleId").map(|id| (id, None, None));
            }
            ("style", true) => {
                if let Some((id, by_name, level)) = current.take() {
                    let kind = match (by_name, level) {
                        (Some(WordHeading::Title), _) => Some(WordHeading::Title),
                        (_, Some(l)) if l < 9 => Some(WordHeading::Level(l)),
                        (k, _) => k,
                    };
                    if let Some(k) = kind {
                        out.insert(id, k);
                    }
                }
            }
            ("name", false) => {
                if let (Some(c), Some(v)) = (&mut current, attr(attrs, "w:val")) {
                    c.1 = heading_by_name(&v);
                }
            }
            ("outlinelvl", false) => {
                if let (Some(c), Some(v)) = (&mut current, attr(attrs, "w:val")) {
                    c.2 = v.parse().ok();
                }
            }
            _ => {}
        }
    }
    out
}

/// The paragraphs of `word/document.xml`: (heading kind, text), in order.
fn word_paragraphs(
    doc: &str,
    styles: &std::collections::HashMap<String, WordHeading>,
) -> Vec<(Option<WordHeading>, String)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut kind: Option<WordHeading> = None;
    let mut in_text = false;
    // Deleted text (tracked changes) and field instructions are not the document's text.
    let mut skip = 0usize;
    for t in tokens(doc) {
        match t {
            Token::Tag {
                name,
                attrs,
                closing,
                empty,
            } => match local(name).as_str() {
                "p" if !closing => {
                    text.clear();
                    kind = None;
                }
                "p" if closing => {
                    out.push((kind, std::mem::take(&mut text)));
                    kind = None;
                }
                "pstyle" if !closing => {
                    if let Some(v) = attr(attrs, "w:val") {
                        kind = styles
                            .get(&v)
                            .copied()
                            .or_else(|| heading_by_name(&v))
                            .or(kind);
                    }
                }
                "outlinelvl" if !closing => {
                    if let Some(l) = attr(attrs, "w:val").and_then(|v| v.parse::<usize>().ok())
                        && l < 9
                    {
                        kind = Some(WordHeading::Level(l));
                    }
                }
                "t" => in_text = !closing && !empty,
                "tab" if !closing => text.push('\t'),
                "br" | "cr" if !closing => text.push('\n'),
                "del" | "instrtext" | "deltext" if !empty => {
                    if closing {
                        skip = skip.saturating_sub(1);
                    } else {
                        skip += 1;
                    }
                }
                _ => {}
            },
            Token::Text(s) if in_text && skip == 0 => text.push_str(&entities(s)),
            Token::Text(_) => {}
        }
    }
    out
}

/// Reads a Word document (see the module documentation).
fn docx(bytes: &[u8], limits: EpubLimits, stem: &str) -> Result<Manuscript, ImportError> {
    let not_docx = |e: ImportError| match e {
        ImportError::NotEpub(why) => ImportError::NotDocx(why),
        other => other,
    };
    let mut ar = Archive::open(bytes, limits).map_err(not_docx)?;
    let doc = ar
        .text("word/document.xml")
        .map_err(not_docx)?
        .ok_or_else(|| ImportError::NotDocx("word/document.xml is missing".into()))?;
    let styles = ar
        .text("word/styles.xml")
        .map_err(not_docx)?
        .map(|s| word_styles(&s))
        .unwrap_or_default();
    let paragraphs = word_paragraphs(&doc, &styles);
    let styled = paragraphs
        .iter()
        .any(|(k, t)| matches!(k, Some(WordHeading::Level(_))) && !t.trim().is_empty());
    let mut m = if styled {
        // As Markdown: the title one level above every heading.
        let mut md = String::new();
        for (kind, text) in &paragraphs {
            let line = text.replace('\n', " ");
            match kind {
                Some(WordHeading::Title) => md.push_str(&format!("# {}\n", line.trim())),
                Some(WordHeading::Level(l)) => {
                    md.push_str(&format!("{} {}\n", "#".repeat((l + 2).min(6)), line.trim()))
                }
                // A body line that would read as a heading or a fence is kept as text.
                None => {
                    for l in text.lines() {
                        if l.trim_start().starts_with(['#', '`', '~']) {
                            md.push('\u{200B}');
                        }
                        md.push_str(l);
                        md.push('\n');
                    }
                }
            }
            md.push('\n');
        }
        markdown(&md, "UTF-8", stem)
    } else {
        let text: Vec<&str> = paragraphs.iter().map(|(_, t)| t.as_str()).collect();
        plain(&text.join("\n"), "UTF-8", stem, ManuscriptFormat::Docx)
    };
    for c in &mut m.chapters {
        c.content = c.content.replace('\u{200B}', "");
    }
    m.description = m.description.replace('\u{200B}', "");
    m.format = ManuscriptFormat::Docx;
    if m.title.is_none()
        && let Some(core) = ar.text("docProps/core.xml").map_err(not_docx)?
    {
        let toks = tokens(&core);
        let mut in_title = false;
        for t in toks {
            match t {
                Token::Tag { name, closing, .. } if local(name) == "title" => in_title = !closing,
                Token::Text(s) if in_title => {
                    let t = entities(s).trim().to_owned();
                    if !t.is_empty() {
                        m.title = Some(t);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(m)
}

// ---- EPUB ----

/// A tag or a run of text of an XML document.
#[derive(Debug, Clone, PartialEq)]
enum Token<'a> {
    /// `<name attrs>`, `</name>` or `<name/>`.
    Tag {
        name: &'a str,
        attrs: &'a str,
        closing: bool,
        empty: bool,
    },
    Text(&'a str),
}

/// Tokenizes XML/XHTML leniently (comments, processing instructions and doctypes are
/// skipped; CDATA is text).
fn tokens(s: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < s.len() {
        let Some(lt) = s[at..].find('<').map(|i| at + i) else {
            out.push(Token::Text(&s[at..]));
            break;
        };
        if lt > at {
            out.push(Token::Text(&s[at..lt]));
        }
        let rest = &s[lt..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(s.len(), |i| lt + i + 3);
            continue;
        }
        if let Some(cdata) = rest.strip_prefix("<![CDATA[") {
            let end = cdata.find("]]>").unwrap_or(cdata.len());
            out.push(Token::Text(&cdata[..end]));
            at = (lt + 9 + end + 3).min(s.len());
            continue;
        }
        // A tag ends at the first '>' outside quotes.
        let mut quote = None;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '>') => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { break };
        let inner = &rest[1..end];
        at = lt + end + 1;
        if inner.starts_with('?') || inner.starts_with('!') {
            continue;
        }
        let closing = inner.starts_with('/');
        let inner = inner.trim_start_matches('/');
        let empty = inner.ends_with('/');
        let inner = inner.trim_end_matches('/');
        let name_end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        out.push(Token::Tag {
            name: &inner[..name_end],
            attrs: &inner[name_end..],
            closing,
            empty,
        });
    }
    out
}

/// The local name of an element (`dc:title` → `title`), lower-cased.
fn local(name: &str) -> String {
    name.rsplit(':').next().unwrap_or(name).to_ascii_lowercase()
}

/// The value of attribute `want` (its full name, e.g. `epub:type`), entities decoded.
fn attr(attrs: &str, want: &str) -> Option<String> {
    let b = attrs.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && b[i] != b'=' && !(b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        let name = &attrs[name_start..i];
        while i < b.len() && (b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            if name.is_empty() {
                i += 1;
            }
            continue;
        }
        i += 1;
        while i < b.len() && (b[i] as char).is_ascii_whitespace() {
            i += 1;
        }
        let (start, end) = match b.get(i) {
            Some(q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let end = attrs[start..]
                    .find(char::from(*q))
                    .map_or(b.len(), |e| start + e);
                i = end + 1;
                (start, end)
            }
            _ => {
                let start = i;
                while i < b.len() && !(b[i] as char).is_ascii_whitespace() {
                    i += 1;
                }
                (start, i)
            }
        };
        if name.eq_ignore_ascii_case(want) {
            return Some(entities(&attrs[start..end]));
        }
    }
    None
}

/// Decodes the XML entities and the HTML `&nbsp;`.
fn entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-decodes a URL path (invalid sequences are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resolves `href` (a manifest or table-of-contents reference) against `dir` (the
/// directory of the document naming it); refuses references leaving the book.
fn resolve(dir: &str, href: &str) -> Result<String, ImportError> {
    let path = href.split('#').next().unwrap_or("");
    let path = percent_decode(path);
    let unsafe_path = path.starts_with('/')
        || path.starts_with('\\')
        || path.contains(':')
        || path.contains('\\')
        || path.split('/').any(|seg| seg == "..");
    if unsafe_path {
        return Err(ImportError::UnsafePath(href.to_owned()));
    }
    let path = path.trim_start_matches("./");
    Ok(if dir.is_empty() {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    })
}

fn dir_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The archive, read within limits.
struct Archive<'a> {
    zip: zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
    budget: u64,
    limits: EpubLimits,
}

impl<'a> Archive<'a> {
    fn open(bytes: &'a [u8], limits: EpubLimits) -> Result<Self, ImportError> {
        let bomb = ImportError::ZipBomb {
            max_bytes: limits.max_bytes,
            max_entries: limits.max_entries,
        };
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| ImportError::NotEpub(format!("not a ZIP archive ({e})")))?;
        if zip.len() > limits.max_entries {
            return Err(bomb);
        }
        let mut declared: u64 = 0;
        for i in 0..zip.len() {
            let entry = zip
                .by_index_raw(i)
                .map_err(|e| ImportError::NotEpub(e.to_string()))?;
            if entry.enclosed_name().is_none() || entry.name().split('/').any(|s| s == "..") {
                return Err(ImportError::UnsafePath(entry.name().to_owned()));
            }
            declared = declared.saturating_add(entry.size());
        }
        if declared > limits.max_bytes {
            return Err(bomb);
        }
        Ok(Self {
            zip,
            budget: limits.max_bytes,
            limits,
        })
    }

    /// An entry's bytes (`None` when there is no such entry).
    fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
        let entry = match self.zip.by_name(name) {
            Ok(e) => e,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(ImportError::NotEpub(format!("{name}: {e}"))),
        };
        let mut data = Vec::new();
        entry
            .take(self.budget.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| ImportError::NotEpub(format!("{name}: {e}")))?;
        if data.len() as u64 > self.budget {
            return Err(ImportError::ZipBomb {
                max_bytes: self.limits.max_bytes,
                max_entries: self.limits.max_entries,
            });
        }
        self.budget -= data.len() as u64;
        Ok(Some(data))
    }

    fn text(&mut self, name: &str) -> Result<Option<String>, ImportError> {
        match self.read(name)? {
            None => Ok(None),
            Some(bytes) => match decode(&bytes) {
                Ok((t, _)) => Ok(Some(t)),
                Err(ImportError::Empty) => Ok(Some(String::new())),
                Err(_) => Err(ImportError::NotEpub(format!("{name} is not text"))),
            },
        }
    }
}

/// A manifest item.
struct Item {
    id: String,
    path: String,
    media_type: String,
    properties: String,
}

/// A block of an XHTML document's text.
struct Block {
    heading: bool,
    text: String,
}

/// The text blocks of an XHTML document, and whether it is a cover page.
fn xhtml_blocks(doc: &str) -> (Vec<Block>, bool) {
    let mut blocks = Vec::new();
    let mut cover = false;
    let mut skip = 0usize;
    let mut heading_depth = 0usize;
    let mut current = String::new();
    let mut current_heading = false;
    let flush = |current: &mut String, heading: bool, blocks: &mut Vec<Block>| {
        let text = current.split_whitespace().collect::<Vec<_>>().join(" ");
        if !text.is_empty() {
            blocks.push(Block { heading, text });
        }
        current.clear();
    };
    for t in tokens(doc) {
        match t {
            Token::Tag {
                name,
                attrs,
                closing,
                empty,
            } => {
                let n = local(name);
                if !closing
                    && (attr(attrs, "epub:type").is_some_and(|v| v.contains("cover"))
                        || (n == "section" || n == "body" || n == "div")
                            && attr(attrs, "class")
                                .is_some_and(|v| v.split_whitespace().any(|c| c == "cover")))
                {
                    cover = true;
                }
                let skipped = matches!(n.as_str(), "head" | "script" | "style" | "title");
                if skipped && !empty {
                    if closing {
                        skip = skip.saturating_sub(1);
                    } else {
                        skip += 1;
                    }
                    continue;
                }
                let is_heading = matches!(n.as_str(), "h1" | "h2" | "h3" | "h4" | "h5" | "h6");
                let block = is_heading
                    || matches!(
                        n.as_str(),
                        "p" | "div"
                            | "br"
                            | "li"
                            | "blockquote"
                            | "section"
                            | "article"
                            | "tr"
                            | "pre"
                            | "hr"
                            | "body"
                            | "header"
                            | "footer"
                            | "dd"
                            | "dt"
                            | "aside"
                    );
                if block {
                    flush(&mut current, current_heading, &mut blocks);
                    if is_heading {
                        if closing {
                            heading_depth = heading_depth.saturating_sub(1);
                        } else if !empty {
                            heading_depth += 1;
                        }
                    }
                    current_heading = heading_depth > 0;
                }
            }
            Token::Text(text) if skip == 0 => {
                current.push_str(&entities(text));
            }
            Token::Text(_) => {}
        }
    }
    flush(&mut current, current_heading, &mut blocks);
    (blocks, cover)
}

/// The visible text between tags (for table-of-contents labels).
fn inner_text(toks: &[Token<'_>]) -> String {
    let mut s = String::new();
    for t in toks {
        if let Token::Text(x) = t {
            s.push_str(&entities(x));
            s.push(' ');
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The table of contents of an EPUB 3 navigation document: (path, label) in order.
fn nav_toc(doc: &str, dir: &str) -> Result<Vec<(String, String)>, ImportError> {
    let toks = tokens(doc);
    let mut out = Vec::new();
    // Inside the `toc` nav (or any nav when none is marked as the toc).
    let has_toc = toks.iter().any(|t| {
        matches!(t, Token::Tag { name, attrs, closing: false, .. }
            if local(name) == "nav" && attr(attrs, "epub:type").is_some_and(|v| v.split_whitespace().any(|x| x == "toc")))
    });
    let mut in_nav = false;
    let mut i = 0;
    while i < toks.len() {
        if let Token::Tag {
            name,
            attrs,
            closing,
            ..
        } = &toks[i]
        {
            let n = local(name);
            if n == "nav" {
                in_nav = !closing
                    && (!has_toc
                        || attr(attrs, "epub:type")
                            .is_some_and(|v| v.split_whitespace().any(|x| x == "toc")));
            } else if n == "a"
                && !closing
                && in_nav
                && let Some(href) = attr(attrs, "href")
            {
                let end = toks[i..]
                    .iter()
                    .position(|t| matches!(t, Token::Tag { name, closing: true, .. } if local(name) == "a"))
                    .map_or(toks.len(), |p| i + p);
                let label = inner_text(&toks[i + 1..end]);
                out.push((resolve(dir, &href)?, label));
                i = end;
            }
        }
        i += 1;
    }
    Ok(out)
}

/// The table of contents of an EPUB 2 NCX: (path, label) in order.
fn ncx_toc(doc: &str, dir: &str) -> Result<Vec<(String, String)>, ImportError> {
    let toks = tokens(doc);
    let mut out = Vec::new();
    let mut label = String::new();
    let mut in_text = false;
    for t in &toks {
        match t {
            Token::Tag { name, closing, .. } if local(name) == "text" => {
                in_text = !closing;
                if !closing {
                    label.clear();
                }
            }
            Token::Tag {
                name,
                attrs,
                closing: false,
                ..
            } if local(name) == "content" => {
                if let Some(src) = attr(attrs, "src") {
                    out.push((resolve(dir, &src)?, label.trim().to_owned()));
                }
            }
            Token::Text(x) if in_text => label.push_str(&entities(x)),
            _ => {}
        }
    }
    Ok(out)
}

/// Reads an EPUB.
fn epub(bytes: &[u8], limits: EpubLimits) -> Result<Manuscript, ImportError> {
    let mut ar = Archive::open(bytes, limits)?;
    let container = ar
        .text("META-INF/container.xml")?
        .ok_or_else(|| ImportError::NotEpub("META-INF/container.xml is missing".into()))?;
    let opf_path = tokens(&container)
        .into_iter()
        .find_map(|t| match t {
            Token::Tag { name, attrs, .. } if local(name) == "rootfile" => attr(attrs, "full-path"),
            _ => None,
        })
        .ok_or_else(|| ImportError::NotEpub("the container names no package document".into()))?;
    let opf_path = resolve("", &opf_path)?;
    let opf = ar.text(&opf_path)?.ok_or_else(|| {
        ImportError::NotEpub(format!("the package document {opf_path} is missing"))
    })?;
    let dir = dir_of(&opf_path).to_owned();
    let toks = tokens(&opf);
    let mut items = Vec::new();
    let mut spine = Vec::new();
    let mut title = None;
    let mut description = String::new();
    for (i, t) in toks.iter().enumerate() {
        let Token::Tag {
            name,
            attrs,
            closing: false,
            ..
        } = t
        else {
            continue;
        };
        match local(name).as_str() {
            "item" => {
                let href = attr(attrs, "href").unwrap_or_default();
                items.push(Item {
                    id: attr(attrs, "id").unwrap_or_default(),
                    path: resolve(&dir, &href)?,
                    media_type: attr(attrs, "media-type").unwrap_or_default(),
                    properties: attr(attrs, "properties").unwrap_or_default(),
                });
            }
            "itemref" => spine.push(attr(attrs, "idref").unwrap_or_default()),
            "title" if title.is_none() => {
                if let Some(Token::Text(x)) = toks.get(i + 1) {
                    let x = entities(x);
                    title = Some(x.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            "description" if description.is_empty() => {
                if let Some(Token::Text(x)) = toks.get(i + 1) {
                    description = entities(x).trim().to_owned();
                }
            }
            _ => {}
        }
    }
    if spine.is_empty() {
        return Err(ImportError::NotEpub(
            "the package document has no spine".into(),
        ));
    }
    // The table of contents: the navigation document, else the NCX.
    let mut toc = Vec::new();
    if let Some(nav) = items
        .iter()
        .find(|i| i.properties.split_whitespace().any(|p| p == "nav"))
        && let Some(doc) = ar.text(&nav.path)?
    {
        toc = nav_toc(&doc, dir_of(&nav.path))?;
    }
    if toc.is_empty()
        && let Some(ncx) = items
            .iter()
            .find(|i| i.media_type == "application/x-dtbncx+xml")
        && let Some(doc) = ar.text(&ncx.path)?
    {
        toc = ncx_toc(&doc, dir_of(&ncx.path))?;
    }
    let mut m = Manuscript {
        format: ManuscriptFormat::Epub,
        encoding: "UTF-8".into(),
        title,
        description,
        ..Manuscript::default()
    };
    let mut skipped_front = false;
    for idref in &spine {
        let Some(item) = items.iter().find(|i| &i.id == idref) else {
            continue;
        };
        if item.properties.split_whitespace().any(|p| p == "nav")
            || !(item.media_type.contains("html") || item.media_type.is_empty())
        {
            continue;
        }
        let Some(doc) = ar.text(&item.path)? else {
            m.warnings
                .push(format!("{} is in the spine but not in the book", item.path));
            continue;
        };
        let (blocks, cover) = xhtml_blocks(&doc);
        let label = toc
            .iter()
            .find(|(p, _)| *p == item.path)
            .map(|(_, l)| l.clone());
        let new_chapter = if toc.is_empty() {
            if cover || blocks.is_empty() {
                continue;
            }
            Some(
                blocks
                    .iter()
                    .find(|b| b.heading)
                    .map(|b| b.text.clone())
                    .unwrap_or_default(),
            )
        } else {
            label
        };
        match new_chapter {
            Some(mut title) => {
                let mut blocks = blocks.into_iter().peekable();
                // The chapter's own heading is its title, not its text.
                if let Some(b) = blocks.peek()
                    && b.heading
                    && (title.is_empty() || b.text == title)
                    && let Some(b) = blocks.next()
                    && title.is_empty()
                {
                    title = b.text;
                }
                let texts: Vec<String> = blocks.map(|b| b.text).collect();
                m.chapters.push(ManuscriptChapter {
                    title,
                    content: paragraphs(texts.iter().map(String::as_str)),
                    volume: None,
                });
            }
            None => match m.chapters.last_mut() {
                Some(last) => {
                    let more = paragraphs(blocks.iter().map(|b| b.text.as_str()));
                    if !more.is_empty() {
                        if !last.content.is_empty() {
                            last.content.push_str("\n\n");
                        }
                        last.content.push_str(&more);
                    }
                }
                None => skipped_front |= !cover && !blocks.is_empty(),
            },
        }
    }
    if skipped_front {
        m.warnings.push(
            "pages before the first chapter of the table of contents were not imported".into(),
        );
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::{Book, BookChapter, render};
    use crate::model::ExportFormat;

    fn titles(m: &Manuscript) -> Vec<&str> {
        m.chapters.iter().map(|c| c.title.as_str()).collect()
    }

    fn book() -> Book {
        Book {
            id: uuid::Uuid::nil(),
            title: "The Long Road 长路".into(),
            description: "Three chapters.".into(),
            language: "zh-CN".into(),
            modified: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            chapters: vec![
                BookChapter {
                    seq: 1,
                    title: "Chapter 1: Departure".into(),
                    content: "Ned left at dawn.\n\nThe road was long & <narrow>.".into(),
                },
                BookChapter {
                    seq: 2,
                    title: "第二章 山中".into(),
                    content: "山中无甲子。\n\n寒尽不知年。".into(),
                },
                BookChapter {
                    seq: 3,
                    title: "Chapter Three".into(),
                    content: "He reached the sea at last.".into(),
                },
            ],
        }
    }

    #[test]
    fn english_and_chinese_headings_are_found() {
        for h in [
            "Chapter 12",
            "CHAPTER XII",
            "Chapter Twelve: The Storm",
            "Chapter Twenty-One",
            "Chapter 3 The Sea",
            "chapter iv. Home",
            "Prologue",
            "第十二章 标题",
            "第12章",
            "第一百零三章：归来",
            "楔子",
        ] {
            assert_eq!(heading(h), Some(Heading::Chapter), "{h}");
        }
        for h in [
            "第一卷",
            "第二卷 风起",
            "Volume 2",
            "Book One",
            "Part II: War",
        ] {
            assert_eq!(heading(h), Some(Heading::Volume), "{h}");
        }
        for h in [
            "Chapter 12 was the best of them all.",
            "The chapter ended.",
            "Part of the problem was him",
            "第一章写完了，他很高兴。",
            "第三天，他走了。",
            "Chapters",
            "",
        ] {
            assert_eq!(heading(h), None, "{h}");
        }
    }

    #[test]
    fn text_splits_into_volumes_and_chapters() {
        let text = "《长路》\n作者：某人\n\n第一卷 启程\n第一章 出发\n　　他走了。\n\n　　天亮了。\n第二章 山中\n山中无甲子。\n第二卷 归来\n第三章 到家\n到了。\n";
        let m = parse_manuscript(text.as_bytes(), "a.txt", None).unwrap_or_default();
        assert_eq!(m.format, ManuscriptFormat::Txt);
        assert_eq!(m.encoding, "UTF-8");
        assert_eq!(m.title.as_deref(), Some("长路"));
        assert_eq!(m.description, "作者：某人");
        assert_eq!(m.volumes, ["第一卷 启程", "第二卷 归来"]);
        assert_eq!(titles(&m), ["第一章 出发", "第二章 山中", "第三章 到家"]);
        assert_eq!(m.chapters[0].content, "他走了。\n\n天亮了。");
        assert_eq!(
            m.chapters.iter().map(|c| c.volume).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(1)]
        );
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn text_without_headings_is_one_chapter_with_a_warning() {
        let m =
            parse_manuscript(b"Just some words.\nAnd more.", "notes.txt", None).unwrap_or_default();
        assert_eq!(titles(&m), ["notes"]);
        assert_eq!(m.chapters[0].content, "Just some words.\n\nAnd more.");
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
    }

    #[test]
    fn encodings_are_detected() {
        let text = "第一章 开始\n你好，世界。\n第二章 结束\n再见。\n";
        let (gb, _, _) = encoding_rs::GB18030.encode(text);
        let m = parse_manuscript(&gb, "a.txt", None).unwrap_or_default();
        assert_eq!(m.encoding, "GB18030");
        assert_eq!(titles(&m), ["第一章 开始", "第二章 结束"]);
        assert_eq!(m.chapters[0].content, "你好，世界。");

        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let m = parse_manuscript(&le, "a.txt", None).unwrap_or_default();
        assert_eq!(m.encoding, "UTF-16LE");
        assert_eq!(m.chapters[1].content, "再见。");

        let mut be = vec![0xFE, 0xFF];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let m = parse_manuscript(&be, "a.txt", None).unwrap_or_default();
        assert_eq!(m.encoding, "UTF-16BE");

        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend(text.as_bytes());
        let m = parse_manuscript(&bom, "a.txt", None).unwrap_or_default();
        assert_eq!(m.encoding, "UTF-8");
        assert_eq!(m.chapters[0].title, "第一章 开始");
    }

    #[test]
    fn binary_is_refused() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10";
        assert_eq!(
            parse_manuscript(png, "x.txt", None),
            Err(ImportError::Binary)
        );
        let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
        assert!(parse_manuscript(&noise, "x.txt", None).is_err());
        assert_eq!(
            parse_manuscript(b"  \n ", "x.txt", None),
            Err(ImportError::Empty)
        );
    }

    #[test]
    fn markdown_splits_at_headings() {
        let md = "# The Book\n\nA blurb.\n\n## One\n\nFirst.\n\n### Aside\n\nMore.\n\n## Two\n\n```\n# not a heading\n```\n";
        let m = parse_manuscript(md.as_bytes(), "b.md", None).unwrap_or_default();
        assert_eq!(m.title.as_deref(), Some("The Book"));
        assert_eq!(m.description, "A blurb.");
        assert_eq!(titles(&m), ["One", "Two"]);
        assert_eq!(m.chapters[0].content, "First.\n\nAside\n\nMore.");
        let md = "# Part 1\n## A\na\n## B\nb\n# Part 2\n## C\nc\n";
        let m = parse_manuscript(md.as_bytes(), "b.md", None).unwrap_or_default();
        assert_eq!(m.volumes, ["Part 1", "Part 2"]);
        assert_eq!(titles(&m), ["A", "B", "C"]);
        assert_eq!(m.chapters[2].volume, Some(1));
    }

    #[test]
    fn exported_books_read_back() {
        let b = book();
        for format in [
            ExportFormat::Txt,
            ExportFormat::Markdown,
            ExportFormat::Epub,
        ] {
            let bytes = render(&b, format);
            let name = format!("book.{}", format.extension());
            let m = parse_manuscript(&bytes, &name, None).unwrap_or_default();
            assert_eq!(m.title.as_deref(), Some("The Long Road 长路"), "{format}");
            assert_eq!(
                titles(&m),
                ["Chapter 1: Departure", "第二章 山中", "Chapter Three"],
                "{format}"
            );
            for (got, want) in m.chapters.iter().zip(&b.chapters) {
                assert_eq!(got.content, want.content, "{format}");
            }
            assert!(m.warnings.is_empty(), "{format}: {:?}", m.warnings);
        }
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        crate::book::zip::write_stored_zip(entries)
    }

    const CONTAINER: &[u8] = b"<?xml version=\"1.0\"?><container><rootfiles><rootfile full-path=\"OPS/p.opf\"/></rootfiles></container>";

    #[test]
    fn epub_paths_leaving_the_book_are_refused() {
        let opf = b"<package><manifest><item id=\"a\" href=\"../../etc/passwd\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"a\"/></spine></package>";
        let z = zip_of(&[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER),
            ("OPS/p.opf", opf),
        ]);
        assert!(matches!(
            parse_manuscript(&z, "x.epub", None),
            Err(ImportError::UnsafePath(_))
        ));
        let opf = b"<package><manifest><item id=\"a\" href=\"/etc/passwd\" media-type=\"application/xhtml+xml\"/></manifest><spine><itemref idref=\"a\"/></spine></package>";
        let z = zip_of(&[("META-INF/container.xml", CONTAINER), ("OPS/p.opf", opf)]);
        assert!(matches!(
            parse_manuscript(&z, "x.epub", None),
            Err(ImportError::UnsafePath(_))
        ));
        let z = zip_of(&[
            ("../evil.xhtml", b"x"),
            ("META-INF/container.xml", CONTAINER),
        ]);
        assert!(matches!(
            parse_manuscript(&z, "x.epub", None),
            Err(ImportError::UnsafePath(_))
        ));
    }

    #[test]
    fn epub_zip_bombs_are_refused() {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let ok = w.start_file("META-INF/container.xml", deflated).is_ok()
            && w.write_all(CONTAINER).is_ok()
            && w.start_file("OPS/big.xhtml", deflated).is_ok()
            && w.write_all(&vec![b' '; 4 * 1024 * 1024]).is_ok();
        assert!(ok);
        let bytes = w.finish().map(|c| c.into_inner()).unwrap_or_default();
        assert!(bytes.len() < 64 * 1024, "{}", bytes.len());
        let limits = EpubLimits {
            max_bytes: 1024 * 1024,
            max_entries: 100,
        };
        assert!(matches!(
            parse_with_limits(&bytes, "x.epub", None, limits),
            Err(ImportError::ZipBomb { .. })
        ));
        let many: Vec<(String, Vec<u8>)> =
            (0..101).map(|i| (format!("f{i}"), Vec::new())).collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        assert!(matches!(
            parse_with_limits(&zip_of(&refs), "x.epub", None, limits),
            Err(ImportError::ZipBomb { .. })
        ));
    }

    #[test]
    fn epub_without_a_toc_uses_each_document_and_its_heading() {
        let opf = b"<package><metadata><dc:title>T</dc:title></metadata><manifest>\
<item id=\"a\" href=\"a.xhtml\" media-type=\"application/xhtml+xml\"/>\
<item id=\"b\" href=\"b%20c.xhtml\" media-type=\"application/xhtml+xml\"/></manifest>\
<spine><itemref idref=\"b\"/><itemref idref=\"a\"/></spine></package>";
        let a = b"<html><head><title>x</title></head><body><h1>Alpha</h1><p>One &amp; two.</p><p>Three<br/>Four</p></body></html>";
        let b = b"<html><body><h2>Beta</h2><p>&#x4E2D;&#25991;</p></body></html>";
        let z = zip_of(&[
            ("META-INF/container.xml", CONTAINER),
            ("OPS/p.opf", opf),
            ("OPS/a.xhtml", a),
            ("OPS/b c.xhtml", b),
        ]);
        let m = parse_manuscript(&z, "x.epub", None).unwrap_or_default();
        assert_eq!(m.title.as_deref(), Some("T"));
        assert_eq!(titles(&m), ["Beta", "Alpha"]);
        assert_eq!(m.chapters[0].content, "中文");
        assert_eq!(m.chapters[1].content, "One & two.\n\nThree\n\nFour");
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(detect_format("a.EPUB", b""), ManuscriptFormat::Epub);
        assert_eq!(detect_format("a.md", b""), ManuscriptFormat::Markdown);
        assert_eq!(
            detect_format("upload", b"PK\x03\x04"),
            ManuscriptFormat::Epub
        );
        assert_eq!(
            detect_format("upload", b"# T\n## A"),
            ManuscriptFormat::Markdown
        );
        assert_eq!(detect_format("upload", b"Chapter 1"), ManuscriptFormat::Txt);
    }

    const W: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"";

    /// A Word document of `body` (`w:body` content), with `styles` and a title property.
    fn docx_of(body: &str, styles: &str) -> Vec<u8> {
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document {W}><w:body>{body}</w:body></w:document>"
        );
        let styles = format!("<w:styles {W}>{styles}</w:styles>");
        let core = "<cp:coreProperties xmlns:cp=\"c\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Salt &amp; Ash</dc:title></cp:coreProperties>";
        zip_of(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", doc.as_bytes()),
            ("word/styles.xml", styles.as_bytes()),
            ("docProps/core.xml", core.as_bytes()),
        ])
    }

    fn para(style: Option<&str>, runs: &str) -> String {
        let ppr = style
            .map(|s| format!("<w:pPr><w:pStyle w:val=\"{s}\"/></w:pPr>"))
            .unwrap_or_default();
        format!("<w:p>{ppr}{runs}</w:p>")
    }

    fn run(text: &str) -> String {
        format!("<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r>")
    }

    #[test]
    fn docx_splits_at_heading_styles_with_volumes() {
        // Style ids as a Chinese Word names them ("1", "2"): found by outline level.
        let styles = "<w:style w:type=\"paragraph\" w:styleId=\"1\"><w:name w:val=\"标题 1\"/><w:pPr><w:outlineLvl w:val=\"0\"/></w:pPr></w:style>\
                      <w:style w:type=\"paragraph\" w:styleId=\"Heading2\"><w:name w:val=\"heading 2\"/></w:style>";
        let body = [
            para(Some("1"), &run("第一卷 盐路")),
            para(Some("Heading2"), &run("第一章 出发")),
            para(
                None,
                &format!("{}{}", run("Ned left "), run("at dawn &amp; rode.")),
            ),
            para(
                None,
                "<w:r><w:delText>deleted words</w:delText></w:r><w:r><w:t>Kept.</w:t></w:r>",
            ),
            para(Some("Heading2"), &run("第二章 山中")),
            para(None, &run("# not a heading")),
            para(Some("1"), &run("第二卷 海")),
            para(Some("Heading2"), &run("Chapter 3")),
            para(None, &run("The sea.")),
        ]
        .concat();
        let m = parse_manuscript(&docx_of(&body, styles), "book.docx", None).unwrap();
        assert_eq!(m.format, ManuscriptFormat::Docx);
        assert_eq!(
            m.title.as_deref(),
            Some("Salt & Ash"),
            "from the properties"
        );
        assert_eq!(m.volumes, ["第一卷 盐路", "第二卷 海"]);
        assert_eq!(titles(&m), ["第一章 出发", "第二章 山中", "Chapter 3"]);
        assert_eq!(m.chapters[0].content, "Ned left at dawn & rode.\n\nKept.");
        assert_eq!(m.chapters[0].volume, Some(0));
        assert_eq!(m.chapters[1].content, "# not a heading");
        assert_eq!(m.chapters[2].volume, Some(1));
    }

    #[test]
    fn docx_without_heading_styles_splits_like_text() {
        let body = [
            para(Some("Title"), &run("The Salt Road")),
            para(None, &run("Chapter 1: Dawn")),
            para(None, &run("Ned left.")),
            para(None, &run("CHAPTER II")),
            para(None, &run("He came back.")),
        ]
        .concat();
        let bytes = docx_of(&body, "");
        assert_eq!(detect_format("upload", &bytes), ManuscriptFormat::Docx);
        let m = parse_manuscript(&bytes, "upload", None).unwrap();
        assert_eq!(m.title.as_deref(), Some("The Salt Road"));
        assert_eq!(titles(&m), ["Chapter 1: Dawn", "CHAPTER II"]);
        assert_eq!(m.chapters[1].content, "He came back.");
        // No headings at all: one chapter, and the preview says so.
        let m = parse_manuscript(
            &docx_of(&para(None, &run("Just prose.")), ""),
            "notes.docx",
            None,
        )
        .unwrap();
        assert_eq!(m.chapters.len(), 1);
        assert_eq!(m.warnings.len(), 1);
    }

    #[test]
    fn broken_docx_files_are_refused() {
        let z = zip_of(&[("word/other.xml", b"<x/>")]);
        assert!(matches!(
            parse_manuscript(&z, "a.docx", None),
            Err(ImportError::NotDocx(_))
        ));
        assert!(matches!(
            parse_manuscript(b"not a zip", "a.docx", None),
            Err(ImportError::NotDocx(_))
        ));
        let z = zip_of(&[("../word/document.xml", b"<x/>")]);
        assert!(matches!(
            parse_manuscript(&z, "a.docx", None),
            Err(ImportError::UnsafePath(_))
        ));
    }
}

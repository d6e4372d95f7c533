//! EPUB 3: `mimetype` (first, stored), `META-INF/container.xml`, the package document
//! (`OEBPS/content.opf`: metadata, manifest, spine), the navigation document
//! (`OEBPS/nav.xhtml`), a generated cover page, a style sheet and one XHTML document
//! per chapter.

use super::Book;
use super::zip::write_stored_zip;

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn lang(book: &Book) -> String {
    let l = book.language.trim();
    if l.is_empty() { "en".into() } else { esc(l) }
}

fn page(book: &Book, title: &str, body: &str, extra_ns: &str) -> String {
    let lang = lang(book);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE html>\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\"{extra_ns} xml:lang=\"{lang}\" lang=\"{lang}\">\n\
<head>\n<meta charset=\"UTF-8\"/>\n<title>{}</title>\n\
<link rel=\"stylesheet\" type=\"text/css\" href=\"style.css\"/>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

fn chapter_file(i: usize) -> String {
    format!("chapter-{:04}.xhtml", i + 1)
}

const STYLE: &str = "body { font-family: serif; line-height: 1.6; }\n\
h1, h2 { text-align: center; }\n\
p { text-indent: 2em; margin: 0.3em 0; }\n\
.cover { text-align: center; margin-top: 30%; }\n";

/// The EPUB 3 archive of `book`.
pub(super) fn epub(book: &Book) -> Vec<u8> {
    let title = esc(book.title.trim());
    let lang = lang(book);
    let modified = book.modified.format("%Y-%m-%dT%H:%M:%SZ");
    let container = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">\n\
<rootfiles>\n<rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>\n\
</rootfiles>\n</container>\n";

    let mut manifest = String::from(
        "<item id=\"nav\" href=\"nav.xhtml\" media-type=\"application/xhtml+xml\" properties=\"nav\"/>\n\
<item id=\"cover\" href=\"cover.xhtml\" media-type=\"application/xhtml+xml\"/>\n\
<item id=\"style\" href=\"style.css\" media-type=\"text/css\"/>\n",
    );
    let mut spine = String::from("<itemref idref=\"cover\"/>\n<itemref idref=\"nav\"/>\n");
    let mut toc = String::new();
    let mut chapters = Vec::new();
    for (i, c) in book.chapters.iter().enumerate() {
        let file = chapter_file(i);
        let id = format!("c{}", i + 1);
        manifest.push_str(&format!(
            "<item id=\"{id}\" href=\"{file}\" media-type=\"application/xhtml+xml\"/>\n"
        ));
        spine.push_str(&format!("<itemref idref=\"{id}\"/>\n"));
        let heading = c.heading();
        toc.push_str(&format!(
            "<li><a href=\"{file}\">{}</a></li>\n",
            esc(&heading)
        ));
        let mut body = format!(
            "<section epub:type=\"chapter\">\n<h2>{}</h2>\n",
            esc(&heading)
        );
        for p in c.paragraphs() {
            body.push_str(&format!("<p>{}</p>\n", esc(p)));
        }
        body.push_str("</section>\n");
        chapters.push((
            format!("OEBPS/{file}"),
            page(
                book,
                &heading,
                &body,
                " xmlns:epub=\"http://www.idpf.org/2007/ops\"",
            ),
        ));
    }
    let description = if book.description.trim().is_empty() {
        String::new()
    } else {
        format!(
            "<dc:description>{}</dc:description>\n",
            esc(book.description.trim())
        )
    };
    let opf = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\" unique-identifier=\"book-id\" xml:lang=\"{lang}\">\n\
<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n\
<dc:identifier id=\"book-id\">urn:uuid:{}</dc:identifier>\n\
<dc:title>{title}</dc:title>\n<dc:language>{lang}</dc:language>\n{description}\
<meta property=\"dcterms:modified\">{modified}</meta>\n</metadata>\n\
<manifest>\n{manifest}</manifest>\n<spine>\n{spine}</spine>\n</package>\n",
        book.id.hyphenated()
    );
    let nav = page(
        book,
        book.title.trim(),
        &format!(
            "<nav epub:type=\"toc\" id=\"toc\">\n<h1>{title}</h1>\n<ol>\n{toc}</ol>\n</nav>\n"
        ),
        " xmlns:epub=\"http://www.idpf.org/2007/ops\"",
    );
    let cover = page(
        book,
        book.title.trim(),
        &format!(
            "<section epub:type=\"cover\" class=\"cover\">\n<h1>{title}</h1>\n{}</section>\n",
            if description.is_empty() {
                String::new()
            } else {
                format!("<p>{}</p>\n", esc(book.description.trim()))
            }
        ),
        " xmlns:epub=\"http://www.idpf.org/2007/ops\"",
    );
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("mimetype", b"application/epub+zip"),
        ("META-INF/container.xml", container.as_bytes()),
        ("OEBPS/content.opf", opf.as_bytes()),
        ("OEBPS/nav.xhtml", nav.as_bytes()),
        ("OEBPS/cover.xhtml", cover.as_bytes()),
        ("OEBPS/style.css", STYLE.as_bytes()),
    ];
    for (name, xhtml) in &chapters {
        entries.push((name, xhtml.as_bytes()));
    }
    write_stored_zip(&entries)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::zip::read_stored_zip;
    use super::*;

    #[test]
    fn the_archive_has_mimetype_first_then_the_package() {
        let bytes = epub(&sample());
        let entries = read_stored_zip(&bytes).unwrap_or_default();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mimetype",
                "META-INF/container.xml",
                "OEBPS/content.opf",
                "OEBPS/nav.xhtml",
                "OEBPS/cover.xhtml",
                "OEBPS/style.css",
                "OEBPS/chapter-0001.xhtml",
                "OEBPS/chapter-0002.xhtml",
                "OEBPS/chapter-0003.xhtml",
            ]
        );
        assert_eq!(entries[0].data, b"application/epub+zip");
        let text = |i: usize| String::from_utf8(entries[i].data.clone()).unwrap_or_default();
        assert!(text(2).contains("<dc:title>The &lt;Long&gt; Road &amp; 长路</dc:title>"));
        assert!(text(2).contains("<dc:language>zh-CN</dc:language>"));
        assert!(text(2).contains("properties=\"nav\""));
        assert!(text(3).contains("<a href=\"chapter-0002.xhtml\">第二章 山中</a>"));
        assert!(text(7).contains("<p>山中无甲子。</p>\n<p>寒尽不知年。</p>"));
    }
}

//! PDF documents — receipts, decisions, letters — from a small declarative model that later modules fill: a title,
//! an address block, headings, paragraphs, key/value tables and lists, in German or English.
//!
//! Every document embeds its font (DejaVu Sans, shipped in `fonts/`), is tagged for accessibility (headings,
//! paragraphs, tables and lists in the structure tree; footer and page numbers as artifacts; title and language
//! in the metadata — PDF/UA intent) and is validated as PDF/A-2b by krilla on export. The footer of each page
//! carries the page number, the document id and the SHA-256 of the data the document presents (its canonical
//! JSON): a PDF cannot contain its own hash, so callers record the file's hash beside it.

mod layout;
mod render;

use amtsweg_kernel::Lang;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use layout::PAGE_SIZE;

/// A part of a document's body.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(String),
    Paragraph(String),
    /// Label and value per row.
    Facts(Vec<(String, String)>),
    List(Vec<String>),
}

/// What a document says.
#[derive(Debug, Clone)]
pub struct DocumentSpec {
    pub lang: Lang,
    /// Shown as the first heading and recorded as the document title.
    pub title: String,
    /// The sender's lines (the authority), at the top.
    pub sender: Vec<String>,
    /// The recipient's address lines.
    pub recipient: Vec<String>,
    /// The place and date line, e.g. `Leipzig, 30.11.2026`.
    pub dated: String,
    pub blocks: Vec<Block>,
    /// Printed in every footer.
    pub document_id: String,
    /// The data the document presents; its SHA-256 is printed in every footer.
    pub data: Value,
    /// When the document was made (the PDF's creation date).
    pub created: amtsweg_kernel::Timestamp,
}

/// A rendered document.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub pages: usize,
    /// Hex SHA-256 of the canonical JSON of the data.
    pub data_sha256: String,
    /// Hex SHA-256 of the PDF file itself.
    pub pdf_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the shipped font cannot be read")]
    Font,
    #[error("the PDF cannot be written: {0}")]
    Pdf(String),
}

/// The canonical form of the data (RFC 8785): equal data, equal bytes, equal hash.
pub fn canonical_json(value: &Value) -> String {
    amtsweg_kernel::jcs::canonicalize(value)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lays out and writes the document.
pub fn render(spec: &DocumentSpec) -> Result<Rendered, DocumentError> {
    let data_sha256 = sha256_hex(canonical_json(&spec.data).as_bytes());
    let fonts = layout::Fonts::shared()?;
    let pages = layout::lay_out(spec, fonts);
    let count = pages.len();
    let pdf = render::write(spec, fonts, &pages, &data_sha256)?;
    Ok(Rendered {
        pdf_sha256: sha256_hex(&pdf),
        pdf,
        pages: count,
        data_sha256,
    })
}

/// The texts a document needs in each language.
pub(crate) fn footer(lang: Lang, page: usize, pages: usize) -> String {
    match lang {
        Lang::De => format!("Seite {page} von {pages}"),
        Lang::En => format!("Page {page} of {pages}"),
    }
}

pub(crate) fn footer_data(lang: Lang, document_id: &str, data_sha256: &str) -> String {
    match lang {
        Lang::De => format!("Dokument {document_id} · SHA-256 der Daten {data_sha256}"),
        Lang::En => format!("Document {document_id} · SHA-256 of the data {data_sha256}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_sorts_members_at_every_level() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "ü"}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":"ü","d":[1,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn a_long_document_renders_on_several_pages() {
        let mut blocks = vec![Block::Heading("Angaben".into())];
        for i in 0..60 {
            blocks.push(Block::Paragraph(format!(
                "Absatz {i}: Die Stadt Leipzig bestätigt den Eingang Ihres Antrags und bearbeitet ihn zügig."
            )));
        }
        blocks.push(Block::Facts(vec![("Aktenzeichen".into(), "2026-000123".into())]));
        blocks.push(Block::List(vec![
            "Personalausweis".into(),
            "Meldebescheinigung".into(),
        ]));
        let spec = DocumentSpec {
            lang: Lang::De,
            title: "Eingangsbestätigung".into(),
            sender: vec!["Stadt Leipzig".into(), "Ordnungsamt".into()],
            recipient: vec![
                "Erika Mustermann".into(),
                "Markt 1".into(),
                "04109 Leipzig".into(),
            ],
            dated: "Leipzig, 30.11.2026".into(),
            blocks,
            document_id: "d-1".into(),
            data: json!({"case": "2026-000123"}),
            created: amtsweg_kernel::Timestamp::now(),
        };
        let rendered = render(&spec).unwrap();
        assert!(rendered.pages >= 2, "{} pages", rendered.pages);
        assert!(rendered.pdf.starts_with(b"%PDF-"));
        assert_eq!(rendered.data_sha256, sha256_hex(br#"{"case":"2026-000123"}"#));
    }
}

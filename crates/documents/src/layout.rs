//! Lays a document out on A4 pages: lines broken at word boundaries by measured width, blocks kept in reading
//! order, a new page when the current one is full. Each placed line remembers which part of the structure it
//! belongs to, so that the renderer can build the tag tree.

use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use crate::{Block, DocumentError, DocumentSpec};

/// A4 in points.
pub const PAGE_SIZE: (f32, f32) = (595.28, 841.89);
/// 25 mm: the left edge of the DIN 5008 address field.
const LEFT: f32 = 70.87;
/// The DIN 5008 form B address field, from and to (45 mm and 90 mm from the top), in points.
const ADDRESS_FIELD: (f32, f32) = (127.56, 255.12);
/// Its return-address and remarks zone, 17.7 mm.
const RETURN_ZONE: f32 = 50.17;
const RIGHT: f32 = 56.0;
const TOP: f32 = 64.0;
/// Content ends here; the footer lies below.
const BOTTOM: f32 = PAGE_SIZE.1 - 84.0;
const BODY: f32 = 10.5;
const HEADING: f32 = 13.0;
const TITLE: f32 = 16.0;
const SMALL: f32 = 8.5;
const LEADING: f32 = 1.4;
const LABEL_COLUMN: f32 = 170.0;
const INDENT: f32 = 16.0;

pub(crate) static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
pub(crate) static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The shipped fonts, for measuring here and embedding in the renderer.
pub(crate) struct Fonts {
    pub regular: krilla::text::Font,
    pub bold: krilla::text::Font,
}

impl Fonts {
    /// The fonts, read once per process (every document embeds its own subset of them).
    pub(crate) fn shared() -> Result<&'static Fonts, DocumentError> {
        static FONTS: std::sync::OnceLock<Option<Fonts>> = std::sync::OnceLock::new();
        FONTS
            .get_or_init(|| {
                let load = |bytes: &'static [u8]| krilla::text::Font::new(bytes.to_vec().into(), 0);
                Some(Fonts {
                    regular: load(REGULAR)?,
                    bold: load(BOLD)?,
                })
            })
            .as_ref()
            .ok_or(DocumentError::Font)
    }
}

/// Width of `text` at `size` in points (advance widths; no kerning, which only narrows).
pub(crate) fn width(text: &str, bold: bool, size: f32) -> f32 {
    let Ok(font) = FontRef::new(if bold { BOLD } else { REGULAR }) else {
        return 0.0;
    };
    let charmap = font.charmap();
    let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
    text.chars()
        .map(|c| {
            charmap
                .map(c)
                .and_then(|glyph| metrics.advance_width(glyph))
                .unwrap_or(size * 0.5)
        })
        .sum()
}

/// The part of the structure a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Node {
    Sender,
    Recipient,
    Dated,
    Title,
    Block(usize),
    Label { block: usize, row: usize },
    Value { block: usize, row: usize },
    Bullet { block: usize, item: usize },
    Item { block: usize, item: usize },
}

#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub x: f32,
    /// Baseline, from the top of the page.
    pub y: f32,
    pub text: String,
    pub bold: bool,
    pub size: f32,
    pub node: Node,
}

pub(crate) type Page = Vec<Line>;

/// Breaks `text` into lines no wider than `max`.
fn wrap(text: &str, bold: bool, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if width(&candidate, bold, size) <= max {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // A word wider than the line is cut where it must be.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if width(&piece, bold, size) > max && piece.chars().count() > 1 {
                piece.pop();
                lines.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        current = piece;
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

struct Cursor {
    pages: Vec<Page>,
    y: f32,
}

impl Cursor {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Room for `height` more, or a new page.
    fn room(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Vec::new());
            self.y = TOP;
        }
    }

    fn line(&mut self, x: f32, text: String, bold: bool, size: f32, node: Node) {
        let step = size * LEADING;
        self.room(step);
        self.y += step;
        let y = self.y;
        self.page().push(Line {
            x,
            y,
            text,
            bold,
            size,
            node,
        });
    }

    fn gap(&mut self, height: f32) {
        self.y += height;
    }
}

pub(crate) fn lay_out(spec: &DocumentSpec, _fonts: &Fonts) -> Vec<Page> {
    let content = PAGE_SIZE.0 - LEFT - RIGHT;
    let mut cursor = Cursor {
        pages: vec![Vec::new()],
        y: TOP - BODY,
    };
    for text in &spec.sender {
        cursor.line(LEFT, text.clone(), false, SMALL, Node::Sender);
    }
    // DIN 5008 form B: the address field of a window envelope lies 45–90 mm from the top, 25 mm from the left;
    // its upper 17.7 mm hold the return address, the lower 27.3 mm the recipient.
    cursor.y = cursor
        .y
        .max(ADDRESS_FIELD.0 + RETURN_ZONE - SMALL * LEADING * 1.2);
    if !spec.sender.is_empty() {
        cursor.line(LEFT, spec.sender.join(", "), false, SMALL * 0.85, Node::Sender);
    }
    cursor.y = cursor.y.max(ADDRESS_FIELD.0 + RETURN_ZONE);
    for text in spec.recipient.iter().take(6) {
        cursor.line(LEFT, text.clone(), false, BODY, Node::Recipient);
    }
    cursor.y = cursor.y.max(ADDRESS_FIELD.1);
    cursor.gap(BODY * 2.0);
    for text in wrap(&spec.dated, false, BODY, content) {
        let x = LEFT + content - width(&text, false, BODY);
        cursor.line(x, text, false, BODY, Node::Dated);
    }
    cursor.gap(BODY);
    for text in wrap(&spec.title, true, TITLE, content) {
        cursor.line(LEFT, text, true, TITLE, Node::Title);
    }
    cursor.gap(BODY * 0.6);
    for (index, block) in spec.blocks.iter().enumerate() {
        match block {
            Block::Heading(text) => {
                cursor.gap(BODY * 0.6);
                // A heading is not left alone at the bottom of a page.
                cursor.room(HEADING * LEADING + BODY * LEADING * 2.0);
                for line in wrap(text, true, HEADING, content) {
                    cursor.line(LEFT, line, true, HEADING, Node::Block(index));
                }
            }
            Block::Paragraph(text) => {
                for line in wrap(text, false, BODY, content) {
                    cursor.line(LEFT, line, false, BODY, Node::Block(index));
                }
                cursor.gap(BODY * 0.5);
            }
            Block::Facts(rows) => {
                for (row, (label, value)) in rows.iter().enumerate() {
                    let labels = wrap(label, true, BODY, LABEL_COLUMN - 8.0);
                    let values = wrap(value, false, BODY, content - LABEL_COLUMN);
                    let height = labels.len().max(values.len()) as f32 * BODY * LEADING;
                    cursor.room(height);
                    let top = cursor.y;
                    for line in labels {
                        cursor.line(LEFT, line, true, BODY, Node::Label { block: index, row });
                    }
                    let after_labels = cursor.y;
                    cursor.y = top;
                    for line in values {
                        cursor.line(
                            LEFT + LABEL_COLUMN,
                            line,
                            false,
                            BODY,
                            Node::Value { block: index, row },
                        );
                    }
                    cursor.y = cursor.y.max(after_labels);
                }
                cursor.gap(BODY * 0.5);
            }
            Block::List(items) => {
                for (item, text) in items.iter().enumerate() {
                    let lines = wrap(text, false, BODY, content - INDENT);
                    cursor.room(BODY * LEADING);
                    let top = cursor.y;
                    cursor.line(LEFT, "•".into(), false, BODY, Node::Bullet { block: index, item });
                    cursor.y = top;
                    for line in lines {
                        cursor.line(
                            LEFT + INDENT,
                            line,
                            false,
                            BODY,
                            Node::Item { block: index, item },
                        );
                    }
                }
                cursor.gap(BODY * 0.5);
            }
        }
    }
    cursor.pages.retain(|page| !page.is_empty());
    if cursor.pages.is_empty() {
        cursor.pages.push(Vec::new());
    }
    cursor.pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_words_within_the_width() {
        let text = "Die Stadt Leipzig bestätigt den Eingang Ihres Antrags auf einen Bewohnerparkausweis.";
        let lines = wrap(text, false, BODY, 150.0);
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| width(l, false, BODY) <= 150.0));
        assert_eq!(lines.join(" "), text);
        let long = wrap("Donaudampfschifffahrtsgesellschaftskapitän", false, BODY, 60.0);
        assert!(long.len() > 1 && long.iter().all(|l| width(l, false, BODY) <= 60.0));
    }
}

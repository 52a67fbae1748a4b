//! Writes laid-out pages with krilla: every line of content as a tagged span in the structure tree, the footer as
//! a pagination artifact, and the whole validated as PDF/A-2b and PDF/UA-1 on export.

use std::collections::HashMap;
use std::num::NonZeroU16;

use chrono::{Datelike, Timelike};
use krilla::configure::{Accessibility, Archival, ConfigurationBuilder};
use krilla::destination::XyzDestination;
use krilla::geom::Point;
use krilla::metadata::{DateTime, Metadata};
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::tagging::{
    Artifact, ArtifactType, ContentTag, Identifier, ListNumbering, SpanTag, TableHeaderScope, Tag, TagGroup,
    TagTree,
};
use krilla::text::TextDirection;
use krilla::{Document, SerializeSettings};

use crate::layout::{Fonts, Node, PAGE_SIZE, Page};
use crate::{Block, DocumentError, DocumentSpec, footer, footer_data};

const FOOTER_SIZE: f32 = 7.0;

pub(crate) fn write(
    spec: &DocumentSpec,
    fonts: &Fonts,
    pages: &[Page],
    data_sha256: &str,
) -> Result<Vec<u8>, DocumentError> {
    let configuration = ConfigurationBuilder::new()
        .with_archival_validator(Archival::A2_B)
        .with_accessibility_validator(Accessibility::UA1)
        .finish()
        .map_err(|err| DocumentError::Pdf(format!("{err:?}")))?;
    let mut document = Document::new_with(SerializeSettings {
        configuration,
        enable_tagging: true,
        ..SerializeSettings::default()
    });
    let mut spans: HashMap<Node, Vec<Identifier>> = HashMap::new();
    let size = PageSettings::from_wh(PAGE_SIZE.0, PAGE_SIZE.1)
        .ok_or_else(|| DocumentError::Pdf("page size".into()))?;
    let data_line = footer_data(spec.lang, &spec.document_id, data_sha256);
    for (index, lines) in pages.iter().enumerate() {
        let mut page = document.start_page_with(size.clone());
        let mut surface = page.surface();
        for line in lines {
            let id = surface.start_tagged(ContentTag::Span(SpanTag::empty()));
            let font = if line.bold { &fonts.bold } else { &fonts.regular };
            surface.draw_text(
                Point::from_xy(line.x, line.y),
                font.clone(),
                line.size,
                &line.text,
                false,
                TextDirection::Auto,
            );
            surface.end_tagged();
            spans.entry(line.node).or_default().push(id);
        }
        surface.start_tagged(ContentTag::Artifact(Artifact::new(
            ArtifactType::PaginationOther,
            None,
        )));
        let bottom = PAGE_SIZE.1 - 40.0;
        surface.draw_text(
            Point::from_xy(70.0, bottom),
            fonts.regular.clone(),
            FOOTER_SIZE,
            &data_line,
            false,
            TextDirection::Auto,
        );
        let number = footer(spec.lang, index + 1, pages.len());
        let width = crate::layout::width(&number, false, FOOTER_SIZE);
        surface.draw_text(
            Point::from_xy(PAGE_SIZE.0 - 56.0 - width, bottom + 11.0),
            fonts.regular.clone(),
            FOOTER_SIZE,
            &number,
            false,
            TextDirection::Auto,
        );
        surface.end_tagged();
        surface.finish();
        page.finish();
    }
    document.set_outline(outline(spec, pages));
    document.set_tag_tree(tag_tree(spec, &mut spans));
    let created = spec.created.utc();
    let date = DateTime::new(u16::try_from(created.year()).unwrap_or(2000))
        .month(u8::try_from(created.month()).unwrap_or(1))
        .day(u8::try_from(created.day()).unwrap_or(1))
        .hour(u8::try_from(created.hour()).unwrap_or(0))
        .minute(u8::try_from(created.minute()).unwrap_or(0))
        .second(u8::try_from(created.second()).unwrap_or(0))
        .utc_offset_hour(0)
        .utc_offset_minute(0);
    document.set_metadata(
        Metadata::new()
            .title(spec.title.clone())
            .language(spec.lang.code().to_owned())
            .creator("Amtsweg".to_owned())
            .document_id(spec.document_id.clone())
            .creation_date(date),
    );
    document
        .finish()
        .map_err(|err| DocumentError::Pdf(format!("{err:?}")))
}

/// Bookmarks: the title, and under it each heading, pointing at the page and line it starts on.
fn outline(spec: &DocumentSpec, pages: &[Page]) -> Outline {
    let start_of = |node: Node| {
        pages.iter().enumerate().find_map(|(index, lines)| {
            lines.iter().find(|line| line.node == node).map(|line| {
                XyzDestination::new(index, Point::from_xy(line.x, (line.y - line.size * 1.2).max(0.0)))
            })
        })
    };
    let mut outline = Outline::new();
    let Some(top) = start_of(Node::Title) else {
        return outline;
    };
    let mut title = OutlineNode::new(spec.title.clone(), top).with_open(true);
    for (index, block) in spec.blocks.iter().enumerate() {
        if let (Block::Heading(text), Some(destination)) = (block, start_of(Node::Block(index))) {
            title.push_child(OutlineNode::new(text.clone(), destination));
        }
    }
    outline.push_child(title);
    outline
}

/// A group of the spans of `node`, if it has any (a group without children is not allowed).
fn group_of(
    tag: impl Into<krilla::tagging::TagKind>,
    spans: &mut HashMap<Node, Vec<Identifier>>,
    node: Node,
) -> Option<TagGroup> {
    let ids = spans.remove(&node)?;
    let mut group = TagGroup::new(tag);
    for id in ids {
        group.push(id);
    }
    Some(group)
}

/// The structure in reading order: sender, address, date, title, then the blocks.
fn tag_tree(spec: &DocumentSpec, spans: &mut HashMap<Node, Vec<Identifier>>) -> TagTree {
    let mut tree = TagTree::new();
    let lang = Some(spec.lang.code().to_owned());
    let mut root = TagGroup::new(Tag::Part.with_lang(lang));
    for node in [Node::Sender, Node::Recipient, Node::Dated] {
        if let Some(group) = group_of(Tag::P, spans, node) {
            root.push(group);
        }
    }
    let level = |n: u16| NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN);
    if let Some(group) = group_of(Tag::Hn(level(1), Some(spec.title.clone())), spans, Node::Title) {
        root.push(group);
    }
    for (index, block) in spec.blocks.iter().enumerate() {
        match block {
            Block::Heading(text) => {
                if let Some(group) =
                    group_of(Tag::Hn(level(2), Some(text.clone())), spans, Node::Block(index))
                {
                    root.push(group);
                }
            }
            Block::Paragraph(_) => {
                if let Some(group) = group_of(Tag::P, spans, Node::Block(index)) {
                    root.push(group);
                }
            }
            Block::Facts(rows) => {
                let mut table = TagGroup::new(Tag::Table);
                for row in 0..rows.len() {
                    let mut tr = TagGroup::new(Tag::TR);
                    if let Some(label) = group_of(
                        Tag::TH(TableHeaderScope::Row),
                        spans,
                        Node::Label { block: index, row },
                    ) {
                        tr.push(label);
                    }
                    if let Some(value) = group_of(Tag::TD, spans, Node::Value { block: index, row }) {
                        tr.push(value);
                    }
                    table.push(tr);
                }
                root.push(table);
            }
            Block::List(items) => {
                let mut list = TagGroup::new(Tag::L(ListNumbering::Disc));
                for item in 0..items.len() {
                    let mut li = TagGroup::new(Tag::LI);
                    if let Some(label) = group_of(Tag::Lbl, spans, Node::Bullet { block: index, item }) {
                        li.push(label);
                    }
                    if let Some(body) = group_of(Tag::LBody, spans, Node::Item { block: index, item }) {
                        li.push(body);
                    }
                    list.push(li);
                }
                root.push(list);
            }
        }
    }
    tree.push(root);
    tree
}

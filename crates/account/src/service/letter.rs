//! The information letter (Art. 15 GDPR) as a PDF: what the account holds, in the owner's language, with the
//! SHA-256 of the full export it summarises in every footer. The letter is kept as a file of the account, so the
//! file's own hash is recorded beside it.

use amtsweg_audit::Outcome;
use amtsweg_documents::{Block, DocumentSpec};
use amtsweg_files::{FileView, UploadPolicy};
use amtsweg_kernel::Lang;
use serde_json::Value;

use super::login::Realm;
use super::{AccountService, Meta, actor_for, audit};
use crate::error::AccountError;

/// A generated letter and where its copy is kept.
pub struct InformationLetter {
    pub pdf: Vec<u8>,
    pub file: FileView,
    /// Hex SHA-256 of the canonical JSON of the export the letter summarises.
    pub data_sha256: String,
}

const LETTERS: UploadPolicy = UploadPolicy {
    allowed: &["application/pdf"],
    owner_module: "documents",
    expires: false,
};

fn text(lang: Lang, de: &str, en: &str) -> String {
    match lang {
        Lang::De => de.to_owned(),
        Lang::En => en.to_owned(),
    }
}

fn count(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len(),
        Value::Object(members) => members.values().map(count).sum(),
        Value::Null => 0,
        _ => 1,
    }
}

fn date(lang: Lang, at: amtsweg_kernel::Timestamp) -> String {
    match lang {
        Lang::De => at.format("%d.%m.%Y").to_string(),
        Lang::En => at.format("%-d %B %Y").to_string(),
    }
}

fn field<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The letter's content from the export.
fn letter(lang: Lang, export: &Value, document_id: &str, now: amtsweg_kernel::Timestamp) -> DocumentSpec {
    let account = &export["sections"]["account"]["account"];
    let profile = &export["sections"]["account"]["profile"];
    let name = field(account, "/name").unwrap_or_default().to_owned();
    let mut recipient = vec![name.clone()];
    let street = [
        field(profile, "/address/street"),
        field(profile, "/address/house_number"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let city = [
        field(profile, "/address/postal_code"),
        field(profile, "/address/city"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    recipient.extend([street, city].into_iter().filter(|line| !line.is_empty()));
    let yes_no = |on: bool| match (lang, on) {
        (Lang::De, true) => "eingerichtet".to_owned(),
        (Lang::De, false) => "nicht eingerichtet".to_owned(),
        (Lang::En, true) => "set up".to_owned(),
        (Lang::En, false) => "not set up".to_owned(),
    };
    let facts = vec![
        (text(lang, "Name", "Name"), name),
        (
            text(lang, "E-Mail-Adresse", "E-mail address"),
            field(account, "/email").unwrap_or("—").to_owned(),
        ),
        (
            text(lang, "Konto angelegt", "Account created"),
            field(account, "/created_at").unwrap_or("—").to_owned(),
        ),
        (
            text(lang, "Letzte Anmeldung", "Last login"),
            field(account, "/last_login_at").unwrap_or("—").to_owned(),
        ),
        (
            text(lang, "Zwei-Faktor-Anmeldung", "Two-factor login"),
            yes_no(account["totp_enabled"].as_bool().unwrap_or(false)),
        ),
        (
            text(lang, "Konto-Kennung", "Account id"),
            field(export, "/account_id").unwrap_or_default().to_owned(),
        ),
    ];
    let sections: Vec<String> = export["sections"]
        .as_object()
        .map(|sections| {
            sections
                .iter()
                .map(|(name, content)| match lang {
                    Lang::De => format!("{name}: {} Angaben", count(content)),
                    Lang::En => format!("{name}: {} entries", count(content)),
                })
                .collect()
        })
        .unwrap_or_default();
    let consents: Vec<(String, String)> = export["sections"]["account"]["consents"]
        .as_array()
        .map(|consents| {
            consents
                .iter()
                .map(|c| {
                    let recipient = format!(
                        "{} {}",
                        c["recipient_kind"].as_str().unwrap_or_default(),
                        c["recipient_id"].as_str().unwrap_or_default()
                    );
                    let state = match (lang, c["revoked_at"].is_string()) {
                        (Lang::De, false) => "erteilt",
                        (Lang::De, true) => "widerrufen",
                        (Lang::En, false) => "granted",
                        (Lang::En, true) => "revoked",
                    };
                    (
                        recipient,
                        format!(
                            "{state}: {}",
                            c["attributes"]
                                .as_array()
                                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default()
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut blocks = vec![
        Block::Paragraph(text(
            lang,
            "Sie haben Auskunft über die Daten verlangt, die zu Ihrem Bürgerkonto gespeichert sind (Art. 15 DSGVO). Dieses Schreiben fasst sie zusammen; die vollständigen Daten erhalten Sie maschinenlesbar unter /api/v1/me/export.",
            "You asked which data is stored about your citizen account (Art. 15 GDPR). This letter summarises it; you get the complete data in machine-readable form at /api/v1/me/export.",
        )),
        Block::Heading(text(lang, "Ihr Konto", "Your account")),
        Block::Facts(facts),
        Block::Heading(text(
            lang,
            "Gespeicherte Daten nach Bereichen",
            "Stored data by area",
        )),
        Block::List(sections),
    ];
    if !consents.is_empty() {
        blocks.push(Block::Heading(text(lang, "Einwilligungen", "Consents")));
        blocks.push(Block::Facts(consents));
    }
    blocks.push(Block::Heading(text(lang, "Prüfsumme", "Checksum")));
    blocks.push(Block::Paragraph(text(
        lang,
        "Die Fußzeile jeder Seite nennt den SHA-256 der zusammengefassten Daten in kanonischer Form (JSON, Felder nach Namen sortiert, ohne Leerraum). So lässt sich prüfen, dass dieses Schreiben zu genau diesem Datenstand gehört.",
        "The footer of each page gives the SHA-256 of the summarised data in canonical form (JSON, members sorted by name, no whitespace), so it can be checked that this letter belongs to exactly this state of the data.",
    )));
    DocumentSpec {
        lang,
        title: text(
            lang,
            "Auskunft nach Art. 15 DSGVO",
            "Information under Art. 15 GDPR",
        ),
        sender: vec![text(lang, "Bürgerkonto Amtsweg", "Amtsweg citizen account")],
        recipient,
        dated: date(lang, now),
        blocks,
        document_id: document_id.to_owned(),
        data: export.clone(),
        created: now,
    }
}

impl AccountService {
    /// Writes the information letter, keeps it as a file of the account, and answers it.
    pub async fn information_letter(
        &self,
        account_id: &str,
        meta: Meta,
    ) -> Result<InformationLetter, AccountError> {
        let export = self.export(Realm::Citizen, account_id, meta.clone()).await?;
        let account = self.account_row(account_id).await?;
        let now = self.now();
        let document_id = amtsweg_kernel::id::new_id();
        let spec = letter(account.lang(), &export, &document_id, now);
        let rendered = tokio::task::spawn_blocking(move || amtsweg_documents::render(&spec))
            .await
            .map_err(|err| AccountError::Internal(err.to_string()))?
            .map_err(|err| AccountError::Internal(err.to_string()))?;
        let name = match account.lang() {
            Lang::De => "Auskunft-Art-15-DSGVO.pdf",
            Lang::En => "Information-Art-15-GDPR.pdf",
        };
        let file = self
            .files
            .store_bytes(rendered.pdf.clone().into(), name, account_id, LETTERS)
            .await
            .map_err(|err| AccountError::Internal(err.to_string()))?;
        let (id, file_id) = (account_id.to_owned(), file.id.clone());
        self.db
            .write(move |conn| {
                audit(
                    conn,
                    &actor_for(Realm::Citizen, &id, &meta),
                    "account.information_letter",
                    Some(("file", file_id.as_str())),
                    Outcome::Success,
                    now,
                )
            })
            .await?;
        Ok(InformationLetter {
            pdf: rendered.pdf,
            file,
            data_sha256: rendered.data_sha256,
        })
    }
}

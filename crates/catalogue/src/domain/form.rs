//! The application form: a JSON Schema compiled once per procedure version, and violations translated into
//! pointers, stable codes and German and English messages.

use amtsweg_kernel::{FieldError, Text};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

pub struct CompiledForm {
    validator: Validator,
}

impl std::fmt::Debug for CompiledForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompiledForm")
    }
}

impl CompiledForm {
    /// Checks the schema against the 2020-12 meta-schema and compiles it, with `format` asserted.
    pub fn compile(schema: &Value) -> Result<CompiledForm, String> {
        if let Err(err) = jsonschema::draft202012::meta::validate(schema) {
            let at = err.instance_path().as_str().to_owned();
            return Err(if at.is_empty() {
                err.to_string()
            } else {
                format!("{err} (at {at})")
            });
        }
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|err| err.to_string())?;
        Ok(CompiledForm { validator })
    }

    pub fn is_valid(&self, payload: &Value) -> bool {
        self.validator.is_valid(payload)
    }

    /// Every violation of the payload, in document order.
    pub fn violations(&self, payload: &Value) -> Vec<FieldError> {
        let mut found: Vec<FieldError> = Vec::new();
        for error in self.validator.iter_errors(payload) {
            for violation in describe(&error) {
                if !found.contains(&violation) {
                    found.push(violation);
                }
            }
        }
        found
    }
}

fn child(pointer: &str, name: &str) -> String {
    format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"))
}

fn describe(error: &ValidationError<'_>) -> Vec<FieldError> {
    let at = error.instance_path().as_str().to_owned();
    let one = |code: &'static str, message: Text| vec![FieldError::at_pointer(at.clone(), code, message)];
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            vec![FieldError::at_pointer(
                child(&at, &name),
                "required",
                Text::fixed("Dieses Feld ist erforderlich.", "This field is required."),
            )]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                FieldError::at_pointer(
                    child(&at, name),
                    "unknown_field",
                    Text::fixed(
                        "Dieses Feld ist im Formular nicht vorgesehen.",
                        "This field is not part of the form.",
                    ),
                )
            })
            .collect(),
        ValidationErrorKind::Type { kind } => {
            let (de, en) = expected_type(kind);
            one(
                "invalid_type",
                Text::new(format!("Erwartet wird {de}."), format!("Expected {en}.")),
            )
        }
        ValidationErrorKind::MinLength { limit } => one(
            "too_short",
            Text::new(
                format!("Bitte mindestens {limit} Zeichen eingeben."),
                format!("Enter at least {limit} characters."),
            ),
        ),
        ValidationErrorKind::MaxLength { limit } => one(
            "too_long",
            Text::new(
                format!("Höchstens {limit} Zeichen sind erlaubt."),
                format!("At most {limit} characters are allowed."),
            ),
        ),
        ValidationErrorKind::Minimum { limit } => one(
            "too_small",
            Text::new(
                format!("Der Wert muss mindestens {limit} sein."),
                format!("The value must be at least {limit}."),
            ),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => one(
            "too_small",
            Text::new(
                format!("Der Wert muss größer als {limit} sein."),
                format!("The value must be greater than {limit}."),
            ),
        ),
        ValidationErrorKind::Maximum { limit } => one(
            "too_large",
            Text::new(
                format!("Der Wert darf höchstens {limit} sein."),
                format!("The value must be at most {limit}."),
            ),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => one(
            "too_large",
            Text::new(
                format!("Der Wert muss kleiner als {limit} sein."),
                format!("The value must be less than {limit}."),
            ),
        ),
        ValidationErrorKind::Pattern { .. } => one(
            "invalid_format",
            Text::fixed(
                "Die Eingabe hat nicht das erwartete Format.",
                "The input does not have the expected format.",
            ),
        ),
        ValidationErrorKind::Format { format } => {
            let (de, en) = format_name(format);
            one(
                "invalid_format",
                Text::new(format!("Erwartet wird {de}."), format!("Expected {en}.")),
            )
        }
        ValidationErrorKind::Enum { options } => {
            let allowed = options
                .as_array()
                .map(|values| values.iter().map(show).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            one(
                "not_allowed",
                Text::new(
                    format!("Erlaubt sind: {allowed}."),
                    format!("Allowed values are: {allowed}."),
                ),
            )
        }
        ValidationErrorKind::Constant { expected_value } => {
            let expected = show(expected_value);
            one(
                "not_allowed",
                Text::new(
                    format!("Erwartet wird {expected}."),
                    format!("Expected {expected}."),
                ),
            )
        }
        ValidationErrorKind::MinItems { limit } => one(
            "too_few_items",
            Text::new(
                format!("Mindestens {limit} Einträge sind nötig."),
                format!("At least {limit} entries are needed."),
            ),
        ),
        ValidationErrorKind::MaxItems { limit } => one(
            "too_many_items",
            Text::new(
                format!("Höchstens {limit} Einträge sind erlaubt."),
                format!("At most {limit} entries are allowed."),
            ),
        ),
        ValidationErrorKind::UniqueItems => one(
            "duplicate_items",
            Text::fixed(
                "Einträge dürfen sich nicht wiederholen.",
                "Entries must not repeat.",
            ),
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => one(
            "not_a_multiple",
            Text::new(
                format!("Der Wert muss ein Vielfaches von {multiple_of} sein."),
                format!("The value must be a multiple of {multiple_of}."),
            ),
        ),
        _ => one(
            "invalid_value",
            Text::fixed("Der Wert ist ungültig.", "The value is invalid."),
        ),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn type_name(kind: &jsonschema::JsonType) -> (&'static str, &'static str) {
    use jsonschema::JsonType;
    match kind {
        JsonType::String => ("ein Text", "a text"),
        JsonType::Integer => ("eine ganze Zahl", "a whole number"),
        JsonType::Number => ("eine Zahl", "a number"),
        JsonType::Boolean => ("ja oder nein", "yes or no"),
        JsonType::Object => ("eine Gruppe von Angaben", "a group of fields"),
        JsonType::Array => ("eine Liste", "a list"),
        JsonType::Null => ("kein Wert", "no value"),
    }
}

fn expected_type(kind: &TypeKind) -> (String, String) {
    match kind {
        TypeKind::Single(single) => {
            let (de, en) = type_name(single);
            (de.to_owned(), en.to_owned())
        }
        TypeKind::Multiple(set) => {
            let names: Vec<_> = set.iter().map(|t| type_name(&t)).collect();
            (
                names.iter().map(|(de, _)| *de).collect::<Vec<_>>().join(" oder "),
                names.iter().map(|(_, en)| *en).collect::<Vec<_>>().join(" or "),
            )
        }
    }
}

fn format_name(format: &str) -> (String, String) {
    match format {
        "date" => ("ein Datum (JJJJ-MM-TT)".into(), "a date (YYYY-MM-DD)".into()),
        "date-time" => ("ein Zeitpunkt (RFC 3339)".into(), "a timestamp (RFC 3339)".into()),
        "email" => ("eine E-Mail-Adresse".into(), "an e-mail address".into()),
        "uri" => ("eine Internetadresse".into(), "a URI".into()),
        other => (format!("das Format {other}"), format!("the format {other}")),
    }
}

/// The schema of the property a pointer names, following `properties` (and `items` for array indices written as
/// `-`); `None` when the schema does not declare it.
pub fn property_schema<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let rest = pointer.strip_prefix('/')?;
    let mut current = schema;
    for token in rest.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        current = current.get("properties")?.get(&token)?;
    }
    Some(current)
}

/// The JSON types a property schema allows.
pub fn declared_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(single)) => vec![single.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Pointers of every leaf property (anything that is not an object with `properties`), in schema order.
pub fn leaf_pointers(schema: &Value) -> Vec<String> {
    fn walk(schema: &Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, child_schema) in properties {
                let pointer = child(prefix, name);
                if child_schema.get("properties").is_some() {
                    walk(child_schema, &pointer, out);
                } else {
                    out.push(pointer);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form() -> CompiledForm {
        CompiledForm::compile(&json!({
            "$schema": DRAFT_2020_12,
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "geburtsdatum", "anzahl"],
            "properties": {
                "name": {"type": "string", "minLength": 2, "maxLength": 10},
                "geburtsdatum": {"type": "string", "format": "date"},
                "anzahl": {"type": "integer", "minimum": 1, "maximum": 3},
                "art": {"type": "string", "enum": ["einfach", "erweitert"]},
                "adresse": {"type": "object", "required": ["plz"], "properties": {
                    "plz": {"type": "string", "pattern": "^[0-9]{5}$"}
                }}
            }
        }))
        .unwrap()
    }

    #[test]
    fn every_violation_is_reported_with_its_pointer() {
        let errors = form().violations(&json!({
            "name": "A",
            "anzahl": 7,
            "art": "kurz",
            "adresse": {"plz": "1234"},
            "extra": true
        }));
        let mut got: Vec<_> = errors
            .iter()
            .map(|e| (e.pointer.clone().unwrap(), e.code.to_string()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("/adresse/plz".into(), "invalid_format".into()),
                ("/anzahl".into(), "too_large".into()),
                ("/art".into(), "not_allowed".into()),
                ("/extra".into(), "unknown_field".into()),
                ("/geburtsdatum".into(), "required".into()),
                ("/name".into(), "too_short".into()),
            ]
        );
        let art = errors
            .iter()
            .find(|e| e.pointer.as_deref() == Some("/art"))
            .unwrap();
        assert_eq!(art.message.en, "Allowed values are: einfach, erweitert.");
        assert_eq!(art.message.de, "Erlaubt sind: einfach, erweitert.");
    }

    #[test]
    fn formats_are_asserted() {
        let errors = form().violations(&json!({"name": "Anna", "anzahl": 1, "geburtsdatum": "31.12.1990"}));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, "invalid_format");
        assert!(form().is_valid(&json!({"name": "Anna", "anzahl": 1, "geburtsdatum": "1990-12-31"})));
    }

    #[test]
    fn an_invalid_schema_is_refused() {
        let err = CompiledForm::compile(&json!({"type": "objekt"})).unwrap_err();
        assert!(err.contains("objekt"), "{err}");
    }

    #[test]
    fn leaf_pointers_follow_nested_objects() {
        let schema = json!({"properties": {"a": {"type": "string"}, "b": {"properties": {"c": {}}}}});
        assert_eq!(leaf_pointers(&schema), vec!["/a", "/b/c"]);
        assert_eq!(property_schema(&schema, "/b/c"), Some(&json!({})));
        assert_eq!(property_schema(&schema, "/x"), None);
    }
}

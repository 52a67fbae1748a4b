//! The form data of an application read through its procedure's form: fields with their labels in the form's
//! order, and values written out for people.

use amtsweg_catalogue::LoadedProcedure;
use amtsweg_kernel::Lang;
use serde_json::Value;

/// A field of the data with its label; fields the form does not name follow the named ones, labelled by their
/// pointer, so nothing submitted is left out.
pub(crate) struct Field {
    pub pointer: String,
    pub label: String,
    pub value: Value,
}

pub(crate) fn fields(procedure: &LoadedProcedure, data: &Value, lang: Lang) -> Vec<Field> {
    let hints = &procedure.procedure.form.ui;
    let mut found: Vec<Field> = hints
        .iter()
        .filter_map(|hint| {
            data.pointer(&hint.field).map(|value| Field {
                pointer: hint.field.clone(),
                label: hint.label.get(lang).to_owned(),
                value: value.clone(),
            })
        })
        .collect();
    let mut rest = Vec::new();
    leaves(data, String::new(), &mut rest);
    for pointer in rest {
        let named = hints
            .iter()
            .any(|hint| pointer == hint.field || pointer.starts_with(&format!("{}/", hint.field)));
        if !named && let Some(value) = data.pointer(&pointer) {
            found.push(Field {
                label: pointer.clone(),
                value: value.clone(),
                pointer,
            });
        }
    }
    found
}

/// The JSON Pointers of the leaves of `value` (of what a merge patch sets or removes).
pub(crate) fn leaves(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(members) if !members.is_empty() => {
            for (name, member) in members {
                let token = name.replace('~', "~0").replace('/', "~1");
                leaves(member, format!("{prefix}/{token}"), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// A value as a person reads it: text as it is, yes/no, numbers, lists joined.
pub(crate) fn display(value: &Value, lang: Lang) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Bool(true) => match lang {
            Lang::De => "Ja".into(),
            Lang::En => "Yes".into(),
        },
        Value::Bool(false) => match lang {
            Lang::De => "Nein".into(),
            Lang::En => "No".into(),
        },
        Value::Null => "–".into(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| display(item, lang))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(_) => value.to_string(),
    }
}

/// Sets `value` at `pointer`, making the objects on the way; answers false where something other than an object
/// is in the way.
pub(crate) fn set(data: &mut Value, pointer: &str, value: Value) -> bool {
    let mut target = data;
    let tokens: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = tokens.split_last() else {
        return false;
    };
    for token in path {
        let Value::Object(members) = target else {
            return false;
        };
        target = members
            .entry(token.clone())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    match target {
        Value::Object(members) => {
            members.insert(last.clone(), value);
            true
        }
        _ => false,
    }
}

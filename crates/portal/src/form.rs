//! An application form generated from the procedure's JSON Schema and its UI hints: the fields in the hints' order
//! (then any the hints leave out), with labels, help, widgets and the problems the API reported for each; and the
//! way back, from the posted form to a JSON merge patch of the application's data.

use amtsweg_catalogue::domain::form::{declared_types, leaf_pointers, property_schema};
use amtsweg_catalogue::domain::procedure::{Procedure, Widget};
use amtsweg_kernel::Lang;
use serde_json::{Map, Value, json};

/// The HTML id of the field a JSON pointer names.
pub(crate) fn field_id(pointer: &str) -> String {
    let mut id = String::from("f");
    for c in pointer.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        });
    }
    id
}

fn widget_of(schema: &Value, hint: Option<Widget>) -> &'static str {
    if let Some(widget) = hint {
        return match widget {
            Widget::Text => "text",
            Widget::Textarea => "textarea",
            Widget::Number => "number",
            Widget::Date => "date",
            Widget::Email => "email",
            Widget::Tel => "tel",
            Widget::Select => "select",
            Widget::Radio => "radio",
            Widget::Checkbox => "checkbox",
            Widget::List => "list",
        };
    }
    let types = declared_types(schema);
    if schema.get("enum").is_some() {
        "select"
    } else if types.contains(&"boolean") {
        "checkbox"
    } else if types.contains(&"integer") || types.contains(&"number") {
        "number"
    } else if types.contains(&"array") {
        "list"
    } else {
        match schema.get("format").and_then(Value::as_str) {
            Some("date") => "date",
            Some("email") => "email",
            _ if schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|n| n > 200) =>
            {
                "textarea"
            }
            _ => "text",
        }
    }
}

/// Whether the property is listed as required by its parent object.
fn required(schema: &Value, pointer: &str) -> bool {
    let Some((parent, name)) = pointer.rsplit_once('/') else {
        return false;
    };
    let parent_schema = if parent.is_empty() {
        Some(schema)
    } else {
        property_schema(schema, parent)
    };
    parent_schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(name)))
}

fn display(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| display(Some(i)))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

fn title_case(pointer: &str) -> String {
    let last = pointer.rsplit('/').next().unwrap_or(pointer).replace('_', " ");
    let mut chars = last.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => last,
    }
}

/// The fields of the form for the template, each with its value from `data` and its problems from `errors`.
/// Problems at an object (a whole group missing) are shown at its first field; `prefilled` names the fields
/// taken from the citizen's profile (shown as such).
pub(crate) fn fields(
    procedure: &Procedure,
    data: &Value,
    prefilled: &[String],
    errors: &[(String, String)],
    lang: Lang,
) -> Vec<Value> {
    let schema = &procedure.form.schema;
    let mut order: Vec<String> = procedure.form.ui.iter().map(|h| h.field.clone()).collect();
    for pointer in leaf_pointers(schema) {
        if !order.contains(&pointer) {
            order.push(pointer);
        }
    }
    let mut claimed = vec![false; errors.len()];
    order
        .iter()
        .filter_map(|pointer| {
            let property = property_schema(schema, pointer)?;
            let hint = procedure.form.ui.iter().find(|h| &h.field == pointer);
            let widget = widget_of(property, hint.and_then(|h| h.widget));
            let value = display(data.pointer(pointer));
            let mut messages = Vec::new();
            for (i, (at, message)) in errors.iter().enumerate() {
                let here = at == pointer || (!claimed[i] && pointer.starts_with(&format!("{at}/")));
                if here && !claimed[i] {
                    claimed[i] = true;
                    messages.push(message.clone());
                }
            }
            let options: Vec<Value> = property
                .get("enum")
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .map(|v| {
                            let text = display(Some(v));
                            let label = hint
                                .and_then(|h| h.options.get(&text))
                                .map_or_else(|| text.clone(), |l| l.get(lang).to_owned());
                            json!({"value": text, "label": label, "selected": text == value})
                        })
                        .collect()
                })
                .or_else(|| {
                    // A bounded integer chosen from a list, e.g. 1 or 2 years.
                    let min = property.get("minimum")?.as_i64()?;
                    let max = property.get("maximum")?.as_i64()?;
                    (widget == "select" || widget == "radio")
                        .then_some(())
                        .filter(|()| max - min < 50)?;
                    Some(
                        (min..=max)
                            .map(|n| {
                                json!({"value": n.to_string(), "label": n.to_string(), "selected": n.to_string() == value})
                            })
                            .collect(),
                    )
                })
                .unwrap_or_default();
            let integer = declared_types(property).contains(&"integer");
            let prefilled = prefilled.iter().any(|p| p == pointer);
            Some(json!({
                "pointer": pointer,
                "id": field_id(pointer),
                "label": hint.map_or_else(|| title_case(pointer), |h| h.label.get(lang).to_owned()),
                "help": hint.and_then(|h| h.help.as_ref()).map(|h| h.get(lang)),
                "widget": widget,
                "required": required(schema, pointer),
                "value": value,
                "checked": data.pointer(pointer) == Some(&Value::Bool(true)),
                "options": options,
                "errors": messages,
                "inputmode": if integer { "numeric" } else if widget == "number" { "decimal" } else { "" },
                "maxlength": property.get("maxLength"),
                "prefilled": prefilled,
                "step": hint.and_then(|h| h.step.as_ref()).map(|step| step.get(lang)),
            }))
        })
        .collect()
}

/// Every problem for the error summary: `(field id, message)`, in the order of the form.
pub(crate) fn summary(fields: &[Value], others: &[(String, String)]) -> Vec<Value> {
    let mut out: Vec<Value> = fields
        .iter()
        .flat_map(|f| {
            let id = f["id"].clone();
            f["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |m| json!({"href": format!("#{}", id.as_str().unwrap_or_default()), "message": m}))
        })
        .collect();
    out.extend(
        others
            .iter()
            .map(|(href, message)| json!({"href": href, "message": message})),
    );
    out
}

fn set(target: &mut Value, pointer: &str, value: Value) {
    let mut current = target;
    let tokens: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        if i + 1 == tokens.len() {
            map.insert(token.clone(), value);
            return;
        }
        current = map
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The posted form as a JSON merge patch of the data: a value for every field of the schema, `null` for an empty
/// one (so that clearing a field removes it). Numbers that do not parse are sent as typed, so that the API names
/// the problem.
pub(crate) fn data_patch(procedure: &Procedure, posted: &[(String, String)]) -> Value {
    let schema = &procedure.form.schema;
    let mut patch = Value::Object(Map::new());
    for pointer in leaf_pointers(schema) {
        let Some(property) = property_schema(schema, &pointer) else {
            continue;
        };
        let types = declared_types(property);
        let raw = posted
            .iter()
            .find(|(name, _)| name == &pointer)
            .map(|(_, v)| v.trim().to_owned());
        let value = if types.contains(&"boolean") {
            Value::Bool(raw.is_some_and(|v| v == "true"))
        } else {
            match raw.filter(|v| !v.is_empty()) {
                None => Value::Null,
                Some(text) if types.contains(&"array") => Value::Array(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| Value::String(l.to_owned()))
                        .collect(),
                ),
                Some(text) if types.contains(&"integer") => text
                    .parse::<i64>()
                    .map_or(Value::String(text.clone()), Value::from),
                Some(text) if types.contains(&"number") => text
                    .replace(',', ".")
                    .parse::<f64>()
                    .ok()
                    .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
                    .unwrap_or(Value::String(text)),
                Some(text) => Value::String(text),
            }
        };
        set(&mut patch, &pointer, value);
    }
    patch
}

/// The submitted data as label–value pairs in the form's order, for the review page.
pub(crate) fn review(procedure: &Procedure, data: &Value, lang: Lang) -> Vec<Value> {
    fields(procedure, data, &[], &[], lang)
        .into_iter()
        .map(|f| {
            let value = if f["widget"] == "checkbox" {
                json!(if f["checked"] == true { "✓" } else { "—" })
            } else {
                f["options"]
                    .as_array()
                    .and_then(|options| options.iter().find(|o| o["selected"] == true))
                    .map_or_else(|| f["value"].clone(), |o| o["label"].clone())
            };
            json!({"label": f["label"], "value": value, "id": f["id"], "pointer": f["pointer"], "step": f["step"]})
        })
        .collect()
}

//! The JSON Canonicalization Scheme (RFC 8785): one byte sequence for equal JSON data, so that a signature or a
//! hash over it can be checked by anyone who parses the JSON and canonicalises it again — in any language.
//!
//! Object members are sorted by their names' UTF-16 code units, no insignificant whitespace is written, strings
//! use the shortest JSON escapes, and numbers are written as ECMAScript's `Number.prototype.toString` writes them.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// The canonical form of `value`.
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        // serde_json escapes exactly what RFC 8785 asks: `"`, `\`, and control characters (`\b \t \n \f \r`,
        // others as `\u00xx` in lower case); everything else is written as it is.
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|(a, _), (b, _)| utf16_order(a, b));
            out.push('{');
            for (i, (name, member)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                write(member, out);
            }
            out.push('}');
        }
    }
}

fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// A number as ECMAScript writes the IEEE 754 double it stands for.
fn number(n: &Number) -> String {
    match (n.as_i64(), n.as_u64()) {
        // Integers of up to 2^53 are exact doubles and written as they are.
        (Some(i), _) if i.unsigned_abs() <= 1 << 53 => i.to_string(),
        (_, Some(u)) if u <= 1 << 53 => u.to_string(),
        _ => double(n.as_f64().unwrap_or(0.0)),
    }
}

fn double(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // -0 is written as 0; JSON has no NaN or infinity, so serde_json never hands us one.
        return "0".to_owned();
    }
    // Rust's `{:e}` gives the shortest digits that read back as the same double: "d.ddde±x".
    let formatted = format!("{:e}", value.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    // ECMAScript's n: the value is 0.digits × 10^n.
    let n = exponent + 1;
    let sign = if value < 0.0 { "-" } else { "" };
    let zeros = |count: i32| "0".repeat(usize::try_from(count).unwrap_or(0));
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let e = n - 1;
        let e_sign = if e < 0 { "-" } else { "+" };
        format!("{first}{point}{rest}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_canonicalises_as_published() {
        // RFC 8785 § 3.2.2 and 3.2.3.
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonicalize(&value),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn members_are_sorted_by_utf16_code_units() {
        // RFC 8785 § 3.2.3: the sorting example (an emoji's surrogates sort before U+FB33).
        let input = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let value: Value = serde_json::from_str(input).unwrap();
        let canonical = canonicalize(&value);
        let positions: Vec<usize> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small",
            "Euro Sign",
            "Emoji",
            "Hebrew",
        ]
        .iter()
        .map(|name| canonical.find(name).unwrap())
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{canonical}");
    }

    #[test]
    fn numbers_follow_ecmascript() {
        let cases = [
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("-1.5", "-1.5"),
            ("-0.0", "0"),
            ("9007199254740993", "9007199254740992"),
            ("42", "42"),
            ("-42", "-42"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
        ];
        for (input, expected) in cases {
            let value: Value = serde_json::from_str(input).unwrap();
            assert_eq!(canonicalize(&value), expected, "{input}");
        }
    }
}

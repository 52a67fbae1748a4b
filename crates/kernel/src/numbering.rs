//! Numbers made from a format with placeholders — case numbers (Aktenzeichen), locally assigned Kassenzeichen:
//! `{unit}`, `{year}` and `{seq}` or `{seq:0N}` (zero-padded to N digits).

/// Fills `{unit}`, `{year}` and `{seq}` / `{seq:0N}` (zero-padded to N digits) into `format`.
pub fn render(format: &str, unit: &str, year: i32, seq: i64) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut rest = format;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let placeholder = &rest[open + 1..open + close];
        match placeholder.split_once(':') {
            None if placeholder == "unit" => out.push_str(unit),
            None if placeholder == "year" => out.push_str(&year.to_string()),
            None if placeholder == "seq" => out.push_str(&seq.to_string()),
            Some(("seq", width)) if width.starts_with('0') => {
                let width: usize = width.parse().unwrap_or(0);
                out.push_str(&format!("{seq:0width$}"));
            }
            _ => out.push_str(&rest[open..=open + close]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Whether `format` is usable: it must contain `{seq}` (or a padded form), so numbers stay unique.
pub fn valid_format(format: &str) -> bool {
    format.contains("{seq}") || format.contains("{seq:0")
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn formats() {
        assert_eq!(
            render("{unit}-{year}-{seq:06}", "ordnungsamt", 2026, 42),
            "ordnungsamt-2026-000042"
        );
        assert_eq!(render("OA/{year}/{seq}", "ordnungsamt", 2026, 7), "OA/2026/7");
        assert_eq!(
            render("{seq:03}", "x", 2026, 12345),
            "12345",
            "wider numbers are not cut"
        );
        assert_eq!(render("{other}-{seq}", "x", 2026, 1), "{other}-1");
    }
}

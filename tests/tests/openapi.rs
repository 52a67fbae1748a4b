//! The committed OpenAPI document must be exactly what the handlers generate; when it is not, the failure shows
//! the difference as a unified diff.

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = amtsweg_server::openapi::document_json().expect("the document serialises");
    let path = amtsweg_test_support::workspace_root().join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff = similar::TextDiff::from_lines(&committed, &generated);
        let shown = diff
            .unified_diff()
            .context_radius(3)
            .header("openapi/openapi.json (committed)", "generated from the handlers")
            .to_string();
        panic!(
            "openapi/openapi.json is out of date with the handlers.\n\
             Regenerate it with:\n\n    cargo run -p amtsweg-server -- openapi --output openapi/openapi.json\n\n{shown}"
        );
    }
}

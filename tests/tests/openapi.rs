//! The committed OpenAPI document must be exactly what the handlers generate.

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = amtsweg_server::openapi::document_json().expect("the document serialises");
    let path = amtsweg_test_support::workspace_root().join("openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the handlers.\n\
         Regenerate it with:\n\n    cargo run -p amtsweg-server -- openapi --output openapi/openapi.json\n"
    );
}

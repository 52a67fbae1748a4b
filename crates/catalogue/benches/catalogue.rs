//! Throughput of the two hot read paths of the catalogue: validating a candidate payload and listing procedures.
//! Run with `cargo bench -p amtsweg-catalogue`; compare against earlier runs on the same machine.

#![allow(clippy::expect_used, reason = "a benchmark without its fixture cannot run")]

use std::hint::black_box;
use std::path::Path;

use amtsweg_catalogue::{ListFilter, load_dir};
use amtsweg_kernel::TrustLevel;
use amtsweg_kernel::pagination::PageRequest;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn benches(c: &mut Criterion) {
    let catalogue =
        load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../procedures")).expect("catalogue");
    let parking = catalogue.get("bewohnerparkausweis").expect("procedure");
    let valid = json!({
        "antragsteller": {"vorname": "Erika", "nachname": "Mustermann"},
        "anschrift": {"strasse": "Karl-Liebknecht-Straße", "hausnummer": "12a", "plz": "04107"},
        "parkgebiet": "A1", "kennzeichen": "L-EM 1234", "fahrzeug_halter": "selbst", "laufzeit_jahre": 2
    });
    let invalid = json!({
        "antragsteller": {"vorname": ""},
        "anschrift": {"strasse": "M", "hausnummer": "x", "plz": "10115"},
        "parkgebiet": "Z9", "kennzeichen": "l-em1234", "laufzeit_jahre": 3, "extra": 1
    });
    c.bench_function("validate/valid", |b| {
        b.iter(|| black_box(parking.violations(black_box(&valid))))
    });
    c.bench_function("validate/seven_violations", |b| {
        b.iter(|| black_box(parking.violations(black_box(&invalid))))
    });
    c.bench_function("fee/per_item", |b| {
        b.iter(|| black_box(parking.assess_fee(black_box(&valid))))
    });

    let page = PageRequest {
        limit: 20,
        after: None,
    };
    c.bench_function("list/all", |b| {
        b.iter(|| black_box(catalogue.list(&ListFilter::default(), &page)))
    });
    let filter = ListFilter {
        text: Some("parken ausweis".into()),
        max_trust_level: Some(TrustLevel::Substantial),
        ..ListFilter::default()
    };
    c.bench_function("list/text_and_level", |b| {
        b.iter(|| black_box(catalogue.list(black_box(&filter), &page)))
    });
}

criterion_group!(catalogue, benches);
criterion_main!(catalogue);

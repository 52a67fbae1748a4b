//! Reading a PDF back as a person or an archive would: its text, language, title, tagging and fonts — with pypdf
//! (PyPI), installed on first use.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const INSPECT: &str = r#"
import io, json, sys
import pypdf
reader = pypdf.PdfReader(io.BytesIO(sys.stdin.buffer.read()))
root = reader.trailer["/Root"]
fonts, embedded = 0, 0
for page in reader.pages:
    resources = page.get("/Resources") or {}
    for font in (resources.get("/Font") or {}).values():
        font = font.get_object()
        for descendant in font.get("/DescendantFonts") or [font]:
            descriptor = descendant.get_object().get("/FontDescriptor")
            if descriptor is None:
                continue
            descriptor = descriptor.get_object()
            fonts += 1
            if any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                embedded += 1
metadata = reader.metadata or {}
xmp = reader.xmp_metadata
print(json.dumps({
    "pages": len(reader.pages),
    "text": "\n".join(page.extract_text() or "" for page in reader.pages),
    "lang": str(root.get("/Lang", "")),
    "title": str(metadata.get("/Title", "")),
    "marked": bool((root.get("/MarkInfo") or {}).get("/Marked", False)),
    "structure": "/StructTreeRoot" in root,
    "fonts": fonts,
    "embedded_fonts": embedded,
    "pdfa_part": str(xmp.pdfaid_part) if xmp is not None and getattr(xmp, "pdfaid_part", None) else "",
}))
"#;

/// What pypdf reads from `pdf`.
pub fn inspect_pdf(pdf: &[u8]) -> Value {
    crate::tools::ensure_pypdf();
    let mut child = Command::new("python3")
        .args(["-c", INSPECT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pdf)
        .expect("the PDF goes to pypdf");
    let output = child.wait_with_output().expect("pypdf answers");
    assert!(
        output.status.success(),
        "pypdf failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pypdf's JSON")
}

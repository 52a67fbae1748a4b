//! A streaming check of PDF content for what a city must not accept: encryption (the content cannot be read or
//! archived) and active content (JavaScript, launch actions). PDF names are read as the bytes stream by, `#xx`
//! escapes decoded, and streams compressed with FlateDecode are inflated on the fly and read the same way, so
//! names hidden in object streams are found too. Memory stays bounded whatever the file's size.

use flate2::{Decompress, FlushDecompress, Status};

/// What a PDF must not contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdfProblem {
    Encrypted,
    ActiveContent,
}

/// Names that refuse a PDF, and why.
fn verdict(name: &[u8]) -> Option<PdfProblem> {
    match name {
        b"Encrypt" => Some(PdfProblem::Encrypted),
        b"JavaScript" | b"JS" | b"Launch" => Some(PdfProblem::ActiveContent),
        _ => None,
    }
}

fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// Longest name worth reading; PDF limits names to 127 bytes.
const MAX_NAME: usize = 127;

/// Reads names out of a byte stream, across chunk boundaries.
#[derive(Debug, Default)]
struct Names {
    /// `Some` while inside a name (after `/`).
    name: Option<Vec<u8>>,
    /// Pending `#` escape: the hex digits read so far.
    escape: Option<Vec<u8>>,
}

impl Names {
    /// Feeds bytes; `Some` as soon as a refusing name is complete.
    fn feed(&mut self, bytes: &[u8], mut on_name: impl FnMut(&[u8])) {
        for &byte in bytes {
            if let Some(name) = self.name.as_mut() {
                if let Some(digits) = self.escape.as_mut() {
                    digits.push(byte);
                    if digits.len() == 2 {
                        let decoded = std::str::from_utf8(digits)
                            .ok()
                            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                        if let Some(decoded) = decoded
                            && name.len() < MAX_NAME
                        {
                            name.push(decoded);
                        }
                        self.escape = None;
                    }
                    continue;
                }
                if is_whitespace(byte) || is_delimiter(byte) {
                    on_name(name);
                    self.name = if byte == b'/' { Some(Vec::new()) } else { None };
                    continue;
                }
                if byte == b'#' {
                    self.escape = Some(Vec::with_capacity(2));
                } else if name.len() < MAX_NAME {
                    name.push(byte);
                }
            } else if byte == b'/' {
                self.name = Some(Vec::new());
            }
        }
    }

    fn finish(&mut self, on_name: impl FnOnce(&[u8])) {
        if let Some(name) = self.name.take() {
            on_name(&name);
        }
    }
}

/// The check of one PDF, fed chunk by chunk.
pub struct PdfScanner {
    raw: Names,
    inner: Names,
    found: Option<PdfProblem>,
    /// The last bytes seen, to recognise `stream`/`endstream` keywords and `/FlateDecode` across chunks.
    window: Vec<u8>,
    flate_pending: bool,
    inflating: Option<Decompress>,
    out: Vec<u8>,
}

impl Default for PdfScanner {
    fn default() -> Self {
        Self::new()
    }
}

const WINDOW: usize = 32;

impl PdfScanner {
    pub fn new() -> PdfScanner {
        PdfScanner {
            raw: Names::default(),
            inner: Names::default(),
            found: None,
            window: Vec::with_capacity(WINDOW * 2),
            flate_pending: false,
            inflating: None,
            out: vec![0; 64 * 1024],
        }
    }

    /// Feeds the next bytes of the file; `Err` as soon as a problem is certain.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), PdfProblem> {
        let mut found = self.found;
        self.raw.feed(chunk, |name| {
            if found.is_none() {
                found = verdict(name);
            }
        });
        self.found = found;
        for &byte in chunk {
            self.step(byte);
            if self.found.is_some() {
                break;
            }
        }
        match self.found {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// After the last chunk.
    pub fn finish(&mut self) -> Result<(), PdfProblem> {
        let mut found = self.found;
        self.raw.finish(|name| {
            if found.is_none() {
                found = verdict(name);
            }
        });
        self.inner.finish(|name| {
            if found.is_none() {
                found = verdict(name);
            }
        });
        match found {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    fn remember(&mut self, byte: u8) {
        self.window.push(byte);
        if self.window.len() > WINDOW * 2 {
            self.window.drain(..WINDOW);
        }
    }

    fn ends_with(&self, keyword: &[u8]) -> bool {
        self.window.ends_with(keyword)
    }

    fn step(&mut self, byte: u8) {
        if let Some(mut inflater) = self.inflating.take() {
            self.remember(byte);
            if self.ends_with(b"endstream") {
                self.flate_pending = false;
                return;
            }
            let before = inflater.total_out();
            let mut status = inflater.decompress(&[byte], &mut self.out, FlushDecompress::None);
            loop {
                let produced = usize::try_from(inflater.total_out() - before).unwrap_or(0);
                if produced > 0 {
                    let mut found = self.found;
                    let out = self.out[..produced.min(self.out.len())].to_vec();
                    self.inner.feed(&out, |name| {
                        if found.is_none() {
                            found = verdict(name);
                        }
                    });
                    self.found = found;
                }
                match status {
                    // More output may be waiting for the same input byte: drain it.
                    Ok(Status::Ok) if produced == self.out.len() => {
                        let again = inflater.total_out();
                        status = inflater.decompress(&[], &mut self.out, FlushDecompress::None);
                        if inflater.total_out() == again {
                            break;
                        }
                    }
                    Ok(Status::StreamEnd) | Err(_) => {
                        // The stream is done (or is not deflate after all): stop inflating, wait for endstream.
                        self.inner.finish(|_| {});
                        return;
                    }
                    _ => break,
                }
            }
            self.inflating = Some(inflater);
            return;
        }
        self.remember(byte);
        if self.ends_with(b"/FlateDecode") {
            self.flate_pending = true;
        }
        if self.ends_with(b"endobj") {
            self.flate_pending = false;
        }
        // `stream` then an end of line starts the data (not `endstream`).
        if (byte == b'\n') && self.window.len() >= 7 {
            let line = &self.window[..self.window.len() - 1];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.ends_with(b"stream") && !line.ends_with(b"endstream") && self.flate_pending {
                self.inflating = Some(Decompress::new(true));
                self.inner = Names::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    fn scan(bytes: &[u8], chunk: usize) -> Result<(), PdfProblem> {
        let mut scanner = PdfScanner::new();
        for part in bytes.chunks(chunk) {
            scanner.feed(part)?;
        }
        scanner.finish()
    }

    const PLAIN: &[u8] =
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

    #[test]
    fn a_plain_pdf_passes_in_any_chunking() {
        for chunk in [1, 3, 7, 4096] {
            assert_eq!(scan(PLAIN, chunk), Ok(()));
        }
    }

    #[test]
    fn encryption_and_active_content_are_found_across_chunks() {
        let encrypted = b"%PDF-1.7\ntrailer\n<< /Root 1 0 R /Encrypt 5 0 R >>\n";
        let script = b"%PDF-1.7\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj\n";
        let launch = b"%PDF-1.7\n1 0 obj << /S /Launch /F (calc.exe) >> endobj\n";
        for chunk in [1, 2, 5, 4096] {
            assert_eq!(scan(encrypted, chunk), Err(PdfProblem::Encrypted));
            assert_eq!(scan(script, chunk), Err(PdfProblem::ActiveContent));
            assert_eq!(scan(launch, chunk), Err(PdfProblem::ActiveContent));
        }
    }

    #[test]
    fn escaped_names_are_decoded() {
        let hidden = b"%PDF-1.7\n1 0 obj << /S /Java#53cript >> endobj\n";
        assert_eq!(scan(hidden, 1), Err(PdfProblem::ActiveContent));
        let not_a_match = b"%PDF-1.7\n1 0 obj << /JSON (x) /Encryption (y) >> endobj\n";
        assert_eq!(scan(not_a_match, 3), Ok(()));
    }

    #[test]
    fn names_inside_compressed_object_streams_are_found() {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(b"5 0 << /Type /Action /S /JavaScript /JS (evil) >>")
            .unwrap();
        let compressed = encoder.finish().unwrap();
        let mut pdf =
            b"%PDF-1.7\n4 0 obj\n<< /Type /ObjStm /Filter /FlateDecode /Length 99 >>\nstream\n".to_vec();
        pdf.extend_from_slice(&compressed);
        pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
        for chunk in [1, 7, 4096] {
            assert_eq!(scan(&pdf, chunk), Err(PdfProblem::ActiveContent), "chunk {chunk}");
        }
        let mut harmless = ZlibEncoder::new(Vec::new(), Compression::default());
        harmless.write_all(b"BT /F1 12 Tf (Hallo) Tj ET").unwrap();
        let mut pdf = b"%PDF-1.7\n4 0 obj\n<< /Filter /FlateDecode >>\nstream\r\n".to_vec();
        pdf.extend_from_slice(&harmless.finish().unwrap());
        pdf.extend_from_slice(b"\r\nendstream\nendobj\n");
        assert_eq!(scan(&pdf, 5), Ok(()));
    }
}

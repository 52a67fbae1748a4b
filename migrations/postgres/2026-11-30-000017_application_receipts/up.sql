-- The receipt of a submission: what was submitted (data, attachment names and hashes, case number, time) as a
-- snapshot taken in the submit transaction, and the PDF rendered from it once it exists.
CREATE TABLE application_receipts (
    application_id TEXT PRIMARY KEY REFERENCES applications (id),
    snapshot TEXT NOT NULL,
    file_id TEXT,
    pdf_sha256 TEXT,
    rendered_at TIMESTAMP,
    CHECK ((file_id IS NULL) = (pdf_sha256 IS NULL) AND (file_id IS NULL) = (rendered_at IS NULL))
);

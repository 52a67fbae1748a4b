//! Final case numbers (Aktenzeichen), given at submission: `{unit}-{year}-{seq:06}` unless a unit has its own
//! format. The sequence is one counter outside any lock (a PostgreSQL sequence; an AUTOINCREMENT table on SQLite),
//! so submits never wait for each other on a counter row; a rolled-back submit leaves a gap, and no number is ever
//! handed out twice. The year is the year in Europe/Berlin.

use amtsweg_db::{DbConnection, DbError};

/// The next number of the case number counter.
pub(crate) fn next(conn: &mut DbConnection) -> Result<i64, DbError> {
    amtsweg_db::counter::next(conn, "case_numbers")
}

pub use amtsweg_kernel::numbering::{render, valid_format};

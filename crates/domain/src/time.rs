//! Timestamps as the ledger and the database spell them: RFC 3339 in UTC with microseconds, which sort as text.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-27T00:02:09.123456Z`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at.format(&format)
        .unwrap_or_else(|_| at.format(&Rfc3339).unwrap_or_default())
}

/// Now, in the ledger's timestamp format.
pub fn now() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

/// A moment `ago` before now, in the ledger's timestamp format.
pub fn now_minus(ago: Duration) -> String {
    format_timestamp(OffsetDateTime::now_utc() - ago)
}

/// The moment `ago` before `at` (a timestamp in the ledger's format, or any RFC 3339), in the ledger's format;
/// `None` if `at` is not RFC 3339.
pub fn minus(at: &str, ago: Duration) -> Option<String> {
    let at = OffsetDateTime::parse(at, &Rfc3339).ok()?;
    Some(format_timestamp(at - ago))
}

/// A moment `ahead` from now, in the ledger's timestamp format.
pub fn now_plus(ahead: Duration) -> String {
    format_timestamp(OffsetDateTime::now_utc() + ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds_and_sort_as_text() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_000_000_123_456_789).unwrap();
        assert_eq!(format_timestamp(at), "2026-11-18T11:06:40.123456Z");
        assert!(now_minus(Duration::from_secs(1)) < now_plus(Duration::from_secs(1)));
    }
}

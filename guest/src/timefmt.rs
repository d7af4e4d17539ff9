//! Timestamps as text, with the `time` crate: RFC 3339 UTC timestamps the component writes
//! (Open WebUI's `date_accessed`, stored dates) and HTTP dates it reads (`Retry-After`).
//! Times are milliseconds since the Unix epoch, as the guest's clock (`Env::now_ms`) gives them.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{PrimitiveDateTime, UtcDateTime};

/// `2025-01-02T03:04:05Z`: whole seconds, UTC.
const ISO8601: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT` (always GMT, case-sensitive).
const IMF_FIXDATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year padding:zero] [hour]:[minute]:[second] GMT"
);

/// `ms` after the epoch as `YYYY-MM-DDTHH:MM:SSZ` (milliseconds dropped). Instants past the
/// last second of the year 9999 are written as that second.
pub fn iso8601(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let at = UtcDateTime::from_unix_timestamp(secs).unwrap_or(UtcDateTime::MAX);
    // Writing into a `String` with a compiled format description cannot fail.
    at.format(ISO8601).unwrap_or_default()
}

/// An IMF-fixdate as milliseconds after the epoch; `None` when the text is not one, names a day
/// that does not exist, or lies before 1970.
pub fn http_date_ms(text: &str) -> Option<u64> {
    let at = PrimitiveDateTime::parse(text.trim(), IMF_FIXDATE).ok()?;
    let secs = u64::try_from(at.as_utc().unix_timestamp()).ok()?;
    secs.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_writes_utc_seconds() {
        let table: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (999, "1970-01-01T00:00:00Z"),
            (1_000, "1970-01-01T00:00:01Z"),
            (86_399_999, "1970-01-01T23:59:59Z"),
            (86_400_000, "1970-01-02T00:00:00Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (951_868_799_000, "2000-02-29T23:59:59Z"),
            (951_868_800_000, "2000-03-01T00:00:00Z"),
            (1_445_412_480_000, "2015-10-21T07:28:00Z"),
            (1_735_787_045_123, "2025-01-02T03:04:05Z"),
            (1_795_000_000_000, "2026-11-18T11:06:40Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59Z"),
        ];
        for (ms, want) in table {
            assert_eq!(iso8601(*ms), *want, "{ms}");
        }
    }

    #[test]
    fn instants_after_the_year_9999_are_written_as_its_last_second() {
        assert_eq!(iso8601(253_402_300_800_000), "9999-12-31T23:59:59Z");
        assert_eq!(iso8601(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn imf_fixdates_are_read_and_other_text_is_not() {
        let table: &[(&str, Option<u64>)] = &[
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(1_445_412_480_000)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(784_111_777_000)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("  Wed, 21 Oct 2015 07:28:00 GMT ", Some(1_445_412_480_000)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", Some(253_402_300_799_000)),
            ("Wed, 31 Dec 1969 23:59:59 GMT", None),
            ("Wed, 21 Oct 2015 07:28:00 UTC", None),
            ("Wed, 21 Oct 2015 07:28:00", None),
            ("wed, 21 oct 2015 07:28:00 GMT", None),
            ("Wed, 30 Feb 2015 07:28:00 GMT", None),
            ("Wed, 21 Oct 2015 24:00:00 GMT", None),
            ("Wednesday, 21-Oct-15 07:28:00 GMT", None),
            ("2015-10-21T07:28:00Z", None),
            ("120", None),
            ("", None),
        ];
        for (text, want) in table {
            assert_eq!(http_date_ms(text), *want, "{text:?}");
        }
    }
}

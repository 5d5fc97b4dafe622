//! The leaf certificate's `notAfter`, read from its DER with a reader just large enough for
//! the X.509 fields in front of it (the expiry gauge needs nothing else from the certificate).

/// DER tags met on the way to `validity`.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` in seconds since the Unix epoch, or `None` when the DER is not
/// shaped like an X.509 certificate.
pub(crate) fn not_after(cert_der: &[u8]) -> Option<i64> {
    let (certificate, _) = element(cert_der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    let (_, rest) = element(tbs, INTEGER)?; // serialNumber
    let (_, rest) = element(rest, SEQUENCE)?; // signature algorithm
    let (_, rest) = element(rest, SEQUENCE)?; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let (&not_before_tag, _) = validity.split_first()?;
    let (_, rest) = element(validity, not_before_tag)?;
    let (&tag, _) = rest.split_first()?;
    let (time, _) = element(rest, tag)?;
    parse_time(tag, time)
}

/// Splits one DER element with tag `tag` off the front of `input`: (its content, the rest).
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// `YYMMDDHHMMSSZ` (UTCTime, years 1950-2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 12) => {
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let field = |at: usize| rest[at..at + 2].parse::<u8>().ok();
    let month = time::Month::try_from(field(0)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2)?).ok()?;
    let clock = time::Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_expiring(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_as_utc_time_and_generalized_time() {
        // 2030-06-01T00:00:00Z and 2051-01-02T00:00:00Z (after 2049: GeneralizedTime).
        assert_eq!(not_after(&cert_expiring(2030, 6, 1)), Some(1_906_502_400));
        assert_eq!(not_after(&cert_expiring(2051, 1, 2)), Some(2_556_230_400));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"-----BEGIN CERTIFICATE-----"), None);
        let der = cert_expiring(2030, 6, 1);
        assert_eq!(not_after(&der[..der.len() / 3]), None);
    }

    #[test]
    fn reads_both_time_forms() {
        assert_eq!(parse_time(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20300601000000Z"),
            Some(1_906_502_400)
        );
        assert_eq!(parse_time(UTC_TIME, b"301301000000Z"), None);
        assert_eq!(parse_time(UTC_TIME, b"3006010000Z"), None);
        assert_eq!(parse_time(GENERALIZED_TIME, b"20300601000000"), None);
    }
}

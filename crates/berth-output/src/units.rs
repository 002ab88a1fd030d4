//! Human units exactly like `github.com/docker/go-units` and Go's `time` package, as Docker prints
//! and parses them: sizes (`77.8MB`, `1.23GB`, `44KiB`), relative ages (`2 days ago`), `CreatedAt`
//! stamps (`2006-01-02 15:04:05 -0700 MST`) and Go durations (`1h30m`, `10s`).

use std::time::Duration;

use thiserror::Error;

/// A size or duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    /// Not a size (`10GB`, `512m`, `1.5 GiB`): go-units' wording.
    #[error("invalid size: '{input}'")]
    InvalidSize {
        /// The text given.
        input: String,
    },
    /// A size whose unit suffix is unknown (`10x`): go-units' wording.
    #[error("invalid suffix: '{suffix}' (in size '{input}'; use b, k, m, g, t or p, optionally followed by b or ib)")]
    InvalidSuffix {
        /// The text given.
        input: String,
        /// The offending suffix.
        suffix: String,
    },
    /// Not a Go duration (`24h`, `1h30m`, `10s`, `500ms`).
    #[error("time: invalid duration \"{input}\" (expected a Go duration such as 24h, 1h30m or 10s)")]
    InvalidDuration {
        /// The text given.
        input: String,
    },
    /// A Go duration with a unit Go does not know.
    #[error("time: unknown unit \"{unit}\" in duration \"{input}\" (use ns, us, ms, s, m or h)")]
    UnknownDurationUnit {
        /// The text given.
        input: String,
        /// The offending unit.
        unit: String,
    },
    /// Neither a duration, a Unix timestamp nor an RFC 3339 date (filters such as `until=`).
    #[error("failed to parse value as time or duration: \"{input}\"")]
    InvalidTimestamp {
        /// The text given.
        input: String,
    },
}

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn size_and_unit(mut size: f64, base: f64, abbrs: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i + 1 < abbrs.len() {
        size /= base;
        i += 1;
    }
    (size, abbrs.get(i).copied().unwrap_or("B"))
}

/// go-units `HumanSizeWithPrecision`: decimal units, `%.*g` (so `999.9` kB with precision 3 is
/// `1e+03kB`, as Docker prints it).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (v, unit) = size_and_unit(size, 1000.0, &DECIMAL_ABBRS);
    format!("{}{}", go_format_g(v, precision), unit)
}

/// go-units `HumanSize`: decimal units, 4 significant digits (`1.024kB`, `77.81MB`).
pub fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`44KiB`, `17.5MiB`).
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = size_and_unit(size, 1024.0, &BINARY_ABBRS);
    format!("{}{}", go_format_g(v, 4), unit)
}

/// Go's `strconv.FormatFloat(v, 'g', precision, 64)` (what `%.Ng` prints).
pub fn go_format_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let prec = precision.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    // Rust's `{:e}` rounds correctly to `prec` significant digits.
    let sci = format!("{:.*e}", prec - 1, v.abs());
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let mut digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let dp = exp + 1; // decimal point position relative to the digits
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let sign = if v < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    // %f form with exactly the significant digits we kept.
    let mut out = String::from(sign);
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        let (int, frac) = digits.split_at(dp as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// go-units `HumanDuration` (`Less than a second`, `About a minute`, `3 weeks`, `2 years`).
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 1 {
        return "Less than a second".to_string();
    }
    if secs == 1 {
        return "1 second".to_string();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".to_string();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // go-units rounds hours (`int(d.Hours() + 0.5)`).
    let hours = ((d.as_secs_f64() / 3600.0) + 0.5) as u64;
    if hours == 1 {
        return "About an hour".to_string();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

/// Docker's `CREATED` column: `HumanDuration(now - created) + " ago"`. A creation time in the
/// future reads `Less than a second ago`, as in Docker.
pub fn created_since(created_unix: i64, now_unix: i64) -> String {
    let d = now_unix.saturating_sub(created_unix).max(0) as u64;
    format!("{} ago", human_duration(Duration::from_secs(d)))
}

/// Docker's `CreatedAt` field: Go's `time.Unix(secs, 0).String()` in the local time zone,
/// e.g. `2024-03-01 10:04:05 +0100 CET` (the zone abbreviation comes from the C library, so
/// `TZ` is honoured as in Go).
pub fn created_at(unix_secs: i64) -> String {
    let (offset, abbr) = local_offset(unix_secs);
    format_go_time(unix_secs, 0, offset, &abbr, false)
}

/// `created_at` in a fixed zone (tests, or callers that want UTC): `offset_secs` east of UTC,
/// `abbr` as Go would print it (`UTC`, `CET`; Go prints `+0100` style names for unnamed zones).
pub fn created_at_in(unix_secs: i64, offset_secs: i32, abbr: &str) -> String {
    format_go_time(unix_secs, 0, offset_secs, abbr, false)
}

/// RFC 3339 with nanoseconds, in UTC (`2024-03-01T09:04:05.123456789Z`), as BuildKit's JSON
/// progress and Docker's JSON output use.
pub fn rfc3339_nano_utc(unix_secs: i64, nanos: u32) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if nanos > 0 {
        let mut frac = format!("{nanos:09}");
        while frac.ends_with('0') {
            frac.pop();
        }
        out.push('.');
        out.push_str(&frac);
    }
    out.push('Z');
    out
}

fn format_go_time(unix_secs: i64, _nanos: u32, offset: i32, abbr: &str, _nano: bool) -> String {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs + i64::from(offset));
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.unsigned_abs();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} {sign}{:02}{:02} {abbr}", off / 3600, (off % 3600) / 60)
}

/// (year, month, day, hour, minute, second) for seconds since the epoch (proleptic Gregorian).
fn civil_from_unix(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let rem = t.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, (rem / 3600) as u32, ((rem % 3600) / 60) as u32, (rem % 60) as u32)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local UTC offset and zone abbreviation at `unix_secs`, from `localtime_r` (honours `TZ`).
fn local_offset(unix_secs: i64) -> (i32, String) {
    let t: libc::time_t = unix_secs as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero is a valid value; `localtime_r` only
    // writes into it and returns null on failure, which we check.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let res = unsafe { libc::localtime_r(&t, &mut tm) };
    if res.is_null() {
        return (0, "UTC".to_string());
    }
    let offset = tm.tm_gmtoff as i32;
    let abbr = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: tm_zone points at a NUL-terminated static string owned by libc.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    let abbr = if abbr.is_empty() {
        let sign = if offset < 0 { '-' } else { '+' };
        let off = offset.unsigned_abs();
        format!("{sign}{:02}{:02}", off / 3600, (off % 3600) / 60)
    } else {
        abbr
    };
    (offset, abbr)
}

fn parse_size(input: &str, binary: bool) -> Result<i64, UnitError> {
    let invalid = || UnitError::InvalidSize { input: input.to_string() };
    // Split at the last digit, dot or space: number, optional single space, suffix.
    let sep = input.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ').ok_or_else(invalid)?;
    let (num, sfx) = if input.as_bytes().get(sep) == Some(&b' ') {
        (&input[..sep], &input[sep + 1..])
    } else {
        (&input[..sep + 1], &input[sep + 1..])
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid());
    }
    let size: f64 = num.parse().map_err(|_| invalid())?;
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad_suffix = || UnitError::InvalidSuffix { input: input.to_string(), suffix: sfx.to_string() };
    let lower = sfx.to_ascii_lowercase();
    if lower.len() > 3 {
        return Err(bad_suffix());
    }
    if lower == "b" {
        return Ok(size as i64);
    }
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let exp = match lower.as_bytes().first() {
        Some(b'k') => 1,
        Some(b'm') => 2,
        Some(b'g') => 3,
        Some(b't') => 4,
        Some(b'p') => 5,
        _ => return Err(bad_suffix()),
    };
    match &lower[1..] {
        "" | "b" | "ib" => {}
        _ => return Err(bad_suffix()),
    }
    Ok((size * base.powi(exp)) as i64)
}

/// go-units `FromHumanSize`: decimal multipliers (`10GB` = 10 000 000 000; `1.5k` = 1500).
pub fn from_human_size(input: &str) -> Result<i64, UnitError> {
    parse_size(input, false)
}

/// go-units `RAMInBytes`: binary multipliers, case-insensitive, `b`/`ib` optional
/// (`512m` = 536 870 912). Docker uses it for `--memory`, `--shm-size` and `--keep-storage`.
pub fn ram_in_bytes(input: &str) -> Result<i64, UnitError> {
    parse_size(input, true)
}

/// Go's `time.ParseDuration` for non-negative durations (`24h`, `1h30m`, `1.5s`, `300ms`, `0`).
pub fn parse_go_duration(input: &str) -> Result<Duration, UnitError> {
    let invalid = || UnitError::InvalidDuration { input: input.to_string() };
    let mut s = input.strip_prefix('+').unwrap_or(input);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let num = &s[..num_end];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        let rest = &s[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(invalid()),
            other => {
                return Err(UnitError::UnknownDurationUnit { input: input.to_string(), unit: other.to_string() });
            }
        };
        total += value * nanos_per;
        s = &rest[unit_end..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

/// Go's `time.Duration.String()` (`1h30m0s`, `1.5s`, `300ms`, `0s`).
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        // Sub-second: pick the largest unit that keeps an integer part.
        let (unit, div) = if nanos < 1_000 {
            ("ns", 1u128)
        } else if nanos < 1_000_000 {
            ("\u{b5}s", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{}", trim_fraction(nanos, div), unit);
    }
    let total_secs = d.as_secs();
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let secs_nanos = u128::from(total_secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos());
    let s = trim_fraction(secs_nanos, 1_000_000_000);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn trim_fraction(value: u128, div: u128) -> String {
    let int = value / div;
    let frac = value % div;
    if frac == 0 {
        return int.to_string();
    }
    let width = div.to_string().len() - 1;
    let mut f = format!("{frac:0width$}");
    while f.ends_with('0') {
        f.pop();
    }
    format!("{int}.{f}")
}

/// Docker's `GetTimestamp` for filters such as `until=` and `since=`: a Go duration is taken
/// relative to `now_unix` (`24h` → 24 hours ago); otherwise a Unix timestamp (`1700000000`,
/// `1700000000.5`), an RFC 3339 time (`2024-01-02T15:04:05Z`, with offset or fraction) or a date
/// (`2024-01-02`, read as UTC). Returns seconds since the epoch.
pub fn parse_timestamp(value: &str, now_unix: i64) -> Result<i64, UnitError> {
    if let Ok(d) = parse_go_duration(value) {
        return Ok(now_unix - d.as_secs() as i64);
    }
    let invalid = || UnitError::InvalidTimestamp { input: value.to_string() };
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit()) {
        return secs.parse::<i64>().map_err(|_| invalid());
    }
    parse_rfc3339ish(value).ok_or_else(invalid)
}

fn parse_rfc3339ish(v: &str) -> Option<i64> {
    let num = |s: &str| -> Option<u32> {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() { s.parse().ok() } else { None }
    };
    let (date, time) = match v.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut parts = date.split('-');
    let y = i64::from(num(parts.next()?)?);
    let mo = num(parts.next()?)?;
    let d = num(parts.next()?)?;
    if parts.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    if let Some(t) = time {
        // Split off the zone: Z, +hh:mm or -hh:mm (none = UTC).
        let (clock, offset) = if let Some(c) = t.strip_suffix('Z') {
            (c, 0i64)
        } else if let Some(idx) = t.rfind(['+', '-']) {
            let (c, z) = t.split_at(idx);
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let z = &z[1..];
            let (zh, zm) = z.split_once(':').unwrap_or((z, "0"));
            (c, sign * (i64::from(num(zh)?) * 3600 + i64::from(num(zm)?) * 60))
        } else {
            (t, 0)
        };
        let clock = clock.split('.').next()?;
        let mut hms = clock.split(':');
        let h = num(hms.next()?)?;
        let mi = num(hms.next().unwrap_or("0"))?;
        let s = num(hms.next().unwrap_or("0"))?;
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs += i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s) - offset;
    }
    Some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_go_units() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0B"),
            (1.0, "1B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1024.0, "1.024kB"),
            (1_000_000.0, "1MB"),
            (1_048_576.0, "1.049MB"),
            (2_097_152.0, "2.097MB"),
            (3_221_225_472.0, "3.221GB"),
            (3_298_534_883_328.0, "3.299TB"),
            (3_377_699_720_527_872.0, "3.378PB"),
            (1e24, "1YB"),
            (1e27, "1000YB"),
        ];
        for (v, want) in cases {
            assert_eq!(human_size(*v), *want, "HumanSize({v})");
        }
        assert_eq!(human_size_with_precision(77_812_345.0, 3), "77.8MB");
        assert_eq!(human_size_with_precision(1_234_567_890.0, 3), "1.23GB");
        assert_eq!(human_size_with_precision(5_583.0, 3), "5.58kB");
        assert_eq!(human_size_with_precision(999_900.0, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(100_000.0, 3), "100kB");
        assert_eq!(human_size_with_precision(120_000.0, 3), "120kB");
        assert_eq!(human_size_with_precision(7_000_000.0, 3), "7MB");
    }

    #[test]
    fn bytes_sizes_match_go_units() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1B"),
            (1024.0, "1KiB"),
            (1_048_576.0, "1MiB"),
            (1_048_577.0, "1MiB"),
            (3.0 * 1_073_741_824.0, "3GiB"),
            (3.5 * 1_099_511_627_776.0, "3.5TiB"),
            (5.372 * 1_125_899_906_842_624.0, "5.372PiB"),
        ];
        for (v, want) in cases {
            assert_eq!(bytes_size(*v), *want, "BytesSize({v})");
        }
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(go_format_g(1.5, 4), "1.5");
        assert_eq!(go_format_g(123456.0, 4), "1.235e+05");
        assert_eq!(go_format_g(0.0001234, 4), "0.0001234");
        assert_eq!(go_format_g(0.00001234, 4), "1.234e-05");
        assert_eq!(go_format_g(-2.5, 3), "-2.5");
        assert_eq!(go_format_g(10.0, 3), "10");
    }

    #[test]
    fn human_durations_match_go_units() {
        let s = Duration::from_secs;
        let min = 60;
        let hour = 3600;
        let day = 24 * hour;
        let week = 7 * day;
        let month = 30 * day;
        let year = 365 * day;
        let cases: &[(Duration, &str)] = &[
            (Duration::from_millis(450), "Less than a second"),
            (s(1), "1 second"),
            (s(45), "45 seconds"),
            (s(59), "59 seconds"),
            (s(60), "About a minute"),
            (s(3 * min), "3 minutes"),
            (s(35 * min + 40), "35 minutes"),
            (s(59 * min), "59 minutes"),
            (s(hour), "About an hour"),
            (s(hour + 29 * min), "About an hour"),
            (s(hour + 31 * min), "2 hours"),
            (s(3 * hour + 29 * min), "3 hours"),
            (s(3 * hour + 31 * min), "4 hours"),
            (s(24 * hour), "24 hours"),
            (s(day + 12 * hour), "36 hours"),
            (s(2 * day), "2 days"),
            (s(7 * day), "7 days"),
            (s(13 * day + 5 * hour), "13 days"),
            (s(2 * week), "2 weeks"),
            (s(2 * week + 4 * day), "2 weeks"),
            (s(3 * week), "3 weeks"),
            (s(4 * week + 3 * day), "4 weeks"),
            (s(month), "4 weeks"),
            (s(month + 2 * week), "6 weeks"),
            (s(2 * month), "2 months"),
            (s(3 * month + week), "3 months"),
            (s(13 * month), "13 months"),
            (s(24 * month), "24 months"),
            (s(24 * month + 2 * week), "2 years"),
            (s(3 * year + 2 * month), "3 years"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "HumanDuration({d:?})");
        }
        assert_eq!(created_since(1000, 1000 + 2 * day as i64), "2 days ago");
        assert_eq!(created_since(2000, 1000), "Less than a second ago");
    }

    #[test]
    fn created_at_is_go_time_string() {
        assert_eq!(created_at_in(1_700_000_000, 0, "UTC"), "2023-11-14 22:13:20 +0000 UTC");
        assert_eq!(created_at_in(1_700_000_000, -7 * 3600, "MST"), "2023-11-14 15:13:20 -0700 MST");
        assert_eq!(created_at_in(0, 3600 + 1800, "+0130"), "1970-01-01 01:30:00 +0130 +0130");
        assert_eq!(rfc3339_nano_utc(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_nano_utc(1_700_000_000, 120_000_000), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_nano_utc(951_782_400, 0), "2000-02-29T00:00:00Z");
        // Whatever the local zone is, the format has Go's shape.
        let local = created_at(1_700_000_000);
        assert!(local.len() >= "2023-11-14 22:13:20 +0000 X".len());
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(ram_in_bytes("512m"), Ok(536_870_912));
        assert_eq!(ram_in_bytes("512M"), Ok(536_870_912));
        assert_eq!(ram_in_bytes("10GB"), Ok(10 * 1_073_741_824));
        assert_eq!(ram_in_bytes("1.5 GiB"), Ok(1_610_612_736));
        assert_eq!(ram_in_bytes("32"), Ok(32));
        assert_eq!(ram_in_bytes("32b"), Ok(32));
        assert_eq!(ram_in_bytes("32kb"), Ok(32 * 1024));
        assert_eq!(ram_in_bytes("32Kib"), Ok(32 * 1024));
        assert_eq!(from_human_size("10GB"), Ok(10_000_000_000));
        assert_eq!(from_human_size("1.5k"), Ok(1500));
        assert_eq!(from_human_size("5 MB"), Ok(5_000_000));
        for bad in ["", "MB", "-1", "1.2.3MB", "10x", "10 MBB", "10kbb", "10Mi", " 10"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            ram_in_bytes("10x").map_err(|e| e.to_string()),
            Err("invalid suffix: 'x' (in size '10x'; use b, k, m, g, t or p, optionally followed by b or ib)"
                .to_string())
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_go_duration("2h45m30.5s"), Ok(Duration::from_millis(9_930_500)));
        for bad in ["", "10", "h", "-1h", "1d", "1.h.", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should fail");
        }
        assert_eq!(format_go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_go_duration(Duration::from_micros(3)), "3\u{b5}s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_secs(61)), "1m1s");
    }

    #[test]
    fn timestamps_for_filters() {
        let now = 1_700_000_000;
        assert_eq!(parse_timestamp("24h", now), Ok(now - 86_400));
        assert_eq!(parse_timestamp("1600000000", now), Ok(1_600_000_000));
        assert_eq!(parse_timestamp("1600000000.5", now), Ok(1_600_000_000));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z", now), Ok(now));
        assert_eq!(parse_timestamp("2023-11-14T23:13:20+01:00", now), Ok(now));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20.5Z", now), Ok(now));
        assert_eq!(parse_timestamp("2023-11-14", now), Ok(now - 22 * 3600 - 13 * 60 - 20));
        assert!(parse_timestamp("yesterday", now).is_err());
    }
}

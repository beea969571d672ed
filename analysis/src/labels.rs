//! How numbers, sizes and modes are printed, on the plots' axes and in the report's tables.

use sendpath_record::Mode;

/// The mode table's label (`A1 copy+send` for `a1`, ...); unknown modes upper-cased.
pub fn mode_label(mode: &str) -> String {
    match mode.parse::<Mode>() {
        Ok(m) => m.facts().label.into(),
        Err(_) => mode.to_uppercase(),
    }
}

/// Human size for a power-of-two tick: 64 B, 1 KiB, 16 KiB, 1 MiB.
pub fn size_label(bytes: f64) -> String {
    let b = bytes.round() as u64;
    if b >= 1 << 20 && b.is_multiple_of(1 << 20) {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 && b.is_multiple_of(1 << 10) {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

/// A number for axes and tables: at most three significant digits, no float noise, k/M/G
/// suffixes from 10 000 up (the CSV keeps every digit).
pub fn num_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a < 1e-3 {
        format!("{v:.1e}")
    } else if a >= 1e4 {
        let (d, suffix) = if a >= 1e9 {
            (1e9, "G")
        } else if a >= 1e6 {
            (1e6, "M")
        } else {
            (1e3, "k")
        };
        format!("{}{suffix}", sig3(v / d))
    } else {
        sig3(v)
    }
}

fn sig3(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(size_label(64.0), "64 B");
        assert_eq!(size_label(16384.0), "16 KiB");
        assert_eq!(size_label(1048576.0), "1 MiB");
        assert_eq!(num_label(0.0), "0");
        assert_eq!(num_label(12.0), "12");
        assert_eq!(num_label(0.25), "0.25");
        assert_eq!(num_label(2.5e8), "250M");
        assert_eq!(num_label(1500.0), "1500");
        assert_eq!(num_label(224223.0), "224k");
        assert_eq!(num_label(1.5e6), "1.5M");
        assert_eq!(num_label(3e9), "3G");
        assert_eq!(num_label(0.0002), "2.0e-4");
    }
}

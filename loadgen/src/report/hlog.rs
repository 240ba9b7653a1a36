//! `.hlog`: HdrHistogram interval logs (format V2, DEFLATE-compressed base64 histograms),
//! the files Java's `HistogramLogProcessor` and `HistogramLogAnalyzer` read.
//!
//! What this module writes:
//!
//! ```text
//! #[Histogram log format version 1.3]
//! #c1m-loadgen latency: values are nanoseconds; Interval_Max is in microseconds (MaxValueDivisor 1000)
//! #... (more comment lines)
//! #[StartTime: 1718000000.123 (seconds since epoch)]
//! #[BaseTime: 1718000000.123 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! #[MaxValueDivisor: 1000.000]
//! 0.000,1.000,812.031,HISTFAAAA...
//! 1.000,1.000,790.527,HISTFAAAA...
//! Tag=measured,2.000,10.000,812.031,HISTFAAAA...
//! ```
//!
//! StartTime and BaseTime are both the run's start, so interval timestamps are seconds since
//! the start (Java reads them as offsets when BaseTime is present). Untagged lines are the
//! per-second intervals; a tagged line (for example `Tag=measured`) carries a whole-phase
//! histogram. Java's `HistogramLogProcessor` reads untagged lines only unless given
//! `-tag NAME`, so tagged lines do not disturb its per-interval output.

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

/// Significant value digits of every latency histogram.
pub const SIGFIG: u8 = 3;

/// A latency histogram: values in NANOSECONDS, 3 significant digits, auto-resizing (any
/// value records; nothing is clamped).
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new(SIGFIG) {
        Ok(h) => h,
        // 3 significant digits is always a valid configuration.
        Err(e) => unreachable!("Histogram::new({SIGFIG}) failed: {e:?}"),
    }
}

/// Records `ns` into a histogram from [`new_histogram`], which grows to hold any value.
/// Never `saturating_record`: that clamps to the histogram's current top (2 µs on a
/// fresh one) instead of growing. False only when the value could not be held (a
/// histogram that does not resize); callers count that, so nothing is dropped silently.
pub fn record_ns(h: &mut Histogram<u64>, ns: u64) -> bool {
    h.record(ns).is_ok()
}

/// Adds `from` into `into` (see [`record_ns`]); false when `into` could not hold it.
pub fn add_into(into: &mut Histogram<u64>, from: &Histogram<u64>) -> bool {
    into.add(from).is_ok()
}

/// Java's `HistogramLogWriter` legend line; the crate's writer leaves it out.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// One histogram line of an interval log.
#[derive(Debug, Clone)]
pub struct LogInterval {
    /// `None` for untagged lines.
    pub tag: Option<String>,
    /// Seconds since the log's start (see [`IntervalLog::start_epoch_s`]).
    pub start_s: f64,
    pub length_s: f64,
    pub hist: Histogram<u64>,
}

/// A parsed interval log.
#[derive(Debug, Clone)]
pub struct IntervalLog {
    /// Unix time the interval start times count from: StartTime, else BaseTime, else the
    /// first interval's absolute time.
    pub start_epoch_s: f64,
    pub intervals: Vec<LogInterval>,
}

/// A histogram line to write.
pub struct LogLine<'a> {
    pub tag: Option<&'a str>,
    pub start_s: f64,
    pub length_s: f64,
    pub hist: &'a Histogram<u64>,
}

fn non_negative_duration(seconds: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(seconds.max(0.0)).map_err(|_| {
        anyhow!("{what} is {seconds} s, which is not a usable time; it must be finite")
    })
}

/// Writes an interval log of nanosecond histograms: `comments` first (one `#` line each),
/// then StartTime = BaseTime = `start_epoch_s`, the legend, MaxValueDivisor 1000 (so
/// Interval_Max reads in microseconds), and one line per entry of `lines`.
pub fn write_interval_log(
    comments: &[&str],
    start_epoch_s: f64,
    lines: &[LogLine<'_>],
) -> anyhow::Result<Vec<u8>> {
    let start = UNIX_EPOCH + non_negative_duration(start_epoch_s, "the run's start time")?;
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut header = IntervalLogWriterBuilder::new();
        header.add_comment("[Histogram log format version 1.3]");
        for c in comments {
            header.add_comment(c);
        }
        header.with_start_time(start).with_base_time(start);
        header
            .begin_log_with(&mut out, &mut serializer)
            .context("writing the interval log header")?;
    }
    // The legend goes after the header comments, as Java writes it. A second builder writes
    // only the MaxValueDivisor comment and then the histograms.
    writeln!(out, "{LEGEND}").context("writing the interval log legend")?;
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)
        .context("writing the interval log header")?;
    for line in lines {
        let tag = match line.tag {
            Some(t) => Some(Tag::new(t).ok_or_else(|| {
                anyhow!("interval log tag {t:?} must not contain ',', ' ', CR or LF")
            })?),
            None => None,
        };
        writer
            .write_histogram(
                line.hist,
                non_negative_duration(line.start_s, "an interval's start")?,
                non_negative_duration(line.length_s, "an interval's length")?,
                tag,
            )
            .map_err(|e| anyhow!("writing an interval histogram: {e}"))?;
    }
    Ok(out)
}

/// Decodes one base64 V2 (compressed or not) histogram into an auto-resizing one.
pub fn decode_histogram(encoded: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .context("the histogram is not valid base64")?;
    let decoded: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| anyhow!("the histogram does not decode: {e:?}"))?;
    let mut h = new_histogram();
    h.add(&decoded)
        .map_err(|e| anyhow!("the histogram does not fit: {e:?}"))?;
    Ok(h)
}

/// Parses an interval log, decoding every histogram. Timestamps follow Java's
/// `HistogramLogReader`: with BaseTime they are offsets from it; with only StartTime they
/// are offsets when they are more than a year smaller than it, else absolute; with neither
/// they are absolute Unix times.
pub fn read_interval_log(text: &[u8]) -> anyhow::Result<IntervalLog> {
    let mut start_time: Option<f64> = None;
    let mut base_time: Option<f64> = None;
    // (tag, timestamp as written, length, histogram)
    let mut raw: Vec<(Option<String>, f64, f64, Histogram<u64>)> = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        let entry = entry.map_err(|e| {
            let offset = match e {
                hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                    offset,
                } => offset,
            };
            let line = text[..offset.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            anyhow!("line {line} is neither a comment nor an interval histogram")
        })?;
        match entry {
            LogEntry::StartTime(t) => start_time = Some(t.as_secs_f64()),
            LogEntry::BaseTime(t) => base_time = Some(t.as_secs_f64()),
            LogEntry::Interval(ilh) => {
                let hist = decode_histogram(ilh.encoded_histogram()).with_context(|| {
                    format!("interval at {:.3} s", ilh.start_timestamp().as_secs_f64())
                })?;
                raw.push((
                    ilh.tag().map(|t| t.as_str().to_owned()),
                    ilh.start_timestamp().as_secs_f64(),
                    ilh.duration().as_secs_f64(),
                    hist,
                ));
            }
        }
    }
    const YEAR_S: f64 = 365.0 * 24.0 * 3600.0;
    let first_ts = raw.first().map(|r| r.1);
    let base = match (base_time, start_time) {
        (Some(b), _) => b,
        (None, Some(s)) if first_ts.is_some_and(|t| t < s - YEAR_S) => s,
        _ => 0.0,
    };
    let start_epoch_s = start_time.or(base_time).or(first_ts).unwrap_or(0.0);
    if !start_epoch_s.is_finite() {
        bail!("the log's start time is not a number");
    }
    Ok(IntervalLog {
        start_epoch_s,
        intervals: raw
            .into_iter()
            .map(|(tag, ts, length_s, hist)| LogInterval {
                tag,
                start_s: base + ts - start_epoch_s,
                length_s,
                hist,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(x: &mut u64) -> u64 {
        *x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *x >> 33
    }

    #[test]
    fn interval_log_round_trips_through_the_crate_reader() {
        let mut seed = 7;
        let hists: Vec<Histogram<u64>> = (0..5)
            .map(|i| {
                let mut h = new_histogram();
                for _ in 0..(1000 * (i + 1)) {
                    h.record(10_000 + lcg(&mut seed) % 5_000_000)
                        .expect("record");
                }
                h
            })
            .collect();
        let mut total = new_histogram();
        for h in &hists {
            total.add(h).expect("add");
        }
        let mut lines: Vec<LogLine<'_>> = hists
            .iter()
            .enumerate()
            .map(|(i, h)| LogLine {
                tag: None,
                start_s: i as f64,
                length_s: 1.0,
                hist: h,
            })
            .collect();
        lines.push(LogLine {
            tag: Some("measured"),
            start_s: 1.0,
            length_s: 4.0,
            hist: &total,
        });
        let start = 1_718_000_000.125;
        let bytes = write_interval_log(&["values are ns"], start, &lines).expect("write");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.starts_with("#[Histogram log format version 1.3]\n#values are ns\n"));
        assert!(text.contains("#[StartTime: 1718000000.125 (seconds since epoch)]\n"));
        assert!(text.contains("#[BaseTime: 1718000000.125 (seconds since epoch)]\n"));
        assert!(text.contains(&format!("{LEGEND}\n#[MaxValueDivisor: 1000.000]\n")));
        // Interval_Max in microseconds.
        let first_max = format!("0.000,1.000,{:.3},HISTF", hists[0].max() as f64 / 1000.0);
        assert!(text.contains(&first_max), "{first_max} not in\n{text}");
        assert!(text.contains("\nTag=measured,1.000,4.000,"));

        // Read it back with the crate's own iterator and deserializer, not our reader.
        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(ilh) = entry.expect("parses") {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(ilh.encoded_histogram())
                    .expect("base64");
                let h: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut &raw[..])
                    .expect("deserializes");
                seen.push((ilh.tag().map(|t| t.as_str().to_owned()), h));
            }
        }
        assert_eq!(seen.len(), 6);
        for (i, (tag, h)) in seen.iter().enumerate() {
            let want = if i < 5 { &hists[i] } else { &total };
            assert_eq!(tag.as_deref(), if i < 5 { None } else { Some("measured") });
            assert_eq!(h.len(), want.len());
            assert_eq!(h.max(), want.max());
            assert_eq!(h.min(), want.min());
            for q in [0.5, 0.9, 0.99, 0.999, 0.9999] {
                assert_eq!(h.value_at_quantile(q), want.value_at_quantile(q), "q {q}");
            }
        }

        // And with ours.
        let log = read_interval_log(&bytes).expect("reads");
        assert!((log.start_epoch_s - start).abs() < 1e-6);
        assert_eq!(log.intervals.len(), 6);
        assert!((log.intervals[3].start_s - 3.0).abs() < 1e-9);
        assert_eq!(log.intervals[5].hist, total);
    }

    #[test]
    fn absolute_timestamps_without_base_time() {
        let mut h = new_histogram();
        h.record(5).expect("record");
        let enc = {
            let mut buf = Vec::new();
            hdrhistogram::serialization::Serializer::serialize(
                &mut V2DeflateSerializer::new(),
                &h,
                &mut buf,
            )
            .expect("serialize");
            base64::engine::general_purpose::STANDARD.encode(buf)
        };
        let text = format!("1700000010.500,1.000,0.005,{enc}\n1700000011.500,1.000,0.005,{enc}\n");
        let log = read_interval_log(text.as_bytes()).expect("reads");
        assert!((log.start_epoch_s - 1_700_000_010.5).abs() < 1e-6);
        assert!((log.intervals[1].start_s - 1.0).abs() < 1e-6);
    }

    #[test]
    fn garbage_is_reported_with_its_line() {
        let err = read_interval_log(b"#ok\nnot a histogram line\n").expect_err("must fail");
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let err = read_interval_log(b"0.000,1.000,1.0,AAAA\n").expect_err("must fail");
        assert!(format!("{err:#}").contains("does not decode"), "{err:#}");
    }
}

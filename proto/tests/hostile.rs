//! Hostile bytes: every payload either becomes a row or gets a reason, and the decoder never
//! panics or leaves its builders inconsistent. A mutation fuzzer over the checked-in corpus
//! (`tests/corpus/*.hex`) runs in the normal suite for a bounded number of cases;
//! `INGOT_FUZZ_CASES` raises it for a longer hunt.

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use ingot_proto::{
    BatchDecoder, ContractRegistry, FailureReason, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, RuleConfig,
    contract_arrow_schema, micros_in_timestamp_range,
};

const NOW: i64 = 1_800_000_000_000_000;

fn decoder(contracts: &str, name: &str, rules: &str) -> BatchDecoder {
    let registry = ContractRegistry::load(format!("{}/{contracts}", manifest_dir())).unwrap();
    let message = registry.message(name).unwrap();
    let schema = Arc::new(contract_arrow_schema(&message).unwrap());
    #[derive(serde::Deserialize)]
    struct Rules {
        #[serde(default)]
        rules: Vec<RuleConfig>,
    }
    let rules: Rules = toml::from_str(rules).unwrap();
    BatchDecoder::new(message, schema, 1 << 16).unwrap().with_rules(&rules.rules).unwrap()
}

/// Every rule kind that reads a value, on the fields hostile input targets.
const ORDER_RULES: &str = r#"
[[rules]]
name = "fresh"
field = "occurred_at"
max_age = "36500d"
max_future_skew = "5m"
[[rules]]
name = "positive_total"
field = "total.units"
min = 0
max = 1e12
[[rules]]
name = "sku_shape"
field = "items.sku"
pattern = "^SKU-[0-9]+$"
[[rules]]
name = "known_currency"
field = "currency"
allowed = ["EUR", "USD"]
"#;

fn orders() -> BatchDecoder {
    decoder("contracts", "ingot.demo.v1.OrderEvent", ORDER_RULES)
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let text = include_str!("corpus/order_event.hex");
    let mut out = Vec::new();
    let mut comment = String::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            comment = c.to_string();
        } else if !line.trim().is_empty() {
            let bytes = (0..line.len()).step_by(2).map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap());
            out.push((comment.clone(), bytes.collect()));
        }
    }
    out
}

/// Protobuf wire bytes for a Timestamp field 9 (`occurred_at`) of an otherwise valid order.
fn order_at(seconds: i64, nanos: i64) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut ts = Vec::new();
    ts.push(0x08);
    varint(seconds as u64, &mut ts);
    ts.push(0x10);
    varint(nanos as u64, &mut ts);
    let mut out = b"\x12\x03k-1\x1a\x03o-1\x42\x03EUR".to_vec();
    out.push(0x4a);
    varint(ts.len() as u64, &mut out);
    out.extend(ts);
    out
}

#[test]
fn timestamps_outside_years_1_to_9999_are_quarantined_as_out_of_range() {
    let mut decoder = orders();
    for (seconds, nanos) in [
        (8_300_000_000_000, 0),
        (-(1 << 40), 0),
        (i64::MIN, 0),
        (i64::MAX, 0),
        (MAX_TIMESTAMP_SECONDS + 1, 0),
        (MIN_TIMESTAMP_SECONDS - 1, 0),
        (1_790_000_000, -1),
        (1_790_000_000, 1_000_000_000),
    ] {
        let failure = decoder.push(Some(&order_at(seconds, nanos)), NOW).unwrap().unwrap_err();
        assert_eq!(failure.reason, FailureReason::OutOfRange, "{seconds}s {nanos}ns: {failure}");
        assert_eq!(failure.reason.code(), "out_of_range");
    }
    assert_eq!(decoder.rows(), 0, "nothing out of range reaches the builders");
}

#[test]
fn timestamps_at_the_edges_of_the_range_are_kept() {
    // No age rule here: the edges themselves must be representable.
    let mut decoder = decoder("contracts", "ingot.demo.v1.OrderEvent", "");
    decoder.push(Some(&order_at(MIN_TIMESTAMP_SECONDS, 0)), NOW).unwrap().unwrap();
    decoder.push(Some(&order_at(MAX_TIMESTAMP_SECONDS, 999_999_999)), NOW).unwrap().unwrap();
    let batch = decoder.finish().unwrap();
    let column = batch.column_by_name("occurred_at").unwrap().as_primitive::<TimestampMicrosecondType>();
    assert_eq!(column.value(0), MIN_TIMESTAMP_SECONDS * 1_000_000);
    assert_eq!(column.value(1), MAX_TIMESTAMP_SECONDS * 1_000_000 + 999_999);
}

#[test]
fn an_age_rule_on_the_oldest_timestamp_reports_instead_of_overflowing() {
    let mut decoder = orders();
    let failure = decoder.push(Some(&order_at(MIN_TIMESTAMP_SECONDS, 0)), i64::MAX).unwrap().unwrap_err();
    assert_eq!(failure.reason, FailureReason::RuleViolation { rule: "fresh".into() }, "{failure}");
}

#[test]
fn every_corpus_payload_decodes_or_gets_a_reason() {
    let mut decoder = orders();
    let mut kept = 0;
    for (what, bytes) in corpus() {
        match decoder.push(Some(&bytes), NOW).unwrap_or_else(|e| panic!("{what}: decoder broke: {e}")) {
            Ok(()) => kept += 1,
            Err(failure) => assert!(!failure.detail.is_empty(), "{what}: a reason without detail"),
        }
    }
    assert!(kept >= 1, "the valid seed decodes");
    assert_batch_sound(&mut decoder, kept);
}

/// Mutations of every seed (and of valid encodings) through the decoders with rules: no
/// panic, no inconsistent builders, nothing out of range in the batch.
#[test]
fn mutated_payloads_never_break_the_decoder() {
    let cases: usize = std::env::var("INGOT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let seeds: Vec<Vec<u8>> = corpus().into_iter().map(|(_, b)| b).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoders = [orders(), decoder("tests/contracts", "test.v1.AllTypes", "")];
    let mut kept = [0usize; 2];
    for case in 0..cases {
        let seed = &seeds[rng.below(seeds.len())];
        let payload = mutate(seed, &mut rng);
        let which = case % 2;
        let outcome = decoders[which]
            .push(Some(&payload), NOW)
            .unwrap_or_else(|e| panic!("case {case}: decoder broke on {}: {e}", hex(&payload)));
        match outcome {
            Ok(()) => kept[which] += 1,
            // The decoder contains panics as quarantines; the fuzzer must still see them.
            Err(failure) => assert!(
                !failure.detail.contains("decoder panicked"),
                "case {case}: {failure} on {}",
                hex(&payload)
            ),
        }
        if case % 1_000 == 999 {
            for (d, k) in decoders.iter_mut().zip(kept.iter_mut()) {
                assert_batch_sound(d, *k);
                *k = 0;
            }
        }
    }
}

/// The decoder's batch has one row per kept message and only representable timestamps.
fn assert_batch_sound(decoder: &mut BatchDecoder, kept: usize) {
    let batch = decoder.finish().expect("consistent builders");
    assert_eq!(batch.num_rows(), kept);
    for column in batch.columns() {
        if let Some(ts) = column.as_primitive_opt::<TimestampMicrosecondType>() {
            for i in 0..ts.len() {
                assert!(ts.is_null(i) || micros_in_timestamp_range(ts.value(i)), "{}", ts.value(i));
            }
        }
    }
}

/// One random edit of the kinds that break decoders: bit flips, truncation, inserted
/// bytes, extreme varints, duplicated spans.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = if out.is_empty() { 0 } else { rng.below(out.len() + 1) };
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(at),
            2 => out.insert(at.min(out.len()), rng.next() as u8),
            3 => {
                let extreme: &[u8] = match rng.below(3) {
                    0 => &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                    1 => &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
                    _ => &[0xff, 0xff, 0xff, 0xff, 0x0f],
                };
                let at = at.min(out.len());
                out.splice(at..at, extreme.iter().copied());
            }
            4 if out.len() > 2 => {
                let start = rng.below(out.len() - 1);
                let end = (start + 1 + rng.below(8)).min(out.len());
                let span = out[start..end].to_vec();
                let at = at.min(out.len());
                out.splice(at..at, span);
            }
            _ => {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    out[i] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)];
                }
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// xorshift64*: reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The package directory, read when the test runs: a test binary another checkout built into
/// a shared target directory must read this checkout's files, not that one's.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
}

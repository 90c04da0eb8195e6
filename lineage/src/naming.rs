//! Dataset identifiers by the OpenLineage naming rules, so ingot's nodes join with those of
//! other producers (Spark, Flink, Trino) in Marquez.

/// A Kafka topic: namespace `kafka://<first bootstrap host:port>`, name = topic.
pub fn kafka(brokers: &str, topic: &str) -> (String, String) {
    let first = brokers.split(',').next().unwrap_or(brokers).trim();
    let first = first.rsplit("://").next().unwrap_or(first);
    (format!("kafka://{first}"), topic.to_string())
}

/// An Iceberg table by its location: `file:///x/y` → (`file`, `/x/y`); `s3://b/k` →
/// (`s3://b`, `k`).
pub fn iceberg_location(location: &str) -> (String, String) {
    let location = location.trim_end_matches('/');
    if let Some(path) = location.strip_prefix("file://").or_else(|| location.strip_prefix("file:")) {
        return ("file".to_string(), format!("/{}", path.trim_start_matches('/')));
    }
    if location.starts_with('/') {
        return ("file".to_string(), location.to_string());
    }
    match location.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = if scheme == "s3a" || scheme == "s3n" { "s3" } else { scheme };
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("{scheme}://{authority}"), path.to_string())
        }
        None => ("file".to_string(), location.to_string()),
    }
}

/// Marquez's namespace pattern: `^[a-zA-Z:;=/0-9_\-\.@+]{1,1024}$`.
pub fn is_marquez_namespace(namespace: &str) -> bool {
    !namespace.is_empty()
        && namespace.len() <= 1024
        && namespace.chars().all(|c| c.is_ascii_alphanumeric() || ":;=/_-.@+".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            kafka("127.0.0.1:9092,other:9092", "orders"),
            ("kafka://127.0.0.1:9092".into(), "orders".into())
        );
        assert_eq!(kafka("PLAINTEXT://k:9092", "t").0, "kafka://k:9092");
        assert_eq!(
            iceberg_location("file:///var/lake/silver/orders"),
            ("file".into(), "/var/lake/silver/orders".into())
        );
        assert_eq!(
            iceberg_location("s3a://lake/wh/silver/orders/"),
            ("s3://lake".into(), "wh/silver/orders".into())
        );
        assert!(is_marquez_namespace("kafka://127.0.0.1:9092"));
        assert!(!is_marquez_namespace("has space"));
    }
}

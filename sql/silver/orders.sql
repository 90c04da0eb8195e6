-- Silver orders: one row per business event, money as exact decimals.
--
-- ingot runs this over the bronze rows that arrived since the last run (`bronze.orders` is
-- only those rows here), then drops rows whose idempotency_key silver already holds, and
-- sends rows behind the watermark to the quarantine as `late`.
--
-- Business rules: `_rule_violation` names the first rule a row breaks (NULL = passes). ingot
-- quarantines those rows with that name instead of writing them to silver.
-- Keep the `_kafka_*` columns: they tie each silver row to its bronze row.
SELECT
  idempotency_key,
  order_id,
  customer_id,
  status,
  currency,
  occurred_at,
  CAST(CAST(total.units * 100 + total.nanos / 10000000 AS DECIMAL(20, 2)) / 100 AS DECIMAL(18, 2)) AS total_amount,
  CAST(cardinality(items) AS INT) AS line_items,
  _kafka_topic,
  _kafka_partition,
  _kafka_offset,
  CASE
    WHEN customer_id = '' THEN 'customer_present'
    WHEN status = 'ORDER_STATUS_UNSPECIFIED' THEN 'status_known'
    WHEN cardinality(items) = 0 THEN 'has_line_items'
  END AS _rule_violation
FROM bronze.orders

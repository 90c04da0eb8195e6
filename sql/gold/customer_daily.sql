-- Orders and spend per customer and day (config: window = "1d").
SELECT
  date_trunc('day', occurred_at) AS window_start,
  customer_id,
  count(*) AS orders,
  sum(total_amount) AS spent,
  sum(line_items) AS line_items
FROM silver.orders
GROUP BY 1, 2

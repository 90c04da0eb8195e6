-- Revenue per hour and currency. `window_start` is the tumbling window (config: window = "1h");
-- ingot recomputes only the windows new silver rows touched and replaces them atomically.
SELECT
  date_trunc('hour', occurred_at) AS window_start,
  currency,
  count(*) AS orders,
  sum(total_amount) AS revenue,
  count(DISTINCT customer_id) AS customers
FROM silver.orders
GROUP BY 1, 2

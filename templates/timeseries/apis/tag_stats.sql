-- Events and time range per tag in a window, busiest tags first.
-- Served as GET /consumption/tag_stats?start=…&end=…[&limit=…][&format=json|ndjson|csv]
-- @param start BigInt  window start, ns since the Unix epoch
-- @param end BigInt  window end (exclusive), ns
-- @param limit Int = 10  how many tags
SELECT tag, count() AS events, min(time) AS first_time, max(time) AS last_time
FROM Measurement
WHERE time >= {start} AND time < {end}
GROUP BY tag
ORDER BY events DESC, tag
LIMIT {limit}

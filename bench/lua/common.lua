-- Shared by every script (loaded with dofile): the auth header and the machine-readable
-- RESULT line that bench/harness.py parses. Latencies are wrk's closed-loop latencies.
token = os.getenv("BENCH_TOKEN") or "user1-token"
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f n=%d non2xx=%d sockerr=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end

-- Round-robin over ids read from a file (one a line), for scripts that rotate paths.
function read_ids(var)
  local ids = {}
  local path = os.getenv(var)
  if path then
    for line in io.lines(path) do
      if line ~= "" then ids[#ids + 1] = line end
    end
  end
  return ids
end

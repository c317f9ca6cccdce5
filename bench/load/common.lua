-- Shared by the wrk scripts: random ids over the synthetic catalogue, and one result
-- line per run that bench/load/run.sh collects.
local n = tonumber(os.getenv("MOTIF_TRACKS") or "1000000")
local seeded = false

function track_id()
  if not seeded then
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
    seeded = true
  end
  return math.random(1, n)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d errors=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.requests, errors))
end

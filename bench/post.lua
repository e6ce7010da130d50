-- wrk script for every target: the same POST, the body and key from the environment, and one
-- machine-readable summary line (wrk's own text output has no stable format to parse).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key ~= nil and key ~= "" then
  wrk.headers[os.getenv("BENCH_KEY_HEADER") or "x-api-key"] = key
end

-- BENCH_IDEMPOTENCY: "replay" sends BENCH_IDEMPOTENCY_KEY on every request (answered from the store);
-- "fresh" a new key per request (each one claimed, run and recorded), unique per run (BENCH_RUN) and thread.
local idempotency = os.getenv("BENCH_IDEMPOTENCY") or ""
if idempotency == "replay" then
  wrk.headers["Idempotency-Key"] = os.getenv("BENCH_IDEMPOTENCY_KEY")
elseif idempotency == "fresh" then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
  end
  local prefix = "bench-" .. (os.getenv("BENCH_RUN") or tostring(os.time())) .. "-"
  local n = 0
  function request()
    n = n + 1
    wrk.headers["Idempotency-Key"] = prefix .. tostring(thread_id or 0) .. "-" .. n
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end

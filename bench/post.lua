-- wrk script: POST the body in BENCH_BODY_FILE with the headers in BENCH_HEADERS
-- ("name: value" lines), then print one JSON line with what bench/run.mjs needs. No response()
-- callback: defining one makes wrk keep every body, which costs the load generator CPU;
-- errors.status already counts answers with a status of 400 or more.
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["content-type"] = "application/json"
for name, value in string.gmatch(os.getenv("BENCH_HEADERS") or "", "([^:\n]+):%s*([^\n]*)") do
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
      .. '"status":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write, errors.timeout,
    errors.status, latency:percentile(50), latency:percentile(99)))
end

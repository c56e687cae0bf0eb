-- Cycles through pre-generated, correctly signed webhook requests (one per line:
-- "<signature>\t<body>"), each thread taking its own disjoint share, so no body is sent twice
-- unless the file runs out (counted as `wrapped`).
local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_REQUESTS")
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  requests = {}
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      local signature = string.sub(line, 1, tab - 1)
      local body = string.sub(line, tab + 1)
      table.insert(requests, wrk.format("POST", "/webhooks/printmotor", {
        ["Content-Type"] = "application/json",
        ["X-Printmotor-Hmac-SHA256"] = signature,
      }, body))
    end
    i = i + 1
  end
  n = 0
  wrapped = 0
end

function request()
  n = n + 1
  if n > #requests then
    n = 1
    wrapped = wrapped + 1
  end
  return requests[n]
end

function done(summary, latency, requests_)
  local wrapped_total = 0
  for _, thread in ipairs(threads) do
    wrapped_total = wrapped_total + (thread:get("wrapped") or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"wrapped":%d}\n',
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    wrapped_total))
end

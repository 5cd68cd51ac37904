-- wrk script for `make bench` (tests/bench/run_bench.py sets the environment).
--   BENCH_MODE      "ping" (GET /api/v1/ping) or "create" (POST /api/v1/repair-orders)
--   BENCH_TOKEN     the bearer token
--   BENCH_RUN       a number unique to this wrk run: it makes keys and IMEIs unique
--   BENCH_PURCHASE  the devices' purchase date (YYYY-MM-DD)
--   BENCH_DELAY_MS  mean pause per connection between requests (0: back to back)
--   BENCH_OUT       file the summary and the latency histogram are written to

local mode = os.getenv("BENCH_MODE")
local token = os.getenv("BENCH_TOKEN")
local run = tonumber(os.getenv("BENCH_RUN"))
local purchase = os.getenv("BENCH_PURCHASE")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local counter = 0

math.randomseed(run)

-- The check digit that makes `body` .. digit pass the Luhn check (servicekit.identifiers).
local function luhn_digit(body)
  local total = 0
  local length = #body
  for i = length, 1, -1 do
    local value = tonumber(body:sub(i, i))
    if (length - i) % 2 == 0 then
      value = value * 2
      if value > 9 then
        value = value - 9
      end
    end
    total = total + value
  end
  return tostring((10 - total % 10) % 10)
end

local ping = wrk.format("GET", "/api/v1/ping", { ["Authorization"] = "Bearer " .. token })

function request()
  if mode == "ping" then
    return ping
  end
  counter = counter + 1
  -- 86 + 4 digits of the run + 8 of the counter + check digit: unique within a bench.
  local body14 = string.format("86%04d%08d", run % 10000, counter)
  local imei = body14 .. luhn_digit(body14)
  local phone = string.format("139%08d", math.random(0, 99999999))
  local body = string.format(
    '{"customer":{"name":"压测客户","phone":"%s"},'
      .. '"device":{"imei":"%s","brand":"huawei","model":"p60","purchase_date":"%s"},'
      .. '"fault":{"description":"benchmark: screen cracked"},"service_type":"repair"}',
    phone,
    imei,
    purchase
  )
  return wrk.format("POST", "/api/v1/repair-orders", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%d-%d", run, counter),
  }, body)
end

if delay_ms > 0 then
  -- Randomised around the mean, so the connections don't send in lockstep.
  function delay()
    return delay_ms * (0.5 + math.random())
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  local errors = summary.errors
  out:write(
    string.format(
      "%d %d %d\n",
      summary.duration,
      errors.status,
      errors.connect + errors.read + errors.write + errors.timeout
    )
  )
  -- The histogram: each distinct latency (microseconds) and how many requests took it.
  for i = 1, #latency do
    local value, count = latency(i)
    out:write(string.format("%d %d\n", value, count))
  end
  out:close()
end

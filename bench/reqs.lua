-- reqs.lua - wrk script that replays a request file (see bench/seed.js):
--   METHOD <TAB> PATH <TAB> AUTHORIZATION or - <TAB> BODY or -
--
--   wrk -t T -c C -d D -s bench/reqs.lua URL -- FILE MODE T [MAX]
--
-- The lines are dealt to the T threads (line j to thread j mod T) so that
-- the connections of the run work on different rows.  MODE cycle: each
-- thread goes round its lines for ever (a thread with 32 connections and
-- more than 32 lines never has two requests for one line in flight).  MODE
-- once: each line is sent once (unique webhook event ids); after that the
-- thread sends GET /healthz, counted apart as `spare`.  done() prints one
-- line: RESULT key=value ... with requests/s, p50/p99/p99.9 latency in ms,
-- non-2xx responses and socket errors.  MAX (optional): a thread stops
-- after MAX/T responses (the "after 10,000 requests" memory figure).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[3] or "1")
   max_resp = math.floor(tonumber(args[4] or "0") / nthreads)
   mode = args[2] or "cycle"
   reqs = {}
   local j = 0
   for line in io.lines(file) do
      if line ~= "" then
         if j % nthreads == tid then
            local m, p, a, b = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
            local h = {}
            if a ~= "-" then h["Authorization"] = a end
            if b ~= "-" then
               h["Content-Type"] = "application/json"
            else
               b = nil
            end
            table.insert(reqs, wrk.format(m, p, h, b))
         end
         j = j + 1
      end
   end
   spare_req = wrk.format("GET", "/healthz")
   idx = 0
   spare = 0
   ok = 0
   bad = 0
   s5xx = 0
end

function request()
   idx = idx + 1
   if idx > #reqs then
      if mode == "once" then
         spare = spare + 1
         return spare_req
      end
      idx = 1
   end
   return reqs[idx]
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      bad = bad + 1
      if status >= 500 then s5xx = s5xx + 1 end
   end
   if max_resp > 0 and ok + bad >= max_resp then wrk.thread:stop() end
end

function done(summary, latency, requests)
   local ok_n, bad_n, spare_n, s5 = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      ok_n = ok_n + t:get("ok")
      bad_n = bad_n + t:get("bad")
      spare_n = spare_n + t:get("spare")
      s5 = s5 + t:get("s5xx")
   end
   local e = summary.errors
   local sockerr = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d seconds=%.2f rps=%.1f ok=%d non2xx=%d s5xx=%d sockerr=%d spare=%d" ..
      " p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f\n",
      summary.requests, secs, (summary.requests - spare_n) / secs, ok_n - spare_n, bad_n, s5,
      sockerr, spare_n, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000, latency.max / 1000))
end

-- POST /threads/{id}/runs/wait, round-robin over the thread ids of the file $RUN_THREADS.
-- URL = the server root.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local ids = read_ids("RUN_THREADS")
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local body = '{"assistant_id":"agent","input":{"messages":[{"role":"human","content":"hi"}]}}'
request = function()
  i = i % #ids + 1
  return wrk.format(nil, "/threads/" .. ids[i] .. "/runs/wait", nil, body)
end

-- GET /threads/{id}, round-robin over the thread ids of the file $THREAD_IDS (scale bench).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local ids = read_ids("THREAD_IDS")
local i = 0
wrk.method = "GET"
request = function()
  i = i % #ids + 1
  return wrk.format(nil, "/threads/" .. ids[i])
end

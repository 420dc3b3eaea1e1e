-- POST /threads/search {"limit":10} (owner-filtered by the auth handler).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.body = '{"limit":10}'
wrk.headers["Content-Type"] = "application/json"

-- A 401: POST /threads/search with "Bearer nope" (set BENCH_TOKEN=nope). Every response
-- counts in non2xx; that is expected here.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.body = '{"limit":10}'
wrk.headers["Content-Type"] = "application/json"

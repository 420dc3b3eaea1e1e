-- POST /threads {"metadata":{}} (the auth handler stamps metadata.owner).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.body = '{"metadata":{}}'
wrk.headers["Content-Type"] = "application/json"

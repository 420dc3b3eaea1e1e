-- PUT /store/items in user1's namespace (the store handler asserts namespace[0] == identity).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "PUT"
wrk.body = '{"namespace":["user1","notes"],"key":"k","value":{"v":1}}'
wrk.headers["Content-Type"] = "application/json"

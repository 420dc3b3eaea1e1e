-- GET on the URL's path (GET /threads/{id}, GET /store/items?namespace=user1.notes&key=k).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"

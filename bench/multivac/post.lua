-- wrk script: POST /multivac/data (form field "data") or POST /messages (JSON), a new datum
-- every request, unique across threads: "bench <run> <thread> <n> xxxx...". Args: run tag,
-- path.
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

function init(args)
    run_tag = args[1] or "run"
    path = args[2] or "/multivac/data"
    counter = 0
    padding = string.rep("x", 200)
end

function request()
    counter = counter + 1
    local datum = string.format("bench %s %d %d %s", run_tag, thread_id, counter, padding)
    if path == "/messages" then
        return wrk.format("POST", path, {["Content-Type"] = "application/json"},
                          '{"message":"' .. datum .. '"}')
    end
    return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"},
                      "data=" .. datum:gsub(" ", "+"))
end

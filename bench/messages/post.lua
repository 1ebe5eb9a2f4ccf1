-- wrk script: POST /messages with a new message every request (each one is a real write),
-- unique across threads and runs: "bench <run> <thread> <n> xxxx...". Args: run tag, path.
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

function init(args)
    run_tag = args[1] or "run"
    path = args[2] or "/messages"
    counter = 0
    padding = string.rep("x", 200)
end

function request()
    counter = counter + 1
    local body = string.format('{"message":"bench %s %d %d %s"}', run_tag, thread_id, counter,
                               padding)
    return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

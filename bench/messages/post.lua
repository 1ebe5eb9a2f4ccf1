-- wrk script: POST a new datum every request (each one is a real write), unique across
-- threads and runs: "bench <run> <thread> <n> xxxx...". Args: run tag, path, and optionally a
-- form field: without it the body is JSON {"message": datum} (POST /messages), with it the
-- form FIELD=datum (POST /multivac/data, field "data").
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

function init(args)
    run_tag = args[1] or "run"
    path = args[2] or "/messages"
    form_field = args[3]
    counter = 0
    padding = string.rep("x", 200)
end

function request()
    counter = counter + 1
    local datum = string.format("bench %s %d %d %s", run_tag, thread_id, counter, padding)
    if form_field then
        return wrk.format("POST", path, {["Content-Type"] = "application/x-www-form-urlencoded"},
                          form_field .. "=" .. datum:gsub(" ", "+"))
    end
    return wrk.format("POST", path, {["Content-Type"] = "application/json"},
                      '{"message":"' .. datum .. '"}')
end

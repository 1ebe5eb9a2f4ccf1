-- wrk script: GET /messages/<digest> cycling through the digests listed (one a line) in the
-- file named by the first argument, each thread starting at a different place. With a second
-- argument, every request is a GET of that path instead (the transport ceiling).
local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_id", thread_count)
end

function init(args)
    fixed = args[2]
    paths = {}
    for line in io.lines(args[1]) do
        paths[#paths + 1] = "/messages/" .. line
    end
    index = (thread_id * 97) % #paths
end

function request()
    if fixed then
        return wrk.format("GET", fixed)
    end
    index = index % #paths + 1
    return wrk.format("GET", paths[index])
end

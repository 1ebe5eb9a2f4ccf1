"""Reading `strace -f -yy -s N -o FILE -p PID ...` output as a sequence of system calls.

strace writes one line per event of every traced thread, in the order it observes them;
a call that another thread's event interrupts is split into "<unfinished ...>" and
"<... NAME resumed>". A Call knows the line where it started and the line where it
returned, so "A returned before B started" is `a.end < b.start`, which is what a
durability order is about: the flush must have returned before the reply is written.

Only what the durability test needs: pid, name, the argument text (with -yy, file
descriptors read `5</path/to/file>` and sockets `7<UNIX-STREAM:[...]>`), the return value.
"""

import dataclasses
import re

_LINE = re.compile(r"^(?P<pid>\d+)\s+(?:\d\d:\d\d:\d\d\.\d+\s+)?(?P<rest>.*)$")
_START = re.compile(r"^(?P<name>\w+)\((?P<args>.*)$")
_RESUMED = re.compile(r"^<\.\.\. (?P<name>\w+) resumed>(?P<args>.*)$")
_RETURN = re.compile(r"^(?P<args>.*)\)\s+=\s+(?P<ret>-?\d+|\?|0x[0-9a-f]+)(?:\s.*)?$")
_UNFINISHED = " <unfinished ...>"


@dataclasses.dataclass
class Call:
    pid: int
    name: str
    args: str
    start: int             # index of the line where the call was entered
    end: int = None        # index of the line where it returned (None: never, in the trace)
    ret: str = None

    def ok(self):
        return self.ret is not None and self.ret not in ("?",) and not self.ret.startswith("-")

    def fd_path(self):
        """The first argument's description with -yy: the path or socket in <...>."""
        m = re.match(r"\d+<(.*?)>", self.args)
        return m.group(1) if m else ""


def parse(text):
    """The calls of a trace, in the order they started."""
    calls, pending = [], {}
    for index, raw in enumerate(text.splitlines()):
        m = _LINE.match(raw)
        if not m:
            continue
        pid, rest = int(m.group("pid")), m.group("rest")
        if rest.startswith(("---", "+++")):
            continue
        resumed = _RESUMED.match(rest)
        if resumed:
            call = pending.pop((pid, resumed.group("name")), None)
            r = _RETURN.match(resumed.group("args"))
            if call is not None and r:
                call.end, call.ret = index, r.group("ret")
                call.args += r.group("args")
            continue
        start = _START.match(rest)
        if not start:
            continue
        if rest.endswith(_UNFINISHED):
            call = Call(pid, start.group("name"), start.group("args")[:-len(_UNFINISHED)], index)
            pending[(pid, call.name)] = call
            calls.append(call)
            continue
        r = _RETURN.match(start.group("args"))
        if r:
            calls.append(Call(pid, start.group("name"), r.group("args"), index, index,
                              r.group("ret")))
    return calls


WRITES = ("write", "writev", "pwrite64", "pwritev", "pwritev2", "sendto", "sendmsg")
READS = ("read", "readv", "recvfrom", "recvmsg")
FLUSHES = ("fdatasync", "fsync", "sync_file_range", "msync")


def first(calls, predicate, what):
    for call in calls:
        if predicate(call):
            return call
    raise AssertionError(f"no {what} in the trace")


def unflushed_writes(calls, reply, is_file, is_sync_fd=lambda call: False):
    """The writes to the file (is_file(call)) that started before `reply` and were not made
    durable before it started: a write through an O_DSYNC descriptor (is_sync_fd) is durable
    when it returns; any other needs a flush of the file that started after the write
    returned and returned before the reply was written. An empty list is the order a 201
    promises."""
    writes = [c for c in calls if c.name in WRITES and is_file(c) and c.start < reply.start]
    flushes = [c for c in calls if c.name in FLUSHES and is_file(c) and c.ok()
               and c.end is not None and c.end < reply.start]
    problems = []
    for w in writes:
        if w.end is None or w.end > reply.start or not w.ok():
            problems.append(w)
        elif is_sync_fd(w):
            continue
        elif not any(f.start > w.end for f in flushes):
            problems.append(w)
    return problems

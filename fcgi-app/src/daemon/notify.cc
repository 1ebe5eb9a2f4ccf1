#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <string>

namespace hashd {
namespace {

Status Send(const std::string& message) {
    if (int sent = sd_notify(0, message.c_str()); sent < 0)
        return Error{ErrorKind::kInternal, "sd_notify",
                     "cannot notify systemd: " + std::string(std::strerror(-sent))};
    return Ok{};
}

}  // namespace

Status NotifyReady(std::string_view status) {
    return Send("READY=1\nSTATUS=" + std::string(status));
}

Status NotifyStopping(std::string_view status) {
    return Send(status.empty() ? std::string("STOPPING=1")
                               : "STOPPING=1\nSTATUS=" + std::string(status));
}

Status NotifyWatchdog() {
    return Send("WATCHDOG=1");
}

}  // namespace hashd

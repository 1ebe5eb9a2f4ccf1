#pragma once
// The sd_notify(3) messages both daemons send to systemd (their units are Type=notify):
// READY once they serve, STOPPING when a stop begins, STATUS for `systemctl status`, and the
// watchdog's ping (daemon/watchdog.h). Outside systemd (NOTIFY_SOCKET unset: `make run`, the
// tests) each is a no-op that succeeds.

#include <string_view>

#include "core/result.h"

namespace hashd {

// "READY=1" and "STATUS=<status>". Fails (kInternal, "sd_notify") when systemd's socket is
// set but the message cannot be sent; nothing else is to be done about that then: systemd's
// start timeout reports a READY that never arrived.
Status NotifyReady(std::string_view status);

// "STOPPING=1", and "STATUS=<status>" unless status is empty. Fails as NotifyReady.
Status NotifyStopping(std::string_view status = {});

// "WATCHDOG=1". Fails as NotifyReady.
Status NotifyWatchdog();

}  // namespace hashd

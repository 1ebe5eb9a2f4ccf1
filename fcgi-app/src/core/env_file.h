#pragma once
// The settings of an environment file, read the way hashd's units use one (systemd's
// EnvironmentFile=): `NAME=VALUE` lines, `#` comments and blank lines. Used by
// `hashd-fcgi --check-config FILE` so that a file written at boot (ansible/gcp's
// hashd-gce-config writes /run/hashd-gce/hashd.env from the instance metadata) is checked by
// the app's own config loader before any unit reads it.

#include <map>
#include <string>

#include "core/result.h"

namespace hashd {

// NAME -> VALUE of every setting line of the file at `path`. Only the subset systemd and a
// shell read alike is accepted: a NAME of [A-Za-z_][A-Za-z0-9_]*, a VALUE taken as written
// (no quotes, no escapes, no trailing backslash). An error names the file and the line number,
// never a value (a store URL may carry a password).
Result<std::map<std::string, std::string>> ReadEnvFile(const std::string& path);

}  // namespace hashd

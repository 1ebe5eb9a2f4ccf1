#include "core/env_file.h"

#include <fstream>

namespace hashd {
namespace {

bool ValidName(std::string_view name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name) {
        const bool ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return false;
    }
    return true;
}

Error BadLine(const std::string& path, int number, std::string_view why) {
    return {ErrorKind::kInternal, "invalid_setting",
            path + ":" + std::to_string(number) + ": " + std::string(why)};
}

}  // namespace

Result<std::map<std::string, std::string>> ReadEnvFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) return Error{ErrorKind::kInternal, "invalid_setting", path + ": cannot be read"};
    std::map<std::string, std::string> settings;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line[start] == '#' || line[start] == ';') continue;
        const auto eq = line.find('=');
        if (eq == std::string::npos) return BadLine(path, number, "not NAME=VALUE");
        const std::string name = line.substr(start, eq - start);
        const std::string value = line.substr(eq + 1);
        if (!ValidName(name))
            return BadLine(path, number, "the name is not [A-Za-z_][A-Za-z0-9_]*");
        // systemd would strip quotes and join a line ending in '\', a shell would not: such a
        // value means something else to each reader, so it is refused.
        if (!value.empty() &&
            (value.front() == '"' || value.front() == '\'' || value.back() == '\\'))
            return BadLine(path, number,
                           name + ": write the value without quotes or a trailing \\");
        settings[name] = value;
    }
    return settings;
}

}  // namespace hashd

#include "metrics/exposition.h"

#include <charconv>

namespace hashd::metrics {

std::string FormatDouble(double value) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
    return std::string(buffer, result.ptr);
}

// Label values come from the fixed tables, except the build's version and commit.
std::string EscapeLabel(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

void Exposition::Family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Exposition::Sample(std::string_view name, std::string_view labels, std::string_view value) {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(value).append("\n");
}

void Exposition::Sample(std::string_view name, std::string_view labels, std::uint64_t value) {
    Sample(name, labels, std::string_view(std::to_string(value)));
}

void Exposition::Sample(std::string_view name, std::string_view labels, std::int64_t value) {
    Sample(name, labels, std::string_view(std::to_string(value)));
}

void Exposition::SampleSeconds(std::string_view name, std::string_view labels, double value) {
    Sample(name, labels, std::string_view(FormatDouble(value)));
}

}  // namespace hashd::metrics

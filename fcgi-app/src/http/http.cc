#include "http/http.h"

#include "core/secret.h"
#include "http/http_tables.h"

namespace hashd {

Request::~Request() {
    Wipe(body);
    Wipe(path);
}

const char* ReasonPhrase(int status) {
    const std::size_t i = StatusIndex(status);
    if (i < std::size(kStatuses)) return kStatuses[i].reason.data();
    return status < 500 ? "Client Error" : "Internal Server Error";
}

}  // namespace hashd

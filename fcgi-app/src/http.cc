#include "http.h"

#include "http_tables.h"
#include "secret.h"

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

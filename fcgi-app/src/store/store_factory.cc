// TEMPORARY: placeholder until the LMDB/Redis/PostgreSQL backends land.
#include "message_store.h"

namespace hashd {
namespace {
class UnavailableStore final : public MessageStore {
  public:
    std::string_view Backend() const override { return "none"; }
    Status Put(std::string_view, std::string_view) override { return Down(); }
    Result<std::optional<std::string>> Get(std::string_view) override { return Down(); }
    Status Check() override { return Down(); }

  private:
    static ApiError Down() {
        return {503, "store_unavailable", "The message store is unavailable.", 1};
    }
};
}  // namespace
Result<std::unique_ptr<MessageStore>> OpenMessageStore(const Config&) {
    return std::unique_ptr<MessageStore>(std::make_unique<UnavailableStore>());
}
}  // namespace hashd

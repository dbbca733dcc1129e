#include "engine/runtime/loaded_engine.h"

#include <utility>

#include "engine/runtime/backend_factory.h"

namespace kvserve {

absl::StatusOr<LoadedEngine> LoadEngine(const ModelSource& source, const std::string& backend,
                                        int threads) {
  auto model = LoadModel(source);
  if (!model.ok()) return model.status();
  LoadedEngine engine{.model = *std::move(model), .backend = nullptr};
  if (backend.empty()) return engine;
  auto created =
      CreateBackend(backend, engine.model.config, std::move(engine.model.weights), threads);
  if (!created.ok()) return created.status();
  engine.backend = *std::move(created);
  return engine;
}

}  // namespace kvserve

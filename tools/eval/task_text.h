#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvserve::eval {

// Deterministic randomness for the generated tasks (research/ruler.md §6.4): SplitMix64 with our
// own bounded integers and shuffles, so every standard library draws the same prompts.
class TaskRng {
 public:
  explicit TaskRng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n) by rejection; n > 0.
  uint32_t Below(uint32_t n);
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Below(static_cast<uint32_t>(items.size()))];
  }
  template <typename T>
  void Shuffle(std::vector<T>& items) {  // Fisher-Yates
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[Below(i)]);
  }

 private:
  uint64_t state_;
};

// A per-sample seed from the task's name, its length, the case index and the base seed.
uint64_t SampleSeed(const std::string& task, int length, int index, int seed);

// Kinds of filler text around the needles. None holds digits, hyphens, "special", "magic", "pass
// key" or "VAR", so no answer can be found in the filler by chance.
enum class FillerKind { kEssay, kTechnical, kCode, kNoise };
const char* FillerName(FillerKind kind);

// An endless stream of filler sentences (lines of code for kCode; the five grass/sky/sun sentences
// for kNoise), the same for a given kind and seed.
class FillerStream {
 public:
  FillerStream(FillerKind kind, uint64_t seed) : kind_(kind), rng_(seed) {}
  std::string Next();

 private:
  FillerKind kind_;
  TaskRng rng_;
};

// The first `n` units of the stream for (kind, seed).
std::vector<std::string> FillerUnits(FillerKind kind, uint64_t seed, int n);

// Needle values: a 7-digit number, a dashed code ("KX4-92Q-7PL"), an adjective-noun word pair
// ("amber-falcon"), or a UUID-like string (8-4-4-4-12 lowercase hex).
enum class NeedleKind { kNumber, kDashedCode, kWord, kUuid };
const char* NeedleName(NeedleKind kind);
std::string NeedleValue(NeedleKind kind, TaskRng& rng);
// A key for key → value needles: an adjective-noun pair from lists the filler never uses.
std::string NeedleKey(TaskRng& rng);
// Five uppercase letters, for variable tracking.
std::string VariableName(TaskRng& rng);
// Plain lowercase words for common-word extraction (from lists the filler never uses).
std::vector<std::string> DistinctWords(TaskRng& rng, int n);

}  // namespace kvserve::eval

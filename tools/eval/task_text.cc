#include "tools/eval/task_text.h"

#include <functional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace kvserve::eval {
namespace {

// Filler vocabulary: no digits, hyphens or words used by needles, keys or questions.
const std::vector<std::string> kNouns = {
    "village",  "river",    "teacher",   "garden",   "market",  "painter",  "letter",  "harbor",
    "mountain", "library",  "farmer",    "season",   "journey", "neighbor", "window",  "kitchen",
    "forest",   "merchant", "bridge",    "festival", "road",    "student",  "story",   "family",
    "city",     "meadow",   "sailor",    "lantern",  "orchard", "workshop", "castle",  "valley",
    "traveler", "poet",     "council",   "harvest",  "island",  "chapel",   "school",  "doctor",
    "wagon",    "museum",   "craftsman", "friend",   "winter",  "evening",  "morning", "shop"};
const std::vector<std::string> kAdjectives = {
    "quiet",  "old",    "bright", "distant",  "careful", "patient", "crowded", "narrow",
    "gentle", "busy",   "simple", "familiar", "proud",   "modest",  "windy",   "early",
    "late",   "honest", "small",  "large",    "curious", "tired",   "warm",    "cold"};
const std::vector<std::string> kVerbs = {
    "visited", "remembered", "described", "repaired", "noticed",    "followed",
    "admired", "crossed",    "painted",   "explored", "questioned", "welcomed",
    "built",   "carried",    "studied",   "praised",  "opened",     "watched",
    "reached", "left",       "found",     "shared",   "improved",   "ignored"};
const std::vector<std::string> kEssayFrames = {
    "The {A} {N} {V} the {N} before the {N} was over.",
    "Nobody in the {N} {V} the {A} {N} as often as the {N} did.",
    "When the {N} {V} the {N}, the {A} {N} seemed almost {A}.",
    "It is easy to forget how the {N} {V} the {N} during a {A} {N}.",
    "Most people who {V} the {N} later {V} the {A} {N} as well.",
    "The {N} and the {N} were both {A}, yet only one {V} the {N}.",
    "After a {A} {N}, the {N} {V} the {N} and returned to the {N}.",
    "In the {A} days of the {N}, every {N} {V} a {N} by the {N}.",
    "Some say the {N} {V} the {N} because the {N} was too {A}.",
    "A {A} {N} once {V} the {N}, and the whole {N} talked about it.",
    "The lesson of the {N} is that a {A} {N} rarely {V} the {N}.",
    "Later that {N}, the {N} {V} a {A} {N} near the {N}.",
    "Whether or not the {N} {V} the {N}, the {N} stayed {A}.",
    "There was a {A} {N} behind the {N}, and the {N} {V} it every day."};

const std::vector<std::string> kComponents = {
    "scheduler", "allocator", "parser",  "cache",      "buffer",    "worker",   "router",
    "encoder",   "decoder",   "index",   "queue",      "tokenizer", "server",   "client",
    "handler",   "pipeline",  "monitor", "controller", "registry",  "resolver", "compiler",
    "linker",    "loader",    "socket",  "journal",    "snapshot",  "replica",  "gateway"};
const std::vector<std::string> kTechVerbs = {
    "flushes", "validates", "rejects",   "retries",    "compresses", "serializes", "locks",
    "evicts",  "allocates", "schedules", "reconciles", "forwards",   "caches",     "releases"};
const std::vector<std::string> kTechThings = {
    "the request",    "each record",    "the page table",   "stale entries", "the log",
    "pending writes", "the checksum",   "every connection", "the lease",     "incoming messages",
    "the header",     "idle threads",   "the manifest",     "dirty pages",   "the config file",
    "queued jobs",    "the descriptor", "expired sessions", "the bitmap",    "partial results"};
const std::vector<std::string> kTechFrames = {
    "The {C} {T} {X} before the {C} starts.",
    "If the {C} is full, the {C} {T} {X} and logs a warning.",
    "On shutdown the {C} {T} {X}; the {C} waits for it.",
    "The {C} never {T} {X} while the {C} holds the lock.",
    "Each time the {C} wakes up, it {T} {X} and then {T} {X}.",
    "A slow {C} means the {C} {T} {X} more often than it should.",
    "To keep latency low, the {C} {T} {X} in the background.",
    "The {C} {T} {X} only when the {C} reports an error.",
    "By default the {C} {T} {X}, which the {C} can turn off.",
    "When the {C} restarts, the {C} {T} {X} from the last snapshot."};

const std::vector<std::string> kCodeNames = {
    "buffer", "count", "node",   "entry", "limit", "offset", "result", "state", "value", "queue",
    "total",  "index", "cursor", "item",  "left",  "right",  "head",   "tail",  "size",  "flag"};
const std::vector<std::string> kCodeFrames = {
    "if ({a} > {b}) {\n  {a} = {b};\n}",
    "for (auto& {a} : {b}s) {\n  {c} += {a}.size();\n}",
    "while (!{a}.empty()) {\n  {b} = {a}.front();\n  {a}.pop();\n}",
    "auto {a} = lookup({b}, {c});\nif (!{a}) return false;",
    "{a}.push_back({b});\n{c} = {a}.back();",
    "const bool {a} = {b} == {c};",
    "// keep the {a} and the {b} in step\n{a} = std::max({a}, {b});",
    "void update_{a}(State& {b}) {\n  {b}.{a} = {b}.{c};\n}"};

const std::vector<std::string> kNoise = {
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."};

// Needle keys and common words: lists the filler never uses.
const std::vector<std::string> kKeyAdjectives = {
    "amber",  "silver", "crimson", "velvet",   "frozen", "golden",   "hollow",  "rapid", "silent",
    "bitter", "cobalt", "dusty",   "electric", "fierce", "gleaming", "hidden",  "ivory", "jagged",
    "lucky",  "marble", "noble",   "olive",    "polar",  "rusty",    "scarlet", "tidal", "violet"};
const std::vector<std::string> kKeyNouns = {
    "falcon", "anchor", "compass", "lantern", "thistle", "glacier", "beacon", "cactus", "dolphin",
    "ember",  "fern",   "geyser",  "heron",   "iris",    "juniper", "kettle", "lynx",   "magnet",
    "nectar", "otter",  "pebble",  "quartz",  "raven",   "saddle",  "tundra", "walrus", "yarrow"};
const std::vector<std::string> kCommonWords = {
    "apple",   "blanket", "candle", "dragon",   "engine", "feather", "guitar",  "hammer",
    "jacket",  "kitten",  "ladder", "mirror",   "needle", "onion",   "pencil",  "pillow",
    "rocket",  "saucer",  "ticket", "umbrella", "violin", "wallet",  "zipper",  "basket",
    "button",  "carpet",  "donkey", "falafel",  "goblet", "helmet",  "igloo",   "jigsaw",
    "kayak",   "lemon",   "muffin", "napkin",   "oyster", "parrot",  "quilt",   "radish",
    "sandal",  "tomato",  "turnip", "vessel",   "waffle", "yogurt",  "zebra",   "biscuit",
    "cabbage", "dagger",  "easel",  "funnel",   "gravel", "hatchet", "inkwell", "jelly",
    "kernel",  "locket",  "mitten", "nutmeg",   "paddle", "pepper",  "ribbon",  "spindle"};

std::string Fill(
    const std::string& frame, TaskRng& rng,
    const std::vector<std::pair<std::string, const std::vector<std::string>*>>& slots) {
  std::string out;
  for (size_t i = 0; i < frame.size(); ++i) {
    bool matched = false;
    if (frame[i] == '{') {
      for (const auto& [slot, words] : slots) {
        if (frame.compare(i, slot.size(), slot) == 0) {
          out += rng.Pick(*words);
          i += slot.size() - 1;
          matched = true;
          break;
        }
      }
    }
    if (!matched) out += frame[i];
  }
  return out;
}

}  // namespace

uint64_t TaskRng::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t TaskRng::Below(uint32_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = Next();
  while (x >= limit);
  return static_cast<uint32_t>(x % n);
}

uint64_t SampleSeed(const std::string& task, int length, int index, int seed) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the task name, then the numbers mixed in
  for (char c : task) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  TaskRng mix(h ^ (static_cast<uint64_t>(length) << 32) ^ (static_cast<uint64_t>(index) << 8) ^
              static_cast<uint64_t>(seed) * 0x100000001b3ull);
  return mix.Next();
}

const char* FillerName(FillerKind kind) {
  switch (kind) {
    case FillerKind::kEssay:
      return "essay";
    case FillerKind::kTechnical:
      return "technical";
    case FillerKind::kCode:
      return "code";
    case FillerKind::kNoise:
      return "noise";
  }
  return "?";
}

std::string FillerStream::Next() {
  switch (kind_) {
    case FillerKind::kEssay:
      return Fill(rng_.Pick(kEssayFrames), rng_,
                  {{"{N}", &kNouns}, {"{A}", &kAdjectives}, {"{V}", &kVerbs}});
    case FillerKind::kTechnical:
      return Fill(rng_.Pick(kTechFrames), rng_,
                  {{"{C}", &kComponents}, {"{T}", &kTechVerbs}, {"{X}", &kTechThings}});
    case FillerKind::kCode:
      return Fill(rng_.Pick(kCodeFrames), rng_,
                  {{"{a}", &kCodeNames}, {"{b}", &kCodeNames}, {"{c}", &kCodeNames}});
    case FillerKind::kNoise:
      return kNoise[0];
  }
  return "";
}

std::vector<std::string> FillerUnits(FillerKind kind, uint64_t seed, int n) {
  FillerStream stream(kind, seed);
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(stream.Next());
  return out;
}

const char* NeedleName(NeedleKind kind) {
  switch (kind) {
    case NeedleKind::kNumber:
      return "number";
    case NeedleKind::kDashedCode:
      return "dashed code";
    case NeedleKind::kWord:
      return "word";
    case NeedleKind::kUuid:
      return "uuid";
  }
  return "?";
}

std::string NeedleValue(NeedleKind kind, TaskRng& rng) {
  switch (kind) {
    case NeedleKind::kNumber:
      return std::to_string(1000000 + rng.Below(9000000));
    case NeedleKind::kDashedCode: {
      static constexpr char kChars[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
      std::string out;
      for (int i = 0; i < 11; ++i) out += i % 4 == 3 ? '-' : kChars[rng.Below(sizeof kChars - 1)];
      return out;
    }
    case NeedleKind::kWord:
      return absl::StrCat(rng.Pick(kKeyAdjectives), "-", rng.Pick(kKeyNouns));
    case NeedleKind::kUuid: {
      std::string out;
      for (int i = 0; i < 36; ++i) {
        out += (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : "0123456789abcdef"[rng.Below(16)];
      }
      return out;
    }
  }
  return "";
}

std::string NeedleKey(TaskRng& rng) {
  return absl::StrCat(rng.Pick(kKeyAdjectives), "-", rng.Pick(kKeyNouns));
}

std::string VariableName(TaskRng& rng) {
  std::string out;
  for (int i = 0; i < 5; ++i) out += static_cast<char>('A' + rng.Below(26));
  return out;
}

std::vector<std::string> DistinctWords(TaskRng& rng, int n) {
  std::vector<std::string> words = kCommonWords;
  rng.Shuffle(words);
  words.resize(std::min<size_t>(n, words.size()));
  return words;
}

}  // namespace kvserve::eval

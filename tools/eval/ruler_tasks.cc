#include "tools/eval/ruler_tasks.h"

#include <algorithm>
#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/model/chat_template.h"
#include "engine/model/prompt_encoding.h"
#include "tools/eval/task_text.h"

namespace kvserve::eval {
namespace {

// A task's text for a given number of filler units: the user's message and the text the
// assistant's turn opens with.
struct TaskText {
  std::string user;
  std::string answer_prefix;
};

// What a task instance fixes before its length is fitted.
struct Instance {
  FillerKind filler = FillerKind::kEssay;
  std::vector<std::string> needles;  // sentences to place
  std::vector<int> depths;           // percent, one per needle (ascending after placement)
  std::string instruction;           // before the context (may be empty)
  std::string question;              // after it
  std::string answer_prefix;
  std::vector<std::string> references;
  int answer_tokens = 32;
  std::string variant;
  // cwe builds its own context from a unit count.
  std::function<std::string(int units)> context;
};

// Depths drawn from RULER's 40 evenly spaced points in [0, 100], distinct.
std::vector<int> Depths(TaskRng& rng, int n) {
  std::vector<int> points;
  for (int i = 0; i < 40; ++i) points.push_back((i * 100 + 19) / 39);
  rng.Shuffle(points);
  points.resize(n);
  return points;
}

std::string JoinUnits(FillerKind kind, const std::vector<std::string>& units) {
  const bool lines = kind == FillerKind::kCode || kind == FillerKind::kNoise;
  return absl::StrJoin(units, lines ? "\n" : " ");
}

// The filler with the needles after round(depth · units) units each.
std::string Haystack(const Instance& in, uint64_t filler_seed, int units) {
  std::vector<std::string> pieces = FillerUnits(in.filler, filler_seed, units);
  std::vector<std::pair<int, std::string>> placed;
  for (size_t i = 0; i < in.needles.size(); ++i) {
    placed.push_back({(in.depths[i] * units + 50) / 100, in.needles[i]});
  }
  std::stable_sort(placed.begin(), placed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [at, needle] : placed) pieces.insert(pieces.begin() + at, needle);
  return JoinUnits(in.filler, pieces);
}

std::string TypeWord(NeedleKind kind) {
  switch (kind) {
    case NeedleKind::kNumber:
      return "number";
    case NeedleKind::kDashedCode:
      return "code";
    case NeedleKind::kWord:
      return "word";
    case NeedleKind::kUuid:
      return "uuid";
  }
  return "value";
}

// A pronounceable lowercase pseudo-word of 2-3 syllables, for cwe's long tail.
std::string PseudoWord(TaskRng& rng) {
  static constexpr char kC[] = "bdfgklmnprstvz";
  static constexpr char kV[] = "aeiou";
  std::string w;
  const int syllables = 2 + static_cast<int>(rng.Below(2));
  for (int i = 0; i < syllables; ++i) {
    w += kC[rng.Below(sizeof kC - 1)];
    w += kV[rng.Below(sizeof kV - 1)];
  }
  w += kC[rng.Below(sizeof kC - 1)];
  return w;
}

absl::StatusOr<Instance> MakeInstance(const TaskSpec& spec, TaskRng& rng) {
  Instance in;
  const std::string& t = spec.task;
  if (t == "passkey_user") {
    in.filler = FillerKind::kTechnical;
    const std::string key = std::to_string(10000 + rng.Below(90000));
    in.needles = {absl::StrCat("The pass key is ", key, ". Remember it.")};
    in.depths = Depths(rng, 1);
    in.instruction =
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
        "it. I will quiz you about the important information there.";
    in.question = "What is the pass key?";
    in.references = {key};
    in.answer_tokens = 16;
    in.variant = "technical/number";
  } else if (t == "niah_single" || t == "niah_multikey" || t == "niah_multivalue") {
    NeedleKind kind = NeedleKind::kNumber;
    in.filler = FillerKind::kEssay;
    if (t == "niah_single") {
      constexpr FillerKind kFillers[] = {FillerKind::kEssay, FillerKind::kTechnical,
                                         FillerKind::kCode};
      constexpr NeedleKind kKinds[] = {NeedleKind::kNumber, NeedleKind::kDashedCode,
                                       NeedleKind::kWord, NeedleKind::kUuid};
      in.filler = kFillers[spec.index % 3];
      kind = kKinds[(spec.index / 3) % 4];
    }
    const std::string type = TypeWord(kind);
    const int keys = t == "niah_multikey" ? 4 : 1;
    const int values = t == "niah_multivalue" ? 4 : 1;
    std::vector<std::string> key_list;
    while (static_cast<int>(key_list.size()) < keys) {
      std::string k = NeedleKey(rng);
      if (std::find(key_list.begin(), key_list.end(), k) == key_list.end()) key_list.push_back(k);
    }
    const std::string& asked = key_list[0];
    for (int k = 0; k < keys; ++k) {
      for (int v = 0; v < values; ++v) {
        std::string value = NeedleValue(kind, rng);
        in.needles.push_back(absl::StrCat("One of the special magic ", type, "s for ", key_list[k],
                                          " is: ", value, "."));
        if (k == 0) in.references.push_back(value);
      }
    }
    in.depths = Depths(rng, static_cast<int>(in.needles.size()));
    const bool plural = values > 1;
    const std::string what = plural ? absl::StrCat(type, "s") : type;
    in.instruction = absl::StrCat("Some special magic ", type,
                                  "s are hidden inside the following text. Make sure to memorize "
                                  "them. I will quiz you about the ",
                                  type, "s afterwards.");
    in.question = plural ? absl::StrCat("What are all the special magic ", what, " for ", asked,
                                        " mentioned in the provided text?")
                         : absl::StrCat("What is the special magic ", what, " for ", asked,
                                        " mentioned in the provided text?");
    in.answer_prefix = absl::StrCat("The special magic ", what, " for ", asked,
                                    " mentioned in the provided text ", plural ? "are" : "is");
    in.answer_tokens = kind == NeedleKind::kUuid ? 48 : (plural ? 64 : 24);
    in.variant = absl::StrCat(FillerName(in.filler), "/", NeedleName(kind));
  } else if (t == "vt") {
    in.filler = FillerKind::kNoise;
    const std::string value = std::to_string(10000 + rng.Below(90000));
    std::vector<std::string> names;
    while (names.size() < 5) {
      std::string n = VariableName(rng);
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    in.needles.push_back(absl::StrCat("VAR ", names[0], " = ", value));
    for (int i = 1; i < 5; ++i) {
      in.needles.push_back(absl::StrCat("VAR ", names[i], " = VAR ", names[i - 1]));
    }
    in.depths = Depths(rng, 5);
    std::sort(in.depths.begin(), in.depths.end());  // the chain in order
    in.instruction =
        "Memorize and track the chain(s) of variable assignment hidden in the following text.";
    in.question = absl::StrCat("Question: Find all variables that are assigned the value ", value,
                               " in the text above.");
    in.answer_prefix = absl::StrCat(
        "Answer: According to the chain(s) of variable assignment in the text above, 5 variables "
        "are assigned the value ",
        value, ", they are:");
    in.references = names;
    in.answer_tokens = 32;
    in.variant = "noise/chain of 4";
  } else if (t == "cwe") {
    std::vector<std::string> common = DistinctWords(rng, 10);
    in.references = common;
    const uint64_t list_seed = rng.Next();
    // Each common word 8 times per 100 words of the list, the rest pseudo-words once or twice.
    in.context = [common, list_seed](int units) {
      TaskRng r(list_seed);
      std::vector<std::string> words;
      const int n_common = std::max(2, units * 8 / 100);
      for (const std::string& w : common) {
        for (int i = 0; i < n_common; ++i) words.push_back(w);
      }
      std::set<std::string> used(common.begin(), common.end());
      while (static_cast<int>(words.size()) < units + 10 * n_common) {
        std::string w = PseudoWord(r);
        if (!used.insert(w).second) continue;
        const int times = 1 + static_cast<int>(r.Below(2));
        for (int i = 0; i < times; ++i) words.push_back(w);
      }
      r.Shuffle(words);
      return absl::StrJoin(words, ", ");
    };
    in.instruction = "Below is a list of words, some of which are repeated many times.";
    in.question =
        "Question: What are the 10 most common words in the list above? List them without "
        "explanation.";
    in.answer_prefix = "Answer: The top 10 words that appear most often in the list are:";
    in.answer_tokens = 64;
    in.variant = "pseudo-word list";
  } else if (t == "qa") {
    static const std::vector<std::string> kFirst = {"Mara",  "Tomas", "Ines",  "Otto",
                                                    "Selma", "Arvid", "Lotte", "Bruno"};
    static const std::vector<std::string> kLast = {"Lindqvist", "Okafor",   "Brandt", "Castell",
                                                   "Halvorsen", "Moreau",   "Petrov", "Quinlan",
                                                   "Vasquez",   "Whitcombe"};
    static const std::vector<std::string> kBuildings = {"observatory",  "lighthouse",
                                                        "town hall",    "railway station",
                                                        "concert hall", "botanical garden"};
    static const std::vector<std::string> kPlaces = {
        "Varrow", "Eskdale", "Marlow Bay", "Tirnhold", "Oakmere", "Brisley", "Caddon", "Pellworth"};
    const std::string person = absl::StrCat(rng.Pick(kFirst), " ", rng.Pick(kLast));
    const std::string building = rng.Pick(kBuildings);
    const std::string place = rng.Pick(kPlaces);
    in.filler = FillerKind::kEssay;
    in.needles = {absl::StrCat("The ", building, " of ", place, " was designed by the architect ",
                               person, ", who finished the plans in a single winter.")};
    in.depths = Depths(rng, 1);
    in.instruction = "Read the following document and answer the question after it.";
    in.question = absl::StrCat("Question: According to the document, who designed the ", building,
                               " of ", place, "?");
    in.answer_prefix = "Answer:";
    in.references = {person};
    in.answer_tokens = 16;
    in.variant = "essay/person";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("task '", t, "' is not one of ", absl::StrJoin(RulerTaskNames(), ", ")));
  }
  return in;
}

}  // namespace

std::vector<std::string> RulerTaskNames() {
  return {"passkey_user", "niah_single", "niah_multikey", "niah_multivalue", "vt", "cwe", "qa"};
}

absl::StatusOr<TaskPrompt> BuildTaskPrompt(const Tokenizer& tokenizer,
                                           const std::string& chat_template, const TaskSpec& spec) {
  TaskRng rng(SampleSeed(spec.task, spec.target_tokens, spec.index, spec.seed));
  auto made = MakeInstance(spec, rng);
  if (!made.ok()) return made.status();
  const Instance& in = *made;
  const uint64_t filler_seed = rng.Next();
  const ChatTemplate chat(chat_template);
  auto render = [&](int units) -> absl::StatusOr<std::vector<int32_t>> {
    const std::string context = in.context ? in.context(units) : Haystack(in, filler_seed, units);
    std::string user = in.instruction.empty() ? "" : absl::StrCat(in.instruction, "\n\n");
    absl::StrAppend(&user, context, "\n\n", in.question);
    const ChatMessage message{.role = "user", .content = user};
    auto text = chat.Apply(std::span(&message, 1), /*add_generation_prompt=*/true);
    if (!text.ok()) return text.status();
    return EncodePromptText(tokenizer, absl::StrCat(*text, in.answer_prefix));
  };
  const int limit = spec.target_tokens - in.answer_tokens;
  // The most units within the limit: length grows with units, so bisect.
  int lo = 0, hi = std::max(1, limit / 4);
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    auto ids = render(mid);
    if (!ids.ok()) return ids.status();
    if (static_cast<int>(ids->size()) <= limit) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  if (lo == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec.task, ": ", spec.target_tokens, " tokens hold no filler"));
  }
  auto ids = render(lo);
  if (!ids.ok()) return ids.status();
  return TaskPrompt{.ids = *std::move(ids),
                    .references = in.references,
                    .answer_tokens = in.answer_tokens,
                    .variant = in.variant,
                    .depth_percent = in.depths};
}

std::vector<int32_t> ReferencePositions(const Tokenizer& tokenizer, std::span<const int32_t> ids,
                                        const std::string& reference) {
  for (const std::string& text : {reference, absl::StrCat(" ", reference)}) {
    const std::vector<int32_t> needle = tokenizer.Encode(text);
    if (needle.empty()) continue;
    const auto at = std::search(ids.begin(), ids.end(), needle.begin(), needle.end());
    if (at == ids.end()) continue;
    std::vector<int32_t> out(needle.size());
    for (size_t i = 0; i < needle.size(); ++i) {
      out[i] = static_cast<int32_t>(at - ids.begin() + i);
    }
    return out;
  }
  return {};
}

double ReferenceScore(const std::string& answer, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string text = absl::AsciiStrToLower(answer);
  int found = 0;
  for (const std::string& r : references) {
    found += text.find(absl::AsciiStrToLower(r)) != std::string::npos ? 1 : 0;
  }
  return static_cast<double>(found) / references.size();
}

}  // namespace kvserve::eval

#include "train/settings.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <type_traits>

namespace ahmsa::train {

const Choices<Split>& choices(Split) {
  static const Choices<Split> c = {{"loso", Split::Loso}, {"kfold", Split::Kfold}, {"split", Split::Single}};
  return c;
}
const Choices<Selection>& choices(Selection) {
  static const Choices<Selection> c = {{"last", Selection::Last}, {"val", Selection::Val}};
  return c;
}
const Choices<OptimizerKind>& choices(OptimizerKind) {
  static const Choices<OptimizerKind> c = {{"adamw", OptimizerKind::AdamW}, {"adam", OptimizerKind::Adam}, {"sgd", OptimizerKind::Sgd}};
  return c;
}
const Choices<ScheduleKind>& choices(ScheduleKind) {
  static const Choices<ScheduleKind> c = {{"cosine", ScheduleKind::Cosine}, {"constant", ScheduleKind::Constant}, {"onecycle", ScheduleKind::OneCycle}};
  return c;
}

namespace {

struct SetDefaults {
  void section(const char*) {}
  template <class T>
  void operator()(T& member, const char*, const T& def, const char*, Role, Range = {}) {
    member = def;
  }
};

// A setting's value as JSON: enums by name, the model config as its canonical string. Floats go
// through their shortest decimal form so 1e-3f is 0.001, not 0.0010000000474974513.
template <class T>
nlohmann::ordered_json value_json(const T& v) {
  if constexpr (std::is_enum_v<T>) return name_of(v);
  else if constexpr (std::is_same_v<T, AhmsaConfig>) return v.to_string();
  else if constexpr (std::is_same_v<T, float>) {
    char b[32];
    for (int digits = 6;; ++digits) {  // the shortest decimal that reads back as the same float (at most 9 digits)
      std::snprintf(b, sizeof b, "%.*g", digits, double(v));
      if (float(std::strtod(b, nullptr)) == v || digits == 9) return std::strtod(b, nullptr);
    }
  } else return v;
}

struct ToJson {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  bool filter = false;
  Role role = Role::Result;
  void section(const char*) {}
  template <class T>
  void operator()(const T& member, const char* name, const T&, const char*, Role r, Range = {}) {
    if (!filter || r == role) out[name] = value_json(member);
  }
};

std::string toml_value(const nlohmann::ordered_json& j) {
  if (j.is_string()) return j.dump();  // a JSON string is a valid TOML basic string
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + toml_value(j[i]);
    return s + "]";
  }
  return j.dump();
}

struct ToToml {
  const nlohmann::ordered_json& values;
  std::string out;
  void section(const char* title) { out += std::string("\n# ---- ") + title + "\n"; }
  template <class T>
  void operator()(const T& member, const char* name, const T&, const char* help, Role, Range = {}) {
    if constexpr (std::is_same_v<T, std::vector<int>>)
      if (member.empty()) {  // CLI11 reads an empty array as a missing value: leave the setting out
        out += std::string("# ") + name + " = [" + "]   # " + help + "\n";
        return;
      }
    out += std::string("# ") + help;
    if constexpr (std::is_enum_v<T>) out += " (" + choice_list(T{}) + ")";
    out += "\n" + std::string(name) + " = " + toml_value(values.at(name)) + "\n";
  }
};

struct FromJson {
  const nlohmann::ordered_json& in;
  void section(const char*) {}
  template <class T>
  void operator()(T& member, const char* name, const T&, const char*, Role, Range = {}) {
    const auto it = in.find(name);
    if (it == in.end()) return;
    try {
      if constexpr (std::is_enum_v<T>) {
        const std::string n = it->template get<std::string>();
        bool found = false;
        for (auto& [cn, cv] : choices(T{}))
          if (n == cn) member = cv, found = true;
        if (!found) throw std::invalid_argument("'" + n + "' is not one of " + choice_list(T{}));
      } else if constexpr (std::is_same_v<T, AhmsaConfig>) {
        member = AhmsaConfig::parse(it->template get<std::string>());
      } else {
        member = it->template get<T>();
      }
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("setting '") + name + "': " + it->dump() + " cannot be read back: " + e.what());
    }
  }
};

// The declared ranges, and the model config, for settings built without the parser (tests, tools).
struct Check {
  void section(const char*) {}
  template <class T>
  void operator()(const T& member, const char* name, const T&, const char*, Role, Range r = {}) {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double v = double(member);
      if (!std::isfinite(v) || v < r.lo || v > r.hi) {
        char b[160];
        std::snprintf(b, sizeof b, "--%s: %g is outside [%g, %g]", name, v, r.lo, r.hi);
        throw std::invalid_argument(b);
      }
    } else if constexpr (std::is_same_v<T, AhmsaConfig>) {
      member.validate();
    }
  }
};

}  // namespace

RunSettings::RunSettings() { declare_settings(*this, SetDefaults{}); }

ReportSettings report_settings(const RunSettings& s) {
  ReportSettings r;
  r.split = s.protocol.split;
  r.select = s.fold.select;
  r.epochs = s.fold.epochs;
  r.report_best_test = s.report_best_test;
  return r;
}

nlohmann::ordered_json settings_json(const RunSettings& s) {
  ToJson v;
  declare_settings(s, v);
  return v.out;
}

nlohmann::ordered_json settings_json(const RunSettings& s, Role role_filter) {
  ToJson v;
  v.filter = true, v.role = role_filter;
  declare_settings(s, v);
  return v.out;
}

RunSettings settings_from_json(const nlohmann::ordered_json& j) {
  RunSettings s;
  if (!j.is_object()) throw std::invalid_argument("the settings are not a JSON object");
  declare_settings(s, FromJson{j});
  return s;
}

void resolve_settings(RunSettings& s, bool val_fraction_given) {
  if (s.fold.select == Selection::Val && !val_fraction_given) s.protocol.val_fraction = 0.15;
  if (!s.fold_from_env.empty()) {
    const char* v = std::getenv(s.fold_from_env.c_str());
    const std::string what = "--fold-from-env " + s.fold_from_env;
    if (!v) throw std::invalid_argument(what + ": the variable is not set (run it inside a Slurm array task, or give --folds N)");
    char* end = nullptr;
    const long f = std::strtol(v, &end, 10);
    if (!*v || *end || f < 1 || f > 1000000)
      throw std::invalid_argument(what + ": '" + v + "' is not a fold number (1, 2, ...)");
    if (std::find(s.only_folds.begin(), s.only_folds.end(), int(f)) == s.only_folds.end()) s.only_folds.push_back(int(f));
  }
}

void validate_settings(const RunSettings& s) {
  declare_settings(s, Check{});
  if (s.fold.select == Selection::Val && s.protocol.val_fraction <= 0)
    throw std::invalid_argument("--select val needs validation subjects: --val-fraction must be > 0");
  if (s.fold.ema > 0 && s.fold.swa_epochs > 0)
    throw std::invalid_argument("--ema and --swa-epochs are two ways to average the weights: give one of them");
  if (s.fold.swa_epochs > s.fold.epochs)
    throw std::invalid_argument("--swa-epochs " + std::to_string(s.fold.swa_epochs) + " is more than --epochs " +
                                std::to_string(s.fold.epochs));
  if ((s.fold.ema > 0 || s.fold.swa_epochs > 0) && s.fold.select == Selection::Val)
    throw std::invalid_argument("--ema / --swa-epochs score the averaged weights of the whole budget; they go with --select last");
  for (int f : s.only_folds)
    if (f < 1) throw std::invalid_argument("--folds: fold numbers start at 1, got " + std::to_string(f));
}

std::string settings_toml(const RunSettings& s, const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string out = "# ahmsa train run file: `ahmsa train --config FILE` repeats this run; options given on the\n"
                    "# command line as well override the file.\n";
  for (auto& [k, v] : extra) out += k + " = " + v + "\n";
  const nlohmann::ordered_json values = settings_json(s);
  ToToml v{values, {}};
  declare_settings(s, v);
  return out + v.out;
}

}  // namespace ahmsa::train
